'use strict';
// Signed tokens (README "Tokens"): read from the handshake query, the Authorization header or socket.io's auth,
// checked before the connect hook of a real backend (spec/lib/backend.js); valid HS256 / RS256 / ES256 tokens, every
// refusal (expired, nbf ahead, forged, tampered, alg none, an alg not allowed, too large, missing when required), over
// /primus, engine.io (polling, websocket, SSE) and socket.io; expiry with and without a refresh.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Socket } = require('engine.io-client');
const { io } = require('socket.io-client');
const { execFileSync } = require('node:child_process');
const { startServer, BIN } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { connectSio, rawEngine } = require('../lib/sioclient');
const { startBackend } = require('../lib/backend');
const { sign, now, keyPairs, b64url } = require('../lib/jwt');

const SECRET = 'a-test-secret-of-at-least-32-bytes-0123';
const keys = keyPairs();
const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-keys-'));
const rsaFile = path.join(keyDir, 'rsa.pem');
const ecFile = path.join(keyDir, 'ec.pem');
fs.writeFileSync(rsaFile, keys.rsa.publicPem);
fs.writeFileSync(ecFile, keys.ec.publicPem);
test.after(() => fs.rmSync(keyDir, { recursive: true, force: true }));

const hs = (claims, header = {}) => sign({ alg: 'HS256', ...header }, claims, SECRET);
const rs = (claims) => sign({ alg: 'RS256' }, claims, keys.rsa.privateKey);
const es = (claims) => sign({ alg: 'ES256' }, claims, keys.ec.privateKey);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Waits (bounded) until pred() holds.
async function until(pred, what, ms = 8000) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

async function setup(t, tokens = {}, { hooks = true } = {}) {
  const backend = await startBackend({
    connect: (p) => ({ data: { seen: p.user || null } }),
    disconnect: () => ({}),
  });
  t.after(() => backend.stop());
  const config = { tokens: { secret: SECRET, publicKeyFile: rsaFile, ...tokens } };
  if (hooks) {
    config.upstream = { urls: [backend.url] };
    config.hooks = { connect: 'connect', disconnect: 'disconnect' };
  }
  const srv = await startServer({ config });
  t.after(() => srv.stop());
  return { backend, srv };
}

// A Primus client; resolves with the first frame that is a welcome or an error.
async function primusFirst(srv, query, opts) {
  const c = await connect(`${srv.wsUrl}/primus${query}`, opts);
  const first = await c.next((f) => f && (f.welcome !== undefined || f.error !== undefined));
  return { c, first };
}

async function primusRefused(srv, query, text, opts) {
  const { c, first } = await primusFirst(srv, query, opts);
  assert.deepStrictEqual(first, { error: text, context: 'api' });
  await c.next((f) => f === 'primus::server::close');
  await c.closed;
  assert.ok(!c.frames.some((f) => f && f.welcome !== undefined), 'a refused connection got a welcome');
}

function eio(srv, query, transports, extra = {}) {
  const socket = new Socket(srv.url, { path: '/primus/', transports, query, reconnection: false, ...extra });
  const messages = [];
  socket.on('message', (m) => messages.push(JSON.parse(m)));
  const opened = new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const closed = new Promise((resolve) => socket.once('close', (reason) => resolve(reason)));
  return { socket, messages, opened, closed };
}

async function eioRequest(c, msg) {
  c.socket.send(JSON.stringify(msg));
  await until(() => c.messages.some((m) => m.messageId === msg.messageId), 'reply');
  return c.messages.find((m) => m.messageId === msg.messageId);
}

