// skedge-core.js: a skedge bundle's model in JavaScript, for any onnxruntime (web in a page, node in Node.js).
//
// The rules here mirror skedge.runtime (runtime/_schema.py InputPlan, runtime/_model.py Model) so that a row
// answers the same in Python, in the browser and in Node: one tensor per feature, shape [N, 1], float64 for
// number/integer/boolean, string for category; a missing number is NaN and a missing category (null, undefined,
// NaN) is the schema's `missing_category` (U+FFFF, runtime/missing.py), while "" and " " are strings like any
// other; the outputs come back keyed by kind (label, probabilities, value, score) like Model.predict_outputs.
// Nothing here touches the DOM or the network: the caller passes the onnxruntime module and the bytes.

export const BUNDLE_FORMAT = 1;
export const SCHEMA_FORMAT = 1;

export class SkedgeError extends Error {
  constructor(message) {
    super(message);
    this.name = 'SkedgeError';
  }
}

// An input row does not fit the model's schema; `row` and `field` say where, as in Python.
export class SchemaError extends SkedgeError {
  constructor(message, { row = null, field = null } = {}) {
    super(message);
    this.name = 'SchemaError';
    this.row = row;
    this.field = field;
  }
}

// A manifest or model that is missing, corrupt, tampered with or of an unsupported format.
export class BundleError extends SkedgeError {
  constructor(message) {
    super(message);
    this.name = 'BundleError';
  }
}

const KINDS = ['number', 'integer', 'category', 'boolean'];
const TASKS = ['classification', 'regression', 'anomaly'];
const EXPECTED = {
  number: 'a finite number',
  integer: 'a whole number',
  boolean: 'a boolean',
  category: 'a string',
};

function describe(value) {
  let text;
  if (value === undefined) text = 'undefined';
  else if (typeof value === 'number' || typeof value === 'bigint') text = String(value);
  else {
    try {
      text = JSON.stringify(value);
    } catch {
      text = String(value);
    }
  }
  if (text === undefined) text = String(value);
  if (text.length > 60) text = `${text.slice(0, 57)}...`;
  const type = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  return `${text} (${type})`;
}

// In text (a CSV cell, a form's text box) these spellings are missing: pandas' default NA strings, the list of
// runtime/missing.py MISSING_TEXT (a test holds the two equal).
export const MISSING_TEXT = Object.freeze([
  '', '#N/A', '#N/A N/A', '#NA', '-1.#IND', '-1.#QNAN', '-NaN', '-nan', '1.#IND', '1.#QNAN', '<NA>',
  'N/A', 'NA', 'NULL', 'NaN', 'None', 'n/a', 'nan', 'null',
]);
const MISSING_TEXT_SET = new Set(MISSING_TEXT);

// What a missing category is fed as (runtime/missing.py MISSING_CATEGORY), unless the schema names another.
export const MISSING_CATEGORY = '\uffff';

// In a row, missing is null, undefined or NaN (runtime/missing.py is_missing). "" is a string.
export function isMissing(value) {
  return value === null || value === undefined || (typeof value === 'number' && Number.isNaN(value));
}

// True when a text cell spells a missing value (runtime/_files.py reads CSV cells with the same list).
export function isMissingText(text) {
  return MISSING_TEXT_SET.has(text);
}

// A number's spelling as a category, as Python's runtime/missing.py category_text writes it: 101 and 101.0 are
// "101"; other numbers in Python's repr (shortest round-trip digits, exponent from 1e-4 down as 1e-05).
export function categoryText(value) {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'number' || Number.isNaN(value)) throw new TypeError(`expected a string, got ${describe(value)}`);
  if (value === Infinity) return 'inf';
  if (value === -Infinity) return '-inf';
  if (Number.isInteger(value)) return BigInt(value).toString();
  if (Math.abs(value) < 1e-4) {
    const [mant, exp] = value.toExponential().split('e');
    const sign = exp[0] === '-' ? '-' : '+';
    return `${mant}e${sign}${exp.replace(/^[+-]/, '').padStart(2, '0')}`;
  }
  return String(value);
}

