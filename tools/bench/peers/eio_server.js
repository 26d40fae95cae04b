'use strict';
// engine.io 6 peer for tools/bench/compare: echoes every message; a message starting with "B" goes to every open
// socket instead (the sender included), which is the broadcast the fan-out, long-poll and SSE jobs measure.
// usage: node eio_server.js PORT
const http = require('node:http');
const { Server } = require('engine.io');

const port = Number(process.argv[2] || 39001);
const httpServer = http.createServer();
const eio = new Server({ transports: ['polling', 'websocket'], perMessageDeflate: false, httpCompression: false });
eio.attach(httpServer, { path: '/engine.io/' });
const sockets = new Set();
eio.on('connection', (socket) => {
  socket.request = null; // the memory tip from the socket.io docs: do not keep the upgrade request
  sockets.add(socket);
  socket.on('message', (data) => {
    if (typeof data === 'string' && data.charCodeAt(0) === 66 /* B */) {
      for (const s of sockets) s.send(data);
    } else {
      socket.send(data);
    }
  });
  socket.on('close', () => sockets.delete(socket));
});
httpServer.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
