/*
 * The clients of actionhero's socket.io and faye eras, `actionHeroWebSocket` and `actionheroClient`, as their
 * documentation uses them, over ActionheroWebsocketClient's public API (so they ride on whatever transport it picks).
 * The server appends this file to the rendered ActionheroWebsocketClient and serves the result as
 * <public>/javascript/actionHeroWebSocket.js and <public>/javascript/actionheroClient.js.
 *
 *   var A = new actionHeroWebSocket(options);   // connects by itself unless connect() is called in the same tick
 *   A.events = { say: function (m) {}, alert: function (m) {} };   // handlers by event name (faye era), and/or
 *   A.on('connected', function () {});                              // listeners (socket.io era)
 *   A.connect(function (err, details) {});
 *   A.action('cacheTest', {key: 'k', value: 'v'}, function (err, response, delta) {});   // delta: round trip in ms
 *   A.roomChange('defaultRoom');   // leave the current room, join this one: it becomes the current room
 *   A.say('hello');                // to the current room (or say(room, message, cb))
 *
 * The era's single-room model is kept per client object: one current room (roomChange) plus rooms listened to
 * without leaving it (listenToRoom / silenceRoom). As those eras' servers did, the client starts out in
 * "defaultRoom" (option defaultRoom; null: in no room), joined before `connected` fires. Callbacks get (error, response): error is the reply's error (a
 * string) or null. Events: connected, disconnected, say, alert, api, welcome, message, error, reconnect,
 * reconnecting, timeout.
 *
 * Options: host (the server's URL, default the page's origin), apiPath, defaultRoom, connectionDelay (ms to wait before
 * connecting, default 0), timeout (connect timeout, ms), retry (the longest wait between reconnect attempts, in
 * seconds, as faye counted it). The faye options fayePath, setupChannel and channelPrefix are accepted and unused.
 * ES5.
 */
