// What real TF.js 4.22 computes for tf.image.resize's two kernels with
// TensorFlow's settings for Keras (alignCorners false, halfPixelCenters true:
// the formulas of TF's ResizeBilinear and ResizeNearestNeighbor kernels),
// printed as JSON: the expected values of tests/test_image.cpp's
// ResizeTest.ValuesAreRealTfjss, which were taken from this output.
// Run: node tests/node/resize_reference.js
//
// Each image is seq(h, w, c, k): byte i (row-major HWC) is (i * k + 7) % 251;
// the C++ test makes the same. A crop case takes Keras's smart_resize box
// (its TensorFlow path: float32 quotients truncated to int32) first.
'use strict';

const {loadTf} = require('./tfjs_common');

async function main() {
  const tf = await loadTf();
  const seq = (h, w, c, k) =>
      tf.tensor(Array.from({length: h * w * c}, (_, i) => (i * k + 7) % 251), [h, w, c], 'int32');
  const f32 = Math.fround;
  // keras/src/utils/image_utils.py smart_resize, dynamic-shape branch.
  const cropBox = (h, w, th, tw) => {
    const ch = Math.max(Math.min(h, Math.trunc(f32(f32(w * th) / tw))), 1);
    const cw = Math.max(Math.min(w, Math.trunc(f32(f32(h * tw) / th))), 1);
    return {top: Math.trunc(f32(h - ch) / 2), left: Math.trunc(f32(w - cw) / 2), height: ch,
            width: cw};
  };
  const cases = [
    {name: 'gray_up_rows_down_cols', h: 3, w: 5, c: 1, k: 37, out: [7, 4]},
    {name: 'rgb_down', h: 4, w: 4, c: 3, k: 53, out: [2, 3]},
    {name: 'rgb_up_odd', h: 5, w: 3, c: 3, k: 29, out: [7, 4]},
    {name: 'gray_one_pixel_up', h: 1, w: 1, c: 1, k: 1, out: [3, 2]},
    {name: 'gray_to_one_pixel', h: 8, w: 6, c: 1, k: 97, out: [1, 1]},
    {name: 'rgb_crop_wide', h: 7, w: 10, c: 3, k: 41, out: [4, 4], crop: true},
    {name: 'gray_crop_tall', h: 11, w: 4, c: 1, k: 23, out: [3, 5], crop: true},
  ];
  const out = [];
  for (const t of cases) {
    let image = seq(t.h, t.w, t.c, t.k);
    let box = {top: 0, left: 0, height: t.h, width: t.w};
    if (t.crop) {
      box = cropBox(t.h, t.w, t.out[0], t.out[1]);
      image = image.slice([box.top, box.left, 0], [box.height, box.width, t.c]);
    }
    const x = image.toFloat();
    const bilinear = tf.image.resizeBilinear(x, t.out, false, true);
    const nearest = tf.image.resizeNearestNeighbor(x, t.out, false, true);
    out.push({name: t.name, h: t.h, w: t.w, c: t.c, k: t.k, out: t.out, box,
              bilinear: Array.from(bilinear.dataSync()),
              nearest: Array.from(nearest.dataSync())});
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
