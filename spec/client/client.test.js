'use strict';
// Node-side unit tests of the rendered browser client (both the .js and the .min.js, which must behave the same):
// back-off, transport selection, messageId matching, the offline queue, reconnect with rooms re-joined, intentional
// server closes, heartbeat, the HTTP fallback for actions. The engine.io peer is scripted (fake_peer.js).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startServer } = require('../lib/harness');
const { FakePeer, waitFor } = require('./fake_peer');

const pub = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-client-'));
const variants = {};

test.before(async () => {
  // the files exactly as the server renders them at boot with its default configuration
  const srv = await startServer({ config: { servers: { web: { publicDir: pub } } } });
  await srv.stop();
  for (const name of ['ActionheroWebsocketClient.js', 'ActionheroWebsocketClient.min.js']) {
    variants[name] = require(path.join(pub, 'javascript', name));
  }
});
test.after(() => fs.rmSync(pub, { recursive: true, force: true }));

// An XMLHttpRequest that records requests and lets the test answer them.
function recordingXhr() {
  const log = [];
  class Xhr {
    open(method, url) {
      Object.assign(this, { method, url, headers: {}, readyState: 1 });
    }
    setRequestHeader(k, v) {
      this.headers[k] = v;
    }
    send(body) {
      this.body = body;
      log.push(this);
    }
    respond(status, text) {
      Object.assign(this, { readyState: 4, status, responseText: text, statusText: String(status) });
      if (this.onreadystatechange) this.onreadystatechange();
    }
    abort() {
      this.aborted = true;
    }
  }
  Xhr.log = log;
  return Xhr;
}

function wsClient(C, peer, extra = {}) {
  return new C({
    url: 'http://example.test:8080',
    WebSocket: peer.WebSocket,
    XMLHttpRequest: recordingXhr(),
    transports: ['websocket'],
    websocketFirst: true,
    rememberUpgrade: false,
    reconnect: { min: 10, max: 40, factor: 2, retries: 0 },
    resume: false, // the fake peer speaks today's protocol; resume is tested live (live.test.js)
    ...extra,
  });
}

function connect(client) {
  return new Promise((resolve) => client.connect((err, details) => resolve({ err, details })));
}

function record(client, names) {
  const seen = [];
  for (const n of names) client.on(n, (a) => seen.push([n, a]));
  return seen;
}

