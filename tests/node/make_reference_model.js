#!/usr/bin/env node
// Build the mnist-node convnet in real TF.js (random Glorot-normal weights, no
// training), save it as tfjs-node's model.save('file://OUTDIR') would, and write
// its predictions for the first N test images. Useful as a reference for
// tfjs_check.js and for testing mnist-train's loader on a model made by TF.js.
'use strict';

const fs = require('fs');
const path = require('path');
const {loadTf} = require('./tfjs_common');

const USAGE = `Usage: node make_reference_model.js OUTDIR [--images FILE] [--count N] [--layout single|shards|groups]

Writes into OUTDIR:
  model.json     TF.js Layers format (same structure tfjs-node's file:// saver writes)
  weights.bin    all weights, float32 little-endian (layout "single", the default)
  probs.bin      predictions for the first N images: N*10 float32 little-endian
  info.json      {count, params, images, layout, weightFiles}
  inputs.bin     (mobilenet-v1, mobilenet-v2) the N input images, NHWC
                 float32 little-endian
  summary.txt    model.summary() as TF.js prints it

  --images FILE  IDX images (default: $MNIST_DATA_DIR or <repo>/data/mnist,
                 file t10k-images-idx3-ubyte)
  --count N      images to predict (default 100)
  --arch A       mnist-node (default): the enhanced convnet of mnist-node;
                 small-convnet: the chapter's browser convnet (conv 16, pool,
                   conv 32, pool, conv 32, flatten, dense 64, dense 10);
                 dense: flatten, dense 42 relu, dense 10 softmax;
                 mixed: same padding, strides, average pooling and
                   Activation layers (coverage for the C++ loader);
                 global-avg, global-max: conv 8 (trainable: false), max
                   pool, conv 16, GlobalAveragePooling2D or
                   GlobalMaxPooling2D, dense 10 softmax;
                 batchnorm: conv 8 without bias, BatchNormalization, relu,
                   max pool, conv 16 without bias, BatchNormalization
                   (momentum 0.9), relu, flatten, dense 32 relu without
                   bias, BatchNormalization, dense 10 softmax;
                 regularized: conv 8 (trainable: false, kernel L2 0.01, bias
                   L1 0.01), max pool, BatchNormalization (gamma L2 0.005,
                   beta L1 0.001), flatten, dense 10 softmax (kernel L1L2
                   0.001 / 0.01);
                 separable: DepthwiseConv2D (depth multiplier 4, same,
                   strides 2, relu), SeparableConv2D (8 filters, depth
                   multiplier 2, relu; depthwise L2 0.01, pointwise L1
                   0.001 and bias L1 0.01 regularizers), DepthwiseConv2D
                   [2,3] (trainable: false), max pool, flatten, dense 10
                   softmax;
                 activations: every activation string TF.js 4.22 loads
                   again (elu, hard_sigmoid, linear, relu, relu6, selu,
                   sigmoid, softmax, softplus, softsign, tanh, swish, mish,
                   gelu, log_softmax; not gelu_new, which it saves but
                   cannot load) on 1x1 Conv2Ds of 4 filters, an Activation
                   layer and a Dense; ReLU (maxValue 6, and none),
                   LeakyReLU (alpha 0.2), PReLU (constant 0.25, sharedAxes
                   [1,2]; and one with its zeros default, on the Dense),
                   ELU (alpha 1: TF.js refuses others), Softmax (axis -1),
                   max pool, flatten, dense 12 tanh, PReLU, dense 10 softmax;
                 reshaping: conv 3 (strides 2), ZeroPadding2D [[1,2],[0,1]],
                   conv 4, Cropping2D [[1,0],[2,1]], UpSampling2D [2,1]
                   (nearest), conv 4 (strides 2), Reshape [48,4] (a -1
                   there TF.js's summary prints as null), Permute [2,1],
                   Reshape [8,6,4], Permute
                   [2,1,3], Rescaling (scale 0.5, offset 0.1), conv 4,
                   flatten, dense 10 softmax;
                 transpose: conv 4 (strides 2), Conv2DTranspose 3 (3x3,
                   strides 2, valid), LayerNormalization (axis -1), conv 4
                   (strides 3), Conv2DTranspose 2 (3x3, strides 2, same),
                   Conv2DTranspose 2 (1x1, strides 2, valid: a kernel
                   smaller than its stride), LayerNormalization (axes
                   [1,2,3]), max pool 4, flatten, dense 10 softmax;
                 these eight seeded, and trained by model.fit 2 epochs on
                   the first 64 test images (batches of 16, in order);
                   global-max saved with includeOptimizer (RMSprop's
                   weights in the manifest), regularized too (compiled with
                   adam: Adam's).
                 functional: a tf.model (input "image"): conv 4 (strides 2),
                   two branches (1x1 and 3x3 convs) through one tanh
                   Activation called at two nodes, merged by Add,
                   Multiply (three inputs), Average, Maximum and Minimum
                   (TF.js 4.22 has no Subtract), Concatenate on the channels (with the stem)
                   and on the rows, a nested Sequential with its own input
                   shape (max pool, conv 6, flatten), dense 10 softmax;
                   trained as the eight above;
                 mixed-functional: a tf.model (input "pixels"): conv 4
                   (strides 2, relu), UpSampling2D [2,2] bilinear,
                   Cropping2D [[1,2],[3,0]], LeakyReLU (alpha 0.1),
                   ThresholdedReLU (theta 0.05), AveragePooling2D 3
                   (strides 2, valid), GlobalMaxPooling2D into a dense 4
                   sigmoid that gates the pooled image (Multiply of a
                   [11,11,4] and a [4] input: TF.js's axes of size 1),
                   a Dense 4 on that image (along its channels),
                   Concatenate on the columns, Reshape [242,4],
                   BatchNormalization of that rank-3 tensor (seeded
                   statistics), and on the rank-3 tensor along its last
                   axis: Dense 6, PReLU shared over the rows (seeded
                   alpha), LayerNormalization, a softmax Activation, and a
                   Softmax layer (axis -1) of the Dense's output,
                   Concatenate on the last axis (-1); flatten, dense 10
                   softmax; not trained (the ONNX export's other paths:
                   onnx.mixed-functional; our forward pass:
                   tfjs_model.mixed-functional.predicts_like_tfjs);
                 dilated: Conv2D dilation_rate 2, Conv2D [3,2] dilation
                   [2,3] same, SeparableConv2D dilation 2 same, max pool,
                   Conv2D dilation 3, flatten, dense 10 softmax (not
                   trained: TF.js 4.22 has no gradient for dilation > 1).
                 mobilenet-v1: Keras applications' MobileNet (v1), alpha 0.25,
                   include_top=False, at input 96x96x3 (conv1, conv1_bn,
                   conv1_relu, then the 13 blocks conv_pad_N / conv_dw_N /
                   conv_dw_N_bn / conv_dw_N_relu / conv_pw_N / conv_pw_N_bn /
                   conv_pw_N_relu), and a fine-tuning head:
                   global_average_pooling2d, dropout (0.2), dense (10
                   softmax); a tf.sequential, with Keras's layer names;
                 mobilenet-v2: Keras applications' MobileNetV2, alpha 0.35,
                   include_top=False, at 96x96x3 (Conv1 ... out_relu, with
                   the block_N_add residuals), and the same head: a
                   functional tf.model;
                 these two are not trained; their weights are seeded and
                   their BatchNormalization moving statistics set from the
                   statistics of their inputs (moved by seeded noise). They
                   take --count seeded random images of 96x96x3 (uniform in
                   a random sub-range of [0,1] per image and channel)
                   instead of MNIST's: OUTDIR/inputs.bin (float32 LE, NHWC),
                   and info.json's "inputShape" and "freeze": TF.js's
                   parameter counts after freezing every layer up to a layer
                   (trainable = false) and a new Dense head of 5 units;
                   summary.txt is the model tf.loadLayersModel reads back.
                 Biases get random values too, so bias layout bugs show.
  --layout L     single: one group, paths ["weights.bin"] (what model.save writes)
                 shards: one group, weights split over 3 files at arbitrary
                         byte boundaries (group1-shard1of3.bin ...), like tfjs tools
                 groups: one group per layer, each with its own file`;

