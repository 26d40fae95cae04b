'use strict';
// Chromium's XMLHttpRequest on polling GETs that go to sleep (servers.websocket.server.pollSleepMs): the head at once,
// the answer as one chunk later, the connection kept alive for the next request. The chat page stays on polling and
// chats both ways across sleeps (pollDirect off, so that every quiet GET is h2o's and sleeps). With pollDirect on (the
// default) the page's kept connection is read by the node itself after its first answer: the second test.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('../lib/harness');
const { launch } = require('../lib/browser');
const { metric } = require('../lib/metrics');
const { openChat, say, waitLine, waitTransport, waitMembers } = require('./helpers');

test('a polling page in Chromium chats across sleeping GETs', async (t) => {
  const srv = await startServer({ config: { servers: { websocket: { server: { pollSleepMs: 50, pollDirect: false } } } } });
  t.after(() => srv.stop());
  const b = await launch();
  t.after(() => b.close());
  const p1 = await openChat(b, srv.url, { noWebSocket: true, noEventSource: true, noFetch: true });
  const p2 = await openChat(b, srv.url, { noWebSocket: true, noEventSource: true, noFetch: true });
  await waitMembers(p1, [p1.clientId, p2.clientId]);
  await waitMembers(p2, [p1.clientId, p2.clientId]);
  for (let i = 0; i < 3; i++) {
    const before = await metric(srv, 'actiongate_polls_slept_total');
    // both pages' GETs go to sleep before each line
    for (let k = 0; k < 100 && (await metric(srv, 'actiongate_polls_slept_total')) < before + 2; k++)
      await new Promise((r) => setTimeout(r, 50));
    assert.ok((await metric(srv, 'actiongate_polls_slept_total')) >= before + 2, 'both GETs went to sleep');
    const [from, to] = i % 2 === 0 ? [p1, p2] : [p2, p1];
    await say(from, `line ${i} across a sleep`);
    assert.equal(await waitLine(to, `line ${i} across a sleep`), from.clientId.slice(0, 8));
  }
  assert.equal(await p1.evaluate(() => window.chatClient.transport), 'polling');
  assert.equal(await p2.evaluate(() => window.chatClient.transport), 'polling');
  assert.deepEqual(p1.consoleLines.filter((l) => /pageerror/.test(l)), []);
});

test('a polling page in Chromium chats over its kept connections, their GETs read and answered by the node itself', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const b = await launch();
  t.after(() => b.close());
  const p1 = await openChat(b, srv.url, { noWebSocket: true, noEventSource: true, noFetch: true });
  const p2 = await openChat(b, srv.url, { noWebSocket: true, noEventSource: true, noFetch: true });
  await waitMembers(p1, [p1.clientId, p2.clientId]);
  await waitMembers(p2, [p1.clientId, p2.clientId]);
  const before = await metric(srv, 'actiongate_polls_direct_total');
  for (let i = 0; i < 6; i++) {
    const [from, to] = i % 2 === 0 ? [p1, p2] : [p2, p1];
    await say(from, `line ${i} over a direct connection`);
    assert.equal(await waitLine(to, `line ${i} over a direct connection`), from.clientId.slice(0, 8));
  }
  // Each line releases both pages' held GETs and Chromium sends the next ones on its kept connections. The two pages
  // share Chromium's connection pool, so a GET may land on a connection that is direct for the other page's session
  // (it goes back to h2o, and its answer makes the connection direct for its own): most GETs are the node's, not all.
  for (let k = 0; k < 100 && (await metric(srv, 'actiongate_polls_direct_total')) < before + 6; k++)
    await new Promise((r) => setTimeout(r, 50));
  assert.ok((await metric(srv, 'actiongate_polls_direct_total')) >= before + 6, 'GETs answered directly, about one per line');
  assert.ok((await metric(srv, 'actiongate_poll_connections_direct')) >= 1, 'the pages hold direct connections');
  assert.equal(await p1.evaluate(() => window.chatClient.transport), 'polling');
  assert.equal(await p2.evaluate(() => window.chatClient.transport), 'polling');
  assert.deepEqual(p1.consoleLines.filter((l) => /pageerror/.test(l)), []);
  assert.deepEqual(p2.consoleLines.filter((l) => /pageerror/.test(l)), []);
});
