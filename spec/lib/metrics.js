'use strict';
// Samples of a node's /metrics (Prometheus text), as numbers; a sample that is not exported fails the test.
const assert = require('node:assert');

function sample(text, name) {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} is exported`);
  return Number(line.slice(name.length + 1));
}

// One sample (name with its labels, if any).
async function metric(srv, name) {
  return sample(await (await fetch(`${srv.url}/metrics`)).text(), name);
}

// The io_uring batch figures of kind "ws" or "sse" (general.ioUring).
async function batchMetrics(srv, kind) {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  return {
    ring: sample(text, `actiongate_${kind}_io_uring`),
    submits: sample(text, `actiongate_${kind}_batch_submits_total`),
    whole: sample(text, `actiongate_${kind}_batch_writes_total{result="whole"}`),
    rest: sample(text, `actiongate_${kind}_batch_writes_total{result="rest"}`),
  };
}

module.exports = { metric, batchMetrics };