// The one rule for a category value on the ONNX side (runtime/_schema.py normalize_category): missing becomes
// the marker, a string stays itself, a number is spelled by categoryText.
export function normalizeCategory(value, missing = MISSING_CATEGORY) {
  if (isMissing(value)) return missing;
  if (typeof value === 'boolean') throw new TypeError(`expected a string, got ${describe(value)}`);
  return categoryText(value);
}

export function checkSchema(schema) {
  if (!schema || typeof schema !== 'object') throw new BundleError('the model has no schema');
  if (schema.format !== SCHEMA_FORMAT) {
    throw new BundleError(`schema format ${JSON.stringify(schema.format)} is not supported by this page ` +
      `(supports ${SCHEMA_FORMAT}); use the skedge that exported the model`);
  }
  if (!TASKS.includes(schema.task)) throw new BundleError(`schema task ${JSON.stringify(schema.task)} is not one of ${TASKS}`);
  if (!Array.isArray(schema.features) || schema.features.length === 0) throw new BundleError('the schema lists no features');
  for (const f of schema.features) {
    if (!KINDS.includes(f.kind)) {
      throw new BundleError(`schema feature ${JSON.stringify(f.name)}: unknown kind ${JSON.stringify(f.kind)}; expected one of ${KINDS}`);
    }
  }
  return schema;
}

// Checks rows against a schema and turns them into feeds; built once per model (the Python InputPlan).
export class InputPlan {
  constructor(schema) {
    this.schema = checkSchema(schema);
    this.names = schema.features.map((f) => f.name);
    this.plan = schema.features.map((f) => ({
      name: f.name,
      kind: f.kind,
      nullable: f.nullable !== false,
      categories: Array.isArray(f.categories) ? new Set(f.categories.map(String)) : null,
    }));
    this.reject = new Set(Object.entries(schema.unknown_categories || {}).filter(([, v]) => v === 'error').map(([k]) => k));
    // absent: a model exported before the marker was recorded, whose graph took "" as missing
    this.missing = typeof schema.missing_category === 'string' ? schema.missing_category : '';
    this.unseen = {};
  }

  checkKeys(row, i) {
    if (row === null || typeof row !== 'object' || Array.isArray(row)) {
      throw new SchemaError(`row ${i}: expected an object of field values, got ${describe(row)}`, { row: i });
    }
    for (const name of this.names) {
      if (!Object.prototype.hasOwnProperty.call(row, name)) {
        throw new SchemaError(`row ${i}, field '${name}': missing (expected ${this.names.length} fields: ` +
          `${this.names.join(', ')})`, { row: i, field: name });
      }
    }
    for (const key of Object.keys(row)) {
      if (!this.names.includes(key)) {
        throw new SchemaError(`row ${i}, field '${key}': unknown field (the model takes ${this.names.join(', ')})`,
          { row: i, field: key });
      }
    }
  }

  number(v, kind, nullable, i, name) {
    let x;
    if (typeof v === 'number') x = v;
    else if (v === null || v === undefined) x = NaN;
    else if (typeof v === 'boolean') {
      if (kind !== 'boolean') throw this.bad(i, name, kind, v);
      x = v ? 1 : 0;
    } else throw this.bad(i, name, kind, v);
    if (Number.isNaN(x)) {
      if (!nullable) {
        throw new SchemaError(`row ${i}, field '${name}': expected ${EXPECTED[kind]}, got a missing value ` +
          '(this field is not nullable)', { row: i, field: name });
      }
      return x;
    }
    if (!Number.isFinite(x)) throw new SchemaError(`row ${i}, field '${name}': expected ${EXPECTED[kind]}, got ${describe(v)}`, { row: i, field: name });
    if (kind === 'integer' && !Number.isInteger(x)) throw this.bad(i, name, kind, v);
    if (kind === 'boolean' && x !== 0 && x !== 1) throw this.bad(i, name, kind, v);
    return x;
  }

