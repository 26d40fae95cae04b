'use strict';
// Static files and the file verb serve only regular files inside the public directory: no symlink out of it, no
// FIFO (which would block the loop), no NUL-truncated names, and every static answer says nosniff. What a static file
// server must keep doing (ETag, Last-Modified, 304s, Cache-Control, HEAD, index.html, the directory redirect) is
// checked here as well, since the handler is our own.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { startServer } = require('../lib/harness');
const { connect } = require('../lib/wsclient');

// One raw HTTP/1.1 request (the path goes out byte for byte); resolves {status, headers, body} or rejects on timeout.
function raw(port, target, { method = 'GET', headers = {}, timeoutMs = 4000 } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer to ${method} ${target} within ${timeoutMs} ms`));
    }, timeoutMs);
    s.on('data', (d) => (buf = Buffer.concat([buf, d])));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      const text = buf.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no response head: ${JSON.stringify(text)}`));
      const lines = text.slice(0, end).split('\r\n');
      const h = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        h[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(lines[0].split(' ')[1]), headers: h, body: buf.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1')).toString() });
    });
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    s.write(`${method} ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${extra}\r\n`);
  });
}

test('static files and the file verb', async (t) => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-static-'));
  const pub = path.join(base, 'public');
  fs.mkdirSync(pub);
  fs.mkdirSync(path.join(pub, 'sub'));
  fs.writeFileSync(path.join(pub, 'ok.txt'), 'hello');
  fs.writeFileSync(path.join(pub, 'a.txt'), '<script>alert(1)</script>');
  fs.writeFileSync(path.join(pub, 'page.html'), '<p>page</p>');
  fs.writeFileSync(path.join(pub, 'sub', 'index.html'), '<p>sub index</p>');
  fs.writeFileSync(path.join(base, 'secret.txt'), 'secret');
  fs.mkdirSync(path.join(base, 'outdir'));
  fs.writeFileSync(path.join(base, 'outdir', 'x.txt'), 'outside');
  fs.symlinkSync(path.join(base, 'secret.txt'), path.join(pub, 'link.txt'));
  fs.symlinkSync('/etc/passwd', path.join(pub, 'passwd.txt'));
  fs.symlinkSync(path.join(base, 'outdir'), path.join(pub, 'outdir'));
  fs.symlinkSync('ok.txt', path.join(pub, 'inner.txt'));
  execFileSync('mkfifo', [path.join(pub, 'fifo.txt')]);
  const srv = await startServer({ config: { servers: { web: { publicDir: pub } } } });
  t.after(async () => {
    await srv.stop();
    fs.rmSync(base, { recursive: true, force: true });
  });

  await t.test('a regular file: body, type, nosniff, ETag, Last-Modified, Cache-Control', async () => {
    const res = await raw(srv.port, '/public/ok.txt');
    assert.strictEqual(res.status, 200);
    assert.strictEqual(res.body, 'hello');
    assert.match(res.headers['content-type'], /^text\/plain/);
    assert.strictEqual(res.headers['x-content-type-options'], 'nosniff');
    assert.strictEqual(res.headers['content-length'], '5');
    assert.match(res.headers.etag, /^"[0-9a-f]+-[0-9a-f]+"$/);
    assert.ok(!Number.isNaN(Date.parse(res.headers['last-modified'])));
    assert.match(res.headers['cache-control'], /max-age=60/);
    const again = await raw(srv.port, '/public/ok.txt', { headers: { 'if-none-match': res.headers.etag } });
    assert.strictEqual(again.status, 304);
    assert.strictEqual(again.body, '');
    const since = await raw(srv.port, '/public/ok.txt', { headers: { 'if-modified-since': res.headers['last-modified'] } });
    assert.strictEqual(since.status, 304);
    const head = await raw(srv.port, '/public/ok.txt', { method: 'HEAD' });
    assert.strictEqual(head.status, 200);
    assert.strictEqual(head.headers['content-length'], '5');
    assert.strictEqual(head.body, '');
    assert.strictEqual((await raw(srv.port, '/ok.txt')).body, 'hello');
    const post = await raw(srv.port, '/public/ok.txt', { method: 'POST', headers: { 'content-length': '0' } });
    assert.strictEqual(post.status, 405);
    assert.strictEqual(post.headers.allow, 'GET, HEAD');
  });

  await t.test('one byte range; several ranges get the whole file', async () => {
    let res = await raw(srv.port, '/public/ok.txt', { headers: { range: 'bytes=1-3' } });
    assert.strictEqual(res.status, 206);
    assert.strictEqual(res.body, 'ell');
    assert.strictEqual(res.headers['content-range'], 'bytes 1-3/5');
    res = await raw(srv.port, '/public/ok.txt', { headers: { range: 'bytes=-2' } });
    assert.strictEqual(res.body, 'lo');
    res = await raw(srv.port, '/public/ok.txt', { headers: { range: 'bytes=3-99' } });
    assert.strictEqual(res.body, 'lo');
    res = await raw(srv.port, '/public/ok.txt', { headers: { range: 'bytes=5-' } });
    assert.strictEqual(res.status, 416);
    assert.strictEqual(res.headers['content-range'], 'bytes */5');
    res = await raw(srv.port, '/public/ok.txt', { headers: { range: 'bytes=0-0,2-2' } });
    assert.strictEqual(res.status, 200);
    assert.strictEqual(res.body, 'hello');
  });

  await t.test('index.html for a directory, a redirect for a directory without its slash', async () => {
    const res = await raw(srv.port, '/public/sub/');
    assert.strictEqual(res.status, 200);
    assert.strictEqual(res.body, '<p>sub index</p>');
    assert.match(res.headers['content-type'], /^text\/html/);
    const redirect = await raw(srv.port, '/public/sub');
    assert.strictEqual(redirect.status, 301);
    assert.strictEqual(redirect.headers.location, '/public/sub/');
    assert.strictEqual((await raw(srv.port, '/public/nope.txt')).status, 404);
    assert.strictEqual((await raw(srv.port, '/public/')).status, 404); /* this directory has no index.html */
  });

  await t.test('a symlink out of the public directory is not followed', async () => {
    for (const p of ['/public/link.txt', '/public/passwd.txt', '/public/outdir/x.txt', '/link.txt']) {
      const res = await raw(srv.port, p);
      assert.strictEqual(res.status, 404, p);
      assert.doesNotMatch(res.body, /secret|root:|outside/, p);
    }
    // a link that stays inside is the file it names
    const inner = await raw(srv.port, '/public/inner.txt');
    assert.strictEqual(inner.status, 200);
    assert.strictEqual(inner.body, 'hello');
  });

  await t.test('a NUL in the path does not turn a.txt into text/html', async () => {
    for (const p of ['/public/a.txt%00.html', '/public/a.txt%00', '/public/%00']) {
      const res = await raw(srv.port, p);
      assert.ok(res.status === 404 || (res.status === 200 && /^text\/plain/.test(res.headers['content-type'])), `${p}: ${res.status}`);
      assert.doesNotMatch(res.headers['content-type'] || '', /html/, p);
    }
    const page = await raw(srv.port, '/public/page.html');
    assert.strictEqual(page.headers['x-content-type-options'], 'nosniff');
    assert.match(page.headers['content-type'], /^text\/html/);
  });

  await t.test('a FIFO is refused at once and the loop keeps serving', async () => {
    const res = await raw(srv.port, '/public/fifo.txt');
    assert.strictEqual(res.status, 404);
    const again = await raw(srv.port, '/public/ok.txt');
    assert.strictEqual(again.body, 'hello');
  });

  await t.test('the file verb obeys the same rules', async () => {
    const c = await connect(`${srv.wsUrl}/primus`);
    try {
      const ok = await c.request({ event: 'file', file: 'ok.txt' });
      assert.strictEqual(ok.content, 'hello');
      assert.strictEqual(ok.mime, 'text/plain');
      assert.strictEqual((await c.request({ event: 'file', file: 'inner.txt' })).content, 'hello');
      for (const file of ['link.txt', 'passwd.txt', 'outdir/x.txt', 'fifo.txt', 'sub', '../secret.txt']) {
        const r = await c.request({ event: 'file', file }, 4000);
        assert.strictEqual(r.error, 'that file is not found', file);
        assert.strictEqual(r.content, null, file);
      }
      const nul = await c.request({ event: 'file', file: 'a.txt\u0000.html' });
      assert.notStrictEqual(nul.mime, 'text/html');
      // still answering after the FIFO
      assert.strictEqual((await c.request({ event: 'file', file: 'ok.txt' })).content, 'hello');
    } finally {
      await c.close();
    }
  });
});
