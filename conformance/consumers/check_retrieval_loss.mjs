#!/usr/bin/env node
// Dependency-free consumer of conformance/retrieval_loss_test.json (format v1).
//
// It decodes every tensor from its IEEE-754 `bits` (DataView), checks that `bits` and
// `data` agree, computes the in-batch softmax retrieval loss itself in float64 with
// every option, compares each valid case with isclose_v1 and the file's tolerance, and
// checks that its own input validation rejects every invalid case.
//
// Usage: node conformance/consumers/check_retrieval_loss.mjs [path/to/retrieval_loss_test.json]
// The last line of output is "N passed, M failed"; the exit status is 1 on any failure.

import { readFileSync } from "node:fs";

const FILE = process.argv[2] ?? new URL("../retrieval_loss_test.json", import.meta.url);
const NONFINITE = { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity };
const FLOAT_WIDTH = { float64: 16, float32: 8 };

class ValueError extends Error {}

// ---------------------------------------------------------------- tensors

function decodeBits(bits, dtype) {
  const width = FLOAT_WIDTH[dtype];
  if (bits.length % width !== 0) throw new Error(`bits length ${bits.length} is not a multiple of ${width}`);
  const out = [];
  const view = new DataView(new ArrayBuffer(8));
  for (let k = 0; k < bits.length; k += width) {
    for (let b = 0; b < width / 2; b++) {
      view.setUint8(b, parseInt(bits.slice(k + 2 * b, k + 2 * b + 2), 16));
    }
    out.push(dtype === "float64" ? view.getFloat64(0, false) : view.getFloat32(0, false));
  }
  return out;
}

function decodeData(value) {
  return typeof value === "string" ? NONFINITE[value] : value;
}

/** Decode a tensor into {dtype, shape, data}; float data comes from `bits`. */
function decodeTensor(t, where) {
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (count !== t.data.length) throw new Error(`${where}: shape holds ${count} elements, data ${t.data.length}`);
  if (t.dtype in FLOAT_WIDTH) {
    const fromBits = decodeBits(t.bits, t.dtype);
    const fromData = t.data.map(decodeData);
    if (fromBits.length !== fromData.length || !fromBits.every((v, i) => Object.is(v, fromData[i]))) {
      throw new Error(`${where}: bits and data disagree`);
    }
    return { dtype: t.dtype, shape: t.shape, data: fromBits };
  }
  if (t.bits !== undefined) throw new Error(`${where}: ${t.dtype} tensor with bits`);
  if (t.dtype === "bool" ? !t.data.every((v) => typeof v === "boolean") : !t.data.every(Number.isSafeInteger)) {
    throw new Error(`${where}: bad ${t.dtype} data`);
  }
  return { dtype: t.dtype, shape: t.shape, data: t.data.slice() };
}

const isFloat = (t) => t.dtype === "float64" || t.dtype === "float32";
const isInt = (t) => t.dtype === "int64" || t.dtype === "int32";
const sameShape = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

// ---------------------------------------------------------------- validation

const KNOWN = new Set(["query_embeddings", "candidate_embeddings", "sample_weight",
  "candidate_sampling_probability", "candidate_ids", "score_mask"]);