function fail(msg, code = 2) {
  console.error(`make_reference_model: ${msg}`);
  process.exit(code);
}

const ARCHS = ['mnist-node', 'small-convnet', 'dense', 'mixed', 'global-avg', 'global-max',
               'batchnorm', 'regularized', 'separable', 'dilated', 'activations', 'reshaping',
               'transpose', 'functional', 'mixed-functional', 'mobilenet-v1', 'mobilenet-v2'];
// Built and then trained a little by TF.js (model.fit), not only initialised.
const FITTED = ['global-avg', 'global-max', 'batchnorm', 'regularized', 'separable',
                'activations', 'reshaping', 'transpose', 'functional'];
// Saved with model.save(..., {includeOptimizer: true}): the optimizer's
// weights ("group": "optimizer", an int32 "iter" among them) follow the model's.
const WITH_OPTIMIZER = ['global-max', 'regularized'];
// Models of 96x96 RGB images (not MNIST): seeded random inputs.
const RAW_INPUT = {'mobilenet-v1': [96, 96, 3], 'mobilenet-v2': [96, 96, 3]};
// Where info.json's "freeze" counts TF.js's parameters: every layer up to
// this one frozen, and a new head of 5 units.
const FREEZE_POINTS = {
  'mobilenet-v1': ['conv_pw_13_relu', 'conv_pw_11_relu'],
  'mobilenet-v2': ['out_relu', 'block_15_add'],
};
const FREEZE_HEAD_UNITS = 5;

function parseArgs(argv) {
  const o = {count: 100, layout: 'single', arch: 'mnist-node'};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') { console.log(USAGE); process.exit(0); }
    if (a === '--images' || a === '--count' || a === '--layout' || a === '--arch') {
      if (i + 1 >= argv.length) fail(`${a} needs a value`);
      o[a.slice(2)] = argv[++i];
    } else if (a.startsWith('-')) {
      fail(`unknown option ${a}\n${USAGE}`);
    } else if (o.outDir === undefined) {
      o.outDir = a;
    } else {
      fail(`unexpected argument ${a}\n${USAGE}`);
    }
  }
  if (!o.outDir) fail(`OUTDIR is required\n${USAGE}`);
  o.count = Number(o.count);
  if (!Number.isInteger(o.count) || o.count <= 0) fail('--count must be a positive integer');
  if (!['single', 'shards', 'groups'].includes(o.layout)) fail(`bad --layout ${o.layout}`);
  if (!ARCHS.includes(o.arch)) fail(`bad --arch ${o.arch}`);
  if (!o.images) {
    const dataDir = process.env.MNIST_DATA_DIR || path.join(__dirname, '..', '..', 'data', 'mnist');
    o.images = path.join(dataDir, 't10k-images-idx3-ubyte');
  }
  return o;
}

function readImages(file, n) {
  let buf;
  try { buf = fs.readFileSync(file); } catch (e) { fail(`cannot read ${file}: ${e.code || e.message}`); }
  if (buf.length < 16 || buf.readUInt32BE(0) !== 2051 || buf.readUInt32BE(8) !== 28 || buf.readUInt32BE(12) !== 28) {
    fail(`${file} is not a raw 28x28 IDX images file`);
  }
  const count = buf.readUInt32BE(4);
  if (buf.length !== 16 + count * 784) fail(`${file}: size does not match its header`);
  if (n > count) fail(`--count ${n} exceeds the ${count} images in ${file}`);
  const px = new Float32Array(n * 784);
  for (let i = 0; i < px.length; i++) px[i] = buf[16 + i] / 255;
  return px;
}



