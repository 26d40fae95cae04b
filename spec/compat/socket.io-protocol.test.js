'use strict';
// socket.io-protocol's black-box test suite, ported case for case to node:test against the real binary.
// Source: github.com/socketio/socket.io-protocol, test-suite/test-suite.js at commit
// 4f633dd6a4445492d57af3b27ddd2d336014f1f1 (2023-09-19), 32 cases (16 engine.io, 16 socket.io); not published on
// npm, so it is kept here. The suite expects its reference server at <url>/socket.io/ with pingInterval 300 and
// pingTimeout 200: that is servers.socketio.conformance with those heartbeat values (and a connectTimeout under
// mocha's 2 s test timeout). Differences from the original: our harness picks a free port on 127.0.0.1; Node's own
// fetch stands in for node-fetch; the WebSocket "fails with" cases wait for the refusal and check its status (400);
// the polling "forcefully closes" case sends its POST 50 ms after the GET it means to release; messages are read from
// a queue that every socket fills from its creation (the original listens after the fact, which can lose a packet
// that arrives early); every wait is bounded in time.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert');
const WebSocket = require('ws');
const { startServer } = require('../lib/harness');

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const WAIT_MS = 5000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function waitFor(socket, eventType) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${eventType} within ${WAIT_MS} ms`)), WAIT_MS);
    socket.addEventListener(
      eventType,
      (event) => {
        clearTimeout(timer);
        resolve(event);
      },
      { once: true },
    );
  });
}

// Every message of a socket from the moment it is made, in order: next() takes the oldest, waiting for one if none is
// there yet (bounded). The original suite attaches a listener after the fact, which loses whatever came before it.
function inbox(socket) {
  const queue = [];
  const waiters = [];
  socket.addEventListener('message', (event) => {
    if (waiters.length) waiters.shift()(event.data);
    else queue.push(event.data);
  });
  return {
    next() {
      if (queue.length) return Promise.resolve(queue.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no message within ${WAIT_MS} ms`)), WAIT_MS);
        waiters.push((data) => {
          clearTimeout(timer);
          resolve(data);
        });
      });
    },
  };
}

// A refused upgrade: resolves the HTTP status of the answer (ws reports it as 'unexpected-response').
function refusedUpgrade(url) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const timer = setTimeout(() => reject(new Error('upgrade neither refused nor accepted')), WAIT_MS);
    socket.on('unexpected-response', (req, res) => {
      clearTimeout(timer);
      res.resume();
      req.destroy();
      resolve(res.statusCode);
    });
    socket.on('error', () => {});
    socket.on('open', () => {
      clearTimeout(timer);
      socket.close();
      reject(new Error('upgrade accepted'));
    });
  });
}

// the reference server: the conformance mode, the suite's heartbeat, a connectTimeout within mocha's 2 s
const CONFIG = {
  servers: { websocket: { server: { pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT } }, socketio: { conformance: true, connectTimeout: 1000 } },
};

