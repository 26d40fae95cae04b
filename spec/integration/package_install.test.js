'use strict';
// The Debian package installed for real: `dpkg -i` on this machine (whose packages are what tools/setup installed, as
// on a fresh one), the installed binary started from / with the shipped configuration on a loopback port, then
// `dpkg -P`, after which nothing of it is left. The binary must serve the demo, render the browser client and serve
// the older eras' scripts from its installation alone (no source tree, no environment). Skipped, with the reason,
// where the test cannot own the package: not root, or an actiongate package already installed.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawn, spawnSync } = require('node:child_process');
const { BIN, freePort } = require('../lib/harness');

const BUILD = path.dirname(BIN);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function installed() {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', 'actiongate'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

const skip =
  process.getuid() !== 0 ? 'installing a package needs root' : installed() ? 'an actiongate package is installed already' : false;

test('dpkg -i, run from the installation alone, dpkg -P leaves nothing', { skip }, async () => {
  execFileSync('cmake', ['--build', BUILD, '--target', 'package'], { stdio: 'pipe' });
  const deb = fs.readdirSync(BUILD).find((f) => /^actiongate_.*\.deb$/.test(f));
  assert.ok(deb, 'a .deb in the build directory');
  const shipped = execFileSync('dpkg-deb', ['-c', path.join(BUILD, deb)], { encoding: 'utf8' });
  assert.doesNotMatch(shipped, /public\/javascript\/ActionheroWebsocketClient/, 'the rendered client is not a file of the package');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-dpkg-'));
  let proc;
  try {
    execFileSync('dpkg', ['-i', path.join(BUILD, deb)], { stdio: 'pipe', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    assert.ok(installed(), 'dpkg says it is installed');
    const port = await freePort();
    const yaml = fs
      .readFileSync('/etc/actiongate/actiongate.yaml', 'utf8')
      .replace(/^    port: 8080$/m, `    port: ${port}`)
      .replace(/^    bindIP: "0\.0\.0\.0"$/m, '    bindIP: "127.0.0.1"');
    fs.writeFileSync(path.join(dir, 'actiongate.yaml'), yaml);
    // nothing of this checkout's environment (the sanitizer's options only, when the build under test has one)
    const env = { PATH: '/usr/bin:/bin', HOME: dir };
    for (const k of ['ASAN_OPTIONS', 'LSAN_OPTIONS', 'UBSAN_OPTIONS']) if (process.env[k] !== undefined) env[k] = process.env[k];
    let out = '';
    proc = spawn('/usr/bin/actiongate', ['--config', path.join(dir, 'actiongate.yaml')], { cwd: '/', env, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    const exited = new Promise((r) => proc.on('exit', (code) => r(code)));
    let ready = null;
    for (let i = 0; i < 100 && ready === null; i++) {
      ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status, () => null);
      if (ready === null) await sleep(100);
    }
    assert.strictEqual(ready, 200, `the installed node is ready:\n${out}`);
    const body = async (p) => {
      const r = await fetch(`http://127.0.0.1:${port}${p}`);
      assert.strictEqual(r.status, 200, p);
      return r.text();
    };
    assert.strictEqual(await body('/'), fs.readFileSync('/usr/share/actiongate/public/index.html', 'utf8'));
    assert.match(await body('/public/javascript/ActionheroWebsocketClient.js'), /ActionheroWebsocketClient/);
    assert.strictEqual(await body('/faye/client.js'), fs.readFileSync('/usr/share/actiongate/client/legacy/faye.js', 'utf8'));
    assert.match(await body('/socket.io/socket.io.js'), /io/);
    proc.kill('SIGTERM');
    assert.strictEqual(await exited, 0, out);
    proc = null;
  } finally {
    if (proc) proc.kill('SIGKILL');
    spawnSync('dpkg', ['-P', 'actiongate'], { stdio: 'pipe' });
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(!installed(), 'purged');
  for (const f of ['/usr/bin/actiongate', '/etc/actiongate', '/usr/share/actiongate', '/lib/systemd/system/actiongate.service'])
    assert.ok(!fs.existsSync(f), `${f} is gone`);
});