// The "enhanced" convnet of tfjs-examples/mnist-node (model.js).
// `pixels`: the inputs a model of RAW_INPUT is seeded for.
function buildModel(tf, arch, pixels) {
  if (arch === 'mobilenet-v1') return seedMobileNet(tf, mobileNetV1(tf), pixels);
  if (arch === 'mobilenet-v2') return seedMobileNet(tf, mobileNetV2(tf), pixels);
  if (arch === 'mixed-functional') {
    const L = tf.layers;
    const input = tf.input({shape: [28, 28, 1], name: 'pixels'});
    const c1 = L.conv2d({filters: 4, kernelSize: 3, strides: 2, activation: 'relu', name: 'c1'}).apply(input);
    const up = L.upSampling2d({size: [2, 2], interpolation: 'bilinear', name: 'up'}).apply(c1);  // [26,26,4]
    const crop = L.cropping2D({cropping: [[1, 2], [3, 0]], name: 'crop'}).apply(up);            // [23,23,4]
    const leaky = L.leakyReLU({alpha: 0.1, name: 'leaky'}).apply(crop);
    const thr = L.thresholdedReLU({theta: 0.05, name: 'thr'}).apply(leaky);
    const avg = L.averagePooling2d({poolSize: 3, strides: 2, padding: 'valid', name: 'avg'}).apply(thr);  // [11,11,4]
    const gate = L.dense({units: 4, activation: 'sigmoid', name: 'gate'})
                     .apply(L.globalMaxPooling2d({name: 'gmax'}).apply(avg));
    const gated = L.multiply({name: 'mul'}).apply([avg, gate]);
    // Dense on an image: along its channels (TF.js's last axis).
    const mixed = L.dense({units: 4, name: 'pixel_dense'}).apply(gated);                       // [11,11,4]
    const cat = L.concatenate({axis: 2, name: 'cat_cols'}).apply([mixed, avg]);                 // [11,22,4]
    const rows = L.reshape({targetShape: [242, 4], name: 'rs'}).apply(cat);
    const bn = L.batchNormalization({name: 'bn3'});
    const normed = bn.apply(rows);
    // Layers on a rank-3 tensor, each along its last axis: Dense, PReLU
    // shared over the rows, LayerNormalization, the softmax activation and
    // the Softmax layer, joined on the last axis.
    const perRow = L.dense({units: 6, name: 'row_dense'}).apply(normed);                       // [242,6]
    const prelu = L.prelu({sharedAxes: [1], name: 'row_prelu'});
    const rectified = prelu.apply(perRow);
    const ln = L.layerNormalization({name: 'row_ln'}).apply(rectified);
    const sm = L.activation({activation: 'softmax', name: 'row_softmax'}).apply(ln);
    const smLayer = L.softmax({axis: -1, name: 'row_softmax_layer'}).apply(perRow);
    const joined = L.concatenate({axis: -1, name: 'row_cat'}).apply([sm, smLayer]);          // [242,12]
    const output = L.dense({units: 10, activation: 'softmax', name: 'head'})
                       .apply(L.flatten({name: 'fl'}).apply(joined));
    const model = tf.model({inputs: input, outputs: output, name: 'mixed_functional'});
    bn.setWeights([tf.randomUniform([4], 0.5, 1.5, 'float32', 1), tf.randomNormal([4], 0, 0.3, 'float32', 2),
                   tf.randomNormal([4], 0, 0.3, 'float32', 3), tf.randomUniform([4], 0.2, 2, 'float32', 4)]);
    prelu.setWeights([tf.randomUniform([1, 6], 0.05, 0.5, 'float32', 5)]);
    return randomBiases(tf, model);
  }
  if (arch === 'functional') {
    // tf.model: two branches merged by each merge layer, a layer called at
    // two nodes, and a nested Sequential that declares its own input (TF.js
    // then counts its call in this model as its node 1).
    const init = (seed, scale) => tf.initializers.varianceScaling({scale, mode: 'fanAvg', distribution: 'uniform', seed});
    const input = tf.input({shape: [28, 28, 1], name: 'image'});
    const c1 = tf.layers.conv2d({kernelSize: 3, filters: 4, strides: 2, activation: 'relu', name: 'stem',
                                 kernelInitializer: init(3, 9)}).apply(input);              // [13,13,4]
    const a = tf.layers.conv2d({kernelSize: 1, filters: 4, padding: 'same', name: 'branch_a',
                                kernelInitializer: init(5, 2)}).apply(c1);
    const b = tf.layers.conv2d({kernelSize: 3, filters: 4, padding: 'same', name: 'branch_b',
                                kernelInitializer: init(7, 1)}).apply(c1);
    const shared = tf.layers.activation({activation: 'tanh', name: 'shared_tanh'});
    const ta = shared.apply(a);                                                              // node 0
    const tb = shared.apply(b);                                                              // node 1
    const merged = [
      tf.layers.add({name: 'add'}).apply([ta, tb]),
      tf.layers.multiply({name: 'multiply'}).apply([ta, tb, c1]),
      tf.layers.average({name: 'average'}).apply([ta, tb]),
      tf.layers.maximum({name: 'maximum'}).apply([ta, tb]),
      tf.layers.minimum({name: 'minimum'}).apply([ta, tb]),
    ];
    const cat = tf.layers.concatenate({axis: -1, name: 'concat'}).apply([...merged, c1]);  // [13,13,24]
    const rows = tf.layers.concatenate({axis: 1, name: 'concat_rows'}).apply([cat, cat]); // [26,13,24]
    const nested = tf.sequential({name: 'nested', layers: [
      tf.layers.maxPooling2d({inputShape: [26, 13, 24], poolSize: 2, name: 'nested_pool'}),
      tf.layers.conv2d({kernelSize: 3, filters: 6, activation: 'relu', name: 'nested_conv',
                        kernelInitializer: init(11, 3)}),
      tf.layers.flatten({name: 'nested_flatten'}),
    ]});
    const features = nested.apply(rows);
    const output = tf.layers.dense({units: 10, activation: 'softmax', name: 'head',
                                    kernelInitializer: init(13, 4)}).apply(features);
    return randomBiases(tf, tf.model({inputs: input, outputs: output, name: 'functional'}));
  }
  const model = tf.sequential();
  if (arch === 'small-convnet') {
    model.add(tf.layers.conv2d({inputShape: [28, 28, 1], kernelSize: 3, filters: 16, activation: 'relu'}));
    model.add(tf.layers.maxPooling2d({poolSize: 2, strides: 2}));
    model.add(tf.layers.conv2d({kernelSize: 3, filters: 32, activation: 'relu'}));
    model.add(tf.layers.maxPooling2d({poolSize: 2, strides: 2}));
    model.add(tf.layers.conv2d({kernelSize: 3, filters: 32, activation: 'relu'}));
    model.add(tf.layers.flatten());
    model.add(tf.layers.dense({units: 64, activation: 'relu'}));
    model.add(tf.layers.dense({units: 10, activation: 'softmax'}));
    return randomBiases(tf, model);
  }
  if (arch === 'dense') {
    model.add(tf.layers.flatten({inputShape: [28, 28, 1]}));
    model.add(tf.layers.dense({units: 42, activation: 'relu'}));
    model.add(tf.layers.dense({units: 10, activation: 'softmax'}));
    return randomBiases(tf, model);
  }
  if (arch === 'batchnorm') {
    // No weight right before a BatchNormalization that would cancel it (a
    // bias, or a beta carried there through linear layers): its gradient
    // would be rounding noise, which RMSprop and Adam scale up to full steps.
    const init = (seed) => tf.initializers.glorotUniform({seed});
    model.add(tf.layers.conv2d({inputShape: [28, 28, 1], kernelSize: 3, filters: 8, useBias: false,
                                kernelInitializer: init(1)}));
    model.add(tf.layers.batchNormalization({}));
    model.add(tf.layers.activation({activation: 'relu'}));
    model.add(tf.layers.maxPooling2d({poolSize: 2}));
    model.add(tf.layers.conv2d({kernelSize: 3, filters: 16, useBias: false, kernelInitializer: init(2)}));
    model.add(tf.layers.batchNormalization({momentum: 0.9}));
    model.add(tf.layers.activation({activation: 'relu'}));
    model.add(tf.layers.flatten());
    model.add(tf.layers.dense({units: 32, activation: 'relu', useBias: false, kernelInitializer: init(3)}));
    model.add(tf.layers.batchNormalization({}));
    model.add(tf.layers.dense({units: 10, activation: 'softmax', kernelInitializer: init(4)}));
    return randomBiases(tf, model);
  }
  if (arch === 'regularized') {
    // Every kind of L1L2 penalty TF.js's fit adds to the loss: l1, l2 and both,
    // on kernels, biases, gamma and beta, and on a frozen layer (whose
    // penalty is in the loss but moves nothing).
    const init = (seed) => tf.initializers.glorotUniform({seed});
    const r = tf.regularizers;
    model.add(tf.layers.conv2d({inputShape: [28, 28, 1], kernelSize: 3, filters: 8, activation: 'relu',
                                trainable: false, kernelInitializer: init(1),
                                kernelRegularizer: r.l2({l2: 0.01}), biasRegularizer: r.l1({l1: 0.01})}));
    model.add(tf.layers.maxPooling2d({poolSize: 2}));
    model.add(tf.layers.batchNormalization({gammaRegularizer: r.l2({l2: 0.005}),
                                            betaRegularizer: r.l1({l1: 0.001})}));
    model.add(tf.layers.flatten());
    model.add(tf.layers.dense({units: 10, activation: 'softmax', kernelInitializer: init(2),
                               kernelRegularizer: r.l1l2({l1: 0.001, l2: 0.01})}));
    return randomBiases(tf, model, 'adam');
  }
  if (arch === 'separable') {
    // Every axis of the depthwise kernel [kh,kw,in,multiplier] differs, and
    // TF.js saves a SeparableConv2D without its depth_multiplier (2 here).
    const init = (seed) => tf.initializers.glorotUniform({seed});
    const r = tf.regularizers;
    model.add(tf.layers.depthwiseConv2d({inputShape: [28, 28, 1], kernelSize: 3, depthMultiplier: 4,
                                         padding: 'same', strides: 2, activation: 'relu',
                                         depthwiseInitializer: init(1)}));
    model.add(tf.layers.separableConv2d({kernelSize: 3, filters: 8, depthMultiplier: 2,
                                         activation: 'relu', depthwiseInitializer: init(2),
                                         pointwiseInitializer: init(3),
                                         depthwiseRegularizer: r.l2({l2: 0.01}),
                                         pointwiseRegularizer: r.l1({l1: 0.001}),
                                         biasRegularizer: r.l1({l1: 0.01})}));
    model.add(tf.layers.depthwiseConv2d({kernelSize: [2, 3], trainable: false,
                                         depthwiseInitializer: init(4)}));
    model.add(tf.layers.maxPooling2d({poolSize: 2}));
    model.add(tf.layers.flatten());
    model.add(tf.layers.dense({units: 10, activation: 'softmax', kernelInitializer: init(5)}));
    return randomBiases(tf, model);
  }
  if (arch === 'activations') {
    // Every activation string TF.js 4.22's deserializer accepts (gelu_new is
    // written but cannot be loaded again: its saved name comes back as
    // "geluNew"), on 1x1 convolutions of 4 filters, on a Dense and in an
    // Activation layer; and the advanced-activation layers. ELU keeps its
    // alpha of 1 (TF.js refuses any other); ReLU has only maxValue.
    // Each kernel's seed and scale are picked so that its pre-activations
    // spread over both sides of each activation's kinks (and past 6 before
    // the ReLU of maxValue 6), and no layer loses the input: the probabilities
    // depend on the image through every layer.
    const init = (seed, scale) => tf.initializers.varianceScaling({scale, mode: 'fanAvg', distribution: 'uniform', seed});
    const conv = (seed, scale, activation, extra = {}) =>
      model.add(tf.layers.conv2d({kernelSize: 1, filters: 4, activation, kernelInitializer: init(seed, scale), ...extra}));
    conv(9, 89, 'selu', {inputShape: [28, 28, 1], kernelSize: 3, strides: 2});    // [13,13,4]
    model.add(tf.layers.reLU({maxValue: 6}));
    conv(57, 3.8, 'elu');
    conv(95, 0.86, undefined);               // no activation: saved as "linear"
    model.add(tf.layers.softmax({axis: -1}));  // TF.js's default axis is 1, not Keras's -1
    conv(133, 100, 'hardSigmoid');           // saved as "hard_sigmoid"
    conv(177, 65, 'linear');
    model.add(tf.layers.reLU({}));           // saved with "max_value": null
    conv(225, 11, 'relu6');
    conv(269, 1.2, 'logSoftmax');            // saved as "log_softmax"
    conv(284, 0.4, 'sigmoid');
    conv(359, 28, 'softplus');
    conv(365, 0.75, 'linear');
    model.add(tf.layers.activation({activation: 'softsign'}));
    model.add(tf.layers.leakyReLU({alpha: 0.2}));
    conv(410, 12, 'tanh');
    conv(441, 5.7, 'swish');
    conv(511, 2.1, 'mish');
    // alpha [1,1,4]: one slope per channel, shared over rows and columns.
    model.add(tf.layers.prelu({alphaInitializer: tf.initializers.constant({value: 0.25}), sharedAxes: [1, 2]}));
    conv(560, 9.8, 'gelu');
    model.add(tf.layers.elu({}));
    conv(566, 0.18, 'softmax');              // over the 4 channels
    conv(604, 69, 'relu');
    model.add(tf.layers.maxPooling2d({poolSize: 2}));                              // [6,6,4]
    model.add(tf.layers.flatten());
    model.add(tf.layers.dense({units: 12, activation: 'tanh', kernelInitializer: init(656, 1.5)}));
    model.add(tf.layers.prelu({}));          // alpha [12], zeros at first: made non-zero by the fit
    model.add(tf.layers.dense({units: 10, activation: 'softmax', kernelInitializer: init(699, 17)}));
    return randomBiases(tf, model);
  }
  if (arch === 'transpose') {
    const init = (seed, scale) => tf.initializers.varianceScaling({scale, mode: 'fanAvg', distribution: 'uniform', seed});
    model.add(tf.layers.conv2d({inputShape: [28, 28, 1], kernelSize: 3, filters: 4, strides: 2,
                                activation: 'relu', kernelInitializer: init(7, 8)}));       // [13,13,4]
    model.add(tf.layers.conv2dTranspose({kernelSize: 3, filters: 3, strides: 2, padding: 'valid',
                                         activation: 'tanh', kernelInitializer: init(8, 2)}));  // [27,27,3]
    model.add(tf.layers.layerNormalization({axis: -1}));
    model.add(tf.layers.conv2d({kernelSize: 3, filters: 4, strides: 3, activation: 'relu',
                                kernelInitializer: init(9, 2)}));                           // [9,9,4]
    model.add(tf.layers.conv2dTranspose({kernelSize: 3, filters: 2, strides: 2, padding: 'same',
                                         activation: 'relu', kernelInitializer: init(10, 2)}));  // [18,18,2]
    model.add(tf.layers.conv2dTranspose({kernelSize: 1, filters: 2, strides: 2, padding: 'valid',
                                         kernelInitializer: init(11, 2)}));                // [36,36,2]
    model.add(tf.layers.layerNormalization({axis: [1, 2, 3], epsilon: 0.01}));
    model.add(tf.layers.maxPooling2d({poolSize: 4}));                                       // [9,9,2]
    model.add(tf.layers.flatten());
    model.add(tf.layers.dense({units: 10, activation: 'softmax', kernelInitializer: init(12, 4)}));
    return randomBiases(tf, model);
  }
  if (arch === 'reshaping') {
    // Seeds and scales picked, as for activations, so that no ReLU leaves a
    // channel dead and the probabilities depend on the image.
    const init = (seed, scale) => tf.initializers.varianceScaling({scale, mode: 'fanAvg', distribution: 'uniform', seed});
    model.add(tf.layers.conv2d({inputShape: [28, 28, 1], kernelSize: 3, filters: 3, strides: 2,
                                activation: 'relu', kernelInitializer: init(12, 71)}));     // [13,13,3]
    model.add(tf.layers.zeroPadding2d({padding: [[1, 2], [0, 1]]}));                        // [16,14,3]
    model.add(tf.layers.conv2d({kernelSize: 3, filters: 4, activation: 'tanh',
                                kernelInitializer: init(49, 0.55)}));                       // [14,12,4]
    model.add(tf.layers.cropping2D({cropping: [[1, 0], [2, 1]]}));                          // [13,9,4]
    model.add(tf.layers.upSampling2d({size: [2, 1]}));                                      // [26,9,4]
    model.add(tf.layers.conv2d({kernelSize: 3, filters: 4, strides: 2, activation: 'relu',
                                kernelInitializer: init(110, 4.9)}));                       // [12,4,4]
    model.add(tf.layers.reshape({targetShape: [48, 4]}));  // (TF.js prints a -1 as null)
    model.add(tf.layers.permute({dims: [2, 1]}));                                           // [4,48]
    model.add(tf.layers.reshape({targetShape: [8, 6, 4]}));                                 // [8,6,4]
    model.add(tf.layers.permute({dims: [2, 1, 3]}));                                        // [6,8,4]
    model.add(tf.layers.rescaling({scale: 0.5, offset: 0.1}));
    model.add(tf.layers.conv2d({kernelSize: 3, filters: 4, activation: 'relu',
                                kernelInitializer: init(160, 6.3)}));                       // [4,6,4]
    model.add(tf.layers.flatten());
    model.add(tf.layers.dense({units: 10, activation: 'softmax', kernelInitializer: init(192, 4.5)}));
    return randomBiases(tf, model);
  }
  if (arch === 'dilated') {
    model.add(tf.layers.conv2d({inputShape: [28, 28, 1], kernelSize: 3, filters: 6, dilationRate: 2,
                                activation: 'relu'}));
    model.add(tf.layers.conv2d({kernelSize: [3, 2], filters: 8, dilationRate: [2, 3], padding: 'same',
                                activation: 'tanh'}));
    model.add(tf.layers.separableConv2d({kernelSize: 3, filters: 8, dilationRate: 2, padding: 'same',
                                         activation: 'relu'}));
    model.add(tf.layers.maxPooling2d({poolSize: 2}));
    model.add(tf.layers.conv2d({kernelSize: 3, filters: 4, dilationRate: 3}));
    model.add(tf.layers.flatten());
    model.add(tf.layers.dense({units: 10, activation: 'softmax'}));
    return randomBiases(tf, model);
  }
  if (arch === 'global-avg' || arch === 'global-max') {
    const init = (seed) => tf.initializers.glorotUniform({seed});
    model.add(tf.layers.conv2d({inputShape: [28, 28, 1], kernelSize: 3, filters: 8, activation: 'relu',
                                trainable: false, kernelInitializer: init(1)}));
    model.add(tf.layers.maxPooling2d({poolSize: 2}));
    model.add(tf.layers.conv2d({kernelSize: 3, filters: 16, activation: 'relu', kernelInitializer: init(2)}));
    model.add(arch === 'global-avg' ? tf.layers.globalAveragePooling2d({})
                                    : tf.layers.globalMaxPooling2d({}));
    model.add(tf.layers.dense({units: 10, activation: 'softmax', kernelInitializer: init(3)}));
    return randomBiases(tf, model);
  }
  if (arch === 'mixed') {
    model.add(tf.layers.conv2d({inputShape: [28, 28, 1], kernelSize: [4, 3], filters: 6, strides: 2,
                                padding: 'same', activation: 'tanh'}));
    model.add(tf.layers.averagePooling2d({poolSize: 3, strides: 2, padding: 'same'}));
    model.add(tf.layers.conv2d({kernelSize: 2, filters: 8, padding: 'same', useBias: false}));
    model.add(tf.layers.activation({activation: 'sigmoid'}));
    model.add(tf.layers.maxPooling2d({poolSize: 3, strides: 2, padding: 'same'}));
    model.add(tf.layers.flatten());
    model.add(tf.layers.dense({units: 10}));
    model.add(tf.layers.activation({activation: 'softmax'}));
    return randomBiases(tf, model);
  }
  model.add(tf.layers.conv2d({inputShape: [28, 28, 1], filters: 32, kernelSize: 3, activation: 'relu'}));
  model.add(tf.layers.conv2d({filters: 32, kernelSize: 3, activation: 'relu'}));
  model.add(tf.layers.maxPooling2d({poolSize: [2, 2]}));
  model.add(tf.layers.conv2d({filters: 64, kernelSize: 3, activation: 'relu'}));
  model.add(tf.layers.conv2d({filters: 64, kernelSize: 3, activation: 'relu'}));
  model.add(tf.layers.maxPooling2d({poolSize: [2, 2]}));
  model.add(tf.layers.flatten());
  model.add(tf.layers.dropout({rate: 0.25}));
  model.add(tf.layers.dense({units: 512, activation: 'relu'}));
  model.add(tf.layers.dropout({rate: 0.5}));
  model.add(tf.layers.dense({units: 10, activation: 'softmax'}));
  return randomBiases(tf, model);
}

