// The demo page: loads the model with tf.loadLayersModel from a relative
// path, as the chapter does, then shows its summary, the training curves, its
// guesses on a sample of test images, and a pad to draw on. A model that does
// not take MNIST's 28x28 grayscale digits (one trained on a folder of images,
// docs/serving.md) gets an image upload and the webcam in place of the pad,
// and the sample comes at its size and colours.
// window.mnistPage exposes what the page computed (the browser test reads it).
'use strict';

const MODEL_URL = 'models/model.json';
const HISTORY_URL = 'models/history.json';
const TM_METADATA_URL = 'models/metadata.json';
const SAMPLE_INFO_URL = 'sample/info.json';     // {count, height, width, channels, labels}
const SAMPLE_IMAGES_URL = 'sample/images.bin';  // N*H*W*C uint8, row-major HWC
const SAMPLE_LABELS_URL = 'sample/labels.bin';  // N uint8 (a static server's copy: MNIST's)
const SIDE = 28;
// The model's input [height, width, channels] and how its images are read
// (userDefinedMetadata's interpolation and cropToAspectRatio, as mnist-train
// predict reads files); set once the model is loaded.
const INPUT = {height: SIDE, width: SIDE, channels: 1, interpolation: 'bilinear', crop: false};
// MNIST's digits get the drawing pad; any other input the upload and webcam.
const isDigitModel = () => INPUT.height === SIDE && INPUT.width === SIDE && INPUT.channels === 1;
// MNIST's digits; a model trained on another dataset (mnist-train --dataset
// fashion-mnist) names its classes in model.json's userDefinedMetadata, and
// one trained on some of them (--labels 5-9) says which: output k stands for
// dataset label LABELS[k].
let CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
let LABELS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

function useModelClassNames(model) {
  const meta = (model.getUserDefinedMetadata && model.getUserDefinedMetadata()) || {};
  const k = model.outputs[0].shape[1];
  const labels = Array.isArray(meta.labels) && meta.labels.length === k ?
      meta.labels.map(Number) : Array.from({length: k}, (_, c) => c);
  const names = Array.isArray(meta.classNames) && meta.classNames.length === k ?
      meta.classNames.map(String) : labels.map((l) => CLASSES[l] || String(l));
  if (k === CLASSES.length && String(names) === String(CLASSES)) return;
  CLASSES = names;
  LABELS = labels;
  page.classNames = CLASSES;
  page.labels = LABELS;
  if ((meta.dataset && meta.dataset !== 'mnist') || names.some((n) => n.length > 1)) {
    $('probs').classList.add('named');
  }
  setupBars();
}

// A model without classNames of its own (Teachable Machine's, or one
// converted from Keras) may name them in metadata.json beside model.json.
async function useMetadataClassNames(model) {
  const meta = (model.getUserDefinedMetadata && model.getUserDefinedMetadata()) || {};
  if (Array.isArray(meta.classNames)) return;
  try {
    const res = await fetch(TM_METADATA_URL);
    if (!res.ok) return;
    const tm = await res.json();
    const k = model.outputs[0].shape[1];
    if (Array.isArray(tm.labels) && tm.labels.length === k) {
      model.setUserDefinedMetadata({...meta, classNames: tm.labels.map(String)});
    }
  } catch (e) {
    console.warn(`${TM_METADATA_URL}: ${e.message}`);
  }
}

function useModelInput(model) {
  const shape = model.inputs[0].shape;  // [null, H, W, C]
  const meta = (model.getUserDefinedMetadata && model.getUserDefinedMetadata()) || {};
  // Not an image of 1 or 3 channels: the page goes on as for MNIST's digits
  // (and says what fails).
  if (shape.length !== 4 || !(shape[3] === 1 || shape[3] === 3)) return;
  INPUT.height = shape[1];
  INPUT.width = shape[2];
  INPUT.channels = shape[3];
  INPUT.interpolation = meta.interpolation === 'nearest' ? 'nearest' : 'bilinear';
  INPUT.crop = meta.cropToAspectRatio === true;
  page.input = {...INPUT};
}

const page = {done: false, error: null, model: null, gridPredictions: [], gridProbs: [],
              gridLabels: [], drawProbs: null, drawUpdates: 0, input: null, sampleNote: null,
              uploadProbs: null, uploadShape: null, uploadUpdates: 0,
              cameraProbs: null, cameraShape: null, cameraUpdates: 0, cameraError: null};
