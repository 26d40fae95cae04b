'use strict';
// The chat demo in a real browser (chromium), on each transport: native WebSocket, polling (no WebSocket, no
// EventSource), SSE (no WebSocket), and behind a proxy that strips Upgrade. Pages load the .js or the .min.js client.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('../lib/harness');
const { launch, screenshot } = require('../lib/browser');
const { WELCOME, openChat, say, waitLine, waitTransport, waitMembers } = require('./helpers');

let srv;
let b;

test.before(async () => {
  srv = await startServer();
  b = await launch();
});
test.after(async () => {
  if (b) await b.close();
  if (srv) await srv.stop();
});

async function chatBetween(p1, p2, tag) {
  await waitMembers(p1, [p1.clientId, p2.clientId]);
  await waitMembers(p2, [p1.clientId, p2.clientId]);
  await say(p1, `hello from one (${tag})`);
  assert.equal(await waitLine(p2, `hello from one (${tag})`), p1.clientId.slice(0, 8));
  assert.equal(await waitLine(p1, `hello from one (${tag})`), p1.clientId.slice(0, 8));
  await say(p2, `hi from two (${tag})`);
  assert.equal(await waitLine(p1, `hi from two (${tag})`), p2.clientId.slice(0, 8));
}

test('two pages chat over WebSocket; the page shows the welcome, members and messages', async () => {
  const p1 = await openChat(b, srv.url);
  const p2 = await openChat(b, srv.url, { min: true });
  await waitTransport(p1, 'websocket');
  await waitTransport(p2, 'websocket');
  assert.equal(await p1.textContent('#welcome'), WELCOME);
  assert.equal(await p2.evaluate(() => window.chatClient.welcomeMessage), WELCOME);
  await chatBetween(p1, p2, 'websocket');
  assert.equal(await p1.textContent('#me-id'), p1.clientId);
  assert.equal(await p1.textContent('#state'), 'connected');
  await p1.evaluate(() => window.chatStopMembers());
  await screenshot(p1, 'chat.png');
  assert.deepEqual(p1.consoleLines.filter((l) => /pageerror/.test(l)), []);
  await p1.context().close();
  await p2.context().close();
});

test('without WebSocket, EventSource and fetch the page stays on polling (XMLHttpRequest) and chats', async () => {
  const p1 = await openChat(b, srv.url, { noWebSocket: true, noEventSource: true, noFetch: true });
  const p2 = await openChat(b, srv.url, { min: true });
  await waitTransport(p2, 'websocket');
  await chatBetween(p1, p2, 'polling');
  assert.equal(await p1.evaluate(() => window.chatClient.transport), 'polling');
  assert.equal(await p1.textContent('#transport'), 'polling');
  await p1.context().close();
  await p2.context().close();
});

test('without WebSocket but with EventSource the page upgrades to SSE and chats', async () => {
  const p1 = await openChat(b, srv.url, { noWebSocket: true });
  const p2 = await openChat(b, srv.url, { noWebSocket: true, min: true });
  await waitTransport(p1, 'sse');
  await waitTransport(p2, 'sse');
  await chatBetween(p1, p2, 'sse');
  // LF and CR inside a payload take the two special SSE encodings (data: lines; event "j")
  await p2.evaluate(() => {
    window.heard = [];
    window.chatClient.on('say', (m) => window.heard.push(m.message));
  });
  for (const text of ['two\nlines', 'carriage\r\nreturn', 'caf\u00e9 \u2603 \ud83d\ude00']) {
    await p1.evaluate((t) => window.chatClient.say('defaultRoom', t), text);
    await p2.waitForFunction((t) => window.heard.indexOf(t) !== -1, text, { timeout: 10000 });
  }
  await p1.context().close();
  await p2.context().close();
});

let stripProxy = null;
try {
  ({ startStripProxy: stripProxy } = require('../lib/strip_upgrade_proxy'));
} catch (e) {
  stripProxy = null;
}

test('behind a proxy that strips Upgrade the client falls back (SSE) and chats', { skip: stripProxy ? false : 'spec/lib/strip_upgrade_proxy.js is not here' }, async () => {
  const proxy = await stripProxy(srv.port);
  try {
    const base = `http://127.0.0.1:${proxy.port}`;
    const p1 = await openChat(b, base);
    const p2 = await openChat(b, srv.url, { min: true });
    await waitTransport(p1, 'sse');
    await chatBetween(p1, p2, 'proxy');
    assert.equal(await p1.evaluate(() => window.chatClient.transport), 'sse');
    await p1.context().close();
    await p2.context().close();
  } finally {
    await proxy.close();
  }
});

// rememberUpgrade (on by default): after an upgrade worked, the next page load opens on that transport directly.
for (const [name, opts] of [['websocket', {}], ['sse', { noWebSocket: true }]]) {
  test(`the upgrade that worked (${name}) opens the next session directly`, async () => {
    const page = await openChat(b, srv.url, opts);
    await waitTransport(page, name);
    const requests = [];
    page.on('request', (r) => {
      if (r.url().includes('/primus/')) requests.push(r.url());
    });
    page.on('websocket', (ws) => requests.push(ws.url()));
    await page.reload();
    await page.waitForFunction(() => window.chatClient && window.chatClient.state === 'connected', null, { timeout: 15000 });
    assert.equal(await page.evaluate(() => window.chatClient.transport), name);
    assert.match(requests[0], new RegExp(`/primus/\\?EIO=4&transport=${name}&t=|/primus/\\?EIO=4&transport=${name}$`));
    assert.equal(requests.filter((u) => u.includes('transport=polling')).length, 0, requests.join('\n'));
    await page.context().close();
  });
}

test('websocketFirst: the session opens on WebSocket, no polling handshake; through the stripping proxy it falls back', async () => {
  const first = await startServer({ config: { servers: { websocket: { client: { websocketFirst: true, rememberUpgrade: false } } } } });
  const proxy = stripProxy ? await stripProxy(first.port) : null;
  try {
    const page = await b.newPage();
    const requests = [];
    page.on('request', (r) => r.url().includes('/primus/') && requests.push(r.url()));
    page.on('websocket', (ws) => requests.push(ws.url()));
    await page.goto(`${first.url}/public/chat.html`);
    await page.waitForFunction(() => window.chatClient && window.chatClient.state === 'connected', null, { timeout: 15000 });
    assert.equal(await page.evaluate(() => window.chatClient.transport), 'websocket');
    assert.match(requests[0], /^ws:\/\/127\.0\.0\.1:\d+\/primus\/\?EIO=4&transport=websocket$/);
    assert.equal(requests.filter((u) => u.includes('transport=polling')).length, 0, requests.join('\n'));
    await page.context().close();
    if (proxy) {
      const p2 = await openChat(b, `http://127.0.0.1:${proxy.port}`);
      await waitTransport(p2, 'sse');
      await p2.context().close();
    }
  } finally {
    if (proxy) await proxy.close();
    await first.stop();
  }
});
