'use strict';
// engine.io v4 on the wire (PROTOCOL.md §4), byte for byte with raw HTTP and WebSocket clients: handshake, errors,
// overlap rules, heartbeat, limits, UTF-8 and binary, chunked bodies, the upgrade's noop dance, CORS and gzip.
const test = require('node:test');
const assert = require('node:assert');
const zlib = require('node:zlib');
const { startServer } = require('../lib/harness');
const { Eio, request, decodePayload, sleep } = require('../lib/eio_raw');
const { metric } = require('../lib/metrics');


const OPEN_RE = /^0\{"sid":"[A-Za-z0-9_-]{22}","upgrades":\["websocket"\],"pingInterval":5000,"pingTimeout":4000,"maxPayload":1000\}$/;
const err = (code, message) => JSON.stringify({ code, message });

function echoServer(extra = {}) {
  return startServer({
    config: { servers: { websocket: { server: { echo: true, pingInterval: 5000, pingTimeout: 4000, upgradeTimeout: 400, maxHttpBufferSize: 1000, queueMaxFrames: 8, ...extra } } } },
  });
}

test('engine.io raw: handshake, errors, polling rules', async (t) => {
  const srv = await echoServer();
  t.after(() => srv.stop());
  const eio = new Eio(srv.url);

  await t.test('handshake: 200, text/plain, no-store, the open packet with exactly five keys', async () => {
    const res = await request(eio.url('transport=polling&t=abc'));
    assert.strictEqual(res.status, 200);
    assert.strictEqual(res.headers['content-type'], 'text/plain; charset=UTF-8');
    assert.strictEqual(res.headers['cache-control'], 'no-store');
    assert.strictEqual(res.headers['access-control-allow-origin'], '*');
    assert.match(res.text, OPEN_RE);
    assert.deepStrictEqual(Object.keys(JSON.parse(res.text.slice(1))), ['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload']);
  });

  await t.test('the six errors: status, content type and exact body', async () => {
    const { sid } = await eio.handshake();
    const cases = [
      [eio.url('transport=bogus'), {}, 400, err(0, 'Transport unknown')],
      [eio.url('transport=constructor'), {}, 400, err(0, 'Transport unknown')],
      [eio.url('transport=polling&sid=nope'), {}, 400, err(1, 'Session ID unknown')],
      [eio.url('transport=polling'), { method: 'POST', body: '4x' }, 400, err(2, 'Bad handshake method')],
      [eio.url('transport=websocket'), {}, 400, err(3, 'Bad request')],
      [eio.url(`transport=polling&sid=${sid}`), { method: 'PUT' }, 400, err(3, 'Bad request')],
      [`${srv.url}/primus/?EIO=2&transport=polling`, {}, 400, err(5, 'Unsupported protocol version')],
      [`${srv.url}/primus/?EIO=5&transport=polling`, {}, 400, err(5, 'Unsupported protocol version')],
    ];
    for (const [url, opts, status, body] of cases) {
      const res = await request(url, opts);
      assert.strictEqual(res.status, status, url);
      assert.strictEqual(res.headers['content-type'], 'application/json', url);
      assert.strictEqual(res.text, body, url);
    }
  });

  await t.test('a WebSocket upgrade error is a 400 with the bare message', async () => {
    const ws = eio.ws('transport=websocket&sid=unknown');
    const e = await ws.opened.then(() => null, (x) => x);
    assert.strictEqual(e.status, 400);
    const body = await new Promise((r) => { let b = ''; e.res.on('data', (c) => (b += c)); e.res.on('end', () => r(b)); });
    assert.strictEqual(body, 'Session ID unknown');
  });

  await t.test('messages both ways over polling, UTF-8 and emoji intact', async () => {
    const { sid } = await eio.handshake();
    const text = 'héllo wörld 😀 ✓ \u2028';
    const post = await eio.post(sid, `4${text}\x1e4second`);
    assert.strictEqual(post.status, 200);
    assert.strictEqual(post.text, 'ok');
    assert.strictEqual(post.headers['content-type'], 'text/html');
    assert.strictEqual(post.headers['cache-control'], 'no-store');
    const res = await eio.poll(sid);
    assert.strictEqual(res.text, `4${text}\x1e4second`);
    assert.strictEqual(Buffer.byteLength(res.text), Number(res.headers['content-length']));
  });

  await t.test('binary over polling is b<base64> both ways', async () => {
    const { sid } = await eio.handshake();
    await eio.post(sid, 'bAQID\x1e4text\x1eb/w==');
    const res = await eio.poll(sid);
    assert.strictEqual(res.text, 'bAQID\x1e4text\x1eb/w==');
    assert.deepStrictEqual(decodePayload(res.text)[0].binary, Buffer.from([1, 2, 3]));
  });

  await t.test('a chunked POST body is read whole', async () => {
    const { sid } = await eio.handshake();
    const res = await request(eio.url(`transport=polling&sid=${sid}`), {
      method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' }, chunks: ['4par', 't one', '\x1e4😀', 'end'],
    });
    assert.strictEqual(res.status, 200);
    assert.strictEqual((await eio.poll(sid)).text, '4part one\x1e4😀end');
  });

  await t.test('a POST over maxHttpBufferSize is 413', async () => {
    const { sid } = await eio.handshake();
    const res = await eio.post(sid, '4' + 'x'.repeat(1000));
    assert.strictEqual(res.status, 413);
    const ok = await eio.post(sid, '4' + 'y'.repeat(999));
    assert.strictEqual(ok.status, 200);
  });

  await t.test('an overlapping GET is 400, the held one gets the close packet, the session ends', async () => {
    const { sid } = await eio.handshake();
    const held = eio.poll(sid);
    await sleep(50);
    const second = await eio.poll(sid);
    assert.strictEqual(second.status, 400);
    assert.strictEqual(second.text, err(3, 'Bad request'));
    assert.strictEqual((await held).text, '1');
    const after = await eio.poll(sid);
    assert.strictEqual(after.text, err(1, 'Session ID unknown'));
  });

  await t.test('a close packet by POST releases the held GET with a noop and ends the session', async () => {
    const { sid } = await eio.handshake();
    const held = eio.poll(sid);
    await sleep(50);
    assert.strictEqual((await eio.post(sid, '1')).text, 'ok');
    assert.strictEqual((await held).text, '6');
    assert.strictEqual((await eio.poll(sid)).text, err(1, 'Session ID unknown'));
  });

  await t.test('a client ping closes the session', async () => {
    const { sid } = await eio.handshake();
    await eio.post(sid, '2');
    assert.strictEqual((await eio.poll(sid)).text, err(1, 'Session ID unknown'));
  });

  await t.test('a parse error answers 400 and closes the session', async () => {
    const { sid } = await eio.handshake();
    const res = await eio.post(sid, '4ok\x1ex');
    assert.strictEqual(res.status, 400);
    assert.strictEqual((await eio.poll(sid)).text, err(1, 'Session ID unknown'));
  });

  await t.test('application/octet-stream POST: 400 and the session closes', async () => {
    const { sid } = await eio.handshake();
    const res = await eio.post(sid, '4x', { headers: { 'content-type': 'application/octet-stream' } });
    assert.strictEqual(res.status, 400);
    assert.strictEqual((await eio.poll(sid)).text, err(1, 'Session ID unknown'));
  });

  await t.test('a dropped GET closes the session', async () => {
    const { sid } = await eio.handshake();
    let req;
    const p = eio.poll(sid, { onRequest: (r) => (req = r) }).catch(() => null);
    await sleep(50);
    req.destroy();
    await p;
    // at once, not at the next ping (5 s here): the server watches the held GET's socket
    let res;
    for (let i = 0; i < 40; i++) {
      await sleep(50);
      res = await eio.post(sid, '6');
      if (res.status !== 200) break;
    }
    assert.strictEqual(res.text, err(1, 'Session ID unknown'));
  });

  await t.test('a session over its queue bound while nobody polls is closed as a slow consumer', async () => {
    const { sid } = await eio.handshake();
    const frames = Array.from({ length: 9 }, (_, i) => `4m${i}`).join('\x1e');
    assert.strictEqual((await eio.post(sid, frames)).status, 200);
    assert.strictEqual((await eio.poll(sid)).text, err(1, 'Session ID unknown'));
  });

  await t.test('gzip for a polling answer over 1 KiB when accepted; plain otherwise', async () => {
    const { sid } = await eio.handshake();
    const big = 'z'.repeat(450);
    for (let i = 0; i < 3; i++) await eio.post(sid, `4${big}`);
    const res = await eio.poll(sid, { headers: { 'accept-encoding': 'gzip, deflate' } });
    assert.strictEqual(res.headers['content-encoding'], 'gzip');
    assert.strictEqual(zlib.gunzipSync(res.body).toString(), [1, 2, 3].map(() => `4${big}`).join('\x1e'));
    await eio.post(sid, '4small');
    const small = await eio.poll(sid, { headers: { 'accept-encoding': 'gzip' } });
    assert.strictEqual(small.headers['content-encoding'], undefined);
    assert.strictEqual(small.text, '4small');
  });
});

