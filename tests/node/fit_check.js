#!/usr/bin/env node
// Training fidelity: real TF.js model.fit() from a saved model, full-batch
// steps with one optimizer, against mnist-train's run from the same model.
// The per-epoch losses must agree, and so must the weights after one step,
// measured against the size of that step.
//
// The CPU backend's Conv2DBackpropFilter kernel reads every element through
// TensorBuffer.get() and takes seconds per image; it is replaced here by one
// that adds the same products in the same order into the same float64 sums,
// so its results are bit for bit the same (checked against the original
// before every run), only in a cache-friendly loop order.
//
// Exit status: 0 PASS, 1 FAIL (a figure is out of tolerance or a model did
// not load), 2 usage or I/O error.
'use strict';

const path = require('path');
const {loadTf, UsageError, IOError, readFile, checkInputOptions, readRawInputs} = require('./tfjs_common');

const USAGE = `Usage: node fit_check.js --model DIR --images IDX --labels IDX --optimizer OPT
                   --ours-steps DIR_K --ours-one DIR_1 [options]

Loads DIR/model.json (Dropout rates already 0) with @tensorflow/tfjs, compiles
it as mnist-node does with optimizer OPT, and fits it on the first N training
images for K epochs of one full batch each. Then compares:
  - the K epoch losses with DIR_K/history.json (mnist-train, same N and K);
  - the weights after the first step with DIR_1's model (mnist-train, one
    step): max|ours - tfjs| / max|tfjs - initial|, per weight and overall.

Options:
  --model DIR          starting model: model.json and its weight files (required)
  --images FILE        raw IDX training images (this or --inputs is required)
  --inputs FILE        instead of --images: float32 little-endian inputs, NHWC
                       [N, H, W, C] as --input-shape says (e.g. the inputs.bin
                       of make_reference_model.js --arch mobilenet-v1)
  --input-shape H,W,C  the shape of one input in --inputs (required with it)
  --labels FILE        raw IDX training labels (required), one-hot over the
                       model's K outputs (each label below K)
  --optimizer OPT      rmsprop, adam, sgd, adagrad, adadelta or adamax (required)
  --ours-steps DIR     mnist-train's model folder after K epochs (required)
  --ours-one DIR       mnist-train's model folder after one epoch (required)
  --also DIR           another one-step model (e.g. mnist-train's float32 step
                       where DIR_1 is its float64 one): each weight's
                       max|also - ours| / max|step| is printed too, not checked
  --count N            images in the batch (default 16)
  --steps K            epochs, one step each (default 3)
  --loss-tol T         max relative loss difference per epoch (default 1e-4)
  --weight-tol X       max weight error relative to the step, per weight
                       (default 0.05 for adam and adamax, 1e-3 for the others;
                       1e-3 with --grad-tol)
  --grad-tol G         rmsprop or adam, first step from a fresh optimizer: each
                       element of a trained weight passes where our step is
                       TF.js's optimizer's first step (its formula, checked
                       against TF.js's own step) for some gradient within
                       G * max|g| of the one TF.js's fit computed (captured),
                       give or take --weight-tol * max|step| for rounding.
                       Their first step is steep where |g| is small (RMSprop
                       lr g / sqrt(0.1 g^2 + eps) is 3.16 g below |g| ~ 1e-3,
                       saturating at 3.16 lr; Adam lr g / (|g| + eps) turns
                       from 0 to lr around |g| ~ 1e-7), so a gradient
                       difference SGD shows as 1e-5 of its step shows
                       hundreds of times larger there; this measures it in
                       the gradient's units, as the SGD check does
  --class-weight CW    fit with classWeight: "balanced" (computed here from the
                       --count labels, scikit-learn's n / (K * count) for
                       each of the model's K classes) or a JSON file
                       {"class index": weight, ...}; mnist-train must have
                       run with the same --class-weight
  --continue           go on with the optimizer state DIR holds (saved with
                       includeOptimizer): load it with its trainingConfig, as
                       tf.loadLayersModel does, and fit without compiling again
                       (its optimizer must be OPT)
  -h, --help           show this help

Exit status: 0 PASS, 1 FAIL, 2 usage or I/O error.`;

