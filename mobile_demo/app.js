// app.js: the page. Builds the form from the bundle's schema and predicts on every change with window.skedge.
//
// The form speaks the API's language: a number field sends a number, or null when "missing" is ticked (or the
// field is empty); a category select sends the category, or null for "(missing)"; whatever the API refuses
// (a non-whole "integer", a missing value in a field that is not nullable) is shown as its SchemaError message.
// <html data-state> says where the page is: loading, ready, error (tests wait on it).

import { skedge } from './skedge.js';

const $ = (selector) => document.querySelector(selector);
const params = new URLSearchParams(location.search);
const MODEL_URL = params.get('model') || 'model/';

const pct = new Intl.NumberFormat(undefined, { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 });
const num = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 6 });

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') node.textContent = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function setState(state, message) {
  document.documentElement.dataset.state = state;
  if (message !== undefined) $('#status').textContent = message;
}

// Digits worth showing for a number field: about two below the spread of its training values.
function decimals(stats) {
  const std = Number(stats.std);
  if (!Number.isFinite(std) || std <= 0) return 2;
  return Math.min(6, Math.max(0, 2 - Math.floor(Math.log10(std))));
}

function topCategory(feature) {
  const top = feature.stats && feature.stats.top;
  if (Array.isArray(top) && top.length) return String(top[0][0]);
  return feature.categories && feature.categories.length ? feature.categories[0] : '';
}

// One field per feature, in schema order. Each returns { node, read() } where read gives the row value.
function numberField(f, id) {
  const st = f.stats || {};
  const integer = f.kind === 'integer';
  const hasRange = Number.isFinite(st.min) && Number.isFinite(st.max) && st.max > st.min;
  const dp = integer ? 0 : decimals(st);
  const step = integer ? 1 : 10 ** -dp;
  const start = Number.isFinite(st.mean) ? (integer ? Math.round(st.mean) : Number(st.mean.toFixed(dp))) : 0;
  const input = el('input', {
    id, name: f.name, type: 'number', inputmode: integer ? 'numeric' : 'decimal', step: integer ? 1 : 'any',
    value: String(start), 'aria-describedby': `${id}-hint`,
  });
  const slider = hasRange ? el('input', {
    type: 'range', min: st.min, max: st.max, step, value: String(Math.min(st.max, Math.max(st.min, start))),
    'aria-label': `${f.name} (slider over the training range)`, tabindex: '-1',
  }) : null;
  const missing = f.nullable ? el('input', { type: 'checkbox', name: `${f.name}__missing`, 'aria-label': `${f.name} missing` }) : null;
  const hint = el('p', { id: `${id}-hint`, class: 'hint' });
  const fmt = (x) => Number(x).toFixed(dp);
  hint.textContent = hasRange ? `training range ${fmt(st.min)} – ${fmt(st.max)}` : 'no training range recorded';
  if (Number.isFinite(st.missing_rate) && st.missing_rate > 0) hint.textContent += ` · ${pct.format(st.missing_rate)} missing in training`;
  const warn = el('p', { class: 'warn', hidden: true, text: 'outside the training range: the model extrapolates' });
  if (slider) {
    slider.addEventListener('input', () => {
      input.value = integer ? String(Math.round(slider.valueAsNumber)) : fmt(slider.valueAsNumber);
    });
    input.addEventListener('input', () => {
      if (input.value !== '') slider.value = input.value;
    });
  }
  if (missing) {
    missing.addEventListener('change', () => {
      input.disabled = missing.checked;
      if (slider) slider.disabled = missing.checked;
    });
  }
  const node = el('div', { class: 'field', dataset: { field: f.name, kind: f.kind } },
    el('label', { for: id, text: f.name }),
    el('div', { class: 'control' }, input,
      missing ? el('label', { class: 'missing' }, missing, ' missing') : null),
    slider, hint, warn);
  return {
    node,
    read() {
      if (missing && missing.checked) {
        warn.hidden = true;
        return null;
      }
      if (input.value === '') return null;
      const x = Number(input.value);
      warn.hidden = !hasRange || !Number.isFinite(x) || (x >= st.min && x <= st.max);
      return x;
    },
  };
}

function choiceField(f, id, options, initial, toValue) {
  const select = el('select', { id, name: f.name, 'aria-describedby': `${id}-hint` });
  for (const [value, label] of options) select.append(el('option', { value, text: label }));
  // the missing choice is the marker, not "": "" can be a category of its own (skedge-core.js isMissing)
  if (f.nullable) select.append(el('option', { value: skedge.MISSING_CATEGORY, text: '(missing)' }));
  select.value = initial;
  const st = f.stats || {};
  const hint = el('p', { id: `${id}-hint`, class: 'hint' });
  hint.textContent = f.kind === 'category' ? `${options.length} categories seen in training` : 'true or false';
  if (Number.isFinite(st.missing_rate) && st.missing_rate > 0) hint.textContent += ` · ${pct.format(st.missing_rate)} missing in training`;
  const node = el('div', { class: 'field', dataset: { field: f.name, kind: f.kind } },
    el('label', { for: id, text: f.name }), el('div', { class: 'control' }, select), hint);
  return { node, read: () => (select.value === skedge.MISSING_CATEGORY ? null : toValue(select.value)) };
}

