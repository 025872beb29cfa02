// A client generated from the live OpenAPI document, driven through every model operation.
//
//   node OUT/scenario.mjs INPUT_JSON
//
// tests/test_generated_clients.py generates the types (generate.mjs) from the server's own
// /openapi.json, maps the module "modelshelf-openapi" to them, compiles this file with tsc
// (a type error fails the test) and runs it. INPUT_JSON names the server and the models to
// save. The last line printed is one JSON object: {"ok": true, ...} or {"ok": false, "error"}.
//
// Against a server with MODELSHELF_AUTH=tokens, INPUT_JSON also carries a token (every
// request then sends it as 'Authorization: Bearer', from a middleware) and a read-only token.
// Before the scenario, the same save and list go out with no token (401) and with the
// read-only token (save 403, list 200); the statuses and error bodies seen are reported.
import { readFileSync } from "node:fs";
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "modelshelf-openapi";

type ModelArtifacts = components["schemas"]["ModelArtifacts"];
type ModelJSON = components["schemas"]["ModelJSON"];
type ErrorBody = components["schemas"]["ErrorBody"];
type ModelInfo = components["schemas"]["ModelInfo"];
type SaveResult = components["schemas"]["SaveResult"];

interface InputModel {
  modelJson: string; // model.json exactly as uploaded (UTF-8 text)
  weights: string; // all weight bytes, base64
}

interface Input {
  baseUrl: string;
  prefix: string; // a name prefix with '/' and a space: names travel percent-encoded
  models: { first: InputModel; second: InputModel; third: InputModel };
  token?: string; // tokens mode: may read, write and delete every model
  readOnlyToken?: string; // tokens mode: read:* only
}

const input = JSON.parse(readFileSync(process.argv[2] ?? "", "utf8")) as Input;

/** Sends the token on every request, as an application would configure its client. */
function bearerToken(token: string): Middleware {
  return {
    onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
  };
}

function clientWith(token: string | undefined) {
  const created = createClient<paths>({ baseUrl: input.baseUrl });
  if (token !== undefined) created.use(bearerToken(token));
  return created;
}

const client = clientWith(input.token);
const checks: string[] = [];

function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`check failed: ${what}`);
  checks.push(what);
}

function bytes(base64: string): Uint8Array {
  return new Uint8Array(Buffer.from(base64, "base64"));
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}

/** ModelArtifacts for the JSON save body, as TF.js's IO handlers hold them. */
function artifactsOf(model: InputModel): ModelArtifacts {
  const document = JSON.parse(model.modelJson) as ModelJSON;
  return {
    modelTopology: document.modelTopology ?? null,
    weightSpecs: (document.weightsManifest ?? []).flatMap((group) => group.weights ?? []),
    weightData: model.weights,
    format: document.format ?? null,
    generatedBy: document.generatedBy ?? null,
    convertedBy: document.convertedBy ?? null,
    userDefinedMetadata: document.userDefinedMetadata ?? null,
  };
}

/** The multipart body tf.io.http sends: model.json, then model.weights.bin. */
function filesOf(model: InputModel): { "model.json": Blob; "model.weights.bin": Blob } {
  return {
    "model.json": new Blob([model.modelJson], { type: "application/json" }),
    "model.weights.bin": new Blob([bytes(model.weights)], { type: "application/octet-stream" }),
  };
}

/** bodySerializer for multipart: each Blob becomes a part named by its field. */
function formData(body: object): FormData {
  const form = new FormData();
  for (const [field, value] of Object.entries(body)) {
    if (!(value instanceof Blob)) throw new Error(`multipart field ${field} is not a Blob`);
    form.append(field, value, field);
  }
  return form;
}

function fail(what: string, status: number, error: unknown): never {
  throw new Error(`${what}: HTTP ${status} ${JSON.stringify(error)}`);
}

/** What a refused (or, for comparison, an allowed) call looked like to the client. */
interface Answer {
  status: number;
  code: string | undefined;
  message: string | undefined;
  challenge: string | null;
}

function answer(response: Response, error: ErrorBody | undefined): Answer {
  return {
    status: response.status,
    code: error?.code,
    message: error?.message,
    challenge: response.headers.get("WWW-Authenticate"),
  };
}