describe('socket.io-protocol test suite (4f633dd): Engine.IO protocol', () => {
  let srv, URL, WS_URL;
  before(async () => {
    srv = await startServer({ config: CONFIG });
    URL = srv.url;
    WS_URL = URL.replace('http', 'ws');
  });
  const sockets = [];
  const open = (url) => {
    const s = new WebSocket(url);
    s.on('error', () => {});
    sockets.push(s);
    return s;
  };
  after(async () => {
    sockets.forEach((s) => s.terminate());
    await srv.stop();
  });

  async function initLongPollingSession() {
    const response = await fetch(`${URL}/socket.io/?EIO=4&transport=polling`);
    const content = await response.text();
    return JSON.parse(content.substring(1)).sid;
  }

  const handshakeKeys = ['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload'];

  describe('handshake', () => {
    describe('HTTP long-polling', () => {
      it('should successfully open a session', async () => {
        const response = await fetch(`${URL}/socket.io/?EIO=4&transport=polling`);
        assert.strictEqual(response.status, 200);
        const content = await response.text();
        assert.ok(content.startsWith('0'));
        const value = JSON.parse(content.substring(1));
        assert.deepStrictEqual(Object.keys(value).sort(), [...handshakeKeys].sort());
        assert.strictEqual(typeof value.sid, 'string');
        assert.deepStrictEqual(value.upgrades, ['websocket']);
        assert.strictEqual(value.pingInterval, PING_INTERVAL);
        assert.strictEqual(value.pingTimeout, PING_TIMEOUT);
        assert.strictEqual(value.maxPayload, 1000000);
      });

      it("should fail with an invalid 'EIO' query parameter", async () => {
        const response = await fetch(`${URL}/socket.io/?transport=polling`);
        assert.strictEqual(response.status, 400);
        const response2 = await fetch(`${URL}/socket.io/?EIO=abc&transport=polling`);
        assert.strictEqual(response2.status, 400);
      });

      it("should fail with an invalid 'transport' query parameter", async () => {
        const response = await fetch(`${URL}/socket.io/?EIO=4`);
        assert.strictEqual(response.status, 400);
        const response2 = await fetch(`${URL}/socket.io/?EIO=4&transport=abc`);
        assert.strictEqual(response2.status, 400);
      });

      it('should fail with an invalid request method', async () => {
        const response = await fetch(`${URL}/socket.io/?EIO=4&transport=polling`, { method: 'post' });
        assert.strictEqual(response.status, 400);
        const response2 = await fetch(`${URL}/socket.io/?EIO=4&transport=polling`, { method: 'put' });
        assert.strictEqual(response2.status, 400);
      });
    });

    describe('WebSocket', () => {
      it('should successfully open a session', async () => {
        const socket = open(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
        const { data } = await waitFor(socket, 'message');
        assert.ok(data.startsWith('0'));
        const value = JSON.parse(data.substring(1));
        assert.deepStrictEqual(Object.keys(value).sort(), [...handshakeKeys].sort());
        assert.strictEqual(typeof value.sid, 'string');
        assert.deepStrictEqual(value.upgrades, []);
        assert.strictEqual(value.pingInterval, PING_INTERVAL);
        assert.strictEqual(value.pingTimeout, PING_TIMEOUT);
        assert.strictEqual(value.maxPayload, 1000000);
        socket.close();
      });

      it("should fail with an invalid 'EIO' query parameter", async () => {
        assert.strictEqual(await refusedUpgrade(`${WS_URL}/socket.io/?transport=websocket`), 400);
        assert.strictEqual(await refusedUpgrade(`${WS_URL}/socket.io/?EIO=abc&transport=websocket`), 400);
      });

      it("should fail with an invalid 'transport' query parameter", async () => {
        assert.strictEqual(await refusedUpgrade(`${WS_URL}/socket.io/?EIO=4`), 400);
        assert.strictEqual(await refusedUpgrade(`${WS_URL}/socket.io/?EIO=4&transport=abc`), 400);
      });
    });
  });

  describe('heartbeat', () => {
    describe('HTTP long-polling', () => {
      it('should send ping/pong packets', async () => {
        const sid = await initLongPollingSession();
        for (let i = 0; i < 3; i++) {
          const pollResponse = await fetch(`${URL}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
          assert.strictEqual(pollResponse.status, 200);
          assert.strictEqual(await pollResponse.text(), '2');
          const pushResponse = await fetch(`${URL}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'post', body: '3' });
          assert.strictEqual(pushResponse.status, 200);
        }
      });

      it('should close the session upon ping timeout', async () => {
        const sid = await initLongPollingSession();
        await sleep(PING_INTERVAL + PING_TIMEOUT);
        const pollResponse = await fetch(`${URL}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
        assert.strictEqual(pollResponse.status, 400);
      });
    });

    describe('WebSocket', () => {
      it('should send ping/pong packets', async () => {
        const socket = open(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
        await waitFor(socket, 'message'); // handshake
        for (let i = 0; i < 3; i++) {
          const { data } = await waitFor(socket, 'message');
          assert.strictEqual(data, '2');
          socket.send('3');
        }
        socket.close();
      });

      it('should close the session upon ping timeout', async () => {
        const socket = open(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
        await waitFor(socket, 'close'); // handshake
      });
    });
  });

  describe('close', () => {
    it('HTTP long-polling: should forcefully close the session', async () => {
      const sid = await initLongPollingSession();
      const [pollResponse] = await Promise.all([
        fetch(`${URL}/socket.io/?EIO=4&transport=polling&sid=${sid}`),
        sleep(50).then(() => fetch(`${URL}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'post', body: '1' })),
      ]);
      assert.strictEqual(pollResponse.status, 200);
      assert.strictEqual(await pollResponse.text(), '6');
      const pollResponse2 = await fetch(`${URL}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
      assert.strictEqual(pollResponse2.status, 400);
    });

    it('WebSocket: should forcefully close the session', async () => {
      const socket = open(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
      await waitFor(socket, 'message'); // handshake
      socket.send('1');
      await waitFor(socket, 'close');
    });
  });

  describe('upgrade', () => {
    it('should successfully upgrade from HTTP long-polling to WebSocket', async () => {
      const sid = await initLongPollingSession();
      const socket = open(`${WS_URL}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
      const messages = inbox(socket);
      await waitFor(socket, 'open');
      socket.send('2probe');
      assert.strictEqual(await messages.next(), '3probe');
      socket.send('5');
    });

    it('should ignore HTTP requests with same sid after upgrade', async () => {
      const sid = await initLongPollingSession();
      const socket = open(`${WS_URL}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
      await waitFor(socket, 'open');
      socket.send('2probe');
      socket.send('5');
      const pollResponse = await fetch(`${URL}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
      assert.strictEqual(pollResponse.status, 400);
    });

    it('should ignore WebSocket connection with same sid after upgrade', async () => {
      const sid = await initLongPollingSession();
      const socket = open(`${WS_URL}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
      await waitFor(socket, 'open');
      socket.send('2probe');
      socket.send('5');
      const socket2 = open(`${WS_URL}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
      await waitFor(socket2, 'close');
    });
  });
});

describe('socket.io-protocol test suite (4f633dd): Socket.IO protocol', () => {
  let srv, WS_URL;
  before(async () => {
    srv = await startServer({ config: CONFIG });
    WS_URL = srv.url.replace('http', 'ws');
  });
  const sockets = [];
  const open = (url) => {
    const s = new WebSocket(url);
    s.binaryType = 'arraybuffer';
    s.on('error', () => {});
    sockets.push(s);
    return s;
  };
  after(async () => {
    sockets.forEach((s) => s.terminate());
    await srv.stop();
  });
  const notPing = (d) => d !== '2';
  // a socket and its messages, the engine.io handshake read
  async function engineSocket() {
    const socket = open(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
    const messages = inbox(socket);
    await messages.next(); // Engine.IO handshake
    return { socket, messages };
  }
  async function initSocketIOConnection() {
    const c = await engineSocket();
    c.socket.send('40');
    await c.messages.next(notPing); // Socket.IO handshake
    await c.messages.next(notPing); // "auth" packet
    return c;
  }
  const bin = (d) => Buffer.from(d).toString('hex');

  describe('connect', () => {
    const cases = [
      ['should allow connection to the main namespace', '40', '40', '42["auth",{}]'],
      ['should allow connection to the main namespace with a payload', '40{"token":"123"}', '40', '42["auth",{"token":"123"}]'],
      ['should allow connection to a custom namespace', '40/custom,', '40/custom,', '42/custom,["auth",{}]'],
      ['should allow connection to a custom namespace with a payload', '40/custom,{"token":"abc"}', '40/custom,', '42/custom,["auth",{"token":"abc"}]'],
    ];
    for (const [name, send, prefix, auth] of cases) {
      it(name, async () => {
        const { socket, messages } = await engineSocket();
        socket.send(send);
        const data = await messages.next();
        assert.ok(data.startsWith(prefix), data);
        const handshake = JSON.parse(data.substring(prefix.length));
        assert.deepStrictEqual(Object.keys(handshake), ['sid']);
        assert.strictEqual(typeof handshake.sid, 'string');
        assert.strictEqual(await messages.next(), auth);
      });
    }

    it('should disallow connection to an unknown namespace', async () => {
      const { socket, messages } = await engineSocket();
      socket.send('40/random');
      assert.strictEqual(await messages.next(), '44/random,{"message":"Invalid namespace"}');
    });

    it('should disallow connection with an invalid handshake', async () => {
      const { socket } = await engineSocket();
      socket.send('4abc');
      await waitFor(socket, 'close');
    });

    it('should close the connection if no handshake is received', async () => {
      const socket = open(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
      await waitFor(socket, 'close');
    });
  });

  describe('disconnect', () => {
    it('should disconnect from the main namespace', async () => {
      const { socket, messages } = await initSocketIOConnection();
      socket.send('41');
      assert.strictEqual(await messages.next(), '2');
    });

    it('should connect then disconnect from a custom namespace', async () => {
      const { socket, messages } = await initSocketIOConnection();
      assert.strictEqual(await messages.next(), '2'); // ping
      socket.send('40/custom');
      await messages.next(); // Socket.IO handshake
      await messages.next(); // auth packet
      socket.send('41/custom');
      socket.send('42["message","message to main namespace"]');
      assert.strictEqual(await messages.next(), '42["message-back","message to main namespace"]');
    });
  });

  describe('message', () => {
    it('should send a plain-text packet', async () => {
      const { socket, messages } = await initSocketIOConnection();
      socket.send('42["message",1,"2",{"3":[true]}]');
      assert.strictEqual(await messages.next(notPing), '42["message-back",1,"2",{"3":[true]}]');
    });

    it('should send a packet with binary attachments', async () => {
      const { socket, messages } = await initSocketIOConnection();
      socket.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
      socket.send(Uint8Array.from([1, 2, 3]));
      socket.send(Uint8Array.from([4, 5, 6]));
      assert.strictEqual(await messages.next(notPing), '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
      assert.strictEqual(bin(await messages.next(notPing)), '010203');
      assert.strictEqual(bin(await messages.next(notPing)), '040506');
      socket.close();
    });

    it('should send a plain-text packet with an ack', async () => {
      const { socket, messages } = await initSocketIOConnection();
      socket.send('42456["message-with-ack",1,"2",{"3":[false]}]');
      assert.strictEqual(await messages.next(notPing), '43456[1,"2",{"3":[false]}]');
    });

    it('should send a packet with binary attachments and an ack', async () => {
      const { socket, messages } = await initSocketIOConnection();
      socket.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
      socket.send(Uint8Array.from([1, 2, 3]));
      socket.send(Uint8Array.from([4, 5, 6]));
      assert.strictEqual(await messages.next(notPing), '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
      assert.strictEqual(bin(await messages.next(notPing)), '010203');
      assert.strictEqual(bin(await messages.next(notPing)), '040506');
      socket.close();
    });

    for (const [what, packet] of [
      ['unknown packet type', '4abc'],
      ['invalid payload format', '42{}'],
      ['invalid ack id', '42abc["message-with-ack",1,"2",{"3":[false]}]'],
    ]) {
      it(`should close the connection upon invalid format (${what})`, async () => {
        const { socket } = await initSocketIOConnection();
        socket.send(packet);
        await waitFor(socket, 'close');
      });
    }
  });
});
