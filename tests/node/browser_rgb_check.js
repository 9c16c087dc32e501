#!/usr/bin/env node
// The page with a model that is not MNIST's 28x28 grayscale, in real
// Chromium (tests/serve_rgb_model.sh makes the model, its folder and an image
// to upload): the class names are the folder's; the sample grid shows the
// folder's test images at the model's size, and the page's predictions equal
// `mnist-train predict` for the same files; an uploaded PNG gives the
// probabilities `mnist-train predict FILE` gives; Chromium's fake camera gives
// frames read at the model's size and a prediction; without --data-dir the
// sample comes from the folder history.json names, and when that is gone the
// page says why; with no camera at all the page says so.
//
// Usage: node browser_rgb_check.js --server MNIST_TRAIN --model DIR
//          --data-dir FOLDER --cache-dir DIR --upload FILE.png --sample N
//          --screenshot FILE.png
// Exit status: 0 PASS, 1 FAIL.
'use strict';

const {spawnSync} = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const {launchChromium, startServer, stopServers, check, pageState, flagArgs} =
    require('./browser_check.js');

// Chromium's fake camera (a moving test pattern) and no permission prompt.
const CAMERA_ARGS = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];
// An uploaded PNG is decoded exactly by the browser and by us; the page then
// crops and resizes in TF.js (float32, half-pixel centres) as our decoder does
// in C++ and rounds to whole values: where a resized value lands within
// float32 rounding of a half, the two may round it apart by 1/255. One such
// pixel moves a probability by far less than this.
const UPLOAD_TOLERANCE = 1e-3;
// The sample's bytes are the ones predict decodes (the same decoder and
// cache): only the order of float32 sums differs (TF.js against oneDNN), as
// browser_check.js's MNIST grid shows.
const GRID_TOLERANCE = 1e-4;

/// The files the server's sample holds, as folder_test_sample picks them:
/// test/'s files in Keras's order (classes sorted, files sorted by name),
/// every (n / count)-th; each with its class index.
function sampleFiles(folder, count) {
  const test = path.join(folder, 'test');
  const classes = fs.readdirSync(test).sort();
  const files = [];
  classes.forEach((c, label) => {
    for (const f of fs.readdirSync(path.join(test, c)).sort()) {
      files.push({file: path.join(test, c, f), label});
    }
  });
  const take = Math.min(count, files.length);
  return Array.from({length: take}, (_, i) => files[Math.floor(i * files.length / take)]);
}

