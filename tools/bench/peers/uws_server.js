'use strict';
// uWebSockets.js peer (unofficial npm build of v20.30) for tools/bench/compare: plain WebSocket echo; a message
// starting with "B" is published to every socket (app.publish includes the sender).
// With "json" (the jsonaction job) it does what an actiongate action does instead: parses the JSON request, checks
// that it is an action and that the action is one it knows, and answers a JSON reply carrying the payload and the
// request's messageId (actiongate's echo reply: {"payload":...,"context":"response","messageId":N}).
// usage: node uws_server.js PORT [json]
const uWS = require('@trufflesuite/uws-js-unofficial');

const port = Number(process.argv[2] || 39002);
const json = process.argv[3] === 'json';
const decoder = new TextDecoder();
function action(ws, msg) {
  let req;
  try {
    req = JSON.parse(decoder.decode(msg));
  } catch (e) {
    ws.send(JSON.stringify({ error: 'invalid JSON', context: 'response' }));
    return;
  }
  const params = req !== null && typeof req === 'object' ? req.params : undefined;
  if (req.event !== 'action' || params === null || typeof params !== 'object' || params.action !== 'echo') {
    ws.send(JSON.stringify({ error: 'unknown action or invalid apiVersion', context: 'response', messageId: req.messageId }));
    return;
  }
  ws.send(JSON.stringify({ payload: params.payload, context: 'response', messageId: req.messageId }));
}
const app = uWS.App();
app.ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 1 << 20,
  maxBackpressure: 4 << 20,
  idleTimeout: 120,
  open: (ws) => ws.subscribe('room'),
  message: (ws, msg, isBinary) => {
    if (json) action(ws, msg);
    else if (msg.byteLength > 0 && new Uint8Array(msg)[0] === 66 /* B */) app.publish('room', msg, isBinary);
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