window.mnistPage = page;

const $ = (id) => document.getElementById(id);

function chip(id, text, kind) {
  const el = $(id);
  el.textContent = text;
  el.className = kind || '';
}

function showError(title, detail) {
  const box = $('model-error');
  box.hidden = false;
  box.innerHTML = '';
  const strong = document.createElement('strong');
  strong.textContent = title;
  box.append(strong, document.createTextNode('\n' + detail));
}

async function fetchBytes(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`);
  return new Uint8Array(await res.arrayBuffer());
}

// ---- Model ----------------------------------------------------------------

async function loadModel() {
  try {
    return await tf.loadLayersModel(MODEL_URL);
  } catch (e) {
    const why = String((e && e.message) || e);
    let hint = 'Check that the folder given to `mnist-train serve --model DIR` holds ' +
        'model.json and the weight files its manifest names.';
    if (/404/.test(why)) {
      hint = 'No model.json there. Train and save one first:\n' +
          '  mnist-train --model-save-path DIR\n  mnist-train serve --model DIR';
    } else if (/JSON|Unexpected token/i.test(why)) {
      hint = 'model.json is not valid JSON; save the model again.';
    }
    throw new Error(`tf.loadLayersModel('${MODEL_URL}') failed: ${why}\n${hint}`);
  }
}

function showSummary(model) {
  tfvis.show.modelSummary($('summary'), model);
  chip('chip-model', `model: ${model.layers.length} layers, ` +
       `${model.countParams().toLocaleString('en-US')} parameters`, 'ok');
}

// ---- Training curves ------------------------------------------------------

async function showHistory() {
  let history;
  try {
    const res = await fetch(HISTORY_URL);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    history = await res.json();
  } catch (e) {
    $('history-note').textContent =
        `No training curves: ${HISTORY_URL} could not be read (${e.message}). ` +
        'mnist-train writes it beside model.json.';
    return;
  }
  const epochs = history.epochs || [];
  // tfjs-vis 1.5 plots points at their index (0, 1, ...), whatever their x.
  const series = (key) => epochs.map((e) => ({x: e.epoch, y: e[key]}));
  const opts = {xLabel: 'epoch (0 = the first)', width: 480, height: 260, zoomToFit: true};
  await tfvis.render.linechart($('loss-chart'),
      {values: [series('loss'), series('val_loss')], series: ['loss', 'val_loss']},
      {...opts, yLabel: 'loss'});
  await tfvis.render.linechart($('acc-chart'),
      {values: [series('acc'), series('val_acc')], series: ['acc', 'val_acc']},
      {...opts, yLabel: 'accuracy'});
  if (history.test) {
    $('test-score').textContent = `test accuracy ${(100 * history.test.acc).toFixed(2)}% ` +
        `on ${history.test.count} images`;
  }
  const s = history.settings || {};
  $('history-note').textContent = `${epochs.length} epoch(s), batch ${s.batch_size}, ` +
      `seed ${s.seed}, ${history.device || ''}; ${history.generatedBy || ''}`;
}

// ---- Test digits ----------------------------------------------------------

function argmaxRows(probs, n) {
  const out = new Array(n);
  const k = CLASSES.length;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) {
      if (probs[i * k + c] > probs[i * k + best]) best = c;
    }
    out[i] = best;
  }
  return out;
}

// Image i of `images` ([N,H,W,C] uint8) onto `canvas`, at its own size.
function drawSampleImage(canvas, images, i, shape) {
  const {height: h, width: w, channels: c} = shape;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(w, h);
  const base = i * h * w * c;
  for (let p = 0; p < h * w; p++) {
    const v = base + p * c;
    img.data.set(c === 1 ? [images[v], images[v], images[v], 255] :
                           [images[v], images[v + 1], images[v + 2], 255], p * 4);
  }
  ctx.putImageData(img, 0, 0);
}

// The sample's shape and labels: sample/info.json (mnist-train serve), else
// MNIST's 28x28 digits and labels.bin (the files a static server holds).
async function fetchSampleInfo() {
  const res = await fetch(SAMPLE_INFO_URL);
  if (res.ok) return res.json();
  if (res.status !== 404) throw new Error(`${SAMPLE_INFO_URL}: HTTP ${res.status}`);
  const labels = await fetchBytes(SAMPLE_LABELS_URL);
  return {count: labels.length, height: SIDE, width: SIDE, channels: 1,
          labels: Array.from(labels)};
}

async function showSample(model) {
  let images, labels, info;
  try {
    info = await fetchSampleInfo();
    if (!info.count) {
      throw new Error(info.reason || 'the server has none');
    }
    if (info.height !== INPUT.height || info.width !== INPUT.width ||
        info.channels !== INPUT.channels) {
      throw new Error(`the sample's images are ${info.height}x${info.width}x${info.channels}, ` +
                      `the model takes ${INPUT.height}x${INPUT.width}x${INPUT.channels}`);
    }
    images = await fetchBytes(SAMPLE_IMAGES_URL);
    labels = Uint32Array.from(info.labels);
  } catch (e) {
    page.sampleNote = `No test sample: ${e.message}`;
    $('grid').textContent = page.sampleNote;
    return;
  }
  const shape = {height: info.height, width: info.width, channels: info.channels};
  const size = shape.height * shape.width * shape.channels;
  // A model of some classes only is shown the sample images of those, each
  // label as the output that stands for it.
  const count = Math.min(labels.length, Math.floor(images.length / size));
  const keep = [];
  for (let i = 0; i < count; i++) if (LABELS.includes(labels[i])) keep.push(i);
  if (keep.length < count) {
    const kept = new Uint8Array(keep.length * size);
    keep.forEach((j, i) => kept.set(images.subarray(j * size, (j + 1) * size), i * size));
    images = kept;
  }
  labels = Uint32Array.from(keep, (j) => LABELS.indexOf(labels[j]));
  const n = labels.length;
  if (n === 0) {
    $('grid').textContent = 'No test sample of this model\'s classes.';
    return;
  }
  const probs = tf.tidy(() => {
    const x = tf.tensor4d(images.subarray(0, n * size),
                          [n, shape.height, shape.width, shape.channels], 'float32').div(255);
    return model.predict(x).dataSync();
  });
  const preds = argmaxRows(probs, n);
  page.gridPredictions = preds;
  page.gridProbs = Array.from(probs);
  page.gridLabels = Array.from(labels.subarray(0, n));

  const grid = $('grid');
  grid.textContent = '';
  let right = 0;
  for (let i = 0; i < n; i++) {
    const cell = document.createElement('div');
    const ok = preds[i] === labels[i];
    right += ok;
    cell.className = ok ? 'cell' : 'cell wrong';
    cell.dataset.pred = preds[i];
    cell.dataset.label = labels[i];
    cell.title = `#${i}: predicted ${CLASSES[preds[i]]} ` +
        `(p=${probs[i * CLASSES.length + preds[i]].toFixed(3)}), true ${CLASSES[labels[i]]}`;
    const canvas = document.createElement('canvas');
    canvas.width = shape.width;
    canvas.height = shape.height;
    drawSampleImage(canvas, images, i, shape);
    const pred = document.createElement('div');
    pred.className = 'pred';
    pred.textContent = CLASSES[preds[i]];
    cell.append(canvas, pred);
    if (!ok) {
      const truth = document.createElement('span');
      truth.className = 'truth';
      truth.textContent = CLASSES[labels[i]];
      cell.append(truth);
    }
    grid.append(cell);
  }
  $('grid-score').textContent =
      `${right} / ${n} right (${(100 * right / n).toFixed(1)}%), ${n - right} mistakes`;

  const labelT = tf.tensor1d(page.gridLabels, 'int32');
  const predT = tf.tensor1d(preds, 'int32');
  const perClass = await tfvis.metrics.perClassAccuracy(labelT, predT, CLASSES.length);
  await tfvis.show.perClassAccuracy($('per-class'), perClass, CLASSES);
  const matrix = await tfvis.metrics.confusionMatrix(labelT, predT, CLASSES.length);
  await tfvis.render.confusionMatrix($('confusion'), {values: matrix, tickLabels: CLASSES},
                                     {shadeDiagonal: true, width: 440, height: 400});
  labelT.dispose();
  predT.dispose();
}

