'use strict';
// X-Forwarded-For behind appending proxies: the chain is walked from the right, trusted proxies (general.trustedProxies,
// addresses or CIDR ranges) are skipped, and the first untrusted address is the client. Several headers, spaces, IPv6,
// ports and garbage. Seen through /api's requesterInformation.remoteIP and detailsView over /primus.
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const { startServer } = require('../lib/harness');
const { connect } = require('../lib/wsclient');

// /api/status with raw header values (an array value sends the header once per element).
function remoteIP(srv, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${srv.url}/api/status`, { headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body).requesterInformation.remoteIP);
        } catch (e) {
          reject(new Error(`${res.statusCode} ${body}`));
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function details(srv, headers) {
  const c = await connect(`${srv.wsUrl}/primus`, { headers });
  try {
    const d = await c.request({ event: 'detailsView' });
    return { ip: d.data.remoteIP, port: d.data.remotePort };
  } finally {
    await c.close();
  }
}

test('X-Forwarded-For from a trusted peer', async (t) => {
  // the test client connects from 127.0.0.1: a trusted proxy here, as is 10.0.0.0/8
  const srv = await startServer({ config: { general: { trustedProxies: ['127.0.0.1', '::1', '10.0.0.0/8', '2001:db8:ffff::/48'] } } });
  t.after(() => srv.stop());

  await t.test('an appending proxy: the client cannot choose its address by sending its own header', async () => {
    assert.strictEqual(await remoteIP(srv, { 'x-forwarded-for': '6.6.6.6, 203.0.113.7' }), '203.0.113.7');
    assert.strictEqual(await remoteIP(srv, { 'x-forwarded-for': '6.6.6.6,203.0.113.7' }), '203.0.113.7');
    assert.strictEqual((await details(srv, { 'x-forwarded-for': '6.6.6.6, 203.0.113.7' })).ip, '203.0.113.7');
  });

  await t.test('trusted proxies on the right are skipped, addresses and CIDR ranges alike', async () => {
    assert.strictEqual(await remoteIP(srv, { 'x-forwarded-for': '6.6.6.6, 203.0.113.7, 10.1.2.3, 127.0.0.1' }), '203.0.113.7');
    assert.strictEqual(await remoteIP(srv, { 'x-forwarded-for': '203.0.113.7, 2001:db8:ffff:1::5' }), '203.0.113.7');
    assert.strictEqual(await remoteIP(srv, { 'x-forwarded-for': '203.0.113.7, 11.1.2.3' }), '11.1.2.3');
  });

  await t.test('several X-Forwarded-For headers form one list, in order', async () => {
    assert.strictEqual(await remoteIP(srv, { 'x-forwarded-for': ['6.6.6.6', '203.0.113.7'] }), '203.0.113.7');
    assert.strictEqual(await remoteIP(srv, { 'x-forwarded-for': ['6.6.6.6, 203.0.113.9', '10.0.0.1'] }), '203.0.113.9');
  });

  await t.test('spaces, tabs, empty entries, IPv6, ports and mapped IPv4 are read', async () => {
    assert.strictEqual(await remoteIP(srv, { 'x-forwarded-for': ' \t203.0.113.7\t ' }), '203.0.113.7');
    assert.strictEqual(await remoteIP(srv, { 'x-forwarded-for': '203.0.113.7, , ,' }), '203.0.113.7');
    assert.strictEqual(await remoteIP(srv, { 'x-forwarded-for': '2001:DB8::1' }), '2001:db8::1');
    assert.strictEqual(await remoteIP(srv, { 'x-forwarded-for': '::ffff:203.0.113.7' }), '203.0.113.7');
    assert.deepStrictEqual(await details(srv, { 'x-forwarded-for': '[2001:db8::1]:4711' }), { ip: '2001:db8::1', port: 4711 });
    assert.deepStrictEqual(await details(srv, { 'x-forwarded-for': '203.0.113.7:5555' }), { ip: '203.0.113.7', port: 5555 });
  });

  await t.test('garbage stops the walk: nothing left of it is believed', async () => {
    assert.strictEqual(await remoteIP(srv, { 'x-forwarded-for': 'garbage, 203.0.113.7' }), '203.0.113.7');
    for (const v of ['203.0.113.7, garbage', '203.0.113.7, unknown', '203.0.113.7, 1.2.3.4.5', '203.0.113.7, 1.2.3.4:99999',
      '203.0.113.7, [::1', '203.0.113.7, 999.1.1.1', '203.0.113.7, fe80::1%eth0', '<script>', ',,,']) {
      assert.strictEqual(await remoteIP(srv, { 'x-forwarded-for': v }), '127.0.0.1', v);
    }
  });

  await t.test('a chain of trusted proxies only: the leftmost is the client', async () => {
    assert.strictEqual(await remoteIP(srv, { 'x-forwarded-for': '10.9.9.9, 127.0.0.1' }), '10.9.9.9');
  });

  await t.test('X-Real-IP only counts without X-Forwarded-For', async () => {
    assert.strictEqual(await remoteIP(srv, { 'x-real-ip': '203.0.113.8' }), '203.0.113.8');
    assert.strictEqual(await remoteIP(srv, { 'x-real-ip': '6.6.6.6', 'x-forwarded-for': '203.0.113.7' }), '203.0.113.7');
    assert.strictEqual(await remoteIP(srv, { 'x-real-ip': 'garbage' }), '127.0.0.1');
  });

  await t.test('X-Forwarded-Port is believed only when it is a port', async () => {
    assert.deepStrictEqual(await details(srv, { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-port': '8443' }), { ip: '203.0.113.7', port: 8443 });
    const d = await details(srv, { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-port': '99999' });
    assert.notStrictEqual(d.port, 99999);
    assert.ok(d.port > 0 && d.port < 65536);
  });

  await t.test('a long chain of trusted addresses is walked to its end', async () => {
    const chain = Array.from({ length: 2000 }, (_, i) => `10.0.${(i >> 8) & 255}.${i & 255}`).join(', ');
    assert.strictEqual(await remoteIP(srv, { 'x-forwarded-for': `6.6.6.6, ${chain}` }), '6.6.6.6');
  });
});

test('X-Forwarded-For from a peer that is not trusted is ignored', async (t) => {
  const srv = await startServer({ config: { general: { trustedProxies: ['10.0.0.0/8'] } } });
  t.after(() => srv.stop());
  assert.strictEqual(await remoteIP(srv, { 'x-forwarded-for': '203.0.113.7', 'x-real-ip': '203.0.113.8' }), '127.0.0.1');
  assert.strictEqual((await details(srv, { 'x-forwarded-for': '203.0.113.7' })).ip, '127.0.0.1');
});
