'use strict';
// Lines a node missed: with room history on (the default resumeWindow), every chat line carries its room's offset. When
// a node's Redis subscription is lost and made again, lines published meanwhile never reach it through pub/sub; the
// node sees the gap (or hears that it subscribed again) and reads those lines from the room's history, so its members
// still get every line, once, in order.
const test = require('node:test');
const assert = require('node:assert');
const { sleep, waitFor, primus, getJson, cluster, teardown } = require('../lib/cluster_clients');

const ROOM = 'defaultRoom';
const metric = (text, name) => Number((text.match(new RegExp(`^${name} (\\d+)`, 'm')) || [])[1] || 0);
const said = (c) => c.frames.filter((f) => f.context === 'user' && f.room === ROOM).map((f) => Number(f.message));

// Says `n` numbered lines from a member on node a while every node's pub/sub connection is killed `cuts` times.
async function flow(cl, speaker, n, cuts) {
  let done = 0;
  const cutter = (async () => {
    for (let i = 0; i < cuts; i++) {
      await sleep(150);
      cl.redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
      done++;
    }
  })();
  for (let i = 1; i <= n; i++) {
    const r = await speaker.request({ event: 'say', room: ROOM, message: String(i) });
    assert.strictEqual(r.error, undefined, `say ${i}`);
    if (i % 20 === 0) await sleep(5);
  }
  await cutter;
  assert.strictEqual(done, cuts);
}

async function metrics(cl) {
  const sum = { fetched: 0, missed: 0 };
  for (const s of cl.nodes) {
    const m = (await getJson(`${s.url}/metrics`)).body;
    sum.fetched += metric(m, 'actiongate_room_lines_fetched_total');
    sum.missed += metric(m, 'actiongate_room_lines_missed_total');
  }
  return sum;
}

test("a node whose subscription was cut gets every line from the room's history, once and in order", async (t) => {
  // a history long enough for what is said while a subscription is made again on this loaded machine
  const cl = await cluster(2, { general: { resumeHistoryLines: 5000, resumeHistoryBytes: 4 << 20 } });
  t.after(() => teardown(cl));
  const [a, b] = cl.nodes;
  const speaker = await primus(a);
  const here = await primus(a); // a member on the speaker's node, whose subscription is cut too
  const there = await primus(b);
  for (const c of [speaker, here, there]) assert.strictEqual((await c.request({ event: 'roomAdd', room: ROOM })).data, true);

  const N = 600;
  await flow(cl, speaker, N, 3);

  const want = Array.from({ length: N }, (_, i) => i + 1);
  for (const [name, c] of [['a member on the speaking node', here], ['a member on the other node', there]]) {
    await waitFor(() => said(c).includes(N), 15000, `${name}: line ${N}`).catch(() => {});
    const got = said(c);
    const gaps = want.filter((n) => !got.includes(n));
    assert.deepStrictEqual(got, want, `${name}: every line once, in order (${got.length} lines, missing ${gaps.slice(0, 5)}..${gaps.slice(-3)})`);
  }
  // the lines came from the history: the cuts did make gaps (otherwise this test proves nothing)
  const m = await metrics(cl);
  assert.strictEqual(m.missed, 0);
  assert.ok(m.fetched > 0, `lines read from the history: ${m.fetched}`);
  for (const c of [speaker, here, there]) await c.close();
});

test('lines the history no longer holds are counted as missed; the rest still arrive once, in order', async (t) => {
  const cl = await cluster(2, { general: { resumeHistoryLines: 2 } });
  t.after(() => teardown(cl));
  const [a, b] = cl.nodes;
  const speaker = await primus(a);
  const there = await primus(b);
  for (const c of [speaker, there]) assert.strictEqual((await c.request({ event: 'roomAdd', room: ROOM })).data, true);
  let n = 0;
  const say = async () => assert.strictEqual((await speaker.request({ event: 'say', room: ROOM, message: String(++n) })).status, 'OK');
  await say();
  await waitFor(() => said(there).includes(1), 5000, 'line 1');
  // node b's subscription is gone for a while: lines said meanwhile are more than the history keeps
  cl.redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
  for (let i = 0; i < 50; i++) await say();
  // then lines until node b hears again
  await waitFor(async () => {
    await say();
    return said(there).some((x) => x > 51);
  }, 10000, 'node b hears again');
  const last = n;
  await waitFor(() => said(there).includes(last), 5000, `line ${last}`);
  const got = said(there);
  assert.deepStrictEqual(got, [...got].sort((x, y) => x - y), 'in order');
  assert.strictEqual(new Set(got).size, got.length, 'each once');
  const missed = metric((await getJson(`${b.url}/metrics`)).body, 'actiongate_room_lines_missed_total');
  // every line reached node b's member or is counted missed there, and the cut did make a gap
  assert.ok(missed > 0, `missed ${missed}`);
  assert.strictEqual(got.length + missed, last, `${got.length} delivered + ${missed} missed of ${last}`);
  for (const c of [speaker, there]) await c.close();
});
