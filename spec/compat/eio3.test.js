'use strict';
// Older stock clients over engine.io protocol 3 (EIO=3, servers.websocket.server.allowEIO3): engine.io-client 3.x and
// socket.io-client 2.x (socket.io protocol 4) from spec/compat/node_modules, over polling, websocket and the upgrade;
// protocol 3 payloads, heartbeat and JSONP polling driven by hand.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const vm = require('node:vm');
const { startServer } = require('../lib/harness');
const { request } = require('../lib/eio_raw');
const { Recorder } = require('../lib/sioclient');

const MODULES = path.join(__dirname, 'node_modules');
const EngineSocket3 = require(path.join(MODULES, 'engine.io-client'));
const io2 = require(path.join(MODULES, 'socket.io-client'));
const parser2 = require(path.join(MODULES, 'engine.io-parser'));

const WELCOME = { welcome: 'Welcome to the actiongate api', context: 'api' };
const TRANSPORTS = { polling: ['polling'], websocket: ['websocket'], upgrade: ['polling', 'websocket'] };

function within(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// engine.io-client 3 with every event recorded.
async function engine3(srv, mode, opts = {}) {
  const socket = new EngineSocket3(srv.url, { path: '/engine.io/', transports: TRANSPORTS[mode], ...opts });
  const rec = new Recorder();
  for (const name of ['message', 'pong', 'close', 'upgrade', 'error']) socket.on(name, (...args) => rec.push(name, args));
  await within(new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  }), 10000, 'engine.io-client 3 open');
  return { socket, rec, take: rec.take.bind(rec) };
}

// socket.io-client 2 with every event recorded; resolves once connected.
async function sio2(srv, mode, opts = {}) {
  const socket = io2(srv.url, { transports: TRANSPORTS[mode], reconnection: false, forceNew: true, timeout: 5000, ...opts });
  const rec = new Recorder();
  const onevent = socket.onevent;
  socket.onevent = function (packet) {
    rec.push(packet.data[0], packet.data.slice(1));
    onevent.call(this, packet);
  };
  for (const name of ['connect', 'disconnect', 'connect_error', 'error']) socket.on(name, (...args) => rec.push(name, args));
  await rec.take('connect');
  const ack = (...args) => within(new Promise((resolve) => socket.emit(...args, (...reply) => resolve(reply))), 10000, `ack ${args[0]}`);
  return { socket, rec, take: rec.take.bind(rec), ack };
}

for (const mode of ['polling', 'websocket', 'upgrade']) {
  test(`engine.io-client 3 over ${mode}: a connection, and the client's pings keep it`, async (t) => {
    const srv = await startServer({ config: { servers: { websocket: { server: { pingInterval: 200, pingTimeout: 300 } } } } });
    t.after(() => srv.stop());
    const e = await engine3(srv, mode);
    t.after(() => e.socket.close());
    const [welcome] = await e.take('message');
    assert.deepStrictEqual(JSON.parse(welcome), WELCOME);
    if (mode === 'upgrade') await e.take('upgrade');
    assert.strictEqual(e.socket.transport.name, mode === 'polling' ? 'polling' : 'websocket');
    e.socket.send(JSON.stringify({ event: 'detailsView', messageId: 1 }));
    const [reply] = await e.take('message');
    const details = JSON.parse(reply);
    assert.strictEqual(details.status, 'OK');
    assert.strictEqual(details.messageId, 1);
    // three pings answered: the session outlives pingInterval + pingTimeout several times over
    for (let i = 0; i < 3; i++) await e.take('pong');
    assert.deepStrictEqual(e.rec.names().filter((n) => n === 'close' || n === 'error'), []);
    e.socket.send(JSON.stringify({ event: 'detailsView', messageId: 2 }));
    const [again] = await e.take('message');
    assert.strictEqual(JSON.parse(again).messageId, 2);
  });
}

test('engine.io-client 3 in echo mode: text with astral characters and binary, each transport', async (t) => {
  const srv = await startServer({ config: { servers: { websocket: { server: { echo: true } } } } });
  t.after(() => srv.stop());
  for (const mode of ['polling', 'websocket', 'upgrade']) {
    const e = await engine3(srv, mode);
    if (mode === 'upgrade') await e.take('upgrade');
    const text = 'a\u00e9\u20ac\u{1F600}\n\u2028z';
    e.socket.send(text);
    assert.strictEqual((await e.take('message'))[0], text);
    e.socket.send(Buffer.from([1, 2, 3, 255]));
    const [bin] = await e.take('message');
    assert.deepStrictEqual(Buffer.from(bin), Buffer.from([1, 2, 3, 255]));
    e.socket.close();
  }
});

