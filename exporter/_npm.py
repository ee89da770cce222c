"""The model as an npm package: an ES module over onnxruntime-node (Node) or onnxruntime-web (a page), with
TypeScript types written from the schema.

The input rules are ``mobile_demo/skedge-core.js``, copied in as it is: the one JavaScript copy of the runtime's
missing-value and category contract (tests/e2e/test_node.py holds it equal to Python's). The tarball has
``npm pack``'s layout (every path under ``package/``) and fixed times, owners and modes, so the same bundle
gives the same bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["build_npm", "npm_entries", "typescript", "runtime_ranges"]

# npm's own fixed time for reproducible tarballs (1985-10-26T08:15:00Z)
_NPM_EPOCH = 499162500
# what the package carries of the bundle: the model, its manifest (the hashes), the golden rows (verify())
_CARRIED = ("model.onnx", "manifest.json", "golden.json")
_IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")

MODEL_JS = """\
// The packaged model for any onnxruntime: node.js and browser.js pass the runtime and a way to read the files.
import { BundleError, Model, SchemaError, SkedgeError, compareOutputs } from './skedge-core.js';
import { MANIFEST_SHA256, NAME, VERSION, classes, schema } from './schema.js';

export { BundleError, SchemaError, SkedgeError };

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
}

function isSingle(rows) {
  return rows !== null && typeof rows === 'object' && !Array.isArray(rows);
}

// ort: the onnxruntime module; read(file, options) -> Promise<Uint8Array>; sha256(bytes) -> Promise<hex string>;
// sessionDefaults: InferenceSession options a load's own sessionOptions add to
export function api(ort, read, sha256, sessionDefaults = {}) {
  let current = null;

  async function open(options) {
    const manifestBytes = await read('manifest.json', options);
    const identity = await sha256(manifestBytes);
    if (identity !== MANIFEST_SHA256) {
      throw new BundleError(`${NAME} ${VERSION}: manifest.json is not the one packaged (sha256 ` +
        `${identity.slice(0, 8)}… expected ${MANIFEST_SHA256.slice(0, 8)}…): the package was changed after it ` +
        'was built');
    }
    const manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
    const modelBytes = await read('model.onnx', options);
    const expected = String(manifest.files['model.onnx'].sha256);
    const digest = await sha256(modelBytes);
    if (digest !== expected) {
      throw new BundleError(`${NAME}/model.onnx does not match its manifest (sha256 ${digest.slice(0, 8)}… expected ` +
        `${expected.slice(0, 8)}…): the file was changed after export`);
    }
    return Model.create(ort, {
      manifest, modelBytes, source: `${NAME}/model.onnx`,
      sessionOptions: { ...sessionDefaults, ...(options.sessionOptions || {}) },
    });
  }

  // The model, loaded and checked once; a call with options loads again with them. A failed load is retried.
  function load(options) {
    if (current === null || options !== undefined) {
      const p = open(options || {});
      current = p;
      p.catch(() => { if (current === p) current = null; });
    }
    return current;
  }

  // Every output keyed by kind: { label, probabilities } | { value } | { label, score }.
  async function predictOutputs(rows) {
    return (await load()).predict(rows);
  }

  // One row -> its answer (the label, or the value); an array of rows -> an array, as in Python.
  async function predict(rows) {
    const out = await predictOutputs(rows);
    const main = out.label !== undefined ? out.label : out.value;
    return isSingle(rows) ? main[0] : main;
  }

  async function predictProba(rows) {
    if (schema.task !== 'classification') {
      throw new SkedgeError(`${NAME} is a ${schema.task} model: it has no probabilities`);
    }
    // a labels-only classifier (LinearSVC, hard voting) has no probabilities output: say so, not a TypeError
    if (schema.outputs && schema.outputs.probabilities === undefined) {
      throw new SchemaError(`${NAME} answers labels only: its scikit-learn pipeline has no predict_proba; ` +
        'use predict');
    }
    const out = await predictOutputs(rows);
    return isSingle(rows) ? out.probabilities[0] : out.probabilities;
  }

  // The golden rows through this installation, compared as skedge verify does.
  async function verify() {
    const golden = JSON.parse(new TextDecoder().decode(await read('golden.json', {})));
    const outputs = await predictOutputs(golden.rows);
    return compareOutputs(outputs, golden.expected, golden.tolerance || {});
  }

  return { load, predict, predictProba, predictOutputs, verify };
}