  category(v, nullable, cats, i, name) {
    if (isMissing(v) || (v === '' && this.missing === '')) {
      if (!nullable) {
        throw new SchemaError(`row ${i}, field '${name}': expected a string, got a missing value ` +
          '(this field is not nullable)', { row: i, field: name });
      }
      return this.missing;
    }
    if (v === this.missing) {
      throw new SchemaError(`row ${i}, field '${name}': got ${JSON.stringify(v)}, the value skedge feeds the model for ` +
        'a missing category: pass null for a missing value', { row: i, field: name });
    }
    let s;
    try {
      s = normalizeCategory(v, this.missing);
    } catch {
      throw this.bad(i, name, 'category', v);
    }
    if (cats !== null && !cats.has(s)) {
      if (this.reject.has(name)) {
        throw new SchemaError(`row ${i}, field '${name}': expected one of ${JSON.stringify([...cats].sort())}, got ${describe(v)}`,
          { row: i, field: name });
      }
      this.unseen[name] = (this.unseen[name] || 0) + 1;
    }
    return s;
  }

  bad(i, name, kind, v) {
    return new SchemaError(`row ${i}, field '${name}': expected ${EXPECTED[kind]}, got ${describe(v)}`, { row: i, field: name });
  }

  // rows: one row object or an array of them. Returns { feeds, n, single } with ort.Tensor values.
  feeds(ort, rows) {
    const single = rows !== null && typeof rows === 'object' && !Array.isArray(rows);
    const list = single ? [rows] : rows;
    if (!Array.isArray(list)) {
      throw new SchemaError(`expected an object (one row) or an array of objects, got ${describe(rows)}`);
    }
    list.forEach((row, i) => this.checkKeys(row, i));
    const n = list.length;
    const feeds = {};
    for (const { name, kind, nullable, categories } of this.plan) {
      if (kind === 'category') {
        const col = new Array(n);
        for (let i = 0; i < n; i += 1) col[i] = this.category(list[i][name], nullable, categories, i, name);
        feeds[name] = new ort.Tensor('string', col, [n, 1]);
      } else {
        const col = new Float64Array(n);
        for (let i = 0; i < n; i += 1) col[i] = this.number(list[i][name], kind, nullable, i, name);
        feeds[name] = new ort.Tensor('float64', col, [n, 1]);
      }
    }
    return { feeds, n, single };
  }
}

function plainNumber(x) {
  return typeof x === 'bigint' ? Number(x) : x;
}

// A tensor as plain JS arrays, shaped like runtime/_model.py _flat: [N, 1] -> [N]; [N, C] -> N rows of C.
function outputArray(kind, tensor) {
  // a bool tensor arrives as bytes 0/1: labels of a bool target are true/false, as in Python
  const data = tensor.type === 'bool' ? Array.from(tensor.data, Boolean) : Array.from(tensor.data, plainNumber);
  const dims = tensor.dims.map(Number);
  if (dims.length === 2 && (kind === 'probabilities' || dims[1] !== 1)) {
    const [n, c] = dims;
    const out = new Array(n);
    for (let i = 0; i < n; i += 1) out[i] = data.slice(i * c, (i + 1) * c);
    return out;
  }
  return data;
}

export class Model {
  // Use Model.create: a session needs an await.
  constructor(ort, session, manifest, source) {
    this.ort = ort;
    this.session = session;
    this.manifest = manifest;
    this.source = source;
    this.schema = manifest.schema;
    this.plan = new InputPlan(this.schema);
    const have = new Set(session.outputNames);
    this.outputs = {};
    for (const [kind, name] of Object.entries(this.schema.outputs || {})) {
      if (!have.has(name)) throw new BundleError(`${source}: the model has no output '${name}' named in its schema`);
      this.outputs[kind] = name;
    }
    if (Object.keys(this.outputs).length === 0) throw new BundleError(`${source}: the schema names no outputs`);
    // onnxruntime-web runs one call at a time per session; a form that predicts on every keystroke
    // would otherwise start a second run before the first returned.
    this.queue = Promise.resolve();
  }