test('engine.io raw: websocket and the upgrade', async (t) => {
  const srv = await echoServer();
  t.after(() => srv.stop());
  const eio = new Eio(srv.url);

  await t.test('websocket handshake: the open packet with no upgrades, text and binary echo', async () => {
    const ws = eio.ws('transport=websocket');
    await ws.opened;
    const open = await ws.next();
    assert.match(open.text, /^0\{"sid":"[A-Za-z0-9_-]{22}","upgrades":\[\],"pingInterval":5000,"pingTimeout":4000,"maxPayload":1000\}$/);
    ws.send('4héllo 😀');
    assert.strictEqual((await ws.next()).text, '4héllo 😀');
    ws.send(Buffer.from([0, 1, 2, 255]));
    assert.deepStrictEqual((await ws.next()).binary, Buffer.from([0, 1, 2, 255]));
    await ws.close();
  });

  await t.test('b64=1 makes binary travel as b<base64> text over websocket', async () => {
    const ws = eio.ws('transport=websocket&b64=1');
    await ws.opened;
    await ws.next();
    ws.send(Buffer.from([1, 2, 3]));
    assert.strictEqual((await ws.next()).text, 'bAQID');
    await ws.close();
  });

  await t.test('a WebSocket message over maxHttpBufferSize closes with 1009', async () => {
    const ws = eio.ws('transport=websocket');
    await ws.opened;
    await ws.next();
    ws.send('4' + 'x'.repeat(1001));
    assert.strictEqual((await ws.closed).code, 1009);
  });

  await t.test('a client ping over websocket closes the session', async () => {
    const ws = eio.ws('transport=websocket');
    await ws.opened;
    await ws.next();
    ws.send('2');
    assert.strictEqual((await ws.closed).code, 1005);
  });

  await t.test('the upgrade: 3probe, noops to every held GET, 5, then polling is refused and traffic moves', async () => {
    const { sid } = await eio.handshake();
    const held = eio.poll(sid);
    await sleep(30);
    await eio.post(sid, '4before');
    assert.strictEqual((await held).text, '4before');
    const held2 = eio.poll(sid);
    await sleep(30);
    const ws = eio.ws(`transport=websocket&sid=${sid}`);
    await ws.opened;
    ws.send('2probe');
    assert.strictEqual((await ws.next()).text, '3probe');
    assert.strictEqual((await held2).text, '6');
    // a client may poll again while upgrading: each held GET gets a noop within ~100 ms
    const t0 = Date.now();
    assert.strictEqual((await eio.poll(sid)).text, '6');
    assert.ok(Date.now() - t0 < 3000);
    await eio.post(sid, '4during');
    ws.send('5');
    ws.send('4after');
    // queued while upgrading, delivered over the socket in order
    assert.strictEqual((await ws.next()).text, '4during');
    assert.strictEqual((await ws.next()).text, '4after');
    assert.strictEqual((await eio.poll(sid)).text, err(3, 'Bad request'));
    assert.strictEqual((await eio.post(sid, '4x')).text, err(3, 'Bad request'));
    // a second WebSocket for the upgraded sid is accepted, then closed
    const again = eio.ws(`transport=websocket&sid=${sid}`);
    await again.opened;
    await again.closed;
    ws.send('4still');
    assert.strictEqual((await ws.next()).text, '4still');
    await ws.close();
  });

  await t.test('2probe and 5 at once, then a GET: refused with code 3 whichever arrives first', async () => {
    const { sid } = await eio.handshake();
    const ws = eio.ws(`transport=websocket&sid=${sid}`);
    await ws.opened;
    ws.send('2probe');
    ws.send('5');
    const res = await eio.poll(sid);
    assert.strictEqual(res.status, 400);
    assert.strictEqual(res.text, err(3, 'Bad request'));
    ws.send('4hello');
    assert.strictEqual((await ws.next((m) => m.text !== '3probe')).text, '4hello');
    await ws.close();
  });

  await t.test('no 5 within upgradeTimeout closes only the probe', async () => {
    const fallbacks = await metric(srv, 'actiongate_upgrade_fallbacks_total');
    const { sid } = await eio.handshake();
    const ws = eio.ws(`transport=websocket&sid=${sid}`);
    await ws.opened;
    ws.send('2probe');
    assert.strictEqual((await ws.next()).text, '3probe');
    await ws.closed;
    await eio.post(sid, '4polling goes on');
    assert.strictEqual((await eio.poll(sid)).text, '4polling goes on');
    assert.strictEqual(await metric(srv, 'actiongate_upgrade_fallbacks_total'), fallbacks + 1, 'counted as a fallback');
  });

  await t.test('any other packet on the probe closes only the probe', async () => {
    const { sid } = await eio.handshake();
    const ws = eio.ws(`transport=websocket&sid=${sid}`);
    await ws.opened;
    ws.send('4early');
    await ws.closed;
    await eio.post(sid, '4fine');
    assert.strictEqual((await eio.poll(sid)).text, '4fine');
  });

  await t.test('transport=websocket with a sid but no Upgrade: code 3, and the session goes on polling', async () => {
    const { sid } = await eio.handshake();
    const res = await request(eio.url(`transport=websocket&sid=${sid}`));
    assert.strictEqual(res.status, 400);
    assert.strictEqual(res.text, err(3, 'Bad request'));
    await eio.post(sid, '4on');
    assert.strictEqual((await eio.poll(sid)).text, '4on');
  });
});