for (const file of ['ActionheroWebsocketClient.js', 'ActionheroWebsocketClient.min.js']) {
  const C = () => variants[file];

  test(`${file}: back-off: min first, then exponential with jitter in [1, 2), capped at max`, () => {
    const o = { min: 500, max: 30000, factor: 2 };
    assert.equal(C().backoff(1, o, 0.9), 500);
    assert.equal(C().backoff(2, o, 0), 1000);
    assert.equal(C().backoff(2, o, 0.5), 1500);
    assert.equal(C().backoff(3, o, 0), 2000);
    assert.equal(C().backoff(3, o, 0.999), 3998);
    assert.equal(C().backoff(10, o, 0), 30000);
    for (let n = 2; n < 8; n++) {
      const d = C().backoff(n, o);
      assert.ok(d >= Math.min(500 * 2 ** (n - 1), 30000) && d <= Math.min(2 * 500 * 2 ** (n - 1), 30000), `attempt ${n}: ${d}`);
    }
  });

  test(`${file}: transport selection`, () => {
    const sel = C().selectTransports;
    const all = { websocket: true, eventsource: true };
    const base = { transports: ['polling', 'websocket', 'sse'], websocketFirst: false, rememberUpgrade: true };
    assert.deepEqual(sel(base, all, null), { first: 'polling', upgrades: ['websocket', 'sse'], fallback: false });
    assert.deepEqual(sel(base, { websocket: false, eventsource: true }, null), { first: 'polling', upgrades: ['sse'], fallback: false });
    assert.deepEqual(sel(base, { websocket: false, eventsource: false }, null), { first: 'polling', upgrades: [], fallback: false });
    assert.deepEqual(sel({ ...base, transports: ['polling', 'sse', 'websocket'] }, all, null).upgrades, ['sse', 'websocket']);
    assert.deepEqual(sel({ ...base, websocketFirst: true }, all, null), { first: 'websocket', upgrades: [], fallback: true });
    assert.deepEqual(sel({ ...base, websocketFirst: true }, { websocket: false, eventsource: true }, null).first, 'polling');
    // the upgrade that worked last time opens the next session, unless rememberUpgrade is off
    assert.deepEqual(sel(base, all, 'sse'), { first: 'sse', upgrades: [], fallback: true });
    assert.deepEqual(sel(base, all, 'websocket').first, 'websocket');
    assert.deepEqual(sel({ ...base, rememberUpgrade: false }, all, 'websocket').first, 'polling');
    assert.deepEqual(sel(base, { websocket: false, eventsource: true }, 'websocket').first, 'polling');
    assert.deepEqual(sel({ ...base, transports: ['websocket'] }, all, null), { first: 'websocket', upgrades: [], fallback: false });
  });

  test(`${file}: polling payloads split on U+001E`, () => {
    assert.deepEqual(C().decodePayload('2\x1e4{"a":1}\x1e6'), [
      { type: '2', data: '' },
      { type: '4', data: '{"a":1}' },
      { type: '6', data: '' },
    ]);
  });

  test(`${file}: connect: engine.io URL, welcome, detailsView, state and events`, async () => {
    const peer = new FakePeer();
    const client = wsClient(C(), peer);
    const seen = record(client, ['welcome', 'connected', 'transport']);
    assert.equal(client.state, 'disconnected');
    const p = connect(client);
    assert.equal(client.state, 'connecting');
    const { err, details } = await p;
    assert.equal(err, null);
    assert.equal(peer.sockets[0].url, 'ws://example.test:8080/primus/?EIO=4&transport=websocket');
    assert.deepEqual(details, { status: 'OK', data: { id: 'conn-1', fingerprint: 'conn-1', rooms: [] }, context: 'response', messageId: 1 });
    assert.equal(client.state, 'connected');
    assert.equal(client.id, 'conn-1');
    assert.equal(client.fingerprint, 'conn-1');
    assert.equal(client.welcomeMessage, 'Welcome to the actiongate api');
    assert.equal(client.transport, 'websocket');
    assert.deepEqual(seen.map((s) => s[0]), ['transport', 'welcome', 'connected']);
    assert.deepEqual(peer.packets.map((p) => p.data), ['4{"event":"detailsView","messageId":1}']);
    client.disconnect();
  });

  test(`${file}: the URL carries ?sessionID=<cookie> when the cookie exists`, async () => {
    const peer = new FakePeer();
    global.document = { cookie: 'other=1; sessionID=abc%20123; x=y' };
    try {
      const client = wsClient(C(), peer);
      await connect(client);
      assert.equal(peer.sockets[0].url, 'ws://example.test:8080/primus/?EIO=4&transport=websocket&sessionID=abc%20123');
      client.disconnect();
    } finally {
      delete global.document;
    }
  });

  test(`${file}: callbacks are matched by messageId, not by order`, async () => {
    const peer = new FakePeer();
    const client = wsClient(C(), peer);
    await connect(client);
    peer.autoReply = false;
    const got = [];
    client.action('slow', { a: 1 }, (r) => got.push(['slow', r]));
    client.say('defaultRoom', 'hi', (r) => got.push(['say', r]));
    client.action('custom', { messageId: 'aaa' }, (r) => got.push(['custom', r]));
    client.roomView('defaultRoom', (r) => got.push(['view', r]));
    await waitFor(() => peer.frames.length === 5);
    assert.deepEqual(peer.frames.slice(1).map((f) => f.msg), [
      { event: 'action', params: { a: 1, action: 'slow' }, messageId: 2 },
      { event: 'say', room: 'defaultRoom', message: 'hi', messageId: 3 },
      { event: 'action', params: { messageId: 'aaa', action: 'custom' }, messageId: 'aaa' },
      { event: 'roomView', room: 'defaultRoom', messageId: 4 }, // a chosen id does not use up a counter value
    ]);
    peer.send({ status: 'OK', data: { room: 'defaultRoom' }, context: 'response', messageId: 4 });
    peer.send({ error: 'nope', context: 'response', messageId: 'aaa' });
    peer.send({ status: 'OK', context: 'response', messageId: 999 }); // unknown: dropped
    peer.send({ status: 'OK', context: 'response', messageId: 3 });
    peer.send({ ok: 1, context: 'response', messageId: 2 });
    peer.send({ ok: 2, context: 'response', messageId: 2 }); // answered already: dropped
    await waitFor(() => got.length === 4);
    assert.deepEqual(got.map((g) => [g[0], g[1].messageId]), [['view', 4], ['custom', 'aaa'], ['say', 3], ['slow', 2]]);
    assert.equal(got[3][1].ok, 1);
    client.disconnect();
  });

  test(`${file}: verbs send actionhero's frames; roomAdd and roomLeave keep client.rooms`, async () => {
    const peer = new FakePeer();
    const client = wsClient(C(), peer);
    await connect(client);
    const replies = [];
    client.roomAdd('otherRoom', (r) => replies.push(r));
    await waitFor(() => replies.length === 1);
    assert.deepEqual(client.rooms, ['otherRoom']);
    peer.autoReply = false;
    client.roomLeave('otherRoom', (r) => replies.push(r));
    assert.deepEqual(client.rooms, []);
    client.file('simple.html', (r) => replies.push(r));
    client.detailsView((r) => replies.push(r));
    client.documentation((r) => replies.push(r));
    await waitFor(() => peer.frames.length === 6);
    assert.deepEqual(peer.frames.slice(1).map((f) => f.msg), [
      { event: 'roomAdd', room: 'otherRoom', messageId: 2 },
      { event: 'roomLeave', room: 'otherRoom', messageId: 3 },
      { event: 'file', file: 'simple.html', messageId: 4 },
      { event: 'detailsView', messageId: 5 },
      { event: 'documentation', messageId: 6 },
    ]);
    client.disconnect();
  });

  test(`${file}: messages by context go to say, alert, api and message events`, async () => {
    const peer = new FakePeer();
    const client = wsClient(C(), peer);
    const seen = record(client, ['say', 'alert', 'api', 'message']);
    await connect(client);
    peer.send({ message: 'm', room: 'r', from: 'x', context: 'user', sentAt: 1 });
    peer.send({ message: 'careful', context: 'alert' });
    peer.send({ pushed: true, context: 'api' });
    await waitFor(() => seen.filter((s) => s[0] !== 'message').length === 3);
    assert.deepEqual(seen.filter((s) => s[0] !== 'message').map((s) => s[0]), ['say', 'alert', 'api']);
    assert.equal(seen.filter((s) => s[0] === 'message').length, 5); // welcome, detailsView reply, and the three
    client.disconnect();
  });

  test(`${file}: writes wait until the session is ready, then go out in order`, async () => {
    const peer = new FakePeer();
    const client = wsClient(C(), peer);
    const p = connect(client);
    client.say('defaultRoom', 'early one');
    client.say('defaultRoom', 'early two');
    await p;
    await waitFor(() => peer.frames.length === 3);
    assert.deepEqual(peer.frames.map((f) => f.msg.event + ':' + (f.msg.message || '')), ['detailsView:', 'say:early one', 'say:early two']);
    client.disconnect();
  });

  test(`${file}: reconnect: back-off events, rooms re-joined, id refreshed, offline writes sent after`, async () => {
    const peer = new FakePeer();
    const client = wsClient(C(), peer, { queueSize: 2 });
    await connect(client);
    await new Promise((r) => client.roomAdd('defaultRoom', r));
    assert.deepEqual(client.rooms, ['defaultRoom']);
    const seen = record(client, ['disconnected', 'reconnecting', 'reconnect', 'connected']);
    peer.refuse = true;
    peer.drop();
    await waitFor(() => client.state === 'reconnecting');
    const dropped = [];
    client.say('defaultRoom', 'offline 1', (r) => dropped.push(r));
    client.say('defaultRoom', 'offline 2');
    client.say('defaultRoom', 'offline 3');
    await waitFor(() => seen.filter((s) => s[0] === 'reconnect').length >= 2);
    // the oldest write was dropped when the queue (size 2) overflowed, and its callback was told
    assert.equal(dropped.length, 1);
    assert.equal(dropped[0].error, 'the offline queue is full');
    peer.refuse = false;
    await waitFor(() => client.state === 'connected', 3000, 'reconnected');
    const last = peer.current;
    assert.notEqual(last, peer.sockets[0]);
    const frames = peer.frames.filter((f) => f.ws === last).map((f) => f.msg);
    assert.deepEqual(frames.map((m) => [m.event, m.room, m.message]), [
      ['roomAdd', 'defaultRoom', undefined],
      ['detailsView', undefined, undefined],
      ['say', 'defaultRoom', 'offline 2'],
      ['say', 'defaultRoom', 'offline 3'],
    ]);
    assert.equal(client.id, last.conn.id);
    assert.deepEqual(client.rooms, ['defaultRoom']);
    const names = seen.map((s) => s[0]);
    assert.equal(names[0], 'disconnected');
    assert.equal(names[1], 'reconnecting');
    assert.equal(names[names.length - 1], 'connected');
    const delays = seen.filter((s) => s[0] === 'reconnecting').map((s) => s[1]);
    assert.deepEqual(delays[0], { attempt: 1, delay: 10 });
    assert.ok(delays[1].delay >= 20 && delays[1].delay <= 40, JSON.stringify(delays));
    client.disconnect();
  });

  test(`${file}: after \`retries\` failed attempts: error event, disconnected for good`, async () => {
    const peer = new FakePeer();
    const client = wsClient(C(), peer, { reconnect: { min: 5, max: 10, factor: 2, retries: 2 } });
    await connect(client);
    const seen = record(client, ['disconnected', 'reconnecting', 'reconnect', 'error']);
    peer.refuse = true;
    peer.drop();
    await waitFor(() => seen.some((s) => s[0] === 'error'), 3000, 'error');
    assert.deepEqual(seen.map((s) => s[0]), ['disconnected', 'reconnecting', 'reconnect', 'reconnecting', 'reconnect', 'error']);
    assert.match(seen[5][1].message, /reconnect failed after 2 attempts/);
    assert.equal(client.state, 'disconnected');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(peer.sockets.length, 3);
  });

  test(`${file}: disconnect() stops reconnecting`, async () => {
    const peer = new FakePeer();
    const client = wsClient(C(), peer);
    await connect(client);
    const seen = record(client, ['disconnected', 'reconnecting']);
    client.disconnect();
    assert.equal(client.state, 'disconnected');
    assert.deepEqual(seen.map((s) => s[0]), ['disconnected']);
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(peer.sockets.length, 1);
    // actions now go over HTTP
    client.action('randomNumber', {}, () => {});
    assert.equal(client.env.XMLHttpRequest.log.length, 1);
  });

  for (const [what, how] of [
    ['"primus::server::close"', (peer) => peer.send('primus::server::close')],
    ['an engine.io close packet', (peer) => peer.push(peer.current, '1')],
  ]) {
    test(`${file}: ${what} from the server stops reconnecting`, async () => {
      const peer = new FakePeer();
      const client = wsClient(C(), peer);
      await connect(client);
      const seen = record(client, ['disconnected', 'reconnecting']);
      how(peer);
      await waitFor(() => client.state === 'disconnected');
      await new Promise((r) => setTimeout(r, 80));
      assert.deepEqual(seen.map((s) => s[0]), ['disconnected']);
      assert.equal(peer.sockets.length, 1);
    });
  }

  test(`${file}: answers pings; no ping within pingInterval + pingTimeout: the connection is dead, reconnect`, async () => {
    const peer = new FakePeer({ pingInterval: 60, pingTimeout: 40 });
    const client = wsClient(C(), peer);
    await connect(client);
    peer.push(peer.current, '2');
    assert.equal(peer.packets[peer.packets.length - 1].data, '3');
    const seen = record(client, ['disconnected']);
    await waitFor(() => seen.length === 1, 2000, 'ping timeout');
    assert.equal(seen[0][1], 'ping timeout');
    await waitFor(() => peer.sockets.length === 2 && client.state === 'connected', 2000, 'reconnect');
    client.disconnect();
  });

  test(`${file}: no open within \`timeout\`: timeout event and state, then reconnect attempts`, async () => {
    const peer = new FakePeer();
    peer.silent = true;
    const client = wsClient(C(), peer, { timeout: 50, transports: ['websocket'] });
    const seen = record(client, ['timeout', 'reconnecting', 'connected']);
    client.connect();
    await waitFor(() => seen.some((s) => s[0] === 'timeout'), 2000, 'timeout');
    assert.equal(client.state, 'timeout');
    peer.silent = false;
    await waitFor(() => client.state === 'connected', 3000, 'connected after the timeout');
    assert.deepEqual(seen.map((s) => s[0]).slice(0, 2), ['timeout', 'reconnecting']);
    assert.ok(peer.sockets.length >= 2);
    client.disconnect();
  });

  test(`${file}: action() before connect() goes over HTTP: POST <apiPath>?action=<name>, JSON body`, () => {
    const Xhr = recordingXhr();
    const client = new (C())({ url: 'http://example.test:8080/', XMLHttpRequest: Xhr });
    let reply;
    client.action('cacheTest', { key: 'k', value: 'v' }, (r) => (reply = r));
    assert.equal(Xhr.log.length, 1);
    const x = Xhr.log[0];
    assert.equal(x.method, 'POST');
    assert.equal(x.url, 'http://example.test:8080/api?action=cacheTest');
    assert.equal(x.headers['Content-Type'], 'application/json');
    assert.deepEqual(JSON.parse(x.body), { key: 'k', value: 'v', action: 'cacheTest' });
    x.respond(200, '{"cacheTestResults":{"saveResp":true}}');
    assert.deepEqual(reply, { cacheTestResults: { saveResp: true } });
    client.action('x', { httpMethod: 'GET', a: 'b c' }, (r) => (reply = r));
    assert.equal(Xhr.log[1].method, 'GET');
    assert.equal(Xhr.log[1].url, 'http://example.test:8080/api?action=x&a=b%20c');
    Xhr.log[1].respond(502, 'Bad Gateway');
    assert.deepEqual(reply, { error: { statusText: '502', responseText: 'Bad Gateway' } });
  });

  test(`${file}: polling handshake asks for SSE only when EventSource exists; WebSocket-first falls back to polling`, async () => {
    const peer = new FakePeer();
    peer.refuse = true;
    let Xhr = recordingXhr();
    let client = new (C())({ url: 'http://h', XMLHttpRequest: Xhr, WebSocket: peer.WebSocket, EventSource: function () {}, rememberUpgrade: false });
    client.connect();
    assert.match(Xhr.log[0].url, /^http:\/\/h\/primus\/\?EIO=4&transport=polling&t=[0-9a-z]+&sse=1$/);
    assert.equal(Xhr.log[0].method, 'GET');
    client.disconnect();
    Xhr = recordingXhr();
    client = new (C())({ url: 'http://h', XMLHttpRequest: Xhr, WebSocket: peer.WebSocket, rememberUpgrade: false });
    client.connect();
    assert.match(Xhr.log[0].url, /transport=polling&t=[0-9a-z]+$/);
    client.disconnect();
    Xhr = recordingXhr();
    client = new (C())({ url: 'http://h', XMLHttpRequest: Xhr, WebSocket: peer.WebSocket, websocketFirst: true, rememberUpgrade: false, resume: false });
    client.connect();
    assert.equal(peer.sockets.length, 1);
    await waitFor(() => Xhr.log.length === 1, 2000, 'polling fallback');
    assert.match(Xhr.log[0].url, /transport=polling/);
    assert.doesNotMatch(Xhr.log[0].url, /sid=/);
    // the handshake answer opens the session on polling
    Xhr.log[0].respond(200, '0{"sid":"S1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}\x1e4{"welcome":"w","context":"api"}');
    await waitFor(() => Xhr.log.length === 3, 2000, 'poll and post');
    const get = Xhr.log.find((x, i) => i > 0 && x.method === 'GET');
    const post = Xhr.log.find((x) => x.method === 'POST');
    assert.match(get.url, /transport=polling&sid=S1&t=/);
    assert.match(post.url, /transport=polling&sid=S1$/);
    assert.equal(post.body, '4{"event":"detailsView","messageId":1}');
    assert.equal(post.headers['Content-Type'], 'text/plain;charset=UTF-8');
    assert.equal(client.transport, 'polling');
    client.disconnect();
  });
}
