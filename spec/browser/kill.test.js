'use strict';
// The chat demo survives the death of its node (README "Resume", "In a cluster over Redis"): three nodes on a real
// redis-server behind the round-robin proxy, the stock chat page in Chromium through the proxy, a Primus client on
// another node. Both say numbered lines without pause; the node holding the page's connection is killed with SIGKILL
// while they do. Once the dead node's heartbeat expires (redis.nodeTtl) another node takes the connection over: the
// page shows that it resumed under its id, every line of the other client once and in order, and the other client got
// every line the page said, once and in order.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startRoundRobinProxy } = require('../lib/rr_proxy');
const { launch, screenshot } = require('../lib/browser');
const { sleep, waitFor, primus, cluster, teardown } = require('../lib/cluster_clients');
const { openChat, say, waitLine, waitTransport } = require('./helpers');

const want = (who, n) => Array.from({ length: n }, (_, i) => `${who} ${i + 1}`);

// The page's chat lines from who, in the order it shows them.
function shown(page, who) {
  return page.evaluate((w) => {
    const out = [];
    const re = new RegExp(`^${w} \\d+$`);
    for (const b of document.querySelectorAll('#messages li .body')) if (re.test(b.textContent)) out.push(b.textContent);
    return out;
  }, who);
}

function infoLines(page) {
  return page.evaluate(() => [...document.querySelectorAll('#messages li.info .body')].map((b) => b.textContent));
}

// The node with this sid tag (a resumable connection's route is its node's tag), by the address it registered in Redis.
function ownerOf(cl, route) {
  const addr = cl.redis.cli('HGET', `actiongate:route:${route}`, 'address');
  return cl.nodes.findIndex((s) => `127.0.0.1:${s.port}` === addr);
}

// Cleanups run last registered first, all of them even when one throws (node:test skips the after hooks that follow
// a failed one, and a browser or a node left running would keep the test process alive), then the first error.
function cleanups(t) {
  const fns = [];
  t.after(async () => {
    const errors = [];
    for (const fn of fns.reverse()) {
      try {
        await fn();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length) throw errors[0];
  });
  return (fn) => fns.push(fn);
}

test('the chat page keeps every line, once and in order, both ways, across a SIGKILL of the node holding it', async (t) => {
  const atEnd = cleanups(t);
  // every line said while the page waits for the dead node's heartbeat to expire must still be in the room's history
  const cl = await cluster(3, { general: { resumeHistoryLines: 2000, resumeHistoryBytes: 1048576 } });
  const rr = await startRoundRobinProxy(cl.nodes.map((s) => s.port));
  atEnd(() => teardown(cl, rr));
  const b = await launch();
  atEnd(() => b.close());

  const page = await openChat(b, rr.url);
  await waitTransport(page, 'websocket');
  const id = page.clientId;
  // the node holding the page's connection: the one whose tag begins the engine.io sid
  const tag = await page.evaluate(() => window.chatClient.engine.sid.slice(0, 8));
  const victim = ownerOf(cl, tag);
  assert.ok(victim >= 0, `sid tag ${tag} registered`);
  assert.equal(await page.evaluate(() => window.chatClient.resumeState && window.chatClient.resumeState.route), tag,
    'the page holds a resumable connection whose route is its node');

  // the other client lives on a node that stays
  const other = await primus(cl.nodes[(victim + 1) % 3]);
  atEnd(() => other.close());
  assert.equal((await other.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');
  const heard = () => other.frames.filter((f) => f.context === 'user' && /^page \d+$/.test(f.message));

  // a first exchange before anything happens
  await say(page, 'page 1');
  await other.request({ event: 'say', room: 'defaultRoom', message: 'other 1' });
  await waitLine(page, 'other 1');
  await waitLine(page, 'page 1');
  let pageSaid = 1;
  let otherSaid = 1;

  // the other client talks without pause until told to stop; every say is answered OK by its live node
  let talking = true;
  atEnd(() => (talking = false));
  const otherTalks = (async () => {
    while (talking && otherSaid < 400) {
      const text = `other ${++otherSaid}`;
      const r = await other.request({ event: 'say', room: 'defaultRoom', message: text }, 10000);
      assert.equal(r.status, 'OK', `${text}: ${JSON.stringify(r)}`);
      await sleep(25);
    }
  })();
  otherTalks.catch(() => {}); // awaited below; a failed say fails the test there

  // the page talks too; its node dies after a few of its lines, while both are talking
  const KILL_AT = 6;
  const N = 30;
  let killed = false;
  let saidAway = 0; // lines typed while the page had no connection: they wait in the client's offline queue
  while (pageSaid < N) {
    await say(page, `page ${++pageSaid}`);
    if (killed && (await page.evaluate(() => window.chatClient.state)) !== 'connected') saidAway++;
    if (pageSaid === KILL_AT) {
      await waitFor(() => heard().length >= KILL_AT - 2 && otherSaid >= 5, 10000, 'lines flowing both ways');
      cl.nodes[victim].kill();
      killed = true;
    }
    await sleep(killed && pageSaid < KILL_AT + 10 ? 60 : 40);
  }
  // the take-over: the page resumes on another node (bounded by the wait, not asserted as a time)
  await page.waitForFunction(() => [...document.querySelectorAll('#messages li.info .body')]
    .some((b) => /^resumed/.test(b.textContent) || /^not resumed/.test(b.textContent)), null, { timeout: 30000 });
  await page.waitForFunction(() => window.chatClient.state === 'connected', null, { timeout: 30000 });
  // a few more lines after the resume, then the other client stops
  for (let i = 0; i < 5; i++) {
    await say(page, `page ${++pageSaid}`);
    await sleep(40);
  }
  talking = false;
  await otherTalks;
  await waitLine(page, `other ${otherSaid}`, 30000);
  await waitLine(page, `page ${pageSaid}`, 30000);
  await waitFor(() => heard().length >= pageSaid, 30000, `the other client hears page ${pageSaid}`);
  await other.request({ event: 'detailsView' }); // anything doubled would have arrived by this answer
  await screenshot(page, 'kill-after.png');

  assert.deepEqual((await cl.nodes[victim].exitPromise).signal, 'SIGKILL');
  assert.ok(saidAway >= 1, 'some of the page\'s lines were typed while it was away');
  // what the page shows: every line of the other client once, in order, and its own lines likewise
  assert.deepEqual(await shown(page, 'other'), want('other', otherSaid));
  assert.deepEqual(await shown(page, 'page'), want('page', pageSaid));
  // what the other client got from the page: each line once, in order, from the page's one connection
  assert.deepEqual(heard().map((f) => f.message), want('page', pageSaid));
  assert.deepEqual([...new Set(heard().map((f) => f.from))], [id]);
  // the page resumed once, under its id, on a node that is alive; it was never "not resumed"
  const info = await infoLines(page);
  assert.deepEqual(info.filter((l) => /^resumed/.test(l)), [`resumed as ${id}: the same connection, nothing missed`], info.join('\n'));
  assert.deepEqual(info.filter((l) => /not resumed/.test(l)), []);
  assert.equal(await page.evaluate(() => window.chatClient.id), id);
  assert.equal(await page.evaluate(() => document.getElementById('me-id').textContent), id);
  const nowOn = ownerOf(cl, await page.evaluate(() => window.chatClient.resumeState.route));
  assert.ok(nowOn >= 0 && nowOn !== victim, `the page's connection lives on a live node now (${nowOn}, killed ${victim})`);
  assert.deepEqual(page.consoleLines.filter((l) => /pageerror/.test(l)), []);
});
