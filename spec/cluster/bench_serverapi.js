'use strict';
// Latency of server API calls on a 3-node Redis cluster (not a test: run it by hand).
//   node spec/cluster/bench_serverapi.js [count=500]   (AG_BIN=build-asan/actiongate for the sanitizer build)
// One /primus client on node 0; calls one at a time over fetch (after 50 discarded): a push settled on the node called,
// a push that asks the other nodes and is settled by one of them, one that waits for every node's answer (an unknown
// id), and a user push (every node answers).
const { cluster, teardown, primus } = require('../lib/cluster_clients');

const N = Number(process.argv[2] || 500);
const KEY = 'bench-key-0123456789abcdef';

function api(srv, call, body) {
  return fetch(`${srv.url}/server/${call}`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: JSON.stringify(body) })
    .then((r) => r.json());
}

async function run(label, srv, body) {
  for (let i = 0; i < 50; i++) await api(srv, 'push', body);
  const t = [];
  for (let i = 0; i < N; i++) {
    const s = process.hrtime.bigint();
    await api(srv, 'push', body);
    t.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  t.sort((x, y) => x - y);
  console.log(`${label}: p50 ${t[N >> 1].toFixed(2)} ms, p99 ${t[Math.floor(N * 0.99)].toFixed(2)} ms`);
}

(async () => {
  const cl = await cluster(3, { serverApi: { key: KEY } });
  try {
    const a = await primus(cl.nodes[0]);
    await run('push by id, the connection on the node called', cl.nodes[0], { connectionId: a.id, data: { x: 1 } });
    await run('push by id, the connection on another node', cl.nodes[2], { connectionId: a.id, data: { x: 1 } });
    await run('push by id, no node holds it (every node answers)', cl.nodes[2], { connectionId: 'nobody', data: { x: 1 } });
    await run('user push (every node answers)', cl.nodes[2], { user: 'nobody', data: { x: 1 } });
    await a.close();
  } finally {
    await teardown(cl);
  }
})();