const OPTIMIZERS = ['rmsprop', 'adam', 'sgd', 'adagrad', 'adadelta', 'adamax'];
// Their first step is lr * g / (|g| + 1e-7), steepest where |g| is near 1e-7:
// such tiny gradients come from cancellation, and their rounding is
// amplified there. Hence a looser default --weight-tol.
const SIGN_LIKE = ['adam', 'adamax'];

// The first step from zero optimizer state, as a function of the gradient
// (float64), from the optimizer's own settings; monotone in g.
const FIRST_STEP = {
  rmsprop: o => { if (o.momentum || o.centered) return null;
                  return g => o.learningRate * g / Math.sqrt((1 - o.decay) * g * g + o.epsilon); },
  adam: o => g => o.learningRate * g / (Math.abs(g) + o.epsilon),
};

class CheckFailure extends Error {}

function parseArgs(argv) {
  const opts = {count: 16, steps: 3, lossTol: 1e-4};
  const valued = {
    '--model': 'model', '--images': 'images', '--labels': 'labels', '--optimizer': 'optimizer',
    '--ours-steps': 'oursSteps', '--ours-one': 'oursOne', '--count': 'count', '--steps': 'steps',
    '--loss-tol': 'lossTol', '--weight-tol': 'weightTol', '--inputs': 'inputs',
    '--input-shape': 'inputShape', '--also': 'also', '--grad-tol': 'gradTol',
    '--class-weight': 'classWeight',
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    if (a === '-h' || a === '--help') { opts.help = true; continue; }
    if (a === '--continue') { opts.continue = true; continue; }
    let value;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) { value = a.slice(eq + 1); a = a.slice(0, eq); }
    const key = valued[a];
    if (!key) throw new UsageError(`unknown argument: ${argv[i]}`);
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      value = argv[++i];
    }
    opts[key] = value;
  }
  if (opts.help) return opts;
  checkInputOptions(opts);
  for (const [flag, key] of [['--model', 'model'], ['--labels', 'labels'],
                             ['--optimizer', 'optimizer'], ['--ours-steps', 'oursSteps'],
                             ['--ours-one', 'oursOne']]) {
    if (!opts[key]) throw new UsageError(`${flag} is required`);
  }
  if (!OPTIMIZERS.includes(opts.optimizer)) {
    throw new UsageError(`--optimizer ${opts.optimizer} not in ${OPTIMIZERS.join(', ')}`);
  }
  const num = (name, v, test) => {
    const x = Number(v);
    if (v === '' || !Number.isFinite(x) || !test(x)) throw new UsageError(`bad value for ${name}: ${v}`);
    return x;
  };
  const positiveInt = x => Number.isInteger(x) && x > 0;
  opts.count = num('--count', opts.count, positiveInt);
  opts.steps = num('--steps', opts.steps, positiveInt);
  opts.lossTol = num('--loss-tol', opts.lossTol, x => x >= 0);
  if (opts.gradTol !== undefined) {
    opts.gradTol = num('--grad-tol', opts.gradTol, x => x >= 0);
    if (!FIRST_STEP[opts.optimizer] || opts.continue) {
      throw new UsageError(`--grad-tol goes with a fresh ${Object.keys(FIRST_STEP).join(' or ')}`);
    }
    if (opts.weightTol === undefined) opts.weightTol = 1e-3;
  }
  if (opts.weightTol === undefined) opts.weightTol = SIGN_LIKE.includes(opts.optimizer) ? 0.05 : 1e-3;
  opts.weightTol = num('--weight-tol', opts.weightTol, x => x >= 0);
  return opts;
}

function readJson(file, what) {
  try {
    return JSON.parse(readFile(file, what).toString('utf8'));
  } catch (e) {
    if (e instanceof IOError) throw e;
    throw new CheckFailure(`${file} is not valid JSON: ${e.message}`);
  }
}

