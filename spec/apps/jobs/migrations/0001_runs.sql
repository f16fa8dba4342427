-- one row per attempt a spec job made: which job, which attempt, which process
CREATE TABLE job_runs (job_id INTEGER NOT NULL, job TEXT NOT NULL, attempt INTEGER NOT NULL, pid INTEGER NOT NULL,
                       note TEXT NOT NULL DEFAULT '');
CREATE TABLE notes (text TEXT NOT NULL);
