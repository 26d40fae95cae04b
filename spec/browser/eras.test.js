'use strict';
// One demo page per era of actionhero's browser clients (client/public/eras/), each written the way that era's
// documentation used its client, in Chromium against the real server: each connects, calls an action, joins or
// changes rooms, and chats with the pages of the other eras in the same room.
const test = require('node:test');
const assert = require('node:assert');
const { startServer } = require('../lib/harness');
const { launch, screenshot } = require('../lib/browser');

const PAGES = {
  'socket.io (upgrade)': 'socketio.html',
  'socket.io (xhr-polling)': 'socketio.html?transports=xhr-polling',
  'socket.io (websocket)': 'socketio.html?transports=websocket',
  'socket.io actionHeroWebSocket': 'socketio-wrapper.html',
  'faye actionHeroWebSocket': 'faye.html',
  'faye actionheroClient': 'faye-client.html',
  'Primus ActionheroWebsocketClient': 'primus.html',
};

async function openEra(b, srv, file, room) {
  const page = await b.newPage();
  const sep = file.includes('?') ? '&' : '?';
  await page.goto(`${srv.url}/public/eras/${file}${sep}room=${encodeURIComponent(room)}`);
  try {
    await page.waitForFunction(() => window.era && window.era.ready, null, { timeout: 15000 });
  } catch (e) {
    throw new Error(`${file} never got ready:\n${page.consoleLines.join('\n')}\n${JSON.stringify(await page.evaluate(() => window.era && window.era.log))}`);
  }
  return page;
}

const log = (page) => page.evaluate(() => window.era.log);
const entries = async (page, kind) => (await log(page)).filter((e) => e.kind === kind).map((e) => e.data);

