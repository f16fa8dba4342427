-- forms.ts: the client half of mizan.forms, a TypeScript port of
-- lua/mizan/forms/fields.lua behind Zod. The same field declarations (the
-- form's exported fields) give the same cleaned values and Django's exact
-- messages; spec/forms_cases.json holds both sides to that.
return [==[
import { z } from "zod";
import { MizanError, tracked, type Mizan } from "./kernel";

/** A field as the server exports it (contact.schema returns the same). */
export interface FieldSpec {
  name: string;
  label?: string;
  help_text?: string;
  kind: "char" | "text" | "email" | "url" | "integer" | "decimal" | "boolean" | "choice" | "multiple_choice" | "date" | "datetime";
  required: boolean;
  disabled?: boolean;
  initial?: unknown;
  constraints: { min_length?: number; max_length?: number; strip?: boolean; min_value?: number; max_value?: number; max_digits?: number; decimal_places?: number };
  choices?: Array<{ value: string | number; label: string }>;
}

type Cleaned = { value: unknown } | { errors: string[] };

export const REQUIRED = "This field is required.";
const TEXT_KINDS = new Set(["char", "text", "email", "url"]);
// Python's str.strip() (which Django applies): ASCII and Unicode whitespace.
const WS = "[\\t-\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const LEAD = new RegExp("^" + WS + "+"), TRAIL = new RegExp(WS + "+$");
const strip = (s: string) => s.replace(LEAD, "").replace(TRAIL, "");
const chars = (s: string) => [...s].length;

function asText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number") return String(v);
  if (typeof v === "boolean") return v ? "True" : "False";
  return undefined;
}

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || v === "" || (Array.isArray(v) && v.length === 0) ||
    (typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0);
}

function lengthErrors(f: FieldSpec, s: string, errs: string[]) {
  const { min_length: lo, max_length: hi } = f.constraints, n = chars(s);
  if (lo !== undefined && n < lo) errs.push(`Ensure this value has at least ${lo} characters (it has ${n}).`);
  if (hi !== undefined && n > hi) errs.push(`Ensure this value has at most ${hi} characters (it has ${n}).`);
}

function rangeErrors(f: FieldSpec, n: number, errs: string[]) {
  const { min_value: lo, max_value: hi } = f.constraints;
  if (lo !== undefined && n < lo) errs.push(`Ensure this value is greater than or equal to ${lo}.`);
  if (hi !== undefined && n > hi) errs.push(`Ensure this value is less than or equal to ${hi}.`);
}

function cleanText(f: FieldSpec, v: unknown): { s: string } | { errors: string[] } {
  let s = asText(v);
  if (s === undefined) return { errors: ["Enter a valid value."] };
  if (f.constraints.strip !== false) s = strip(s);
  if (s.includes("\0")) return { errors: ["Null characters are not allowed."] };
  return { s };
}

// Django's EmailValidator and URLValidator, as the server applies them.
const ATOM = /^[-!#$%&'*+/=?^_`{}|~0-9A-Za-z]+$/;
function validUser(u: string): boolean {
  if (u.length >= 2 && u.startsWith('"') && u.endsWith('"')) {
    const inner = new TextEncoder().encode(u.slice(1, -1));
    for (let i = 0; i < inner.length; i++) {
      const c = inner[i];
      if (c === 92) {
        const d = inner[i + 1];
        if (d === undefined || d === 10 || d === 13 || d > 127 || d === 0) return false;
        i++;
      } else if (c === 0 || c === 9 || c === 10 || c === 13 || c === 34 || c > 127) return false;
    }
    return true;
  }
  return u.split(".").every((a) => ATOM.test(a));
}

function validIPv4(s: string): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  return !!m && m.slice(1).every((p) => Number(p) <= 255 && !(p.length > 1 && p[0] === "0"));
}
function validIPv6(s: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(s)) return false;
  const double = s.split("::").length - 1;
  if (double > 1) return false;
  let groups = 0;
  for (const g of s.split(":").filter((x) => x !== "")) {
    if (g.includes(".")) { if (!validIPv4(g)) return false; groups += 2; }
    else if (g.length > 4) return false;
    else groups += 1;
  }
  return (double === 1 && groups < 8) || (double === 0 && groups === 8);
}
function validDomain(d: string): boolean {
  if (d === "localhost") return true;
  const lit = /^\[(.+)\]$/.exec(d);
  if (lit) {
    const l = lit[1];
    if (/^ipv6:/i.test(l)) return validIPv6(l.slice(5));
    return validIPv4(l) || validIPv6(l);
  }
  const labels = d.split(".");
  if (labels.length < 2) return false;
  return labels.every((label, i) => {
    // non-ASCII letters stand for what IDNA would encode: count a run as one byte
    const ascii = label.replace(/[^\x00-\x7f]+/g, "x");
    if (!/^[0-9A-Za-z-]+$/.test(ascii) || ascii.endsWith("-")) return false;
    const n = ascii.length;
    return i < labels.length - 1 ? n <= 63 && !ascii.startsWith("-") : n >= 2 && n <= 63;
  });
}
export function validEmail(s: string): boolean {
  if (s === "" || new TextEncoder().encode(s).length > 320) return false;
  const at = s.lastIndexOf("@");
  if (at <= 0) return false;
  return validUser(s.slice(0, at)) && validDomain(s.slice(at + 1));
}
export function validUrl(s: string): boolean {
  const m = /^([A-Za-z][0-9A-Za-z+.-]*):\/\/([\s\S]*)$/.exec(s);
  if (!m) return false;
  if (!["http", "https", "ftp", "ftps"].includes(m[1].toLowerCase())) return false;
  const rest = m[2];
  if (/[ \t\n\v\f\r]/.test(rest)) return false;
  const netloc = (/^[^/?#]*/.exec(rest)![0]).replace(/^[^@]*@/, "");
  const hp = /^([\s\S]*?):(\d+)$/.exec(netloc);
  const host = hp ? hp[1] : netloc;
  if (hp && Number(hp[2]) > 65535) return false;
  if (host === "") return false;
  const v6 = /^\[(.+)\]$/.exec(host);
  if (v6) return validIPv6(v6[1]);
  return validIPv4(host) || validDomain(host);
}

function leap(y: number) { return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0; }
function validDate(y: number, m: number, d: number): boolean {
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;
  return d <= [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1] + (m === 2 && leap(y) ? 1 : 0);
}

function choiceValue(f: FieldSpec, v: unknown): string | number | undefined {
  const s = asText(v);
  if (s === undefined) return undefined;
  return f.choices?.find((c) => String(c.value) === s)?.value;
}
const notAChoice = (v: unknown) => `Select a valid choice. ${asText(v) ?? "That"} is not one of the available choices.`;

const withText = (f: FieldSpec, v: unknown, check: (s: string, errs: string[]) => string): Cleaned => {
  const t = cleanText(f, v);
  if ("errors" in t) return t;
  const errs: string[] = [];
  const s = check(t.s, errs);
  lengthErrors(f, s, errs);
  return errs.length ? { errors: errs } : { value: s };
};

const CLEAN: Record<FieldSpec["kind"], (f: FieldSpec, v: unknown) => Cleaned> = {
  char: (f, v) => withText(f, v, (s) => s),
  text: (f, v) => withText(f, v, (s) => s),
  email: (f, v) => withText(f, v, (s, errs) => { if (!validEmail(s)) errs.push("Enter a valid email address."); return s; }),
  url: (f, v) => withText(f, v, (s, errs) => {
    if (!/^[A-Za-z][0-9A-Za-z+.-]*:\/\//.test(s)) s = "http://" + s; // no scheme means http, as in Django
    if (!validUrl(s)) errs.push("Enter a valid URL.");
    return s;
  }),
  integer: (f, v) => {
    let n: number | undefined;
    if (typeof v === "number") n = Number.isInteger(v) ? v : undefined;
    else if (typeof v === "string") {
      const s = strip(v).replace(/\.0*$/, ""); // Python's int() after Django drops a trailing ".0"
      if (/^[+-]?\d+$/.test(s)) n = Number(s);
    }
    if (n === undefined || Math.abs(n) > Number.MAX_SAFE_INTEGER) return { errors: ["Enter a whole number."] };
    const errs: string[] = [];
    rangeErrors(f, n, errs);
    return errs.length ? { errors: errs } : { value: n };
  },
  decimal: (f, v) => {
    const s = typeof v === "number" ? String(v) : typeof v === "string" ? strip(v) : "";
    const m = /^([+-]?)(\d*)\.?(\d*)$/.exec(s);
    if (!m || (m[2] === "" && m[3] === "")) return { errors: ["Enter a number."] };
    const [, sign, whole, frac] = m;
    const o = f.constraints, errs: string[] = [];
    // digits as Django's DecimalValidator counts them: no leading zeros; exponent -frac.length
    const tuple = (whole.replace(/^0+/, "") + frac).replace(/^0+/, "") || "0";
    const digits = Math.max(tuple.length, frac.length), wholeDigits = digits - frac.length;
    if (o.max_digits !== undefined && digits > o.max_digits) errs.push(`Ensure that there are no more than ${o.max_digits} digits in total.`);
    else if (o.decimal_places !== undefined && frac.length > o.decimal_places) errs.push(`Ensure that there are no more than ${o.decimal_places} decimal places.`);
    else if (o.max_digits !== undefined && o.decimal_places !== undefined && wholeDigits > o.max_digits - o.decimal_places)
      errs.push(`Ensure that there are no more than ${o.max_digits - o.decimal_places} digits before the decimal point.`);
    rangeErrors(f, Number(s), errs);
    // a decimal stays text, so no digit is lost to binary floating point
    return errs.length ? { errors: errs } : { value: (sign === "-" ? "-" : "") + (whole || "0") + (frac ? "." + frac : "") };
  },
  boolean: (_f, v) => {
    if (v === false || v === null || v === undefined || v === 0) return { value: false };
    if (typeof v === "string" && ["false", "0", "", "off", "no"].includes(v.toLowerCase())) return { value: false };
    return { value: true };
  },
  choice: (f, v) => {
    const c = choiceValue(f, v);
    return c === undefined ? { errors: [notAChoice(v)] } : { value: c };
  },
  multiple_choice: (f, v) => {
    if (!Array.isArray(v) && !(typeof v === "object" && v !== null && Object.keys(v).length === 0)) return { errors: ["Enter a list of values."] };
    const out: Array<string | number> = [];
    for (const item of Array.isArray(v) ? v : []) {
      const c = choiceValue(f, item);
      if (c === undefined) return { errors: [notAChoice(item)] };
      out.push(c);
    }
    return { value: out };
  },
  date: (_f, v) => {
    const s = typeof v === "string" ? strip(v) : "";
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
    return m && validDate(+m[1], +m[2], +m[3]) ? { value: s } : { errors: ["Enter a valid date."] };
  },
  datetime: (_f, v) => {
    const s = typeof v === "string" ? strip(v) : "";
    const m = /^(\d{4})-(\d{2})-(\d{2})([\s\S]*)$/.exec(s);
    let ok = !!m && validDate(+m[1], +m[2], +m[3]);
    if (ok && m![4] !== "") {
      const t = /^[T ](\d{2}):(\d{2})([\s\S]*)$/.exec(m![4]);
      ok = !!t && +t[1] < 24 && +t[2] < 60;
      if (ok && t![3] !== "") {
        let tail = t![3];
        const sec = /^:(\d{2})([\s\S]*)$/.exec(tail);
        if (sec) { ok = +sec[1] < 60; tail = sec[2].replace(/^\.\d+/, ""); }
        ok = ok && (tail === "" || tail === "Z" || /^[+-]\d{2}:?\d{2}$/.test(tail));
      }
    }
    return ok ? { value: s } : { errors: ["Enter a valid date/time."] };
  },
};

function emptyValue(kind: FieldSpec["kind"]): unknown {
  if (TEXT_KINDS.has(kind)) return "";
  if (kind === "boolean") return false;
  if (kind === "multiple_choice") return [];
  return null;
}

/** One field, cleaned as the server cleans it (required, empty, then the kind's rules). */
export function cleanField(f: FieldSpec, input: unknown): Cleaned {
  const v = f.disabled ? f.initial : input; // a disabled field keeps its initial value
  if (f.kind === "boolean") {
    const b = (CLEAN.boolean(f, v) as { value: boolean }).value;
    return f.required && !b ? { errors: [REQUIRED] } : { value: b };
  }
  const blank = isEmpty(v) || (typeof v === "string" && f.constraints.strip !== false && TEXT_KINDS.has(f.kind) && strip(v) === "");
  if (blank) return f.required ? { errors: [REQUIRED] } : { value: emptyValue(f.kind) };
  return CLEAN[f.kind](f, v);
}

/** A Zod schema for one field: its output is the cleaned value, its issues Django's messages. */
export function fieldSchema(f: FieldSpec) {
  return z.unknown().transform((v, ctx) => {
    const r = cleanField(f, v);
    if ("errors" in r) {
      for (const message of r.errors) ctx.addIssue({ code: "custom", message });
      return z.NEVER;
    }
    return r.value;
  });
}

/** A Zod schema for a form's fields (cross-field `clean` stays on the server).
    One transform over the whole object, not z.object: an absent field must
    reach its cleaner (a missing optional field still gets its empty value). */
export function formSchema(fields: readonly FieldSpec[]) {
  return z.unknown().transform((v, ctx) => {
    const data = (typeof v === "object" && v !== null ? v : {}) as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    let ok = true;
    for (const f of fields) {
      const r = cleanField(f, data[f.name]);
      if ("errors" in r) {
        ok = false;
        for (const message of r.errors) ctx.addIssue({ code: "custom", message, path: [f.name] });
      } else out[f.name] = r.value;
    }
    return ok ? out : z.NEVER;
  });
}

/** Zod's issues in Django's shape: { field: [messages] }. */
export function djangoErrors(error: z.ZodError): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const issue of error.issues) {
    const key = issue.path.length ? String(issue.path[0]) : "__all__";
    (out[key] ??= []).push(issue.message);
  }
  return out;
}

export type FormSchema = ReturnType<typeof formSchema>;

/** A form for the adapters: its name, its fields as exported, and its schema. */
export interface FormDef { name: string; fields: readonly FieldSpec[]; schema: FormSchema }

/** The values a form starts with: each field's initial value, when it has one. */
export function initialValues(form: FormDef): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of form.fields) if (f.initial !== undefined && f.initial !== null) out[f.name] = f.initial;
  return out;
}

