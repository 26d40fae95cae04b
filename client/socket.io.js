/*
 * socket.io.js, as served at <servers.socketio.path>/socket.io.js: a small socket.io v5 client over an engine.io v4
 * client of its own (long-polling, websocket, and the upgrade from one to the other), for pages written against
 * socket.io's `io.connect(url, opts)` / `io(url, opts)`:
 *
 *   var socket = io.connect('http://localhost:8080/');
 *   socket.on('welcome', function (data) { ... });
 *   socket.emit('action', {action: 'randomNumber'});
 *   socket.emit('roomView', {room: 'defaultRoom'}, function (reply) { ... });   // an ack callback
 *   socket.disconnect();
 *
 * Options: path (or the old `resource`), query, auth, transports (`["xhr-polling"]` or `["polling"]`: long-polling
 * only; `["websocket"]`: websocket only; both, the default: polling first, then the upgrade), upgrade, reconnection
 * (or the old `reconnect`), reconnectionDelay, reconnectionDelayMax, reconnectionAttempts, timeout, autoConnect.
 * Events: connect, disconnect(reason), connect_error(err), reconnect_attempt(n), reconnect(n), reconnect_failed, and
 * whatever the server emits. ES5, no dependencies.
 */
(function (root) {
  'use strict';

  var DEFAULT_PATH = "/socket.io"/*path*/;
  var RS = '\x1e'; // engine.io v4 polling packet separator
  var RESERVED = { connect: 1, connect_error: 1, disconnect: 1, disconnecting: 1, newListener: 1, removeListener: 1 };

  // ---------------------------------------------------------------- events

  function Emitter() {}
  Emitter.prototype.on = function (name, fn) {
    this._listeners = this._listeners || {};
    (this._listeners[name] = this._listeners[name] || []).push(fn);
    return this;
  };
  Emitter.prototype.addEventListener = Emitter.prototype.on;
  Emitter.prototype.once = function (name, fn) {
    var self = this;
    function once() {
      self.off(name, once);
      fn.apply(self, arguments);
    }
    once.fn = fn;
    return this.on(name, once);
  };
  Emitter.prototype.off = function (name, fn) {
    if (!this._listeners) return this;
    if (name === undefined) {
      this._listeners = {};
      return this;
    }
    var list = this._listeners[name];
    if (!list) return this;
    if (fn === undefined) {
      delete this._listeners[name];
      return this;
    }
    for (var i = 0; i < list.length; i++) {
      if (list[i] === fn || list[i].fn === fn) {
        list.splice(i, 1);
        break;
      }
    }
    return this;
  };
  Emitter.prototype.removeListener = Emitter.prototype.off;
  Emitter.prototype.removeAllListeners = function (name) {
    return this.off(name);
  };
  Emitter.prototype.emitLocal = function (name) {
    var list = this._listeners && this._listeners[name];
    if (!list) return this;
    var args = Array.prototype.slice.call(arguments, 1);
    list = list.slice(0);
    for (var i = 0; i < list.length; i++) list[i].apply(this, args);
    return this;
  };

  function inherit(Child, Parent) {
    function F() {}
    F.prototype = Parent.prototype;
    Child.prototype = new F();
    Child.prototype.constructor = Child;
  }

  function randomString() {
    return (+new Date()).toString(36) + Math.random().toString(36).slice(2, 8);
  }

  function queryString(obj) {
    var parts = [];
    for (var k in obj) {
      if (Object.prototype.hasOwnProperty.call(obj, k) && obj[k] !== undefined && obj[k] !== null) {
        parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(obj[k]));
      }
    }
    return parts.join('&');
  }

  function parseQuery(s) {
    var out = {};
    if (!s) return out;
    var pairs = s.replace(/^\?/, '').split('&');
    for (var i = 0; i < pairs.length; i++) {
      if (!pairs[i]) continue;
      var kv = pairs[i].split('=');
      out[decodeURIComponent(kv[0])] = decodeURIComponent(kv.slice(1).join('=') || '');
    }
    return out;
  }

  // ---------------------------------------------------------------- engine.io v4 transports

  function Polling(engine) {
    this.engine = engine;
    this.name = 'polling';
    this.writable = false;
    this.polling = null; // the GET in flight
    this.posting = null; // the POST in flight
    this.paused = false;
    this.closed = false;
  }
  inherit(Polling, Emitter);

  Polling.prototype.open = function () {
    this.poll();
  };

  Polling.prototype.request = function (method, body, onload, onerror) {
    var xhr = new XMLHttpRequest();
    xhr.open(method, this.engine.uri('polling'), true);
    if (method === 'POST') xhr.setRequestHeader('Content-Type', 'text/plain;charset=UTF-8');
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4) return;
      if (xhr.status === 200) onload(xhr.responseText);
      else onerror(xhr.status);
    };
    xhr.send(body);
    return xhr;
  };

  Polling.prototype.poll = function () {
    var self = this;
    if (this.closed || this.paused) return;
    this.polling = this.request('GET', null, function (text) {
      self.polling = null;
      var packets = text.split(RS);
      for (var i = 0; i < packets.length && !self.closed; i++) self.engine.onPacket(self, packets[i]);
      if (self.paused) self.checkPaused();
      else self.poll();
    }, function (status) {
      self.polling = null;
      if (!self.closed) self.engine.onTransportError(self, 'xhr poll error', status);
    });
  };

  Polling.prototype.send = function (packets) {
    var self = this;
    this.writable = false;
    this.posting = this.request('POST', packets.join(RS), function () {
      self.posting = null;
      self.writable = true;
      // The engine drops what this POST carried before a pending upgrade moves on to the new transport.
      self.emitLocal('drain');
      if (self.paused) self.checkPaused();
    }, function (status) {
      self.posting = null;
      if (!self.closed) self.engine.onTransportError(self, 'xhr post error', status);
    });
  };

  // Stops issuing requests; cb runs once the GET and the POST in flight are done (the upgrade's "pause").
  Polling.prototype.pause = function (cb) {
    this.paused = true;
    this.onPaused = cb;
    this.checkPaused();
  };

  Polling.prototype.checkPaused = function () {
    if (this.polling || this.posting || !this.onPaused) return;
    var cb = this.onPaused;
    this.onPaused = null;
    cb();
  };

  Polling.prototype.close = function (sendClose) {
    if (this.closed) return;
    if (sendClose && !this.posting) {
      // Best effort: tell the server; nobody waits for the answer.
      try {
        this.request('POST', '1', function () {}, function () {});
      } catch (e) { /* the page is going away */ }
    }
    this.closed = true;
    this.writable = false;
    if (this.polling) {
      this.polling.onreadystatechange = null;
      this.polling.abort();
    }
  };

  function WS(engine) {
    this.engine = engine;
    this.name = 'websocket';
    this.writable = false;
    this.closed = false;
  }
  inherit(WS, Emitter);

  WS.prototype.open = function () {
    var self = this;
    var ws = (this.ws = new WebSocket(this.engine.uri('websocket')));
    ws.onopen = function () {
      self.writable = true;
      self.emitLocal('open');
    };
    ws.onmessage = function (ev) {
      if (typeof ev.data === 'string') self.engine.onPacket(self, ev.data);
    };
    ws.onclose = function () {
      if (!self.closed) {
        self.closed = true;
        self.engine.onTransportError(self, 'transport close');
      }
    };
    ws.onerror = function () {
      if (!self.closed && ws.readyState !== 1) {
        self.closed = true;
        self.engine.onTransportError(self, 'websocket error');
      }
    };
  };

  WS.prototype.send = function (packets) {
    var self = this;
    for (var i = 0; i < packets.length; i++) this.ws.send(packets[i]);
    this.writable = false;
    setTimeout(function () {
      self.writable = true;
      self.emitLocal('drain');
    }, 0);
  };

  WS.prototype.close = function () {
    if (this.closed) return;
    this.closed = true;
    this.writable = false;
    try {
      this.ws.close();
    } catch (e) { /* already closing */ }
  };

  // ---------------------------------------------------------------- engine.io v4 session

  function Engine(opts) {
    this.opts = opts;
    this.sid = null;
    this.readyState = 'closed';
    this.writeBuffer = [];
    this.inFlight = 0;
    this.upgrading = false;
  }
  inherit(Engine, Emitter);

  Engine.prototype.uri = function (transport) {
    var o = this.opts, q = {};
    for (var k in o.query) if (Object.prototype.hasOwnProperty.call(o.query, k)) q[k] = o.query[k];
    q.EIO = 4;
    q.transport = transport;
    if (this.sid) q.sid = this.sid;
    if (transport === 'polling') q.t = randomString();
    var scheme = transport === 'websocket' ? (o.secure ? 'wss' : 'ws') : o.secure ? 'https' : 'http';
    return scheme + '://' + o.host + o.path + '?' + queryString(q);
  };

  Engine.prototype.open = function () {
    var first = this.opts.transports[0];
    if (first === 'websocket' && typeof WebSocket === 'undefined' && this.opts.transports.length > 1) first = 'polling';
    this.readyState = 'opening';
    this.setTransport(first === 'websocket' ? new WS(this) : new Polling(this));
    this.transport.open();
  };

  Engine.prototype.setTransport = function (t) {
    var self = this;
    this.transport = t;
    t.on('drain', function () {
      if (t !== self.transport) return;
      self.writeBuffer.splice(0, self.inFlight);
      self.inFlight = 0;
      self.flush();
    });
  };

  Engine.prototype.onPacket = function (t, packet) {
    if (packet === '') return;
    var type = packet.charAt(0), data = packet.slice(1);
    if (t !== this.transport) return this.onProbePacket(t, packet);
    switch (type) {
      case '0':
        this.onHandshake(JSON.parse(data));
        break;
      case '1':
        this.onClose('transport close');
        break;
      case '2':
        this.resetPingTimeout();
        this.writeBuffer.push('3');
        this.flush();
        break;
      case '4':
        this.emitLocal('message', data);
        break;
      default: // 6 noop, and what v4 does not send
        break;
    }
  };

  Engine.prototype.onHandshake = function (hs) {
    this.sid = hs.sid;
    this.pingInterval = hs.pingInterval;
    this.pingTimeout = hs.pingTimeout;
    this.readyState = 'open';
    if (this.transport.name === 'polling') this.transport.writable = true;
    this.resetPingTimeout();
    this.emitLocal('open');
    this.flush();
    var ups = hs.upgrades || [];
    if (this.transport.name === 'polling' && this.opts.upgrade && this.opts.transports.indexOf('websocket') !== -1 &&
        ups.indexOf('websocket') !== -1 && typeof WebSocket !== 'undefined') {
      this.probe();
    }
  };

  Engine.prototype.probe = function () {
    var self = this, ws = new WS(this);
    this.probing = ws;
    ws.on('open', function () {
      ws.send(['2probe']);
    });
    ws.open();
  };

  Engine.prototype.onProbePacket = function (t, packet) {
    var self = this;
    if (t !== this.probing) return;
    if (packet !== '3probe') return this.probeFailed();
    this.upgrading = true;
    this.transport.pause(function () {
      if (self.readyState !== 'open' || self.probing !== t) return;
      t.send(['5']);
      var old = self.transport;
      old.close(false);
      self.probing = null;
      self.upgrading = false;
      self.inFlight = 0;
      self.setTransport(t);
      t.writable = true;
      self.emitLocal('upgrade', t.name);
      self.flush();
    });
  };

  Engine.prototype.probeFailed = function () {
    var t = this.probing;
    this.probing = null;
    if (t) t.close();
    if (this.upgrading) {
      // The upgrade failed half-way: polling takes over again.
      this.upgrading = false;
      this.transport.paused = false;
      this.transport.onPaused = null;
      this.transport.poll();
      this.flush();
    }
  };

  Engine.prototype.onTransportError = function (t, reason, status) {
    if (t === this.probing) return this.probeFailed();
    if (t !== this.transport) return;
    this.onClose(reason, status);
  };

  Engine.prototype.resetPingTimeout = function () {
    var self = this;
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(function () {
      self.onClose('ping timeout');
    }, this.pingInterval + this.pingTimeout);
  };

  Engine.prototype.send = function (data) {
    this.writeBuffer.push('4' + data);
    this.flush();
  };

  Engine.prototype.flush = function () {
    var t = this.transport;
    if (this.readyState !== 'open' || this.upgrading || !t || !t.writable || this.inFlight || !this.writeBuffer.length) return;
    this.inFlight = this.writeBuffer.length;
    t.send(this.writeBuffer.slice(0));
  };

  Engine.prototype.close = function () {
    if (this.readyState === 'closed') return;
    if (this.transport) this.transport.close(true);
    this.onClose('forced close');
  };

  Engine.prototype.onClose = function (reason, status) {
    if (this.readyState === 'closed') return;
    this.readyState = 'closed';
    clearTimeout(this.pingTimer);
    if (this.probing) this.probing.close();
    this.probing = null;
    if (this.transport) this.transport.close(false);
    this.writeBuffer = [];
    this.inFlight = 0;
    this.emitLocal('close', reason, status);
  };

  // ---------------------------------------------------------------- socket.io v5

  function encodePacket(type, nsp, id, data) {
    var s = String(type);
    if (nsp && nsp !== '/') s += nsp + ',';
    if (id !== undefined && id !== null) s += id;
    if (data !== undefined) s += JSON.stringify(data);
    return s;
  }

  function decodePacket(s) {
    var p = { type: Number(s.charAt(0)), nsp: '/' }, i = 1;
    if (s.charAt(i) === '/') {
      var comma = s.indexOf(',', i);
      if (comma === -1) comma = s.length;
      p.nsp = s.slice(i, comma);
      i = comma + 1;
    }
    var m = /^\d+/.exec(s.slice(i));
    if (m) {
      p.id = Number(m[0]);
      i += m[0].length;
    }
    if (i < s.length) p.data = JSON.parse(s.slice(i));
    return p;
  }

  function transportsFrom(list) {
    var out = [];
    for (var i = 0; i < (list || []).length; i++) {
      var n = list[i];
      var t = n === 'websocket' || n === 'flashsocket' ? 'websocket' : /polling|htmlfile/.test(n) ? 'polling' : null;
      if (t && out.indexOf(t) === -1) out.push(t);
    }
    return out.length ? out : ['polling', 'websocket'];
  }

  function Socket(uri, opts) {
    opts = opts || {};
    var loc = root.location || {};
    if (typeof uri === 'object' && uri !== null) {
      opts = uri;
      uri = undefined;
    }
    if (!uri) uri = (loc.protocol || 'http:') + '//' + loc.host;
    if (/^\/\//.test(uri)) uri = (loc.protocol || 'http:') + uri;
    else if (/^\//.test(uri)) uri = (loc.protocol || 'http:') + '//' + loc.host + uri;
    else if (!/^[a-z]+:\/\//i.test(uri)) uri = (loc.protocol === 'https:' ? 'https' : 'http') + '://' + uri;
    var m = /^([a-z]+):\/\/([^\/?#]+)([^?#]*)(\?[^#]*)?/i.exec(uri);
    var scheme = m[1].toLowerCase();
    var path = opts.path || (opts.resource ? '/' + String(opts.resource).replace(/^\/|\/$/g, '') : DEFAULT_PATH);
    if (path.charAt(path.length - 1) !== '/') path += '/';
    var query = typeof opts.query === 'string' ? parseQuery(opts.query) : opts.query || {};
    var fromUri = parseQuery(m[4]);
    for (var k in fromUri) if (!(k in query)) query[k] = fromUri[k];
    this.nsp = m[3] && m[3] !== '/' ? m[3].replace(/\/$/, '') : '/';
    this.io = {
      opts: {
        secure: scheme === 'https' || scheme === 'wss',
        host: m[2],
        path: path,
        query: query,
        transports: transportsFrom(opts.transports),
        upgrade: opts.upgrade !== false
      }
    };
    this.auth = opts.auth;
    this.reconnection = opts.reconnection !== undefined ? opts.reconnection !== false : opts.reconnect !== false;
    this.reconnectionDelay = opts.reconnectionDelay || opts['reconnection delay'] || 1000;
    this.reconnectionDelayMax = opts.reconnectionDelayMax || 5000;
    this.reconnectionAttempts = opts.reconnectionAttempts || opts['max reconnection attempts'] || Infinity;
    this.timeout = opts.timeout || opts['connect timeout'] || 20000;
    this.connected = false;
    this.disconnected = true;
    this.id = undefined;
    this.ids = 0;
    this.acks = {};
    this.sendBuffer = [];
    this.attempts = 0;
    if (opts.autoConnect !== false) this.connect();
  }
  inherit(Socket, Emitter);

  Socket.prototype.connect = function () {
    var self = this;
    if (this.connected || this.engine) return this;
    this.manual = false;
    var engine = (this.engine = new Engine(this.io.opts));
    engine.on('open', function () {
      engine.send(encodePacket(0, self.nsp, null, typeof self.auth === 'function' ? undefined : self.auth));
    });
    engine.on('message', function (data) {
      self.onPacket(data);
    });
    engine.on('close', function (reason) {
      if (self.engine === engine) self.onEngineClose(reason);
    });
    clearTimeout(this.connectTimer);
    this.connectTimer = setTimeout(function () {
      if (self.connected || self.engine !== engine) return;
      self.emitLocal('connect_error', new Error('timeout'));
      engine.close();
    }, this.timeout);
    engine.open();
    return this;
  };
  Socket.prototype.open = Socket.prototype.connect;

  Socket.prototype.onPacket = function (data) {
    var p;
    try {
      p = decodePacket(data);
    } catch (e) {
      return this.engine.close();
    }
    if (p.nsp !== this.nsp) return;
    switch (p.type) {
      case 0:
        if (p.data && p.data.sid) this.onConnect(p.data.sid);
        break;
      case 1:
        this.manual = true; // the server said goodbye: no reconnection
        this.closeReason = 'io server disconnect';
        this.engine.close();
        break;
      case 2:
        if (p.id !== undefined) p.data.push(this.ackFor(p.id));
        this.emitLocal.apply(this, p.data);
        break;
      case 3:
        var fn = this.acks[p.id];
        delete this.acks[p.id];
        if (typeof fn === 'function') fn.apply(this, p.data);
        break;
      case 4:
        this.manual = true; // refused by the server: reconnecting would be refused again
        var err = new Error(p.data && p.data.message ? p.data.message : String(p.data));
        err.data = p.data && p.data.data;
        this.emitLocal('connect_error', err);
        this.engine.close();
        break;
      default:
        break;
    }
  };

  Socket.prototype.ackFor = function (id) {
    var self = this, sent = false;
    return function () {
      if (sent) return;
      sent = true;
      self.packet(encodePacket(3, self.nsp, id, Array.prototype.slice.call(arguments)));
    };
  };

  Socket.prototype.onConnect = function (sid) {
    clearTimeout(this.connectTimer);
    this.id = sid;
    this.connected = true;
    this.disconnected = false;
    var wasReconnect = this.attempts > 0;
    var n = this.attempts;
    this.attempts = 0;
    var buffered = this.sendBuffer;
    this.sendBuffer = [];
    for (var i = 0; i < buffered.length; i++) this.engine.send(buffered[i]);
    this.emitLocal('connect');
    if (wasReconnect) this.emitLocal('reconnect', n);
  };

  Socket.prototype.packet = function (s) {
    if (this.connected) this.engine.send(s);
    else this.sendBuffer.push(s);
  };

  Socket.prototype.emit = function (name) {
    if (RESERVED.hasOwnProperty(name)) throw new Error('"' + name + '" is a reserved event name');
    var args = Array.prototype.slice.call(arguments), id;
    if (typeof args[args.length - 1] === 'function') {
      id = this.ids++;
      this.acks[id] = args.pop();
    }
    this.packet(encodePacket(2, this.nsp, id, args));
    return this;
  };

  Socket.prototype.send = function () {
    return this.emit.apply(this, ['message'].concat(Array.prototype.slice.call(arguments)));
  };

  Socket.prototype.disconnect = function () {
    this.manual = true;
    clearTimeout(this.reconnectTimer);
    if (this.connected) this.engine.send(encodePacket(1, this.nsp));
    if (this.engine) {
      var engine = this.engine;
      // Let the DISCONNECT go out before the session closes.
      setTimeout(function () {
        engine.close();
      }, 0);
      this.engine = null;
      this.onEngineClose('io client disconnect');
    }
    return this;
  };
  Socket.prototype.close = Socket.prototype.disconnect;

  Socket.prototype.onEngineClose = function (reason) {
    var self = this, was = this.connected;
    this.engine = null;
    this.connected = false;
    this.disconnected = true;
    this.id = undefined;
    clearTimeout(this.connectTimer);
    reason = this.closeReason || reason;
    this.closeReason = null;
    if (was) this.emitLocal('disconnect', reason);
    else if (!this.manual && reason !== 'forced close') this.emitLocal('connect_error', new Error(reason));
    if (this.manual || !this.reconnection) return;
    if (this.attempts >= this.reconnectionAttempts) {
      this.emitLocal('reconnect_failed');
      return;
    }
    var delay = Math.min(this.reconnectionDelay * Math.pow(2, this.attempts), this.reconnectionDelayMax);
    delay = Math.floor(delay * (0.5 + Math.random() * 0.5));
    this.attempts++;
    this.reconnectTimer = setTimeout(function () {
      if (self.manual || self.engine) return;
      self.emitLocal('reconnect_attempt', self.attempts);
      self.emitLocal('reconnecting', self.attempts);
      self.connect();
    }, delay);
  };

  function lookup(uri, opts) {
    return new Socket(uri, opts);
  }
  lookup.connect = lookup;
  lookup.Socket = Socket;
  lookup.protocol = 5;
  root.io = lookup;
})(typeof window !== 'undefined' ? window : this);
