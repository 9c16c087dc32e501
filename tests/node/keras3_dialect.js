#!/usr/bin/env node
// Rewrites a TF.js Layers model (a Sequential model.json as TF.js writes it)
// into the dialect tensorflowjs_converter writes for a Keras 3 model, which
// TF.js 4.22 cannot load: the topology wrapped in "model_config", an
// InputLayer with "batch_shape", "dtype" as a DTypePolicy object, "module"
// and "registered_name" on the model, the layers and their initializers,
// "build_config", the model's own "trainable", "dtype" and
// "build_input_shape", and weight names prefixed by the model's name
// ("sequential_1/conv2d_1/kernel"). The weight files are copied unchanged.
//
// Usage: node keras3_dialect.js SRC_DIR OUT_DIR
// Exit status: 0 written, 2 usage or I/O error.
'use strict';

const fs = require('fs');
const path = require('path');

const POLICY = {
  module: 'keras', class_name: 'DTypePolicy', config: {name: 'float32'}, registered_name: null,
};

function keras3(doc) {
  const topology = doc.modelTopology.model_config || doc.modelTopology;
  const config = Array.isArray(topology.config) ? {layers: topology.config} : topology.config;
  const modelName = config.name || 'sequential';
  const first = config.layers[0].config;
  const batchShape = first.batch_input_shape;
  const layers = [{
    class_name: 'InputLayer',
    config: {
      batch_shape: batchShape, dtype: 'float32', sparse: false, ragged: false,
      name: 'input_layer', optional: false,
    },
  }];
  for (const layer of config.layers) {
    const c = {};
    for (const [key, value] of Object.entries(layer.config)) {
      if (key === 'batch_input_shape') continue;
      if (key === 'dtype') {
        c.dtype = POLICY;
      } else if (value !== null && typeof value === 'object' && 'class_name' in value) {
        c[key] = {module: 'keras.initializers', class_name: value.class_name,
                  config: value.config, registered_name: null};
      } else {
        c[key] = value;
      }
    }
    if (!('dtype' in c)) c.dtype = POLICY;
    layers.push({module: 'keras.layers', class_name: layer.class_name, config: c,
                 registered_name: null, build_config: {input_shape: batchShape}});
  }
  const weightsManifest = doc.weightsManifest.map(group => ({
    paths: group.paths,
    weights: group.weights.map(w => Object.assign({}, w, {name: `${modelName}/${w.name}`})),
  }));
  return {
    format: 'layers-model',
    generatedBy: 'keras v3.10.0',
    convertedBy: 'TensorFlow.js Converter v4.22.0',
    modelTopology: {
      keras_version: '3.10.0',
      backend: 'tensorflow',
      model_config: {
        module: 'keras',
        class_name: 'Sequential',
        config: {name: modelName, trainable: true, dtype: POLICY, layers,
                 build_input_shape: batchShape},
        registered_name: null,
        build_config: {input_shape: batchShape},
      },
    },
    weightsManifest,
  };
}

function main() {
  const [src, out] = process.argv.slice(2);
  if (!src || !out) {
    console.error('Usage: node keras3_dialect.js SRC_DIR OUT_DIR');
    return 2;
  }
  try {
    const doc = JSON.parse(fs.readFileSync(path.join(src, 'model.json'), 'utf8'));
    fs.mkdirSync(out, {recursive: true});
    for (const group of doc.weightsManifest) {
      for (const p of group.paths) fs.copyFileSync(path.join(src, p), path.join(out, p));
    }
    fs.writeFileSync(path.join(out, 'model.json'), JSON.stringify(keras3(doc)));
    console.log(`wrote ${out}/model.json in Keras 3's dialect`);
    return 0;
  } catch (e) {
    console.error(`keras3_dialect.js: ${e.message}`);
    return 2;
  }
}

process.exit(main());