test('engine.io raw: heartbeat', async (t) => {
  const srv = await startServer({ config: { servers: { websocket: { server: { echo: true, pingInterval: 250, pingTimeout: 300 } } } } });
  t.after(() => srv.stop());
  const eio = new Eio(srv.url);

  await t.test('polling: ping every pingInterval, a pong keeps the session', async () => {
    const { sid } = await eio.handshake();
    for (let i = 0; i < 3; i++) {
      const res = await eio.poll(sid);
      assert.strictEqual(res.text, '2');
      await eio.post(sid, '3');
    }
  });

  await t.test('polling: no pong within pingTimeout closes the session, even with no GET held', async () => {
    const { sid } = await eio.handshake();
    await sleep(1000);
    assert.strictEqual((await eio.poll(sid)).text, err(1, 'Session ID unknown'));
  });

  await t.test('polling: a GET held at the deadline gets the close packet', async () => {
    const { sid } = await eio.handshake();
    assert.strictEqual((await eio.poll(sid)).text, '2');
    assert.strictEqual((await eio.poll(sid)).text, '1');
  });

  await t.test('websocket: pings answered keep it open; silence closes it, without a close packet', async () => {
    const ws = eio.ws('transport=websocket');
    await ws.opened;
    await ws.next();
    for (let i = 0; i < 3; i++) {
      assert.strictEqual((await ws.next()).text, '2');
      ws.send('3');
    }
    assert.strictEqual((await ws.next()).text, '2');
    const closed = await ws.closed;
    assert.strictEqual(closed.code, 1005);
    // as engine.io 6.6: the socket just closes, no close packet before it
    assert.deepStrictEqual(ws.messages, []);
  });
});

