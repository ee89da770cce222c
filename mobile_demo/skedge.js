// skedge.js: window.skedge, the JavaScript API the page uses and tests call.
//
//   const model = await skedge.load('model/');      // a bundle folder: manifest.json + model.onnx (+ golden.json)
//   const out = await skedge.predict(rows);         // { label, probabilities, value, score } as the task has them
//
// predict takes one row object or an array of them, with the Python runtime's rules: a category is a string
// (null, undefined or NaN mean missing and reach the model as the schema's missing_category, U+FFFF; "" and " "
// are strings, answered as sklearn answers them; a number is spelled 101, not 101.0), a number is a number (null
// or NaN mean missing and reach the model as NaN); no rows in, no rows out; a row that does not fit the schema
// throws a SchemaError naming the row and field.
// The model runs with onnxruntime-web's wasm backend, loaded from ./ort/ beside this file, never from a CDN.

import {
  BundleError, MISSING_CATEGORY, MISSING_TEXT, Model, SchemaError, SkedgeError, compareOutputs, isMissing, isMissingText,
  normalizeCategory,
} from './skedge-core.js';

const RUNTIME_DIR = new URL('./ort/', import.meta.url);
const RUNTIME_MODULE = 'ort.wasm.min.mjs';

let ortPromise = null;
let current = null;

// onnxruntime-web, imported on first use so that a page without it can still say what is wrong.
export function runtime() {
  if (!ortPromise) {
    ortPromise = import(new URL(RUNTIME_MODULE, RUNTIME_DIR).href).then((ort) => {
      // The .mjs glue and the .wasm sit beside the module; say so rather than let it guess from a script URL.
      ort.env.wasm.wasmPaths = RUNTIME_DIR.href;
      // Threads need SharedArrayBuffer, i.e. a cross-origin-isolated page (COOP/COEP headers), which a static
      // host or a web view rarely gives; one thread also keeps the arithmetic order of the Python runtime.
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.proxy = false;
      return ort;
    }, (err) => {
      ortPromise = null;
      throw new SkedgeError(`onnxruntime-web could not be loaded from ${RUNTIME_DIR.href} (${err && err.message ? err.message : err}); ` +
        'serve the page with `skedge demo BUNDLE` or write it with `skedge demo BUNDLE --out DIR`');
    });
  }
  return ortPromise;
}

async function fetchOk(url, what) {
  let res;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new BundleError(`${url}: ${what} could not be fetched (${err && err.message ? err.message : err})`);
  }
  if (!res.ok) throw new BundleError(`${url}: ${what} could not be fetched (HTTP ${res.status})`);
  return res;
}

async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

function bundleBase(url) {
  const u = new URL(url, document.baseURI);
  if (u.pathname.endsWith('/manifest.json')) return new URL('./', u);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u;
}

// Load a bundle folder (its URL, or its manifest.json URL) and make it the model that predict() uses.
export async function load(url = 'model/') {
  const base = bundleBase(url);
  const manifest = await (await fetchOk(new URL('manifest.json', base), 'the manifest')).json();
  const modelUrl = new URL('model.onnx', base);
  const bytes = new Uint8Array(await (await fetchOk(modelUrl, 'the model')).arrayBuffer());
  // The same refusal as skedge.runtime.load. crypto.subtle exists only in secure contexts (https, localhost);
  // elsewhere the page says the check was skipped instead of pretending it ran.
  let verified = false;
  const expected = manifest.files && manifest.files['model.onnx'] && manifest.files['model.onnx'].sha256;
  if (globalThis.crypto && crypto.subtle) {
    const digest = await sha256Hex(bytes);
    if (digest !== expected) {
      throw new BundleError(`${modelUrl.href} does not match its manifest (sha256 ${digest.slice(0, 8)}… expected ` +
        `${String(expected).slice(0, 8)}…): the file was changed after export`);
    }
    verified = true;
  }
  const ort = await runtime();
  const model = await Model.create(ort, {
    manifest,
    modelBytes: bytes,
    source: modelUrl.href,
    sessionOptions: { executionProviders: ['wasm'] },
  });
  model.base = base.href;
  model.verified = verified;
  model.runtimeVersion = (ort.env.versions && ort.env.versions.web) || null;
  if (current && current !== model) current.release().catch(() => undefined);
  current = model;
  return model;
}

