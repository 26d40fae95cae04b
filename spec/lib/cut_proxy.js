'use strict';
// A TCP proxy that can cut every connection through it at once, as a network drop does mid-stream: the client and
// the server each see their side end, whatever was in flight is lost.
//   const p = await startCutProxy(serverPort);  p.port, p.cut() -> number of connections cut, p.cuts, await p.close()
const net = require('node:net');

// A reset (RST) where one can be made. Not on a socket whose end was already asked (pipe() ends one side when the
// other ends): node cannot reset a socket with a pending shutdown, and its handle would then never close, which
// leaves the process spinning at exit; nor on one still connecting. Those are destroyed (a FIN, or nothing sent).
function drop(s) {
  if (s.destroyed) return;
  if (s.connecting || s.writableEnded) s.destroy();
  else s.resetAndDestroy();
}

function startCutProxy(upstreamPort) {
  const pairs = new Set();
  const server = net.createServer((down) => {
    const up = net.connect(upstreamPort, '127.0.0.1');
    const pair = { down, up };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      down.destroy();
      up.destroy();
    };
    down.on('error', end);
    up.on('error', end);
    down.on('close', end);
    up.on('close', end);
    down.pipe(up);
    up.pipe(down);
  });
  const proxy = {
    cuts: 0,
    get open() {
      return pairs.size;
    },
    cut() {
      const n = pairs.size;
      for (const p of [...pairs]) {
        pairs.delete(p);
        // a reset on both sides: nothing buffered is delivered any more
        drop(p.down);
        drop(p.up);
      }
      if (n > 0) proxy.cuts++;
      return n;
    },
    close() {
      proxy.cut();
      return new Promise((r) => server.close(r));
    },
  };
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      proxy.port = server.address().port;
      resolve(proxy);
    })
  );
}

module.exports = { startCutProxy };
