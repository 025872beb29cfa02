// Generates TypeScript types from an OpenAPI document with openapi-typescript.
//   node generate.mjs OPENAPI_JSON OUT_D_TS
// Binary schemas (format: binary) become Blob, so multipart bodies and weight downloads are
// typed as what fetch sends and receives. Every problem the generator reports fails the run.
import { readFile, writeFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import ts from "typescript";
import openapiTS, { astToString } from "openapi-typescript";

const [source, out] = process.argv.slice(2);
if (!source || !out) {
  console.error("usage: node generate.mjs OPENAPI_JSON OUT_D_TS");
  process.exit(2);
}
const BLOB = ts.factory.createTypeReferenceNode(ts.factory.createIdentifier("Blob"));
const NULL = ts.factory.createLiteralTypeNode(ts.factory.createNull());

const document = JSON.parse(await readFile(source, "utf8"));
const ast = await openapiTS(document, {
  // A property with a default stays optional in request bodies (ModelArtifacts fields).
  defaultNonNullable: false,
  cwd: pathToFileURL(source),
  transform(schema) {
    if (schema.format === "binary") {
      return schema.nullable ? ts.factory.createUnionTypeNode([BLOB, NULL]) : BLOB;
    }
    return undefined;
  },
});
await writeFile(out, astToString(ast));
console.log(JSON.stringify({ ok: true, out }));
