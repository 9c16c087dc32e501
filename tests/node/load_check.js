#!/usr/bin/env node
// Loads each given model folder with real TF.js (tf.loadLayersModel through
// TF.js's own HTTP loader, whose fetches are answered from the folder, so the
// weight paths of model.json's weightsManifest are resolved by TF.js itself)
// and predicts one all-zero 28x28 image. Used by kill_test.sh to check that
// every folder a killed mnist-train left behind is a complete model.
//
// Usage: node load_check.js DIR [DIR ...]
// Prints "OK DIR (N params, M weight files)" or "FAIL DIR: reason" per folder.
// Exit status: 0 all loaded, 1 some failed, 2 usage error.
'use strict';

const fs = require('fs');
const path = require('path');
const {loadTf} = require('./tfjs_common');

const HOST = 'http://model.invalid/';

// fetch() for TF.js: http://model.invalid/<index>/<file> -> dirs[index]/<file>.
function makeFetch(dirs, counts) {
  return async (url) => {
    const u = new URL(typeof url === 'string' ? url : url.url);
    const parts = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const index = Number(parts.shift());
    const dir = dirs[index];
    if (dir === undefined || parts.length === 0 || parts.some(p => p === '..')) {
      return new Response('bad request', {status: 400});
    }
    try {
      const body = fs.readFileSync(path.join(dir, ...parts));
      if (parts[parts.length - 1] !== 'model.json') counts[index]++;
      return new Response(body, {status: 200});
    } catch (e) {
      return new Response(`${e.code || e.message}`, {status: 404, statusText: 'Not Found'});
    }
  };
}

async function main() {
  const dirs = process.argv.slice(2);
  if (dirs.length === 0 || dirs.includes('-h') || dirs.includes('--help')) {
    console.error('Usage: node load_check.js DIR [DIR ...]');
    return 2;
  }
  const tf = await loadTf();
  const counts = dirs.map(() => 0);
  const fetchFunc = makeFetch(dirs, counts);
  let failed = 0;
  for (const [i, dir] of dirs.entries()) {
    try {
      const model = await tf.loadLayersModel(tf.io.http(`${HOST}${i}/model.json`, {fetchFunc}));
      const out = tf.tidy(() => model.predict(tf.zeros([1, 28, 28, 1])));
      const shape = out.shape.join(',');
      const values = await out.data();
      out.dispose();
      if (shape !== '1,10') throw new Error(`predict gave shape [${shape}], expected [1,10]`);
      if (!values.every(Number.isFinite)) throw new Error('predict gave non-finite values');
      console.log(`OK ${dir} (${model.countParams()} params, ${counts[i]} weight file(s))`);
      model.dispose();
    } catch (e) {
      failed++;
      console.log(`FAIL ${dir}: ${e.message}`);
    }
  }
  return failed ? 1 : 0;
}

main().then(code => process.exit(code), e => { console.log(`FAIL: ${e.stack || e}`); process.exit(1); });
