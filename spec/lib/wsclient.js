'use strict';
// A plain-WebSocket client of the /primus endpoint for tests: collects every frame, waits for frames matching a
// predicate, and matches replies by messageId.
const WebSocket = require('ws');

class WsClient {
  constructor(url, opts = {}) {
    this.url = url;
    this.frames = []; // every parsed frame, in arrival order
    this.waiters = [];
    this.opts = opts;
    this.nextId = 1;
  }

  open() {
    return new Promise((resolve, reject) => {
      this.ws = new WebSocket(this.url, this.opts);
      this.ws.on('message', (data, isBinary) => {
        const text = data.toString();
        let frame;
        try {
          frame = isBinary ? { binary: data } : JSON.parse(text);
        } catch (e) {
          frame = { raw: text };
        }
        // Answer Primus heartbeats like the stock client unless told not to.
        if (typeof frame === 'string' && frame.startsWith('primus::ping::') && !this.opts.noPong) {
          this.ws.send(JSON.stringify('primus::pong::' + frame.slice('primus::ping::'.length)));
        }
        this.frames.push(frame);
        this.waiters = this.waiters.filter((w) => {
          if (w.pred(frame)) {
            w.resolve(frame);
            return false;
          }
          return true;
        });
      });
      this.closed = new Promise((r) => this.ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
      this.ws.once('open', () => resolve(this));
      this.ws.once('error', reject);
    });
  }

  // Resolves with the first frame (already received or future) that matches pred.
  next(pred, timeoutMs = 5000) {
    const seen = this.frames.find(pred);
    if (seen) {
      this.frames.splice(this.frames.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (f) => {
          clearTimeout(w.timer);
          this.frames.splice(this.frames.indexOf(f), 1);
          resolve(f);
        },
      };
      w.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`timeout waiting for a frame; have: ${JSON.stringify(this.frames).slice(0, 2000)}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  welcome() {
    return this.next((f) => f && f.context === 'api' && f.welcome !== undefined);
  }

  sendRaw(text) {
    this.ws.send(text);
  }

  // Sends obj with a fresh numeric messageId (unless it has one) and resolves with the reply.
  request(obj, timeoutMs) {
    const msg = { ...obj };
    if (msg.messageId === undefined) msg.messageId = this.nextId++;
    this.ws.send(JSON.stringify(msg));
    return this.next((f) => f && f.context === 'response' && f.messageId === msg.messageId, timeoutMs);
  }

  close() {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    return this.closed;
  }
}

async function connect(url, opts) {
  const c = new WsClient(url, opts);
  await c.open();
  return c;
}

module.exports = { WsClient, connect };
