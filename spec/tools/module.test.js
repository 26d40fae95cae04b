'use strict';
// C modules (README "C modules"): the build under test (AG_BIN's directory) is installed with `cmake --install` into a
// temporary DESTDIR; the example module (examples/module) and the fixtures of spec/tools/modules are built against the
// installed header and actiongate.pc only; the installed binary loads them. A real ws client checks the example's
// action, hook and server-API call, the probe's reading of its connection through the public accessors; the installed
// binary serves its client files with the source tree's hidden; and the boot errors (missing file, missing init
// symbol, an unexported symbol, a failing init: exit status 2, one line naming the file).
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { execFileSync, spawnSync } = require('node:child_process');
const { startServer, freePort, toYaml, BIN, ROOT } = require('../lib/harness');
const { connect } = require('../lib/wsclient');

const BUILD = path.dirname(BIN);
const KEY = 'module-test-key-0123456789';

function findFile(dir, name) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      const found = findFile(p, name);
      if (found) return found;
    } else if (e.name === name) {
      return p;
    }
  }
  return null;
}

function post(url, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json',
      'content-length': data.length, ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const verbErr = (text, messageId) => ({ status: `Error: ${text}`, error: `Error: ${text}`, context: 'response', data: {},
  messageId });

test('C modules built against an installation', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-module-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const root = path.join(dir, 'root');
  execFileSync('cmake', ['--install', BUILD], { env: { ...process.env, DESTDIR: root }, stdio: 'pipe' });

  const bin = findFile(root, 'actiongate');
  const pc = findFile(root, 'actiongate.pc');
  assert.ok(bin && pc, 'the binary and actiongate.pc are installed');
  for (const f of ['actiongate.h', 'libactiongate.a', 'ActionheroWebsocketClient.js.tmpl', 'actiongate.yaml'])
    assert.ok(findFile(root, f), `installs ${f}`);
  const env = { ...process.env, PKG_CONFIG_PATH: path.dirname(pc) };
  const cflags = execFileSync('pkg-config', ['--cflags', 'actiongate'], { env, encoding: 'utf8' });
  assert.ok(cflags.includes(root), `the flags point into the installation: ${cflags}`);

  await t.test('the binary exports every function and constant of the public header', () => {
    const header = fs.readFileSync(path.join(ROOT, 'include', 'actiongate.h'), 'utf8');
    const names = [...header.matchAll(/^(?!typedef)[a-z][^(\n]*[ *](ag_[a-z0-9_]+)\(/gm)].map((m) => m[1])
      .concat([...header.matchAll(/^extern const [a-z_]+ (AG_[A-Z_]+);/gm)].map((m) => m[1]));
    assert.ok(names.length > 40 && names.includes('ag_conn_user') && names.includes('ag_api_register'));
    const exported = new Set(execFileSync('nm', ['-D', '--defined-only', bin], { encoding: 'utf8' })
      .split('\n').map((l) => l.split(' ').pop()));
    assert.deepStrictEqual(names.filter((n) => !exported.has(n)), []);
    // internals stay hidden
    assert.ok(!exported.has('ag_conn_send_json') && !exported.has('ag_server_create'));
  });

  // the example, copied out of the tree, built with its own Makefile; the fixtures with the same flags
  const ex = path.join(dir, 'example');
  fs.cpSync(path.join(ROOT, 'examples', 'module'), ex, { recursive: true });
  execFileSync('make', ['-C', ex], { env, stdio: 'pipe' });
  const hello = path.join(ex, 'hello.so');
  const flags = (cflags + ' ' + execFileSync('pkg-config', ['--libs', 'actiongate'], { env, encoding: 'utf8' }))
    .trim().split(/\s+/).filter(Boolean);
  const so = {};
  for (const name of ['probe', 'nosym', 'failinit', 'undef']) {
    so[name] = path.join(dir, `${name}.so`);
    execFileSync('cc', ['-std=gnu11', '-Wall', '-Wextra', '-Werror', '-fPIC', '-shared', '-o', so[name],
      path.join(ROOT, 'spec', 'tools', 'modules', `${name}.c`), ...flags], { stdio: 'pipe' });
  }

  await t.test('the example and the probe, loaded by the installed binary', async () => {
    const srv = await startServer({
      bin,
      config: { modules: [hello, so.probe], serverApi: { key: KEY },
        general: { startingChatRooms: ['defaultRoom', 'private', 'secret'] } },
    });
    try {
      const c = await connect(`${srv.wsUrl}/primus?sessionID=fp-module`);
      await c.welcome();

      assert.deepStrictEqual(await c.request({ event: 'action', params: { action: 'hello', name: 'ann' }, messageId: 1 }),
        { greeting: 'hello, ann', context: 'response', messageId: 1 });
      assert.deepStrictEqual(await c.request({ event: 'action', params: { action: 'hello' }, messageId: 2 }),
        { greeting: 'hello, world', context: 'response', messageId: 2 });

      // the example's hook refuses "private", the probe's "secret": each module keeps its own hooks
      assert.deepStrictEqual(await c.request({ event: 'roomAdd', room: 'private', messageId: 3 }),
        verbErr('the room private is closed (example module)', 3));
      assert.deepStrictEqual(await c.request({ event: 'roomAdd', room: 'secret', messageId: 4 }),
        verbErr('secret is refused by the probe', 4));
      assert.deepStrictEqual(await c.request({ event: 'roomAdd', room: 'defaultRoom', messageId: 5 }),
        { status: 'OK', context: 'response', data: true, messageId: 5 });

      const id = (await c.request({ event: 'detailsView' })).data.id;
      const who = await c.request({ event: 'action', params: { action: 'whoami' }, messageId: 6 });
      assert.strictEqual(who.id, id);
      assert.strictEqual(who.fingerprint, 'fp-module');
      assert.strictEqual(who.remoteIp, '127.0.0.1');
      assert.ok(who.remotePort > 0 && who.remotePort < 65536);
      assert.strictEqual(who.transport, 'websocket');
      assert.strictEqual(who.protocol, 'primus');
      assert.strictEqual(who.user, null);
      assert.strictEqual(who.data, null);
      assert.deepStrictEqual(who.rooms, ['defaultRoom']);
      assert.strictEqual(who.roomCalls, 1);
      assert.strictEqual(who.stoppedAfter, 1);
      assert.strictEqual(who.found, true);
      assert.strictEqual(who.closed, false);
      assert.strictEqual(who.recent, true);

      // the API extension: the key checked like the built-in calls
      const url = `${srv.url}/server/echo`;
      const auth = { authorization: `Bearer ${KEY}` };
      const ok = await post(url, { x: [1, 'two'] }, auth);
      assert.strictEqual(ok.status, 200);
      assert.deepStrictEqual(ok.body.echo, { x: [1, 'two'] });
      assert.strictEqual(typeof ok.body.node, 'string');
      assert.strictEqual((await post(url, { x: 1 })).status, 401);
      assert.strictEqual((await post(url, { x: 1 }, { authorization: 'Bearer wrong-key-0123456789' })).status, 401);
      assert.strictEqual((await post(url, 'not json', auth)).status, 400);
      assert.strictEqual((await post(`${srv.url}/server/nope`, {}, auth)).status, 404);
      assert.deepStrictEqual(await post(`${srv.url}/server/kick`, { id: 'nobody' }, auth),
        { status: 404, body: { error: 'no such connection here' } });

      // kick: ag_conn_find + ag_conn_close from a module's call
      const closed = new Promise((resolve) => c.ws.once('close', resolve));
      assert.deepStrictEqual(await post(`${srv.url}/server/kick`, { id }, auth), { status: 200, body: { kicked: id } });
      await closed;
    } finally {
      await srv.stop();
    }
  });

  // The source tree's client/ (demo pages, templates, socket.io.js) hidden by an empty directory mounted over it in a
  // mount namespace of the binary's own: the installed binary must find its installed copies.
  await t.test('the installed binary serves the client and the demo without the source tree', async (st) => {
    if (spawnSync('unshare', ['--mount', '--propagation', 'private', 'true']).status !== 0) {
      st.skip('no mount namespaces here (unshare --mount needs CAP_SYS_ADMIN)');
      return;
    }
    const empty = path.join(dir, 'empty');
    fs.mkdirSync(empty);
    const wrapper = path.join(dir, 'hidden-source');
    fs.writeFileSync(wrapper, `#!/bin/sh
exec unshare --mount --propagation private /bin/sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh ${JSON.stringify(empty)} ${JSON.stringify(path.join(ROOT, 'client'))} ${JSON.stringify(bin)} "$@"
`, { mode: 0o755 });
    const srv = await startServer({ bin: wrapper });
    try {
      const get = (p) => new Promise((resolve, reject) => {
        http.get(`${srv.url}${p}`, { agent: false }, (res) => {
          const chunks = [];
          res.on('data', (d) => chunks.push(d));
          res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
        }).on('error', reject);
      });
      const client = await get('/public/javascript/ActionheroWebsocketClient.js');
      assert.strictEqual(client.status, 200);
      assert.match(client.body, /ActionheroWebsocketClient/);
      assert.doesNotMatch(client.body, /__AG_[A-Z_]+__/); // rendered
      const sio = await get('/socket.io/socket.io.js');
      assert.strictEqual(sio.status, 200);
      assert.match(sio.body, /io/);
      const index = await get('/');
      assert.strictEqual(index.status, 200);
      assert.match(index.body, /<html/i);
    } finally {
      await srv.stop();
    }
  });

  await t.test('boot errors: exit status 2 and one line naming the file', async () => {
    const port = await freePort();
    const cases = [
      [path.join(dir, 'missing.so'), /cannot load: .*No such file or directory/],
      [so.nosym, /no actiongate_module_init symbol/],
      [so.undef, /cannot load: .*undefined symbol: ag_conn_send_json/],
      [so.failinit, /init failed: no database configured/],
    ];
    for (const [file, why] of cases) {
      const cfgPath = path.join(dir, 'bad.yaml');
      fs.writeFileSync(cfgPath, toYaml({ modules: [hello, file], servers: { web: { port, bindIP: '127.0.0.1' } } }));
      const r = spawnSync(bin, ['--config', cfgPath], { encoding: 'utf8', timeout: 20000 });
      assert.strictEqual(r.status, 2, `${file}: ${r.stderr}`);
      // one line for the error (a sanitizer build may add its own report after it, which the harness checks elsewhere)
      const lines = r.stderr.split('\n').filter((l) => l.includes(file));
      assert.strictEqual(lines.length, 1, r.stderr);
      assert.ok(lines[0].startsWith(`module ${file}: `), lines[0]);
      assert.match(lines[0], why);
      assert.doesNotMatch(r.stderr, /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/);
    }
    // a list entry that is not a path is a configuration error of its own
    fs.writeFileSync(path.join(dir, 'empty.yaml'), 'modules: [""]\n');
    const r = spawnSync(bin, ['--config', path.join(dir, 'empty.yaml')], { encoding: 'utf8', timeout: 20000 });
    assert.strictEqual(r.status, 2);
    assert.match(r.stderr, /modules: each entry is the path of a shared object/);
  });
});
