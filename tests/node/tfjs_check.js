#!/usr/bin/env node
// Load a TensorFlow.js Layers model (model.json + weight files) with real TF.js,
// run it on MNIST test images (or raw float32 inputs of any image shape) and
// check its output.
//
// Exit status: 0 PASS, 1 FAIL (a check failed or the model did not load),
// 2 usage or I/O error (missing/unreadable file, bad IDX data).
'use strict';

const path = require('path');
const {loadTf, UsageError, IOError, readFile, checkInputOptions, readRawInputs} = require('./tfjs_common');

const USAGE = `Usage: node tfjs_check.js --model DIR --images IDX_IMAGES_FILE [options]
       node tfjs_check.js --model DIR --inputs FILE --input-shape H,W,C [options]

Loads DIR/model.json (and the weight files its weightsManifest names) with
@tensorflow/tfjs, predicts the first N images of IDX_IMAGES_FILE (NHWC,
pixels / 255), or the first N inputs of FILE, and checks the result.

Options:
  --model DIR            folder holding model.json and its weight files (required)
  --images FILE          raw IDX images file, e.g. t10k-images-idx3-ubyte (this
                         or --inputs is required)
  --inputs FILE          instead of --images: float32 little-endian inputs, NHWC
                         [count, H, W, C] as --input-shape says (e.g. the
                         inputs.bin of make_reference_model.js --arch mobilenet-v1)
  --input-shape H,W,C    the shape of one input in --inputs (required with it)
  --labels FILE          raw IDX labels file; with --min-accuracy
  --count N              number of images to use (default 100)
  --expect FILE          N*K little-endian float32 probabilities to compare with
                         (K: the model's outputs, 10 for all digits)
  --tol T                max allowed |tfjs - expected| (default 1e-5)
  --min-accuracy A       fail if argmax accuracy against --labels is below A (0..1);
                         a model whose userDefinedMetadata has "labels" (mnist-train
                         --labels) is scored on the images of those labels, output k
                         standing for labels[k]
  --params P             fail unless model.countParams() == P
  -h, --help             show this help

Exit status: 0 PASS, 1 FAIL, 2 usage or I/O error.`;

class CheckFailure extends Error {}