test('tokens over /primus', async (t) => {
  const { backend, srv } = await setup(t);

  await t.test('a valid HS256 token in the query: sub is the user, claims kept, told to the connect hook first', async () => {
    const token = hs({ sub: 'ann', role: 'admin', exp: now() + 600 });
    const { c, first } = await primusFirst(srv, `?token=${token}`);
    assert.strictEqual(first.welcome !== undefined, true);
    const d = (await c.request({ event: 'detailsView' })).data;
    assert.strictEqual(d.user, 'ann');
    assert.deepStrictEqual(d.claims, { sub: 'ann', role: 'admin', exp: d.claims.exp });
    const call = await backend.call((x) => x.action === 'connect' && x.params.connectionId === d.id);
    assert.strictEqual(call.params.user, 'ann');
    assert.strictEqual(call.params.claims.role, 'admin');
    assert.deepStrictEqual(d.data, { seen: 'ann' }, 'the hook saw the user before it answered');
    await c.close();
    const bye = await backend.call((x) => x.action === 'disconnect' && x.params.connectionId === d.id);
    assert.strictEqual(bye.params.user, 'ann');
    assert.strictEqual(bye.params.claims.role, 'admin');
  });

  await t.test('a valid RS256 token in Authorization: Bearer', async () => {
    const { c, first } = await primusFirst(srv, '', { headers: { authorization: `Bearer ${rs({ sub: 'bob' })}` } });
    assert.strictEqual(first.welcome !== undefined, true);
    assert.strictEqual((await c.request({ event: 'detailsView' })).data.user, 'bob');
    await c.close();
  });

  await t.test('no token, not required: allowed, no user', async () => {
    const { c, first } = await primusFirst(srv, '');
    assert.strictEqual(first.welcome !== undefined, true);
    const d = (await c.request({ event: 'detailsView' })).data;
    assert.strictEqual(d.user, undefined);
    assert.strictEqual(d.claims, undefined);
    await c.close();
  });

  const header = b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }));
  const payload = b64url(JSON.stringify({ sub: 'root' }));
  const valid = hs({ sub: 'ann' });
  const [h, , s] = valid.split('.');
  const refusals = [
    ['expired', hs({ sub: 'ann', exp: now() - 10 }), 'token expired'],
    ['nbf in the future', hs({ sub: 'ann', nbf: now() + 3600 }), 'token not yet valid'],
    ['a forged signature (another secret)', sign({ alg: 'HS256' }, { sub: 'ann' }, 'not-the-secret-not-the-secret-not-the'), 'invalid token'],
    ['a tampered payload', `${h}.${payload}.${s}`, 'invalid token'],
    ['alg none', `${header}.${payload}.`, 'invalid token'],
    ['alg none with a signature', `${header}.${payload}.${s}`, 'invalid token'],
    // the confusion attack: an HS256 token whose HMAC key is the server's (public) RSA key
    ['HS256 signed with the RSA public key as the secret', sign({ alg: 'HS256' }, { sub: 'root' }, keys.rsa.publicPem), 'invalid token'],
    ['an ES256 token (no EC key configured)', es({ sub: 'eve' }), 'invalid token'],
    ['too large', hs({ sub: 'ann', pad: 'x'.repeat(9000) }), 'token too large'],
    ['not a token', 'hello', 'invalid token'],
  ];
  for (const [what, token, text] of refusals) {
    await t.test(`refused: ${what}, with "${text}", before the connect hook`, async () => {
      await primusRefused(srv, `?token=${token}`, text);
      await sleep(50);
      assert.ok(!backend.calls.some((x) => x.action === 'connect' && x.params.query && x.params.query.token === token), 'the hook was asked');
    });
  }

  await t.test('the refusals are logged without the token', async () => {
    const token = sign({ alg: 'HS256' }, { sub: 'logcheck' }, 'not-the-secret-not-the-secret-not-the');
    await primusRefused(srv, `?token=${token}`, 'invalid token');
    await until(() => /refused a forged or foreign token from 127\.0\.0\.1: bad signature/.test(srv.stderr), 'log line');
    assert.ok(!srv.stderr.includes(token.split('.')[2]), 'the log holds the token');
    assert.match(srv.stderr, /refused a forged or foreign token from 127\.0\.0\.1: algorithm not allowed/);
  });
});

