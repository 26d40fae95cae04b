'use strict';
// Actions forwarded to a real actionhero 29 app: the same calls made by a Primus client of the app itself and through
// actiongate over every transport must give the same replies (payload keys, error strings, messageId).
const test = require('node:test');
const assert = require('node:assert/strict');
const { startServer, Redis } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { eio, sse } = require('../lib/cluster_clients');
const { connectSio } = require('../lib/sioclient');
const { startApp, postJson } = require('./lib');

// Deterministic calls of the fixture app: success, missing param, a validator that throws, a validator that returns
// false, an action that throws, an unknown action.
const CALLS = [
  { action: 'echoParams', name: 'x', count: '3', notAnInput: 'dropped by the app' },
  { action: 'echoParams' },
  { action: 'echoParams', name: 'y', count: 0 },
  { action: 'echoParams', name: 'y', word: 'a' },
  { action: 'boom' },
  { action: 'noSuchAction' },
];

let redis, app, ag;
const direct = []; // the app's own Primus replies to CALLS, messageId "m<i>"

test.before(async () => {
  redis = await new Redis().start();
  app = await startApp(redis);
  ag = await startServer({ config: { upstream: { urls: [`${app.url}/api`] } } });
  const c = await connect(`${app.wsUrl}/primus`);
  await c.welcome();
  for (const [i, params] of CALLS.entries()) direct.push(await c.request({ event: 'action', params, messageId: `m${i}` }));
  await c.close();
});

test.after(async () => {
  if (ag) await ag.stop();
  if (app) await app.stop();
  if (redis) await redis.stop();
});

test('the app itself answers the calls as actionhero does (the reference)', () => {
  assert.deepEqual(direct[0], { name: 'x', count: 3, word: null, context: 'response', messageId: 'm0' });
  assert.equal(direct[1].error, 'name is a required parameter for this action');
  assert.equal(direct[2].error, 'count must be between 1 and 100');
  assert.equal(direct[3].error, 'Input for parameter "word" failed validation!');
  assert.equal(direct[4].error, 'boom went the action');
  assert.equal(direct[5].error, 'unknown action or invalid apiVersion');
});

async function sameAsDirect(client, label) {
  for (const [i, params] of CALLS.entries()) {
    const reply = await client.request({ event: 'action', params: { ...params }, messageId: `m${i}` });
    assert.equal(JSON.stringify(reply), JSON.stringify(direct[i]), `${label}: ${JSON.stringify(params)}`);
  }
}

test('plain WebSocket (/primus): the same replies, byte for byte', async () => {
  const c = await connect(`${ag.wsUrl}/primus`);
  await c.welcome();
  await sameAsDirect(c, 'primus');
  await c.close();
});

for (const transport of ['polling', 'websocket']) {
  test(`engine.io ${transport}: the same replies`, async () => {
    const c = eio(ag.url, { transports: [transport], upgrade: false });
    await c.opened;
    await c.next((f) => f.welcome !== undefined);
    await sameAsDirect(c, transport);
    c.socket.close();
  });
}

test('SSE with POSTs: the same replies', async () => {
  const c = sse(ag.url);
  await c.opened;
  await c.next((f) => f.welcome !== undefined);
  await sameAsDirect(c, 'sse');
  c.close();
});

test('socket.io "action" event: the same payload keys and error strings', async () => {
  const s = await connectSio(ag, 'websocket');
  for (const [i, params] of CALLS.entries()) {
    const [reply] = await s.ack('action', { ...params });
    const { messageId, ...rest } = reply;
    const { messageId: _m, ...want } = direct[i];
    assert.deepEqual(rest, want, JSON.stringify(params));
    assert.ok(messageId !== undefined);
  }
  // without an ack callback the reply comes as a "response" event
  s.socket.emit('action', { action: 'echoParams', name: 'evt' });
  const [ev] = await s.take('response', (r) => r.name === 'evt');
  assert.equal(ev.count, 1);
  s.socket.close();
});

test('/api on actiongate: the app\'s own web answers (status, keys, error strings)', async () => {
  for (const params of CALLS) {
    const { action, ...rest } = params;
    const mine = await postJson(ag.url, action, rest, { cookie: 'sessionID=webfp' });
    const theirs = await postJson(app.url, action, rest, { cookie: 'sessionID=webfp' });
    assert.equal(mine.status, theirs.status, action);
    const strip = ({ serverInformation, requesterInformation, ...keep }) => keep;
    assert.deepEqual(strip(mine.body), strip(theirs.body), JSON.stringify(params));
    assert.equal(mine.body.requesterInformation.fingerprint, 'webfp');
    assert.deepEqual(mine.body.requesterInformation.receivedParams, theirs.body.requesterInformation.receivedParams);
  }
});