// engine.io-client 3 posts binary as octet-stream payloads where XHR2 exists (browsers; under Node its XMLHttpRequest
// has no responseType, so it asks for b64): its own codec, engine.io-parser 2, encodes the POSTs and decodes the answers.
test('engine.io-client 3\'s payload codec over polling: octet-stream payloads both ways, text answers stay text', async (t) => {
  const srv = await startServer({ config: { servers: { websocket: { server: { echo: true } } } } });
  t.after(() => srv.stop());
  const url = (q) => `${srv.url}/engine.io/?EIO=3&transport=polling${q}`;
  const hs = await request(url(''));
  const sid = JSON.parse(hs.text.slice(hs.text.indexOf(':') + 2)).sid;
  const encode = (packets) => new Promise((resolve) => parser2.encodePayload(packets, true, resolve));
  const decode = (data) => {
    const got = [];
    parser2.decodePayload(data, (packet) => {
      got.push(packet);
    });
    return got;
  };
  const sent = [
    { type: 'message', data: Buffer.from([0, 255, 1, 4]) },
    { type: 'message', data: 'caf\u00e9 \u{1F600}' },
    { type: 'message', data: Buffer.alloc(70000, 0xab) },
    { type: 'message', data: Buffer.alloc(0) },
  ];
  const body = await encode(sent);
  assert.ok(Buffer.isBuffer(body)); // a binary payload, as the client posts it
  const post = await request(url(`&sid=${sid}`), { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
  assert.strictEqual(post.status, 200);
  const got = [];
  for (let i = 0; i < 10 && got.length < sent.length; i++) {
    const res = await request(url(`&sid=${sid}`));
    assert.strictEqual(res.status, 200);
    assert.strictEqual(res.headers['content-type'], 'application/octet-stream');
    got.push(...decode(res.body));
  }
  assert.strictEqual(got.length, sent.length);
  for (let i = 0; i < sent.length; i++) {
    assert.strictEqual(got[i].type, 'message');
    if (typeof sent[i].data === 'string') assert.strictEqual(got[i].data, sent[i].data);
    else assert.deepStrictEqual(Buffer.from(got[i].data), sent[i].data);
  }
  // text only: a text body, and a text answer
  const text = await request(url(`&sid=${sid}`), { method: 'POST', body: await encode([{ type: 'message', data: 'plain' }]) });
  assert.strictEqual(text.status, 200);
  const res = await request(url(`&sid=${sid}`));
  assert.strictEqual(res.headers['content-type'], 'text/plain; charset=UTF-8');
  assert.deepStrictEqual(decode(res.text), [{ type: 'message', data: 'plain' }]);
});

test('protocol 3 by hand: payloads, pings, heartbeat, errors', async (t) => {
  const srv = await startServer({ config: { servers: { websocket: { server: { echo: true, pingInterval: 200, pingTimeout: 200 } } } } });
  t.after(() => srv.stop());
  const url = (q) => `${srv.url}/engine.io/?EIO=3&${q}`;
  const handshake = async (extra = '') => {
    const res = await request(url(`transport=polling${extra}`));
    assert.strictEqual(res.status, 200);
    return res;
  };
  const sidOf = (text) => JSON.parse(text.slice(text.indexOf(':') + 2)).sid;

  await t.test('the open packet is a length-prefixed payload without maxPayload', async () => {
    const res = await handshake();
    assert.strictEqual(res.headers['content-type'], 'text/plain; charset=UTF-8');
    const m = res.text.match(/^(\d+):0(\{.*\})$/);
    assert.ok(m, res.text);
    assert.strictEqual(Number(m[1]), 1 + m[2].length);
    assert.deepStrictEqual(Object.keys(JSON.parse(m[2])), ['sid', 'upgrades', 'pingInterval', 'pingTimeout']);
    assert.deepStrictEqual(JSON.parse(m[2]).upgrades, ['websocket']);
  });

  await t.test('lengths count UTF-16 code units; a ping is answered with its data; binary as b4 (b64=1)', async () => {
    const sid = sidOf((await handshake('&b64=1')).text);
    const post = await request(url(`transport=polling&sid=${sid}`), { method: 'POST', body: '3:4\u{1F600}6:4h\u00e9llo2:2x6:b4AQID' });
    assert.strictEqual(post.text, 'ok');
    const res = await request(url(`transport=polling&sid=${sid}`));
    assert.strictEqual(res.text, '3:4\u{1F600}6:4h\u00e9llo2:3x6:b4AQID');
  });

  for (const [what, body] of [
    ['a length past the end', '9:4abc'],
    ['a length that splits a surrogate pair', '2:4\u{1F600}'],
    ['no length', '4abc'],
    ['a zero length', '0:'],
    ['a v4 binary packet', '5:bAQID'],
  ]) {
    await t.test(`${what}: 400, and the session is gone`, async () => {
      const sid = sidOf((await handshake()).text);
      const post = await request(url(`transport=polling&sid=${sid}`), { method: 'POST', body });
      assert.strictEqual(post.status, 400);
      const res = await request(url(`transport=polling&sid=${sid}`));
      assert.strictEqual(res.text, JSON.stringify({ code: 1, message: 'Session ID unknown' }));
    });
  }

  const octets = (...parts) => Buffer.concat(parts.map((p) => Buffer.from(p)));
  const OCTETS = { 'content-type': 'application/octet-stream' };
  await t.test('binary payloads: an octet-stream POST is decoded; binary goes back as octets, or as b4 with b64=1', async () => {
    // "4h\u00e9" is 4 bytes; the binary packet is its type byte 4 and the data
    const body = octets([0, 4, 255], '4h\u00e9', [1, 4, 255, 4, 1, 2, 255]);
    for (const b64 of [false, true]) {
      const sid = sidOf((await handshake(b64 ? '&b64=1' : '')).text);
      const post = await request(url(`transport=polling&sid=${sid}`), { method: 'POST', headers: OCTETS, body });
      assert.strictEqual(post.status, 200);
      assert.strictEqual(post.text, 'ok');
      const res = await request(url(`transport=polling&sid=${sid}${b64 ? '&b64=1' : ''}`));
      if (b64) {
        assert.strictEqual(res.headers['content-type'], 'text/plain; charset=UTF-8');
        assert.strictEqual(res.text, '3:4h\u00e96:b4AQL/');
      } else {
        assert.strictEqual(res.headers['content-type'], 'application/octet-stream');
        assert.deepStrictEqual(res.body, body);
      }
    }
  });

  for (const [what, body] of [
    ['a kind byte other than 0 and 1', [2, 1, 255, 52]],
    ['a length digit above 9', [0, 10, 255, 52]],
    ['no 0xFF after the length', [0, 1, 2, 3]],
    ['more than ten length digits', [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 255, 52]],
    ['a zero length', [0, 0, 255]],
    ['a length past the end', [0, 9, 255, 52, 104]],
    ['a binary packet that is not a message', [1, 2, 255, 2, 1]],
    ['a text packet that does not decode', [0, 1, 255, 57]],
  ]) {
    await t.test(`an octet-stream payload with ${what}: 400, and the session is gone`, async () => {
      const sid = sidOf((await handshake()).text);
      const post = await request(url(`transport=polling&sid=${sid}`), { method: 'POST', headers: OCTETS, body: Buffer.from(body) });
      assert.strictEqual(post.status, 400);
      const res = await request(url(`transport=polling&sid=${sid}`));
      assert.strictEqual(res.text, JSON.stringify({ code: 1, message: 'Session ID unknown' }));
    });
  }

  await t.test('an octet-stream body over maxHttpBufferSize is refused with 413', async () => {
    const sid = sidOf((await handshake()).text);
    const big = Buffer.alloc(2e6, 0x61);
    const post = await request(url(`transport=polling&sid=${sid}`), { method: 'POST', headers: OCTETS, body: octets([1, 2, 0, 0, 0, 0, 1, 255, 4], big) });
    assert.strictEqual(post.status, 413);
  });

  await t.test('the server sends no pings; pings from the client keep the session, silence ends it', async () => {
    const kept = sidOf((await handshake()).text);
    const idle = sidOf((await handshake()).text);
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 150));
      assert.strictEqual((await request(url(`transport=polling&sid=${kept}`), { method: 'POST', body: '1:2' })).text, 'ok');
      assert.strictEqual((await request(url(`transport=polling&sid=${kept}`))).text, '1:3');
    }
    // 600 ms: past pingInterval + pingTimeout (400 ms) without a ping
    assert.strictEqual((await request(url(`transport=polling&sid=${idle}`))).text, JSON.stringify({ code: 1, message: 'Session ID unknown' }));
  });

  await t.test('EIO=3 is refused with code 5 when allowEIO3 is off, and SSE is not offered to it', async () => {
    const off = await startServer({ config: { servers: { websocket: { server: { allowEIO3: false } } } } });
    try {
      const res = await request(`${off.url}/engine.io/?EIO=3&transport=polling`);
      assert.strictEqual(res.text, JSON.stringify({ code: 5, message: 'Unsupported protocol version' }));
    } finally {
      await off.stop();
    }
    const sse = await request(url('transport=sse'), { headers: { accept: 'text/event-stream' } });
    assert.strictEqual(sse.text, JSON.stringify({ code: 0, message: 'Transport unknown' }));
  });
});

