'use strict';
// Actions over the socket: result shapes, validation errors, messageId matching, the pending limit, params isolation.
const test = require('node:test');
const assert = require('node:assert');
const { startServer } = require('../lib/harness');
const { connect } = require('../lib/wsclient');

const action = (params, messageId) => ({ event: 'action', params, messageId });

test('actions', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();

  await t.test('randomNumber', async () => {
    const r = await c.request(action({ action: 'randomNumber' }, 6));
    assert.deepStrictEqual(Object.keys(r), ['randomNumber', 'stringRandomNumber', 'context', 'messageId']);
    assert.ok(r.randomNumber >= 0 && r.randomNumber < 1);
    assert.strictEqual(r.stringRandomNumber, `Your random number is ${r.randomNumber}`);
    assert.strictEqual(r.messageId, 6);
  });

  await t.test('cacheTest: required, validator, success', async () => {
    assert.deepStrictEqual(await c.request(action({ action: 'cacheTest' }, 7)),
      { error: 'key is a required parameter for this action', context: 'response', messageId: 7 });
    assert.deepStrictEqual(await c.request(action({ action: 'cacheTest', key: 'abc' }, 8)),
      { error: 'value is a required parameter for this action', context: 'response', messageId: 8 });
    assert.deepStrictEqual(await c.request(action({ action: 'cacheTest', key: 'abc', value: '' }, 9)),
      { error: 'value is a required parameter for this action', context: 'response', messageId: 9 });
    assert.deepStrictEqual(await c.request(action({ action: 'cacheTest', key: 'k1', value: 'v1' }, 10)),
      { error: 'inputs should be at least 3 letters long', context: 'response', messageId: 10 });
    const before = Date.now();
    const r = await c.request(action({ action: 'cacheTest', key: 'key1', value: 'value1' }, 11));
    assert.deepStrictEqual(Object.keys(r), ['cacheTestResults', 'context', 'messageId']);
    const res = r.cacheTestResults;
    assert.deepStrictEqual(Object.keys(res), ['saveResp', 'sizeResp', 'loadResp', 'deleteResp']);
    assert.strictEqual(res.saveResp, true);
    assert.strictEqual(res.sizeResp, 1);
    assert.strictEqual(res.deleteResp, true);
    assert.deepStrictEqual(Object.keys(res.loadResp), ['key', 'value', 'expireTimestamp', 'createdAt', 'readAt']);
    assert.strictEqual(res.loadResp.key, 'cacheTest_key1');
    assert.strictEqual(res.loadResp.value, 'value1');
    assert.ok(res.loadResp.createdAt >= before - 1000);
    assert.strictEqual(res.loadResp.expireTimestamp - res.loadResp.createdAt, 5000);
    assert.ok(res.loadResp.readAt >= res.loadResp.createdAt);
  });

  await t.test('a validator without its own text', async () => {
    assert.deepStrictEqual(await c.request(action({ action: 'sleepTest', sleepDuration: -1 }, 'v')),
      { error: 'Input for parameter "sleepDuration" failed validation!', context: 'response', messageId: 'v' });
  });

  await t.test('unknown action, missing params, params not an object', async () => {
    const unknown = { error: 'unknown action or invalid apiVersion', context: 'response' };
    assert.deepStrictEqual(await c.request(action({ action: 'nope' }, 12)), { ...unknown, messageId: 12 });
    assert.deepStrictEqual(await c.request(action({}, 13)), { ...unknown, messageId: 13 });
    assert.deepStrictEqual(await c.request({ event: 'action', messageId: 14 }), { ...unknown, messageId: 14 });
    assert.deepStrictEqual(await c.request({ event: 'action', params: 'randomNumber', messageId: 15 }), { ...unknown, messageId: 15 });
  });

  await t.test('params are scrubbed and not sticky', async () => {
    const r = await c.request(action({ action: 'echo', payload: { x: [1, 2] }, junk: 1 }, 16));
    assert.deepStrictEqual(r, { payload: { x: [1, 2] }, context: 'response', messageId: 16 });
    const r2 = await c.request(action({ action: 'echo' }, 17));
    assert.deepStrictEqual(r2, { payload: null, context: 'response', messageId: 17 });
    const d = await c.request({ event: 'detailsView' });
    assert.deepStrictEqual(d.data.params, {});
    assert.strictEqual(d.data.totalActions, 13);
    assert.strictEqual(d.data.pendingActions, 0);
  });

  await t.test('createChatRoom then join it', async () => {
    assert.deepStrictEqual(await c.request(action({ action: 'createChatRoom', name: 'newRoom' }, 18)),
      { name: 'newRoom', didCreate: true, context: 'response', messageId: 18 });
    assert.deepStrictEqual(await c.request(action({ action: 'createChatRoom', name: 'newRoom' }, 19)),
      { name: 'newRoom', didCreate: false, context: 'response', messageId: 19 });
    assert.strictEqual((await c.request({ event: 'roomAdd', room: 'newRoom' })).data, true);
  });

  await t.test('status', async () => {
    const r = await c.request(action({ action: 'status' }, 20));
    assert.strictEqual(r.name, 'actiongate');
    assert.strictEqual(r.nodeStatus, 'Node Healthy');
    assert.deepStrictEqual(r.problems, []);
  });

  await t.test('documentation action', async () => {
    const r = await c.request(action({ action: 'documentation' }, 21));
    assert.deepStrictEqual(Object.keys(r), ['documentation', 'context', 'messageId']);
    assert.deepStrictEqual(r.documentation.createChatRoom['1'].inputs, { name: { required: true } });
    assert.strictEqual(r.documentation.echo['1'].name, 'echo');
  });

  await t.test('a slow sleepTest is answered after a later randomNumber', async () => {
    c.sendRaw(JSON.stringify(action({ action: 'sleepTest', sleepDuration: 300 }, 'slow')));
    c.sendRaw(JSON.stringify(action({ action: 'randomNumber' }, 'fast')));
    const first = await c.next((f) => f.context === 'response');
    const second = await c.next((f) => f.context === 'response', 3000);
    assert.strictEqual(first.messageId, 'fast');
    assert.strictEqual(second.messageId, 'slow');
    assert.deepStrictEqual(Object.keys(second), ['sleepStarted', 'sleepEnded', 'sleepDelta', 'sleepDuration', 'context', 'messageId']);
    assert.strictEqual(second.sleepDuration, 300);
    assert.ok(second.sleepDelta >= 300);
    assert.strictEqual(second.sleepEnded - second.sleepStarted, second.sleepDelta);
  });

  await t.test('the 6th concurrent action is rejected at once', async () => {
    for (let i = 1; i <= 6; i++) c.sendRaw(JSON.stringify(action({ action: 'sleepTest', sleepDuration: 300 }, `p${i}`)));
    const first = await c.next((f) => f.context === 'response');
    assert.deepStrictEqual(first, { error: 'you have too many pending requests', context: 'response', messageId: 'p6' });
    const rest = [];
    for (let i = 0; i < 5; i++) rest.push(await c.next((f) => f.context === 'response', 3000));
    assert.deepStrictEqual(rest.map((f) => f.messageId).sort(), ['p1', 'p2', 'p3', 'p4', 'p5']);
    for (const f of rest) assert.strictEqual(f.sleepDuration, 300);
    const d = await c.request({ event: 'detailsView' });
    assert.strictEqual(d.data.pendingActions, 0);
  });

  await c.close();
});

test('11 concurrent sleepTests keep their own params', async (t) => {
  const srv = await startServer({ config: { general: { simultaneousActions: 20 } } });
  t.after(() => srv.stop());
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  const waits = [];
  for (let i = 0; i < 11; i++) waits.push(c.request(action({ action: 'sleepTest', sleepDuration: 20 * i }, 100 + i), 5000));
  const replies = await Promise.all(waits);
  replies.forEach((r, i) => {
    assert.strictEqual(r.messageId, 100 + i);
    assert.strictEqual(r.sleepDuration, 20 * i);
    assert.ok(r.sleepDelta >= 20 * i);
  });
  // sleepDuration's default
  const def = await c.request(action({ action: 'sleepTest' }, 200), 5000);
  assert.strictEqual(def.sleepDuration, 1000);
  await c.close();
});