test('engine.io raw: CORS', async (t) => {
  const srv = await echoServer({ origins: ['http://app.example'], credentials: true });
  t.after(() => srv.stop());
  const eio = new Eio(srv.url);

  await t.test('a listed origin is reflected with credentials and Vary: Origin', async () => {
    const res = await request(eio.url('transport=polling'), { headers: { origin: 'http://app.example' } });
    assert.strictEqual(res.status, 200);
    assert.strictEqual(res.headers['access-control-allow-origin'], 'http://app.example');
    assert.strictEqual(res.headers['access-control-allow-credentials'], 'true');
    assert.match(res.headers.vary, /Origin/);
  });

  await t.test('preflight is 204 with methods and the requested headers', async () => {
    const res = await request(eio.url('transport=polling'), {
      method: 'OPTIONS', headers: { origin: 'http://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-token' },
    });
    assert.strictEqual(res.status, 204);
    assert.strictEqual(res.headers['access-control-allow-origin'], 'http://app.example');
    assert.strictEqual(res.headers['access-control-allow-methods'], 'GET,POST');
    assert.strictEqual(res.headers['access-control-allow-headers'], 'x-token');
    assert.strictEqual(res.headers['access-control-max-age'], '86400');
  });

  await t.test('an origin not listed is refused with 403 code 4', async () => {
    const res = await request(eio.url('transport=polling'), { headers: { origin: 'http://evil.example' } });
    assert.strictEqual(res.status, 403);
    assert.strictEqual(res.text, err(4, 'Forbidden'));
    assert.strictEqual(res.headers['access-control-allow-origin'], undefined);
  });
});