// Keras applications' MobileNet (keras/src/applications/mobilenet.py) at
// alpha 0.25, include_top=False, input 96x96x3, layer for layer and name for
// name: conv1 (3x3, strides 2, same, no bias), conv1_bn, conv1_relu (ReLU
// 6), then 13 depthwise blocks: a stride-2 block pads first (conv_pad_N,
// ((0,1),(0,1))) and runs its 3x3 depthwise conv valid, a stride-1 one runs
// it same; int(filters * alpha) pointwise filters; BatchNormalization with
// Keras's defaults (momentum 0.99, epsilon 1e-3, as TF.js's), no biases.
// A tf.sequential (Keras makes it a functional model of one chain: the
// same layers), then the head a fine-tuning user adds.
function mobileNetV1(tf) {
  const alpha = 0.25;
  let seed = 1;
  const init = () => tf.initializers.glorotUniform({seed: seed++});
  const model = tf.sequential({name: 'mobilenet_0.25_96'});
  const bnRelu = (name) => {
    model.add(tf.layers.batchNormalization({axis: -1, momentum: 0.99, epsilon: 1e-3, name: `${name}_bn`}));
    model.add(tf.layers.reLU({maxValue: 6, name: `${name}_relu`}));
  };
  model.add(tf.layers.conv2d({inputShape: [96, 96, 3], filters: Math.trunc(32 * alpha), kernelSize: 3,
                              strides: 2, padding: 'same', useBias: false, kernelInitializer: init(),
                              name: 'conv1'}));
  bnRelu('conv1');
  const blocks = [[64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2], [512, 1], [512, 1],
                  [512, 1], [512, 1], [512, 1], [1024, 2], [1024, 1]];
  blocks.forEach(([filters, strides], i) => {
    const id = i + 1;
    if (strides === 2) model.add(tf.layers.zeroPadding2d({padding: [[0, 1], [0, 1]], name: `conv_pad_${id}`}));
    model.add(tf.layers.depthwiseConv2d({kernelSize: 3, padding: strides === 1 ? 'same' : 'valid',
                                         depthMultiplier: 1, strides, useBias: false,
                                         depthwiseInitializer: init(), name: `conv_dw_${id}`}));
    bnRelu(`conv_dw_${id}`);
    model.add(tf.layers.conv2d({filters: Math.trunc(filters * alpha), kernelSize: 1, padding: 'same',
                                useBias: false, strides: 1, kernelInitializer: init(),
                                name: `conv_pw_${id}`}));
    bnRelu(`conv_pw_${id}`);
  });
  model.add(tf.layers.globalAveragePooling2d({name: 'global_average_pooling2d'}));
  model.add(tf.layers.dropout({rate: 0.2, name: 'dropout'}));
  model.add(tf.layers.dense({units: 10, activation: 'softmax', kernelInitializer: init(), name: 'dense'}));
  return model;
}

