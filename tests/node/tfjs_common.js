// Shared by the Node test scripts: real TF.js on its pure-JS CPU backend.
'use strict';

// Without the one-time "install the node backend" banner that its first
// tensor write prints in Node (noise in test logs).
async function loadTf() {
  const tf = require('@tensorflow/tfjs');
  await tf.setBackend('cpu');
  await tf.ready();
  const backend = tf.backend();
  if (backend && 'firstUse' in backend) backend.firstUse = false;
  return tf;
}

// A bad command line (exit 2) and a file that cannot be read or is not what
// it should be (exit 3), as each script reports them.
class UsageError extends Error {}
class IOError extends Error {}

function readFile(file, what) {
  try {
    return require('fs').readFileSync(file);
  } catch (e) {
    throw new IOError(`cannot read ${what} ${file}: ${e.code || e.message}`);
  }
}

// --images FILE (MNIST's IDX images) or --inputs FILE with --input-shape
// H,W,C: exactly one of the two, and the shape made [h, w, c].
function checkInputOptions(opts) {
  if (!opts.images === !opts.inputs) throw new UsageError('give one of --images FILE and --inputs FILE');
  if (opts.inputs) {
    const dims = opts.inputShape === undefined ? [] : String(opts.inputShape).split(',').map(Number);
    if (dims.length !== 3 || !dims.every((d) => Number.isInteger(d) && d > 0)) {
      throw new UsageError(`--inputs needs --input-shape H,W,C of three positive integers, got ${opts.inputShape}`);
    }
    opts.inputShape = dims;
  } else if (opts.inputShape !== undefined) {
    throw new UsageError('--input-shape goes with --inputs');
  }
}

// The first n inputs of `shape` ([h, w, c]) in `file`: float32 little-endian
// NHWC, the file a whole number of them.
function readRawInputs(file, n, shape) {
  const buf = readFile(file, 'inputs file');
  const perInput = shape[0] * shape[1] * shape[2];
  if (buf.length % (perInput * 4) !== 0) {
    throw new IOError(`${file}: ${buf.length} bytes is not a whole number of [${shape}] float32 inputs`);
  }
  const count = buf.length / (perInput * 4);
  if (n > count) throw new UsageError(`--count ${n} exceeds the ${count} inputs in ${file}`);
  const values = new Float32Array(n * perInput);
  for (let i = 0; i < values.length; i++) values[i] = buf.readFloatLE(i * 4);
  return values;
}

module.exports = {loadTf, UsageError, IOError, readFile, checkInputOptions, readRawInputs};
