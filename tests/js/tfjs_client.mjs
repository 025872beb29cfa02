#!/usr/bin/env node
// CLI that drives the real @tensorflow/tfjs IO code against a modelshelf server.
// Contract: stdout carries exactly one JSON line (Python json dialect, see
// py_json.mjs). {"ok": true, ...} with exit 0, or {"ok": false, "error": "..."}
// with exit 1. See README.md for the commands.
import {readFile, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {parseArgs} from 'node:util';
import * as tf from '@tensorflow/tfjs';

import {buildModel, fixedInputFor} from './models.mjs';
import {parsePyJSON, stringifyPyJSON} from './py_json.mjs';
import {
  flatValues, float32FromNested, layerWeightsToJSON, nestedArrays, tensorFromJSON, tensorToJSON,
} from './tensor_json.mjs';

// stdout is reserved for the result line; anything TF.js logs goes to stderr.
console.log = console.error;
console.info = console.error;

/** Parses repeated `--header 'Name: value'` options into a headers object. */
function parseHeaders(headerLines = []) {
  const headers = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`bad --header '${line}', expected 'Name: value'`);
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return headers;
}

/**
 * fetch options, leaving out what the caller did not set: TF.js merges them with
 * Object.assign({method: 'POST'}, requestInit), so an explicit `method: undefined`
 * would silently replace the POST default.
 */
function requestInitFrom({method, header}) {
  const init = {};
  if (method) init.method = method.toUpperCase();
  if (header && header.length > 0) init.headers = parseHeaders(header);
  return init;
}

function loadOptionsFrom(options) {
  const requestInit = requestInitFrom(options);
  return Object.keys(requestInit).length > 0 ? {requestInit} : {};
}