function validate(inputs, params) {
  for (const name of Object.keys(inputs)) if (!KNOWN.has(name)) throw new TypeError(`unknown argument ${name}`);
  const q = inputs.query_embeddings;
  const c = inputs.candidate_embeddings;
  if (!q || !c) throw new TypeError("query_embeddings and candidate_embeddings are required");
  if (!isFloat(q) || !isFloat(c)) throw new TypeError("embeddings must have a floating dtype");
  if (q.shape.length !== 2 || c.shape.length !== 2) throw new ValueError("embeddings must be 2-D");
  const [b, d] = q.shape;
  const [n, dc] = c.shape;
  if (d !== dc) throw new ValueError(`embedding widths differ: ${d} vs ${dc}`);
  if (b < 1) throw new ValueError("B must be >= 1");
  if (n < b) throw new ValueError(`N=${n} < B=${b}`);
  const w = inputs.sample_weight;
  if (w) {
    if (!isFloat(w)) throw new TypeError("sample_weight must be floating");
    if (!(w.shape.length === 0 || sameShape(w.shape, [b]))) throw new ValueError("sample_weight shape");
  }
  const p = inputs.candidate_sampling_probability;
  if (p) {
    if (!isFloat(p)) throw new TypeError("candidate_sampling_probability must be floating");
    if (!sameShape(p.shape, [n])) throw new ValueError("candidate_sampling_probability shape");
    if (!p.data.every((v) => v >= 0 && v <= 1)) throw new ValueError("probability outside [0, 1] or NaN");
  }
  const ids = inputs.candidate_ids;
  if (ids) {
    if (!isInt(ids)) throw new TypeError("candidate_ids must be integers");
    if (!sameShape(ids.shape, [n])) throw new ValueError("candidate_ids shape");
  }
  const m = inputs.score_mask;
  if (m) {
    if (m.dtype !== "bool") throw new TypeError("score_mask must be bool");
    if (!sameShape(m.shape, [b, n])) throw new ValueError("score_mask shape");
  }
  const known = new Set(["temperature", "num_hard_negatives", "min_probability", "reduction"]);
  for (const k of Object.keys(params)) if (!known.has(k)) throw new TypeError(`unknown option ${k}`);
  if ("temperature" in params) {
    const t = params.temperature;
    if (typeof t !== "number") throw new TypeError("temperature must be a real number");
    if (!(Number.isFinite(t) && t > 0)) throw new ValueError("temperature must be finite and > 0");
  }
  if ("min_probability" in params) {
    const mp = params.min_probability;
    if (!(mp > 0 && mp <= 1)) throw new ValueError("min_probability must be in (0, 1]");
  }
  if ("num_hard_negatives" in params) {
    const k = params.num_hard_negatives;
    if (!Number.isInteger(k)) throw new TypeError("num_hard_negatives must be an integer");
    if (k < 1) throw new ValueError("num_hard_negatives must be >= 1");
  }
  if ("reduction" in params && !["sum", "mean", "none"].includes(params.reduction)) {
    throw new ValueError(`unknown reduction ${params.reduction}`);
  }
}

// ---------------------------------------------------------------- the loss

function logsumexpRow(row) {
  if (row.some(Number.isNaN)) return NaN;
  if (row.includes(Infinity)) return Infinity;
  const finite = row.filter((v) => v !== -Infinity);
  if (finite.length === 0) return -Infinity;
  const m = Math.max(...finite);
  let s = 0;
  for (const v of finite) s += Math.exp(v - m);
  return m + Math.log(s);
}

/** In-batch softmax retrieval loss (float64), following the pinned refloss semantics. */
function retrievalLoss(inputs, params) {
  validate(inputs, params);
  const q = inputs.query_embeddings;
  const c = inputs.candidate_embeddings;
  const [b, d] = q.shape;
  const n = c.shape[0];
  const tau = params.temperature;
  // 1. scores, divided by the temperature.
  const s = [];
  for (let i = 0; i < b; i++) {
    const row = [];
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let k = 0; k < d; k++) acc += q.data[i * d + k] * c.data[j * d + k];
      row.push(tau === undefined ? acc : acc / tau);
    }
    s.push(row);
  }
  // 2. logQ on every column (positive included), not divided by the temperature.
  const p = inputs.candidate_sampling_probability;
  if (p) {
    const lo = params.min_probability ?? 1e-6;
    for (const row of s) for (let j = 0; j < n; j++) row[j] -= Math.log(Math.min(Math.max(p.data[j], lo), 1));
  }
  // 3. accidental hits: every other column with the positive's id.
  const ids = inputs.candidate_ids;
  if (ids) {
    for (let i = 0; i < b; i++) for (let j = 0; j < n; j++) {
      if (j !== i && ids.data[j] === ids.data[i]) s[i][j] = -Infinity;
    }
  }
  // 4. score mask (the positive may be masked: the row then has no target).
  const hasTarget = new Array(b).fill(true);
  const m = inputs.score_mask;
  if (m) {
    for (let i = 0; i < b; i++) {
      for (let j = 0; j < n; j++) if (!m.data[i * n + j]) s[i][j] = -Infinity;
      hasTarget[i] = m.data[i * n + i];
    }
  }
  // 5. hard negatives: the positive plus the k largest others, ties to the lower index.
  const k = params.num_hard_negatives;
  if (k !== undefined) {
    for (let i = 0; i < b; i++) {
      const others = [...Array(n).keys()].filter((j) => j !== i);
      others.sort((x, y) => (s[i][x] > s[i][y] ? -1 : s[i][x] < s[i][y] ? 1 : x - y));
      for (const j of others.slice(k)) s[i][j] = -Infinity;
    }
  }
  // 6. per-row losses, weights, reduction.
  const w = inputs.sample_weight;
  const rows = s.map((row, i) => {
    if (!hasTarget[i]) return 0;
    const lse = logsumexpRow(row);
    const loss = lse === row[i] ? 0 : lse - row[i];
    const weight = !w ? 1 : w.shape.length === 0 ? w.data[0] : w.data[i];
    return weight * loss;
  });
  const reduction = params.reduction ?? "sum";
  if (reduction === "none") return { shape: [b], data: rows };
  const total = rows.reduce((a, v) => a + v, 0);
  return { shape: [], data: [reduction === "sum" ? total : total / b] };
}

