'use strict';
// The chat demo survives a graceful restart of its node (README "Resume", "Graceful restart"): two pages chat with
// numbered lines (one over WebSocket, one without WebSocket, on SSE), the node is stopped with SIGTERM in the middle of
// the conversation and started again on the same port with the same configuration and general.resumeStateFile; both
// pages show that they resumed, and every line once, in one order, the lines said before, around and after the restart.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Server } = require('../lib/harness');
const { launch, screenshot } = require('../lib/browser');
const { openChat, say, waitLine, waitTransport } = require('./helpers');

// what the page shows when it resumed, naming the connection it kept
const RESUMED = (id) => `resumed as ${id}: the same connection, nothing missed`;

// The page's chat lines of this conversation, in the order it shows them.
function numbered(page) {
  return page.evaluate(() => {
    const out = [];
    for (const li of document.querySelectorAll('#messages li')) {
      const body = li.querySelector('.body');
      if (body && /^line \d+ from (one|two)$/.test(body.textContent)) out.push(body.textContent);
    }
    return out;
  });
}

function lineCount(page, text) {
  return page.evaluate((t) => [...document.querySelectorAll('#messages li .body')].filter((b) => b.textContent === t).length, text);
}

test('two chat pages keep every line, once and in order, across a graceful restart of their node', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-browser-restart-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const config = { redis: { url: '' }, general: { resumeStateFile: path.join(dir, 'resume-state.json'), logLevel: 'info' } };
  let srv = await new Server({ config }).start();
  t.after(() => srv.stop());
  const port = srv.port;
  const b = await launch();
  t.after(() => b.close());
  const one = await openChat(b, srv.url);
  const two = await openChat(b, srv.url, { noWebSocket: true });
  await waitTransport(one, 'websocket');
  await waitTransport(two, 'sse');
  const ids = [one.clientId, two.clientId];

  let n = 0;
  const said = [];
  const line = async (page, who, wait = true) => {
    const text = `line ${++n} from ${who}`;
    said.push(text);
    await say(page, text);
    if (wait) for (const p of [one, two]) await waitLine(p, text);
  };
  for (let i = 0; i < 3; i++) {
    await line(one, 'one');
    await line(two, 'two');
  }
  // mid-conversation: two lines on their way when the node stops
  await line(one, 'one', false);
  await line(two, 'two', false);
  await srv.stop();
  await screenshot(one, 'restart-down.png');
  srv = await new Server({ config, port }).start();
  for (const p of [one, two]) {
    // an info line has no sender: waited for by its count (waitLine returns who said a line)
    await p.waitForFunction((t) => [...document.querySelectorAll('#messages li .body')].some((b) => b.textContent === t), RESUMED(p.clientId),
      { timeout: 20000 });
    await p.waitForFunction(() => window.chatClient.state === 'connected', null, { timeout: 20000 });
  }
  for (let i = 0; i < 3; i++) {
    await line(two, 'two');
    await line(one, 'one');
  }
  await screenshot(two, 'restart-after.png');

  // the same connections, and nothing twice
  assert.deepEqual([await one.evaluate(() => window.chatClient.id), await two.evaluate(() => window.chatClient.id)], ids);
  const seen = [await numbered(one), await numbered(two)];
  assert.deepEqual(seen[1], seen[0], 'both pages show the room in one order');
  assert.deepEqual([...seen[0]].sort(), [...said].sort(), 'every line, once');
  const num = (s) => Number(s.split(' ')[1]);
  for (const who of ['one', 'two']) {
    const mine = seen[0].filter((s) => s.endsWith(who)).map(num);
    assert.deepEqual(mine, [...mine].sort((x, y) => x - y), `${who}'s lines in the order said`);
  }
  for (const p of [one, two]) {
    assert.equal(await lineCount(p, RESUMED(p.clientId)), 1, 'the page shows that it resumed, under its id');
    assert.equal(await p.evaluate(() => document.body.textContent.indexOf('not resumed')), -1);
    assert.deepEqual(p.consoleLines.filter((l) => /pageerror/.test(l)), []);
  }
});