test('tokens over engine.io (polling, websocket, SSE)', async (t) => {
  const { backend, srv } = await setup(t);
  for (const transport of ['polling', 'websocket']) {
    await t.test(`${transport}: a valid token opens, the user is set`, async () => {
      const c = eio(srv, { token: hs({ sub: `eve-${transport}` }) }, [transport]);
      await c.opened;
      const d = (await eioRequest(c, { event: 'detailsView', messageId: 1 })).data;
      assert.strictEqual(d.user, `eve-${transport}`);
      assert.strictEqual(d.claims.sub, `eve-${transport}`);
      c.socket.close();
    });
    await t.test(`${transport}: a forged token never opens`, async () => {
      const c = eio(srv, { token: sign({ alg: 'HS256' }, { sub: 'x' }, 'not-the-secret-not-the-secret-not-the') }, [transport]);
      await assert.rejects(c.opened);
    });
  }
  await t.test('polling: an Authorization header carries it too', async () => {
    const c = eio(srv, {}, ['polling'], { extraHeaders: { authorization: `Bearer ${rs({ sub: 'hdr' })}` } });
    await c.opened;
    assert.strictEqual((await eioRequest(c, { event: 'detailsView', messageId: 2 })).data.user, 'hdr');
    c.socket.close();
  });
  await t.test('polling handshake: 403 with the engine.io error, the hook not asked', async () => {
    for (const [token, message] of [
      [hs({ sub: 'a', exp: now() - 1 }), 'token expired'],
      [`${b64url('{"alg":"none"}')}.${b64url('{"sub":"root"}')}.`, 'invalid token'],
    ]) {
      const res = await fetch(`${srv.url}/primus/?EIO=4&transport=polling&token=${token}`);
      assert.strictEqual(res.status, 403);
      assert.deepStrictEqual(await res.json(), { code: 4, message });
      assert.ok(!backend.calls.some((x) => x.action === 'connect' && x.params.query && x.params.query.token === token));
    }
  });
  await t.test('sse: refused with 403, allowed with the open packet', async () => {
    const refused = await fetch(`${srv.url}/primus/?EIO=4&transport=sse&token=${hs({ sub: 's', nbf: now() + 999 })}`);
    assert.strictEqual(refused.status, 403);
    assert.deepStrictEqual(await refused.json(), { code: 4, message: 'token not yet valid' });
    const ac = new AbortController();
    const ok = await fetch(`${srv.url}/primus/?EIO=4&transport=sse&token=${hs({ sub: 'sam' })}`, { signal: ac.signal });
    assert.strictEqual(ok.status, 200);
    const reader = ok.body.getReader();
    let text = '';
    const deadline = Date.now() + 5000;
    while (!text.includes('"sid"') && Date.now() < deadline) text += Buffer.from((await reader.read()).value || []).toString();
    assert.match(text, /"sid"/);
    ac.abort();
    const call = await backend.call((x) => x.action === 'connect' && x.params.user === 'sam');
    assert.strictEqual(call.params.transport, 'sse');
    assert.strictEqual(call.params.claims.sub, 'sam');
  });
});

test('tokens over socket.io: auth.token', async (t) => {
  const { backend, srv } = await setup(t);
  for (const mode of ['polling', 'websocket']) {
    await t.test(`${mode}: a valid token in auth`, async () => {
      const c = await connectSio(srv, mode, { auth: { token: hs({ sub: `sue-${mode}` }) } });
      const [reply] = await c.ack('detailsView');
      assert.strictEqual(reply.data.user, `sue-${mode}`);
      const call = await backend.call((x) => x.action === 'connect' && x.params.user === `sue-${mode}`);
      assert.strictEqual(call.params.claims.sub, `sue-${mode}`);
      c.socket.disconnect();
    });
    for (const [what, token, message] of [
      ['expired', hs({ sub: 'x', exp: now() - 5 }), 'token expired'],
      ['forged', sign({ alg: 'HS256' }, { sub: 'x' }, keys.rsa.publicPem), 'invalid token'],
      ['not a string', 42, 'invalid token'],
    ]) {
      await t.test(`${mode}: ${what}: CONNECT_ERROR "${message}"`, async () => {
        const socket = io(srv.url, { transports: [mode], reconnection: false, forceNew: true, auth: { token } });
        const err = await new Promise((resolve, reject) => {
          socket.once('connect_error', resolve);
          socket.once('connect', () => reject(new Error('connected')));
        });
        assert.strictEqual(err.message, message);
        socket.close();
      });
    }
  }
});

