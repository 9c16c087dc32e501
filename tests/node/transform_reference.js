// What real TF.js 4.22 computes for tf.image.transform (TF's
// ImageProjectiveTransformV3: each row [a0 a1 a2 b0 b1 b2 c0 c1] maps an
// OUTPUT point to an INPUT point) for every fill mode and both
// interpolations, printed as JSON: tests/data/augment/transform_reference.json,
// which tests/test_augment.cpp's AffineTransformTest.ValuesAreRealTfjss reads.
// Run: node tests/node/transform_reference.js > tests/data/augment/transform_reference.json
//
// Each image is seq(h, w, c, k): value i (row-major HWC) is ((i * k + 7) % 251) / 250
// as float32; the C++ test makes the same.
'use strict';

const {loadTf} = require('./tfjs_common');

async function main() {
  const tf = await loadTf();
  const seq = (h, w, c, k) => tf.tensor(
      Array.from({length: h * w * c}, (_, i) => ((i * k + 7) % 251) / 250), [1, h, w, c],
      'float32');
  const images = [
    {h: 4, w: 5, c: 1, k: 37},
    {h: 5, w: 4, c: 3, k: 53},
  ];
  // Rotation, zooms in and out, translations (one far enough to reflect and
  // wrap more than once), and a projective one (c0, c1 not 0).
  const matrices = [
    {name: 'rotation', m: [0.7648422, -0.64421767, 1.6223, 0.64421767, 0.7648422, -0.9004, 0, 0]},
    {name: 'zoom_out', m: [1.3, 0, -0.6, 0, 0.8, 0.3, 0, 0]},
    {name: 'zoom_in', m: [0.7, 0, 0.6, 0, 0.7, 0.45, 0, 0]},
    {name: 'translation', m: [1, 0, -1.6, 0, 1, 2.3, 0, 0]},
    {name: 'far_translation', m: [1, 0, 9.5, 0, 1, -11.25, 0, 0]},
    {name: 'projective', m: [0.9, 0.2, -0.4, -0.1, 1.1, 0.3, 0.05, -0.08]},
  ];
  const out = [];
  for (const im of images) {
    for (const t of matrices) {
      for (const interpolation of ['nearest', 'bilinear']) {
        for (const fillMode of ['reflect', 'wrap', 'constant', 'nearest']) {
          const fillValue = 0.25;
          const y = tf.image.transform(seq(im.h, im.w, im.c, im.k), tf.tensor2d([t.m], [1, 8]),
                                       interpolation, fillMode, fillValue);
          out.push({h: im.h, w: im.w, c: im.c, k: im.k, matrix: t.name, m: t.m, interpolation,
                    fill_mode: fillMode, fill_value: fillValue,
                    values: Array.from(y.dataSync())});
        }
      }
    }
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
