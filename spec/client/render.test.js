'use strict';
// The rendered browser client as the server serves it: both files, JavaScript content type, ETag and caching,
// ES5-only syntax (acorn, ecmaVersion 5), the committed .min template up to date with its source, and the read-only
// public directory fallback.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const acorn = require('acorn');
const { startServer, ROOT } = require('../lib/harness');

const NAMES = ['ActionheroWebsocketClient.js', 'ActionheroWebsocketClient.min.js'];

test('the committed .min template is what tools/minify-client makes of the source template', () => {
  execFileSync(path.join(ROOT, 'tools', 'minify-client'), ['--check'], { stdio: 'pipe' });
});

test('both files are served with a JavaScript type, ETag and caching, and parse as ES5', async (t) => {
  const pub = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-pub-'));
  const srv = await startServer({ config: { servers: { web: { publicDir: pub } } } });
  t.after(() => fs.rmSync(pub, { recursive: true, force: true }));
  try {
    const bodies = [];
    for (const name of NAMES) {
      const res = await fetch(`${srv.url}/public/javascript/${name}`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type'), /^(application|text)\/javascript/);
      const etag = res.headers.get('etag');
      assert.ok(etag, 'ETag');
      assert.match(res.headers.get('cache-control'), /max-age=60/);
      const body = await res.text();
      assert.equal(body, fs.readFileSync(path.join(pub, 'javascript', name), 'utf8'));
      assert.doesNotMatch(body, /__AG_/);
      assert.doesNotThrow(() => acorn.parse(body, { ecmaVersion: 5, sourceType: 'script' }), `${name} is ES5`);
      const again = await fetch(`${srv.url}/public/javascript/${name}`, { headers: { 'If-None-Match': etag } });
      assert.equal(again.status, 304);
      bodies.push(body);
    }
    assert.ok(bodies[1].length < bodies[0].length, 'the .min file is smaller');
    // defaults baked in: the bare origin expression, the socket path, transports and order
    for (const b of bodies) {
      assert.match(b, /window\.location\.origin/);
      assert.match(b, /"\/primus"/);
      assert.match(b, /\["polling","websocket","sse"\]/);
    }
    // ES6 syntax would be refused by the check above
    assert.throws(() => acorn.parse('const x = () => 1;', { ecmaVersion: 5 }));
  } finally {
    await srv.stop();
  }
});

test('configured defaults are rendered; an empty clientJsName renders nothing', async () => {
  const pub = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-pub-'));
  let srv = await startServer({
    config: {
      servers: {
        web: { publicDir: pub },
        websocket: {
          clientUrl: 'https://rt.example.com',
          clientJsName: 'rt',
          client: { transports: ['websocket', 'polling'], websocketFirst: true, queueSize: 7, reconnectMin: 123 },
        },
      },
    },
  });
  try {
    const Client = loadFresh(path.join(pub, 'javascript', 'rt.js'));
    const d = Client.defaults();
    assert.equal(d.url, 'https://rt.example.com');
    assert.deepEqual(d.transports, ['websocket', 'polling']);
    assert.equal(d.websocketFirst, true);
    assert.equal(d.queueSize, 7);
    assert.equal(d.reconnect.min, 123);
    assert.equal((await fetch(`${srv.url}/public/javascript/rt.min.js`)).status, 200);
  } finally {
    await srv.stop();
  }
  const pub2 = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-pub-'));
  srv = await startServer({ config: { servers: { web: { publicDir: pub2 }, websocket: { clientJsName: '' } } } });
  try {
    assert.equal(fs.existsSync(path.join(pub2, 'javascript')), false);
    assert.equal((await fetch(`${srv.url}/public/javascript/ActionheroWebsocketClient.js`)).status, 404);
  } finally {
    await srv.stop();
    fs.rmSync(pub, { recursive: true, force: true });
    fs.rmSync(pub2, { recursive: true, force: true });
  }
});

test('a public directory that cannot be written: the files are rendered elsewhere and served at the same URLs', async () => {
  const pub = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-pub-'));
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-run-'));
  fs.writeFileSync(path.join(pub, 'javascript'), 'not a directory');
  fs.writeFileSync(path.join(pub, 'hello.txt'), 'hi');
  const srv = await startServer({ config: { servers: { web: { publicDir: pub } } }, env: { TMPDIR: run } });
  try {
    for (const name of NAMES) {
      const res = await fetch(`${srv.url}/public/javascript/${name}`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type'), /javascript/);
      assert.ok(res.headers.get('etag'));
      const body = await res.text();
      assert.doesNotThrow(() => acorn.parse(body, { ecmaVersion: 5 }));
    }
    assert.equal(await (await fetch(`${srv.url}/public/hello.txt`)).text(), 'hi');
    assert.equal(fs.readdirSync(run).length, 1);
  } finally {
    await srv.stop();
  }
  assert.equal(fs.readdirSync(run).length, 0, 'the fallback directory is removed at exit');
  fs.rmSync(pub, { recursive: true, force: true });
  fs.rmSync(run, { recursive: true, force: true });
});

function loadFresh(file) {
  delete require.cache[require.resolve(file)];
  return require(file);
}

test('the chat demo script is ES5 too', () => {
  const src = fs.readFileSync(path.join(ROOT, 'client', 'public', 'js', 'chat.js'), 'utf8');
  assert.doesNotThrow(() => acorn.parse(src, { ecmaVersion: 5, sourceType: 'script' }));
});
