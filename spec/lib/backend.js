'use strict';
// A small real backend for the hook tests: an HTTP server on 127.0.0.1 that answers `POST /api/<action>` with JSON, as
// an actionhero web API does. Every call is recorded (action, params, headers); handlers decide the answers. A handler
// that returns undefined leaves the request unanswered (a backend that hangs).
const http = require('node:http');

async function startBackend(handlers) {
  const calls = [];
  const waiters = [];
  const hanging = new Set();
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const action = decodeURIComponent(req.url.replace(/^\/api\//, '').split('?')[0]);
      let params;
      try {
        params = JSON.parse(body || '{}');
      } catch (e) {
        params = { unparsable: body };
      }
      const call = { action, params, headers: req.headers };
      calls.push(call);
      for (const w of waiters.splice(0)) if (!w(call)) waiters.push(w);
      const h = handlers[action];
      const answer = h ? h(params, req) : { error: `unknown action ${action}` };
      if (answer === undefined) {
        hanging.add(res);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}/api`,
    calls,
    // Resolves with the first call (already made or future) that matches pred.
    call(pred, timeoutMs = 5000) {
      const seen = calls.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no such call; have: ${JSON.stringify(calls.map((c) => c.action))}`)), timeoutMs);
        waiters.push((c) => {
          if (!pred(c)) return false;
          clearTimeout(t);
          resolve(c);
          return true;
        });
      });
    },
    async stop() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

module.exports = { startBackend };
