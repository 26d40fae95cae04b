'use strict';
// An upstream that is down, refuses, hangs, answers non-JSON, 5xx or too much: the call gets a clear error within the
// timeout, the connection stays, other requests are unaffected, the bounds hold, and each state change is logged once.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startServer, freePort } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { startBadUpstream, postJson, logLines, sleep } = require('./lib');

const ERR = {
  unavailable: 'the upstream server is unavailable',
  timeout: 'the upstream server did not answer in time',
  bad: 'the upstream server sent an invalid response',
  busy: 'the upstream server is busy, try again later',
};

async function client(srv) {
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  return c;
}

const call = (c, action, params = {}, messageId) => c.request({ event: 'action', params: { action, ...params }, ...(messageId ? { messageId } : {}) }, 10000);

// The connection is still usable: a local action and a verb answer.
async function stillServes(c) {
  const r = await call(c, 'randomNumber');
  assert.equal(typeof r.randomNumber, 'number');
  assert.equal((await c.request({ event: 'detailsView' })).status, 'OK');
}

test('an upstream that refuses connections: clear error, the connection stays, logged once; back up: logged once', async () => {
  const port = await freePort();
  const srv = await startServer({ config: { upstream: { urls: [`http://127.0.0.1:${port}/api`] } } });
  try {
    const c = await client(srv);
    for (let i = 0; i < 5; i++) assert.equal((await call(c, 'ok')).error, ERR.unavailable);
    await stillServes(c);
    const doc = await c.request({ event: 'documentation' });
    assert.equal(doc.error, `Error: ${ERR.unavailable}`);
    const web = await postJson(srv.url, 'ok', {});
    assert.equal(web.status, 502);
    assert.equal(web.body.error, ERR.unavailable);
    assert.equal(await logLines(srv, /upstream.*is down/, 1), 1, srv.stderr);

    // the app comes up on that port: after the retry pause calls reach it again
    const up = await startBadUpstream(port);
    try {
      let reply;
      for (let i = 0; i < 60; i++) {
        reply = await call(c, 'ok', { n: i });
        if (!reply.error) break;
        await sleep(100);
      }
      assert.equal(reply.ok, true);
      assert.equal(await logLines(srv, /upstream.*is back up/, 1), 1, srv.stderr);
      assert.equal(await logLines(srv, /upstream.*is down/, 1), 1, srv.stderr);
    } finally {
      await c.close();
      await up.close();
    }
  } finally {
    await srv.stop();
  }
});

test('bad answers: non-JSON, a JSON array, 5xx without an error, too large — each a clear error; a 5xx with an error text is the app\'s', async () => {
  const bad = await startBadUpstream();
  const srv = await startServer({ config: { upstream: { urls: [bad.url], maxResponseBytes: 65536 } } });
  try {
    const c = await client(srv);
    assert.deepEqual(await call(c, 'html', {}, 'h'), { error: ERR.bad, context: 'response', messageId: 'h' });
    assert.equal((await call(c, 'array')).error, ERR.bad);
    assert.equal((await call(c, 'e503')).error, ERR.bad);
    assert.equal((await call(c, 'big')).error, ERR.bad);
    assert.equal((await call(c, 'e500json')).error, 'the app failed');
    assert.equal((await call(c, 'ok')).ok, true);
    await stillServes(c);
    const web = await postJson(srv.url, 'html', {});
    assert.equal(web.status, 502);
    assert.equal((await postJson(srv.url, 'e500json', {})).status, 500);
    // one line when the base started failing, one when it answered properly again, one more for the next failure
    assert.equal(await logLines(srv, /upstream.*invalid responses/, 2), 2, srv.stderr);
    await c.close();
  } finally {
    await srv.stop();
    await bad.close();
  }
});

