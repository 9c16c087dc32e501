#!/usr/bin/env node
// A report (`mnist-train report`) opened from its file in Debian's chromium
// with the network blocked: every request but the file itself is aborted and
// none may be attempted. Checks what the page shows against the runs'
// history.json files: one curve per run and figure joining its epochs, the
// final figures' table (and its mean and sample standard deviation), the
// confusion matrices summing to the test count, the class names as text,
// the wrong images decoded; then screenshots the page.
//
// Usage: node report_check.js --report FILE.html --runs DIR[,DIR...]
//          --test-count N --screenshot FILE.png [--names JSON] [--clip-height PX]
// --names: the class names (a JSON array) the per-class tables must show,
// character for character (names full of markup prove the escaping).
// --clip-height: screenshot the top PX pixels only (else the whole page).
// Exit status: 0 PASS, 1 FAIL.
'use strict';

const fs = require('fs');
const path = require('path');
const {pathToFileURL} = require('url');
const {launchChromium, check, flagArgs} = require('./browser_check.js');

/// The run's final figures as the table keys them, from its history.json.
function finals(history) {
  const last = history.epochs[history.epochs.length - 1];
  const num = (x) => (typeof x === 'number' ? x : NaN);
  return {
    epochs: history.epochs.length, loss: num(last.loss), acc: num(last.acc),
    val_loss: num(last.val_loss), val_acc: num(last.val_acc),
    test_loss: num(history.test.loss), test_acc: num(history.test.acc),
    total_seconds: num(history.total_seconds),
  };
}

function same(a, b, tol = 0) {
  if (Number.isNaN(a) && Number.isNaN(b)) return true;
  return Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));
}