/** The client's errors for these values, or null when they pass. */
export function localErrors(schema: FormSchema, values: unknown): Record<string, string[]> | null {
  const r = schema.safeParse(values ?? {});
  return r.success ? null : djangoErrors(r.error);
}

/** Validate on the client, then (when that passes) on the server, which also runs the form's clean. */
export async function validateForm(mizan: Mizan, form: FormDef, values: unknown): Promise<{ valid: boolean; errors: Record<string, string[]> }> {
  const local = localErrors(form.schema, values);
  if (local) return { valid: false, errors: local };
  return mizan.call(form.name + ".validate", values as Record<string, unknown>);
}

/** Submit: values the client rejects never leave it; they fail as the server would fail them. */
export async function submitForm<R>(mizan: Mizan, form: FormDef, values: unknown): Promise<R> {
  const fields = localErrors(form.schema, values);
  if (fields) throw new MizanError(400, { code: "validation_error", message: "the form has errors", fields });
  return mizan.call<R>(form.name + ".submit", values as Record<string, unknown>);
}

type SetErrors = (errors: Record<string, string[]>) => void;

/** validateForm for an adapter: shows the errors, answers whether the values are valid. */
export async function validateInto(mizan: Mizan, form: FormDef, values: unknown, setErrors: SetErrors): Promise<boolean> {
  const r = await validateForm(mizan, form, values);
  setErrors(r.errors);
  return r.valid;
}

/** submitForm for an adapter: pending while it runs; the errors cleared on
    success, or the client's or the server's, in Django's shape. */
export function submitInto<R>(mizan: Mizan, form: FormDef, values: unknown, setPending: (on: boolean) => void,
                              setErrors: SetErrors): Promise<R> {
  return tracked(async () => {
    const r = await submitForm<R>(mizan, form, values);
    setErrors({});
    return r;
  }, setPending, (e) => { if (e instanceof MizanError) setErrors(e.fields); });
}
]==]