test('a slow upstream: the call fails at the timeout, other requests are unaffected meanwhile', async () => {
  const bad = await startBadUpstream();
  const srv = await startServer({ config: { upstream: { urls: [bad.url], timeout: 1500 } } });
  try {
    const c = await client(srv);
    const hung = call(c, 'hang', {}, 'slow-one');
    // while it hangs, the same connection gets its other answers
    assert.equal((await call(c, 'ok')).ok, true);
    await stillServes(c);
    assert.deepEqual(await hung, { error: ERR.timeout, context: 'response', messageId: 'slow-one' });
    const web = await postJson(srv.url, 'hang', {});
    assert.equal(web.status, 504);
    assert.equal(web.body.error, ERR.timeout);
    assert.equal(await logLines(srv, /upstream.*no answer in time/, 1), 1, srv.stderr);
    await c.close();
  } finally {
    await srv.stop();
    await bad.close();
  }
});

test('upstream.maxInFlight bounds the calls in flight per node: over it, a clear error at once', async () => {
  const bad = await startBadUpstream();
  const srv = await startServer({ config: { upstream: { urls: [bad.url], maxInFlight: 2, timeout: 2000 } } });
  try {
    const a = await client(srv);
    const b = await client(srv);
    const held = [call(a, 'hang', {}, 1), call(b, 'hang', {}, 2)];
    // wait until both reached the upstream, then a third call on either connection is refused at once
    for (let i = 0; i < 100 && bad.stats.inFlight < 2; i++) await sleep(20);
    assert.equal(bad.stats.inFlight, 2);
    assert.deepEqual(await call(a, 'ok', {}, 3), { error: ERR.busy, context: 'response', messageId: 3 });
    assert.equal((await postJson(srv.url, 'ok', {})).status, 503);
    for (const r of await Promise.all(held)) assert.equal(r.error, ERR.timeout);
    assert.equal(bad.stats.maxInFlight, 2);
    // once they ended, calls go through again
    assert.equal((await call(b, 'ok')).ok, true);
    await a.close();
    await b.close();
  } finally {
    await srv.stop();
    await bad.close();
  }
});

test('keep-alive: calls reuse idle connections to the app; keepAlive 0 asks for one connection per call', async () => {
  const bad = await startBadUpstream();
  for (const [keepAlive, connections] of [[2000, 1], [0, 5]]) {
    bad.stats.connections = 0;
    const srv = await startServer({ config: { upstream: { urls: [bad.url], keepAlive } } });
    try {
      const c = await client(srv);
      for (let i = 0; i < 5; i++) assert.equal((await call(c, 'ok', { i })).ok, true);
      assert.equal(bad.stats.connections, connections, `keepAlive ${keepAlive}`);
      assert.equal(bad.stats.seen.at(-1).headers.connection, keepAlive ? undefined : 'close');
      await c.close();
    } finally {
      await srv.stop();
    }
  }
  await bad.close();
});

test('params over upstream.maxRequestBytes are not sent: a clear error', async () => {
  const bad = await startBadUpstream();
  const srv = await startServer({ config: { upstream: { urls: [bad.url], maxRequestBytes: 1000 } } });
  try {
    const c = await client(srv);
    assert.deepEqual(await call(c, 'ok', { blob: 'x'.repeat(2000) }, 'big'),
      { error: 'the request is too large for the upstream server', context: 'response', messageId: 'big' });
    assert.equal(bad.stats.requests, 0);
    const web = await postJson(srv.url, 'ok', { blob: 'x'.repeat(2000) });
    assert.equal(web.status, 413);
    assert.equal((await call(c, 'ok', { small: 1 })).ok, true);
    await c.close();
  } finally {
    await srv.stop();
    await bad.close();
  }
});

