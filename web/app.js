// The demo page: loads the model with tf.loadLayersModel from a relative
// path, as the chapter does, then shows its summary, the training curves, its
// guesses on a sample of MNIST test digits, and a pad to draw on.
// window.mnistPage exposes what the page computed (the browser test reads it).
'use strict';

const MODEL_URL = 'models/model.json';
const HISTORY_URL = 'models/history.json';
const SAMPLE_IMAGES_URL = 'sample/images.bin';  // N*784 uint8, row-major 28x28
const SAMPLE_LABELS_URL = 'sample/labels.bin';  // N uint8 in 0..9
const SIDE = 28;
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
  if (meta.dataset && meta.dataset !== 'mnist') $('probs').classList.add('named');
  setupBars();
}

const page = {done: false, error: null, model: null, gridPredictions: [],
              gridLabels: [], drawProbs: null, drawUpdates: 0};
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

function drawDigit(canvas, images, i) {
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(SIDE, SIDE);
  for (let p = 0; p < SIDE * SIDE; p++) {
    const v = images[i * SIDE * SIDE + p];
    img.data.set([v, v, v, 255], p * 4);
  }
  ctx.putImageData(img, 0, 0);
}

async function showSample(model) {
  let images, labels;
  try {
    [images, labels] = await Promise.all(
        [fetchBytes(SAMPLE_IMAGES_URL), fetchBytes(SAMPLE_LABELS_URL)]);
  } catch (e) {
    $('grid').textContent = `No test sample: ${e.message}`;
    return;
  }
  // A model of some classes only is shown the sample images of those, each
  // label as the output that stands for it.
  const count = Math.min(labels.length, Math.floor(images.length / (SIDE * SIDE)));
  const keep = [];
  for (let i = 0; i < count; i++) if (LABELS.includes(labels[i])) keep.push(i);
  if (keep.length < count) {
    const kept = new Uint8Array(keep.length * SIDE * SIDE);
    keep.forEach((j, i) => kept.set(images.subarray(j * SIDE * SIDE, (j + 1) * SIDE * SIDE),
                                    i * SIDE * SIDE));
    images = kept;
  }
  labels = Uint8Array.from(keep, (j) => LABELS.indexOf(labels[j]));
  const n = labels.length;
  if (n === 0) {
    $('grid').textContent = 'No test sample of this model\'s classes.';
    return;
  }
  const probs = tf.tidy(() => {
    const x = tf.tensor4d(images.subarray(0, n * SIDE * SIDE), [n, SIDE, SIDE, 1], 'float32')
                  .div(255);
    return model.predict(x).dataSync();
  });
  const preds = argmaxRows(probs, n);
  page.gridPredictions = preds;
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
    canvas.width = canvas.height = SIDE;
    drawDigit(canvas, images, i);
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
  useModelClassNames(model);
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
