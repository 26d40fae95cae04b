'use strict';
// One unlabelled sample of a node's /metrics (Prometheus text), as a number; fails the test when it is not exported.
const assert = require('node:assert');

async function metric(srv, name) {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `${name} is exported`);
  return Number(m[1]);
}

module.exports = { metric };
