'use strict';
// Request framing and what the server writes about a request: duplicate Content-Length or Transfer-Encoding with
// Content-Length is refused (400, connection closed) before any handler or upstream sees it; the sessionID cookie
// carries SameSite (and Secure under TLS); log lines built from client input are escaped.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const https = require('node:https');
const { execFileSync } = require('node:child_process');
const { startServer } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { Eio } = require('../lib/eio_raw');

// Writes bytes on a fresh connection and collects everything until the server closes it (or timeoutMs passes, then
// the socket is destroyed). Resolves {text, closedByServer, statuses}.
function exchange(port, bytes, timeoutMs = 3000) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    let closedByServer = false;
    const timer = setTimeout(() => s.destroy(), timeoutMs);
    s.setEncoding('latin1');
    s.on('data', (d) => (text += d));
    s.on('end', () => (closedByServer = true));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
      resolve({ text, closedByServer, statuses });
    });
    s.write(bytes);
  });
}

const SMUGGLED = 'GET /api/randomNumber HTTP/1.1\r\nHost: x\r\n\r\n';

test('request framing', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const eio = new Eio(srv.url);

  await t.test('two Content-Length headers: 400, and the bytes after are not a second request', async () => {
    const r = await exchange(srv.port,
      `POST /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`);
    assert.deepStrictEqual(r.statuses, [400], r.text);
    assert.ok(r.closedByServer);
    assert.doesNotMatch(r.text, /randomNumber/);
    // equal values are refused as well
    const same = await exchange(srv.port, 'POST /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n{}');
    assert.deepStrictEqual(same.statuses, [400], same.text);
  });

  await t.test('Transfer-Encoding with Content-Length: 400 and close', async () => {
    const r = await exchange(srv.port,
      `POST /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`);
    assert.deepStrictEqual(r.statuses, [400], r.text);
    assert.ok(r.closedByServer);
    const rev = await exchange(srv.port,
      `POST /api/status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${SMUGGLED}`);
    assert.deepStrictEqual(rev.statuses, [400], rev.text);
  });

  await t.test('two Transfer-Encoding headers: 400', async () => {
    const r = await exchange(srv.port,
      `POST /api/status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`);
    assert.deepStrictEqual(r.statuses, [400], r.text);
  });

  await t.test('every endpoint refuses them: engine.io, /primus, static files, socket.io', async () => {
    const { sid } = await eio.handshake();
    for (const target of [`/primus/?EIO=4&transport=polling&sid=${sid}`, '/primus', '/public/index.html', '/', '/socket.io/?EIO=4&transport=polling', '/nowhere']) {
      const r = await exchange(srv.port, `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n4hi`);
      assert.deepStrictEqual(r.statuses, [400], `${target}: ${r.text}`);
      const te = await exchange(srv.port, `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n4hi\r\n0\r\n\r\n`);
      assert.deepStrictEqual(te.statuses, [400], `${target}: ${te.text}`);
    }
  });

  await t.test('well-formed requests on one keep-alive connection are all answered', async () => {
    const r = await exchange(srv.port,
      'POST /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}' +
      'POST /api/status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n' +
      'GET /api/randomNumber HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.deepStrictEqual(r.statuses, [200, 200, 200], r.text);
  });
});

const COOKIE = /^sessionID=[0-9a-f]{40};path=\/;expires=\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT;SameSite=Lax;$/;

test('the sessionID cookie: SameSite=Lax over HTTP; Secure too over TLS', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const res = await fetch(`${srv.url}/api/status`);
  await res.arrayBuffer();
  assert.match(res.headers.get('set-cookie'), COOKIE);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-tls-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  const tls = await startServer({ config: { servers: { web: { secure: true, certFile: cert, keyFile: key } } } });
  t.after(() => tls.stop());
  const setCookie = await new Promise((resolve, reject) => {
    https.get(`https://127.0.0.1:${tls.port}/api/status`, { rejectUnauthorized: false }, (r) => {
      r.resume();
      r.on('end', () => resolve(r.headers['set-cookie'][0]));
    }).on('error', reject);
  });
  assert.match(setCookie, /^sessionID=[0-9a-f]{40};path=\/;expires=[^;]+;SameSite=Lax;Secure;$/);
});

test('log lines built from client input are escaped', async (t) => {
  const srv = await startServer({ config: { general: { logLevel: 'info' } } });
  t.after(() => srv.stop());
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  // jansson quotes the offending bytes in its error text: a newline, a carriage return and a terminal escape
  c.sendRaw('"\\\n2030-01-01T00:00:00.000Z error [server] - forged');
  c.sendRaw('"\\\r');
  c.sendRaw('\x1b[2J');
  assert.ok((await c.request({ event: 'detailsView' })).data.id);
  await c.close();
  const lines = srv.stderr.split('\n').filter((l) => l !== '');
  const invalid = lines.filter((l) => l.includes('invalid JSON ignored'));
  assert.strictEqual(invalid.length, 3, srv.stderr);
  assert.ok(invalid[0].endsWith("invalid escape near '\"\\\\\\n'"), invalid[0]);
  assert.ok(invalid[1].endsWith("invalid escape near '\"\\\\\\r'"), invalid[1]);
  assert.ok(invalid[2].endsWith("invalid token near '\\x1b'"), invalid[2]);
  for (const l of lines) assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /, `every line is a log line: ${JSON.stringify(l)}`);
  assert.doesNotMatch(srv.stderr, /[\r\x1b]/);
});