// The first n images as float32 pixels / 255, NHWC with one channel.
function readIdxImages(file, n) {
  const buf = readFile(file, 'images file');
  if (buf.length < 16 || buf.readUInt32BE(0) !== 2051) throw new IOError(`${file}: not a raw IDX images file`);
  const count = buf.readUInt32BE(4), rows = buf.readUInt32BE(8), cols = buf.readUInt32BE(12);
  if (rows !== 28 || cols !== 28) throw new IOError(`${file}: images are ${rows}x${cols}, expected 28x28`);
  if (buf.length !== 16 + count * rows * cols) throw new IOError(`${file}: size does not match its header`);
  if (n > count) throw new UsageError(`--count ${n} exceeds the ${count} images in ${file}`);
  const pixels = new Float32Array(n * 784);
  for (let i = 0; i < pixels.length; i++) pixels[i] = buf[16 + i] / 255;
  return pixels;
}

// The first n labels.
function readIdxLabels(file, n) {
  const buf = readFile(file, 'labels file');
  if (buf.length < 8 || buf.readUInt32BE(0) !== 2049) throw new IOError(`${file}: not a raw IDX labels file`);
  const count = buf.readUInt32BE(4);
  if (buf.length !== 8 + count) throw new IOError(`${file}: size does not match its header`);
  if (n > count) throw new UsageError(`--count ${n} exceeds the ${count} labels in ${file}`);
  return buf.subarray(8, 8 + n);
}

// fit's classWeight for --class-weight: balanced from the labels (every one
// of the k classes must occur), or a file's {"index": weight} map as it is.
function classWeightOf(spec, labels, k) {
  if (spec !== 'balanced') {
    const json = readJson(spec, 'class weights file');
    if (!json || typeof json !== 'object' || Array.isArray(json)) {
      throw new UsageError(`${spec}: not a JSON object of class weights`);
    }
    return json;
  }
  const counts = new Array(k).fill(0);
  for (const label of labels) counts[label]++;
  const weights = {};
  counts.forEach((count, c) => {
    if (!count) throw new UsageError(`--class-weight balanced: class ${c} has no image among the ${labels.length}`);
    weights[c] = labels.length / (k * count);
  });
  return weights;
}

// Labels one-hot, n x k.
function oneHotOf(labels, k) {
  const oneHot = new Float32Array(labels.length * k);
  labels.forEach((label, i) => {
    if (label >= k) throw new UsageError(`label ${label} of input ${i} is not below the model's ${k} outputs`);
    oneHot[i * k + label] = 1;
  });
  return oneHot;
}

// model.json and its weight files: the artifacts for tf.io.fromMemory, and
// every float32 weight by name.
function readModel(dir) {
  const json = readJson(path.join(dir, 'model.json'), 'model file');
  if (!json || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new CheckFailure(`${dir}/model.json: no modelTopology or weightsManifest`);
  }
  const weightSpecs = [];
  const buffers = [];
  for (const group of json.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) buffers.push(readFile(path.join(dir, ...String(p).split('/')), 'weight file'));
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.length);
  const weights = new Map();
  let offset = 0;
  for (const s of weightSpecs) {
    const size = s.shape.reduce((a, b) => a * b, 1);
    if (s.group === 'optimizer' && (s.dtype === 'float32' || s.dtype === 'int32') && !s.quantization) {
      offset += size * 4;  // includeOptimizer's weights: not the model's
      continue;
    }
    if (s.dtype !== 'float32' || s.quantization) throw new CheckFailure(`${dir}: weight ${s.name} is not plain float32`);
    if (offset + size * 4 > weightData.byteLength) throw new CheckFailure(`${dir}: weight files too short`);
    weights.set(s.name, new Float32Array(weightData, offset, size));
    offset += size * 4;
  }
  if (offset !== weightData.byteLength) throw new CheckFailure(`${dir}: weight files hold extra bytes`);
  return {artifacts: {modelTopology: json.modelTopology, weightSpecs, weightData,
                      trainingConfig: json.trainingConfig},
          weights};
}

function epochLosses(dir, steps) {
  const file = path.join(dir, 'history.json');
  const history = readJson(file, 'history file');
  const epochs = history && history.epochs;
  if (!Array.isArray(epochs) || epochs.length !== steps) {
    throw new CheckFailure(`${file}: expected ${steps} epochs, found ${Array.isArray(epochs) ? epochs.length : 'none'}`);
  }
  return epochs.map(e => e.loss);
}

