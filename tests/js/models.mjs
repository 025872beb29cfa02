// Deterministic layers models and inputs for the harness.
//
// Weights never come from tf's initializers: they are overwritten from a seeded
// PRNG, so two processes with the same --seed save byte-identical weights.
import * as tf from '@tensorflow/tfjs';

export const MODEL_KINDS = ['dense', 'multi', 'optimizer', 'noweights'];

// Batch size of every fixed input; >1 so a batch-handling bug shows up.
const FIXED_BATCH = 2;

/** mulberry32: tiny, well-mixed 32-bit PRNG returning floats in [0, 1). */
export function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The fixed input batch for a model input shape such as [null, 2, 4]:
 * FIXED_BATCH rows, element i of the flat batch is i*0.1-0.3. Derived from the
 * shape alone, so save-layers and load-layers feed the same values.
 */
export function fixedInputFor(inputShape) {
  const shape = [FIXED_BATCH, ...inputShape.slice(1)];
  const size = shape.reduce((a, b) => a * b, 1);
  const values = Array.from({length: size}, (_, i) => i * 0.1 - 0.3);
  return tf.tensor(values, shape, 'float32');
}

/** Values for one weight; BatchNorm variances must stay positive or predict gives NaN. */
function weightValues(weight, random) {
  const size = weight.shape.reduce((a, b) => a * b, 1);
  const isVariance = weight.originalName.endsWith('moving_variance');
  const isIntish = weight.originalName.startsWith('intish/');
  return Array.from({length: size}, () => {
    const u = random();
    if (isVariance) return 0.5 + u;
    if (isIntish) return Math.floor(u * 7) - 3;  // whole numbers in [-3, 3]
    return u - 0.5;
  });
}

export function setSeededWeights(model, seed) {
  const random = seededRandom(seed);
  const tensors = model.weights.map(
      (w) => tf.tensor(weightValues(w, random), w.shape, w.dtype));
  model.setWeights(tensors);
  tf.dispose(tensors);
}

function denseModel() {
  return tf.sequential({layers: [
    tf.layers.dense({name: 'd1', inputShape: [4], units: 3, activation: 'relu'}),
    tf.layers.dense({name: 'd2', units: 2}),
  ]});
}

// A few KB of weights: a bias-free kernel, BatchNorm (non-trainable weights)
// and a layer whose float32 weights are whole numbers.
function multiModel() {
  return tf.sequential({layers: [
    tf.layers.flatten({name: 'flat', inputShape: [2, 4]}),
    tf.layers.dense({name: 'nobias', units: 32, activation: 'relu', useBias: false}),
    tf.layers.batchNormalization({name: 'bn'}),
    tf.layers.dense({name: 'intish', units: 16}),
    tf.layers.dense({name: 'head', units: 4, activation: 'softmax'}),
  ]});
}

function optimizerModel() {
  return tf.sequential({layers: [
    tf.layers.dense({name: 'o1', inputShape: [3], units: 4, activation: 'relu'}),
    tf.layers.dense({name: 'o2', units: 1}),
  ]});
}

// Weightless, so the save sends a 0-byte model.weights.bin part.
function noWeightsModel() {
  return tf.sequential({layers: [
    tf.layers.flatten({name: 'flat', inputShape: [2, 2]}),
    tf.layers.activation({name: 'act', activation: 'tanh'}),
  ]});
}

const BUILDERS = {
  dense: denseModel,
  multi: multiModel,
  optimizer: optimizerModel,
  noweights: noWeightsModel,
};

/** One deterministic Adam step so the optimizer has non-trivial state to save. */
async function trainOneEpoch(model, seed) {
  model.compile({optimizer: tf.train.adam(0.01), loss: 'meanSquaredError'});
  const random = seededRandom(seed + 1);
  const xs = tf.tensor(Array.from({length: 8 * 3}, () => random() - 0.5), [8, 3]);
  const ys = tf.tensor(Array.from({length: 8}, () => random()), [8, 1]);
  // shuffle off: shuffling uses Math.random and would break determinism.
  await model.fit(xs, ys, {epochs: 1, batchSize: 8, shuffle: false, verbose: 0});
  tf.dispose([xs, ys]);
}

/** Returns {model, saveConfig} for one of MODEL_KINDS. */
export async function buildModel(kind, seed) {
  const builder = BUILDERS[kind];
  if (!builder) {
    throw new Error(`unknown --model '${kind}' (expected one of ${MODEL_KINDS.join(', ')})`);
  }
  const model = builder();
  setSeededWeights(model, seed);
  if (kind === 'optimizer') {
    await trainOneEpoch(model, seed);
    return {model, saveConfig: {includeOptimizer: true}};
  }
  return {model, saveConfig: {}};
}