function parseSeed(text) {
  const seed = Number(text);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got '${text}'`);
  return seed;
}

/** TF.js never reads the save response body, so the harness does it for the tests. */
async function jsonBodyOrNull(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

async function optimizerWeightsToJSON(model) {
  if (!model.optimizer) return null;
  const namedTensors = await model.optimizer.getWeights();
  return Promise.all(
      namedTensors.map(async ({name, tensor}) => ({name, ...(await tensorToJSON(tensor))})));
}

async function layersModelReport(model, input) {
  return {
    predictions: nestedArrays(model.predict(input)),
    weights: await layerWeightsToJSON(model.weights),
    optimizerWeights: await optimizerWeightsToJSON(model),
  };
}

/**
 * On a non-2xx save TF.js throws with just the status in the message. The global
 * fetch is wrapped (TF.js would call it anyway) so the failure report can carry
 * the server's status and body too.
 */
async function saveRecordingResponse(model, url, requestInit, saveConfig) {
  let lastResponse = null;
  const fetchFunc = async (...args) => (lastResponse = await fetch(...args));
  try {
    return await model.save(tf.io.http(url, {requestInit, fetchFunc}), saveConfig);
  } catch (error) {
    if (lastResponse) {
      error.httpResponse = {status: lastResponse.status, body: await jsonBodyOrNull(lastResponse)};
    }
    throw error;
  }
}

async function saveLayers(options) {
  const {model, saveConfig} = await buildModel(options.model, parseSeed(options.seed));
  const requestInit = requestInitFrom(options);
  const result = await saveRecordingResponse(model, options.url, requestInit, saveConfig);
  const response = result.responses[0];
  return {
    modelArtifactsInfo: result.modelArtifactsInfo,
    status: response.status,
    body: await jsonBodyOrNull(response),
    ...(await layersModelReport(model, fixedInputFor(model.inputs[0].shape))),
  };
}

async function loadLayers(options) {
  // A plain URL string, as applications pass it, so TF.js's own routing is exercised.
  const model = await tf.loadLayersModel(options.url, loadOptionsFrom(options));
  const input = options.input ?
    float32FromNested(parsePyJSON(options.input)) :
    fixedInputFor(model.inputs[0].shape);
  return layersModelReport(model, input);
}

async function loadGraph(options) {
  const model = await tf.loadGraphModel(options.url, loadOptionsFrom(options));
  const report = await graphModelReport(model, options.input);
  const weights = {};
  for (const [name, tensors] of Object.entries(model.weights)) {
    weights[name] = await flatValues(tensors[0]);
  }
  return {...report, weights};
}

async function graphModelReport(model, input) {
  // executeAsync also handles graphs with control flow, which predict() refuses.
  const outputs = await model.executeAsync(float32FromNested(parsePyJSON(input)));
  return {outputNames: model.outputNodes, outputs: nestedArrays(outputs)};
}

/**
 * A converter output folder (model.json plus its weight files) as TF.js's own loaders
 * build the artifacts: one buffer per manifest path, in manifest order.
 */
async function artifactsFromFolder(folder) {
  const modelJSON = JSON.parse(await readFile(path.join(folder, 'model.json'), 'utf8'));
  return tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
    const specs = manifest.flatMap((group) => group.weights ?? []);
    const files = manifest.flatMap((group) => group.paths);
    const buffers = await Promise.all(files.map((file) => readArrayBuffer(path.join(folder, file))));
    return [specs, buffers];
  });
}

async function saveGraph(options) {
  const artifacts = await artifactsFromFolder(options.folder);
  const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  const requestInit = requestInitFrom(options);
  const result = await saveRecordingResponse(model, options.url, requestInit);
  const response = result.responses[0];
  return {
    modelArtifactsInfo: result.modelArtifactsInfo,
    status: response.status,
    body: await jsonBodyOrNull(response),
    ...(await graphModelReport(model, options.input)),
  };
}

/** Accepts a model.json, a weightsManifest (list of groups) or a flat spec list. */
function flatWeightSpecs(manifestJSON) {
  const groups = Array.isArray(manifestJSON) ? manifestJSON : manifestJSON.weightsManifest;
  if (!Array.isArray(groups)) throw new Error('manifest has no weightsManifest');
  const isGroupList = groups.every((group) => 'paths' in group || 'weights' in group);
  return isGroupList ? groups.flatMap((group) => group.weights ?? []) : groups;
}

/** A standalone ArrayBuffer: a small Node Buffer is a view into a shared pool. */
async function readArrayBuffer(path) {
  const bytes = await readFile(path);
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

async function decode(options) {
  const specs = flatWeightSpecs(JSON.parse(await readFile(options['manifest-json'], 'utf8')));
  // Several --weights files are decoded as a list, the way the HTTP loader hands
  // over shards, so its CompositeArrayBuffer behaviour is reproduced.
  const buffers = await Promise.all(options.weights.map(readArrayBuffer));
  const decoded = tf.io.decodeWeights(buffers.length === 1 ? buffers[0] : buffers, specs);
  const tensors = {};
  for (const spec of specs) tensors[spec.name] = await tensorToJSON(decoded[spec.name]);
  return {tensors};
}

/**
 * Accepts {name: {dtype, shape, values}} or [{name, dtype, shape, values}]. The
 * list form exists because JS objects put integer-like keys ("0", "12") first.
 */
function namedTensorsFromJSON(input) {
  const entries = Array.isArray(input) ? input.map((t) => [t.name, t]) : Object.entries(input);
  return entries.map(([name, json]) => ({name, tensor: tensorFromJSON(json)}));
}

async function encode(options) {
  const input = parsePyJSON(await readFile(options['tensors-json'], 'utf8'));
  const namedTensors = namedTensorsFromJSON(input);
  const {data, specs} = await tf.io.encodeWeights(namedTensors);
  await writeFile(options['out-weights'], Buffer.from(data));
  await writeFile(options['out-specs'], JSON.stringify(specs));
  return {specs, byteLength: data.byteLength};
}

const HEADER_OPTION = {header: {type: 'string', multiple: true}};

const COMMANDS = {
  'save-layers': {
    run: saveLayers,
    required: ['url'],
    options: {
      url: {type: 'string'},
      method: {type: 'string'},
      model: {type: 'string', default: 'dense'},
      seed: {type: 'string', default: '0'},
      ...HEADER_OPTION,
    },
  },
  'load-layers': {
    run: loadLayers,
    required: ['url'],
    options: {url: {type: 'string'}, input: {type: 'string'}, ...HEADER_OPTION},
  },
  'load-graph': {
    run: loadGraph,
    required: ['url', 'input'],
    options: {url: {type: 'string'}, input: {type: 'string'}, ...HEADER_OPTION},
  },
  'save-graph': {
    run: saveGraph,
    required: ['folder', 'url', 'input'],
    options: {
      folder: {type: 'string'},
      url: {type: 'string'},
      input: {type: 'string'},
      method: {type: 'string'},
      ...HEADER_OPTION,
    },
  },
  'decode': {
    run: decode,
    required: ['manifest-json', 'weights'],
    options: {'manifest-json': {type: 'string'}, 'weights': {type: 'string', multiple: true}},
  },
  'encode': {
    run: encode,
    required: ['tensors-json', 'out-weights', 'out-specs'],
    options: {
      'tensors-json': {type: 'string'},
      'out-weights': {type: 'string'},
      'out-specs': {type: 'string'},
    },
  },
};

function parseCommandLine(argv) {
  const [name, ...args] = argv;
  const command = COMMANDS[name];
  if (!command) {
    const known = Object.keys(COMMANDS).join(', ');
    throw new Error(`unknown command '${name ?? ''}', expected one of ${known}`);
  }
  const {values} = parseArgs({args, options: command.options, strict: true});
  const missing = command.required.filter((key) => values[key] === undefined);
  if (missing.length > 0) throw new Error(`${name}: missing --${missing.join(', --')}`);
  return {command, options: values};
}

async function main(argv) {
  const {command, options} = parseCommandLine(argv);
  // The webgl backend is registered too but cannot start in Node; pin the pure-JS one.
  if (!(await tf.setBackend('cpu'))) throw new Error('could not initialise the cpu backend');
  return command.run(options);
}

/** Node's fetch reports only "fetch failed"; the useful part (ECONNREFUSED, ...) is in `cause`. */
function describeError(error) {
  const message = error?.message ?? String(error);
  return error?.cause?.message ? `${message}: ${error.cause.message}` : message;
}

function emit(result, exitCode) {
  process.stdout.write(stringifyPyJSON(result) + '\n');
  process.exitCode = exitCode;
}

main(process.argv.slice(2)).then(
    (result) => emit({ok: true, ...result}, 0),
    (error) => emit({ok: false, error: describeError(error), ...error?.httpResponse}, 1));
