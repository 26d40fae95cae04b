'use strict';
// Resume (README "Resume"): a client that asked to be resumable and loses its connection comes back as the same
// connection, with everything addressed to it meanwhile, in order, once, and every request answered once. A proxy cuts
// the TCP connections mid-stream while chat flows both ways and requests are in flight. On the store AG_STORE names
// (spec/run runs it on the memory store and on Redis, where the rooms' history is Redis's). The suite runs with one
// worker and, in spec/run, with two (AG_WORKERS=2): a resuming client's new connection then names the worker of the
// connection it resumes (the route it was given) and is made there, whichever loop accepted it.
const test = require('node:test');
const assert = require('node:assert');
const { startServer } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { startCutProxy } = require('../lib/cut_proxy');
const { ResumeClient } = require('../lib/resume_client');

// the store AG_STORE names (spec/run runs this file on both)
const STORE = {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// route: the resumable answer's route (several workers): the connection is made on that worker, as a resuming
// client's is.
async function stockClient(srv, route) {
  const c = await connect(`${srv.wsUrl}/primus${route ? `?resume=${encodeURIComponent(route)}` : ''}`);
  await c.welcome();
  return c;
}

// The worker a connection lives on, by the status action's node id ("<id>-w<index>"); 0 with one worker.
async function workerOf(c) {
  const r = await c.request({ event: 'action', params: { action: 'status' } });
  const m = /-w(\d+)$/.exec(r.id);
  return m ? Number(m[1]) : 0;
}

for (const kind of ['primus', 'websocket', 'polling']) {
  test(`${kind}: cuts mid-stream lose nothing, double nothing, keep the order`, async (t) => {
    const srv = await startServer({ config: STORE });
    t.after(() => srv.stop());
    const proxy = await startCutProxy(srv.port);
    t.after(() => proxy.close());
    const b = await stockClient(srv);
    t.after(() => b.close());
    assert.strictEqual((await b.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');

    const a = new ResumeClient(kind, proxy.port);
    t.after(() => a.stop());
    a.start();
    await a.until((c) => c.ready);
    assert.strictEqual(a.resumed, 0);
    assert.match(a.token, /^[0-9a-f]{64}$/);
    const firstId = a.id;
    assert.strictEqual((await a.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');

    const N = 60;
    const replies = [];
    let cutsDue = 0; // a cut when nothing is open through the proxy (between two polls) waits for the next step
    for (let i = 0; i < N; i++) {
      b.sendRaw(JSON.stringify({ event: 'say', room: 'defaultRoom', message: `b-${i}` }));
      replies.push(a.request({ event: 'say', room: 'defaultRoom', message: `a-${i}` }));
      replies.push(a.request({ event: 'action', params: { action: 'echo', payload: i } }));
      if (i % 10 === 5) cutsDue++;
      if (cutsDue > 0 && proxy.cut() > 0) cutsDue--;
      await sleep(5);
    }
    const answers = await Promise.all(replies);
    // on a loaded machine every cut can fall between a reconnect and its answer: one more cut once the client is
    // ready proves a resume (bounded: a poll is open through the proxy within a few steps)
    if (a.resumed === 0) {
      await a.until((c) => c.ready);
      for (let i = 0; i < 400 && proxy.cut() === 0; i++) await sleep(5);
      await a.until((c) => c.resumed >= 1);
    }
    for (let i = 0; i < N; i++) {
      assert.strictEqual(answers[2 * i].status, 'OK', `notResumed: ${JSON.stringify(a.notResumed)}`);
      assert.strictEqual(answers[2 * i + 1].payload, i);
    }
    const said = (c, prefix) => c.lines.filter((f) => f.context === 'user' && f.message.startsWith(prefix)).map((f) => f.message);
    const want = (prefix) => Array.from({ length: N }, (_, i) => `${prefix}-${i}`);
    await a.until((c) => said(c, 'b-').length >= N && said(c, 'a-').length >= N);
    // the stock member saw every line of A once: each say ran once, whatever was re-sent
    const bSaid = () => b.frames.filter((f) => f.context === 'user' && f.message.startsWith('a-')).length;
    for (let i = 0; i < 400 && bSaid() < N; i++) await sleep(10);
    await b.request({ event: 'detailsView' }); // a round trip later: nothing more
    assert.deepStrictEqual(b.frames.filter((f) => f.context === 'user' && f.message.startsWith('a-')).map((f) => f.message), want('a'));
    assert.deepStrictEqual(said(a, 'b-'), want('b'));
    assert.deepStrictEqual(said(a, 'a-'), want('a'));
    assert.deepStrictEqual(a.gaps, []);
    assert.deepStrictEqual(a.notResumed, []);
    assert.ok(proxy.cuts >= 3, `cuts: ${proxy.cuts}`);
    // every reconnect that got its answer resumed (a cut can also fall between a reconnect and its answer: the next
    // one resumes)
    assert.strictEqual(a.resumed, a.answered - 1, `every reconnect resumed (${proxy.cuts} cuts, ${a.connects} connects)`);
    assert.ok(a.resumed >= 1);
    assert.strictEqual(a.id, firstId);
    // the same connection: same id, in its room, and the server holds no away connection any more
    const v = await b.request({ event: 'roomView', room: 'defaultRoom' });
    assert.strictEqual(v.data.membersCount, 2);
    assert.ok(Object.keys(v.data.members).includes(firstId));
  });
}

// A line published after the store answered a resume's history read and delivered before that answer (Redis answers
// on one connection and publishes on another) is held and sent after the replay, never dropped as if its member were
// still away.
test('lines published while a resume reads its rooms\' history are not lost', async (t) => {
  const srv = await startServer({ config: { ...STORE, general: { resumeHistoryLines: 100000, resumeHistoryBytes: 67108864 } } });
  t.after(() => srv.stop());
  const proxy = await startCutProxy(srv.port);
  t.after(() => proxy.close());
  const b = await stockClient(srv);
  t.after(() => b.close());
  await b.request({ event: 'roomAdd', room: 'defaultRoom' });
  const a = new ResumeClient('primus', proxy.port);
  t.after(() => a.stop());
  a.start();
  await a.until((c) => c.ready);
  await a.request({ event: 'roomAdd', room: 'defaultRoom' });
  const N = 400;
  for (let i = 0; i < N; i++) {
    b.sendRaw(JSON.stringify({ event: 'say', room: 'defaultRoom', message: `b-${i}` }));
    if (i % 20 === 10) proxy.cut();
    if (i % 4 === 0) await sleep(1);
  }
  const said = () => a.lines.filter((f) => f.context === 'user' && f.message.startsWith('b-')).map((f) => f.message);
  await a.until(() => said().length >= N || a.gaps.length > 0 || a.notResumed.length > 0);
  assert.deepStrictEqual(a.notResumed, []);
  assert.deepStrictEqual(a.gaps, []);
  assert.deepStrictEqual(said(), Array.from({ length: N }, (_, i) => `b-${i}`));
  assert.ok(a.resumed >= 1);
});

test('a stolen connection id without its token does not resume; the owner still can', async (t) => {
  const srv = await startServer({ config: STORE });
  t.after(() => srv.stop());
  const proxy = await startCutProxy(srv.port);
  t.after(() => proxy.close());
  const a = new ResumeClient('primus', proxy.port);
  t.after(() => a.stop());
  a.start();
  await a.until((c) => c.ready);
  await a.request({ event: 'roomAdd', room: 'defaultRoom' });
  const id = a.id;
  a.ready = false;
  a.stopped = true;
  proxy.cut();
  await sleep(100);
  const wrong = a.token.slice(0, 63) + (a.token[63] === '0' ? '1' : '0');
  const tries = [{ id }, { id, token: '', seq: 0 }, { id, token: 'f'.repeat(64), seq: 0 }, { id, token: wrong, seq: 0 },
    { id, token: wrong.toUpperCase(), seq: 0 }, { id, token: a.token + '0', seq: 0 }];
  let thief;
  for (const tr of tries) {
    const c = await stockClient(srv, a.route); // on the owner's worker: only the token decides
    t.after(() => c.close());
    thief = c;
    const r = await thief.request({ event: 'resume', seq: 0, offsets: { defaultRoom: 0 }, ...tr });
    assert.strictEqual(r.status, 'Error: not resumed: unknown connection or wrong token', JSON.stringify(tr));
    assert.strictEqual(r.data.resumed, false);
    assert.notStrictEqual(r.data.id, id);
  }
  // once resumable, a connection cannot become another one
  const again = await thief.request({ event: 'resume', id, token: a.token, seq: 0 });
  assert.strictEqual(again.status, 'Error: resume must be the first request');
  // the thief is not in the room; the owner comes back whole
  assert.strictEqual((await thief.request({ event: 'detailsView' })).data.rooms.length, 0);
  a.stopped = false;
  a.start();
  await a.until((c) => c.resumed === 1);
  assert.strictEqual(a.id, id);
});

test('outside the window: not resumed, a new connection, the old one gone from its room', async (t) => {
  const srv = await startServer({ config: { ...STORE, general: { resumeWindow: 300 } } });
  t.after(() => srv.stop());
  const proxy = await startCutProxy(srv.port);
  t.after(() => proxy.close());
  const a = new ResumeClient('primus', proxy.port);
  t.after(() => a.stop());
  a.start();
  await a.until((c) => c.ready);
  await a.request({ event: 'roomAdd', room: 'defaultRoom' });
  const id = a.id;
  const b = await stockClient(srv);
  t.after(() => b.close());
  await b.request({ event: 'roomAdd', room: 'defaultRoom' });
  a.stopped = true;
  proxy.cut();
  await sleep(50);
  // away: still a member, as roomView counts it
  assert.strictEqual((await b.request({ event: 'roomView', room: 'defaultRoom' })).data.membersCount, 2);
  await sleep(800); // the window is 300 ms
  assert.strictEqual((await b.request({ event: 'roomView', room: 'defaultRoom' })).data.membersCount, 1);
  a.stopped = false;
  a.start();
  await a.until((c) => c.notResumed.length === 1);
  assert.deepStrictEqual(a.notResumed, ['unknown connection or wrong token']);
  assert.notStrictEqual(a.id, id);
  assert.match(a.token, /^[0-9a-f]{64}$/); // the new connection is resumable already
});

test('an away connection sent more than its outbox keeps ends: not resumed, and its requests run again', async (t) => {
  const srv = await startServer({ config: { ...STORE, general: { resumeOutboxFrames: 3 } } });
  t.after(() => srv.stop());
  const proxy = await startCutProxy(srv.port);
  t.after(() => proxy.close());
  const a = new ResumeClient('primus', proxy.port);
  t.after(() => a.stop());
  a.start();
  await a.until((c) => c.ready);
  const id = a.id;
  // four replies will come while it is away; three are kept
  const sleeps = [1, 2, 3, 4].map((i) => a.request({ event: 'action', params: { action: 'sleepTest', sleepDuration: 100 + i } }));
  await sleep(30);
  a.stopped = true;
  proxy.cut();
  await sleep(500);
  a.stopped = false;
  a.start();
  const answers = await Promise.all(sleeps);
  assert.deepStrictEqual(a.notResumed, ['unknown connection or wrong token']);
  assert.notStrictEqual(a.id, id);
  for (const r of answers) assert.strictEqual(r.error, undefined);
});

test('two workers: a resume that reaches the other worker without the route is refused as such; with it, it resumes', async (t) => {
  const srv = await startServer({ config: { ...STORE, general: { workers: 2 } } });
  t.after(() => srv.stop());
  const proxy = await startCutProxy(srv.port);
  t.after(() => proxy.close());
  const a = new ResumeClient('primus', proxy.port);
  t.after(() => a.stop());
  a.start();
  await a.until((c) => c.ready);
  assert.strictEqual(typeof a.route, 'string', 'several workers: the resumable answer names a route');
  await a.request({ event: 'roomAdd', room: 'defaultRoom' });
  const id = a.id;
  const probe = await stockClient(srv, a.route);
  t.after(() => probe.close());
  assert.strictEqual((await probe.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');
  const home = await workerOf(probe);
  // connections without the route land on either loop; with it, on the owner's, whichever loop accepted them.
  // Whichever loop wakes first takes a connection, so the home loop is kept busy with requests while each one opens,
  // and the tries are spread out in time: on a loaded machine the same loop can win many times in a row.
  let other = null;
  const seen = new Set();
  const deadline = Date.now() + 20000;
  let tries = 0;
  for (; Date.now() < deadline && !other; tries++) {
    const busy = Array.from({ length: 10 }, () => probe.request({ event: 'detailsView' }));
    const c = await stockClient(srv);
    await Promise.all(busy);
    const w = await workerOf(c);
    seen.add(w);
    if (w !== home) {
      other = c;
      t.after(() => c.close());
    } else {
      await c.close();
      await sleep(Math.floor(Math.random() * 30));
    }
  }
  assert.ok(other, `a connection on the other worker within 20 s (${tries} tries, seen ${[...seen]})`);
  for (let i = 0; i < 6; i++) {
    const c = await stockClient(srv, a.route);
    t.after(() => c.close());
    assert.strictEqual(await workerOf(c), home);
  }
  a.stopped = true;
  proxy.cut();
  await sleep(100);
  // the away connection cannot move between loops: the other worker says where it is, and starts a new one
  const r = await other.request({ event: 'resume', id, token: a.token, seq: a.seq, offsets: a.offsets });
  assert.strictEqual(r.status, 'Error: not resumed: the connection is on another worker');
  assert.strictEqual(r.data.resumed, false);
  assert.notStrictEqual(r.data.id, id);
  assert.notStrictEqual(r.data.route, a.route);
  // the owner, routed, comes back whole: same id, still in its room
  a.stopped = false;
  a.start();
  await a.until((c) => c.resumed === 1);
  assert.strictEqual(a.id, id);
  assert.deepStrictEqual(a.notResumed, []);
  const v = await probe.request({ event: 'roomView', room: 'defaultRoom' });
  assert.ok(Object.keys(v.data.members).includes(id), JSON.stringify(v));
});
