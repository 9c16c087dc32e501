// Shared by the Node test scripts: real TF.js on its pure-JS CPU backend.
'use strict';

// Without the one-time "install the node backend" banner that its first
// tensor write prints in Node (noise in test logs).
async function loadTf() {
  const tf = require('@tensorflow/tfjs');
  await tf.setBackend('cpu');
  await tf.ready();
  const backend = tf.backend();
  if (backend && 'firstUse' in backend) backend.firstUse = false;
  return tf;
}

module.exports = {loadTf};
