'use strict';
// Added latency of a cross-node `say` over a same-node one (not a test: run it by hand).
//   node spec/cluster/bench_say.js [count=2000]        (AG_BIN=build-asan/actiongate for the sanitizer build)
// Two nodes over one redis-server; the sender and receiver A on node 0, receiver B on node 1; plain /primus clients.
// For each say, one at a time: the time from sending it to its arrival at A (same node: published to Redis and back)
// and at B (the other node). Also a single node with the memory store as the baseline.
const { startServer, Redis } = require('../lib/harness');
const { connect } = require('../lib/wsclient');

const N = Number(process.argv[2] || 2000);

async function client(srv) {
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  await c.request({ event: 'roomAdd', room: 'defaultRoom' });
  return c;
}

function arrival(c, text) {
  return c.next((f) => f.context === 'user' && f.message === text, 10000).then(() => process.hrtime.bigint());
}

function pct(samples, p) {
  const s = samples.slice().sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function run(sender, receivers, label) {
  const lat = receivers.map(() => []);
  for (let i = 0; i < N + 100; i++) {
    const text = `m${i}`;
    const waits = receivers.map((r) => arrival(r, text));
    const t0 = process.hrtime.bigint();
    sender.sendRaw(JSON.stringify({ event: 'say', room: 'defaultRoom', message: text, messageId: i + 1 }));
    const ts = await Promise.all(waits).catch((e) => { throw new Error(`say ${i} (${label}): ${e.message.slice(0, 300)}`); });
    await sender.next((f) => f.context === 'response' && f.messageId === i + 1);
    sender.frames.length = 0;
    if (i >= 100) ts.forEach((t, k) => lat[k].push(Number(t - t0) / 1e3)); // µs, after 100 warm-up says
  }
  return lat.map((l, k) => ({ what: `${label[k]}`, p50: pct(l, 50).toFixed(0), p99: pct(l, 99).toFixed(0) }));
}

(async () => {
  const rows = [];
  const single = await startServer();
  try {
    const s = await client(single);
    const a = await client(single);
    rows.push(...(await run(s, [a], ['memory store, same node'])));
    await s.close();
    await a.close();
  } finally {
    await single.stop();
  }
  const redis = await new Redis().start();
  const n0 = await startServer({ config: { redis: { url: redis.url } } });
  const n1 = await startServer({ config: { redis: { url: redis.url } } });
  try {
    const s = await client(n0);
    const a = await client(n0);
    const b = await client(n1);
    rows.push(...(await run(s, [a, b], ['redis store, same node', 'redis store, other node'])));
    for (const c of [s, a, b]) await c.close();
  } finally {
    await n0.stop();
    await n1.stop();
    await redis.stop();
  }
  console.log(`say -> delivery latency, ${N} says one at a time (µs)`);
  console.table(rows);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
