// What real TF.js 4.22 computes, checks and saves for its merge layers (Add,
// Multiply, Average, Maximum, Minimum, Concatenate), printed as one JSON
// object: the expected values of tests/test_layers.cpp's MergeLayerTest,
// which were taken from this output. Run: node tests/node/merge_reference.js
//
// Each input is seq(shape, k): value i (in TF.js's row-major NHWC order) is
// ((i * k) % 13 - 6) / 4, exact in float32; the C++ test makes the same.
'use strict';

const {loadTf} = require('./tfjs_common');

async function main() {
  const tf = await loadTf();
  const seq = (shape, k) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return tf.tensor(Array.from({length: n}, (_, i) => (((i * k) % 13) - 6) / 4), shape);
  };
  const out = {};
  const run = (name, layer, inputs) => {
    const y = layer.apply(inputs);
    out[name] = {shape: y.shape, values: Array.from(y.dataSync())};
  };
  // Flat [N,n] inputs, three of them (Average: sum * float32(1/3)).
  const flat = [seq([2, 3], 5), seq([2, 3], 3), seq([2, 3], 7)];
  for (const cls of ['add', 'multiply', 'average', 'maximum', 'minimum']) {
    run(`${cls}_flat3`, tf.layers[cls](), flat);
  }
  // An image [h,w,c] with a [c] and a [w,c] input: TF.js's expandDims at
  // axis 1 (after the batch axis) until the ranks agree.
  const image = seq([2, 2, 2, 3], 5);
  run('add_image_channels', tf.layers.add(), [image, seq([2, 3], 3)]);
  run('multiply_channels_image', tf.layers.multiply(), [seq([2, 3], 3), image]);
  run('maximum_image_rows', tf.layers.maximum(), [image, seq([2, 2, 3], 7)]);
  // One rank, sizes of 1: [3,1] with [1,4].
  run('average_ones', tf.layers.average(), [seq([2, 3, 1], 5), seq([2, 1, 4], 3)]);
  // Images of one rank, a [h,w,1] with a [h,w,c].
  run('minimum_image_one_channel', tf.layers.minimum(), [seq([2, 2, 2, 1], 7), image]);
  // Concatenate along the channels (-1 and 3), rows (1), columns (2), and
  // flat inputs.
  run('concat_image_channels', tf.layers.concatenate(), [image, seq([2, 2, 2, 1], 3)]);
  run('concat_image_axis3', tf.layers.concatenate({axis: 3}), [image, seq([2, 2, 2, 1], 3)]);
  run('concat_image_rows', tf.layers.concatenate({axis: 1}), [image, seq([2, 1, 2, 3], 3)]);
  run('concat_image_columns', tf.layers.concatenate({axis: 2}), [image, seq([2, 2, 1, 3], 3)]);
  run('concat_flat', tf.layers.concatenate({axis: 1}), [seq([2, 3], 5), seq([2, 2], 3),
                                                        seq([2, 1], 7)]);
  // Maximum's and Minimum's gradients: where the operands are equal, all to
  // the first one (greaterEqual / lessEqual).
  const a = tf.tensor([1, 2, 3]);
  const b = tf.tensor([1, 0, 4]);
  out.maximum_gradient = tf.grads((x, y) => tf.maximum(x, y).sum())([a, b]).map(
      g => Array.from(g.dataSync()));
  out.minimum_gradient = tf.grads((x, y) => tf.minimum(x, y).sum())([a, b]).map(
      g => Array.from(g.dataSync()));
  // What TF.js saves (getConfig, in its key order).
  out.configs = {};
  for (const cls of ['add', 'multiply', 'average', 'maximum', 'minimum']) {
    out.configs[cls] = tf.layers[cls]({name: cls}).getConfig();
  }
  out.configs.concatenate = tf.layers.concatenate({name: 'c'}).getConfig();
  out.configs.concatenate_axis = tf.layers.concatenate({name: 'c', axis: 2}).getConfig();
  // What TF.js refuses, and what it computes differently from the shape it
  // declares (refused here).
  const sym = shape => tf.input({shape});
  const error = f => {
    try {
      const y = f();
      return {no_error: y.shape};
    } catch (e) {
      return e.message;
    }
  };
  out.errors = {
    add_one_input: error(() => tf.layers.add().apply([sym([3])])),
    add_mismatch: error(() => tf.layers.add().apply([sym([3, 4]), sym([3])])),
    concat_one_input: error(() => tf.layers.concatenate().apply([sym([3])])),
    concat_mismatch: error(() => tf.layers.concatenate().apply([sym([2, 3]), sym([3, 3])])),
    concat_ranks: error(() => tf.layers.concatenate().apply([sym([2, 3]), sym([3])])),
    no_subtract: typeof tf.layers.subtract,
  };
  out.quirks = {
    // Declared along the batch axis: the shape keeps null, the values stack.
    concat_axis0_declared: tf.layers.concatenate({axis: 0}).apply([sym([2, 3]), sym([2, 3])]).shape,
    concat_axis0_computed:
        tf.layers.concatenate({axis: 0}).apply([seq([1, 2, 3], 1), seq([1, 2, 3], 2)]).shape,
    // Any negative axis is the last one in the computation.
    concat_axis_minus2_declared:
        tf.layers.concatenate({axis: -2}).apply([sym([2, 3]), sym([2, 3])]).shape,
    concat_axis_minus2_computed:
        tf.layers.concatenate({axis: -2}).apply([seq([1, 2, 3], 1), seq([1, 2, 3], 2)]).shape,
    // An axis one past the last: a shape with an extra null, and the last axis.
    concat_axis_rank_declared:
        tf.layers.concatenate({axis: 3}).apply([sym([2, 3]), sym([2, 3])]).shape,
  };
  try {
    await tf.models.modelFromJSON({
      class_name: 'Sequential',
      config: {name: 's', layers: [{class_name: 'Subtract', config: {name: 'sub'}}]},
    });
    out.errors.subtract_load = 'loaded';
  } catch (e) {
    out.errors.subtract_load = e.message.split('.')[0];
  }
  console.log(JSON.stringify(out, null, 1));
}

main().catch(e => {
  console.error(e);
  process.exit(1);
});