// ---- Drawing pad ----------------------------------------------------------

function setupBars() {
  const list = $('probs');
  list.textContent = '';
  for (const c of CLASSES) {
    const li = document.createElement('li');
    li.innerHTML = `<b>${c}</b><div class="bar"><span></span></div><span class="pct">–</span>`;
    list.append(li);
  }
}

function showProbs(probs) {
  const items = $('probs').children;
  const best = probs.indexOf(Math.max(...probs));
  probs.forEach((p, c) => {
    items[c].dataset.prob = p;
    items[c].classList.toggle('top', c === best);
    items[c].querySelector('.bar span').style.width = `${(100 * p).toFixed(1)}%`;
    items[c].querySelector('.pct').textContent = `${(100 * p).toFixed(1)}%`;
  });
  $('guess').textContent = CLASSES[best];
  $('guess-note').textContent = `${(100 * probs[best]).toFixed(1)}% sure`;
}

function clearBars() {
  for (const li of $('probs').children) {
    delete li.dataset.prob;
    li.classList.remove('top');
    li.querySelector('.bar span').style.width = '0';
    li.querySelector('.pct').textContent = '–';
  }
  $('guess').textContent = '?';
  $('guess-note').textContent = 'draw something';
}

// MNIST digits are white on black, fit in 20x20 and are centred by their
// centre of mass in 28x28: do the same to the drawing.
function padToInput(pad, preview) {
  const w = pad.width, h = pad.height;
  const px = pad.getContext('2d').getImageData(0, 0, w, h).data;
  let x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (px[(y * w + x) * 4] > 20) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x);
        y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
    }
  }
  if (x1 < 0) return null;
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1;
  const scale = 20 / Math.max(bw, bh);
  const fit = document.createElement('canvas');
  fit.width = fit.height = SIDE;
  const f = fit.getContext('2d');
  f.imageSmoothingEnabled = true;
  f.imageSmoothingQuality = 'high';
  f.fillStyle = '#000';
  f.fillRect(0, 0, SIDE, SIDE);
  f.drawImage(pad, x0, y0, bw, bh, (SIDE - bw * scale) / 2, (SIDE - bh * scale) / 2,
              bw * scale, bh * scale);
  const small = f.getImageData(0, 0, SIDE, SIDE).data;
  let mass = 0, mx = 0, my = 0;
  for (let i = 0; i < SIDE * SIDE; i++) {
    const v = small[i * 4];
    mass += v; mx += v * (i % SIDE); my += v * Math.floor(i / SIDE);
  }
  const dx = Math.round((SIDE - 1) / 2 - mx / mass);
  const dy = Math.round((SIDE - 1) / 2 - my / mass);
  const p = preview.getContext('2d');
  p.fillStyle = '#000';
  p.fillRect(0, 0, SIDE, SIDE);
  p.drawImage(fit, dx, dy);
  return tf.tidy(() => tf.browser.fromPixels(preview, 1).toFloat().div(255)
                           .reshape([1, SIDE, SIDE, 1]));
}

