// tsc --strict must REJECT this (spec/e2e/errors_spec.lua checks it fails,
// and on each line marked BAD): reading data of a code the function does
// not declare, or the wrong data of one it does.
import { errorOf } from "./api";

export function misuse(e: unknown): unknown[] {
  const err = errorOf("get_todo", e)!;
  const body = err.error;
  const out: unknown[] = [];
  if (body.code === "teapot") out.push(body.data); // BAD: get_todo declares no 'teapot'
  if (body.code === "unauthenticated") out.push(body.data.id); // BAD: a protocol code carries no data
  if (body.code === "not_found") out.push(body.data.with_id); // BAD: not_found's data is { id }
  const other = errorOf("stable", e)!;
  if (other.error.code === "not_found") out.push(other.error.data.id); // BAD: 'stable' declares no not_found data
  return out;
}