// keras/src/applications/mobilenet_v2.py's _make_divisible.
function makeDivisible(v, divisor) {
  let newV = Math.max(divisor, Math.floor(Math.trunc(v + divisor / 2) / divisor) * divisor);
  if (newV < 0.9 * v) newV += divisor;
  return newV;
}

// Keras applications' MobileNetV2 (keras/src/applications/mobilenet_v2.py)
// at alpha 0.35, include_top=False, input 96x96x3: Conv1 (_make_divisible(32
// alpha, 8) filters, 3x3, strides 2, same), bn_Conv1, Conv1_relu; 17
// inverted residual blocks (expansion 1 for expanded_conv_, 6 for block_N_;
// block_N_expand 1x1 to expansion * in channels, _expand_BN, _expand_relu;
// for stride 2 block_N_pad by imagenet_utils.correct_pad, ((0,1),(0,1)) on
// these even sizes, and a valid depthwise conv, else same; _depthwise,
// _depthwise_BN, _depthwise_relu; _project 1x1 to
// _make_divisible(int(filters alpha), 8), _project_BN, no activation;
// block_N_add when the input has the output's channels and stride is 1);
// Conv_1 (1280, 1x1), Conv_1_bn, out_relu. Every BatchNormalization epsilon
// 1e-3, momentum 0.999; no biases. A functional tf.model (the Add layers),
// then the head a fine-tuning user adds.
function mobileNetV2(tf) {
  const alpha = 0.35;
  let seed = 1;
  const init = () => tf.initializers.glorotUniform({seed: seed++});
  const bn = (name) => tf.layers.batchNormalization({axis: -1, epsilon: 1e-3, momentum: 0.999, name});
  const relu6 = (name) => tf.layers.reLU({maxValue: 6, name});
  const conv1x1 = (filters, name) => tf.layers.conv2d({filters, kernelSize: 1, padding: 'same', useBias: false,
                                                       kernelInitializer: init(), name});
  const input = tf.input({shape: [96, 96, 3], name: 'input_1'});
  let x = tf.layers.conv2d({filters: makeDivisible(32 * alpha, 8), kernelSize: 3, strides: 2, padding: 'same',
                            useBias: false, kernelInitializer: init(), name: 'Conv1'}).apply(input);
  x = bn('bn_Conv1').apply(x);
  x = relu6('Conv1_relu').apply(x);
  const block = (inputs, expansion, stride, filters, blockId) => {
    const inChannels = inputs.shape[3];
    const pointwiseFilters = makeDivisible(Math.trunc(filters * alpha), 8);
    let y = inputs;
    let prefix = `block_${blockId}_`;
    if (blockId) {
      y = tf.layers.conv2d({filters: expansion * inChannels, kernelSize: 1, padding: 'same', useBias: false,
                            kernelInitializer: init(), name: `${prefix}expand`}).apply(y);
      y = bn(`${prefix}expand_BN`).apply(y);
      y = relu6(`${prefix}expand_relu`).apply(y);
    } else {
      prefix = 'expanded_conv_';
    }
    if (stride === 2) {
      // imagenet_utils.correct_pad(y, 3): ((1 - adjust, 1), ...), adjust 1
      // on an even side.
      const adjust = [1 - y.shape[1] % 2, 1 - y.shape[2] % 2];
      y = tf.layers.zeroPadding2d({padding: [[1 - adjust[0], 1], [1 - adjust[1], 1]],
                                   name: `${prefix}pad`}).apply(y);
    }
    y = tf.layers.depthwiseConv2d({kernelSize: 3, strides: stride, useBias: false,
                                   padding: stride === 1 ? 'same' : 'valid', depthwiseInitializer: init(),
                                   name: `${prefix}depthwise`}).apply(y);
    y = bn(`${prefix}depthwise_BN`).apply(y);
    y = relu6(`${prefix}depthwise_relu`).apply(y);
    y = conv1x1(pointwiseFilters, `${prefix}project`).apply(y);
    y = bn(`${prefix}project_BN`).apply(y);
    if (inChannels === pointwiseFilters && stride === 1) {
      return tf.layers.add({name: `${prefix}add`}).apply([inputs, y]);
    }
    return y;
  };
  // [filters, stride, expansion] of blocks 0..16.
  const blocks = [[16, 1, 1], [24, 2, 6], [24, 1, 6], [32, 2, 6], [32, 1, 6], [32, 1, 6], [64, 2, 6],
                  [64, 1, 6], [64, 1, 6], [64, 1, 6], [96, 1, 6], [96, 1, 6], [96, 1, 6], [160, 2, 6],
                  [160, 1, 6], [160, 1, 6], [320, 1, 6]];
  blocks.forEach(([filters, stride, expansion], id) => { x = block(x, expansion, stride, filters, id); });
  // No alpha on the last conv when alpha <= 1.
  x = conv1x1(alpha > 1 ? makeDivisible(1280 * alpha, 8) : 1280, 'Conv_1').apply(x);
  x = bn('Conv_1_bn').apply(x);
  x = relu6('out_relu').apply(x);
  x = tf.layers.globalAveragePooling2d({name: 'global_average_pooling2d'}).apply(x);
  x = tf.layers.dropout({rate: 0.2, name: 'dropout'}).apply(x);
  x = tf.layers.dense({units: 10, activation: 'softmax', kernelInitializer: init(), name: 'dense'}).apply(x);
  return tf.model({inputs: input, outputs: x, name: 'mobilenetv2_0.35_96'});
}

