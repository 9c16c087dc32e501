#!/usr/bin/env node
// End to end in a real browser: starts `mnist-train serve --port 0` on a
// model, drives Debian's chromium through the page (playwright-core, never a
// downloaded browser) and checks what the page shows against our own
// predictions. Always stops the servers it started.
//
// Usage: node browser_check.js --server MNIST_TRAIN --model DIR
//          --expect DIR/preds.json --screenshot FILE.png [--empty-model DIR]
//          [--labels-model DIR]
// --labels-model: a model of some digits only (mnist-train --labels): the
// page names its outputs by them and shows the sample images of those.
// Exit status: 0 PASS, 1 FAIL.
'use strict';

const {spawn} = require('child_process');
const fs = require('fs');
const path = require('path');
const {chromium} = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run'];
const servers = [];

/// Debian's chromium, headless, through playwright-core (the page set-up every
/// browser test here shares); `extraArgs` after the common flags.
function launchChromium(extraArgs = []) {
  return chromium.launch({executablePath: CHROMIUM, headless: true,
                          args: [...CHROMIUM_ARGS, ...extraArgs]});
}

/// `--name value` pairs into {name: value}; each of `required` must be given.
/// The browser checks' one argument parser.
function flagArgs(argv, required) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) {
      throw new Error(`bad argument ${argv[i]}`);
    }
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of required) {
    if (!out[k]) throw new Error(`--${k} is required`);
  }
  return out;
}

/// Starts `mnist-train serve --model DIR --port 0 [EXTRA...]`; resolves to its URL.
function startServer(binary, modelDir, extra = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['serve', '--model', modelDir, '--port', '0', ...extra],
                        {stdio: ['ignore', 'pipe', 'pipe']});
    servers.push(child);
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no URL from the server: ${out}${err}`)),
                             20000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
      if (m) {
        clearTimeout(timer);
        console.log(`server: ${out.trim()}`);
        resolve(m[0]);
      }
    });
    child.stderr.on('data', (d) => { err += d; });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}): ${err}`));
    });
  });
}

function stopServers() {
  for (const s of servers) {
    if (s.exitCode === null && s.signalCode === null) s.kill('SIGINT');
  }
}
process.on('exit', stopServers);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { stopServers(); process.exit(1); });
}

function check(failures, ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
}

async function pageState(page) {
  await page.waitForFunction(() => window.mnistPage && window.mnistPage.done, null,
                             {timeout: 120000});
  return page.evaluate(() => ({
    error: window.mnistPage.error,
    preds: window.mnistPage.gridPredictions,
    labels: window.mnistPage.gridLabels,
  }));
}

