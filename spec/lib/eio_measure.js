'use strict';
// One-off measurements of the engine.io transports (not a test): idle memory per session for polling and SSE (RSS
// slope between two session counts) and echo messages per second through polling and through SSE.
//   node spec/lib/eio_measure.js [N1 N2 SECONDS]
const fs = require('node:fs');
const http = require('node:http');
const { startServer } = require('./harness');
const { Eio, sseOpen, request } = require('./eio_raw');

const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function idle(kind, n1, n2) {
  const srv = await startServer({ config: { general: { logLevel: 'error' } } });
  const eio = new Eio(srv.url);
  const keep = [];
  const open = async (count) => {
    for (let i = 0; i < count; i++) {
      if (kind === 'polling') {
        const { sid } = await eio.handshake();
        await eio.poll(sid); // the welcome frame
        const req = http.get(eio.url(`transport=polling&sid=${sid}`), { agent: false });
        req.on('error', () => {});
        keep.push(req);
      } else {
        const st = await sseOpen(eio.url('transport=sse'));
        await st.next((e) => e.payload.startsWith('4'));
        keep.push(st.req);
      }
    }
    await sleep(500);
  };
  await open(n1);
  const r1 = rssKb(srv.proc.pid);
  await open(n2 - n1);
  const r2 = rssKb(srv.proc.pid);
  for (const r of keep) r.destroy();
  await srv.stop('SIGKILL');
  return { kind, n1, n2, rss1Kb: r1, rss2Kb: r2, bytesPerSession: Math.round(((r2 - r1) * 1024) / (n2 - n1)) };
}

async function rate(kind, seconds, clients = 20) {
  const srv = await startServer({ config: { general: { logLevel: 'error' }, servers: { websocket: { server: { echo: true } } } } });
  const eio = new Eio(srv.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1000 });
  let count = 0;
  const deadline = Date.now() + seconds * 1000;
  const worker = async () => {
    if (kind === 'polling') {
      const { sid } = await eio.handshake();
      while (Date.now() < deadline) {
        const got = eio.poll(sid, { agent });
        await eio.post(sid, '4{"event":"x","n":1}', { agent });
        const res = await got;
        count += res.text.split('\x1e').filter((p) => p[0] === '4').length;
      }
    } else {
      const st = await sseOpen(eio.url('transport=sse'));
      const sid = JSON.parse((await st.next()).data.slice(1)).sid;
      while (Date.now() < deadline) {
        const got = st.next((e) => e.payload[0] === '4');
        await eio.post(sid, '4{"event":"x","n":1}', { transport: 'sse', agent });
        await got;
        count++;
      }
      st.destroy();
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: clients }, worker));
  const secs = (Date.now() - t0) / 1000;
  agent.destroy();
  await srv.stop('SIGKILL');
  return { kind, clients, messages: count, perSecond: Math.round(count / secs) };
}

(async () => {
  const [n1 = 500, n2 = 1500, secs = 5] = process.argv.slice(2).map(Number);
  for (const k of ['polling', 'sse']) console.log(JSON.stringify(await idle(k, n1, n2)));
  for (const k of ['polling', 'sse']) console.log(JSON.stringify(await rate(k, secs)));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