// The JSONP transport as engine.io-client 3 drives it in a browser without CORS XHR: script answers and form POSTs.
test('JSONP polling by hand', async (t) => {
  const srv = await startServer({ config: { servers: { websocket: { server: { echo: true } } } } });
  t.after(() => srv.stop());
  const url = (q) => `${srv.url}/engine.io/?EIO=3&transport=polling&j=7&${q}`;
  // what the page's script tag runs: ___eio[7](payload)
  const run = (js) => {
    const calls = [];
    const ___eio = [];
    ___eio[7] = (p) => calls.push(p);
    vm.runInNewContext(js, { ___eio });
    assert.strictEqual(calls.length, 1);
    return calls[0];
  };
  // the client's own escaping before it posts the form: escaped newlines kept, real ones escaped
  const form = (payload) => `d=${encodeURIComponent(payload.replace(/\\n/g, '\\\n').replace(/\n/g, '\\n'))}`;

  const open = await request(url('t=1'));
  assert.strictEqual(open.headers['content-type'], 'text/javascript; charset=UTF-8');
  assert.match(open.text, /^___eio\[7\]\(".*"\);$/);
  const payload = run(open.text);
  const sid = JSON.parse(payload.slice(payload.indexOf(':') + 2)).sid;

  const text = 'line\nbreak \\n kept \u2028 "quoted" </script>';
  const packet = `4${text}`;
  const post = await request(url(`sid=${sid}`), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form(`${packet.length}:${packet}1:2`),
  });
  assert.strictEqual(post.status, 200);
  assert.strictEqual(post.text, 'ok');
  const res = await request(url(`sid=${sid}`));
  assert.doesNotMatch(res.text, /\u2028/, 'U+2028 is escaped in the script');
  assert.strictEqual(run(res.text), `${packet.length}:${packet}1:3`);

  const bad = await request(url(`sid=${sid}`), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'x=1' });
  assert.strictEqual(bad.status, 400);
});

