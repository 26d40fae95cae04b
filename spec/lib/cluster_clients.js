'use strict';
// Clients and setup shared by the cluster suites: a session-layer client over engine.io-client, raw SSE+POST, or the
// plain /primus WebSocket; a cluster of real nodes over a real redis-server.
const http = require('node:http');
const { Socket } = require('engine.io-client');
const { startServer, Redis } = require('./harness');
const { connect } = require('./wsclient');

const WELCOME = { welcome: 'Welcome to the actiongate api', context: 'api' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timeout: ${what}`);
    await sleep(50);
  }
}

// A session-layer client over any message transport: frames in, replies matched by messageId.
class Frames {
  constructor(send) {
    this.send = send;
    this.frames = [];
    this.waiters = [];
    this.nextId = 1;
  }
  push(text) {
    const f = JSON.parse(text);
    this.frames.push(f);
    this.waiters = this.waiters.filter((w) => !w(f));
  }
  next(pred, timeoutMs = 8000) {
    const i = this.frames.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timeout; have ${JSON.stringify(this.frames).slice(0, 1500)}`)), timeoutMs);
      this.waiters.push((f) => {
        if (!pred(f)) return false;
        clearTimeout(t);
        this.frames.splice(this.frames.indexOf(f), 1);
        resolve(f);
        return true;
      });
    });
  }
  request(obj) {
    const msg = { messageId: this.nextId++, ...obj };
    this.send(JSON.stringify(msg));
    return this.next((f) => f.context === 'response' && f.messageId === msg.messageId);
  }
}

function eio(url, opts) {
  const socket = new Socket(url, { path: '/primus/', ...opts });
  const c = new Frames((t) => socket.send(t));
  c.socket = socket;
  socket.on('message', (m) => c.push(m));
  c.opened = new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  c.closed = new Promise((resolve) => socket.once('close', (reason) => resolve(reason)));
  return c;
}

// SSE downstream with POSTs upstream, raw over node:http (PROTOCOL.md §5), every request a new connection.
function sse(base) {
  const c = new Frames((t) => post(`4${t}`));
  let sid;
  const post = (body) =>
    new Promise((resolve, reject) => {
      const req = http.request(`${base}/primus/?EIO=4&transport=sse&sid=${encodeURIComponent(sid)}`,
        { method: 'POST', agent: false, headers: { 'content-type': 'text/plain;charset=UTF-8' } }, (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => (res.statusCode === 200 ? resolve(b) : reject(new Error(`POST ${res.statusCode} ${b}`))));
        });
      req.on('error', reject);
      req.end(body);
    });
  c.post = post;
  c.opened = new Promise((resolve, reject) => {
    const req = http.get(`${base}/primus/?EIO=4&transport=sse&sse=1`, { agent: false, headers: { accept: 'text/event-stream' } },
      (res) => {
        if (res.statusCode !== 200) return reject(new Error(`SSE ${res.statusCode}`));
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          buf += d;
          let end;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const ev = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const data = ev.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
            if (!data) continue;
            for (const pkt of data.split('\x1e')) {
              if (pkt[0] === '0') {
                sid = JSON.parse(pkt.slice(1)).sid;
                c.sid = sid;
                resolve();
              } else if (pkt[0] === '2') {
                post('3').catch(() => {});
              } else if (pkt[0] === '4') {
                c.push(pkt.slice(1));
              }
            }
          }
        });
      });
    req.on('error', reject);
    c.close = () => req.destroy();
  });
  return c;
}

async function primus(srv) {
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  c.id = (await c.request({ event: 'detailsView' })).data.id;
  return c;
}

function getJson(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve({ status: res.statusCode, body: /json/.test(res.headers['content-type']) ? JSON.parse(b) : b }));
    }).on('error', reject);
  });
}

// n nodes (ids node0…) with nodeTtl 1 s, each with its sid route registered before this returns.
async function cluster(n, extra = {}) {
  const redis = await new Redis().start();
  const nodes = [];
  for (let i = 0; i < n; i++) {
    nodes.push(await startServer({ config: { ...extra, general: { id: `node${i}`, ...(extra.general || {}) }, redis: { url: redis.url, nodeTtl: 1 } } }));
  }
  // every node knows every other's route before the first request (one per worker)
  const workers = (extra.general && extra.general.workers) || Number(process.env.AG_WORKERS || 1);
  await waitFor(() => redis.cli('--scan', '--pattern', 'actiongate:route:*').split('\n').filter(Boolean).length === n * workers, 5000,
    'routes registered');
  return { redis, nodes };
}

// Stops everything even when a node's stop throws (a sanitizer report, an unclean exit), then throws the first error:
// a node left running would keep the test process alive for ever.
async function teardown({ redis, nodes }, ...proxies) {
  const errors = [];
  for (const p of proxies) await p.close().catch((e) => errors.push(e));
  // a node a test killed on purpose is only checked for sanitizer reports
  for (const s of nodes) await s.stop(s.exited && s.exited.signal === 'SIGKILL' ? 'SIGKILL' : 'SIGTERM').catch((e) => errors.push(e));
  await redis.stop();
  if (errors.length) throw errors[0];
}

module.exports = { WELCOME, sleep, waitFor, Frames, eio, sse, primus, getJson, cluster, teardown };
