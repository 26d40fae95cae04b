'use strict';
// The rendered client in a real browser, beyond chat: action() over HTTP before connect(), the fingerprint link with
// the sessionID cookie, and a server restart mid-session (same port): reconnect, rooms re-joined, chat goes on.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('../lib/harness');
const { launch, screenshot } = require('../lib/browser');
const { openChat, say, waitLine, waitMembers } = require('./helpers');

const CONFIG = { servers: { websocket: { client: { reconnectMin: 100, reconnectMax: 800 } } } };
let b;

test.before(async () => {
  b = await launch();
});
test.after(async () => {
  if (b) await b.close();
});

for (const file of ['ActionheroWebsocketClient.js', 'ActionheroWebsocketClient.min.js']) {
  test(`${file}: action() before connect() goes over HTTP; the socket's fingerprint is the sessionID cookie it set`, async () => {
    const srv = await startServer({ config: CONFIG });
    try {
      const page = await b.newPage();
      const requests = [];
      page.on('request', (r) => requests.push(`${r.method()} ${r.url()}`));
      await page.goto(`${srv.url}/`);
      await page.addScriptTag({ url: `/public/javascript/${file}` });
      const before = await page.evaluate(() => new Promise((resolve) => {
        window.client = new window.ActionheroWebsocketClient();
        window.client.action('randomNumber', {}, (r) => resolve({ r, state: window.client.state, cookie: document.cookie }));
      }));
      assert.equal(before.state, 'disconnected');
      assert.equal(typeof before.r.randomNumber, 'number');
      assert.ok(requests.includes(`POST ${srv.url}/api?action=randomNumber`), requests.join('\n'));
      const cookie = /(?:^|; )sessionID=([0-9a-f]{40})/.exec(before.cookie);
      assert.ok(cookie, `sessionID cookie: ${before.cookie}`);
      const after = await page.evaluate(() => new Promise((resolve) => {
        window.client.connect((err, details) => {
          window.client.action('randomNumber', {}, (r) => resolve({ err, details, r, fp: window.client.fingerprint }));
        });
      }));
      assert.equal(after.err, null);
      assert.equal(after.details.data.fingerprint, cookie[1]);
      assert.equal(after.fp, cookie[1]);
      assert.notEqual(after.details.data.id, cookie[1]);
      assert.equal(typeof after.r.randomNumber, 'number');
      assert.equal(after.r.context, 'response');
      // the socket URL carried the cookie; the connected action went over the socket, not /api
      assert.ok(requests.some((u) => u.includes('/primus/?EIO=4') && u.includes(`sessionID=${cookie[1]}`)), requests.join('\n'));
      assert.equal(requests.filter((u) => u.includes('/api?')).length, 1);
      await page.evaluate(() => window.client.disconnect());
      assert.equal(await page.evaluate(() => window.client.state), 'disconnected');
      await page.context().close();
    } finally {
      await srv.stop();
    }
  });
}

async function restartCase(signal) {
  let srv = await startServer({ config: CONFIG });
  const port = srv.port;
  try {
    const p1 = await openChat(b, srv.url);
    const p2 = await openChat(b, srv.url, { noWebSocket: true, min: true });
    for (const p of [p1, p2]) {
      await p.evaluate(() => {
        window.evlog = [];
        ['connected', 'disconnected', 'reconnecting', 'reconnect'].forEach((n) => {
          window.chatClient.on(n, () => window.evlog.push(n + ':' + window.chatClient.state));
        });
      });
    }
    await say(p1, 'before restart');
    await waitLine(p2, 'before restart');

    await srv.stop(signal);
    for (const p of [p1, p2]) {
      await p.waitForFunction(() => window.chatClient.state === 'reconnecting', null, { timeout: 15000 });
      assert.equal(await p.textContent('#state'), 'reconnecting');
    }
    srv = await startServer({ port, config: CONFIG });

    for (const p of [p1, p2]) {
      await p.waitForFunction((old) => window.chatClient.state === 'connected' && window.chatClient.id !== old, p.clientId,
        { timeout: 20000 });
      p.clientId = await p.evaluate(() => window.chatClient.id);
      assert.deepEqual(await p.evaluate(() => window.chatClient.rooms), ['defaultRoom']);
      const log = await p.evaluate(() => window.evlog);
      assert.equal(log[0], 'disconnected:disconnected');
      assert.ok(log.includes('reconnecting:reconnecting') && log.includes('reconnect:reconnecting'), log.join());
      assert.equal(log[log.length - 1], 'connected:connected');
      assert.equal(await p.textContent('#state'), 'connected');
    }
    // the server knows them as members again (the rooms were re-joined, not just remembered by the client)
    await waitMembers(p1, [p1.clientId, p2.clientId]);
    await say(p1, 'after restart');
    assert.equal(await waitLine(p2, 'after restart'), p1.clientId.slice(0, 8));
    await say(p2, 'after restart, too');
    assert.equal(await waitLine(p1, 'after restart, too'), p2.clientId.slice(0, 8));
    await p2.evaluate(() => window.chatStopMembers());
    await screenshot(p2, `chat-after-restart-${signal}.png`);
    await p1.context().close();
    await p2.context().close();
  } finally {
    await srv.stop();
  }
}

test('server killed and restarted on the same port: clients reconnect, are back in their rooms, and chat', () =>
  restartCase('SIGKILL'));

// destroyClientsOnShutdown is false by default: the server goes away without an intentional close, so clients come back.
test('server stopped gracefully and restarted on the same port: the same', () => restartCase('SIGTERM'));

test('graceful stop with destroyClientsOnShutdown: the close is intentional, clients stay disconnected', async () => {
  const config = { servers: { websocket: { destroyClientsOnShutdown: true, client: { reconnectMin: 100, reconnectMax: 800 } } } };
  const srv = await startServer({ config });
  const port = srv.port;
  const pages = [await openChat(b, srv.url), await openChat(b, srv.url, { noWebSocket: true, min: true })];
  let next = null;
  try {
    for (const p of pages) {
      await p.evaluate(() => {
        window.evlog = [];
        ['disconnected', 'reconnecting', 'reconnect'].forEach((n) => window.chatClient.on(n, () => window.evlog.push(n)));
      });
    }
    await srv.stop();
    for (const p of pages) {
      await p.waitForFunction(() => window.evlog.length > 0, null, { timeout: 15000 });
    }
    next = await startServer({ port, config });
    await pages[0].waitForTimeout(1500); // several back-off periods: a reconnecting client would have come back
    for (const p of pages) {
      assert.deepEqual(await p.evaluate(() => window.evlog), ['disconnected']);
      assert.equal(await p.evaluate(() => window.chatClient.state), 'disconnected');
      assert.equal(await p.textContent('#state'), 'disconnected');
    }
  } finally {
    for (const p of pages) await p.context().close();
    if (next) await next.stop();
  }
});
