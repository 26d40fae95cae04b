'use strict';
// SIGTERM answers pending actions "the server is shutting down"; --check-config reports FILE:LINE and exits 2.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { startServer, BIN, ROOT } = require('../lib/harness');
const { connect } = require('../lib/wsclient');

test('SIGTERM: pending actions fail with "the server is shutting down"', async () => {
  const srv = await startServer();
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  const other = await connect(`${srv.wsUrl}/primus`);
  await other.welcome();
  await c.request({ event: 'roomAdd', room: 'defaultRoom' });
  for (let i = 1; i <= 3; i++) c.sendRaw(JSON.stringify({ event: 'action', params: { action: 'sleepTest', sleepDuration: 30000 }, messageId: i }));
  other.sendRaw(JSON.stringify({ event: 'action', params: { action: 'sleepTest', sleepDuration: 30000 }, messageId: 'o' }));
  const web = fetch(`${srv.url}/api/sleepTest?sleepDuration=30000`);
  await c.request({ event: 'detailsView' }); // the actions are pending now
  await other.request({ event: 'detailsView' });
  const stopped = srv.stop();
  const replies = [];
  for (let i = 0; i < 3; i++) replies.push(await c.next((f) => f.context === 'response'));
  assert.deepStrictEqual(replies.map((r) => r.messageId).sort(), [1, 2, 3]);
  for (const r of replies) assert.deepStrictEqual(r, { error: 'the server is shutting down', context: 'response', messageId: r.messageId });
  assert.deepStrictEqual(await other.next((f) => f.context === 'response'),
    { error: 'the server is shutting down', context: 'response', messageId: 'o' });
  const res = await web;
  assert.strictEqual(res.status, 503);
  assert.strictEqual((await res.json()).error, 'the server is shutting down');
  await c.closed;
  await other.closed;
  const exit = await stopped;
  assert.strictEqual(exit.code, 0);
});

test('--check-config', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-cfg-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const check = (text) => {
    const file = path.join(dir, 'c.yaml');
    fs.writeFileSync(file, text);
    return { file, ...spawnSync(BIN, ['--check-config', '--config', file], { encoding: 'utf8' }) };
  };
  let r = check('general:\n  welcomeMessage: "hi"\n  bogusKey: 1\n');
  assert.strictEqual(r.status, 2);
  assert.match(r.stderr, new RegExp(`^${r.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: .*bogusKey`));
  r = check('general:\n  simultaneousActions: "many"\n');
  assert.strictEqual(r.status, 2);
  assert.match(r.stderr, /c\.yaml:2: /);
  r = check('servers:\n  web:\n    port: 8080\n  websocket:\n    server:\n      queueMaxBytes: [1]\n');
  assert.strictEqual(r.status, 2);
  assert.match(r.stderr, /c\.yaml:6: /);
  r = check('general:\n  simultaneousActions: 7\n');
  assert.strictEqual(r.status, 0);
  const shipped = spawnSync(BIN, ['--check-config', '--config', path.join(ROOT, 'config', 'actiongate.yaml')], { encoding: 'utf8' });
  assert.strictEqual(shipped.status, 0, shipped.stderr);
});