test('several base URLs: round robin, and a refusing one fails over to the next', async () => {
  const one = await startBadUpstream();
  const two = await startBadUpstream();
  const dead = await freePort();
  const srv = await startServer({ config: { upstream: { urls: [`http://127.0.0.1:${dead}/api`, one.url, two.url] } } });
  try {
    const c = await client(srv);
    for (let i = 0; i < 10; i++) assert.equal((await call(c, 'ok', { i })).ok, true, `call ${i}`);
    assert.ok(one.stats.requests >= 3 && two.stats.requests >= 3, `${one.stats.requests} / ${two.stats.requests}`);
    assert.equal(one.stats.requests + two.stats.requests, 10);
    assert.equal(await logLines(srv, /upstream.*is down/, 1), 1, srv.stderr);
    await c.close();
  } finally {
    await srv.stop();
    await one.close();
    await two.close();
  }
});

test('what the app receives: the params as sent (minus a JSONP callback), the cookie and X-Forwarded-For', async () => {
  const bad = await startBadUpstream();
  const srv = await startServer({ config: { upstream: { urls: [bad.url], actions: ['ok', 'o*'] } } });
  try {
    const c = await connect(`${srv.wsUrl}/primus?sessionID=abc123`);
    await c.welcome();
    const r = await call(c, 'ok', { a: 1, nested: { b: [2] }, callback: 'jsonp' });
    assert.deepEqual(r.got, { action: 'ok', a: 1, nested: { b: [2] } });
    const seen = bad.stats.seen.at(-1);
    assert.equal(seen.url, '/api/ok');
    assert.equal(seen.headers.cookie, 'sessionID=abc123');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.match(seen.headers['content-type'], /^application\/json/);
    // actions that match no pattern are not sent: unknown here
    assert.equal((await call(c, 'hang')).error, 'unknown action or invalid apiVersion');
    // a name that cannot go in a URL path is unknown without asking the app
    const before = bad.stats.requests;
    assert.equal((await call(c, 'o/../x')).error, 'unknown action or invalid apiVersion');
    assert.equal(bad.stats.requests, before);
    await c.close();
  } finally {
    await srv.stop();
    await bad.close();
  }
});

test('shutdown with calls in flight: they are answered "the server is shutting down" and the node exits cleanly', async () => {
  const bad = await startBadUpstream();
  try {
    const srv = await startServer({ config: { upstream: { urls: [bad.url], timeout: 5000 } } });
    const c = await client(srv);
    const hung = call(c, 'hang', {}, 'h');
    for (let i = 0; i < 100 && bad.stats.inFlight < 1; i++) await sleep(20);
    await srv.stop();
    assert.deepEqual(await hung, { error: 'the server is shutting down', context: 'response', messageId: 'h' });
  } finally {
    await bad.close();
  }
});

test('configuration: a bad upstream URL is refused with its line', async () => {
  const { execFileSync } = require('node:child_process');
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const { BIN } = require('../lib/harness');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-up-'));
  const file = path.join(dir, 'bad.yaml');
  for (const [yaml, want] of [
    ['upstream:\n  urls: ["https://127.0.0.1/api"]\n', /upstream.urls: not http:\/\/host\[:port\]\[\/path\]: https/],
    ['upstream:\n  urls: "http://h:99999"\n', /upstream.urls/],
    ['upstream:\n  timeout: 0\n', /upstream.timeout must be at least 1 ms/],
    ['upstream:\n  maxInFlight: 0\n', /upstream.maxInFlight must be at least 1/],
    ['upstream:\n  bogus: 1\n', /unknown key "upstream.bogus"/],
  ]) {
    fs.writeFileSync(file, yaml);
    let err;
    try {
      execFileSync(BIN, ['--check-config', '--config', file], { stdio: 'pipe' });
    } catch (e) {
      err = e;
    }
    assert.ok(err, yaml);
    assert.equal(err.status, 2);
    assert.match(err.stderr.toString(), want);
  }
  fs.writeFileSync(file, 'upstream:\n  urls: ["http://127.0.0.1:8080/api", "http://[::1]:8081"]\n  actions: ["user*"]\n');
  execFileSync(BIN, ['--check-config', '--config', file], { stdio: 'pipe' });
  fs.rmSync(dir, { recursive: true, force: true });
});
