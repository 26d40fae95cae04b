'use strict';
// Real-browser helpers for spec/browser: Debian's chromium driven by playwright-core, headless, with a fresh profile
// (playwright gives each launch a new empty user-data-dir). Each newPage() gets its own context (own cookies and
// storage), like a separate browser.
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const EXECUTABLE = process.env.AG_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run'];
const ARTIFACTS = path.resolve(__dirname, '..', 'artifacts');

async function launch() {
  const browser = await chromium.launch({ executablePath: EXECUTABLE, headless: true, args: ARGS });
  const contexts = [];
  return {
    browser,
    // opts.noWebSocket: window.WebSocket is removed before any page script runs; opts.noEventSource, opts.noFetch likewise.
    async newPage(opts = {}) {
      const context = await browser.newContext({ viewport: opts.viewport || { width: 1100, height: 700 } });
      contexts.push(context);
      if (opts.noWebSocket) await context.addInitScript(() => { delete window.WebSocket; window.WebSocket = undefined; });
      if (opts.noEventSource) await context.addInitScript(() => { delete window.EventSource; window.EventSource = undefined; });
      if (opts.noFetch) await context.addInitScript(() => { delete window.fetch; window.fetch = undefined; });
      const page = await context.newPage();
      page.consoleLines = [];
      page.on('console', (m) => page.consoleLines.push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => page.consoleLines.push(`pageerror: ${e.message}`));
      return page;
    },
    async close() {
      for (const c of contexts) await c.close().catch(() => {});
      await browser.close();
    },
  };
}

async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}

module.exports = { launch, screenshot, ARTIFACTS, EXECUTABLE };
