#!/usr/bin/env node
// A page's loads of a served model, in a loop, while the model is replaced:
// real TF.js fetches BASE/models/model.json and the weight files it names
// (tf.loadLayersModel over HTTP), predicts the image whose pixel i is
// (i % 7) / 7, and checks the probabilities against those of the version
// the loaded model.json names (userDefinedMetadata.version; EXPECTED.json
// from `mnist_fixture versions`). A model.json of one version with another
// version's weights predicts the other's figures or fails to load: both are
// counted as mismatches; so is a version not in EXPECTED.json.
//
// Usage: node versions_client.js BASE_URL EXPECTED.json STOP_FILE
// Loads until STOP_FILE exists, then prints one JSON line: loads, loads per
// version, distinct served version ids, mismatches, failed loads (with the
// first reasons) and the HTTP statuses seen. Exit status: 0 when there were
// loads and no mismatch or failure, 1 otherwise, 2 usage error.
'use strict';

const fs = require('fs');
const {loadTf} = require('./tfjs_common');

async function main() {
  const [base, expectedFile, stopFile] = process.argv.slice(2);
  if (!stopFile) {
    console.error('Usage: node versions_client.js BASE_URL EXPECTED.json STOP_FILE');
    return 2;
  }
  const expected = JSON.parse(fs.readFileSync(expectedFile, 'utf8'));
  const tf = await loadTf();
  const image = tf.tensor4d(Array.from({length: 784}, (_, i) => (i % 7) / 7), [1, 28, 28, 1]);
  const statuses = {};
  const ids = new Set();
  const fetchFunc = async (url, init) => {
    const res = await fetch(url, init);
    statuses[res.status] = (statuses[res.status] || 0) + 1;
    const id = /\/models\/v\/([^/]+)\//.exec(String(url));
    if (id) ids.add(id[1]);
    return res;
  };
  const report = {loads: 0, byVersion: {}, versionIds: 0, mismatches: 0, failures: 0, reasons: []};
  const note = (kind, why) => {
    report[kind]++;
    if (report.reasons.length < 5) report.reasons.push(`${kind}: ${why}`);
  };
  while (!fs.existsSync(stopFile)) {
    let model;
    try {
      model = await tf.loadLayersModel(tf.io.http(`${base}models/model.json`, {fetchFunc}));
    } catch (e) {
      // A load that fails because weights do not fit their model.json is a
      // mix of two versions; anything else (a 404, a refused connection) a
      // failure.
      note(/shape|size|weights|expected/i.test(e.message) ? 'mismatches' : 'failures', e.message);
      continue;
    }
    report.loads++;
    const tag = (model.getUserDefinedMetadata() || {}).version;
    report.byVersion[tag] = (report.byVersion[tag] || 0) + 1;
    const out = tf.tidy(() => model.predict(image));
    const probs = Array.from(await out.data());
    out.dispose();
    model.dispose();
    const want = expected[tag];
    if (!want) {
      note('mismatches', `model.json names version ${tag}, not one of the test's`);
    } else if (want.some((w, i) => !(Math.abs(w - probs[i]) <= 1e-4))) {
      note('mismatches', `version ${tag} predicted [${probs.map(p => p.toFixed(5))}], ` +
           `expected [${want.map(p => p.toFixed(5))}]`);
    }
  }
  report.versionIds = ids.size;
  report.statuses = statuses;
  console.log(JSON.stringify(report));
  return report.loads > 0 && report.mismatches === 0 && report.failures === 0 ? 0 : 1;
}

main().then(code => process.exit(code), e => { console.log(`FAIL: ${e.stack || e}`); process.exit(1); });