test('every era\'s page, in Chromium', async (t) => {
  const srv = await startServer({ config: { general: { startingChatRooms: ['defaultRoom', 'otherRoom', 'eras'] } } });
  const b = await launch();
  t.after(async () => {
    await b.close();
    await srv.stop();
  });

  const pages = {};
  for (const [name, file] of Object.entries(PAGES)) pages[name] = await openEra(b, srv, file, 'eras');

  await t.test('the socket.io page: welcome, then replies as "response" events', async () => {
    for (const name of ['socket.io (upgrade)', 'socket.io (xhr-polling)', 'socket.io (websocket)']) {
      const p = pages[name];
      assert.deepStrictEqual(await entries(p, 'welcome'), [{ welcome: 'Welcome to the actiongate api', context: 'api' }], name);
      const responses = await entries(p, 'response');
      const action = responses.find((r) => 'randomNumber' in r);
      assert.deepStrictEqual(Object.keys(action), ['randomNumber', 'stringRandomNumber', 'context', 'messageId'], name);
      assert.ok(responses.some((r) => r.status === 'OK' && r.data === true), `${name}: roomChange answered`);
    }
  });

  await t.test('the socket.io page honours its transports option', async () => {
    const transport = (name) => pages[name].evaluate(() => socket.engine && socket.engine.transport && socket.engine.transport.name);
    assert.strictEqual(await transport('socket.io (xhr-polling)'), 'polling');
    assert.strictEqual(await transport('socket.io (websocket)'), 'websocket');
    await pages['socket.io (upgrade)'].waitForFunction(() => socket.engine.transport.name === 'websocket', null, { timeout: 10000 });
  });

  await t.test('actionHeroWebSocket of the socket.io era: connected by itself, action with a round-trip time', async () => {
    const p = pages['socket.io actionHeroWebSocket'];
    const [connected] = await entries(p, 'connected');
    assert.match(connected.id, /^[0-9a-f-]{36}$/);
    assert.strictEqual(connected.room, 'defaultRoom', 'the era started out in defaultRoom');
    const [change] = await entries(p, 'roomChange');
    assert.strictEqual(change.err, null);
    const [action] = await entries(p, 'action');
    assert.strictEqual(action.err, null);
    assert.strictEqual(action.response.cacheTestResults.loadResp.value, 'value');
    assert.strictEqual(typeof action.delta, 'number');
    assert.ok(action.delta >= 0);
    assert.strictEqual(await p.evaluate(() => s.room), 'eras');
    const rooms = await p.evaluate(() => new Promise((resolve) => s.detailsView((err, r) => resolve(r.data.rooms))));
    assert.deepStrictEqual(rooms, ['eras'], 'roomChange left defaultRoom');
  });

  await t.test('actionHeroWebSocket of the faye era: events object, connect(callback), setIP, detailsView', async () => {
    const p = pages['faye actionHeroWebSocket'];
    const [connected] = await entries(p, 'connected');
    assert.strictEqual(connected.status, 'OK');
    assert.match(connected.data.id, /^[0-9a-f-]{36}$/);
    const [action] = await entries(p, 'action');
    assert.strictEqual(action.err, null);
    assert.strictEqual(typeof action.response.randomNumber, 'number');
    const [details] = await entries(p, 'detailsView');
    assert.deepStrictEqual(details.response.data.rooms, ['eras']);
    // callbacks get (error, response): a failing action
    const failed = await p.evaluate(() => new Promise((resolve) => A.action('cacheTest', {}, (err, r) => resolve({ err, r }))));
    assert.strictEqual(failed.err, 'key is a required parameter for this action');
    assert.strictEqual(failed.r.error, failed.err);
  });

  await t.test('actionheroClient of the faye era: options, state, listenToRoom and silenceRoom keep the current room', async () => {
    const p = pages['faye actionheroClient'];
    assert.strictEqual(await p.evaluate(() => client.state), 'connected');
    const [change] = await entries(p, 'roomChange');
    assert.strictEqual(change.err, null);
    const result = await p.evaluate(() => new Promise((resolve) => {
      client.listenToRoom('otherRoom', (err1) => {
        client.detailsView((err2, d1) => {
          client.silenceRoom('otherRoom', (err3) => {
            client.roomView((err4, view) => resolve({ errs: [err1, err2, err3, err4], rooms: d1.data.rooms, view: view.data, room: client.room }));
          });
        });
      });
    }));
    assert.deepStrictEqual(result.errs, [null, null, null, null]);
    assert.deepStrictEqual(result.rooms.slice().sort(), ['eras', 'otherRoom']);
    assert.strictEqual(result.room, 'eras');
    assert.strictEqual(result.view.room, 'eras');
    assert.strictEqual(result.view.membersCount, Object.keys(PAGES).length);
  });

  await t.test('every page chats with the pages of the other eras in one room', async () => {
    const names = Object.keys(PAGES);
    for (const sender of names) {
      const text = `hello from ${sender}`;
      const senderId = await pages[sender].evaluate(() => new Promise((resolve) => {
        if (window.socket) return resolve(socket.id);
        const c = window.s || window.A || window.client;
        if (c.id) return resolve(c.id);
        c.detailsView((e, r) => resolve(r && r.data ? r.data.id : r.data));
      }));
      await pages[sender].evaluate((m) => window.era.say(m), text);
      for (const receiver of names) {
        const p = pages[receiver];
        try {
          await p.waitForFunction((m) => window.era.log.some((e) => e.kind === 'say' && e.data.message === m), text, { timeout: 10000 });
        } catch (e) {
          throw new Error(`${receiver} did not hear "${text}": ${JSON.stringify(await log(p))}`);
        }
        const [said] = (await entries(p, 'say')).filter((m) => m.message === text);
        assert.deepStrictEqual({ ...said, sentAt: 0 }, { message: text, room: 'eras', from: senderId, context: 'user', sentAt: 0 }, receiver);
      }
    }
    await screenshot(pages['faye actionHeroWebSocket'], 'eras-faye.png');
  });

  await t.test('quit on the socket.io page: the server says goodbye and the client stays away', async () => {
    for (const name of ['socket.io (xhr-polling)', 'socket.io (websocket)']) {
      const p = pages[name];
      await p.evaluate(() => quit());
      await p.waitForFunction(() => window.era.log.some((e) => e.kind === 'disconnect'), null, { timeout: 10000 });
      assert.deepStrictEqual(await entries(p, 'disconnect'), ['io server disconnect'], name);
    }
    // no reconnection: the room lost both
    const count = () => pages['faye actionHeroWebSocket'].evaluate(() => new Promise((resolve) => A.roomView((e, r) => resolve(r.data.membersCount))));
    let members = await count();
    for (let i = 0; i < 50 && members !== Object.keys(PAGES).length - 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      members = await count();
    }
    assert.strictEqual(members, Object.keys(PAGES).length - 2);
    assert.strictEqual(await pages['socket.io (websocket)'].evaluate(() => socket.connected), false);
  });

  await t.test('no page logged an error', async () => {
    for (const [name, p] of Object.entries(pages)) {
      assert.deepStrictEqual(await entries(p, 'error'), [], name);
      assert.deepStrictEqual(p.consoleLines.filter((l) => l.startsWith('pageerror')), [], name);
    }
  });
});
