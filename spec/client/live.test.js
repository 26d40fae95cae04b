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

// Resume (README "Resume"): the rendered client behind a proxy that cuts its TCP connections while chat flows both
// ways and its says are in flight comes back as the same connection each time: every line once and in order, every
// say run once and answered once, `resumed` emitted and `notResumed` never.
const { startCutProxy } = require('../lib/cut_proxy');
const { connect: wsConnect } = require('../lib/wsclient');

for (const [name, { expect, opts }] of Object.entries(PATHS)) {
  test(`ActionheroWebsocketClient.js in node, ${name}: cuts mid-stream, resumed whole`, async (t) => {
    // the memory store whatever AG_STORE says: room history on Redis is the next stage
    const srv = await startServer({ config: { redis: { url: '' }, servers: { web: { publicDir: pub } } } });
    t.after(() => srv.stop());
    const proxy = await startCutProxy(srv.port);
    t.after(() => proxy.close());
    const C = require(path.join(pub, 'javascript', 'ActionheroWebsocketClient.js'));
    const a = new C({ url: `http://127.0.0.1:${proxy.port}`, XMLHttpRequest: makeXhr(), rememberUpgrade: false,
      reconnect: { min: 20, max: 60, factor: 1.5, retries: 0 }, ...opts });
    const events = { resumed: 0, notResumed: [] };
    a.on('resumed', () => events.resumed++);
    a.on('notResumed', (e) => events.notResumed.push(e.reason));
    const heard = [];
    a.on('say', (m) => heard.push(m));
    const b = await wsConnect(`${srv.wsUrl}/primus`);
    t.after(() => b.close());
    await b.welcome();
    const room = 'resume ' + name;
    await b.request({ event: 'action', params: { action: 'createChatRoom', name: room } });
    assert.equal((await b.request({ event: 'roomAdd', room })).status, 'OK');
    try {
      await new Promise((resolve) => a.connect(resolve));
      const id = a.id;
      await new Promise((resolve) => a.roomAdd(room, resolve));
      await waitFor(() => a.transport === expect, 5000, `transport ${expect}`);
      const N = 40;
      const answers = [];
      for (let i = 0; i < N; i++) {
        b.sendRaw(JSON.stringify({ event: 'say', room, message: `b-${i}` }));
        answers.push(new Promise((resolve) => a.say(room, `a-${i}`, resolve)));
        if (i % 10 === 5) proxy.cut();
        await new Promise((r) => setTimeout(r, 10));
      }
      const replies = await Promise.all(answers);
      for (const r of replies) assert.equal(r.status, 'OK');
      const lines = (list, prefix) => list.filter((m) => m.message.startsWith(prefix)).map((m) => m.message);
      const want = (prefix) => Array.from({ length: N }, (_, i) => `${prefix}-${i}`);
      await waitFor(() => lines(heard, 'b-').length >= N && lines(heard, 'a-').length >= N, 10000, 'every line');
      const bHeard = () => lines(b.frames.filter((f) => f.context === 'user'), 'a-');
      await waitFor(() => bHeard().length >= N, 10000, 'b hears every say');
      await b.request({ event: 'detailsView' }); // a round trip later: nothing more
      assert.deepEqual(lines(heard, 'b-'), want('b'));
      assert.deepEqual(lines(heard, 'a-'), want('a'));
      assert.deepEqual(bHeard(), want('a')); // each say ran once
      assert.deepEqual(events.notResumed, []);
      assert.ok(events.resumed >= 1, `resumed ${events.resumed} times, ${proxy.cuts} cuts`);
      assert.equal(a.id, id);
      assert.equal(Object.keys(heard[0]).includes('offset'), false); // the application sees today's frames
    } finally {
      a.disconnect();
    }
  });
}