function setupPad() {
  const pad = $('pad'), preview = $('preview');
  const ctx = pad.getContext('2d');
  const reset = () => {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, pad.width, pad.height);
    preview.getContext('2d').clearRect(0, 0, SIDE, SIDE);
    page.drawProbs = null;
    clearBars();
  };
  reset();
  ctx.strokeStyle = '#fff';
  ctx.lineWidth = 20;
  ctx.lineCap = ctx.lineJoin = 'round';

  let drawing = false, last = null, pending = false;
  const point = (e) => {
    const r = pad.getBoundingClientRect();
    return {x: (e.clientX - r.left) * pad.width / r.width,
            y: (e.clientY - r.top) * pad.height / r.height};
  };
  const predict = () => {
    pending = false;
    if (!page.model) return;
    const x = padToInput(pad, preview);
    if (!x) return;
    const probs = tf.tidy(() => Array.from(page.model.predict(x).dataSync()));
    x.dispose();
    page.drawProbs = probs;
    page.drawUpdates++;
    showProbs(probs);
  };
  const schedule = () => {
    if (!pending) {
      pending = true;
      requestAnimationFrame(predict);
    }
  };
  pad.addEventListener('pointerdown', (e) => {
    drawing = true;
    pad.setPointerCapture(e.pointerId);
    last = point(e);
    ctx.beginPath();
    ctx.arc(last.x, last.y, ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fillStyle = '#fff';
    ctx.fill();
    schedule();
  });
  pad.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    const p = point(e);
    ctx.beginPath();
    ctx.moveTo(last.x, last.y);
    ctx.lineTo(p.x, p.y);
    ctx.stroke();
    last = p;
    schedule();
  });
  const end = () => {
    drawing = false;
    schedule();
  };
  pad.addEventListener('pointerup', end);
  pad.addEventListener('pointercancel', end);
  $('clear').addEventListener('click', reset);
}