export { MANIFEST_SHA256, NAME as name, VERSION as version, classes, hex, schema };
"""

NODE_JS = """\
// Node.js: onnxruntime-node (install it beside this package: npm install onnxruntime-node).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

import ort from 'onnxruntime-node';

import { api } from './model.js';

export { BundleError, SchemaError, SkedgeError, MANIFEST_SHA256, classes, name, version, schema } from './model.js';

async function read(file) {
  const data = await readFile(new URL(`./${file}`, import.meta.url));
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

async function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

// One intra-op thread unless told otherwise: the arithmetic order of the Python runtime's session.
const DEFAULTS = { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 };

export const { load, predict, predictProba, predictOutputs, verify } = api(ort, read, sha256, DEFAULTS);
export { ort };
"""

BROWSER_JS = """\
// A page (or a bundler: Vite, webpack, esbuild): onnxruntime-web. The files are fetched beside this module
// (new URL(..., import.meta.url), which bundlers follow) or from options.baseUrl.
import * as ort from 'onnxruntime-web';

import { api, hex } from './model.js';

export { BundleError, SchemaError, SkedgeError, MANIFEST_SHA256, classes, name, version, schema } from './model.js';

const FILES = {
  'manifest.json': new URL('./manifest.json', import.meta.url),
  'model.onnx': new URL('./model.onnx', import.meta.url),
  'golden.json': new URL('./golden.json', import.meta.url),
};

async function read(file, options) {
  const url = options && options.baseUrl ? new URL(file, options.baseUrl) : FILES[file];
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function sha256(bytes) {
  if (!globalThis.crypto || !globalThis.crypto.subtle) {
    throw new Error('crypto.subtle is not available (a page needs https or localhost): the model cannot be checked');
  }
  return hex(await globalThis.crypto.subtle.digest('SHA-256', bytes));
}

export const { load, predict, predictProba, predictOutputs, verify } = api(ort, read, sha256);
export { ort };
"""


def runtime_ranges() -> dict[str, str]:
    """onnxruntime-node and onnxruntime-web as the demo page pins them (mobile_demo/package.json): one source."""
    pkg = json.loads((resources.files("skedge.mobile_demo") / "package.json").read_text(encoding="utf-8"))
    deps = {**pkg.get("devDependencies", {}), **pkg.get("dependencies", {})}
    return {k: str(deps[k]) for k in ("onnxruntime-node", "onnxruntime-web")}


def _ts_literal(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _ts_key(name: str) -> str:
    return name if _IDENT.match(name) else json.dumps(name, ensure_ascii=False)


def _doc(text: str) -> str:
    return text.replace("*/", "* /")


def _value_width(model: bytes | None, manifest: dict[str, Any]) -> int:
    """Values per row of a regressor: more than one for a multi-output model (its value output is [N, k])."""
    name = ((manifest.get("schema") or {}).get("outputs") or {}).get("value")
    if model is None or name is None:
        return 1
    import onnx

    for o in onnx.load_from_string(model).graph.output:
        dims = o.type.tensor_type.shape.dim
        if o.name == name and len(dims) == 2 and dims[1].HasField("dim_value"):
            return int(dims[1].dim_value)
    return 1


def typescript(manifest: dict[str, Any], dist: str, model: bytes | None = None) -> str:
    """index.d.ts: a Row with one field per feature (its type, null when nullable, the known categories as a
    literal union), the label type from the classes, and the package's functions."""
    schema = manifest.get("schema") or {}
    task = schema.get("task")
    unknown = schema.get("unknown_categories") or {}
    fields = []
    for f in schema.get("features") or []:
        name, kind = str(f.get("name")), f.get("kind")
        if kind == "category":
            cats = [str(c) for c in f.get("categories") or []]
            union = " | ".join(_ts_literal(c) for c in cats) or "string"
            if cats and unknown.get(name) != "error":
                # an unseen category is answered (as sklearn's handle_unknown="ignore"): any string is accepted,
                # the known ones still complete in an editor
                union += " | (string & {})"
            ts, what = union, "category" + (f" (known: {', '.join(cats)})" if cats else "")
        elif kind == "boolean":
            ts, what = "boolean", "boolean"
        else:
            ts, what = "number", "integer (a whole number)" if kind == "integer" else "number (finite)"
        nullable = f.get("nullable", True) is not False
        if nullable:
            ts += " | null"
        fields.append(f"  /** {_doc(what)}{'; null when missing' if nullable else '; never missing'} */\n"
                      f"  {_ts_key(name)}: {ts};")
    classes = schema.get("classes") or manifest.get("classes") or []
    # a labels-only classifier (LinearSVC, hard voting) has no probabilities output and no predictProba to declare
    with_proba = task == "classification" and "probabilities" in (schema.get("outputs") or {"probabilities": ""})
    if task == "classification":
        label = " | ".join(_ts_literal(c) for c in classes) or "string"
        outputs = "{ label: Label[]; probabilities: number[][] }" if with_proba else "{ label: Label[] }"
    elif task == "anomaly":
        label, outputs = "1 | -1", "{ label: Label[]; score: number[] }"
    elif _value_width(model, manifest) > 1:  # a multi-output regressor answers a row of values per row
        label, outputs = "number[]", "{ value: number[][] }"
    else:
        label, outputs = "number", "{ value: number[] }"
    proba = ("export declare function predictProba(row: Row): Promise<number[]>;\n"
             "export declare function predictProba(rows: Row[]): Promise<number[][]>;\n"
             "/** The columns of predictProba, in order. */\nexport declare const classes: readonly Label[];\n"
             if with_proba else "/** The classes predict answers. */\nexport declare const classes: readonly Label[];\n"
             if task == "classification" else "")
    return f"""\
// {dist} {manifest.get('version')}: generated by `skedge package` from the model's schema. Do not edit.

/** One input row: every field present, null for a missing value (an absent field is an error). */
export interface Row {{
{chr(10).join(fields)}
}}

/** What predict answers per row ({task}). */
export type Label = {label};

export type Outputs = {outputs};

export interface LoadOptions {{
  /** onnxruntime InferenceSession options (Node default: one CPU thread). */
  sessionOptions?: Record<string, unknown>;
  /** Browser: where manifest.json, model.onnx and golden.json are served (default: beside this module). */
  baseUrl?: string | URL;
}}

export interface Model {{
  readonly name: string;
  readonly version: string;
  readonly task: {_ts_literal(task)};
  readonly classes: readonly Label[] | null;
  readonly unseenCategories: Record<string, number>;
  predict(rows: Row | Row[]): Promise<Outputs>;
  release(): Promise<void>;
}}

export interface ParityReport {{
  rows: number;
  labelAgreement: number | null;
  labelMismatches: number;
  maxAbsDiff: number;
  passed: boolean;
}}

export declare const name: {_ts_literal(manifest.get('name'))};
export declare const version: {_ts_literal(manifest.get('version'))};
export declare const MANIFEST_SHA256: string;
export declare const schema: {{ readonly task: {_ts_literal(task)}; readonly features: readonly unknown[] }} &
  Record<string, unknown>;

/** Load and check the model once (sha256 of manifest.json and model.onnx); with options, load again. */
export declare function load(options?: LoadOptions): Promise<Model>;
export declare function predict(row: Row): Promise<Label>;
export declare function predict(rows: Row[]): Promise<Label[]>;
{proba}export declare function predictOutputs(rows: Row | Row[]): Promise<Outputs>;
/** The packaged golden rows through this installation, compared with the reference answers. */
export declare function verify(): Promise<ParityReport>;

export declare class SkedgeError extends Error {{}}
export declare class SchemaError extends SkedgeError {{
  readonly row: number | null;
  readonly field: string | null;
}}
export declare class BundleError extends SkedgeError {{}}
"""


def _schema_js(manifest: dict[str, Any], digest: str) -> str:
    schema = manifest.get("schema") or {}
    classes = schema.get("classes") or manifest.get("classes")
    return ("// generated by `skedge package`: the model's schema and identity\n"
            f"export const NAME = {json.dumps(manifest.get('name'))};\n"
            f"export const VERSION = {json.dumps(manifest.get('version'))};\n"
            f"export const MANIFEST_SHA256 = {json.dumps(digest)};\n"
            f"export const schema = Object.freeze({json.dumps(schema, sort_keys=True)});\n"
            f"export const classes = Object.freeze({json.dumps(classes)});\n")


def _package_json(manifest: dict[str, Any], digest: str, dist: str) -> str:
    ranges = runtime_ranges()
    schema = manifest.get("schema") or {}
    pkg = {
        "name": dist,
        "version": str(manifest.get("version")),
        "description": f"the skedge model {manifest.get('name')} {manifest.get('version')} ({schema.get('task')}): "
                       "predict in Node (onnxruntime-node) or a page (onnxruntime-web)",
        "type": "module",
        "main": "./node.js",
        "browser": "./browser.js",
        "types": "./index.d.ts",
        "exports": {
            ".": {"types": "./index.d.ts", "node": "./node.js", "browser": "./browser.js", "default": "./browser.js"},
            "./model.onnx": "./model.onnx",
            "./manifest.json": "./manifest.json",
            "./golden.json": "./golden.json",
            "./package.json": "./package.json",
        },
        "sideEffects": False,
        # the app chooses its runtime: onnxruntime-node in Node, onnxruntime-web in a page
        "peerDependencies": ranges,
        "peerDependenciesMeta": {k: {"optional": True} for k in ranges},
        "engines": {"node": ">=18"},
        "skedge": {"model": manifest.get("name"), "version": manifest.get("version"), "manifest_sha256": digest},
    }
    return json.dumps(pkg, indent=2, ensure_ascii=False) + "\n"


def _readme(manifest: dict[str, Any], dist: str) -> str:
    return f"""# {dist}

The skedge model `{manifest.get('name')}` {manifest.get('version')}, packaged by `skedge package`.

```js
import {{ predict, predictProba, load }} from '{dist}';
const label = await predict(row);          // one row -> one answer; an array of rows -> an array
```

Node: `npm install {dist} onnxruntime-node`; a page or a bundler: `npm install {dist} onnxruntime-web`.
Every field of a row must be present; `null` is a missing value (`""` is a string like any other). The first
`load()` checks manifest.json and model.onnx against the sha256 they were packaged with; `verify()` runs the
packaged golden rows. Types: `index.d.ts` (generated from the schema).
"""


def npm_entries(files: dict[str, bytes], manifest: dict[str, Any], digest: str, dist: str) -> dict[str, bytes]:
    """The package's files by their path inside ``package/``."""
    core = (resources.files("skedge.mobile_demo") / "skedge-core.js").read_bytes()
    entries = {
        "package.json": _package_json(manifest, digest, dist).encode("utf-8"),
        "README.md": _readme(manifest, dist).encode("utf-8"),
        "index.d.ts": typescript(manifest, dist, files.get("model.onnx")).encode("utf-8"),
        "schema.js": _schema_js(manifest, digest).encode("utf-8"),
        "model.js": MODEL_JS.encode("utf-8"),
        "node.js": NODE_JS.encode("utf-8"),
        "browser.js": BROWSER_JS.encode("utf-8"),
        "skedge-core.js": core,
    }
    for n in _CARRIED:
        if n in files:
            entries[n] = files[n]
    return entries


def build_npm(files: dict[str, bytes], manifest: dict[str, Any], digest: str, dist: str, out: Path) -> Path:
    """Write ``<name>-<version>.tgz`` into ``out`` and return its path."""
    from .bundle import atomic_write

    entries = npm_entries(files, manifest, digest, dist)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for n in sorted(entries, key=lambda n: (n != "package.json", n)):
            info = tarfile.TarInfo(f"package/{n}")
            info.size, info.mtime, info.mode = len(entries[n]), _NPM_EPOCH, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(entries[n]))
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=9) as fh:
        fh.write(raw.getvalue())
    path = out / f"{dist}-{manifest.get('version')}.tgz"
    atomic_write(path, gz.getvalue())
    return path