export function model() {
  return current;
}

// Outputs keyed by kind, from the model load() returned last.
export async function predict(rows) {
  if (!current) throw new SkedgeError('no model loaded: call skedge.load(url) first');
  return current.predict(rows);
}

// The bundle's golden rows run here, compared with sklearn's answers (the page's "check in this browser").
export async function checkParity(m = current) {
  if (!m) throw new SkedgeError('no model loaded: call skedge.load(url) first');
  if (!(m.manifest.files && m.manifest.files['golden.json'])) throw new BundleError('this bundle has no golden.json');
  const golden = await (await fetchOk(new URL('golden.json', m.base), 'the golden vectors')).json();
  const got = await m.predict(golden.rows);
  return compareOutputs(got, golden.expected, golden.tolerance || {});
}

// Explanations: the bundle's explain.onnx (beside model.onnx, hashed in the manifest) computes each feature's
// contribution in the graph, so the page shows the same numbers as model.explain in Python. Loaded on first use.
const explainers = new WeakMap();

async function explainer(m) {
  const entry = m.manifest.files && m.manifest.files['explain.onnx'];
  if (!entry) {
    const why = m.manifest.explain && m.manifest.explain.reason;
    throw new BundleError(`this model is not explained: ${why || 'the bundle has no explain.onnx'}`);
  }
  const url = new URL('explain.onnx', m.base);
  const bytes = new Uint8Array(await (await fetchOk(url, 'the explanation model')).arrayBuffer());
  if (globalThis.crypto && crypto.subtle) {
    const digest = await sha256Hex(bytes);
    if (digest !== entry.sha256) {
      throw new BundleError(`${url.href} does not match its manifest (sha256 ${digest.slice(0, 8)}… expected ` +
        `${String(entry.sha256).slice(0, 8)}…): the file was changed after export`);
    }
  }
  let session;
  try {
    session = await m.ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', executionProviders: ['wasm'] });
  } catch (err) {
    throw new BundleError(`${url.href} cannot be loaded by onnxruntime: ${err && err.message ? err.message : err}`);
  }
  return { session, queue: Promise.resolve() };
}

// { features, classes, contributions [n][F][C], bias [C], output [n][C] }: bias + sum over features = output.
export async function explain(rows, m = current) {
  if (!m) throw new SkedgeError('no model loaded: call skedge.load(url) first');
  let pending = explainers.get(m);
  if (!pending) {
    pending = explainer(m);
    explainers.set(m, pending);
    pending.catch(() => explainers.delete(m));
  }
  const ex = await pending;
  const run = ex.queue.then(async () => {
    const { feeds, n } = m.plan.feeds(m.ort, rows);
    const features = m.schema.features.map((f) => f.name);
    if (n === 0) return { features, classes: m.classes, contributions: [], bias: [], output: [] };
    const res = await ex.session.run(feeds, ['contributions', 'bias', 'output']);
    for (const t of Object.values(feeds)) if (typeof t.dispose === 'function') t.dispose();
    const [, nf, nc] = res.contributions.dims;
    const c = Array.from(res.contributions.data, Number);
    const o = Array.from(res.output.data, Number);
    const contributions = [];
    const output = [];
    for (let i = 0; i < n; i++) {
      contributions.push(Array.from({ length: nf }, (_, f) => c.slice((i * nf + f) * nc, (i * nf + f + 1) * nc)));
      output.push(o.slice(i * nc, (i + 1) * nc));
    }
    return { features, classes: m.classes, contributions, bias: Array.from(res.bias.data, Number), output };
  });
  ex.queue = run.catch(() => undefined);
  return run;
}

export const skedge = {
  load,
  predict,
  explain,
  model,
  checkParity,
  runtime,
  isMissing,
  isMissingText,
  normalizeCategory,
  MISSING_CATEGORY,
  MISSING_TEXT,
  SkedgeError,
  SchemaError,
  BundleError,
};

globalThis.skedge = skedge;
