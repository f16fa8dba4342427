// Validate an OpenAPI document with real consumers:
//   1. @seriousme/openapi-schema-validator, against the official OAS 3.1 schema;
//   2. openapi-typescript, which must turn it into TypeScript;
//   3. tsc --strict, which must accept that TypeScript.
// usage: node spec/js/validate-openapi.mjs FILE.json   (exit 0 when valid)
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";

const file = process.argv[2];
const doc = JSON.parse(readFileSync(file, "utf8"));

const validator = new Validator();
const res = await validator.validate(doc);
if (!res.valid) {
  console.error("openapi-schema-validator:", JSON.stringify(res.errors, null, 2));
  process.exit(1);
}
if (validator.version !== "3.1") {
  console.error(`expected an OpenAPI 3.1 document, got ${validator.version}`);
  process.exit(1);
}

const out = join(mkdtempSync(join(tmpdir(), "mizan-oas-")), "api.d.ts");
writeFileSync(out, astToString(await openapiTS(doc)));
const program = ts.createProgram([out], { strict: true, noEmit: true, skipLibCheck: true });
const diags = ts.getPreEmitDiagnostics(program);
if (diags.length) {
  console.error(ts.formatDiagnostics(diags, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => ".", getNewLine: () => "\n" }));
  process.exit(1);
}
console.log(`valid OpenAPI ${validator.version}; openapi-typescript and tsc --strict accept it`);
