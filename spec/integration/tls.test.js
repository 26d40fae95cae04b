'use strict';
// servers.web.secure: https and wss on the same port; HTTP/2 only when asked for.
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const https = require('node:https');
const http2 = require('node:http2');
const { startServer } = require('../lib/harness');
const { connect } = require('../lib/wsclient');

function makeCert() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  return { dir, cert, key };
}

function alpn(port) {
  return new Promise((resolve, reject) => {
    const s = require('node:tls').connect({ port, host: '127.0.0.1', ALPNProtocols: ['h2', 'http/1.1'], rejectUnauthorized: false }, () => {
      const p = s.alpnProtocol;
      s.end();
      resolve(p);
    });
    s.on('error', reject);
  });
}

function get(url, opts = {}) {
  return new Promise((resolve, reject) => {
    https.get(url, { rejectUnauthorized: false, ...opts }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}

test('TLS: https and wss on one port, HTTP/1.1 only by default', async (t) => {
  const c = makeCert();
  t.after(() => fs.rmSync(c.dir, { recursive: true, force: true }));
  const srv = await startServer({ config: { servers: { web: { secure: true, certFile: c.cert, keyFile: c.key } } } });
  t.after(() => srv.stop());
  const res = await get(`https://127.0.0.1:${srv.port}/primus/spec`);
  assert.strictEqual(res.status, 200);
  assert.strictEqual(JSON.parse(res.body).pathname, '/primus');
  const ws = await connect(`wss://127.0.0.1:${srv.port}/primus`, { rejectUnauthorized: false });
  assert.deepStrictEqual(await ws.welcome(), { welcome: 'Welcome to the actiongate api', context: 'api' });
  await ws.close();
  // no h2 offered unless servers.web.http2 is on
  assert.notStrictEqual(await alpn(srv.port), 'h2');
});

test('TLS with servers.web.http2 on negotiates h2', async (t) => {
  const c = makeCert();
  t.after(() => fs.rmSync(c.dir, { recursive: true, force: true }));
  const srv = await startServer({ config: { servers: { web: { secure: true, http2: true, certFile: c.cert, keyFile: c.key } } } });
  t.after(() => srv.stop());
  assert.strictEqual(await alpn(srv.port), 'h2');
  const status = await new Promise((resolve, reject) => {
    const s = http2.connect(`https://127.0.0.1:${srv.port}`, { rejectUnauthorized: false });
    s.on('error', reject);
    const req = s.request({ ':path': '/primus/spec' });
    req.on('response', (h) => {
      req.resume();
      req.on('end', () => {
        s.close();
        resolve(h[':status']);
      });
    });
  });
  assert.strictEqual(status, 200);
});

test('a secure config without certificate files is rejected with FILE:LINE', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-cfg-'));
  const f = path.join(dir, 'bad.yaml');
  fs.writeFileSync(f, 'servers:\n  web:\n    secure: true\n');
  let err;
  try {
    execFileSync(require('../lib/harness').BIN, ['--config', f, '--check-config'], { stdio: 'pipe' });
  } catch (e) {
    err = e;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  assert.ok(err, 'must fail');
  assert.strictEqual(err.status, 2);
  assert.match(err.stderr.toString(), new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+: servers\\.web\\.secure needs`));
});

// An engine.io SSE session over TLS: the stream (on its own socket over HTTP/1.1, a held response over h2) carries the
// open event and then the echo of a POST.
async function sseOverTls(open, post) {
  let text = '';
  const { close, waitFor } = await open((d) => (text += d));
  try {
    const seen = (re) => waitFor(() => re.test(text));
    await seen(/id: 1\ndata: 0\{/);
    const sid = JSON.parse(/data: 0(\{.*\})\n/.exec(text)[1]).sid;
    assert.strictEqual(await post(sid, '4over tls'), 'ok');
    await seen(/data: 4over tls\n\n/);
  } finally {
    close();
  }
}

function poller(getText) {
  return async (pred) => {
    for (let i = 0; i < 300 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(pred(), getText());
  };
}

test('TLS: an SSE stream over HTTP/1.1 and over h2', async (t) => {
  const c = makeCert();
  t.after(() => fs.rmSync(c.dir, { recursive: true, force: true }));
  const srv = await startServer({
    config: { servers: { web: { secure: true, http2: true, certFile: c.cert, keyFile: c.key }, websocket: { server: { echo: true } } } },
  });
  t.after(() => srv.stop());
  const base = `https://127.0.0.1:${srv.port}/primus/?EIO=4&transport=sse`;

  await t.test('HTTP/1.1', async () => {
    const agent = new https.Agent({ rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    await sseOverTls(
      (onData) => new Promise((resolve, reject) => {
        let text = '';
        const req = https.get(base, { agent, headers: { accept: 'text/event-stream' } }, (res) => {
          assert.strictEqual(res.headers['content-type'], 'text/event-stream; charset=utf-8');
          res.setEncoding('utf8');
          res.on('data', (d) => { text += d; onData(d); });
          resolve({ close: () => req.destroy(), waitFor: poller(() => text) });
        });
        req.on('error', reject);
      }),
      (sid, body) => new Promise((resolve, reject) => {
        const req = https.request(`${base}&sid=${sid}`, { method: 'POST', agent, headers: { 'content-type': 'text/plain' } }, (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => resolve(b));
        });
        req.on('error', reject);
        req.end(body);
      }),
    );
    agent.destroy();
  });

  await t.test('h2', async () => {
    const s = http2.connect(`https://127.0.0.1:${srv.port}`, { rejectUnauthorized: false });
    t.after(() => s.close());
    const path = '/primus/?EIO=4&transport=sse';
    await sseOverTls(
      (onData) => new Promise((resolve) => {
        let text = '';
        const req = s.request({ ':path': path, accept: 'text/event-stream' });
        req.setEncoding('utf8');
        req.on('data', (d) => { text += d; onData(d); });
        req.on('response', () => resolve({ close: () => req.close(), waitFor: poller(() => text) }));
      }),
      (sid, body) => new Promise((resolve) => {
        const req = s.request({ ':path': `${path}&sid=${sid}`, ':method': 'POST', 'content-type': 'text/plain' });
        let b = '';
        req.setEncoding('utf8');
        req.on('data', (d) => (b += d));
        req.on('end', () => resolve(b));
        req.end(body);
      }),
    );
  });
});

test('TLS: a polling GET that goes to sleep (pollSleepMs) is answered, and its connection carries the next GET', async (t) => {
  const c = makeCert();
  t.after(() => fs.rmSync(c.dir, { recursive: true, force: true }));
  const srv = await startServer({
    config: { servers: { web: { secure: true, certFile: c.cert, keyFile: c.key },
      websocket: { server: { echo: true, pollSleepMs: 50, pingInterval: 60000, pingTimeout: 60000 } } } },
  });
  t.after(() => srv.stop());
  const base = `https://127.0.0.1:${srv.port}/primus/?EIO=4&transport=polling`;
  // one socket for the GETs: the second must reuse the connection the sleeping GET gave back
  const agent = new https.Agent({ rejectUnauthorized: false, keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const call = (url, opts = {}) => new Promise((resolve, reject) => {
    const req = https.request(url, { rejectUnauthorized: false, ...opts }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
  const sid = JSON.parse((await call(base, { agent })).body.slice(1)).sid;
  const post = (body) => call(`${base}&sid=${sid}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body });
  const slept = async () => Number(/^actiongate_polls_slept_total (\d+)$/m.exec((await get(`https://127.0.0.1:${srv.port}/metrics`)).body)[1]);

  const first = call(`${base}&sid=${sid}`, { agent });
  for (let i = 0; i < 200 && (await slept()) < 1; i++) await new Promise((r) => setTimeout(r, 20));
  assert.strictEqual(await slept(), 1);
  await post('4over tls');
  const r1 = await first;
  assert.strictEqual(r1.status, 200);
  assert.strictEqual(r1.headers['transfer-encoding'], 'chunked');
  assert.strictEqual(r1.body, '4over tls');
  await post('4next');
  const r2 = await call(`${base}&sid=${sid}`, { agent });
  assert.strictEqual(r2.body, '4next');
  assert.strictEqual(r2.reused, true, 'the connection came back to HTTP/1.1 keep-alive');
});