/// `mnist-train predict --json` of `files`: [{predicted, probabilities}, ...].
function ourPredictions(server, model, files) {
  const r = spawnSync(server, ['predict', '--json', '--model', model, ...files],
                      {encoding: 'utf8', maxBuffer: 64 << 20});
  if (r.status !== 0) throw new Error(`mnist-train predict: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function main() {
  const o = flagArgs(process.argv.slice(2),
      ['server', 'model', 'data-dir', 'cache-dir', 'upload', 'sample', 'screenshot']);
  const failures = [];
  const serveArgs = ['--cache-dir', o['cache-dir'], '--sample', o.sample];
  const url = await startServer(o.server, o.model, ['--data-dir', o['data-dir'], ...serveArgs]);
  const classNames = fs.readdirSync(path.join(o['data-dir'], 'train')).sort();
  const expected = sampleFiles(o['data-dir'], Number(o.sample));
  const ours = ourPredictions(o.server, o.model, expected.map((e) => e.file));
  const [upload] = ourPredictions(o.server, o.model, [o.upload]);
  const meta = JSON.parse(fs.readFileSync(path.join(o.model, 'model.json'), 'utf8'))
                   .userDefinedMetadata;
  const [height, width] = meta.imageSize;
  const channels = meta.colorMode === 'rgb' ? 3 : 1;

  const browser = await launchChromium(CAMERA_ARGS);
  try {
    console.log(`browser: ${browser.version()}`);
    const context = await browser.newContext({viewport: {width: 1200, height: 900}});
    await context.grantPermissions(['camera'], {origin: url.replace(/\/$/, '')});
    const page = await context.newPage();
    const logs = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    const t0 = Date.now();
    await page.goto(url);
    const state = await pageState(page);
    console.log(`page ready in ${Date.now() - t0} ms, backend ` +
                `${await page.evaluate(() => tf.getBackend())}`);
    check(failures, state.error === null, `model loaded (error: ${state.error})`);
    const input = await page.evaluate(() => window.mnistPage.input);
    check(failures, input && input.height === height && input.width === width &&
                        input.channels === channels && input.crop === (meta.cropToAspectRatio === true),
          `the page reads the model's input: ${JSON.stringify(input)}`);

    // The class names are the folder's, in the bars; the pad gives way.
    const bars = await page.$$eval('#probs li b', (els) => els.map((e) => e.textContent));
    check(failures, JSON.stringify(bars) === JSON.stringify(classNames),
          `bars name the folder's classes: ${JSON.stringify(bars)}`);
    check(failures, !(await page.isVisible('#draw-card')) && await page.isVisible('#image-card') &&
                        await page.isVisible('#upload-label'),
          'an upload and the camera in place of the drawing pad');

    // The grid: the sample's files at the model's size, our predictions.
    const cells = await page.$$eval('#grid .cell', (els) => els.map((e) => ({
      pred: Number(e.dataset.pred), label: Number(e.dataset.label),
      name: e.querySelector('.pred').textContent,
      size: [e.querySelector('canvas').height, e.querySelector('canvas').width]})));
    check(failures, cells.length === expected.length && cells.length > 0,
          `grid shows ${cells.length} images (the sample: ${expected.length})`);
    check(failures, cells.every((c) => c.size[0] === height && c.size[1] === width),
          `grid images at ${height}x${width}`);
    const wrongLabel = expected.filter((e, i) => !cells[i] || cells[i].label !== e.label).length;
    check(failures, wrongLabel === 0, `grid labels are the files' classes: ${wrongLabel} differ`);
    const differ = ours.filter((p, i) => !cells[i] || cells[i].pred !== p.predicted ||
                                          state.preds[i] !== p.predicted).length;
    check(failures, differ === 0,
          `grid predictions equal mnist-train predict's for the same files: ${differ} differ`);
    const gridProbs = await page.evaluate(() => window.mnistPage.gridProbs);
    const k = classNames.length;
    const gridDiff = Math.max(...ours.map((p, i) => Math.max(...p.probabilities.map((q, c) =>
        Math.abs(q - gridProbs[i * k + c])))));
    check(failures, gridProbs.length === ours.length * k && gridDiff <= GRID_TOLERANCE,
          `grid probabilities equal mnist-train predict's: max |diff| ${gridDiff.toExponential(2)}`);
    check(failures, cells.every((c) => c.name === classNames[c.pred]),
          'grid captions are class names');
    const classesShown = new Set(cells.map((c) => c.label)).size;
    check(failures, classesShown === classNames.length,
          `the sample spans the classes: ${classesShown} of ${classNames.length}`);
    console.log(`grid: ${await page.textContent('#grid-score')}`);

    // Upload: the page's probabilities are mnist-train predict's.
    await page.setInputFiles('#upload', o.upload);
    await page.waitForFunction(() => window.mnistPage.uploadUpdates > 0, null, {timeout: 20000});
    const up = await page.evaluate(() => ({probs: window.mnistPage.uploadProbs,
                                           shape: window.mnistPage.uploadShape}));
    const diff = Math.max(...up.probs.map((p, c) => Math.abs(p - upload.probabilities[c])));
    const argmax = up.probs.indexOf(Math.max(...up.probs));
    check(failures, JSON.stringify(up.shape) === JSON.stringify([height, width, channels]),
          `upload read at ${JSON.stringify(up.shape)}`);
    check(failures, up.probs.length === classNames.length && diff <= UPLOAD_TOLERANCE &&
                        argmax === upload.predicted,
          `upload: the page's probabilities are mnist-train predict's: max |diff| ` +
          `${diff.toExponential(2)}, class ${classNames[argmax]} (ours ${upload.class_name})`);
    check(failures, (await page.textContent('#guess')) === classNames[argmax],
          'upload: the verdict names the class');

    // The camera (Chromium's fake one): frames at the model's size, a prediction.
    await page.click('#camera-toggle');
    await page.waitForFunction(() => window.mnistPage.cameraUpdates > 0 ||
                                         window.mnistPage.cameraError, null, {timeout: 20000});
    const cam = await page.evaluate(() => ({probs: window.mnistPage.cameraProbs,
                                            shape: window.mnistPage.cameraShape,
                                            error: window.mnistPage.cameraError}));
    const camSum = (cam.probs || []).reduce((a, b) => a + b, 0);
    check(failures, cam.error === null &&
                        JSON.stringify(cam.shape) === JSON.stringify([height, width, channels]) &&
                        cam.probs.length === classNames.length && Math.abs(camSum - 1) < 1e-4,
          `camera: a frame read at ${JSON.stringify(cam.shape)}, probabilities summing to ` +
          `${camSum.toFixed(6)} (error: ${cam.error})`);
    check(failures, await page.isVisible('#camera'), 'camera: the video is shown');

    fs.mkdirSync(path.dirname(o.screenshot), {recursive: true});
    await page.screenshot({path: o.screenshot, fullPage: true});
    console.log(`screenshot: ${o.screenshot}`);
    await page.click('#camera-toggle');
    check(failures, !(await page.isVisible('#camera')), 'camera: stopped');

    // Without --data-dir: the folder history.json names.
    const url2 = await startServer(o.server, o.model, serveArgs);
    const p2 = await context.newPage();
    await p2.goto(url2);
    const s2 = await pageState(p2);
    check(failures, s2.error === null && s2.preds.length === expected.length &&
                        ours.every((p, i) => s2.preds[i] === p.predicted),
          `no --data-dir: the sample of the folder history.json names (${s2.preds.length})`);

    // That folder gone: no sample, and the page says why.
    const gone = fs.mkdtempSync(path.join(os.tmpdir(), 'mnist-gone-'));
    try {
      for (const f of fs.readdirSync(o.model)) {
        if (fs.statSync(path.join(o.model, f)).isFile()) {
          fs.copyFileSync(path.join(o.model, f), path.join(gone, f));
        }
      }
      const history = JSON.parse(fs.readFileSync(path.join(gone, 'history.json'), 'utf8'));
      history.data.folder = path.join(gone, 'moved-away');
      fs.writeFileSync(path.join(gone, 'history.json'), JSON.stringify(history));
      const url3 = await startServer(o.server, gone, serveArgs);
      const p3 = await context.newPage();
      await p3.goto(url3);
      const s3 = await pageState(p3);
      const note = await p3.textContent('#grid');
      check(failures, s3.error === null && s3.preds.length === 0 &&
                          /No test sample: .*moved-away.* is gone/.test(note),
            `folder gone: the page says why: ${JSON.stringify(note)}`);
    } finally {
      fs.rmSync(gone, {recursive: true, force: true});
    }
    if (failures.length) console.log(logs.join('\n'));
  } finally {
    await browser.close();
  }

  // A browser with no camera at all: the page says so.
  const bare = await launchChromium();
  try {
    const p4 = await bare.newPage();
    await p4.goto(url);
    await pageState(p4);
    await p4.click('#camera-toggle');
    await p4.waitForFunction(() => window.mnistPage.cameraError, null, {timeout: 20000});
    const note = await p4.textContent('#image-note');
    check(failures, /camera/i.test(note) && !(await p4.isVisible('#camera')),
          `no camera: the page says ${JSON.stringify(note)}`);
  } finally {
    await bare.close();
    stopServers();
  }
  if (failures.length) {
    console.log(`FAIL: ${failures.length} check(s) failed`);
    process.exit(1);
  }
  console.log('PASS');
}

main().catch((e) => {
  console.log(`FAIL: ${e.stack || e}`);
  stopServers();
  process.exit(1);
});