// ---- An image of your own: upload and webcam ------------------------------

// The largest picture read, as mnist-train's decoder refuses larger ones
// (kMaxImagePixels, include/mnist/image.hpp).
const MAX_IMAGE_PIXELS = 4096 * 4096;

// Keras's centred crop box for cropToAspectRatio, as mnist-train computes
// it (aspect_crop, src/image/resize.cpp): float32 arithmetic, truncated.
function aspectCrop(height, width, targetHeight, targetWidth) {
  const f = Math.fround;
  const crop = (other, target, targetOther, limit) =>
    Math.max(Math.min(limit, Math.trunc(f(f(other * target) / f(targetOther)))), 1);
  const h = crop(width, targetHeight, targetWidth, height);
  const w = crop(height, targetWidth, targetHeight, width);
  return {top: Math.trunc(f(height - h) / 2), left: Math.trunc(f(width - w) / 2),
          height: h, width: w};
}

// A picture's RGBA pixels at its own size -> the model's input [1,H,W,C] in
// [0,1], as mnist-train reads an image file for a folder's model
// (decode_for_dataset, docs/serving.md): to gray as libpng's integers
// (9797 R + 19234 G + 3737 B) >> 15, alpha dropped; the centred crop box
// when the model was trained with cropToAspectRatio; TF's resize with
// half-pixel centres (bilinear, or nearest when the metadata says so);
// rounded to whole values, halves to even; divided by 255.
function pixelsToInput(rgba, width, height) {
  return tf.tidy(() => {
    let x = tf.tensor3d(new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.length),
                        [height, width, 4], 'int32').slice([0, 0, 0], [height, width, 3]);
    if (INPUT.channels === 1) {
      x = tf.floorDiv(x.mul(tf.tensor1d([9797, 19234, 3737], 'int32')).sum(2, true),
                      tf.scalar(32768, 'int32'));
    }
    let box = {top: 0, left: 0, height, width};
    if (INPUT.crop) {
      box = aspectCrop(height, width, INPUT.height, INPUT.width);
      x = x.slice([box.top, box.left, 0], [box.height, box.width, INPUT.channels]);
    }
    x = x.toFloat().expandDims(0);
    if (box.height !== INPUT.height || box.width !== INPUT.width) {
      const size = [INPUT.height, INPUT.width];
      x = INPUT.interpolation === 'nearest' ?
          tf.image.resizeNearestNeighbor(x, size, false, true) :
          tf.image.resizeBilinear(x, size, false, true);
      x = x.round().clipByValue(0, 255);
    }
    return x.div(255);
  });
}

// `source` (an ImageBitmap or a playing <video>) drawn at its own size.
function sourcePixels(source, width, height) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  ctx.drawImage(source, 0, 0);
  return ctx.getImageData(0, 0, width, height).data;
}

// Predicts `x` ([1,H,W,C]), shows it and the bars; returns the probabilities.
function predictInput(x) {
  tf.browser.toPixels(x.squeeze([0]), $('image-preview'));
  const probs = tf.tidy(() => Array.from(page.model.predict(x).dataSync()));
  showProbs(probs);
  return probs;
}

function imageNote(text) {
  $('image-note').textContent = text;
}

async function predictFile(file) {
  let bitmap;
  try {
    // The file's own pixels: no colour management, alpha not premultiplied.
    bitmap = await createImageBitmap(file, {colorSpaceConversion: 'none',
                                            premultiplyAlpha: 'none'});
  } catch (e) {
    imageNote(`${file.name}: the browser cannot decode it as an image (${e.message || e}).`);
    return;
  }
  if (bitmap.width * bitmap.height > MAX_IMAGE_PIXELS) {
    imageNote(`${file.name}: ${bitmap.width}x${bitmap.height} is more pixels than ` +
              `mnist-train reads (4096x4096).`);
    bitmap.close();
    return;
  }
  const x = pixelsToInput(sourcePixels(bitmap, bitmap.width, bitmap.height),
                          bitmap.width, bitmap.height);
  page.uploadShape = x.shape.slice(1);
  page.uploadProbs = predictInput(x);
  page.uploadUpdates++;
  x.dispose();
  imageNote(`${file.name}: ${bitmap.width}x${bitmap.height}, read at ` +
            `${INPUT.height}x${INPUT.width}.`);
  bitmap.close();
}

