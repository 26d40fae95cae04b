'use strict';
// Resume across a cluster over Redis (README "Resume", "Cluster over Redis"): three real nodes on a real redis-server
// behind the round-robin proxy (every new TCP connection goes to the next node), a cut proxy in front of it that resets
// every connection through it mid-stream. A resuming client's new carrier reaches whichever node is next, names the
// node of its connection (`?resume=<route>`) and is forwarded there; chat and requests are checked by sequence numbers:
// nothing lost, doubled or reordered. Redis losing its data during the gap: not resumed, with its reason, and nothing
// wrong delivered.
const test = require('node:test');
const assert = require('node:assert');
const { startRoundRobinProxy } = require('../lib/rr_proxy');
const { startCutProxy } = require('../lib/cut_proxy');
const { ResumeClient } = require('../lib/resume_client');
const { sleep, waitFor, primus, cluster, teardown } = require('../lib/cluster_clients');
const { sign, now } = require('../lib/jwt');

const said = (c, prefix) => c.lines.filter((f) => f.context === 'user' && f.message.startsWith(prefix)).map((f) => f.message);
const want = (prefix, n) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

// The node a resumable client's connection lives on, by its route (the node's sid tag, registered in Redis).
function ownerOf(cl, route) {
  const addr = cl.redis.cli('HGET', `actiongate:route:${route}`, 'address');
  return cl.nodes.findIndex((s) => `127.0.0.1:${s.port}` === addr);
}

