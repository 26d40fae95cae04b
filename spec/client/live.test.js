'use strict';
// The rendered client in node against the real server, on each engine.io path: polling only, polling upgraded to
// WebSocket, polling upgraded to SSE (npm eventsource), and WebSocket first. Two clients chat in each.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');
const { EventSource } = require('eventsource');
const { startServer } = require('../lib/harness');
const { makeXhr } = require('./xhr');
const { waitFor } = require('./fake_peer');

const pub = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-live-'));
let srv;

test.before(async () => {
  srv = await startServer({ config: { servers: { web: { publicDir: pub } } } });
});
test.after(async () => {
  await srv.stop();
  fs.rmSync(pub, { recursive: true, force: true });
});

const PATHS = {
  polling: { expect: 'polling', opts: {} },
  websocket: { expect: 'websocket', opts: { WebSocket } },
  sse: { expect: 'sse', opts: { EventSource } },
  'websocket first': { expect: 'websocket', opts: { WebSocket, websocketFirst: true } },
};

function client(C, opts) {
  return new C({ url: srv.url, XMLHttpRequest: makeXhr(), rememberUpgrade: false, ...opts });
}

for (const file of ['ActionheroWebsocketClient.js', 'ActionheroWebsocketClient.min.js']) {
  for (const [name, { expect, opts }] of Object.entries(PATHS)) {
    test(`${file} in node, ${name}: connect, join, chat, disconnect`, async () => {
      const C = require(path.join(pub, 'javascript', file));
      const a = client(C, opts);
      const b = client(C, opts);
      const heard = { a: [], b: [] };
      a.on('say', (m) => heard.a.push(m));
      b.on('say', (m) => heard.b.push(m));
      try {
        for (const c of [a, b]) {
          const details = await new Promise((resolve) => c.connect((err, d) => resolve(d)));
          assert.equal(details.status, 'OK');
          assert.equal(details.data.id, c.id);
          assert.equal(c.welcomeMessage, 'Welcome to the actiongate api');
          const joined = await new Promise((resolve) => c.roomAdd('defaultRoom', resolve));
          assert.equal(joined.status, 'OK');
        }
        await waitFor(() => a.transport === expect && b.transport === expect, 5000, `transport ${expect}`);
        const text = `hello over ${name} \u2603\n\r"quoted"`;
        const reply = await new Promise((resolve) => a.say('defaultRoom', text, resolve));
        assert.deepEqual(reply, { status: 'OK', context: 'response', messageId: reply.messageId });
        await waitFor(() => heard.b.length === 1 && heard.a.length === 1, 5000, 'chat');
        assert.deepEqual(heard.b[0], { message: text, room: 'defaultRoom', from: a.id, context: 'user', sentAt: heard.b[0].sentAt });
        const view = await new Promise((resolve) => b.roomView('defaultRoom', resolve));
        assert.deepEqual(Object.keys(view.data.members).sort(), [a.id, b.id].sort());
        const r = await new Promise((resolve) => a.action('randomNumber', {}, resolve));
        assert.equal(typeof r.randomNumber, 'number');
        assert.equal(a.transport, expect);
      } finally {
        a.disconnect();
        b.disconnect();
      }
      assert.equal(a.state, 'disconnected');
    });
  }
}