async function main() {
  const o = flagArgs(process.argv.slice(2), ['report', 'runs', 'test-count', 'screenshot']);
  const runs = o.runs.split(',');
  const histories = runs.map((d) => JSON.parse(fs.readFileSync(path.join(d, 'history.json'), 'utf8')));
  const testCount = Number(o['test-count']);
  const fileUrl = pathToFileURL(path.resolve(o.report)).href;
  const failures = [];

  const browser = await launchChromium();
  try {
    console.log(`browser: ${browser.version()}`);
    const context = await browser.newContext({viewport: {width: 1200, height: 900}});
    // The network blocked: only the report's own file may load.
    const attempted = [];
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url === fileUrl) return route.continue();
      attempted.push(url);
      return route.abort();
    });
    const page = await context.newPage();
    page.on('request', (r) => {
      const url = r.url();
      if (url !== fileUrl && !url.startsWith('data:')) attempted.push(url);
    });
    await page.goto(fileUrl, {waitUntil: 'load'});

    const state = await page.evaluate(() => {
      const num = (s) => (s === 'NaN' ? NaN : Number(s));
      const rowValues = (tr) => {
        const out = {};
        for (const td of tr.querySelectorAll('td[data-key]')) out[td.dataset.key] = num(td.dataset.value);
        return out;
      };
      return {
        scripts: document.scripts.length,
        runRows: [...document.querySelectorAll('table.finals tr.run-row')].map(rowValues),
        mean: [...document.querySelectorAll('table.finals tr.mean-row')].map(rowValues)[0] || null,
        std: [...document.querySelectorAll('table.finals tr.std-row')].map(rowValues)[0] || null,
        curves: [...document.querySelectorAll('svg.chart path.curve')].map((p) => ({
          run: Number(p.dataset.run), series: p.dataset.series, points: Number(p.dataset.points),
          commands: (p.getAttribute('d').match(/[ML]/g) || []).length,
          length: p.getTotalLength(),
        })),
        sections: [...document.querySelectorAll('section.run')].map((s) => ({
          run: Number(s.dataset.run),
          tableCount: Number(s.querySelector('table.confusion').dataset.count),
          cells: [...s.querySelectorAll('table.confusion td.cm')].map((td) => Number(td.textContent)),
          classes: [...s.querySelectorAll('table.scores tr.class-row th')].map((th) => th.textContent),
          wrong: [...s.querySelectorAll('figure.wrong')].map((f) => ({
            label: Number(f.dataset.label), predicted: Number(f.dataset.predicted),
            confidence: Number(f.dataset.confidence),
            width: f.querySelector('img').naturalWidth,
          })),
          params: Number(s.querySelector('table.params tr.total-row td').dataset.params),
          sizes: [...s.querySelectorAll('table.sizes tr[data-storage]')].map((tr) => ({
            storage: tr.dataset.storage, bytes: Number(tr.dataset.bytes),
          })),
        })),
      };
    });

    check(failures, state.scripts === 0, `no script in the page (${state.scripts})`);
    check(failures, state.runRows.length === runs.length,
          `a final-figures row per run (${state.runRows.length} of ${runs.length})`);
    runs.forEach((dir, i) => {
      const want = finals(histories[i]);
      const row = state.runRows[i] || {};
      for (const [key, value] of Object.entries(want)) {
        check(failures, same(row[key], value),
              `run ${i} ${key} ${row[key]} is history.json's ${value}`);
      }
      // Of as many test images as the training's last evaluation, the report
      // evaluates the saved model on the same ones (an image's argmax may
      // flip in rounding).
      if (histories[i].test.count === testCount) {
        check(failures, Math.abs(row.report_acc - want.test_acc) <= 1 / testCount + 1e-12,
              `run ${i} report's test acc ${row.report_acc} is the training's ${want.test_acc}`);
      }
      const epochs = histories[i].epochs.length;
      const mine = state.curves.filter((c) => c.run === i);
      // Overlaid (several runs) and in the run's own section.
      const copies = runs.length > 1 ? 2 : 1;
      for (const series of ['loss', 'acc', 'val_loss', 'val_acc']) {
        const paths = mine.filter((c) => c.series === series);
        check(failures, paths.length === copies &&
                  paths.every((c) => c.points === epochs && c.commands === epochs),
              `run ${i} ${series}: ${paths.length} curve(s) of ${epochs} epochs ` +
                  `(${paths.map((c) => c.commands).join(',')} points)`);
        check(failures, paths.every((c) => epochs < 2 || c.length > 10),
              `run ${i} ${series}: drawn (${paths.map((c) => c.length.toFixed(0)).join(',')} px)`);
      }
      const section = state.sections.find((s) => s.run === i);
      if (!section) {
        check(failures, false, `run ${i} has a section`);
        return;
      }
      const sum = section.cells.reduce((a, b) => a + b, 0);
      const k = Math.round(Math.sqrt(section.cells.length));
      check(failures, sum === testCount && section.tableCount === testCount,
            `run ${i} confusion matrix: ${section.cells.length} cells sum to ${sum}, ` +
                `the test count ${testCount}`);
      check(failures, section.classes.length === k, `run ${i}: ${k} classes scored`);
      if (o.names) {
        const names = JSON.parse(o.names);
        const shown = section.classes.map((t, c) => (t === String(c) ? t : t.replace(/^\d+ /, '')));
        check(failures, JSON.stringify(shown) === JSON.stringify(names),
              `run ${i} class names shown as text: ${JSON.stringify(section.classes)}`);
      }
      check(failures, section.wrong.length > 0 &&
                section.wrong.every((w, j) => w.label !== w.predicted && w.width > 0 &&
                    (j === 0 || w.confidence <= section.wrong[j - 1].confidence)),
            `run ${i}: ${section.wrong.length} wrong images, decoded, most confident first`);
      const f32 = section.sizes.find((s) => s.storage === 'float32');
      const u8 = section.sizes.find((s) => s.storage === 'uint8');
      check(failures, f32 && u8 && f32.bytes === 4 * section.params && u8.bytes === section.params,
            `run ${i}: ${section.params} parameters, float32 ${f32 && f32.bytes} bytes, ` +
                `uint8 ${u8 && u8.bytes}`);
      const weights = fs.statSync(path.join(dir, 'weights.bin')).size;
      check(failures, f32 && f32.bytes === weights,
            `run ${i}: float32 size is weights.bin's ${weights} bytes`);
    });
    if (runs.length > 1) {
      for (const key of ['loss', 'acc', 'val_loss', 'val_acc', 'test_acc']) {
        const values = histories.map((h) => finals(h)[key]);
        const mean = values.reduce((a, b) => a + b, 0) / values.length;
        const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1));
        check(failures, state.mean && same(state.mean[key], mean, 1e-12) &&
                  same(state.std[key], std, 1e-9),
              `${key}: mean ${state.mean && state.mean[key]} and sample std ` +
                  `${state.std && state.std[key]} (expected ${mean}, ${std})`);
      }
    }
    const clip = Number(o['clip-height'] || 0);
    await page.screenshot({path: o.screenshot, fullPage: true,
                           ...(clip > 0 ? {clip: {x: 0, y: 0, width: 1200, height: clip}} : {})});
    check(failures, fs.statSync(o.screenshot).size > 10000, `screenshot ${o.screenshot}`);
    check(failures, attempted.length === 0,
          `no request but the file itself (${attempted.slice(0, 3).join(' ') || 'none'})`);
  } finally {
    await browser.close();
  }
  if (failures.length) {
    console.log(`FAIL: ${failures.length} check(s) failed`);
    process.exit(1);
  }
  console.log('PASS');
}

main().catch((e) => {
  console.log(`FAIL: ${e.stack || e}`);
  process.exit(1);
});