function buildForm(model) {
  const form = $('#inputs');
  form.replaceChildren(el('h2', { text: 'Inputs' }));
  const fields = model.schema.features.map((f, i) => {
    const id = `f-${i}`;
    if (f.kind === 'category') {
      const cats = (f.categories || []).map(String);
      return [f.name, choiceField(f, id, cats.map((c) => [c, c]), topCategory(f), (v) => v)];
    }
    if (f.kind === 'boolean') {
      const start = Number.isFinite(f.stats && f.stats.mean) && f.stats.mean >= 0.5 ? 'true' : 'false';
      return [f.name, choiceField(f, id, [['true', 'true'], ['false', 'false']], start, (v) => v === 'true')];
    }
    return [f.name, numberField(f, id)];
  });
  for (const [, field] of fields) form.append(field.node);
  return () => Object.fromEntries(fields.map(([name, field]) => [name, field.read()]));
}

function showResult(model, out) {
  const body = $('#result-body');
  const task = model.task;
  if (task === 'classification') {
    const label = String(out.label[0]);
    // a classifier sklearn gives no predict_proba (LinearSVC, hard voting) answers its label alone
    const probs = out.probabilities ? out.probabilities[0] : null;
    const bars = el('ul', { id: 'result-probabilities', class: 'bars', 'aria-label': 'class probabilities' });
    if (probs) model.classes.forEach((cls, k) => {
      const p = probs[k];
      bars.append(el('li', { class: String(cls) === label ? 'is-top' : null, dataset: { class: String(cls), p: String(p) } },
        el('span', { class: 'name', text: String(cls) }),
        el('span', { class: 'bar', 'aria-hidden': 'true' }, el('span', { style: `width:${(100 * p).toFixed(2)}%` })),
        el('span', { class: 'pct', text: pct.format(p) })));
    });
    body.replaceChildren(el('p', { class: 'caption', text: 'predicted class' }),
      el('p', { id: 'result-label', class: 'label', dataset: { value: label }, text: label }), bars);
  } else if (task === 'regression') {
    const v = out.value[0];  // a row of values for a multi-output regressor
    body.replaceChildren(el('p', { class: 'caption', text: Array.isArray(v) ? 'predicted values' : 'predicted value' }),
      el('p', { id: 'result-value', class: 'label', dataset: { value: String(v) },
        text: Array.isArray(v) ? v.map((x) => num.format(x)).join(', ') : num.format(v) }));
  } else {
    const label = Number(out.label[0]);
    const score = out.score ? out.score[0] : null;
    body.replaceChildren(el('p', { class: 'caption', text: 'anomaly check' }),
      el('p', { id: 'result-label', class: `label ${label === -1 ? 'outlier' : 'normal'}`, dataset: { value: String(label) },
        text: label === -1 ? 'outlier' : 'normal' }),
      score === null ? null : el('p', { id: 'result-score', class: 'score', dataset: { value: String(score) },
        text: `score ${num.format(score)} (below 0 means outlier)` }));
  }
  body.hidden = false;
}

// The predicted row's explanation as a bar chart: each feature's contribution to the shown class's probability (or
// to the value), right of the axis for more, left for less; bias + bars = the answer. Hidden for a model
// without explain.onnx (its manifest says why).
function showExplanation(model, ex) {
  const box = $('#explain');
  const cls = model.task === 'classification' ? ex.output[0].indexOf(Math.max(...ex.output[0])) : 0;
  const values = ex.features.map((name, f) => [name, ex.contributions[0][f][cls]]);
  values.sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  const scale = Math.max(...values.map(([, v]) => Math.abs(v)), 1e-12);
  const what = model.task === 'classification' ? `p(${model.classes[cls]})` : 'the value';
  const bars = el('ul', { id: 'explain-bars', class: 'contrib', 'aria-label': `contributions to ${what}` });
  for (const [name, v] of values) {
    const w = `${(50 * Math.abs(v) / scale).toFixed(2)}%`;
    bars.append(el('li', { class: v >= 0 ? 'up' : 'down', dataset: { feature: name, value: String(v) } },
      el('span', { class: 'name', text: name }),
      el('span', { class: 'axis', 'aria-hidden': 'true' },
        el('span', { class: 'fill', style: v >= 0 ? `left:50%;width:${w}` : `right:50%;width:${w}` })),
      el('span', { class: 'amount', text: (v >= 0 ? '+' : '') + num.format(v) })));
  }
  const fmt = model.task === 'classification' ? (x) => pct.format(x) : (x) => num.format(x);
  box.replaceChildren(el('h3', { text: `Why: contributions to ${what}` }),
    el('p', { class: 'hint', text: `${fmt(ex.bias[cls])} before any input, ${fmt(ex.output[0][cls])} with them` }), bars);
  box.hidden = false;
}