  // manifest: the bundle's manifest.json (schema under manifest.schema); modelBytes: model.onnx as a Uint8Array.
  static async create(ort, { manifest, modelBytes, source = 'model.onnx', sessionOptions = {} }) {
    if (!manifest || manifest.format !== BUNDLE_FORMAT) {
      throw new BundleError(`${source}: manifest format ${JSON.stringify(manifest && manifest.format)} is not supported ` +
        `(this page reads format ${BUNDLE_FORMAT}); export the model again with this skedge`);
    }
    checkSchema(manifest.schema);
    let session;
    try {
      session = await ort.InferenceSession.create(modelBytes, { graphOptimizationLevel: 'all', ...sessionOptions });
    } catch (err) {
      throw new BundleError(`${source} cannot be loaded by onnxruntime: ${err && err.message ? err.message : err}`);
    }
    return new Model(ort, session, manifest, source);
  }

  get name() { return this.manifest.name; }
  get version() { return this.manifest.version; }
  get task() { return this.schema.task; }
  get classes() { return this.schema.classes || null; }
  get unseenCategories() { return { ...this.plan.unseen }; }

  // Every output at once, keyed by kind: { label, probabilities, value, score } (the ones this task has).
  predict(rows) {
    const run = this.queue.then(() => this.run(rows));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async run(rows) {
    const { feeds, n } = this.plan.feeds(this.ort, rows);
    const kinds = Object.keys(this.outputs);
    if (n === 0) {
      // empty in, empty out (as runtime/_model.py): no run, since not every kernel takes an empty batch
      for (const t of Object.values(feeds)) if (typeof t.dispose === 'function') t.dispose();
      return Object.fromEntries(kinds.map((k) => [k, []]));
    }
    const names = kinds.map((k) => this.outputs[k]);
    const results = await this.session.run(feeds, names);
    const out = {};
    for (const kind of kinds) out[kind] = outputArray(kind, results[this.outputs[kind]]);
    for (const t of Object.values(feeds)) if (typeof t.dispose === 'function') t.dispose();
    return out;
  }

  async release() {
    await this.session.release();
  }
}

// The parity rule of skedge.runtime._parity.compare_outputs, for the page's own "check in this browser":
// labels equal on every row; values within max(abs, rel * |reference|). The tests compare with the Python
// function itself; this copy only feeds the page's display.
export function compareOutputs(got, ref, tolerance = {}) {
  const abs = tolerance.abs ?? 1e-5;
  const rel = tolerance.rel ?? 1e-5;
  let rows = 0;
  let mismatches = 0;
  let labelAgreement = null;
  let passed = true;
  if (ref.label) {
    rows = ref.label.length;
    const g = got.label || [];
    if (g.length !== rows) mismatches = rows;
    else for (let i = 0; i < rows; i += 1) if (String(g[i]) !== String(ref.label[i])) mismatches += 1;
    labelAgreement = rows ? 1 - mismatches / rows : 1;
    passed = mismatches === 0;
  }
  let maxAbs = 0;
  for (const kind of ['probabilities', 'value', 'score']) {
    if (!ref[kind]) continue;
    rows = rows || ref[kind].length;
    const r = ref[kind].flat();
    const g = (got[kind] || []).flat();
    if (g.length !== r.length) {
      passed = false;
      maxAbs = Infinity;
      continue;
    }
    for (let i = 0; i < r.length; i += 1) {
      const a = r[i] === null ? NaN : r[i];
      const b = g[i] === null ? NaN : g[i];
      const d = Number.isNaN(a) && Number.isNaN(b) ? 0 : Math.abs(b - a);
      const diff = Number.isNaN(d) ? Infinity : d;
      maxAbs = Math.max(maxAbs, diff);
      if (!(diff <= Math.max(abs, rel * Math.max(1, Math.abs(a))))) passed = false;
    }
  }
  return { rows, labelAgreement, labelMismatches: mismatches, maxAbsDiff: maxAbs, passed };
}
