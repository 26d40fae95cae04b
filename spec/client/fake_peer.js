'use strict';
// A scripted engine.io v4 peer for node-side client tests: a WebSocket class whose instances talk to this object
// instead of a network. It answers like actiongate's session layer where a test does not care (welcome, detailsView,
// roomAdd) and records every packet the client sends, so tests can assert exact frames and answer the rest themselves.
class FakePeer {
  constructor(opts = {}) {
    this.opts = { pingInterval: 1000, pingTimeout: 1000, ...opts };
    this.sockets = []; // every socket ever opened, in order
    this.frames = []; // {sock, msg} for every message packet (parsed JSON)
    this.packets = []; // raw packets
    this.refuse = false; // new sockets fail to open
    this.autoReply = true;
    this.rooms = {};
    this.nextConn = 1;
    const peer = this;
    this.WebSocket = class FakeWebSocket {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        this.conn = { id: `conn-${peer.nextConn++}`, rooms: [] };
        peer.sockets.push(this);
        setImmediate(() => peer.accept(this));
      }
      send(data) {
        if (this.readyState !== 1) throw new Error('not open');
        peer.onPacket(this, data);
      }
      close() {
        if (this.readyState === 3) return;
        this.readyState = 3;
        peer.emitClose(this);
      }
    };
  }

  get current() {
    return this.sockets[this.sockets.length - 1];
  }

  accept(ws) {
    if (ws.readyState === 3) return;
    if (this.refuse) {
      ws.readyState = 3;
      if (ws.onerror) ws.onerror({});
      this.emitClose(ws);
      return;
    }
    ws.readyState = 1;
    if (ws.onopen) ws.onopen({});
    if (this.silent) return; // open socket, no engine.io open packet: a connect that never completes
    const sid = /[?&]sid=/.test(ws.url);
    if (!sid) {
      this.push(ws, '0' + JSON.stringify({ sid: ws.conn.id, upgrades: [], pingInterval: this.opts.pingInterval,
        pingTimeout: this.opts.pingTimeout, maxPayload: 1000000 }));
      this.push(ws, '4' + JSON.stringify({ welcome: 'Welcome to the actiongate api', context: 'api' }));
    }
  }

  push(ws, packet) {
    if (ws.readyState === 1 && ws.onmessage) ws.onmessage({ data: packet });
  }

  send(obj, ws = this.current) {
    this.push(ws, '4' + JSON.stringify(obj));
  }

  // The server side drops the socket (as a killed process would).
  drop(ws = this.current) {
    if (ws.readyState === 3) return;
    ws.readyState = 3;
    this.emitClose(ws);
  }

  emitClose(ws) {
    setImmediate(() => ws.onclose && ws.onclose({ code: 1006 }));
  }

  onPacket(ws, data) {
    this.packets.push({ ws, data });
    if (data[0] !== '4') return;
    const msg = JSON.parse(data.slice(1));
    this.frames.push({ ws, msg });
    if (!this.autoReply) return;
    const reply = (o) => this.send({ ...o, context: 'response', messageId: msg.messageId }, ws);
    if (msg.event === 'detailsView') {
      reply({ status: 'OK', data: { id: ws.conn.id, fingerprint: ws.conn.id, rooms: ws.conn.rooms.slice() } });
    } else if (msg.event === 'roomAdd') {
      if (!ws.conn.rooms.includes(msg.room)) ws.conn.rooms.push(msg.room);
      reply({ status: 'OK', data: true });
    }
  }

  // Resolves when pred matches a recorded frame (index order).
  async waitFrame(pred, timeoutMs = 3000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find((x) => pred(x.msg, x.ws));
      if (f) return f;
      if (Date.now() > deadline) throw new Error('frame not seen; got ' + JSON.stringify(this.frames.map((x) => x.msg)));
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

function waitFor(pred, timeoutMs = 3000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    (function check() {
      let v;
      try {
        v = pred();
      } catch (e) {
        v = false;
      }
      if (v) return resolve(v);
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(check, 5);
    })();
  });
}

module.exports = { FakePeer, waitFor };
