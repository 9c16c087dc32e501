#!/usr/bin/env node
// Run an ONNX model that `mnist-train convert --to onnx` wrote in ONNX Runtime
// (onnxruntime-node, its CPU execution provider) on MNIST test images (or raw
// float32 inputs of any image shape), and compare its outputs with the
// probabilities TF.js's predict() gave for the same inputs.
//
// Exit status: 0 PASS, 1 FAIL (a check failed or ONNX Runtime refused the
// model), 2 usage or I/O error.
'use strict';

const {UsageError, IOError, readFile, checkInputOptions, readRawInputs} = require('./tfjs_common');

const USAGE = `Usage: node onnx_check.js --model FILE.onnx --images IDX_IMAGES_FILE --expect FILE [options]
       node onnx_check.js --model FILE.onnx --inputs FILE --input-shape H,W,C --expect FILE [options]

Loads FILE.onnx in onnxruntime-node, checks its input (one, named --input-name
if given, [batch,H,W,C] float32 NHWC) and output, predicts the first N images
of IDX_IMAGES_FILE (pixels / 255) or the first N inputs of FILE in one batch,
and compares each output with --expect.

Options:
  --model FILE           the ONNX model (required)
  --images FILE          raw IDX images file, e.g. t10k-images-idx3-ubyte (this
                         or --inputs is required)
  --inputs FILE          float32 little-endian NHWC inputs (with --input-shape)
  --input-shape H,W,C    the shape of one input in --inputs
  --input-name NAME      the input name the model must declare
  --count N              number of inputs (default 100)
  --expect FILE          N*K little-endian float32 probabilities (TF.js's)
  --tol T                max allowed |onnxruntime - expected| (default 1e-5)
  -h, --help             show this help

Exit status: 0 PASS, 1 FAIL, 2 usage or I/O error.`;

class CheckFailure extends Error {}

function parseArgs(argv) {
  const opts = {count: 100, tol: 1e-5};
  const valued = {
    '--model': 'model', '--images': 'images', '--inputs': 'inputs', '--input-shape': 'inputShape',
    '--input-name': 'inputName', '--count': 'count', '--expect': 'expect', '--tol': 'tol',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') { opts.help = true; continue; }
    const key = valued[a];
    if (!key) throw new UsageError(`unknown argument: ${a}`);
    if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
    opts[key] = argv[++i];
  }
  if (opts.help) return opts;
  if (!opts.model) throw new UsageError('--model is required');
  if (!opts.expect) throw new UsageError('--expect is required');
  opts.count = Number(opts.count);
  if (!Number.isInteger(opts.count) || opts.count < 1) throw new UsageError('--count must be a positive integer');
  opts.tol = Number(opts.tol);
  if (!(opts.tol >= 0)) throw new UsageError('--tol must be a number >= 0');
  checkInputOptions(opts);
  return opts;
}

// The first n images of a raw IDX images file, as float32 in [0,1].
function readIdxPixels(file, n) {
  const buf = readFile(file, 'images file');
  if (buf.length < 16 || buf.readUInt32BE(0) !== 2051) throw new IOError(`${file} is not an IDX images file`);
  const count = buf.readUInt32BE(4);
  const per = buf.readUInt32BE(8) * buf.readUInt32BE(12);
  if (buf.length !== 16 + count * per) throw new IOError(`${file}: size does not match its header`);
  if (n > count) throw new UsageError(`--count ${n} exceeds the ${count} images in ${file}`);
  const px = new Float32Array(n * per);
  for (let i = 0; i < px.length; i++) px[i] = buf[16 + i] / 255;
  return px;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.help) { console.log(USAGE); return 0; }
  const n = opts.count;
  const shape = opts.inputs ? opts.inputShape : [28, 28, 1];
  const pixels = opts.inputs ? readRawInputs(opts.inputs, n, shape) : readIdxPixels(opts.images, n);
  const expectBytes = readFile(opts.expect, 'expected-probabilities file');
  readFile(opts.model, 'ONNX model');

  const ort = require('onnxruntime-node');
  let session;
  try {
    session = await ort.InferenceSession.create(opts.model, {executionProviders: ['cpu']});
  } catch (e) {
    throw new CheckFailure(`onnxruntime-node ${ort.env.versions.node} refused the model: ${e.message}`);
  }
  const failures = [];
  if (session.inputNames.length !== 1 || session.outputNames.length !== 1) {
    throw new CheckFailure(`expected one input and one output, the model has inputs ` +
                           `[${session.inputNames}] and outputs [${session.outputNames}]`);
  }
  const inputName = session.inputNames[0];
  if (opts.inputName !== undefined && inputName !== opts.inputName) {
    failures.push(`input named '${inputName}', expected '${opts.inputName}'`);
  }
  const feeds = {[inputName]: new ort.Tensor('float32', pixels, [n, ...shape])};
  let result;
  try {
    result = await session.run(feeds);
  } catch (e) {
    throw new CheckFailure(`onnxruntime-node could not run the model on [${n},${shape}]: ${e.message}`);
  }
  const out = result[session.outputNames[0]];
  const k = out.dims[out.dims.length - 1];
  if (out.dims.length !== 2 || out.dims[0] !== n) {
    failures.push(`output shape [${out.dims}], expected [${n},K]`);
  }
  if (expectBytes.length !== n * k * 4) {
    failures.push(`--expect holds ${expectBytes.length / 4} values, the model gives ${n}x${k}`);
  }
  let maxDiff = 0;
  let argmaxAgree = 0;
  if (failures.length === 0) {
    for (let i = 0; i < n; i++) {
      let best = 0;
      let bestExpected = 0;
      for (let j = 0; j < k; j++) {
        const got = out.data[i * k + j];
        const want = expectBytes.readFloatLE((i * k + j) * 4);
        const d = Math.abs(got - want);
        if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : d;
        if (got > out.data[i * k + best]) best = j;
        if (want > expectBytes.readFloatLE((i * k + bestExpected) * 4)) bestExpected = j;
      }
      if (best === bestExpected) argmaxAgree++;
    }
    if (!(maxDiff <= opts.tol)) failures.push(`max |onnxruntime - tfjs| = ${maxDiff.toExponential(3)} > ${opts.tol}`);
  }
  const summary = `onnxruntime-node ${ort.env.versions.node}, input '${inputName}' [${n},${shape}], ` +
                  `${n}x${k} outputs: max |onnxruntime - tfjs| = ${maxDiff.toExponential(3)} ` +
                  `(tol ${opts.tol}), argmax agrees on ${argmaxAgree}/${n}`;
  if (failures.length > 0) {
    console.log(`FAIL: ${failures.join('; ')} (${summary})`);
    return 1;
  }
  console.log(`PASS: ${summary}`);
  return 0;
}

main().then((code) => process.exit(code), (e) => {
  if (e instanceof UsageError) { console.error(`onnx_check: ${e.message}\n${USAGE}`); process.exit(2); }
  if (e instanceof IOError) { console.error(`onnx_check: ${e.message}`); process.exit(2); }
  if (e instanceof CheckFailure) { console.log(`FAIL: ${e.message}`); process.exit(1); }
  console.error(e); process.exit(1);
});