for (const mode of ['polling', 'websocket', 'upgrade']) {
  test(`socket.io-client 2 over ${mode}: connected to "/" at once, events and acks`, async (t) => {
    const srv = await startServer();
    t.after(() => srv.stop());
    const c = await sio2(srv, mode);
    t.after(() => c.socket.close());
    const [welcome] = await c.take('welcome');
    assert.deepStrictEqual(welcome, WELCOME);
    if (mode === 'upgrade') {
      await within(new Promise((resolve) => (c.socket.io.engine.transport.name === 'websocket' ? resolve() : c.socket.io.engine.once('upgrade', resolve))), 10000, 'upgrade');
    }
    assert.strictEqual(c.socket.io.engine.transport.name, mode === 'polling' ? 'polling' : 'websocket');
    const [details] = await c.ack('detailsView');
    assert.strictEqual(details.status, 'OK');
    assert.match(details.data.id, /^[0-9a-f-]{36}$/);
    c.socket.emit('action', { action: 'randomNumber' });
    const [reply] = await c.take('response', (r) => 'randomNumber' in r);
    assert.strictEqual(typeof reply.randomNumber, 'number');
    const [created] = await c.ack('action', { action: 'createChatRoom', name: `r${mode}` });
    assert.strictEqual(created.didCreate, true);
    const [joined] = await c.ack('roomChange', { room: `r${mode}` });
    assert.strictEqual(joined.status, 'OK');
    c.socket.emit('say', { message: 'hello' });
    const [said] = await c.take('say');
    assert.strictEqual(said.message, 'hello');
    assert.strictEqual(said.room, `r${mode}`);
  });
}

test('socket.io-client 2: another namespace is refused with protocol 4\'s error, "/" stays', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const c = await sio2(srv, 'websocket');
  t.after(() => c.socket.close());
  const admin = c.socket.io.socket('/admin');
  const err = await within(new Promise((resolve) => admin.on('error', resolve)), 10000, 'namespace error');
  assert.strictEqual(err, 'Invalid namespace');
  const [details] = await c.ack('detailsView');
  assert.strictEqual(details.status, 'OK');
});
