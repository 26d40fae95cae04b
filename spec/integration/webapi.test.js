'use strict';
// /api: routing, params from query and bodies, metadata, status codes, the sessionID cookie, CORS (PROTOCOL.md §6).
const test = require('node:test');
const assert = require('node:assert');
const { startServer } = require('../lib/harness');
const { connect } = require('../lib/wsclient');

const COOKIE = /^sessionID=([0-9a-f]{40});path=\/;expires=(\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT);SameSite=Lax;$/;

test('web api', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());

  await t.test('GET /api/randomNumber: result, metadata, headers, cookie', async () => {
    const res = await fetch(`${srv.url}/api/randomNumber`);
    assert.strictEqual(res.status, 200);
    assert.strictEqual(res.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.strictEqual(res.headers.get('access-control-allow-origin'), '*');
    assert.strictEqual(res.headers.get('access-control-allow-methods'), 'HEAD, GET, POST, PUT, PATCH, DELETE, OPTIONS, TRACE');
    assert.strictEqual(res.headers.get('access-control-allow-headers'), 'Content-Type');
    const m = COOKIE.exec(res.headers.get('set-cookie'));
    assert.ok(m, res.headers.get('set-cookie'));
    const expires = Date.parse(m[2]);
    assert.ok(Math.abs(expires - (Date.now() + 3600000)) < 5000);
    const body = await res.json();
    assert.deepStrictEqual(Object.keys(body), ['randomNumber', 'stringRandomNumber', 'serverInformation', 'requesterInformation']);
    assert.strictEqual(body.stringRandomNumber, `Your random number is ${body.randomNumber}`);
    assert.deepStrictEqual(Object.keys(body.serverInformation), ['serverName', 'apiVersion', 'requestDuration', 'currentTime']);
    assert.strictEqual(body.serverInformation.serverName, 'actiongate');
    const ri = body.requesterInformation;
    assert.deepStrictEqual(Object.keys(ri), ['id', 'fingerprint', 'messageId', 'remoteIP', 'receivedParams']);
    assert.strictEqual(ri.fingerprint, m[1]);
    assert.strictEqual(ri.id, `${m[1]}-${ri.messageId}`);
    assert.strictEqual(ri.remoteIP, '127.0.0.1');
    assert.deepStrictEqual(ri.receivedParams, { action: 'randomNumber' });
  });

  await t.test('the cookie is the fingerprint, and links to the socket', async () => {
    const first = await fetch(`${srv.url}/api/status`);
    const fp = COOKIE.exec(first.headers.get('set-cookie'))[1];
    const again = await fetch(`${srv.url}/api/status`, { headers: { cookie: `other=1; sessionID=${fp}` } });
    assert.strictEqual(again.headers.get('set-cookie'), null);
    assert.strictEqual((await again.json()).requesterInformation.fingerprint, fp);
    const c = await connect(`${srv.wsUrl}/primus?sessionID=${fp}`);
    const d = await c.request({ event: 'detailsView' });
    assert.strictEqual(d.data.fingerprint, fp);
    assert.notStrictEqual(d.data.id, fp);
    await c.close();
  });

  await t.test('params from the query, a JSON body, a form body; scrubbed', async () => {
    let body = await (await fetch(`${srv.url}/api/cacheTest?key=abcd&value=efgh&junk=1`)).json();
    assert.strictEqual(body.cacheTestResults.loadResp.value, 'efgh');
    assert.deepStrictEqual(body.requesterInformation.receivedParams, { key: 'abcd', value: 'efgh', action: 'cacheTest' });
    body = await (await fetch(`${srv.url}/api/cacheTest?key=abcd`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: 'json!' }),
    })).json();
    assert.strictEqual(body.cacheTestResults.loadResp.value, 'json!');
    body = await (await fetch(`${srv.url}/api/cacheTest`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'key=form+key&value=v%C3%A9l',
    })).json();
    assert.strictEqual(body.cacheTestResults.loadResp.key, 'cacheTest_form key');
    assert.strictEqual(body.cacheTestResults.loadResp.value, 'vél');
    body = await (await fetch(`${srv.url}/api/echo`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1,2,3]',
    })).json();
    assert.deepStrictEqual(body.payload, [1, 2, 3]);
  });

  await t.test('query routing: ?action= and a body action', async () => {
    let res = await fetch(`${srv.url}/api?action=randomNumber`);
    assert.strictEqual(res.status, 200);
    assert.ok('randomNumber' in (await res.json()));
    res = await fetch(`${srv.url}/api?action=sleepTest`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ action: 'sleepTest', sleepDuration: 10 }),
    });
    const body = await res.json();
    assert.strictEqual(body.sleepDuration, 10);
    res = await fetch(`${srv.url}/api`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ action: 'echo', payload: 'x' }),
    });
    assert.strictEqual((await res.json()).payload, 'x');
  });

  await t.test('404 unknown action, 422 missing or invalid params', async () => {
    let res = await fetch(`${srv.url}/api/nope`);
    assert.strictEqual(res.status, 404);
    assert.strictEqual((await res.json()).error, 'unknown action or invalid apiVersion');
    res = await fetch(`${srv.url}/api`);
    assert.strictEqual(res.status, 404);
    res = await fetch(`${srv.url}/api/cacheTest?key=abc`);
    assert.strictEqual(res.status, 422);
    assert.strictEqual((await res.json()).error, 'value is a required parameter for this action');
    res = await fetch(`${srv.url}/api/cacheTest?key=ab&value=abc`);
    assert.strictEqual(res.status, 422);
    assert.strictEqual((await res.json()).error, 'inputs should be at least 3 letters long');
    res = await fetch(`${srv.url}/api/sleepTest?sleepDuration=-5`);
    assert.strictEqual(res.status, 422);
    assert.strictEqual((await res.json()).error, 'Input for parameter "sleepDuration" failed validation!');
  });

  await t.test('OPTIONS answers the CORS headers', async () => {
    const res = await fetch(`${srv.url}/api/randomNumber`, { method: 'OPTIONS' });
    assert.strictEqual(res.status, 200);
    assert.strictEqual(res.headers.get('access-control-allow-origin'), '*');
    assert.strictEqual(await res.text(), '');
  });

  await t.test('/apix is not the api', async () => {
    const res = await fetch(`${srv.url}/apix`);
    assert.notStrictEqual(res.headers.get('content-type'), 'application/json; charset=utf-8');
  });
});

test('web api without query routing or metadata', async (t) => {
  const srv = await startServer({
    config: { servers: { web: { queryRouting: false, serverInformation: false, requesterInformation: false, urlPathForActions: 'v1' } } },
  });
  t.after(() => srv.stop());
  let res = await fetch(`${srv.url}/v1?action=randomNumber`);
  assert.strictEqual(res.status, 404);
  res = await fetch(`${srv.url}/v1/randomNumber`);
  assert.deepStrictEqual(Object.keys(await res.json()), ['randomNumber', 'stringRandomNumber']);
});
