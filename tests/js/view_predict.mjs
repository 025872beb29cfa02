#!/usr/bin/env node
// A layers model big enough that a 1 MiB reshard splits its kernel over several
// shards, saved and loaded by the real @tensorflow/tfjs; only predictions are
// reported (the 615k weights would make the JSON line tens of MB).
//
//   node view_predict.mjs save --url MODEL_URL --seed N
//     -> {"ok": true, predictions, inputs, info}
//   node view_predict.mjs load --url MODEL_JSON_URL --seed N
//     -> {"ok": true, predictions}
//
// The input batch is derived from --seed, so save and load predict on the same batch.
// Same output contract as tfjs_client.mjs: one JSON line (Python's dialect) on stdout.
import {parseArgs} from 'node:util';
import * as tf from '@tensorflow/tfjs';

import {seededRandom, setSeededWeights} from './models.mjs';
import {stringifyPyJSON} from './py_json.mjs';
import {nestedArrays} from './tensor_json.mjs';

console.log = console.error;
console.info = console.error;

const INPUTS = 1024;
const UNITS = 600;  // wide/kernel: 1024 x 600 float32 = 2.34 MiB
const HEAD = 8;
const BATCH = 3;

function wideModel() {
  return tf.sequential({layers: [
    tf.layers.dense({name: 'wide', inputShape: [INPUTS], units: UNITS, activation: 'relu'}),
    tf.layers.dense({name: 'head', units: HEAD}),
  ]});
}

function inputFor(seed) {
  const random = seededRandom(seed + 1000);
  return tf.tensor(Array.from({length: BATCH * INPUTS}, () => 2 * random() - 1), [BATCH, INPUTS]);
}

async function save({url, seed}) {
  const model = wideModel();
  setSeededWeights(model, Number(seed));
  const result = await model.save(tf.io.http(url));
  const status = result.responses[0].status;
  if (status !== 201) {
    throw new Error(`save answered ${status}: ${await result.responses[0].text()}`);
  }
  const input = inputFor(Number(seed));
  return {
    info: result.modelArtifactsInfo,
    inputs: input.arraySync(),
    predictions: nestedArrays(model.predict(input)),
  };
}

async function load({url, seed}) {
  const model = await tf.loadLayersModel(url);
  return {predictions: nestedArrays(model.predict(inputFor(Number(seed))))};
}

const COMMANDS = {save, load};

async function main([name, ...args]) {
  const command = COMMANDS[name];
  if (!command) throw new Error(`unknown command '${name ?? ''}', expected save or load`);
  const {values} = parseArgs({
    args, options: {url: {type: 'string'}, seed: {type: 'string', default: '0'}}, strict: true,
  });
  if (!values.url) throw new Error(`${name}: missing --url`);
  if (!(await tf.setBackend('cpu'))) throw new Error('could not initialise the cpu backend');
  return command(values);
}

main(process.argv.slice(2)).then(
    (result) => {
      process.stdout.write(stringifyPyJSON({ok: true, ...result}) + '\n');
    },
    (error) => {
      const cause = error?.cause?.message;
      const message = cause ? `${error.message}: ${cause}` : error?.message;
      process.stdout.write(stringifyPyJSON({ok: false, error: message ?? String(error)}) + '\n');
      process.exitCode = 1;
    });
