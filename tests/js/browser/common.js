// Shared by the browser pages: a seeded model, a fixed input, and a prediction to compare.
const log = (line) => { document.getElementById('log').textContent += line + '\n'; };

function seededModel(seed) {
  const model = tf.sequential();
  model.add(tf.layers.dense({units: 3, inputShape: [4], activation: 'relu', name: 'd1'}));
  model.add(tf.layers.dense({units: 2, name: 'd2'}));
  let state = seed;
  const next = () => { state = (state * 1103515245 + 12345) % 2147483648; return state / 2147483648 - 0.5; };
  model.setWeights(model.getWeights().map((w) => tf.tensor(Array.from({length: w.size}, next), w.shape)));
  return model;
}

const input = () => tf.tensor2d([[0.1, -0.2, 0.3, 0.4], [1, 2, -3, 0.5]]);
const predict = (model) => Array.from(model.predict(input()).dataSync());