// ---------------------------------------------------------------- comparison

/** isclose_v1: |a - e| <= atol + rtol*|e|; NaN only matches NaN; infinities exactly. */
function iscloseV1(actual, expected, tol) {
  if (!sameShape(actual.shape, expected.shape)) return `shape ${actual.shape} != ${expected.shape}`;
  for (let i = 0; i < expected.data.length; i++) {
    const a = actual.data[i];
    const e = expected.data[i];
    const ok = Number.isNaN(e) ? Number.isNaN(a)
      : !Number.isFinite(e) ? a === e
        : Math.abs(a - e) <= tol.atol + tol.rtol * Math.abs(e);
    if (!ok) return `element ${i}: actual ${a}, expected ${e} (atol ${tol.atol}, rtol ${tol.rtol})`;
  }
  return null;
}

const decodeParam = (v) => (typeof v === "string" && v in NONFINITE ? NONFINITE[v] : v);

function main() {
  const doc = JSON.parse(readFileSync(FILE, "utf8"));
  if (doc.schema !== "refloss_fixture_v1.schema.json") throw new Error(`unknown schema ${doc.schema}`);
  if (doc.comparison !== "isclose_v1") throw new Error(`unknown comparison ${doc.comparison}`);
  let passed = 0;
  let failed = 0;
  let count = 0;
  const fail = (id, msg) => { failed++; console.log(`FAIL tcId ${id}: ${msg}`); };
  for (const group of doc.testGroups) {
    for (const test of group.tests) {
      count++;
      const id = test.tcId;
      let inputs;
      try {
        inputs = Object.fromEntries(Object.entries(test.inputs).map(([k, t]) => [k, decodeTensor(t, `tcId ${id} ${k}`)]));
        for (const [k, t] of Object.entries(test.expected ?? {})) decodeTensor(t, `tcId ${id} expected ${k}`);
      } catch (err) { fail(id, err.message); continue; }
      const params = Object.fromEntries(
        Object.entries({ ...group.params, ...(test.params ?? {}) }).map(([k, v]) => [k, decodeParam(v)]));
      if (test.result === "invalid") {
        try {
          retrievalLoss(inputs, params);
          fail(id, `accepted an invalid input (${test.comment})`);
        } catch (err) {
          if (err instanceof ValueError || err instanceof TypeError) passed++;
          else fail(id, `unexpected error ${err}`);
        }
        continue;
      }
      if (!test.dtypes.includes("float64")) { passed++; continue; }
      const tol = test.tolerance?.float64 ?? group.tolerance.float64;
      let out;
      try { out = retrievalLoss(inputs, params); } catch (err) { fail(id, `raised ${err.message}`); continue; }
      const why = iscloseV1(out, decodeTensor(test.expected.loss, "expected"), tol);
      if (why) fail(id, why); else passed++;
    }
  }
  if (count !== doc.numberOfTests) fail("-", `numberOfTests ${doc.numberOfTests} but ${count} tests`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

main();