// TF.js's conv2DBackpropFilter (tfjs-backend-cpu), same arithmetic, another loop order.
function fastConv2DBackpropFilter(tf) {
  return ({inputs, backend, attrs}) => {
    const {x, dy} = inputs;
    const {strides, pad, dataFormat, dimRoundingMode, filterShape} = attrs;
    const info = tf.backend_util.computeConv2DInfo(
        x.shape, filterShape, strides, 1, pad, dimRoundingMode, false,
        tf.backend_util.convertConv2DDataFormat(dataFormat));
    const last = info.dataFormat === 'channelsLast';
    const xs = tf.util.computeStrides(x.shape), ys = tf.util.computeStrides(dy.shape);
    const [xB, xRS, xCS, xDS] = last ? [xs[0], xs[1], xs[2], 1] : [xs[0], xs[2], 1, xs[1]];
    const [yB, yRS, yCS, yDS] = last ? [ys[0], ys[1], ys[2], 1] : [ys[0], ys[2], 1, ys[1]];
    const xv = backend.data.get(x.dataId).values, yv = backend.data.get(dy.dataId).values;
    const {strideHeight: sH, strideWidth: sW, filterHeight, filterWidth, inChannels, outChannels,
           batchSize, outHeight, outWidth, inHeight, inWidth} = info;
    const top = info.padInfo.top, left = info.padInfo.left;
    // Per filter tap, one float64 accumulator per (d1, d2): each sum takes
    // its terms in the kernel's own order (b, yR, yC), so the result is the same.
    const nD = inChannels * outChannels;
    const dW = new Float32Array(filterHeight * filterWidth * nD);
    const acc = new Float64Array(nD);
    for (let wR = 0; wR < filterHeight; ++wR) {
      const yRMin = Math.max(0, Math.ceil((top - wR) / sH));
      const yRMax = Math.min(outHeight, (inHeight + top - wR) / sH);
      for (let wC = 0; wC < filterWidth; ++wC) {
        const yCMin = Math.max(0, Math.ceil((left - wC) / sW));
        const yCMax = Math.min(outWidth, (inWidth + left - wC) / sW);
        acc.fill(0);
        for (let b = 0; b < batchSize; ++b) {
          for (let yR = yRMin; yR < yRMax; ++yR) {
            for (let yC = yCMin; yC < yCMax; ++yC) {
              const xAt = b * xB + (wR + yR * sH - top) * xRS + (wC + yC * sW - left) * xCS;
              const yAt = b * yB + yR * yRS + yC * yCS;
              for (let d1 = 0, k = 0; d1 < inChannels; ++d1) {
                const xval = xv[xAt + d1 * xDS];
                for (let d2 = 0; d2 < outChannels; ++d2, ++k) acc[k] += xval * yv[yAt + d2 * yDS];
              }
            }
          }
        }
        dW.set(acc, (wR * filterWidth + wC) * nD);
      }
    }
    return backend.makeTensorInfo(info.filterShape, 'float32', dW);
  };
}

// Installs fastConv2DBackpropFilter after checking, on random data (strides,
// padding, both data formats), that it returns exactly what the original does.
function replaceConv2DBackpropFilter(tf) {
  const original = tf.getKernel('Conv2DBackpropFilter', 'cpu').kernelFunc;
  const fast = fastConv2DBackpropFilter(tf);
  const backend = tf.backend();
  const cases = [[[3, 9, 8, 5], [3, 3, 5, 4], [1, 1], 'valid', 'NHWC'],
                 [[2, 10, 9, 3], [3, 2, 3, 6], [2, 1], 'same', 'NHWC'],
                 [[2, 3, 10, 9], [3, 3, 3, 4], [2, 2], 'same', 'NCHW']];
  for (const [xShape, filterShape, strides, pad, dataFormat] of cases) {
    const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, strides, 1, pad, undefined,
        false, tf.backend_util.convertConv2DDataFormat(dataFormat));
    const x = tf.randomNormal(xShape, 0, 1, 'float32', 1);
    const dy = tf.randomNormal(info.outShape, 0, 1, 'float32', 2);
    const args = {inputs: {x, dy}, backend, attrs: {strides, pad, dataFormat, filterShape}};
    const want = backend.readSync(original(args).dataId);
    const got = backend.readSync(fast(args).dataId);
    if (got.length !== want.length || got.some((v, i) => !Object.is(v, want[i]))) {
      throw new CheckFailure('the fast Conv2DBackpropFilter differs from TF.js\'s on ' +
                             `x [${xShape}], filter [${filterShape}], ${pad}, ${dataFormat}`);
    }
  }
  tf.unregisterKernel('Conv2DBackpropFilter', 'cpu');
  tf.registerKernel({kernelName: 'Conv2DBackpropFilter', backendName: 'cpu', kernelFunc: fast});
}

