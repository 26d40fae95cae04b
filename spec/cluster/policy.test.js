'use strict';
// Request policies hold for requests another node forwards: the owner refuses a foreign Origin on its session, and the
// forwarding node refuses an ambiguous body length before anything goes upstream.
const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const { startServer, Redis } = require('../lib/harness');
const { request } = require('../lib/eio_raw');
const { waitFor } = require('../lib/cluster_clients');

const GOOD = 'https://good.example';
const EVIL = 'https://evil.example';

function rawStatuses(port, bytes, timeoutMs = 3000) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => s.destroy(), timeoutMs);
    s.setEncoding('latin1');
    s.on('data', (d) => (text += d));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve([...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])));
    });
    s.write(bytes);
  });
}

test('origins and framing on a forwarded sid', async (t) => {
  const redis = await new Redis().start();
  const config = { redis: { url: redis.url, nodeTtl: 2 }, servers: { websocket: { server: { origins: [GOOD] } } } };
  const a = await startServer({ config: { ...config, general: { id: 'pa' } } });
  const b = await startServer({ config: { ...config, general: { id: 'pb' } } });
  t.after(async () => {
    await a.stop();
    await b.stop();
    await redis.stop();
  });
  await waitFor(() => redis.cli('--scan', '--pattern', 'actiongate:route:*').split('\n').filter(Boolean).length === 2, 5000, 'both routes');
  const hs = await request(`${a.url}/primus/?EIO=4&transport=polling`, { headers: { origin: GOOD } });
  assert.strictEqual(hs.status, 200);
  const sid = JSON.parse(hs.text.slice(1)).sid;
  const url = `${b.url}/primus/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`;

  const evil = await request(url, { method: 'POST', headers: { origin: EVIL, 'content-type': 'text/plain' }, body: '4{"event":"roomView"}' });
  assert.strictEqual(evil.status, 403);
  assert.strictEqual(evil.text, JSON.stringify({ code: 4, message: 'Forbidden' }));

  const statuses = await rawStatuses(b.port,
    `POST /primus/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n6`);
  assert.deepStrictEqual(statuses, [400]);

  // the session itself went on: the listed origin, through the other node, gets its welcome
  const good = await request(url, { headers: { origin: GOOD } });
  assert.strictEqual(good.status, 200);
  assert.match(good.text, /^4\{"welcome"/);
});
