'use strict';
// A client of actiongate's resume protocol (README "Resume") for tests, over a carrier of choice: 'primus' (the plain
// WebSocket at /primus), engine.io-client on 'websocket' or 'polling', or 'sse' (engine.io's SSE transport, PROTOCOL.md
// §5: a raw event stream down, POSTs up, one at a time so that messages keep their order). It does what the generated browser client
// does: asks to be resumable after the welcome, reconnects when its carrier drops and presents its id, token, last
// sequence number and last offset per room, drops what it already has, and sends again the requests still unanswered.
// It checks the protocol as it goes: `gaps` lists every number or offset that skipped one, `dups` counts what it
// dropped as already had.
const http = require('node:http');
const WebSocket = require('ws');
const { Socket } = require('engine.io-client');

// route: where the connection to resume lives (the resumable answer's route, several workers): the new carrier asks
// to be made there.
function openCarrier(kind, port, handlers, route, firstQuery) {
  const query = route ? { resume: route } : {};
  if (kind === 'primus') {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/primus${route ? `?resume=${encodeURIComponent(route)}` : firstQuery || ''}`);
    ws.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('"primus::ping::')) {
        ws.send(JSON.stringify('primus::pong::' + JSON.parse(text).slice('primus::ping::'.length)));
        return;
      }
      handlers.message(text);
    });
    ws.on('error', () => {});
    ws.on('close', () => handlers.close());
    return {
      send: (t) => ws.readyState === WebSocket.OPEN && ws.send(t),
      close: () => ws.terminate(),
    };
  }
  if (kind === 'sse') return sseCarrier(port, handlers, route);
  const socket = new Socket(`http://127.0.0.1:${port}`, { path: '/primus/', transports: [kind], upgrade: false, query });
  socket.on('message', (m) => handlers.message(String(m)));
  socket.on('error', () => {});
  socket.on('close', () => handlers.close());
  return {
    send: (t) => socket.readyState === 'open' && socket.send(t),
    close: () => socket.close(),
  };
}

function sseCarrier(port, handlers, route) {
  const base = `http://127.0.0.1:${port}/primus/?EIO=4&transport=sse`;
  let sid = null;
  let closed = false;
  let req = null;
  const queue = [];
  let posting = false;
  const end = () => {
    if (closed) return;
    closed = true;
    if (req) req.destroy();
    handlers.close();
  };
  const flush = () => {
    if (posting || closed || sid === null || queue.length === 0) return;
    posting = true;
    const body = queue.splice(0).join('\x1e');
    const r = http.request(`${base}&sid=${encodeURIComponent(sid)}`,
      { method: 'POST', agent: false, headers: { 'content-type': 'text/plain;charset=UTF-8' } }, (res) => {
        res.resume();
        res.on('end', () => {
          posting = false;
          if (res.statusCode !== 200) end();
          else flush();
        });
      });
    r.on('error', () => {
      posting = false;
      end();
    });
    r.end(body);
  };
  const post = (pkt) => {
    queue.push(pkt);
    flush();
  };
  req = http.get(`${base}&sse=1${route ? `&resume=${encodeURIComponent(route)}` : ''}`,
    { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        end();
        return;
      }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        let at;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, at);
          buf = buf.slice(at + 2);
          const data = ev.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
          for (const pkt of data ? data.split('\x1e') : []) {
            if (pkt[0] === '0') sid = JSON.parse(pkt.slice(1)).sid;
            else if (pkt[0] === '2') post('3');
            else if (pkt[0] === '4') handlers.message(pkt.slice(1));
            else if (pkt[0] === '1') end();
          }
        }
      });
      res.on('end', end);
      res.on('error', end);
    });
  req.on('error', end);
  return {
    send: (t) => !closed && sid !== null && post(`4${t}`),
    close: end,
  };
}

class ResumeClient {
  constructor(kind, port) {
    this.kind = kind;
    this.port = port;
    this.id = null;
    this.token = null;
    this.route = null;
    this.noRoute = false; // true: reconnect without the route, as a client that ignores it does
    this.seq = 0;
    this.offsets = {};
    this.ready = false;
    this.pending = new Map(); // messageId -> { msg, resolve }
    this.nextId = 1;
    this.lines = []; // chat lines and pushes, as delivered to the application
    this.gaps = [];
    this.dups = 0;
    this.extraAnswers = 0;
    this.resumed = 0;
    this.notResumed = [];
    this.connects = 0;
    this.answered = 0; // resume verbs answered (a carrier cut before its answer came counts in connects only)
    this.stopped = false;
    this.listeners = [];
    this.maxConnects = 1000; // bounded: a test that keeps its node down longer raises it
    this.firstQuery = ''; // added to the first carrier's /primus URL only (e.g. "?token=..."): a resume needs none
  }

