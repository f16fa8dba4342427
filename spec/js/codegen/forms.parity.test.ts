// Zod parity: every case of spec/forms_cases.json (the server's own test
// data, path in MIZAN_FORMS_CASES) through the generated client validation.
// Client and server must accept and reject the same inputs, with the same
// cleaned values and Django's same messages.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fieldSchema, djangoErrors, formSchema, type FieldSpec } from "./forms";

interface Case { input?: unknown; absent?: boolean; cleaned?: unknown; errors?: string[] }
interface Group { kind: FieldSpec["kind"]; options: Record<string, unknown>; cases: Case[] }

const data = JSON.parse(readFileSync(process.env.MIZAN_FORMS_CASES!, "utf8")) as { fields: Group[] };

// The field as the server exports it from these options.
function spec(g: Group): FieldSpec {
  const { required, choices, ...constraints } = g.options as { required?: boolean; choices?: Array<[string | number, string]> };
  const textual = ["char", "text", "email", "url"].includes(g.kind);
  return {
    name: "f", kind: g.kind, required: required !== false,
    constraints: textual ? { strip: true, ...constraints } : constraints,
    choices: choices?.map(([value, label]) => ({ value, label })),
  };
}

describe("generated Zod schemas agree with the server", () => {
  for (const g of data.fields) {
    it(`${g.kind} ${JSON.stringify(g.options)}`, () => {
      const schema = formSchema([spec(g)]);
      for (const c of g.cases) {
        const input = c.absent ? {} : { f: c.input };
        const r = schema.safeParse(input);
        const what = `${g.kind} ${JSON.stringify(g.options)} input ${c.absent ? "(absent)" : JSON.stringify(c.input)}`;
        if (c.errors) {
          expect(r.success, what).toBe(false);
          if (!r.success) expect(djangoErrors(r.error), what).toEqual({ f: c.errors });
        } else {
          expect(r.success ? r.data : djangoErrors(r.error), what).toEqual({ f: c.cleaned });
        }
      }
    });
  }

  it("a field schema alone cleans like its form", () => {
    expect(fieldSchema({ name: "n", kind: "integer", required: true, constraints: {} }).parse(" 7 ")).toBe(7);
  });
});