/** Tokens mode: a save and a list with no token, then with the read-only token. */
async function refusals(name: string, model: InputModel): Promise<Record<string, Answer>> {
  const anonymous = clientWith(undefined);
  const readOnly = clientWith(input.readOnlyToken);
  const save = { params: { path: { store: "indexeddb", name } }, body: artifactsOf(model) };
  const list = { params: { path: { store: "indexeddb" }, query: { prefix: `${input.prefix}/` } } };
  const seen: Record<string, Answer> = {};

  const anonymousSave = await anonymous.POST("/v1/models/{store}/{name}", save);
  seen.anonymousSave = answer(anonymousSave.response, anonymousSave.error);
  check(anonymousSave.data === undefined, "saveModel without a token: no SaveResult");
  const anonymousList = await anonymous.GET("/v1/models/{store}", list);
  seen.anonymousList = answer(anonymousList.response, anonymousList.error);
  check(anonymousList.data === undefined, "listModels without a token: no ModelList");

  const readOnlySave = await readOnly.POST("/v1/models/{store}/{name}", save);
  seen.readOnlySave = answer(readOnlySave.response, readOnlySave.error);
  check(readOnlySave.data === undefined, "saveModel with a read-only token: no SaveResult");
  const readOnlyList = await readOnly.GET("/v1/models/{store}", list);
  if (!readOnlyList.data) fail("listModels (read-only)", readOnlyList.response.status, 0);
  check(Object.keys(readOnlyList.data).length === 0, "listModels with a read-only token: empty");
  seen.readOnlyList = answer(readOnlyList.response, undefined);
  return seen;
}