  start() {
    this.connects++;
    this.ready = false;
    this.carrier = openCarrier(this.kind, this.port, {
      message: (t) => this.onText(t),
      close: () => {
        this.ready = false;
        if (!this.stopped && this.connects < this.maxConnects) setTimeout(() => this.start(), 10);
      },
    }, this.token && !this.noRoute ? this.route : null, this.token ? '' : this.firstQuery);
  }

  stop() {
    this.stopped = true;
    this.carrier.close();
  }

  // Resolves when pred(this) holds, checked after every frame; rejects after timeoutMs.
  until(pred, timeoutMs = 20000) {
    if (pred(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const l = { pred, resolve };
      l.timer = setTimeout(() => {
        this.listeners = this.listeners.filter((x) => x !== l);
        reject(new Error(`timed out: ${this.kind} connects=${this.connects} resumed=${this.resumed} pending=${this.pending.size} ` +
          `lines=${this.lines.length} gaps=${JSON.stringify(this.gaps)} notResumed=${JSON.stringify(this.notResumed)}`));
      }, timeoutMs);
      this.listeners.push(l);
    });
  }

  notify() {
    this.listeners = this.listeners.filter((l) => {
      if (!l.pred(this)) return true;
      clearTimeout(l.timer);
      l.resolve();
      return false;
    });
  }

  // Sends a request (queued while the carrier is down) and resolves with its one reply.
  request(obj) {
    const msg = { ...obj, messageId: `m${this.nextId++}` };
    return new Promise((resolve) => {
      this.pending.set(msg.messageId, { msg, resolve });
      if (this.ready) this.carrier.send(JSON.stringify(msg));
    });
  }

  onText(text) {
    const f = JSON.parse(text);
    if (f.welcome !== undefined && f.context === 'api') {
      const hello = this.token
        ? { event: 'resume', id: this.id, token: this.token, seq: this.seq, offsets: this.offsets }
        : { event: 'resume' };
      this.carrier.send(JSON.stringify({ ...hello, messageId: `resume${this.connects}` }));
      return;
    }
    if (f.seq !== undefined) {
      if (f.seq <= this.seq) {
        this.dups++;
        return;
      }
      if (f.seq !== this.seq + 1) this.gaps.push(`seq ${this.seq} -> ${f.seq}`);
      this.seq = f.seq;
    }
    if (f.offset !== undefined && f.room !== undefined) {
      const last = this.offsets[f.room] || 0;
      if (f.offset <= last) {
        this.dups++;
        return;
      }
      if (last !== 0 && f.offset !== last + 1) this.gaps.push(`${f.room} ${last} -> ${f.offset}`);
      this.offsets[f.room] = f.offset;
    }
    if (f.context === 'response' && typeof f.messageId === 'string' && f.messageId.startsWith('resume')) {
      this.onResumeAnswer(f);
    } else if (f.context === 'response' && this.pending.has(f.messageId)) {
      const p = this.pending.get(f.messageId);
      this.pending.delete(f.messageId);
      p.resolve(f);
    } else if (f.context === 'response' && f.messageId !== undefined) {
      this.extraAnswers++; // a second answer, under a number of its own, to a request answered already
    } else if (f.context === 'user' || f.context === 'api') {
      this.lines.push(f);
    }
    this.notify();
  }

  onResumeAnswer(f) {
    this.answered++;
    const d = f.data || {};
    if (d.resumed === true) {
      this.resumed++;
      if (d.route) this.route = d.route; // taken over by another node: the next carrier goes there
    } else {
      if (d.resumed === false) this.notResumed.push(d.reason);
      // a new connection: numbering starts again, rooms are joined again by the application
      this.seq = 0;
      this.offsets = {};
      this.rejoin = true;
    }
    if (d.token) {
      this.id = d.id;
      this.token = d.token;
      this.route = d.route || null;
    }
    this.ready = true;
    for (const { msg } of this.pending.values()) this.carrier.send(JSON.stringify(msg));
    this.notify();
  }
}

module.exports = { ResumeClient };
