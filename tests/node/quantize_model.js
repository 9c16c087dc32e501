#!/usr/bin/env node
// Writes a quantized copy of a float32 Layers model as tensorflowjs_converter
// does (tfjs-converter/python/tensorflowjs/quantization.py): per tensor,
// uint8/uint16 affine with the range nudged so that 0 is exact (q = round
// half to even of (clip(w) - min) / scale; a constant tensor is all zeros
// with scale 1), or float16 (round to nearest even). The manifest entry keeps
// "dtype": "float32" and gains "quantization": {dtype, min, scale,
// original_dtype} (float16: {dtype, original_dtype}). The weights go into
// SHARDS files group1-shard<i>of<N>.bin cut at odd byte offsets, so that
// tensors straddle files, as the converter's sharding allows.
//
// Usage: node quantize_model.js SRC_DIR OUT_DIR uint8|uint16|float16 [SHARDS]
'use strict';

const fs = require('fs');
const path = require('path');

function roundHalfEven(x) {
  const r = Math.round(x);
  return (Math.abs(x % 1) === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

function quantizeAffine(values, bits) {
  const quantMax = bits === 8 ? 255 : 65535;
  let min = Infinity, max = -Infinity;
  for (const v of values) { min = Math.min(min, v); max = Math.max(max, v); }
  const out = bits === 8 ? new Uint8Array(values.length) : new Uint16Array(values.length);
  if (min === max) return {q: out, min, scale: 1.0};
  const scale = (max - min) / quantMax;
  let nudgedMin = min, nudgedMax = max;
  if (min <= 0 && 0 <= max) {
    nudgedMin = -roundHalfEven(-min / scale) * scale;
    nudgedMax = quantMax * scale + nudgedMin;
  }
  for (let i = 0; i < values.length; i++) {
    const c = Math.min(Math.max(values[i], nudgedMin), nudgedMax);
    out[i] = Math.min(quantMax, Math.max(0, roundHalfEven((c - nudgedMin) / scale)));
  }
  return {q: out, min: nudgedMin, scale};
}

// float32 -> binary16 bits, round to nearest even (numpy's astype(float16)).
function toHalf(value) {
  const f = new Float32Array([value]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1), halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1))) half++;
  return sign | half;  // a carry into the exponent is the right rounding too
}

function main() {
  const [src, out, dtype, shardsArg] = process.argv.slice(2);
  if (!dtype || !['uint8', 'uint16', 'float16'].includes(dtype)) {
    console.error('Usage: node quantize_model.js SRC_DIR OUT_DIR uint8|uint16|float16 [SHARDS]');
    return 2;
  }
  const shards = Number(shardsArg || 2);
  const model = JSON.parse(fs.readFileSync(path.join(src, 'model.json'), 'utf8'));
  const groups = model.weightsManifest;
  const parts = [];
  for (const group of groups) {
    const data = Buffer.concat(group.paths.map(p => fs.readFileSync(path.join(src, p))));
    let offset = 0;
    for (const spec of group.weights) {
      const n = spec.shape.reduce((a, b) => a * b, 1);
      const values = new Float32Array(n);
      for (let i = 0; i < n; i++) values[i] = data.readFloatLE(offset + 4 * i);
      offset += 4 * n;
      if (dtype === 'float16') {
        const q = new Uint16Array(n);
        for (let i = 0; i < n; i++) q[i] = toHalf(values[i]);
        spec.quantization = {dtype, original_dtype: 'float32'};
        parts.push(Buffer.from(q.buffer));
      } else {
        const {q, min, scale} = quantizeAffine(values, dtype === 'uint8' ? 8 : 16);
        spec.quantization = {dtype, min, scale, original_dtype: 'float32'};
        parts.push(Buffer.from(q.buffer));
      }
    }
  }
  const all = Buffer.concat(parts);
  const weights = groups.flatMap(g => g.weights);
  const paths = [];
  fs.mkdirSync(out, {recursive: true});
  const step = Math.ceil(all.length / shards) | 1;  // odd: cuts inside tensors
  for (let i = 0, at = 0; at < all.length; i++, at += step) {
    paths.push(`group1-shard${i + 1}of${Math.ceil(all.length / step)}.bin`);
    fs.writeFileSync(path.join(out, paths[i]), all.subarray(at, Math.min(all.length, at + step)));
  }
  model.weightsManifest = [{paths, weights}];
  fs.writeFileSync(path.join(out, 'model.json'), JSON.stringify(model));
  console.log(`${out}: ${weights.length} tensors as ${dtype}, ${all.length} bytes in ${paths.length} files`);
  return 0;
}

process.exit(main());
