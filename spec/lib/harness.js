'use strict';
// Test harness: starts the real actiongate binary (AG_BIN, default build/actiongate) on a free port with a generated
// YAML config, waits until it listens, and stops it again. Every server's stderr is kept; a sanitizer report in it
// fails the test that stopped the server.
//
// AG_STORE picks the store a server runs on when its test does not choose one: "memory" (the default) or "redis",
// which gives every such server a private redis-server of its own (started before it, stopped after it), so the same
// suite runs, and asserts the same frames in the same order, on both stores (spec/run runs the integration suites once
// per store).
//
// AG_WORKERS sets general.workers for every server whose test does not choose it (default 1: one loop, whatever the
// machine's cores): AG_WORKERS=2 runs a suite with two event loops per server, where requests land on either loop.
//
// AG_IO_URING sets general.ioUring for every server whose test does not choose it ("auto", the binary's default, or
// "off"): AG_IO_URING=off runs a suite with every WebSocket written on its own, the path a kernel without io_uring takes.
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = process.env.AG_BIN ? path.resolve(process.env.AG_BIN) : path.join(ROOT, 'build', 'actiongate');

// A port nothing listens on now, never one this process was given before: a port handed out is often not bound yet
// (a server about to start, an upstream meant to refuse), and the kernel may offer it again.
const givenPorts = new Set();
function unboundPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}
async function freePort() {
  for (;;) {
    const port = await unboundPort();
    if (!givenPorts.has(port)) {
      givenPorts.add(port);
      return port;
    }
  }
}

// Turns a nested JS object into YAML (only what configs need: maps, lists, scalars).
function toYaml(obj, indent = '') {
  let out = '';
  for (const [k, v] of Object.entries(obj)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      out += `${indent}${k}:\n${toYaml(v, indent + '  ')}`;
    } else if (Array.isArray(v)) {
      out += `${indent}${k}: [${v.map((x) => JSON.stringify(x)).join(', ')}]\n`;
    } else {
      out += `${indent}${k}: ${typeof v === 'string' ? JSON.stringify(v) : v}\n`;
    }
  }
  return out;
}

function deepMerge(a, b) {
  const out = { ...a };
  for (const [k, v] of Object.entries(b || {})) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && a[k] && typeof a[k] === 'object' ? deepMerge(a[k], v) : v;
  }
  return out;
}

const STORE = process.env.AG_STORE || 'memory';
if (STORE !== 'memory' && STORE !== 'redis') throw new Error(`AG_STORE=${STORE}: "memory" or "redis"`);

const WORKERS = Number(process.env.AG_WORKERS || 1);
if (!Number.isInteger(WORKERS) || WORKERS < 1) throw new Error(`AG_WORKERS=${process.env.AG_WORKERS}: a number of workers`);

const IO_URING = process.env.AG_IO_URING || '';
if (IO_URING !== '' && IO_URING !== 'auto' && IO_URING !== 'off') throw new Error(`AG_IO_URING=${IO_URING}: "auto" or "off"`);

const SANITIZER =
  /(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer|WARNING: ThreadSanitizer)/;

class Server {
  constructor(opts = {}) {
    this.opts = opts;
    this.stderr = '';
    this.exited = null;
  }

