'use strict';
// Shared steps of the browser suites: open the chat demo and wait until it is in its room, say something through the
// page's own form, read what the page shows.
const WELCOME = 'Welcome to the actiongate api';

async function openChat(b, base, opts = {}) {
  const page = await b.newPage(opts);
  await page.goto(`${base}/public/chat.html${opts.min ? '?min=1' : ''}`);
  await page.waitForFunction(() => window.chatClient && window.chatClient.state === 'connected' &&
    window.chatClient.rooms.indexOf('defaultRoom') !== -1, null, { timeout: 15000 });
  page.clientId = await page.evaluate(() => window.chatClient.id);
  return page;
}

async function say(page, text) {
  await page.fill('#say-input', text);
  await page.click('#say-button');
}

// Waits until the page lists a chat line with this text and returns who it is from (as shown).
async function waitLine(page, text, timeout = 15000) {
  const handle = await page.waitForFunction((t) => {
    const lines = document.querySelectorAll('#messages li');
    for (let i = 0; i < lines.length; i++) {
      const body = lines[i].querySelector('.body');
      if (body && body.textContent === t) {
        const who = lines[i].querySelector('.who');
        return who ? who.textContent : '';
      }
    }
    return false;
  }, text, { timeout });
  return handle.jsonValue();
}

async function waitTransport(page, name, timeout = 15000) {
  await page.waitForFunction((n) => document.getElementById('transport').textContent === n &&
    window.chatClient.transport === n, name, { timeout });
}

async function waitMembers(page, ids, timeout = 15000) {
  await page.waitForFunction((want) => {
    const got = Array.prototype.map.call(document.querySelectorAll('#members li'), (li) => li.getAttribute('data-id'));
    return want.every((id) => got.indexOf(id) !== -1);
  }, ids, { timeout });
}

module.exports = { WELCOME, openChat, say, waitLine, waitTransport, waitMembers };
