'use strict';
// Resume's per-node bound (README "Resume", general.resumeMaxAway): past it, a connection whose carrier drops ends as
// it would without resume, so a stranger cannot make a node keep an unbounded number of away connections.
const test = require('node:test');
const assert = require('node:assert');
const { startServer } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { startCutProxy } = require('../lib/cut_proxy');
const { ResumeClient } = require('../lib/resume_client');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('resumeMaxAway: the node keeps that many away connections; the next one to drop ends, and is not resumed', async (t) => {
  // one worker: the bound is per node (per worker)
  const srv = await startServer({ config: { redis: { url: '' }, general: { workers: 1, resumeMaxAway: 2 } } });
  t.after(() => srv.stop());
  const proxy = await startCutProxy(srv.port);
  t.after(() => proxy.close());
  const watcher = await connect(`${srv.wsUrl}/primus`);
  t.after(() => watcher.close());
  await watcher.welcome();
  await watcher.request({ event: 'roomAdd', room: 'defaultRoom' });
  const count = async () => (await watcher.request({ event: 'roomView', room: 'defaultRoom' })).data.membersCount;

  const cs = [];
  for (let i = 0; i < 3; i++) {
    const c = new ResumeClient('primus', proxy.port);
    t.after(() => c.stop());
    c.start();
    await c.until((x) => x.ready);
    await c.request({ event: 'roomAdd', room: 'defaultRoom' });
    cs.push(c);
  }
  assert.strictEqual(await count(), 4);
  const ids = cs.map((c) => c.id);
  // the three carriers drop one after the other (no close frame: a drop); the clients stay away meanwhile
  for (const c of cs) {
    c.ready = false;
    c.stop();
    await sleep(100);
  }
  // two are kept (still members, as roomView counts away connections); the third ended and left the room
  let n = 0;
  for (let i = 0; i < 50 && (n = await count()) !== 3; i++) await sleep(20);
  assert.strictEqual(n, 3);
  for (const c of cs) {
    c.stopped = false;
    c.start();
  }
  for (const c of cs) await c.until((x) => x.resumed + x.notResumed.length === 1);
  assert.strictEqual(cs.filter((c) => c.resumed === 1).length, 2);
  const refused = cs.filter((c) => c.notResumed.length === 1);
  assert.strictEqual(refused.length, 1);
  assert.deepStrictEqual(refused[0].notResumed, ['unknown connection or wrong token']);
  assert.notStrictEqual(refused[0].id, ids[cs.indexOf(refused[0])]);
  for (const c of cs.filter((x) => x.resumed === 1)) assert.strictEqual(c.id, ids[cs.indexOf(c)]);
});
