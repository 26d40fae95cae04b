'use strict';
// Figures, not a test: the cost of going through actiongate to the fixture actionhero app.
//   node spec/actionhero/bench_upstream.js [calls]
// One WebSocket, one call at a time: the app's own Primus endpoint vs actiongate's /primus forwarding to the app's web
// API (keep-alive on). Then 20 connections x 4 in flight through actiongate: calls per second.
const { startServer, Redis } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const http = require('node:http');
const { startApp } = require('./lib');

const N = Number(process.argv[2] || 2000);
const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];

async function serial(url) {
  const c = await connect(url);
  await c.welcome();
  const times = [];
  for (let i = 0; i < N + 100; i++) {
    const t = process.hrtime.bigint();
    const r = await c.request({ event: 'action', params: { action: 'echoParams', name: 'bench', count: 2 } });
    if (r.error) throw new Error(r.error);
    if (i >= 100) times.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  await c.close();
  times.sort((a, b) => a - b);
  return { p50: Math.round(pct(times, 50)), p99: Math.round(pct(times, 99)) };
}

async function parallel(url, conns, depth, total) {
  const clients = await Promise.all(Array.from({ length: conns }, () => connect(url)));
  await Promise.all(clients.map((c) => c.welcome()));
  let sent = 0;
  const t = Date.now();
  await Promise.all(clients.flatMap((c) => Array.from({ length: depth }, async () => {
    while (sent < total) {
      sent++;
      const r = await c.request({ event: 'action', params: { action: 'echoParams', name: 'bench' } }, 20000);
      if (r.error) throw new Error(r.error);
    }
  })));
  const secs = (Date.now() - t) / 1000;
  await Promise.all(clients.map((c) => c.close()));
  return Math.round(total / secs);
}

// The app's web API directly, as actiongate uses it: POST, JSON, keep-alive, the same concurrency.
async function webDirect(base, inFlight, total) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: inFlight });
  const body = JSON.stringify({ name: 'bench' });
  const one = () => new Promise((resolve, reject) => {
    const req = http.request(`${base}/api/echoParams`, { method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': body.length, cookie: 'sessionID=bench' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(String(res.statusCode)))));
    });
    req.on('error', reject);
    req.end(body);
  });
  let sent = 0;
  const t = Date.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (sent < total) {
      sent++;
      await one();
    }
  }));
  agent.destroy();
  return Math.round(total / ((Date.now() - t) / 1000));
}

(async () => {
  const redis = await new Redis().start();
  const app = await startApp(redis);
  const ag = await startServer({ config: { upstream: { urls: [`${app.url}/api`] } } });
  try {
    const direct = await serial(`${app.wsUrl}/primus`);
    const via = await serial(`${ag.wsUrl}/primus`);
    console.log(`one at a time, ${N} calls (µs): app's own /primus p50 ${direct.p50} p99 ${direct.p99}; ` +
      `through actiongate p50 ${via.p50} p99 ${via.p99}`);
    console.log(`20 connections x 4 in flight, ${N * 2} calls: app's own /primus ${await parallel(`${app.wsUrl}/primus`, 20, 4, N * 2)}/s; ` +
      `through actiongate ${await parallel(`${ag.wsUrl}/primus`, 20, 4, N * 2)}/s; ` +
      `the app's web API directly, 80 in flight ${await webDirect(app.url, 80, N * 2)}/s`);
  } finally {
    await ag.stop();
    await app.stop();
    await redis.stop();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