function showError(err) {
  const box = $('#result-error');
  box.textContent = err && err.message ? err.message : String(err);
  box.hidden = false;
  for (const node of document.querySelectorAll('.field[aria-invalid]')) node.removeAttribute('aria-invalid');
  if (err && err.field) {
    const field = [...document.querySelectorAll('.field')].find((n) => n.dataset.field === err.field);
    if (field) field.setAttribute('aria-invalid', 'true');
  }
}

function parityRow(target, r, extraClass) {
  const labels = r.label_agreement === null || r.label_agreement === undefined ? '—' : pct.format(r.label_agreement);
  return el('tr', { class: extraClass, dataset: { target } },
    el('td', { text: target }), el('td', { text: String(r.rows) }), el('td', { text: labels }),
    el('td', { text: Number(r.max_abs_diff).toExponential(1) }),
    el('td', { class: r.passed ? 'pass' : 'fail', text: r.passed ? 'pass' : 'FAIL' }));
}

function showAbout(model) {
  const m = model.manifest;
  document.title = `${m.name} ${m.version} · skedge`;
  $('#model-name').textContent = m.name;
  $('#model-version').textContent = m.version;
  $('#model-description').textContent = m.description || '';
  const facts = [
    ['task', m.task || model.task],
    ['estimator', m.estimator],
    ['classes', model.classes ? model.classes.join(', ') : null],
    ['runtime', `onnxruntime-web ${model.runtimeVersion || ''} (wasm, on this device)`],
    ['model file', model.verified ? 'sha256 matches the manifest' : 'sha256 not checked (needs https or localhost)'],
  ];
  $('#model-facts').replaceChildren(...facts.filter(([, v]) => v).flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
  const tbody = $('#parity tbody');
  tbody.replaceChildren(...Object.entries(m.parity || {}).map(([t, r]) => parityRow(t, r)));
  if (!tbody.children.length) tbody.append(el('tr', {}, el('td', { colspan: 5, text: 'no parity results in the manifest' })));
  const button = $('#check-parity');
  button.hidden = !(m.files && m.files['golden.json']);
  button.onclick = async () => {
    button.disabled = true;
    button.textContent = 'Checking…';
    try {
      const r = await skedge.checkParity(model);
      const row = parityRow('this browser', { rows: r.rows, label_agreement: r.labelAgreement, max_abs_diff: r.maxAbsDiff, passed: r.passed }, 'here');
      tbody.querySelector('tr.here')?.remove();
      tbody.append(row);
      button.textContent = 'Check again';
    } catch (err) {
      button.textContent = `Check failed: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  };
}

async function registerServiceWorker() {
  const line = $('#offline');
  if (!('serviceWorker' in navigator)) {
    line.textContent = 'Offline use needs a service worker: serve this page over https (or from localhost).';
    return;
  }
  navigator.serviceWorker.addEventListener('message', (event) => {
    if (event.data && event.data.type === 'skedge-updated') $('#update').hidden = false;
  });
  $('#reload').onclick = () => location.reload();
  try {
    await navigator.serviceWorker.register('sw.js', { scope: './', updateViaCache: 'none' });
    await navigator.serviceWorker.ready;
    line.textContent = 'Available offline: the page, the runtime and the model are cached on this device.';
    document.documentElement.dataset.offline = 'ready';
  } catch (err) {
    line.textContent = `Offline use is not available: ${err.message}`;
  }
}

async function main() {
  registerServiceWorker();
  let model;
  try {
    setState('loading', 'Loading the model…');
    model = await skedge.load(MODEL_URL);
  } catch (err) {
    showError(err);
    setState('error', 'The model could not be loaded.');
    return;
  }
  showAbout(model);
  const readRow = buildForm(model);
  const explained = Boolean(model.manifest.files && model.manifest.files['explain.onnx']);
  let pending = 0;
  const update = async () => {
    const ticket = ++pending;
    // tests (and anyone watching) know the shown prediction is the latest when predictions === requested
    document.documentElement.dataset.requested = String(ticket);
    try {
      const row = readRow();
      const out = await skedge.predict(row);
      if (ticket !== pending) return; // a newer change is on its way
      $('#result-error').hidden = true;
      for (const node of document.querySelectorAll('.field[aria-invalid]')) node.removeAttribute('aria-invalid');
      showResult(model, out);
      if (explained) {
        try {
          const ex = await skedge.explain(row);
          if (ticket === pending) showExplanation(model, ex);
        } catch (err) {
          $('#explain').hidden = true;
        }
        if (ticket === pending) document.documentElement.dataset.explained = String(ticket);
      }
    } catch (err) {
      if (ticket !== pending) return;
      $('#result-body').hidden = true;
      showError(err);
    } finally {
      if (ticket === pending) document.documentElement.dataset.predictions = String(ticket);
    }
  };
  $('#inputs').addEventListener('input', update);
  $('#inputs').addEventListener('change', update);
  $('#inputs').addEventListener('submit', (e) => e.preventDefault());
  await update();
  $('#status').hidden = true;
  setState('ready');
}

main();
