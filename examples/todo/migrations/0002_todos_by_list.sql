-- A list page reads its todos by list_id; the same SQL on SQLite and Postgres.
CREATE INDEX IF NOT EXISTS todos_list_id ON todos (list_id, id);
CREATE INDEX IF NOT EXISTS lists_owner_id ON lists (owner_id, id);
