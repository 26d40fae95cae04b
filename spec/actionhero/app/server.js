'use strict';
// Boots the fixture actionhero app: `node spec/actionhero/app/server.js` with PORT, REDIS_PORT (and optionally
// AUTOMATIC_ROUTES, default post). Prints "ready <port>" once it serves; stops on SIGTERM/SIGINT.
const path = require('node:path');

process.env.ACTIONHERO_CONFIG = path.join(__dirname, 'config');
process.env.PROJECT_ROOT = __dirname;
process.env.AUTOMATIC_ROUTES = process.env.AUTOMATIC_ROUTES || 'post';
process.env.NODE_ENV = process.env.NODE_ENV || 'development';
process.env.ACTIONHERO_TITLE = process.env.ACTIONHERO_TITLE || `ahfixture-${process.env.PORT}`;
// the pid file goes to a directory of this run, removed at exit
const fs = require('node:fs');
const os = require('node:os');
if (!process.env.AH_FIXTURE_RUN_DIR) process.env.AH_FIXTURE_RUN_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'ahfixture-'));
fs.mkdirSync(path.join(process.env.AH_FIXTURE_RUN_DIR, 'pids'), { recursive: true });

const { Process } = require('actionhero');

async function main() {
  const app = new Process();
  await app.start();
  process.stdout.write(`ready ${process.env.PORT}\n`);
  const stop = async () => {
    // actionhero waits for Redis while stopping: do not outlive a Redis that went first
    setTimeout(() => process.exit(0), 3000).unref();
    await app.stop();
    fs.rmSync(process.env.AH_FIXTURE_RUN_DIR, { recursive: true, force: true });
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