test('socket.io: a token from the engine.io handshake that expired meanwhile does not CONNECT again', async (t) => {
  const { srv } = await setup(t, {}, { hooks: false });
  const exp = now() + 2;
  const e = await rawEngine(srv, { query: { token: hs({ sub: 'again', exp }) } });
  // socket.io packets on the engine.io session: 0 CONNECT, 1 DISCONNECT, 4 CONNECT_ERROR
  e.socket.send('0');
  assert.match(await e.take((m) => m.startsWith('0')), /^0\{"sid":/);
  e.socket.send('1');
  while (now() < exp) await sleep(100);
  e.socket.send('0');
  assert.strictEqual(await e.take((m) => m.startsWith('0') || m.startsWith('4')), '4{"message":"token expired"}');
  e.socket.close();
});

test('a key file that cannot be used is a configuration error: exit status 2, one line', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-tokcfg-'));
  try {
    const bad = path.join(dir, 'bad.pem');
    fs.writeFileSync(bad, 'not a key\n');
    for (const [key, text] of [[path.join(dir, 'missing.pem'), /cannot open/], [bad, /holds no RSA or EC public key/]]) {
      const cfg = path.join(dir, 'c.yaml');
      fs.writeFileSync(cfg, `tokens:\n  publicKeyFile: "${key}"\n`);
      for (const args of [['--check-config', '--config', cfg], ['--config', cfg, '--port', '0']]) {
        let res;
        try {
          execFileSync(BIN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10000 });
          res = { status: 0 };
        } catch (e) {
          res = e;
        }
        assert.strictEqual(res.status, 2, `${args.join(' ')}: ${res.stderr}`);
        assert.match(res.stderr, new RegExp(`^${cfg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1: tokens.publicKeyFile: `));
        assert.match(res.stderr, text);
        assert.strictEqual(res.stderr.trim().split('\n').length, 1);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('tokens.require: a connection without a token is refused on every protocol', async (t) => {
  const { srv } = await setup(t, { require: true, publicKeyFile: ecFile }, { hooks: false });
  await t.test('/primus', async () => {
    await primusRefused(srv, '', 'a token is required');
  });
  await t.test('engine.io polling: 403', async () => {
    const res = await fetch(`${srv.url}/primus/?EIO=4&transport=polling`);
    assert.strictEqual(res.status, 403);
    assert.deepStrictEqual(await res.json(), { code: 4, message: 'a token is required' });
  });
  await t.test('socket.io: CONNECT_ERROR', async () => {
    const socket = io(srv.url, { transports: ['polling'], reconnection: false, forceNew: true });
    const err = await new Promise((resolve, reject) => {
      socket.once('connect_error', resolve);
      socket.once('connect', () => reject(new Error('connected')));
    });
    assert.strictEqual(err.message, 'a token is required');
    socket.close();
  });
  await t.test('an ES256 token (EC key) is accepted everywhere', async () => {
    const token = es({ sub: 'ec-user' });
    const { c, first } = await primusFirst(srv, `?token=${token}`);
    assert.strictEqual(first.welcome !== undefined, true);
    assert.strictEqual((await c.request({ event: 'detailsView' })).data.user, 'ec-user');
    await c.close();
    const s = await connectSio(srv, 'websocket', { auth: { token } });
    assert.strictEqual((await s.ack('detailsView'))[0].data.user, 'ec-user');
    s.socket.disconnect();
  });
});

test('expiry: closed with "token expired" unless refreshed', async (t) => {
  const { backend, srv } = await setup(t);

  await t.test('/primus, not refreshed: closed with 4408, the disconnect hook told the reason', async () => {
    const { c, first } = await primusFirst(srv, `?token=${hs({ sub: 'late', exp: now() + 2 })}`);
    assert.strictEqual(first.welcome !== undefined, true);
    const id = (await c.request({ event: 'detailsView' })).data.id;
    const closed = await Promise.race([c.closed, sleep(10000).then(() => 'still open')]);
    assert.deepStrictEqual(closed, { code: 4408, reason: 'token expired' });
    assert.ok(!c.frames.includes('primus::server::close'), 'an expired token may come back with a fresh one');
    const bye = await backend.call((x) => x.action === 'disconnect' && x.params.connectionId === id);
    assert.strictEqual(bye.params.reason, 'token expired');
    assert.strictEqual(bye.params.code, 4408);
  });

  await t.test('/primus, refreshed before exp: still open after the first exp', async () => {
    const exp = now() + 2;
    const { c } = await primusFirst(srv, `?token=${hs({ sub: 'ann', exp })}`);
    const ok = await c.request({ event: 'refreshToken', token: hs({ sub: 'ann', exp: now() + 600, v: 2 }) });
    assert.deepStrictEqual(ok, { status: 'OK', context: 'response', data: true, messageId: ok.messageId });
    while (now() <= exp + 1) await sleep(100);
    const d = (await c.request({ event: 'detailsView' })).data;
    assert.strictEqual(d.claims.v, 2, 'the new claims are kept');
    await c.close();
  });

  await t.test('/primus, a refresh for another user or an invalid one is refused; the old deadline stays', async () => {
    const { c } = await primusFirst(srv, `?token=${hs({ sub: 'ann', exp: now() + 3 })}`);
    const other = await c.request({ event: 'refreshToken', token: hs({ sub: 'mallory', exp: now() + 600 }) });
    assert.strictEqual(other.status, "Error: token subject does not match the connection's user");
    assert.strictEqual(other.error, other.status);
    assert.deepStrictEqual(other.data, {}, 'the token is not echoed');
    const forged = await c.request({ event: 'refreshToken', token: sign({ alg: 'HS256' }, { sub: 'ann', exp: now() + 600 }, keys.rsa.publicPem) });
    assert.strictEqual(forged.status, 'Error: invalid token');
    const none = await c.request({ event: 'refreshToken' });
    assert.strictEqual(none.status, 'Error: a token is required');
    const closed = await Promise.race([c.closed, sleep(10000).then(() => 'still open')]);
    assert.deepStrictEqual(closed, { code: 4408, reason: 'token expired' });
  });

  await t.test('engine.io websocket: refreshed over the session frames, then expired when not refreshed again', async () => {
    const c = eio(srv, { token: hs({ sub: 'wsu', exp: now() + 2 }) }, ['websocket']);
    await c.opened;
    const r = await eioRequest(c, { event: 'refreshToken', token: hs({ sub: 'wsu', exp: now() + 4 }), messageId: 7 });
    assert.strictEqual(r.status, 'OK');
    const reason = await Promise.race([c.closed, sleep(12000).then(() => 'still open')]);
    assert.notStrictEqual(reason, 'still open');
    const bye = await backend.call((x) => x.action === 'disconnect' && x.params.user === 'wsu');
    assert.strictEqual(bye.params.reason, 'token expired');
  });

  await t.test('engine.io polling: not refreshed, closed', async () => {
    const c = eio(srv, { token: hs({ sub: 'pollu', exp: now() + 2 }) }, ['polling']);
    await c.opened;
    const reason = await Promise.race([c.closed, sleep(10000).then(() => 'still open')]);
    assert.notStrictEqual(reason, 'still open');
    const bye = await backend.call((x) => x.action === 'disconnect' && x.params.user === 'pollu');
    assert.strictEqual(bye.params.reason, 'token expired');
  });

  await t.test('socket.io: refreshToken by emit, then closed at the new deadline', async () => {
    const c = await connectSio(srv, 'websocket', { auth: { token: hs({ sub: 'sio', exp: now() + 2 }) } });
    const [r] = await c.ack('refreshToken', { token: hs({ sub: 'sio', exp: now() + 4 }) });
    assert.strictEqual(r.status, 'OK');
    const [bad] = await c.ack('refreshToken', { token: hs({ sub: 'other' }) });
    assert.strictEqual(bad.status, "Error: token subject does not match the connection's user");
    await c.take('disconnect', () => true, 12000);
    const bye = await backend.call((x) => x.action === 'disconnect' && x.params.user === 'sio');
    assert.strictEqual(bye.params.reason, 'token expired');
  });

  await t.test('many connections expiring together: every one closed, none left behind', async () => {
    const exp = now() + 2;
    const clients = await Promise.all(Array.from({ length: 20 }, (_, i) => primusFirst(srv, `?token=${hs({ sub: `m${i}`, exp })}`)));
    // half of them leave first: their watches must go with them
    await Promise.all(clients.slice(0, 10).map(({ c }) => c.close()));
    const results = await Promise.all(clients.slice(10).map(({ c }) => Promise.race([c.closed, sleep(10000).then(() => 'still open')])));
    for (const r of results) assert.deepStrictEqual(r, { code: 4408, reason: 'token expired' });
  });
});

test('the access log does not hold a token from the query', async (t) => {
  const srv = await startServer({ config: { tokens: { secret: SECRET }, general: { accessLog: '-', logLevel: 'info' } } });
  t.after(() => srv.stop());
  const token = hs({ sub: 'logged' });
  const res = await fetch(`${srv.url}/primus/?EIO=4&transport=polling&a=1&token=${token}&b=2`);
  assert.strictEqual(res.status, 200);
  await until(() => /access .*transport=polling/.test(srv.stderr), 'access line');
  assert.match(srv.stderr, /&a=1&token=redacted&b=2 /);
  assert.ok(!srv.stderr.includes(token.split('.')[2]), 'the access log holds the token');
});

test('refreshToken without tokens configured is an unknown verb', async (t) => {
  const srv = await startServer({});
  t.after(() => srv.stop());
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  const r = await c.request({ event: 'refreshToken', token: 'x' });
  assert.strictEqual(r.status, 'Error: verb not found or not allowed (refreshToken)');
  await c.close();
});
