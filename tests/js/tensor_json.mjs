// Tensor <-> JSON conversion shared by the harness commands.
//
// JSON form of a tensor: {dtype, shape, values} with `values` flat, row-major:
//   float32/int32 -> numbers (float32 widened to the exact JS double)
//   bool          -> 0/1
//   string        -> UTF-8-decoded strings
//   complex64     -> interleaved [re0, im0, re1, im1, ...] (the on-disk order)
// Non-finite floats and -0.0 survive via py_json.mjs.
import * as tf from '@tensorflow/tfjs';

/** Flat JSON-safe values; for complex64 the CPU backend already interleaves re/im. */
export async function flatValues(tensor) {
  return Array.from(await tensor.data());
}

export async function tensorToJSON(tensor) {
  return {dtype: tensor.dtype, shape: tensor.shape, values: await flatValues(tensor)};
}

/** LayerVariables report under `originalName`, the name written into weightSpecs. */
export async function layerWeightsToJSON(variables) {
  return Promise.all(variables.map(async (variable) => ({
    name: variable.originalName,
    ...(await tensorToJSON(variable.read())),
  })));
}

/** Number() also maps the 'NaN'/'Infinity'/'-Infinity' strings parsePyJSON produces. */
function toNumbers(nested) {
  return Array.isArray(nested) ? nested.map(toNumbers) : Number(nested);
}

export function tensorFromJSON({dtype, shape, values}) {
  if (dtype === 'string') return tf.tensor(values, shape, dtype);
  const numbers = toNumbers(values);
  if (dtype === 'complex64') {
    const real = numbers.filter((_, i) => i % 2 === 0);
    const imag = numbers.filter((_, i) => i % 2 === 1);
    return tf.tidy(() => tf.complex(real, imag).reshape(shape));
  }
  return tf.tensor(numbers, shape, dtype);
}

/** A float32 tensor from a nested JSON array such as [[1, 2, 3]]. */
export function float32FromNested(nested) {
  return tf.tensor(toNumbers(nested), undefined, 'float32');
}

/** Nested arrays for one tensor, or a list of them for a multi-output result. */
export function nestedArrays(result) {
  return Array.isArray(result) ? result.map((t) => t.arraySync()) : result.arraySync();
}