for (const kind of ['primus', 'websocket', 'polling']) {
  test(`${kind}: cuts mid-stream behind a round-robin proxy; every resume lands on another node and is forwarded home`,
    async (t) => {
      // the client sends its requests without waiting, and queues them while away: on a loaded machine more than the
      // default 64 answers can be on their way when a cut comes, which would rightly end the connection
      const cl = await cluster(3, { general: { resumeOutboxFrames: 1024, resumeOutboxBytes: 1048576 } });
      const rr = await startRoundRobinProxy(cl.nodes.map((s) => s.port));
      const cut = await startCutProxy(rr.port);
      t.after(() => teardown(cl, cut, rr));
      // a stock member on the node the client will not start on: every line crosses nodes
      const b = await primus(cl.nodes[2]);
      t.after(() => b.close());
      assert.strictEqual((await b.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');

      const a = new ResumeClient(kind, cut.port);
      t.after(() => a.stop());
      a.start();
      await a.until((c) => c.ready);
      assert.match(a.route, /^[A-Za-z0-9_-]{8}$/);
      const owner = ownerOf(cl, a.route);
      assert.ok(owner >= 0, `route ${a.route} registered`);
      const firstId = a.id;
      assert.strictEqual((await a.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');

      const N = 60;
      const replies = [];
      let cutsDue = 0;
      const hitsBefore = rr.hits.slice();
      for (let i = 0; i < N; i++) {
        b.sendRaw(JSON.stringify({ event: 'say', room: 'defaultRoom', message: `b-${i}` }));
        replies.push(a.request({ event: 'say', room: 'defaultRoom', message: `a-${i}` }));
        replies.push(a.request({ event: 'action', params: { action: 'echo', payload: i } }));
        if (i % 10 === 5) cutsDue++;
        if (cutsDue > 0 && cut.cut() > 0) cutsDue--;
        await sleep(5);
      }
      const answers = await Promise.all(replies);
      for (let i = 0; i < N; i++) {
        assert.strictEqual(answers[2 * i].status, 'OK', `notResumed: ${JSON.stringify(a.notResumed)}`);
        assert.strictEqual(answers[2 * i + 1].payload, i);
      }
      await a.until((c) => said(c, 'b-').length >= N && said(c, 'a-').length >= N);
      const bSaid = () => b.frames.filter((f) => f.context === 'user' && f.message.startsWith('a-')).length;
      for (let i = 0; i < 400 && bSaid() < N; i++) await sleep(10);
      await b.request({ event: 'detailsView' });
      // each say ran once (the stock member on another node saw each line once, in order), A got everything once
      assert.deepStrictEqual(b.frames.filter((f) => f.context === 'user' && f.message.startsWith('a-')).map((f) => f.message),
        want('a', N));
      assert.deepStrictEqual(said(a, 'b-'), want('b', N));
      assert.deepStrictEqual(said(a, 'a-'), want('a', N));
      assert.deepStrictEqual(a.gaps, []);
      assert.deepStrictEqual(a.notResumed, []);
      assert.ok(cut.cuts >= 3, `cuts: ${cut.cuts}`);
      assert.strictEqual(a.resumed, a.answered - 1, `every reconnect resumed (${cut.cuts} cuts, ${a.connects} connects)`);
      assert.ok(a.resumed >= 1);
      assert.strictEqual(a.id, firstId);
      // the new carriers reached every node in turn, so some landed on other nodes than the owner and were carried home
      const spread = rr.hits.map((h, i) => h - hitsBefore[i]);
      assert.ok(spread.filter((h, i) => i !== owner && h > 0).length >= 1, `hits after the start: ${spread}`);
      const v = await b.request({ event: 'roomView', room: 'defaultRoom' });
      assert.strictEqual(v.data.membersCount, 2);
      assert.ok(Object.keys(v.data.members).includes(firstId));
      assert.strictEqual(ownerOf(cl, a.route), owner);
    });
}

test('SIGKILL of the node holding clients mid-stream: each resumes on another node, nothing lost, doubled or reordered',
  async (t) => {
    // every line published while the clients wait for the dead node's heartbeat to expire must still be kept
    const cl = await cluster(3, { general: { resumeHistoryLines: 2000, resumeHistoryBytes: 1048576 } });
    const rr = await startRoundRobinProxy(cl.nodes.map((s) => s.port));
    t.after(() => teardown(cl, rr));
    const kinds = ['primus', 'websocket', 'polling', 'primus', 'websocket', 'polling'];
    const clients = [];
    for (const kind of kinds) {
      const c = new ResumeClient(kind, rr.port);
      t.after(() => c.stop());
      c.start();
      await c.until((x) => x.ready);
      assert.strictEqual((await c.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');
      clients.push(c);
    }
    const owners = clients.map((c) => ownerOf(cl, c.route));
    const victim = owners[0];
    const doomed = clients.filter((c, i) => owners[i] === victim);
    const firstIds = doomed.map((c) => c.id);
    // the observer, a stock member, lives on a node that stays
    const b = await primus(cl.nodes[(victim + 1) % 3]);
    t.after(() => b.close());
    assert.strictEqual((await b.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');

    const N = 40;
    const replies = clients.map(() => []);
    for (let i = 0; i < N; i++) {
      b.sendRaw(JSON.stringify({ event: 'say', room: 'defaultRoom', message: `b-${i}` }));
      clients.forEach((c, k) => {
        replies[k].push(c.request({ event: 'say', room: 'defaultRoom', message: `c${k}-${i}` }));
        replies[k].push(c.request({ event: 'action', params: { action: 'echo', payload: i } }));
      });
      if (i === N / 2) cl.nodes[victim].kill('SIGKILL');
      await sleep(10);
    }
    for (let k = 0; k < clients.length; k++) {
      const answers = await Promise.all(replies[k]);
      for (let i = 0; i < N; i++) {
        assert.strictEqual(answers[2 * i].status, 'OK', `client ${k}: ${JSON.stringify(clients[k].notResumed)}`);
        assert.strictEqual(answers[2 * i + 1].payload, i);
      }
    }
    for (const c of clients) await c.until((x) => said(x, 'b-').length >= N, 30000);
    const lines = (k) => b.frames.filter((f) => f.context === 'user' && f.message.startsWith(`c${k}-`)).map((f) => f.message);
    for (let i = 0; i < 500 && clients.some((_, k) => lines(k).length < N); i++) await sleep(20);
    await b.request({ event: 'detailsView' });
    clients.forEach((c, k) => {
      // each say ran once: the observer saw every line of every client once, in order
      assert.deepStrictEqual(lines(k), want(`c${k}`, N), `client ${k} (${c.kind}) as the observer saw it`);
      assert.deepStrictEqual(said(c, 'b-'), want('b', N), `client ${k} (${c.kind})`);
      assert.deepStrictEqual(c.gaps, [], `client ${k} (${c.kind})`);
      assert.deepStrictEqual(c.notResumed, [], `client ${k} (${c.kind})`);
    });
    doomed.forEach((c, i) => {
      assert.ok(c.resumed >= 1, `${c.kind} resumed`);
      assert.strictEqual(c.id, firstIds[i]);
      assert.notStrictEqual(ownerOf(cl, c.route), victim, `${c.kind} lives on a live node now`);
    });
    // once the dead node's members are reaped, every client is a member exactly once (the taken-over ones under their
    // own ids, on their new nodes)
    await waitFor(async () => {
      const v = await b.request({ event: 'roomView', room: 'defaultRoom' });
      return v.data.membersCount === clients.length + 1;
    }, 10000, 'members after the reaper');
    await sleep(1500); // a reaper run after the dead node's heartbeat expired must not remove the taken-over members
    const v = await b.request({ event: 'roomView', room: 'defaultRoom' });
    assert.strictEqual(v.data.membersCount, clients.length + 1);
    for (const c of clients) assert.ok(Object.keys(v.data.members).includes(c.id));
  });

test('two workers per node: a killed node\'s connections are taken over by whichever worker their client reaches',
  async (t) => {
    // the token names the worker that made it; a takeover must not depend on reaching a worker of the same index
    const cl = await cluster(2, { general: { workers: 2, resumeHistoryLines: 2000, resumeHistoryBytes: 1048576 } });
    const rr = await startRoundRobinProxy(cl.nodes.map((s) => s.port));
    t.after(() => teardown(cl, rr));
    const clients = [];
    for (let i = 0; i < 12; i++) {
      const c = new ResumeClient('primus', rr.port);
      t.after(() => c.stop());
      c.start();
      await c.until((x) => x.ready);
      assert.strictEqual((await c.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');
      clients.push(c);
    }
    // the node and worker each connection lives on, from its record
    const ownerOfConn = (c) => cl.redis.cli('HGET', `actiongate:rconn:${c.id}`, 'node');
    const doomed = clients.filter((c) => ownerOfConn(c).startsWith('node0-'));
    assert.ok(doomed.length >= 2, `connections on node0: ${doomed.length}`);
    const firstIds = doomed.map((c) => c.id);
    const b = await primus(cl.nodes[1]);
    t.after(() => b.close());
    assert.strictEqual((await b.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');
    const N = 30;
    for (let i = 0; i < N; i++) {
      b.sendRaw(JSON.stringify({ event: 'say', room: 'defaultRoom', message: `b-${i}` }));
      if (i === N / 3) cl.nodes[0].kill('SIGKILL');
      await sleep(20);
    }
    for (const c of clients) await c.until((x) => said(x, 'b-').length >= N, 30000);
    const workersSeen = new Set();
    doomed.forEach((c, i) => {
      assert.deepStrictEqual(c.notResumed, [], `client ${i} was not resumed`);
      assert.ok(c.resumed >= 1, `client ${i} resumed`);
      assert.strictEqual(c.id, firstIds[i]);
      assert.deepStrictEqual(said(c, 'b-'), want('b', N), `client ${i}`);
      assert.deepStrictEqual(c.gaps, [], `client ${i}`);
      const owner = ownerOfConn(c);
      assert.ok(owner.startsWith('node1-'), `client ${i} lives on ${owner}`);
      workersSeen.add(owner);
    });
    t.diagnostic(`taken over by ${[...workersSeen].join(', ')}`);
  });

test("a killed node's token-authenticated connection keeps who it is on the node that takes it over", async (t) => {
  const SECRET = 'a-test-secret-of-at-least-32-bytes-0123';
  const cl = await cluster(2, { tokens: { secret: SECRET } });
  t.after(() => teardown(cl));
  const c = new ResumeClient('primus', cl.nodes[0].port);
  c.firstQuery = `?token=${sign({ alg: 'HS256' }, { sub: 'alice', role: 'ops', exp: now() + 600 }, SECRET)}`;
  c.maxConnects = 2000;
  t.after(() => c.stop());
  c.start();
  await c.until((x) => x.ready);
  const before = (await c.request({ event: 'detailsView' })).data;
  assert.strictEqual(before.user, 'alice');
  const id = c.id;
  // the client comes back, without its token, through the other node once its own is gone
  cl.nodes[0].kill('SIGKILL');
  c.port = cl.nodes[1].port;
  await c.until((x) => x.resumed === 1 || x.notResumed.length > 0, 30000);
  assert.deepStrictEqual(c.notResumed, []);
  assert.strictEqual(c.id, id);
  const after = (await c.request({ event: 'detailsView' })).data;
  assert.strictEqual(after.user, 'alice');
  assert.strictEqual(after.claims.sub, 'alice');
  assert.strictEqual(after.claims.role, 'ops');
  assert.strictEqual(cl.redis.cli('HGET', `actiongate:rconn:${id}`, 'node'), 'node1');
});

test('a client that saw frames its killed node never wrote to Redis resumes on another node: it missed none of them',
  async (t) => {
    const cl = await cluster(2);
    t.after(() => teardown(cl));
    const b = await primus(cl.nodes[1]);
    t.after(() => b.close());
    assert.strictEqual((await b.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');
    const c = new ResumeClient('primus', cl.nodes[0].port);
    c.maxConnects = 2000;
    t.after(() => c.stop());
    c.start();
    await c.until((x) => x.ready);
    await c.request({ event: 'roomAdd', room: 'defaultRoom' });
    const id = c.id;
    // Redis holds every write for a while: the answers below reach the client, their record writes never reach Redis
    cl.redis.cli('CLIENT', 'PAUSE', '1500', 'WRITE');
    for (let i = 0; i < 3; i++) await c.request({ event: 'detailsView' });
    const seen = c.seq;
    cl.nodes[0].kill('SIGKILL');
    cl.redis.cli('CLIENT', 'UNPAUSE');
    c.port = cl.nodes[1].port;
    await c.until((x) => x.resumed === 1 || x.notResumed.length > 0, 30000);
    assert.deepStrictEqual(c.notResumed, []);
    assert.strictEqual(c.id, id);
    // what follows is numbered after what it saw: nothing taken for a duplicate, no gap
    assert.strictEqual((await c.request({ event: 'detailsView' })).data.id, id);
    assert.ok(c.seq > seen, `numbered after ${seen}: ${c.seq}`);
    await b.request({ event: 'say', room: 'defaultRoom', message: 'after' });
    await c.until((x) => said(x, 'after').length === 1);
    assert.strictEqual(c.dups, 0);
    assert.deepStrictEqual(c.gaps, []);
  });

test('Redis loses its data during the gap: not resumed (room history gone), nothing wrong delivered, the client starts afresh',
  async (t) => {
    const cl = await cluster(3);
    const rr = await startRoundRobinProxy(cl.nodes.map((s) => s.port));
    const cut = await startCutProxy(rr.port);
    t.after(() => teardown(cl, cut, rr));
    const b = await primus(cl.nodes[0]);
    t.after(() => b.close());
    await b.request({ event: 'roomAdd', room: 'defaultRoom' });
    const a = new ResumeClient('primus', cut.port);
    t.after(() => a.stop());
    a.start();
    await a.until((c) => c.ready);
    const firstId = a.id;
    await a.request({ event: 'roomAdd', room: 'defaultRoom' });
    for (let i = 0; i < 5; i++) await b.request({ event: 'say', room: 'defaultRoom', message: `old-${i}` });
    await a.until((c) => said(c, 'old-').length === 5);
    assert.strictEqual(a.offsets.defaultRoom, 5);

    // the client is away; Redis forgets everything (as a restart without persistence does); the nodes write their
    // rooms and members again, and the room's history starts a new life
    a.stopped = true;
    cut.cut();
    await sleep(100);
    cl.redis.cli('FLUSHALL');
    // (and the owner's route again, so that the resume reaches the owner and the room's history is what refuses it)
    for (let i = 0; i < 100 && (cl.redis.cli('SISMEMBER', 'actiongate:rooms', 'defaultRoom') !== '1' ||
      cl.redis.cli('EXISTS', `actiongate:route:${a.route}`) !== '1'); i++) await sleep(50);
    await sleep(1100); // a node trusts a route it looked up for 1 s: the lookups made while Redis was empty are over
    // lines under the new life's offsets 1..3: a client holding offset 5 of the old life must not take them for old ones
    for (let i = 0; i < 3; i++) await b.request({ event: 'say', room: 'defaultRoom', message: `new-${i}` });
    a.stopped = false;
    a.start();
    await a.until((c) => c.answered === 2);
    assert.strictEqual(a.resumed, 0);
    assert.deepStrictEqual(a.notResumed, ['room history gone']);
    assert.notStrictEqual(a.id, firstId);
    // nothing of the new life was replayed to it as if it were the old one's
    assert.deepStrictEqual(said(a, 'new-'), []);
    assert.deepStrictEqual(a.gaps, []);
    // the fallback: a new connection, its rooms joined again, chat flows
    assert.strictEqual((await a.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');
    await b.request({ event: 'say', room: 'defaultRoom', message: 'after' });
    await a.until((c) => said(c, 'after').length === 1);
    const v = await b.request({ event: 'roomView', room: 'defaultRoom' });
    assert.ok(Object.keys(v.data.members).includes(a.id));
    assert.ok(!Object.keys(v.data.members).includes(firstId), 'the old connection left its room');
  });
