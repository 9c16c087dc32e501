// What real TF.js 4.22 computes along "the last axis" for tensors of rank 3
// (a Reshape's [rows, features]) and for an image's channels: the activation
// softmax and log_softmax, the Softmax layer, Dense (on a rank-3 input and on
// an image), BatchNormalization (inference and training, and the moving
// statistics it leaves), LayerNormalization and PReLU (shared_axes), printed
// as one JSON object: the expected values of tests/test_layers.cpp's
// AxisRuleTest, which were taken from this output.
// Run: node tests/node/axis_reference.js
//
// Inputs are seq(shape, k) as in merge_reference.js: value i (in TF.js's
// row-major order, NHWC for an image) is ((i * k) % 13 - 6) / 4.
'use strict';

const {loadTf} = require('./tfjs_common');

async function main() {
  const tf = await loadTf();
  const seq = (shape, k) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return tf.tensor(Array.from({length: n}, (_, i) => (((i * k) % 13) - 6) / 4), shape);
  };
  const out = {};
  const values = t => ({shape: t.shape, values: Array.from(t.dataSync())});
  // A layer built for x, given its weights, applied to x.
  const run = (layer, x, weights, kwargs = {}) => {
    layer.apply(x);
    if (weights) {
      layer.setWeights(weights.map(w => tf.tensor(w.values, w.shape)));
    }
    return values(layer.apply(x, kwargs));
  };
  const rows = seq([2, 2, 3], 5);         // [batch, rows, features]
  const image = seq([2, 2, 2, 3], 5);     // [batch, h, w, c]
  out.softmax_rank3 = run(tf.layers.activation({activation: 'softmax'}), rows);
  out.log_softmax_rank3 = run(tf.layers.activation({activation: 'logSoftmax'}), rows);
  out.softmax_layer_rank3 = run(tf.layers.softmax({axis: -1}), rows);
  const kernel = {shape: [3, 2], values: [0.5, -1, 0.25, 0.75, -0.5, 1.5]};  // [in, units]
  const bias = {shape: [2], values: [0.125, -0.25]};
  out.dense_rank3_softmax =
      run(tf.layers.dense({units: 2, activation: 'softmax'}), rows, [kernel, bias]);
  out.dense_image = run(tf.layers.dense({units: 2}), image, [kernel, bias]);
  const stats = [
    {shape: [3], values: [0.5, 1, 1.5]},     // gamma
    {shape: [3], values: [0.1, -0.2, 0.3]},  // beta
    {shape: [3], values: [0.25, -0.5, 0]},   // moving mean
    {shape: [3], values: [1, 2, 0.5]},       // moving variance
  ];
  out.batchnorm_rank3 = run(tf.layers.batchNormalization({}), rows, stats);
  const training = tf.layers.batchNormalization({momentum: 0.75});
  out.batchnorm_rank3_training = run(training, rows, stats, {training: true});
  out.batchnorm_rank3_moved = training.getWeights().slice(2).map(w => Array.from(w.dataSync()));
  out.layernorm_rank3 = run(tf.layers.layerNormalization({}), rows);
  out.prelu_rank3_shared = run(tf.layers.prelu({sharedAxes: [1]}), rows,
                               [{shape: [1, 3], values: [0.1, 0.2, 0.3]}]);
  console.log(JSON.stringify(out, null, 1));
}

main().catch(e => {
  console.error(e);
  process.exit(1);
});
