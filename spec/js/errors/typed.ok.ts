// tsc --strict must accept this (spec/e2e/errors_spec.lua): a client of
// spec/apps/errors narrows a caught error on the codes get_todo declares,
// and on the protocol's own, and reads their data and fields as typed.
import { api, errorOf, type GetTodoError } from "./api";
import { createMizan } from "./kernel";

export async function show(): Promise<string> {
  try {
    return (await api(createMizan()).getTodo({ id: 3 })).title;
  } catch (e) {
    const err = errorOf("get_todo", e);
    if (!err) throw e;
    const body = err.error;
    switch (body.code) {
      case "not_found": { const id: number = body.data.id; return `no todo ${id}`; }
      case "conflict": return `clashes with ${body.data.with_id.toFixed(0)}`;
      case "archived": return `archived since ${body.data.since.toUpperCase()}`;
      case "locked": { const none: undefined = body.data; return `locked${none ?? ""}`; }
      case "validation_error": return Object.keys(body.fields).join(", ");
      case "stale_client": return `reload for ${body.data.schema}`;
      case "unauthenticated": return body.message;
      default: return body.code;
    }
  }
}

// every code of the union is one the server may send
export const codes: GetTodoError["code"][] = ["not_found", "conflict", "archived", "locked", "internal_error", "stale_client"];