// --count seeded images of `shape`: each image and channel uniform in its
// own random sub-range of [0,1], so that the images differ after a global
// average pooling too.
function rawInputs(tf, n, shape) {
  return tf.tidy(() => {
    const lo = tf.randomUniform([n, 1, 1, shape[2]], 0, 0.5, 'float32', 11);
    const span = tf.randomUniform([n, 1, 1, shape[2]], 0.2, 0.5, 'float32', 12);
    return tf.randomUniform([n, ...shape], 0, 1, 'float32', 13).mul(span).add(lo).dataSync().slice();
  });
}

// Seeded gamma (0.5..1.5), beta (normal, 0.25), dense bias (randomBiases),
// and each BatchNormalization's moving statistics: the mean and variance of
// its input over the inputs the model will predict (layers run one by one
// in inference mode, each after the ones before it are set), the mean moved
// by 0.2 of a standard deviation and the variance scaled by 0.6..1.6, both
// at random: a trained model's values, not the initial zeros and ones, so
// that a layout bug in any of them shows, and no ReLU6 sits dead or
// saturated.
function seedMobileNet(tf, model, pixels) {
  let seed = 101;
  const x = tf.tensor4d(pixels, [pixels.length / (96 * 96 * 3), 96, 96, 3]);
  const values = new Map();
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    const inbound = layer.inboundNodes[0].inboundLayers.map(
        (l) => (l.getClassName() === 'InputLayer' ? x : values.get(l.name)));
    const input = inbound.length === 1 ? inbound[0] : inbound;
    if (layer.getClassName() === 'BatchNormalization') {
      const [gamma, beta, movingMean, movingVariance] = layer.weights;
      const c = gamma.shape[0];
      tf.tidy(() => {
        const {mean, variance} = tf.moments(input, [0, 1, 2]);
        gamma.write(tf.randomUniform([c], 0.5, 1.5, 'float32', seed++));
        beta.write(tf.randomNormal([c], 0, 0.25, 'float32', seed++));
        movingMean.write(mean.add(tf.randomNormal([c], 0, 0.2, 'float32', seed++).mul(variance.sqrt())));
        movingVariance.write(variance.mul(tf.randomUniform([c], 0.6, 1.6, 'float32', seed++)).add(1e-4));
      });
    }
    values.set(layer.name, layer.apply(input, {training: false}));
  }
  tf.dispose([x, ...values.values()]);
  return randomBiases(tf, model);
}

