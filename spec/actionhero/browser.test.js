'use strict';
// The chat demo page in Chromium while actiongate fronts a real actionhero 29.3.5 app (actions upstream, chat shared
// through redis.compat: actionhero): the page and the app's own Primus client talk in one room, see each other as
// members, and an action the page calls runs in the app.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startServer, Redis } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { launch } = require('../lib/browser');
const { openChat, say, waitLine, waitMembers } = require('../browser/helpers');
const { startApp } = require('./lib');

let redis, app, ag, b;

test.before(async () => {
  redis = await new Redis().start();
  app = await startApp(redis);
  ag = await startServer({
    config: {
      general: { serverToken: 'ahfixture-token' },
      redis: { url: redis.url, compat: 'actionhero' },
      upstream: { urls: [`${app.url}/api`] },
    },
  });
  b = await launch();
});

test.after(async () => {
  if (b) await b.close();
  if (ag) await ag.stop();
  if (app) await app.stop();
  if (redis) await redis.stop();
});

test('the chat page on actiongate and a Primus client of the app share defaultRoom', async () => {
  const ah = await connect(`${app.wsUrl}/primus`);
  await ah.welcome();
  const ahId = (await ah.request({ event: 'detailsView' })).data.id;
  assert.equal((await ah.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');
  const page = await openChat(b, ag.url);
  // the page's member list comes from roomView: it shows the app's client too
  await waitMembers(page, [page.clientId, ahId]);
  await say(page, 'hello from the browser');
  const heard = await ah.next((f) => f.context === 'user' && f.message === 'hello from the browser', 15000);
  assert.equal(heard.from, page.clientId);
  assert.equal(heard.room, 'defaultRoom');
  assert.ok(Number.isInteger(heard.sentAt));
  await ah.request({ event: 'say', room: 'defaultRoom', message: 'hello from actionhero' });
  assert.equal(await waitLine(page, 'hello from actionhero'), ahId.slice(0, 8));
  // an action of the app, from the page
  const reply = await page.evaluate(() => new Promise((resolve) => window.chatClient.action('echoParams', { name: 'page' }, resolve)));
  assert.equal(reply.name, 'page');
  assert.equal(reply.count, 1);
  // app code broadcasting to the room reaches the page
  await ah.request({ event: 'action', params: { action: 'chatBroadcast', room: 'defaultRoom', message: 'from app code' } });
  assert.equal(await waitLine(page, 'from app code'), 'server'); // how the page shows from "0"
  assert.deepEqual(page.consoleLines.filter((l) => /pageerror/.test(l)), []);
  await page.context().close();
  await ah.close();
});