test('engine.io raw: session mode and shutdown', async (t) => {
  await t.test('a reconnectable shutdown releases the held GET with a noop, no close packet', async () => {
    const srv = await startServer({ config: { servers: { websocket: { server: { pingInterval: 5000, pingTimeout: 4000 } } } } });
    const eio = new Eio(srv.url);
    const { sid, res } = await eio.handshake();
    assert.match(res.text, /^0\{"sid":"[^"]+","upgrades":\["websocket"\],"pingInterval":5000,"pingTimeout":4000,"maxPayload":1000000\}$/);
    assert.strictEqual((await eio.poll(sid)).text, '4{"welcome":"Welcome to the actiongate api","context":"api"}');
    const held = eio.poll(sid);
    await sleep(50);
    await srv.stop();
    assert.strictEqual((await held).text, '6');
  });

  await t.test('with destroyClientsOnShutdown the held GET and the socket get the close packet', async () => {
    const srv = await startServer({ config: { servers: { websocket: { destroyClientsOnShutdown: true } } } });
    const eio = new Eio(srv.url);
    const { sid } = await eio.handshake();
    await eio.poll(sid);
    const held = eio.poll(sid);
    const ws = eio.ws('transport=websocket');
    await ws.opened;
    await ws.next(); // open
    await ws.next(); // welcome
    await sleep(50);
    await srv.stop();
    assert.strictEqual((await held).text, '1');
    assert.strictEqual((await ws.next()).text, '1');
  });
});