// The camera: a frame every CAMERA_MS while it runs (a modest rate: each
// is a prediction).
const CAMERA_MS = 500;
const camera = {stream: null, timer: null};

function stopCamera() {
  clearInterval(camera.timer);
  camera.timer = null;
  if (camera.stream) camera.stream.getTracks().forEach((t) => t.stop());
  camera.stream = null;
  $('camera').hidden = true;
  $('camera-toggle').textContent = 'Start the camera';
}

function cameraFrame() {
  const video = $('camera');
  if (!page.model || video.readyState < 2 || !video.videoWidth) return;
  const w = video.videoWidth, h = video.videoHeight;
  const x = pixelsToInput(sourcePixels(video, w, h), w, h);
  page.cameraShape = x.shape.slice(1);
  page.cameraProbs = predictInput(x);
  page.cameraUpdates++;
  x.dispose();
  imageNote(`camera: ${w}x${h}, read at ${INPUT.height}x${INPUT.width} ` +
            `every ${CAMERA_MS} ms.`);
}

async function startCamera() {
  page.cameraError = null;
  // getUserMedia is offered on secure pages only: https, or http on localhost.
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    page.cameraError = 'This browser offers no camera to this page: cameras need a secure ' +
        'page (https, or http://localhost / 127.0.0.1).';
    imageNote(page.cameraError);
    return;
  }
  try {
    camera.stream = await navigator.mediaDevices.getUserMedia({video: true, audio: false});
  } catch (e) {
    const name = (e && e.name) || '';
    page.cameraError = name === 'NotAllowedError' || name === 'SecurityError' ?
        'The camera was not allowed: permission refused (the browser\'s site settings ' +
            'can allow it).' :
        name === 'NotFoundError' || name === 'OverconstrainedError' ?
        'No camera found.' :
        `The camera could not be started: ${name} ${e.message || e}`;
    imageNote(page.cameraError);
    return;
  }
  const video = $('camera');
  video.srcObject = camera.stream;
  video.hidden = false;
  await video.play();
  $('camera-toggle').textContent = 'Stop the camera';
  camera.timer = setInterval(cameraFrame, CAMERA_MS);
}

// In place of the pad: the card that reads files and the camera, with the
// verdict and bars moved into it.
function setupImageInput() {
  $('draw-card').hidden = true;
  $('image-card').hidden = false;
  $('image-result').append(document.querySelector('.verdict'), $('probs'));
  $('image-size').textContent = `${INPUT.height}×${INPUT.width} ` +
      `${INPUT.channels === 3 ? 'RGB' : 'grayscale'}` +
      `${INPUT.crop ? ', cropped to its aspect ratio' : ''}`;
  const preview = $('image-preview');
  preview.width = INPUT.width;
  preview.height = INPUT.height;
  $('guess-note').textContent = 'choose an image';
  $('upload').addEventListener('change', (e) => {
    const file = e.target.files && e.target.files[0];
    if (file) predictFile(file);
  });
  $('camera-toggle').addEventListener('click', () => {
    if (camera.stream) stopCamera();
    else startCamera();
  });
  $('grid-title').textContent = 'Test images';
  $('grid-source').textContent = 'Test images of the folder the server was given';
  document.querySelector('header h1').textContent = 'Your model, in your browser';
}

// ---- Start ----------------------------------------------------------------

async function main() {
  setupBars();
  if (typeof tf === 'undefined' || typeof tfvis === 'undefined') {
    throw new Error('TensorFlow.js or tfjs-vis did not load (vendor/tf.min.js, ' +
        'vendor/tfjs-vis.umd.min.js).\nInstall them with scripts/setup.sh (npm ci in web/).');
  }
  setupPad();
  await tf.ready();
  chip('chip-tfjs', `TF.js ${tf.version.tfjs}`);
  chip('chip-backend', `backend: ${tf.getBackend()}`);
  const historyDone = showHistory();
  const model = await loadModel();
  page.model = model;
  useModelInput(model);
  await useMetadataClassNames(model);
  useModelClassNames(model);
  if (!isDigitModel()) setupImageInput();
  showSummary(model);
  await Promise.all([showSample(model), historyDone]);
}

main().catch((e) => {
  page.error = String((e && e.message) || e);
  chip('chip-model', 'model: not loaded', 'fail');
  showError('The model could not be loaded.', page.error);
  console.error(e);
}).finally(() => {
  page.done = true;
});