// Zero biases (TF.js's initialiser) would hide a bias layout bug.
function randomBiases(tf, model, optimizer = 'rmsprop') {
  for (const w of model.weights) {
    if (w.name.endsWith('/bias')) w.write(tf.randomNormal(w.shape, 0, 0.2, 'float32', 7));
  }
  model.compile({optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy']});
  return model;
}

function toBuffer(weightData) {
  // WeightData is an ArrayBuffer or (tfjs >= 4.10) an array of them.
  const parts = Array.isArray(weightData) ? weightData : [weightData];
  return Buffer.concat(parts.map((ab) => Buffer.from(ab)));
}

function splitWeights(layout, specs, data) {
  if (layout === 'single') return [{paths: ['weights.bin'], weights: specs, chunks: [data]}];
  if (layout === 'shards') {
    const k = 3, size = Math.ceil(data.length / k);
    const paths = [], chunks = [];
    for (let i = 0; i < k; i++) {
      paths.push(`group1-shard${i + 1}of${k}.bin`);
      chunks.push(data.subarray(i * size, Math.min(data.length, (i + 1) * size)));
    }
    return [{paths, weights: specs, chunks}];
  }
  // groups: one group per layer (weights whose names share the prefix before '/').
  const groups = [];
  let offset = 0;
  for (const s of specs) {
    const layer = s.name.split('/')[0];
    const bytes = 4 * s.shape.reduce((a, b) => a * b, 1);
    let g = groups[groups.length - 1];
    if (!g || g.layer !== layer) {
      g = {layer, paths: [`group${groups.length + 1}-shard1of1.bin`], weights: [], chunks: [], bytes: 0};
      groups.push(g);
    }
    g.weights.push(s);
    g.bytes += bytes;
    offset += bytes;
  }
  if (offset !== data.length) throw new Error(`manifest needs ${offset} bytes, have ${data.length}`);
  let pos = 0;
  for (const g of groups) { g.chunks.push(data.subarray(pos, pos + g.bytes)); pos += g.bytes; }
  return groups;
}

function floatsLE(values) {
  const buf = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) buf.writeFloatLE(values[i], i * 4);
  return buf;
}

// TF.js's parameter counts for the fine-tuning of mnist_fixture
// finetune-raw: the model loaded back, every layer up to `upTo` frozen
// (layer.trainable = false), and a new Dense head of FREEZE_HEAD_UNITS
// softmax units on what the old head took.
async function freezeCounts(tf, artifacts, upTo) {
  const model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  const last = model.layers.findIndex((l) => l.name === upTo);
  if (last < 0) throw new Error(`no layer ${upTo}`);
  for (let i = 0; i <= last; i++) model.layers[i].trainable = false;
  const oldHead = model.layers[model.layers.length - 1];
  const head = tf.layers.dense({units: FREEZE_HEAD_UNITS, activation: 'softmax', name: 'new_head'});
  const tuned = tf.model({inputs: model.inputs, outputs: head.apply(oldHead.input)});
  const size = (ws) => ws.reduce((a, w) => a + w.shape.reduce((p, d) => p * d, 1), 0);
  const trainable = size(tuned.trainableWeights);
  // model.layers[0..last], as --freeze-up-to counts them (a functional
  // model's InputLayer among them, as in TF.js's model.layers).
  const frozenLayers = last + 1;
  return {upTo, frozenLayers, headUnits: FREEZE_HEAD_UNITS, params: tuned.countParams(),
          trainable, nonTrainable: tuned.countParams() - trainable};
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const raw = RAW_INPUT[o.arch];
  let pixels = raw ? null : readImages(o.images, o.count);
  const tf = await loadTf();
  if (raw) pixels = rawInputs(tf, o.count, raw);

  const model = buildModel(tf, o.arch, pixels);
  fs.mkdirSync(o.outDir, {recursive: true});
  if (FITTED.includes(o.arch)) {
    const n = 64, labelsFile = o.images.replace(/images-idx3-ubyte$/, 'labels-idx1-ubyte');
    let labels;
    try { labels = fs.readFileSync(labelsFile); } catch (e) { fail(`cannot read ${labelsFile}: ${e.code || e.message}`); }
    const x = tf.tensor4d(readImages(o.images, n), [n, 28, 28, 1]);
    const y = tf.oneHot(tf.tensor1d(Array.from(labels.subarray(8, 8 + n)), 'int32'), 10);
    await model.fit(x, y, {batchSize: 16, epochs: 2, shuffle: false, verbose: 0});
    tf.dispose([x, y]);
  }
  const writeSummary = (m) => {
    const lines = [];
    m.summary(undefined, undefined, (line) => lines.push(line));
    fs.writeFileSync(path.join(o.outDir, 'summary.txt'), lines.join('\n') + '\n');
  };
  if (!raw && o.arch !== 'functional') writeSummary(model);

  let artifacts;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return {modelArtifactsInfo: {dateSaved: new Date(), modelTopologyType: 'JSON'}};
  }), {includeOptimizer: WITH_OPTIMIZER.includes(o.arch)});
  // What mnist-train reads: the model as TF.js loads it back (a functional
  // model's layers in model.json's order, a nested model's calls renumbered).
  if (o.arch === 'functional') writeSummary(await tf.loadLayersModel(tf.io.fromMemory(artifacts)));
  const data = toBuffer(artifacts.weightData);
  const groups = splitWeights(o.layout, artifacts.weightSpecs, data);
  const weightFiles = [];
  for (const g of groups) {
    g.paths.forEach((p, i) => {
      fs.writeFileSync(path.join(o.outDir, p), g.chunks[i]);
      weightFiles.push(p);
    });
  }
  // Same keys, same order as tfjs-node's file:// saver (getModelJSONForModelArtifacts).
  const modelJSON = {
    modelTopology: artifacts.modelTopology,
    weightsManifest: groups.map((g) => ({paths: g.paths, weights: g.weights})),
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
  };
  if (artifacts.trainingConfig != null) modelJSON.trainingConfig = artifacts.trainingConfig;
  fs.writeFileSync(path.join(o.outDir, 'model.json'), JSON.stringify(modelJSON));

  const probs = tf.tidy(() => model.predict(tf.tensor4d(pixels, [o.count, ...(raw || [28, 28, 1])]), {batchSize: 100}).dataSync().slice());
  const out = Buffer.alloc(probs.length * 4);
  for (let i = 0; i < probs.length; i++) out.writeFloatLE(probs[i], i * 4);
  fs.writeFileSync(path.join(o.outDir, 'probs.bin'), out);

  let info;
  if (raw) {
    fs.writeFileSync(path.join(o.outDir, 'inputs.bin'), floatsLE(pixels));
    // What mnist-train reads: the model as TF.js loads it back.
    const reloaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
    writeSummary(reloaded);
    info = {count: o.count, params: model.countParams(), inputs: 'inputs.bin', inputShape: raw,
            layout: o.layout, weightFiles, weightBytes: data.length, freeze: []};
    for (const upTo of FREEZE_POINTS[o.arch]) info.freeze.push(await freezeCounts(tf, artifacts, upTo));
  } else {
    info = {count: o.count, params: model.countParams(), images: path.resolve(o.images),
            layout: o.layout, weightFiles, weightBytes: data.length};
  }
  fs.writeFileSync(path.join(o.outDir, 'info.json'), JSON.stringify(info, null, 2) + '\n');
  console.log(`wrote ${o.outDir}: model.json, ${weightFiles.join(', ')} (${data.length} bytes), ` +
              `probs.bin (${o.count} images), ${info.params} params`);
}

main().catch((e) => fail(e && e.message ? e.message : String(e), 1));
