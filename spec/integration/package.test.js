'use strict';
// The Debian package (README "Operations"): built by CPack from the build directory of the binary under test, checked
// with dpkg-deb (control data, maintainer scripts, files), then unpacked into a temporary directory (not installed:
// this machine runs other work) and its binary started with its own configuration, bound to loopback: it tells a
// NOTIFY_SOCKET it is ready, as under systemd's Type=notify, and serves the demo it ships. The unit passes
// systemd-analyze verify.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { execFileSync, spawn } = require('node:child_process');
const { BIN, freePort } = require('../lib/harness');

const BUILD = path.dirname(BIN);

function get(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        const chunks = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
      })
      .on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('the .deb: control data, files, and the unpacked binary serves the demo and notifies systemd', async () => {
  execFileSync('cmake', ['--build', BUILD, '--target', 'package'], { stdio: 'pipe' });
  const deb = fs.readdirSync(BUILD).find((f) => /^actiongate_.*\.deb$/.test(f));
  assert.ok(deb, 'a .deb in the build directory');
  const debPath = path.join(BUILD, deb);

  const info = execFileSync('dpkg-deb', ['-f', debPath], { encoding: 'utf8' });
  assert.match(info, /^Package: actiongate$/m);
  assert.match(info, /^Depends: .*libh2o-evloop0\.13.*libhiredis0\.14/m);
  const conffiles = execFileSync('dpkg-deb', ['-I', debPath, 'conffiles'], { encoding: 'utf8' });
  assert.strictEqual(conffiles.trim(), '/etc/actiongate/actiongate.yaml');
  const postinst = execFileSync('dpkg-deb', ['-I', debPath, 'postinst'], { encoding: 'utf8' });
  assert.match(postinst, /systemctl enable actiongate\.service/);
  const files = execFileSync('dpkg-deb', ['-c', debPath], { encoding: 'utf8' });
  for (const f of [
    './usr/bin/actiongate',
    './etc/actiongate/actiongate.yaml',
    './lib/systemd/system/actiongate.service',
    './usr/share/actiongate/public/index.html',
    './usr/share/actiongate/client/ActionheroWebsocketClient.js.tmpl',
    './usr/share/actiongate/client/ActionheroWebsocketClient.min.js.tmpl',
    './usr/share/actiongate/client/socket.io.js',
    './usr/share/actiongate/client/legacy/faye.js',
    './usr/share/actiongate/client/legacy/actionHeroWebSocket.js',
  ])
    assert.ok(files.includes(f), `ships ${f}`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-deb-'));
  let proc, notify;
  try {
    execFileSync('dpkg-deb', ['-x', debPath, path.join(dir, 'root')]);
    const root = path.join(dir, 'root');
    // an installed binary reads its own client files, not a source tree's: mark the shipped ones
    const shipped = path.join(root, 'usr/share/actiongate/client');
    fs.appendFileSync(path.join(shipped, 'legacy/faye.js'), '\n// shipped faye\n');
    fs.appendFileSync(path.join(shipped, 'socket.io.js'), '\n// shipped socket.io\n');
    fs.appendFileSync(path.join(shipped, 'ActionheroWebsocketClient.js.tmpl'), '\n// shipped template\n');
    // the unit, with its ExecStart pointed at the unpacked binary, is one systemd accepts
    const unit = fs
      .readFileSync(path.join(root, 'lib/systemd/system/actiongate.service'), 'utf8')
      .replace('/usr/bin/actiongate', path.join(root, 'usr/bin/actiongate'));
    assert.match(unit, /^Type=notify$/m);
    fs.writeFileSync(path.join(dir, 'actiongate.service'), unit);
    execFileSync('systemd-analyze', ['verify', path.join(dir, 'actiongate.service')], { stdio: 'pipe' });

    // the shipped configuration, on a free loopback port
    const port = await freePort();
    const yaml = fs
      .readFileSync(path.join(root, 'etc/actiongate/actiongate.yaml'), 'utf8')
      .replace(/^    port: 8080$/m, `    port: ${port}`)
      .replace(/^    bindIP: "0\.0\.0\.0"$/m, '    bindIP: "127.0.0.1"');
    assert.ok(yaml.includes(`port: ${port}`) && yaml.includes('bindIP: "127.0.0.1"'));
    fs.writeFileSync(path.join(dir, 'actiongate.yaml'), yaml);

    // a NOTIFY_SOCKET like systemd's: a datagram socket whose messages are printed one per line
    const sockPath = path.join(dir, 'notify');
    notify = spawn('python3', ['-u', '-c',
      'import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("bound",flush=True)\n' +
      'while True:\n  print(s.recv(4096).decode(),flush=True)', sockPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    let notes = '';
    notify.stdout.on('data', (d) => (notes += d));
    for (let i = 0; i < 50 && !notes.includes('bound'); i++) await sleep(100);
    assert.ok(notes.includes('bound'));

    let out = '';
    const env = { ...process.env, NOTIFY_SOCKET: sockPath };
    delete env.PORT;
    delete env.REDIS_URL;
    proc = spawn(path.join(root, 'usr/bin/actiongate'), ['--config', path.join(dir, 'actiongate.yaml'), '--public',
      path.join(root, 'usr/share/actiongate/public')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    const exited = new Promise((r) => proc.on('exit', (code) => r(code)));
    for (let i = 0; i < 100 && !notes.includes('READY=1'); i++) await sleep(100);
    assert.ok(notes.includes('READY=1'), `READY=1 sent once listening:\n${notes}\n${out}`);

    const index = await get(`http://127.0.0.1:${port}/`);
    assert.strictEqual(index.status, 200);
    assert.deepStrictEqual(index.body, fs.readFileSync(path.join(root, 'usr/share/actiongate/public/index.html')));
    assert.strictEqual((await get(`http://127.0.0.1:${port}/readyz`)).status, 200);
    assert.match((await get(`http://127.0.0.1:${port}/faye/client.js`)).body.toString(), /\/\/ shipped faye\n$/);
    assert.match((await get(`http://127.0.0.1:${port}/socket.io/socket.io.js`)).body.toString(), /\/\/ shipped socket\.io\n$/);
    const rendered = await get(`http://127.0.0.1:${port}/public/javascript/ActionheroWebsocketClient.js`);
    assert.strictEqual(rendered.status, 200);
    assert.match(rendered.body.toString(), /\/\/ shipped template\n$/);
    const status = JSON.parse((await get(`http://127.0.0.1:${port}/api/status`)).body);
    assert.match(status.actiongateVersion, /^\d+\.\d+\.\d+$/);

    proc.kill('SIGTERM');
    assert.strictEqual(await exited, 0, out);
    for (let i = 0; i < 50 && !notes.includes('STOPPING=1'); i++) await sleep(100);
    assert.ok(notes.includes('STOPPING=1'), 'STOPPING=1 sent when the stop begins');
    proc = null;
  } finally {
    if (proc) proc.kill('SIGKILL');
    if (notify) notify.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