async function main() {
  const o = flagArgs(process.argv.slice(2), ['server', 'model', 'expect', 'screenshot']);
  const expected = JSON.parse(fs.readFileSync(o.expect, 'utf8'));
  const failures = [];
  const url = await startServer(o.server, o.model);
  const browser = await launchChromium();
  try {
    console.log(`browser: ${browser.version()}`);
    const page = await browser.newPage({viewport: {width: 1200, height: 900}});
    const logs = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    const t0 = Date.now();
    await page.goto(url);
    const state = await pageState(page);
    console.log(`page ready in ${Date.now() - t0} ms, backend ` +
                `${await page.evaluate(() => tf.getBackend())}`);
    check(failures, state.error === null, `model loaded (error: ${state.error})`);

    // The grid: at least 100 digits whose predictions equal ours.
    const cells = await page.$$eval('#grid .cell', (els) =>
        els.map((e) => [Number(e.dataset.pred), Number(e.dataset.label)]));
    check(failures, cells.length >= 100 && cells.length === expected.length,
          `grid shows ${cells.length} digits (we predicted ${expected.length})`);
    const differ = expected.filter((p, i) => !cells[i] || cells[i][0] !== p ||
                                                 state.preds[i] !== p).length;
    check(failures, differ === 0, `grid predictions equal mnist-train's: ${differ} differ`);
    const wrong = cells.filter(([p, l]) => p !== l).length;
    const marked = await page.$$eval('#grid .cell.wrong', (els) => els.length);
    check(failures, marked === wrong, `${wrong} mistakes, ${marked} highlighted`);
    console.log(`grid: ${cells.length - wrong}/${cells.length} right; ` +
                `${await page.textContent('#grid-score')}`);

    // Summary, curves, per-class accuracy, confusion matrix.
    const summary = await page.textContent('#summary');
    check(failures, /conv2d_Conv2D1/.test(summary) && /dense_Dense2/.test(summary),
          'model summary lists the layers');
    for (const id of ['loss-chart', 'acc-chart', 'confusion', 'per-class']) {
      const n = await page.$$eval(`#${id} svg, #${id} canvas, #${id} table`, (e) => e.length);
      check(failures, n > 0, `#${id} is drawn`);
    }

    // Draw a stroke (a "7") and read the ten probabilities.
    const box = await page.locator('#pad').boundingBox();
    const at = (fx, fy) => [box.x + fx * box.width, box.y + fy * box.height];
    await page.mouse.move(...at(0.25, 0.2));
    await page.mouse.down();
    for (const [fx, fy] of [[0.5, 0.2], [0.75, 0.2], [0.62, 0.5], [0.5, 0.85]]) {
      await page.mouse.move(...at(fx, fy), {steps: 6});
    }
    await page.mouse.up();
    await page.waitForFunction(() => window.mnistPage.drawProbs !== null, null,
                               {timeout: 20000});
    const probs = await page.$$eval('#probs li', (els) => els.map((e) => Number(e.dataset.prob)));
    const sum = probs.reduce((a, b) => a + b, 0);
    check(failures, probs.length === 10 && probs.every((p) => p >= 0 && p <= 1) &&
                        Math.abs(sum - 1) < 1e-4,
          `drawing gives 10 probabilities summing to ${sum.toFixed(6)} ` +
          `(guess ${await page.textContent('#guess')})`);

    fs.mkdirSync(path.dirname(o.screenshot), {recursive: true});
    await page.screenshot({path: o.screenshot, fullPage: true});
    console.log(`screenshot: ${o.screenshot}`);

    await page.click('#clear');
    check(failures, await page.evaluate(() => window.mnistPage.drawProbs === null),
          'clear empties the pad');

    // A folder without a model: the page says so, and why.
    if (o['empty-model']) {
      const emptyUrl = await startServer(o.server, o['empty-model']);
      const p2 = await browser.newPage();
      await p2.goto(emptyUrl);
      const s2 = await pageState(p2);
      const shown = await p2.isVisible('#model-error');
      const text = shown ? await p2.textContent('#model-error') : '';
      check(failures, shown && /could not be loaded/.test(text) && /404/.test(text),
            `missing model reported on the page: ${JSON.stringify(text.split('\n')[1] || s2.error)}`);
    }
    // A model of some digits only (--labels 5-9): bars and grid speak of them.
    if (o['labels-model']) {
      const meta = JSON.parse(fs.readFileSync(path.join(o['labels-model'], 'model.json'),
                                              'utf8')).userDefinedMetadata;
      const labelsUrl = await startServer(o.server, o['labels-model']);
      const sample = new Uint8Array(await (await fetch(`${labelsUrl}sample/labels.bin`)).arrayBuffer());
      const inSet = Array.from(sample).filter((l) => meta.labels.includes(l));
      const p4 = await browser.newPage();
      await p4.goto(labelsUrl);
      const s4 = await pageState(p4);
      const bars = await p4.$$eval('#probs li b', (els) => els.map((e) => e.textContent));
      check(failures, s4.error === null && JSON.stringify(bars) === JSON.stringify(meta.classNames),
            `labels model: bars ${JSON.stringify(bars)} (error: ${s4.error})`);
      const cells = await p4.$$eval('#grid .cell', (els) => els.map((e) =>
          [Number(e.dataset.pred), Number(e.dataset.label), e.querySelector('.pred').textContent]));
      const truth = cells.map(([, l]) => meta.labels[l]);
      check(failures, cells.length === inSet.length && cells.length > 0 &&
                          JSON.stringify(truth) === JSON.stringify(inSet),
            `labels model: the grid shows the ${inSet.length} sample images of ` +
            `${meta.labels.join(',')} (${cells.length} shown)`);
      const right = cells.filter(([p, l]) => p === l).length;
      const named = cells.every(([p, , text]) => text === meta.classNames[p]);
      check(failures, named && right >= 0.8 * cells.length,
            `labels model: predictions named by digit, ${right}/${cells.length} right`);
    }
    // The same model with its manifest naming "./weights.bin", as TF.js's
    // browser saver (model.save('downloads://...')) writes it: it loads.
    const dotDir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'mnist-dotslash-'));
    try {
      const doc = JSON.parse(fs.readFileSync(path.join(o.model, 'model.json'), 'utf8'));
      doc.weightsManifest.forEach((g) => { g.paths = g.paths.map((p) => `./${p}`); });
      fs.writeFileSync(path.join(dotDir, 'model.json'), JSON.stringify(doc));
      for (const g of doc.weightsManifest) {
        for (const p of g.paths) fs.copyFileSync(path.join(o.model, p), path.join(dotDir, p));
      }
      const dotUrl = await startServer(o.server, dotDir);
      const p3 = await browser.newPage();
      await p3.goto(dotUrl);
      const s3 = await pageState(p3);
      const same = s3.preds && expected.every((p, i) => s3.preds[i] === p);
      check(failures, s3.error === null && same,
            `"./weights.bin" manifest loads, same predictions (error: ${s3.error})`);
    } finally {
      fs.rmSync(dotDir, {recursive: true, force: true});
    }
    if (failures.length) console.log(logs.join('\n'));
  } finally {
    await browser.close();
    stopServers();
  }
  if (failures.length) {
    console.log(`FAIL: ${failures.length} check(s) failed`);
    process.exit(1);
  }
  console.log('PASS');
}

// browser_rgb_check.js starts its servers and reads the page as this does;
// report_check.js opens its page in the same browser.
module.exports = {CHROMIUM, CHROMIUM_ARGS, launchChromium, startServer, stopServers, check,
  pageState, flagArgs};

if (require.main === module) {
  main().catch((e) => {
    console.log(`FAIL: ${e.stack || e}`);
    stopServers();
    process.exit(1);
  });
}