async function main(): Promise<Record<string, unknown>> {
  const { first, second, third } = input.models;
  const nameA = `${input.prefix}/a`;
  const nameB = `${input.prefix}/b`;
  const nameC = `${input.prefix}/c`;
  const refused = input.token === undefined ? null : await refusals(nameA, first);

  // 1. saveModel with the JSON body (ModelArtifacts, base64 weightData).
  const a = { params: { path: { store: "indexeddb", name: nameA } } };
  const jsonSave = await client.POST("/v1/models/{store}/{name}", {
    ...a,
    body: artifactsOf(first),
  });
  if (!jsonSave.data) fail("saveModel (JSON)", jsonSave.response.status, jsonSave.error);
  const savedA1: SaveResult = jsonSave.data;
  check(jsonSave.response.status === 201, "saveModel JSON answers 201");
  check(savedA1.modelUrl === `indexeddb://${nameA}`, "saveModel JSON modelUrl keeps '/' and ' '");
  check(
    savedA1.modelArtifactsInfo.weightDataBytes === bytes(first.weights).length,
    "saveModel JSON weightDataBytes",
  );

  // 2. saveModelPut with the multipart body: a second version of the same model.
  const multipartPut = await client.PUT("/v1/models/{store}/{name}", {
    ...a,
    body: filesOf(second),
    bodySerializer: formData,
  });
  if (!multipartPut.data) fail("saveModelPut", multipartPut.response.status, multipartPut.error);
  check(multipartPut.response.status === 201, "saveModelPut multipart answers 201");

  // 3. saveModel with the multipart body, into the file store.
  const b = { params: { path: { store: "file", name: nameB } } };
  const multipartPost = await client.POST("/v1/models/{store}/{name}", {
    ...b,
    body: filesOf(third),
    bodySerializer: formData,
  });
  if (!multipartPost.data) fail("saveModel", multipartPost.response.status, multipartPost.error);
  check(multipartPost.data.modelUrl === `file://${nameB}`, "saveModel multipart modelUrl");

  // 4. listModels: ModelArtifactsInfo by model URL.
  const listed = await client.GET("/v1/models/{store}", {
    params: { path: { store: "indexeddb" }, query: { prefix: `${input.prefix}/`, limit: 10 } },
  });
  if (!listed.data) fail("listModels", listed.response.status, listed.error);
  const listedA = listed.data[`indexeddb://${nameA}`];
  check(listedA !== undefined, "listModels lists the model");
  check(Object.keys(listed.data).length === 1, "listModels lists nothing else");
  check(
    listedA.weightDataBytes === bytes(second.weights).length,
    "listModels shows the current version",
  );

  // 5. copyModel across stores.
  const copied = await client.POST("/v1/copy", {
    body: { source: `file://${nameB}`, destination: `indexeddb://${nameC}` },
  });
  if (!copied.data) fail("copyModel", copied.response.status, copied.error);
  check(copied.data.url === `indexeddb://${nameC}`, "copyModel answers the destination's info");

  // 6. getModelInfo: two versions of A, oldest first.
  const infoA = await client.GET("/v1/models/{store}/{name}", a);
  if (!infoA.data) fail("getModelInfo", infoA.response.status, infoA.error);
  const modelA: ModelInfo = infoA.data;
  check(modelA.name === nameA && modelA.store === "indexeddb", "getModelInfo name and store");
  check(modelA.versions.length === 2, "getModelInfo lists both versions");
  check(modelA.versions[0]?.id === savedA1.versionId, "getModelInfo oldest version first");
  check(modelA.currentVersion === multipartPut.data.versionId, "getModelInfo current version");

  // 7. loadModelJson: published (weight paths under ~v/) and original (bytes as saved).
  const c = { store: "indexeddb", name: nameC };
  const published = await client.GET("/v1/models/{store}/{name}/model.json", {
    params: { path: c },
  });
  if (!published.data) fail("loadModelJson", published.response.status, published.error);
  const infoC = await client.GET("/v1/models/{store}/{name}", { params: { path: c } });
  if (!infoC.data) fail("getModelInfo (copy)", infoC.response.status, infoC.error);
  const versionC = infoC.data.currentVersion;
  const weightPath = published.data.weightsManifest?.[0]?.paths[0];
  check(weightPath === `~v/${versionC}/model.weights.bin`, "loadModelJson weight paths");
  const original = await client.GET("/v1/models/{store}/{name}/model.json", {
    params: { path: c, query: { original: true } },
    parseAs: "text",
  });
  if (original.data === undefined) fail("loadModelJson original", original.response.status, 0);
  check(original.data === third.modelJson, "loadModelJson original=true is the saved bytes");

  // 8. loadWeightFile: the bytes saved, for the copy and for each version of A.
  async function weights(
    path: { store: string; name: string },
    version: string,
    file: string,
  ): Promise<Uint8Array> {
    const loaded = await client.GET("/v1/models/{store}/{name}/~v/{version}/{path}", {
      params: { path: { ...path, version, path: file } },
      parseAs: "arrayBuffer",
    });
    if (!loaded.data) fail("loadWeightFile", loaded.response.status, loaded.error);
    return new Uint8Array(loaded.data);
  }
  const fileC = infoC.data.versions[0]?.files[0]?.path;
  check(fileC === "model.weights.bin", "getModelInfo weight file path");
  check(
    equalBytes(await weights(c, versionC, fileC), bytes(third.weights)),
    "loadWeightFile: the copy's weights are the bytes saved (multipart)",
  );
  const [a1, a2] = modelA.versions;
  check(a1 !== undefined && a2 !== undefined, "two versions");
  check(
    equalBytes(await weights(a.params.path, a1.id, a1.files[0]?.path ?? "?"), bytes(first.weights)),
    "loadWeightFile: the JSON save's weights are the bytes saved (base64 decoded)",
  );
  check(
    equalBytes(await weights(a.params.path, a2.id, a2.files[0]?.path ?? "?"), bytes(second.weights)),
    "loadWeightFile: the PUT save's weights are the bytes saved",
  );

  // 9. removeModel, then the documented 404 ErrorBody.
  const removed = await client.DELETE("/v1/models/{store}/{name}", a);
  if (!removed.data) fail("removeModel", removed.response.status, removed.error);
  check(removed.data.url === `indexeddb://${nameA}`, "removeModel answers the removed model");
  const gone = await client.GET("/v1/models/{store}/{name}", a);
  check(gone.response.status === 404 && gone.data === undefined, "getModelInfo after remove: 404");
  const error: ErrorBody | undefined = gone.error;
  check(error !== undefined, "the 404 has a body");
  check(error.code === "model_not_found", "ErrorBody.code is model_not_found");
  check(typeof error.message === "string" && error.message.length > 0, "ErrorBody.message");
  const missingWeights = await client.GET("/v1/models/{store}/{name}/~v/{version}/{path}", {
    params: { path: { ...c, version: versionC, path: "nope.bin" } },
  });
  check(missingWeights.response.status === 404, "loadWeightFile unknown file: 404");
  check(missingWeights.error?.code === "weight_file_not_found", "weight_file_not_found code");

  await client.DELETE("/v1/models/{store}/{name}", b);
  await client.DELETE("/v1/models/{store}/{name}", { params: { path: c } });
  return {
    names: { a: modelA.name, b: multipartPost.data.modelUrl, c: copied.data.url },
    versions: modelA.versions.map((version) => version.id),
    error,
    refused,
  };
}

try {
  const result = await main();
  console.log(JSON.stringify({ ok: true, checks, ...result }));
} catch (error) {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  console.log(JSON.stringify({ ok: false, checks, error: message }));
  process.exitCode = 1;
}