// TF.js's categoricalCrossentropy clips probabilities to [1e-7, 1 - 1e-7]:
// an image whose true class gets less than 1e-7 adds at most -ln(1e-7) to
// the loss and nothing to the gradient. Says how many images are in that
// range at the start of epoch `epoch` (weights: null for the initial ones).
function clippedNote(tf, model, weights, x, oneHot, epoch) {
  if (weights) model.setWeights(weights.map((w, k) => tf.tensor(w, model.weights[k].shape)));
  const probs = tf.tidy(() => model.predict(x).dataSync());
  let clipped = 0;
  for (let i = 0; i < probs.length; i++) if (oneHot[i] === 1 && probs[i] < 1e-7) clipped++;
  if (!clipped) return '';
  return ` (at the start of epoch ${epoch + 1}, TF.js gives ${clipped} image(s) a true-class ` +
         'probability below 1e-7, where its categoricalCrossentropy clips: loss at most ' +
         '-ln(1e-7) = 16.12 per image and no gradient; a cross-entropy without that clip differs there)';
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.help) { console.log(USAGE); return 0; }
  const n = opts.count;

  // Read every input before starting TF.js, so I/O errors come out first.
  const shape = opts.inputs ? opts.inputShape : [28, 28, 1];
  const pixels = opts.inputs ? readRawInputs(opts.inputs, n, shape) : readIdxImages(opts.images, n);
  const labels = readIdxLabels(opts.labels, n);
  const start = readModel(opts.model);
  const oursOne = readModel(opts.oursOne).weights;
  const also = opts.also ? readModel(opts.also).weights : null;
  const oursLosses = epochLosses(opts.oursSteps, opts.steps);
  for (const layer of start.artifacts.modelTopology.config.layers) {
    if (layer.class_name === 'Dropout' && layer.config.rate !== 0) {
      throw new UsageError(`${opts.model}: layer ${layer.config.name} has Dropout rate ${layer.config.rate}, expected 0`);
    }
  }

  const tf = await loadTf();
  replaceConv2DBackpropFilter(tf);
  let model;
  try {
    model = await tf.loadLayersModel(tf.io.fromMemory(start.artifacts));
  } catch (e) {
    throw new CheckFailure(`tf.loadLayersModel rejected ${opts.model}: ${e.message}`);
  }
  if (opts.continue) {
    const saved = model.optimizer && model.optimizer.getClassName();
    const expected = {rmsprop: 'RMSProp', adam: 'Adam', sgd: 'SGD', adagrad: 'Adagrad',
                      adadelta: 'Adadelta'}[opts.optimizer];
    if (saved !== expected) {
      throw new UsageError(`--continue: ${opts.model} holds the state of ${saved || 'no optimizer'}, not ${opts.optimizer}`);
    }
    console.log(`continuing ${saved} from step ${model.optimizer.iterations}`);
  } else {
    model.compile({optimizer: opts.optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy']});
  }

  // The gradients of the first step, by variable name, for --grad-tol.
  let firstStep = null;
  const firstGrads = new Map();
  if (opts.gradTol !== undefined) {
    firstStep = FIRST_STEP[opts.optimizer](model.optimizer);
    if (!firstStep) throw new UsageError(`--grad-tol: ${opts.optimizer} with momentum or centered`);
    const apply = model.optimizer.applyGradients.bind(model.optimizer);
    model.optimizer.applyGradients = (vg) => {
      if (!firstGrads.size) {
        const items = Array.isArray(vg) ? vg : Object.keys(vg).map(name => ({name, tensor: vg[name]}));
        for (const {name, tensor} of items) firstGrads.set(name, tensor.dataSync().slice());
      }
      return apply(vg);
    };
  }

  // The weights after every epoch (each epoch is one step).
  const snapshots = [];
  const k = model.outputs[0].shape[1];
  const oneHot = oneHotOf(labels, k);
  const x = tf.tensor4d(pixels, [n, ...shape]);
  const y = tf.tensor2d(oneHot, [n, k]);
  const classWeight = opts.classWeight ? classWeightOf(opts.classWeight, labels, k) : undefined;
  if (classWeight) {
    console.log(`classWeight: ${Object.entries(classWeight).map(([c, w]) => `${c}: ${w.toPrecision(4)}`).join(', ')}`);
    // mnist-train's history.json records the weights it used: the same numbers.
    const file = path.join(opts.oursSteps, 'history.json');
    const used = readJson(file, 'history file').class_weights;
    const same = used && typeof used === 'object' && Object.keys(used).length === Object.keys(classWeight).length &&
                 Object.entries(classWeight).every(([c, w]) => used[c] === w);
    if (!same) throw new CheckFailure(`${file}: class_weights ${JSON.stringify(used)}, TF.js fits with ${JSON.stringify(classWeight)}`);
  }
  const t0 = Date.now();
  const history = await model.fit(x, y, {
    batchSize: n, epochs: opts.steps, shuffle: true, validationSplit: 0, verbose: 0, classWeight,
    callbacks: {
      onEpochEnd: async () => { snapshots.push(model.weights.map(w => w.read().dataSync().slice())); },
    },
  });
  const fitSeconds = (Date.now() - t0) / 1000;
  const tfjsLosses = history.history.loss;
  const names = model.weights.map(w => w.originalName);

  const failures = [];
  console.log(`fit_check: ${opts.optimizer}, ${n} images, ${opts.steps} full-batch steps ` +
              `(TF.js fit ${fitSeconds.toFixed(1)} s on ${tf.getBackend()})`);
  console.log('epoch  loss (mnist-train)  loss (TF.js)        rel. diff');
  let worstLoss = 0, firstBad = -1;
  for (let i = 0; i < opts.steps; i++) {
    const ours = oursLosses[i], theirs = tfjsLosses[i];
    const rel = Math.abs(ours - theirs) / Math.abs(theirs);
    worstLoss = Math.max(worstLoss, Number.isNaN(rel) ? Infinity : rel);
    if (firstBad < 0 && !(rel <= opts.lossTol)) firstBad = i;
    console.log(`${String(i + 1).padStart(5)}  ${Number(ours).toFixed(12).padEnd(18)}  ` +
                `${theirs.toFixed(12).padEnd(18)}  ${rel.toExponential(2)}`);
  }
  if (!(worstLoss <= opts.lossTol)) {
    failures.push(`loss rel. diff ${worstLoss.toExponential(2)} > --loss-tol ${opts.lossTol}` +
                  clippedNote(tf, model, firstBad === 0 ? null : snapshots[firstBad - 1], x, oneHot, firstBad));
  }

  // Error of our first step relative to the largest change TF.js's step made.
  console.log('weight after one step      max|ours-tfjs|  max|step|    error/step' +
              (also ? '  |also-ours|/step' : ''));
  let allDiff = 0, allStep = 0, worstRatio = 0, worstName = '';
  for (const [k, name] of names.entries()) {
    const tfjs = snapshots[0][k];
    const initial = start.weights.get(name), ours = oursOne.get(name);
    if (!initial || !ours || ours.length !== tfjs.length) {
      throw new CheckFailure(`weight ${name} is missing or has another size in ${opts.model} or ${opts.oursOne}`);
    }
    let diff = 0, step = 0;
    for (let i = 0; i < tfjs.length; i++) {
      const d = Math.abs(ours[i] - tfjs[i]);
      diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
      step = Math.max(step, Math.abs(tfjs[i] - initial[i]));
    }
    let ratio = step > 0 ? diff / step : (diff > 0 ? Infinity : 0);
    const grad = firstGrads.get(model.weights[k].name);
    let gradNote = '';
    if (grad) {
      // The smallest d (bisection) with ours in [f(g - d), f(g + d)] widened
      // by weightTol * step, over max|g|; and TF.js's own step from f.
      let maxG = 0;
      for (const g of grad) maxG = Math.max(maxG, Math.abs(g));
      const slack = opts.weightTol * step;
      let worstD = 0, formula = 0;
      for (let i = 0; i < tfjs.length; i++) {
        const s = initial[i] - ours[i], g = grad[i];
        formula = Math.max(formula, Math.abs(firstStep(g) - (initial[i] - tfjs[i])));
        const inside = d => s >= firstStep(g - d) - slack && s <= firstStep(g + d) + slack;
        if (inside(0)) continue;
        let lo = 0, hi = Math.max(maxG, Math.abs(g)) * 4;
        if (!inside(hi)) { worstD = Infinity; continue; }
        for (let it = 0; it < 60; it++) { const mid = (lo + hi) / 2; if (inside(mid)) hi = mid; else lo = mid; }
        worstD = Math.max(worstD, hi);
      }
      if (!(formula <= slack / 4)) {
        throw new CheckFailure(`${name}: TF.js's first ${opts.optimizer} step differs from its formula by ` +
                               `${formula.toExponential(2)} (> ${(slack / 4).toExponential(2)})`);
      }
      const gRatio = maxG > 0 ? worstD / maxG : (worstD > 0 ? Infinity : 0);
      gradNote = `  grad-equivalent ${gRatio.toExponential(2)} of max|g| ${maxG.toExponential(2)}`;
      if (!(gRatio <= opts.gradTol)) failures.push(`${name}: grad-equivalent error ${gRatio.toExponential(2)} > --grad-tol ${opts.gradTol}`);
      ratio = 0;  // judged by the gradient-equivalent error instead
    }
    if (ratio > worstRatio || worstName === '') { worstRatio = ratio; worstName = name; }
    allDiff = Math.max(allDiff, diff);
    allStep = Math.max(allStep, step);
    let alsoNote = '';
    if (also) {
      const other = also.get(name);
      if (!other || other.length !== tfjs.length) throw new CheckFailure(`weight ${name} is missing or has another size in ${opts.also}`);
      let d = 0;
      for (let i = 0; i < tfjs.length; i++) d = Math.max(d, Math.abs(other[i] - ours[i]));
      alsoNote = `  ${(step > 0 ? d / step : (d > 0 ? Infinity : 0)).toExponential(2)}`;
    }
    console.log(`${name.padEnd(25)}  ${diff.toExponential(3).padEnd(14)}  ${step.toExponential(3)}    ` +
                `${(grad ? diff / step : ratio).toExponential(2)}${alsoNote}${gradNote}`);
  }
  const overall = allStep > 0 ? allDiff / allStep : Infinity;
  console.log(`${'overall'.padEnd(25)}  ${allDiff.toExponential(3).padEnd(14)}  ${allStep.toExponential(3)}    ` +
              `${overall.toExponential(2)}`);
  console.log(`worst loss rel. diff ${worstLoss.toExponential(2)} (tol ${opts.lossTol}); ` +
              `worst weight error/step ${worstRatio.toExponential(2)} in ${worstName} (tol ${opts.weightTol})`);
  if (!(worstRatio <= opts.weightTol)) {
    failures.push(`${worstName}: weight error ${worstRatio.toExponential(2)} of the step > --weight-tol ${opts.weightTol}`);
  }

  if (failures.length) {
    console.log(`FAIL: ${opts.optimizer}: ${failures.join('; ')}`);
    return 1;
  }
  console.log('PASS');
  return 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (e) => {
    if (e instanceof UsageError) {
      console.error(`fit_check: ${e.message}\nTry 'node fit_check.js --help'.`);
      process.exitCode = 2;
    } else if (e instanceof IOError) {
      console.error(`fit_check: ${e.message}`);
      process.exitCode = 2;
    } else if (e instanceof CheckFailure) {
      console.log(`FAIL: ${e.message}`);
      process.exitCode = 1;
    } else {
      console.log(`FAIL: unexpected error: ${e && e.message ? e.message : e}`);
      process.exitCode = 1;
    }
  });
