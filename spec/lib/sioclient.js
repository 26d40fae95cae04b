'use strict';
// Test wrappers around the stock socket.io-client 4.x (npm) and a raw engine.io-client session on the socket.io path:
// every event is recorded, and take() waits for the first one not yet taken that matches.
const { io } = require('socket.io-client');
const { Socket: EngineSocket } = require('engine.io-client');

// A safety net: a promise that does not settle within ms fails the test instead of hanging it.
function within(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

const TRANSPORTS = { polling: ['polling'], websocket: ['websocket'], upgrade: ['polling', 'websocket'] };

class Recorder {
  constructor() {
    this.events = [];
    this.waiters = [];
  }

  push(name, args) {
    const ev = { name, args, taken: false };
    this.events.push(ev);
    for (const w of this.waiters.slice()) if (w(ev)) break;
  }

  // The first event called name (and matching pred) not taken yet, now or when it arrives.
  take(name, pred = () => true, timeoutMs = 10000) {
    const match = (ev) => !ev.taken && ev.name === name && pred(...ev.args);
    const found = this.events.find(match);
    if (found) {
      found.taken = true;
      return Promise.resolve(found.args);
    }
    return new Promise((resolve, reject) => {
      const w = (ev) => {
        if (!match(ev)) return false;
        ev.taken = true;
        this.waiters.splice(this.waiters.indexOf(w), 1);
        clearTimeout(timer);
        resolve(ev.args);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no "${name}" event within ${timeoutMs} ms; got ${JSON.stringify(this.events.map((e) => e.name))}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  names() {
    return this.events.map((e) => e.name);
  }
}

// A stock socket.io client; mode is polling | websocket | upgrade. Resolves once connected.
async function connectSio(srv, mode = 'upgrade', opts = {}) {
  const socket = io(srv.url, { transports: TRANSPORTS[mode], reconnection: false, forceNew: true, timeout: 5000, ...opts });
  const rec = new Recorder();
  socket.onAny((name, ...args) => rec.push(name, args));
  for (const name of ['connect', 'disconnect', 'connect_error']) socket.on(name, (...args) => rec.push(name, args));
  const upgrade = new Promise((resolve) => socket.io.on('open', () => socket.io.engine.once('upgrade', (t) => resolve(t.name))));
  upgrade.catch(() => {});
  await rec.take('connect');
  return {
    socket,
    rec,
    get upgraded() {
      return within(upgrade, 10000, 'upgrade');
    },
    take: rec.take.bind(rec),
    // resolves [reply], like the arguments of an ack callback
    ack: async (...args) => [await socket.timeout(10000).emitWithAck(...args)],
  };
}

// The stock socket.io-client as the connection state recovery tests use it (README "Resume", socket.io): it comes back
// by itself, soon, and presents its pid and offset; with `retries` it emits a request that lost its answer in a drop
// again (ackTimeout is long, so only drops make it do that). Records every event and, per connect, its id, `recovered`,
// pid and engine.io sid. opts go to io() after these.
function recoveringSio(port, transport = 'websocket', opts = {}) {
  const socket = io(`http://127.0.0.1:${port}`, {
    transports: [transport],
    forceNew: true,
    reconnectionDelay: 50,
    reconnectionDelayMax: 200,
    randomizationFactor: 0,
    timeout: 5000,
    retries: 50,
    ackTimeout: 60000,
    ...opts,
  });
  const c = { socket, events: [], connects: [] };
  socket.onAny((name, ...args) => c.events.push({ name, args }));
  socket.on('connect', () =>
    c.connects.push({ id: socket.id, recovered: socket.recovered, pid: socket._pid, sid: socket.io.engine.id }));
  c.said = (prefix) =>
    c.events.filter((e) => e.name === 'say' && e.args[0].message.startsWith(prefix)).map((e) => e.args[0].message);
  // the n-th connect, waited for at most 2,000 times 10 ms
  c.connected = async (n = 1) => {
    for (let i = 0; i < 2000 && c.connects.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    if (c.connects.length < n) throw new Error(`no connect #${n}: ${c.connects.length} so far`);
  };
  return c;
}

// A raw engine.io session on the socket.io path: the test speaks socket.io packets itself.
async function rawEngine(srv, opts = {}) {
  const socket = new EngineSocket(srv.url, { path: '/socket.io/', transports: ['websocket'], ...opts });
  const rec = new Recorder();
  socket.on('message', (m) => rec.push('message', [m]));
  const closing = new Promise((resolve) => socket.once('close', (reason) => resolve(reason)));
  await within(
    new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    }),
    10000,
    'engine.io open'
  );
  return {
    socket,
    rec,
    get closed() {
      return within(closing, 10000, 'engine.io close');
    },
    take: (pred, ms) => rec.take('message', pred, ms).then((a) => a[0]),
  };
}

module.exports = { connectSio, rawEngine, recoveringSio, Recorder, TRANSPORTS };
