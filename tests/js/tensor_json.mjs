// Tensor <-> JSON conversion shared by the harness commands.
//
// JSON form of a tensor: {dtype, shape, values} with `values` flat, row-major:
//   float32/int32 -> numbers (float32 widened to the exact JS double)
//   bool          -> 0/1
//   string        -> UTF-8-decoded strings
//   complex64     -> interleaved [re0, im0, re1, im1, ...] (the on-disk order)
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

export function tensorFromJSON({dtype, shape, values}) {
  if (dtype === 'complex64') {
    const real = values.filter((_, i) => i % 2 === 0);
    const imag = values.filter((_, i) => i % 2 === 1);
    return tf.tidy(() => tf.complex(real, imag).reshape(shape));
  }
  return tf.tensor(values, shape, dtype);
}

/** Nested arrays for one tensor, or a list of them for a multi-output result. */
export function nestedArrays(result) {
  return Array.isArray(result) ? result.map((t) => t.arraySync()) : result.arraySync();
}
