'use strict';
// uWebSockets.js peer (unofficial npm build of v20.30) for tools/bench/compare: plain WebSocket echo; a message
// starting with "B" is published to every socket (app.publish includes the sender).
// usage: node uws_server.js PORT
const uWS = require('@trufflesuite/uws-js-unofficial');

const port = Number(process.argv[2] || 39002);
const app = uWS.App();
app.ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 1 << 20,
  maxBackpressure: 4 << 20,
  idleTimeout: 120,
  open: (ws) => ws.subscribe('room'),
  message: (ws, msg, isBinary) => {
    if (msg.byteLength > 0 && new Uint8Array(msg)[0] === 66 /* B */) app.publish('room', msg, isBinary);
    else ws.send(msg, isBinary);
  },
});
app.listen('127.0.0.1', port, (ok) => {
  if (!ok) {
    console.error(`uws: cannot listen on ${port}`);
    process.exit(1);
  }
});
process.on('SIGTERM', () => process.exit(0));