function parseArgs(argv) {
  const opts = {count: 100, tol: 1e-5};
  const valued = {
    '--model': 'model', '--images': 'images', '--labels': 'labels', '--count': 'count',
    '--expect': 'expect', '--tol': 'tol', '--min-accuracy': 'minAccuracy', '--params': 'params',
    '--inputs': 'inputs', '--input-shape': 'inputShape',
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    if (a === '-h' || a === '--help') { opts.help = true; continue; }
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
  if (!opts.model) throw new UsageError('--model DIR is required');
  checkInputOptions(opts);
  if (opts.labels && opts.inputs) throw new UsageError('--labels goes with --images (MNIST labels)');
  const num = (name, v, test) => {
    const x = Number(v);
    if (v === '' || !Number.isFinite(x) || !test(x)) throw new UsageError(`bad value for ${name}: ${v}`);
    return x;
  };
  opts.count = num('--count', opts.count, x => Number.isInteger(x) && x > 0);
  opts.tol = num('--tol', opts.tol, x => x >= 0);
  if (opts.minAccuracy !== undefined) {
    opts.minAccuracy = num('--min-accuracy', opts.minAccuracy, x => x >= 0 && x <= 1);
    if (!opts.labels) throw new UsageError('--min-accuracy needs --labels');
  }
  if (opts.params !== undefined) opts.params = num('--params', opts.params, x => Number.isInteger(x) && x >= 0);
  return opts;
}

// Returns {count, rows, cols, data (Uint8Array view of the pixels)}.
function readIdxImages(file) {
  const buf = readFile(file, 'images file');
  if (buf.length < 16) throw new IOError(`${file}: too short for an IDX images header`);
  const magic = buf.readUInt32BE(0), count = buf.readUInt32BE(4);
  const rows = buf.readUInt32BE(8), cols = buf.readUInt32BE(12);
  if (magic !== 2051) throw new IOError(`${file}: bad magic ${magic} (expected 2051 for IDX images; gzipped?)`);
  if (rows !== 28 || cols !== 28) throw new IOError(`${file}: images are ${rows}x${cols}, expected 28x28`);
  if (buf.length !== 16 + count * rows * cols) {
    throw new IOError(`${file}: size ${buf.length} does not match header (${count} images of ${rows}x${cols})`);
  }
  return {count, rows, cols, data: new Uint8Array(buf.buffer, buf.byteOffset + 16, count * rows * cols)};
}

function readIdxLabels(file) {
  const buf = readFile(file, 'labels file');
  if (buf.length < 8) throw new IOError(`${file}: too short for an IDX labels header`);
  const magic = buf.readUInt32BE(0), count = buf.readUInt32BE(4);
  if (magic !== 2049) throw new IOError(`${file}: bad magic ${magic} (expected 2049 for IDX labels; gzipped?)`);
  if (buf.length !== 8 + count) throw new IOError(`${file}: size ${buf.length} does not match header (${count} labels)`);
  return new Uint8Array(buf.buffer, buf.byteOffset + 8, count);
}

// Reads model.json and the weight files, as tfjs-node's file:// handler does:
// weight specs of all groups in order, data of all paths of all groups concatenated.
function readModelArtifacts(dir) {
  const jsonPath = path.join(dir, 'model.json');
  const text = readFile(jsonPath, 'model file').toString('utf8');
  let json;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckFailure(`${jsonPath} is not valid JSON: ${e.message}`);
  }
  if (json === null || typeof json !== 'object') throw new CheckFailure(`${jsonPath}: not a JSON object`);
  if (!json.modelTopology) throw new CheckFailure(`${jsonPath}: no modelTopology`);
  if (!Array.isArray(json.weightsManifest)) throw new CheckFailure(`${jsonPath}: no weightsManifest array`);
  const weightSpecs = [];
  const buffers = [];
  let nFiles = 0;
  for (const [g, group] of json.weightsManifest.entries()) {
    if (!group || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new CheckFailure(`${jsonPath}: weightsManifest[${g}] needs "paths" and "weights" arrays`);
    }
    weightSpecs.push(...group.weights);
    for (const p of group.paths) {
      // Paths are relative to model.json (URL-style, '/' separated).
      buffers.push(readFile(path.join(dir, ...String(p).split('/')), `weight file (weightsManifest[${g}])`));
      nFiles++;
    }
  }
  const all = Buffer.concat(buffers);
  // Copy into a fresh, exactly-sized ArrayBuffer (a Buffer may be a view into a pool).
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.length);

  const bytesPer = {float32: 4, int32: 4, bool: 1};
  let expectedBytes = 0;
  let checkable = true;
  for (const s of weightSpecs) {
    if (s.quantization || !(s.dtype in bytesPer) || !Array.isArray(s.shape)) { checkable = false; break; }
    expectedBytes += bytesPer[s.dtype] * s.shape.reduce((a, b) => a * b, 1);
  }
  if (checkable && expectedBytes !== weightData.byteLength) {
    throw new CheckFailure(`weight files hold ${weightData.byteLength} bytes, the manifest's ` +
                           `${weightSpecs.length} weights need ${expectedBytes}`);
  }
  return {
    artifacts: {modelTopology: json.modelTopology, weightSpecs, weightData,
                userDefinedMetadata: json.userDefinedMetadata,
                format: json.format, generatedBy: json.generatedBy, convertedBy: json.convertedBy},
    nFiles, nWeights: weightSpecs.length, bytes: weightData.byteLength,
    generatedBy: json.generatedBy,
  };
}