test('the app sees the fingerprint and the client address its own clients would give it', async () => {
  // the app's own Primus client with ?sessionID=
  const own = await connect(`${app.wsUrl}/primus?sessionID=fp-123`);
  await own.welcome();
  const theirs = await own.request({ event: 'action', params: { action: 'whoami' } });
  await own.close();
  const c = await connect(`${ag.wsUrl}/primus?sessionID=fp-123`);
  await c.welcome();
  const mine = await c.request({ event: 'action', params: { action: 'whoami' } });
  assert.equal(mine.fingerprint, theirs.fingerprint);
  assert.equal(mine.fingerprint, 'fp-123');
  assert.equal(mine.remoteIP, theirs.remoteIP);
  await c.close();

  // without ?sessionID= the fingerprint is the connection id, as actionhero's socket server has it
  const e = eio(ag.url, { transports: ['polling'], upgrade: false });
  await e.opened;
  await e.next((f) => f.welcome !== undefined);
  const details = await e.request({ event: 'detailsView' });
  const who = await e.request({ event: 'action', params: { action: 'whoami' } });
  assert.equal(who.fingerprint, details.data.fingerprint);
  assert.equal(who.fingerprint, details.data.id);
  e.socket.close();

  // a client behind a trusted proxy (127.0.0.1 is trusted by default): the app sees the client, not the proxy
  const p = await connect(`${ag.wsUrl}/primus?sessionID=behind`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
  await p.welcome();
  const viaProxy = await p.request({ event: 'action', params: { action: 'whoami' } });
  assert.equal(viaProxy.remoteIP, '203.0.113.9');
  assert.equal(viaProxy.fingerprint, 'behind');
  await p.close();
});

test('a fingerprint with cookie separators cannot add cookies or headers', async () => {
  const c = await connect(`${ag.wsUrl}/primus?sessionID=${encodeURIComponent('a; evil=1\r\nX-Injected: 1')}`);
  await c.welcome();
  const who = await c.request({ event: 'action', params: { action: 'whoami' } });
  assert.equal(who.fingerprint, 'a%3B%20evil%3D1%0D%0AX-Injected:%201');
  await c.close();
});

test('the documentation verb lists the app\'s actions (from its swagger action) and the local ones', async () => {
  const c = await connect(`${ag.wsUrl}/primus`);
  await c.welcome();
  const doc = await c.request({ event: 'documentation' });
  assert.equal(doc.status, 'OK');
  for (const name of ['echoParams', 'whoami', 'boom', 'slow', 'status', 'swagger']) assert.ok(doc.data[name], name);
  assert.equal(doc.data.echoParams['1'].inputs.name.required, true);
  assert.equal(doc.data.echoParams['1'].inputs.count.required, false);
  assert.equal(doc.data.echoParams['1'].inputs.count.default, '1');
  assert.equal(doc.data.echoParams['1'].description, 'I echo my inputs');
  // built-in actions kept local are listed as served here
  assert.equal(doc.data.sleepTest['1'].description, 'I will sleep and then return');
  await c.close();
});

test('an app without the documentation action: the verb lists the local actions', async () => {
  const other = await startServer({ config: { upstream: { urls: [`${app.url}/api`], documentationAction: 'noSuchDocs' } } });
  try {
    const c = await connect(`${other.wsUrl}/primus`);
    await c.welcome();
    const doc = await c.request({ event: 'documentation' });
    assert.equal(doc.status, 'OK');
    assert.ok(doc.data.sleepTest);
    assert.equal(doc.data.echoParams, undefined);
    await c.close();
  } finally {
    await other.stop();
  }
});

test('simultaneousActions applies to upstream actions', async () => {
  const c = await connect(`${ag.wsUrl}/primus`);
  await c.welcome();
  const replies = [];
  for (let i = 1; i <= 6; i++) replies.push(c.request({ event: 'action', params: { action: 'slow', ms: 600 }, messageId: i }));
  // the 6th is refused at once, before any of the five upstream calls can have come back
  const first = await c.next((f) => f.context === 'response');
  assert.deepEqual(first, { error: 'you have too many pending requests', context: 'response', messageId: 6 });
  const rest = await Promise.all(replies.slice(0, 5));
  for (const r of rest) assert.equal(r.sleptMs, 600);
  await c.close();
});