(function (root) {
  'use strict';

  var Base = root.ActionheroWebsocketClient;
  var FORWARDED = ['welcome', 'say', 'alert', 'api', 'message', 'error', 'reconnect', 'reconnecting', 'timeout'];

  function errorOf(reply) {
    if (!reply) return null;
    if (reply.error) return reply.error;
    if (reply.status && reply.status !== 'OK') return reply.status;
    return null;
  }

  // Adapts a callback of the era, (error, response), to the client's single-argument replies.
  function wrap(cb, extra) {
    return function (reply) {
      if (typeof cb === 'function') cb(errorOf(reply), reply, extra ? extra() : undefined);
    };
  }

  function LegacyClient(options) {
    var self = this;
    options = options || {};
    this.options = options;
    this.events = {};
    this.room = null; // the current room
    this.defaultRoom = options.defaultRoom === undefined ? 'defaultRoom' : options.defaultRoom;
    this._listeners = {};
    this._connectRequested = false;
    this._opened = false;
    var o = {};
    if (options.host) o.url = options.host;
    if (options.apiPath) o.apiPath = options.apiPath;
    if (options.timeout) o.timeout = options.timeout;
    if (options.retry) {
      var r = Base.defaults().reconnect;
      r.max = Math.max(options.retry * 1000, r.min);
      o.reconnect = r;
    }
    this.client = new Base(o);
    for (var i = 0; i < FORWARDED.length; i++) this._forward(FORWARDED[i]);
    // The first open is reported by connect()'s callback; later ones (reconnects) by this event.
    this.client.on('connected', function () {
      if (self._opened) self._afterOpen();
    });
    this.client.on('timeout', function () {
      self._finishConnect(new Error('connection timeout'));
    });
    this.client.on('disconnected', function (reason) {
      self.fire('disconnected', reason);
    });
    // The socket.io era's client connected by itself; the faye era's pages call connect() right after construction.
    setTimeout(function () {
      if (!self._connectRequested) self.connect();
    }, 0);
  }

  LegacyClient.prototype._forward = function (name) {
    var self = this;
    this.client.on(name, function (data) {
      self.fire(name, data);
    });
  };

  LegacyClient.prototype.on = function (name, fn) {
    (this._listeners[name] = this._listeners[name] || []).push(fn);
    return this;
  };

  LegacyClient.prototype.removeListener = function (name, fn) {
    var list = this._listeners[name] || [];
    for (var i = 0; i < list.length; i++) {
      if (list[i] === fn) {
        list.splice(i, 1);
        break;
      }
    }
    return this;
  };

  LegacyClient.prototype.fire = function (name, data) {
    var list = (this._listeners[name] || []).slice(0);
    for (var i = 0; i < list.length; i++) list[i].call(this, data);
    if (this.events && typeof this.events[name] === 'function') this.events[name].call(this, data);
  };

  LegacyClient.prototype.log = function (message) {
    if (typeof console === 'undefined' || !console.log) return;
    var text = typeof message === 'string' ? message : JSON.stringify(message);
    console.log('[actionhero] ' + new Date().toISOString() + ' ' + text);
  };

  LegacyClient.prototype.connect = function (callback) {
    var self = this;
    this._connectRequested = true;
    this._connectCallback = callback;
    function go() {
      self.client.connect(function (err, details) {
        self._details = details;
        if (err) self._finishConnect(err);
        else self._afterOpen();
      });
    }
    var delay = this.options.connectionDelay;
    if (delay > 0) setTimeout(go, delay);
    else go();
  };

  LegacyClient.prototype._afterOpen = function () {
    var self = this, room = this.defaultRoom;
    this._opened = true;
    function done() {
      self.fire('connected');
      self._finishConnect(null, self._details);
    }
    if (this.room !== null || !room || this._defaultJoined) return done();
    // Once: after a reconnect the client itself joins again the rooms it was in.
    this._defaultJoined = true;
    this.client.roomAdd(room, function (reply) {
      if (!errorOf(reply)) self.room = room;
      done();
    });
  };

  LegacyClient.prototype._finishConnect = function (err, details) {
    var cb = this._connectCallback;
    this._connectCallback = null;
    if (typeof cb === 'function') cb(err, details);
  };

  LegacyClient.prototype.disconnect = function () {
    this._connectRequested = true;
    this.client.disconnect();
  };

  // A raw message (an object with `event`); the reply goes to the callback.
  LegacyClient.prototype.send = function (message, callback) {
    this.client.send(message, wrap(callback));
  };

  // The faye era told the server the client's address with an extra request; the server knows it already.
  LegacyClient.prototype.setIP = function (callback) {
    if (typeof callback === 'function') {
      setTimeout(function () {
        callback(null);
      }, 0);
    }
  };

  LegacyClient.prototype.action = function (name, params, callback) {
    if (typeof params === 'function') {
      callback = params;
      params = {};
    }
    var started = new Date().getTime();
    this.client.action(name, params || {}, wrap(callback, function () {
      return new Date().getTime() - started;
    }));
  };

  // say(message, cb) to the current room, or say(room, message, cb).
  LegacyClient.prototype.say = function (room, message, callback) {
    if (typeof message !== 'string' && (message === undefined || typeof message === 'function')) {
      callback = message;
      message = room;
      room = this.room;
    }
    this.client.say(room === null ? undefined : room, message, wrap(callback));
  };

  LegacyClient.prototype.detailsView = function (callback) {
    this.client.detailsView(wrap(callback));
  };

  // roomView(cb) for the current room, or roomView(room, cb).
  LegacyClient.prototype.roomView = function (room, callback) {
    if (typeof room === 'function' || room === undefined) {
      callback = room;
      room = this.room;
    }
    this.client.roomView(room === null ? undefined : room, wrap(callback));
  };

  // Leaves the current room and joins this one, which becomes the current room.
  LegacyClient.prototype.roomChange = function (room, callback) {
    var self = this, from = this.room;
    function join() {
      self.client.roomAdd(room, function (reply) {
        if (!errorOf(reply)) self.room = room;
        wrap(callback)(reply);
      });
    }
    if (from === null || from === room) return join();
    this.room = null;
    this.client.roomLeave(from, join);
  };

  // Joins a room without leaving the current one.
  LegacyClient.prototype.listenToRoom = function (room, callback) {
    this.client.roomAdd(room, wrap(callback));
  };

  LegacyClient.prototype.silenceRoom = function (room, callback) {
    if (room === this.room) this.room = null;
    this.client.roomLeave(room, wrap(callback));
  };

  LegacyClient.prototype.roomAdd = LegacyClient.prototype.listenToRoom;
  LegacyClient.prototype.roomLeave = LegacyClient.prototype.silenceRoom;

  LegacyClient.prototype.file = function (path, callback) {
    this.client.file(path, wrap(callback));
  };

  LegacyClient.prototype.documentation = function (callback) {
    this.client.documentation(wrap(callback));
  };

  function mirror(name) {
    Object.defineProperty(LegacyClient.prototype, name, {
      get: function () {
        return this.client[name];
      }
    });
  }
  mirror('state');
  mirror('id');
  mirror('fingerprint');
  mirror('rooms');
  mirror('welcomeMessage');

  root.actionHeroWebSocket = LegacyClient;
  root.actionheroClient = LegacyClient;
})(typeof window !== 'undefined' ? window : this);
