'use strict';
// Hostile input found by review: a config file that made the loader read past a buffer, and numbers no integer can
// hold (config values, action params over a socket and over /api). Each gets a clear error; nothing crashes. Under the
// sanitizer build (float-cast-overflow included) the old code aborted on every one of them.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { startServer, BIN } = require('../lib/harness');
const { connect } = require('../lib/wsclient');

const SANITIZER = /(ERROR: AddressSanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer)/;
const failedValidation = 'Input for parameter "sleepDuration" failed validation!';

test('--check-config refuses hostile files with FILE:LINE and status 2', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-hostile-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const check = (text) => {
    const file = path.join(dir, 'c.yaml');
    fs.writeFileSync(file, text);
    const env = { ...process.env, ASAN_OPTIONS: 'detect_leaks=0:exitcode=23' };
    return spawnSync(BIN, ['--check-config', '--config', file], { encoding: 'utf8', env });
  };
  const cases = [
    ['general:\n startingChatRooms: {{}}\n', /c\.yaml:2: general\.startingChatRooms: expected a list of strings/],
    ['general:\n  trustedProxies: {[a]: 1}\n', /c\.yaml:2: general\.trustedProxies: /],
    ['servers:\n  web:\n    port: 1e300\n', /c\.yaml:3: servers\.web\.port: expected a whole number from 0 to 2147483647, got "1e300"/],
    ['servers:\n  web:\n    port: nan\n', /c\.yaml:3: servers\.web\.port: .*"nan"/],
    ['servers:\n  web:\n    maxRequestBody: -1e300\n', /c\.yaml:3: servers\.web\.maxRequestBody: /],
    ['general:\n  serverName: a\n  serverName: b\n', /c\.yaml:3: duplicate key "general\.serverName"/],
    ['general: ' + '['.repeat(50000), /c\.yaml:1: nested deeper than 32 levels/],
  ];
  for (const [text, want] of cases) {
    const r = check(text);
    assert.doesNotMatch(r.stderr, SANITIZER, r.stderr);
    assert.strictEqual(r.status, 2, `${JSON.stringify(text.slice(0, 60))}: status ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, want);
    assert.strictEqual(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('sleepDuration no integer can hold fails validation over a socket and over /api', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  let id = 0;
  for (const raw of ['1e300', '-1e300', '1e19', '-9.3e18', '1.7976931348623157e308']) {
    const messageId = `big${id++}`;
    c.sendRaw(`{"event":"action","params":{"action":"sleepTest","sleepDuration":${raw}},"messageId":"${messageId}"}`);
    const r = await c.next((f) => f && f.messageId === messageId, 5000);
    assert.deepStrictEqual(r, { error: failedValidation, context: 'response', messageId }, raw);
  }
  // a fraction inside the range is still truncated, as parseInt does
  c.sendRaw('{"event":"action","params":{"action":"sleepTest","sleepDuration":2.9},"messageId":"frac"}');
  const r = await c.next((f) => f && f.messageId === 'frac', 5000);
  assert.strictEqual(r.sleepDuration, 2);

  const res = await fetch(`${srv.url}/api/sleepTest`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"sleepDuration":1e300}',
  });
  assert.strictEqual(res.status, 422);
  assert.strictEqual((await res.json()).error, failedValidation);
  // the node is still answering
  const ok = await c.request({ event: 'action', params: { action: 'randomNumber' }, messageId: 'after' });
  assert.ok('randomNumber' in ok);
});

// Found by spec/fuzz/fuzz_http.c: forwarded ports were read with atoi, so digits past an int's range overflowed into
// any value, negative ones included. A forwarded port that is not 1..65535 is ignored: the socket's port stays.
test('forwarded ports out of range are ignored', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const cases = [
    { 'x-forwarded-port': '5000000000' },
    { 'x-forwarded-port': '99999999999999999999999' },
    { 'x-forwarded-port': '70000' },
    { 'x-forwarded-for': '10.1.2.3:4294967297' },
    { 'x-real-ip': '[2001:db8::1]:-5' },
  ];
  for (const headers of cases) {
    const c = await connect(`${srv.wsUrl}/primus`, { headers });
    await c.welcome();
    const d = (await c.request({ event: 'detailsView' })).data;
    assert.strictEqual(d.remotePort, c.ws._socket.localPort, JSON.stringify(headers));
    c.close();
  }
  // a forwarded port in range is still believed from a trusted proxy
  const c = await connect(`${srv.wsUrl}/primus`, { headers: { 'x-forwarded-port': '8443', 'x-forwarded-for': '10.1.2.3' } });
  await c.welcome();
  const d = (await c.request({ event: 'detailsView' })).data;
  assert.strictEqual(d.remoteIP, '10.1.2.3');
  assert.strictEqual(d.remotePort, 8443);
  c.close();
});

test('long sleeps a client leaves behind are dropped with its connection', async (t) => {
  // Before: every sleepTest of a closed connection kept its request, its timer and the connection until it ran out,
  // so a client could park any number of hour-long sleeps by reconnecting.
  const srv = await startServer();
  t.after(() => srv.stop());
  const inProgress = async () => {
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    const m = /^actiongate_actions_in_progress (\d+)$/m.exec(text);
    assert.ok(m, 'the gauge is exported');
    return Number(m[1]);
  };
  for (let round = 0; round < 3; round++) {
    const c = await connect(`${srv.wsUrl}/primus`);
    await c.welcome();
    for (let i = 0; i < 5; i++)
      c.sendRaw(`{"event":"action","params":{"action":"sleepTest","sleepDuration":3600000},"messageId":"s${i}"}`);
    let n = 0;
    for (let i = 0; i < 50 && (n = await inProgress()) < 5; i++) await new Promise((r) => setTimeout(r, 50));
    assert.strictEqual(n, 5, 'five sleeps in progress while the client is there');
    await c.close();
    for (let i = 0; i < 50 && (n = await inProgress()) !== 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.strictEqual(n, 0, `round ${round}: the sleeps went with the connection`);
  }
  // a sleep of a connection that stays is still answered
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  const r = await c.request({ event: 'action', params: { action: 'sleepTest', sleepDuration: 20 } });
  assert.strictEqual(r.sleepDuration, 20);
});