async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.help) { console.log(USAGE); return 0; }

  // Read every input before starting TF.js, so I/O errors come out first.
  const n = opts.count;
  const shape = opts.inputs ? opts.inputShape : [28, 28, 1];
  const perImage = shape[0] * shape[1] * shape[2];
  const pixels = new Float32Array(n * perImage);
  if (opts.inputs) {
    pixels.set(readRawInputs(opts.inputs, n, shape));
  } else {
    const images = readIdxImages(opts.images);
    if (n > images.count) throw new UsageError(`--count ${n} exceeds the ${images.count} images in ${opts.images}`);
    for (let i = 0; i < pixels.length; i++) pixels[i] = images.data[i] / 255;
  }
  let labels = null;
  if (opts.labels) {
    labels = readIdxLabels(opts.labels);
    if (labels.length < n) throw new UsageError(`--count ${n} exceeds the ${labels.length} labels in ${opts.labels}`);
  }
  const expectBytes = opts.expect ? readFile(opts.expect, 'expected-probabilities file') : null;
  const loaded = readModelArtifacts(opts.model);

  const tf = await loadTf();

  let model;
  try {
    model = await tf.loadLayersModel(tf.io.fromMemory(loaded.artifacts));
  } catch (e) {
    throw new CheckFailure(`tf.loadLayersModel rejected the model: ${e.message}`);
  }

  const failures = [];
  const parts = [];
  const nParams = model.countParams();
  parts.push(`${loaded.nWeights} weights in ${loaded.nFiles} file(s), ${nParams} params`);
  if (opts.params !== undefined && nParams !== opts.params) {
    failures.push(`countParams() = ${nParams}, expected ${opts.params}`);
  }

  const t0 = Date.now();
  let probs;
  try {
    probs = tf.tidy(() => {
      const x = tf.tensor4d(pixels, [n, ...shape], 'float32');
      const y = model.predict(x, {batchSize: 100});
      if (Array.isArray(y)) throw new Error(`model has ${y.length} outputs, expected 1`);
      if (y.shape.length !== 2 || y.shape[1] < 2 || y.shape[1] > 10) {
        throw new Error(`output shape [${y.shape}], expected [${n},K], K from 2 to 10`);
      }
      return y.dataSync().slice();
    });
  } catch (e) {
    throw new CheckFailure(`predict failed: ${e.message}`);
  }
  const K = probs.length / n;
  // What each output stands for: mnist-train --labels saves the label set.
  const meta = model.getUserDefinedMetadata() || {};
  const outputLabels = Array.isArray(meta.labels) && meta.labels.length === K ?
      meta.labels : Array.from({length: K}, (_, k) => k);
  if (K !== 10) parts.push(`${K} outputs, labels ${outputLabels.join(',')}`);
  let expected = null;
  if (expectBytes) {
    if (expectBytes.length !== n * K * 4) {
      throw new CheckFailure(`${opts.expect} has ${expectBytes.length} bytes, expected ${n}*${K} float32 = ${n * K * 4}`);
    }
    expected = new Float32Array(n * K);
    for (let i = 0; i < n * K; i++) expected[i] = expectBytes.readFloatLE(i * 4);
  }
  const predictMs = Date.now() - t0;

  const argmax = (arr, row) => {
    let best = 0;
    for (let k = 1; k < K; k++) if (arr[row * K + k] > arr[row * K + best]) best = k;
    return best;
  };

  let nonFinite = 0;
  for (let i = 0; i < probs.length; i++) if (!Number.isFinite(probs[i])) nonFinite++;
  if (nonFinite) failures.push(`${nonFinite} non-finite value(s) in the tfjs output`);

  if (expected) {
    let maxDiff = 0, worst = -1, agree = 0;
    for (let i = 0; i < probs.length; i++) {
      const d = Math.abs(probs[i] - expected[i]);
      if (!(d <= maxDiff)) { maxDiff = Number.isNaN(d) ? NaN : d; worst = i; if (Number.isNaN(d)) break; }
    }
    for (let r = 0; r < n; r++) if (argmax(probs, r) === argmax(expected, r)) agree++;
    console.log(`max |tfjs - ours| = ${maxDiff.toExponential(3)}` +
                (worst >= 0 ? ` (image ${Math.floor(worst / K)}, class ${worst % K})` : ''));
    console.log(`argmax agreement: ${agree}/${n}`);
    parts.push(`max |tfjs - ours| = ${maxDiff.toExponential(3)}, argmax agree ${agree}/${n}`);
    if (!(maxDiff <= opts.tol)) failures.push(`max |tfjs - ours| = ${maxDiff} > tol ${opts.tol}`);
  }

  if (labels) {
    let correct = 0, scored = 0;
    for (let r = 0; r < n; r++) {
      if (!outputLabels.includes(labels[r])) continue;
      scored++;
      if (outputLabels[argmax(probs, r)] === labels[r]) correct++;
    }
    const acc = correct / scored;
    parts.push(`accuracy ${acc.toFixed(4)} (${correct}/${scored})`);
    if (opts.minAccuracy !== undefined && acc < opts.minAccuracy) {
      failures.push(`accuracy ${acc} < min ${opts.minAccuracy}`);
    }
  }

  parts.push(`predict ${n} ${opts.inputs ? 'inputs' : 'images'} ${(predictMs / 1000).toFixed(2)} s on ${tf.getBackend()}`);
  console.log(`tfjs_check: ${opts.model}: ${parts.join('; ')}`);
  if (failures.length) {
    console.log(`FAIL: ${failures.join('; ')}`);
    return 1;
  }
  console.log('PASS');
  return 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (e) => {
    if (e instanceof UsageError) {
      console.error(`tfjs_check: ${e.message}\nTry 'node tfjs_check.js --help'.`);
      process.exitCode = 2;
    } else if (e instanceof IOError) {
      console.error(`tfjs_check: ${e.message}`);
      process.exitCode = 2;
    } else if (e instanceof CheckFailure) {
      console.log(`FAIL: ${e.message}`);
      process.exitCode = 1;
    } else {
      console.log(`FAIL: unexpected error: ${e && e.message ? e.message : e}`);
      process.exitCode = 1;
    }
  });
