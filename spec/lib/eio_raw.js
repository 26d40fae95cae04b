'use strict';
// Raw engine.io v4 helpers for tests (PROTOCOL.md §4, §5): HTTP requests with exact bytes, payload decoding, a raw
// WebSocket that records packets, and a raw SSE reader over a plain HTTP GET.
const http = require('node:http');
const WebSocket = require('ws');

const SEP = '\x1e';

// One HTTP request; resolves {status, headers, body (Buffer), text}. opts: method, headers, body, agent, timeout.
function request(url, opts = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method || 'GET', headers: opts.headers || {}, agent: opts.agent || false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode, headers: res.headers, body, text: body.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.timeout) req.setTimeout(opts.timeout, () => req.destroy(new Error('request timeout')));
    if (opts.chunks) {
      (async () => {
        for (const c of opts.chunks) {
          req.write(c);
          await new Promise((r) => setTimeout(r, 20));
        }
        req.end();
      })();
    } else {
      req.end(opts.body);
    }
    if (opts.onRequest) opts.onRequest(req);
  });
}

function decodePayload(text) {
  return text.split(SEP).map((p) => (p[0] === 'b' ? { type: 4, binary: Buffer.from(p.slice(1), 'base64') } : { type: Number(p[0]), data: p.slice(1) }));
}

class Eio {
  constructor(base, path = '/primus/') {
    this.base = base; // http://127.0.0.1:port
    this.path = path;
  }

  url(query) {
    return `${this.base}${this.path}?EIO=4&${query}`;
  }

  async handshake(extra = '') {
    const res = await request(this.url(`transport=polling${extra}`));
    if (res.status !== 200) throw new Error(`handshake ${res.status} ${res.text}`);
    const open = JSON.parse(res.text.slice(1));
    return { res, open, sid: open.sid };
  }

  poll(sid, opts = {}) {
    return request(this.url(`transport=polling&sid=${encodeURIComponent(sid)}`), opts);
  }

  post(sid, body, opts = {}) {
    const headers = { 'content-type': 'text/plain;charset=UTF-8', ...(opts.headers || {}) };
    return request(this.url(`transport=${opts.transport || 'polling'}&sid=${encodeURIComponent(sid)}`),
      { ...opts, method: 'POST', headers, body });
  }

  // Polls until a packet matching pred arrives (answering pings unless noPong); returns all packets seen.
  async pollUntil(sid, pred, { noPong = false, max = 50 } = {}) {
    const seen = [];
    for (let i = 0; i < max; i++) {
      const res = await this.poll(sid);
      if (res.status !== 200) throw new Error(`poll ${res.status} ${res.text}`);
      for (const p of decodePayload(res.text)) {
        seen.push(p);
        if (p.type === 2 && !noPong) await this.post(sid, '3');
        if (pred(p)) return seen;
      }
    }
    throw new Error('pollUntil: not found');
  }

  ws(query, opts) {
    return new RawWs(this.url(query).replace(/^http/, 'ws'), opts);
  }
}

// A raw WebSocket that records every message as {text} or {binary}, and waits for matching ones.
class RawWs {
  constructor(url, opts = {}) {
    this.messages = [];
    this.waiters = [];
    this.ws = new WebSocket(url, opts);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (req, res) => reject(Object.assign(new Error(`unexpected ${res.statusCode}`), { status: res.statusCode, res })));
    });
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on('error', () => {});
    this.ws.on('message', (data, isBinary) => {
      const m = isBinary ? { binary: Buffer.from(data) } : { text: data.toString() };
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => !(w.pred(m) && (w.resolve(m), true)));
    });
  }

  next(pred = () => true, timeoutMs = 5000) {
    const i = this.messages.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.messages.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (m) => { clearTimeout(t); this.messages.splice(this.messages.indexOf(m), 1); resolve(m); } };
      const t = setTimeout(() => { this.waiters = this.waiters.filter((x) => x !== w); reject(new Error('ws next: timeout')); }, timeoutMs);
      this.waiters.push(w);
    });
  }

  send(data) {
    this.ws.send(data);
  }

  close() {
    this.ws.close();
    return this.closed;
  }
}

// Reads a raw text/event-stream over a plain GET: {res, events (parsed), raw (string), next(pred), destroy()}.
function sseOpen(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const st = { raw: '', events: [], waiters: [], comments: [] };
    let buf = '';
    let cur = { data: [] };
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
      st.res = res;
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        st.raw += chunk;
        buf += chunk;
        let nl;
        while ((nl = buf.search(/\r\n|\n|\r/)) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
          if (line === '') {
            if (cur.data.length || cur.id !== undefined) {
              const ev = { id: cur.id, event: cur.event || 'message', data: cur.data.join('\n') };
              if (ev.event === 'j') ev.payload = JSON.parse(ev.data);
              else ev.payload = ev.data;
              if (cur.data.length) {
                st.events.push(ev);
                st.waiters = st.waiters.filter((w) => !(w.pred(ev) && (w.resolve(ev), true)));
              }
            }
            cur = { data: [] };
          } else if (line[0] === ':') {
            st.comments.push(line);
          } else {
            const i = line.indexOf(':');
            const field = i < 0 ? line : line.slice(0, i);
            let value = i < 0 ? '' : line.slice(i + 1);
            if (value[0] === ' ') value = value.slice(1);
            if (field === 'data') cur.data.push(value);
            else if (field === 'id') cur.id = value;
            else if (field === 'event') cur.event = value;
          }
        }
      });
      st.ended = new Promise((r) => res.on('end', r).on('close', r));
      resolve(st);
    });
    req.on('error', reject);
    st.req = req;
    st.next = (pred = () => true, timeoutMs = 5000) => {
      const found = st.events.find((e) => pred(e) && !e.taken);
      if (found) return Promise.resolve((found.taken = true, found));
      return new Promise((res2, rej2) => {
        const w = { pred, resolve: (e) => { clearTimeout(t); e.taken = true; res2(e); } };
        const t = setTimeout(() => { st.waiters = st.waiters.filter((x) => x !== w); rej2(new Error('sse next: timeout')); }, timeoutMs);
        st.waiters.push(w);
      });
    };
    st.destroy = () => req.destroy();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = { SEP, request, decodePayload, Eio, RawWs, sseOpen, sleep };