  async start() {
    // a private Redis first: its port is bound before the server's is picked
    const own = this.opts.config && this.opts.config.redis && this.opts.config.redis.url !== undefined;
    if (STORE === 'redis' && !own && !(this.opts.env && 'REDIS_URL' in this.opts.env)) this.redis = await new Redis().start();
    const port = this.opts.port || (await freePort());
    this.port = port;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-test-'));
    const config = deepMerge(
      {
        general: { logLevel: 'warn', shutdownTimeout: 2000, workers: WORKERS, ...(IO_URING ? { ioUring: IO_URING } : {}) },
        servers: { web: { port, bindIP: '127.0.0.1' } },
      },
      this.opts.config
    );
    if (this.redis) config.redis = { ...(config.redis || {}), url: this.redis.url };
    this.configPath = path.join(this.dir, 'actiongate.yaml');
    fs.writeFileSync(this.configPath, toYaml(config));
    const env = { ...process.env, ...(this.opts.env || {}) };
    delete env.PORT;
    if (!this.opts.env || !('REDIS_URL' in this.opts.env)) delete env.REDIS_URL;
    env.ASAN_OPTIONS = env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0:exitcode=23:fast_unwind_on_malloc=0';
    env.LSAN_OPTIONS = env.LSAN_OPTIONS || `suppressions=${path.join(ROOT, 'spec', 'lsan.supp')}:print_suppressions=0`;
    env.UBSAN_OPTIONS = env.UBSAN_OPTIONS || 'print_stacktrace=1';
    this.proc = spawn(this.opts.bin || BIN, ['--config', this.configPath, ...(this.opts.args || [])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout.on('data', (d) => (this.stderr += d));
    this.proc.stderr.on('data', (d) => (this.stderr += d));
    // a server's private Redis ends with it, whoever ends the server (a test may expect it to exit on its own)
    this.exitPromise = new Promise((resolve) =>
      this.proc.on('exit', (code, signal) => this.stopRedis().then(() => resolve((this.exited = { code, signal }))))
    );
    await this.waitListening();
    this.url = `http://127.0.0.1:${port}`;
    this.wsUrl = `ws://127.0.0.1:${port}`;
    return this;
  }

  async waitListening(timeoutMs = 10000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`actiongate exited early (${JSON.stringify(this.exited)}):\n${this.stderr}`);
      const ok = await new Promise((resolve) => {
        const s = net.connect(this.port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
      if (ok) return;
      await new Promise((r) => setTimeout(r, 30));
    }
    throw new Error(`actiongate did not listen on ${this.port}:\n${this.stderr}`);
  }

  // SIGTERM, wait for exit; throws if the exit was not clean or a sanitizer spoke.
  async stop(signal = 'SIGTERM', timeoutMs = 8000) {
    if (!this.proc) return;
    if (!this.exited) this.proc.kill(signal);
    let handle;
    const timer = new Promise((r) => (handle = setTimeout(() => r('timeout'), timeoutMs)));
    const res = await Promise.race([this.exitPromise, timer]);
    clearTimeout(handle);
    if (res === 'timeout') {
      this.proc.kill('SIGKILL');
      await this.exitPromise;
      throw new Error(`actiongate did not exit within ${timeoutMs} ms of ${signal}\n${this.stderr}`);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
    await this.stopRedis();
    this.checkSanitizer();
    if (signal !== 'SIGKILL' && res.code !== 0) throw new Error(`actiongate exited with ${JSON.stringify(res)}\n${this.stderr}`);
    return res;
  }

  kill() {
    if (this.proc && !this.exited) this.proc.kill('SIGKILL');
    return this.exitPromise;
  }

  async stopRedis() {
    const r = this.redis;
    this.redis = null;
    if (r) await r.stop();
  }

  checkSanitizer() {
    if (SANITIZER.test(this.stderr)) throw new Error(`sanitizer report from actiongate:\n${this.stderr}`);
  }
}

async function startServer(opts) {
  return new Server(opts).start();
}

// A real redis-server on a free port, in a temporary directory, no persistence.
class Redis {
  async start(port) {
    this.port = port || (await freePort());
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-redis-'));
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', this.dir], { stdio: 'ignore' });
    this.exitPromise = new Promise((resolve) => this.proc.on('exit', resolve));
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      try {
        execFileSync('redis-cli', ['-p', String(this.port), 'ping'], { stdio: 'pipe' });
        this.url = `redis://127.0.0.1:${this.port}`;
        return this;
      } catch (e) {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error('redis-server did not start');
  }
  cli(...args) {
    return execFileSync('redis-cli', ['-p', String(this.port), ...args], { encoding: 'utf8' }).trim();
  }
  async stop() {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
    await this.exitPromise;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// utime + stime of a process, in clock ticks (/proc/PID/stat fields 14 and 15): a spinning loop burns ~100 a second.
function cpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

module.exports = {
  WORKERS, startServer, Server, Redis, freePort, toYaml, ROOT, BIN, STORE, cpuTicks };
