#!/usr/bin/env node
// Run a skedge bundle's model.onnx in Node.js with onnxruntime-node and print the outputs as JSON.
//
//   node mobile_demo/node/predict.mjs BUNDLE_DIR [ROWS.json]
//
// ROWS.json is an array of row objects (or an object with a "rows" array, like golden.json); without it the
// bundle's golden.json rows are used. Prints {"target": "node", "onnxruntime": version, "rows": n,
// "outputs": {label, probabilities, value, score}}; NaN prints as null. The input rules are skedge-core.js,
// the very file the browser page uses. onnxruntime-node is a devDependency of mobile_demo/package.json:
// install it with `ONNXRUNTIME_NODE_INSTALL=skip npm ci` in mobile_demo/ (the variable stops its install
// script from downloading CUDA binaries).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';

import ort from 'onnxruntime-node';

import { BundleError, Model } from '../skedge-core.js';

async function readJson(file) {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new BundleError(`${file}: ${err.message}`);
  }
}

async function main(argv) {
  if (argv.length < 1 || argv.length > 2 || argv[0] === '--help' || argv[0] === '-h') {
    process.stderr.write('usage: node predict.mjs BUNDLE_DIR [ROWS.json]\n');
    return 2;
  }
  const bundle = argv[0];
  const manifest = await readJson(path.join(bundle, 'manifest.json'));
  const modelFile = path.join(bundle, 'model.onnx');
  const modelBytes = await readFile(modelFile);
  // The same refusal as skedge.runtime.load: a model that is not the one exported is not run.
  const expected = manifest.files && manifest.files['model.onnx'] && manifest.files['model.onnx'].sha256;
  const digest = createHash('sha256').update(modelBytes).digest('hex');
  if (digest !== expected) {
    throw new BundleError(`${modelFile} does not match its manifest (sha256 ${digest.slice(0, 8)}… expected ` +
      `${String(expected).slice(0, 8)}…): the file was changed after export`);
  }
  const source = argv[1] ? await readJson(argv[1]) : await readJson(path.join(bundle, 'golden.json'));
  const rows = Array.isArray(source) ? source : source.rows;
  // One intra-op thread, as the Python runtime's single-row session: the same arithmetic order.
  const model = await Model.create(ort, {
    manifest,
    modelBytes: new Uint8Array(modelBytes.buffer, modelBytes.byteOffset, modelBytes.byteLength),
    source: modelFile,
    sessionOptions: { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 },
  });
  const outputs = await model.predict(rows);
  await model.release();
  process.stdout.write(`${JSON.stringify({ target: 'node', onnxruntime: ort.env.versions.node ?? ort.env.versions.common, rows: rows.length, outputs })}\n`);
  return 0;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err) => {
  process.stderr.write(`${err.name || 'Error'}: ${err.message}\n`);
  process.exitCode = 1;
});
