'use strict';
// Resume across a graceful restart (README "Resume", "Graceful restart"): with general.resumeStateFile, a node on the
// memory store that is stopped with SIGTERM saves its resumable connections and its rooms' history, once the requests
// they sent have been answered, and the node started again on the same port with the same configuration makes them
// away connections again: every client resumes, nothing is lost, doubled or reordered, and each request is answered
// once. A file that cannot be trusted (damaged, cut short, stale, another node's) is refused whole: the node starts
// clean and its clients are told they were not resumed, and carry on as new connections. Runs as it is with
// AG_WORKERS=2 (each worker takes its connections and its route back).
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Server, Redis, WORKERS } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { ResumeClient } = require('../lib/resume_client');
const { sign, now } = require('../lib/jwt');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const KINDS = ['primus', 'websocket', 'polling', 'sse'];

function stateDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-restart-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return { dir, file: path.join(dir, 'resume-state.json') };
}

function configOf(file, extra = {}) {
  return { redis: { url: '' }, general: { resumeStateFile: file, logLevel: 'info', ...extra } };
}

// Clients of every carrier, resumable, all in defaultRoom.
async function roomOfClients(t, port) {
  const clients = KINDS.map((k) => new ResumeClient(k, port));
  for (const c of clients) {
    c.maxConnects = 1000; // it retries every 10 ms while the node is down
    t.after(() => c.stop());
    c.start();
  }
  for (const c of clients) await c.until((x) => x.ready);
  for (const c of clients) assert.strictEqual((await c.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');
  return clients;
}

// The node's log says re: its stderr arrives apart from its port opening, so it is waited for (bounded).
async function logSays(srv, re, what) {
  for (let i = 0; i < 200 && !re.test(srv.stderr); i++) await sleep(25);
  assert.match(srv.stderr, re, what);
}

const userLines = (c) => c.lines.filter((f) => f.context === 'user').map((f) => f.message);

test('a graceful restart: every carrier resumes, chat and requests lose nothing, double nothing, keep their order', async (t) => {
  const { file } = stateDir(t);
  const config = configOf(file);
  let srv = await new Server({ config }).start();
  t.after(() => srv.stop());
  const port = srv.port;
  const clients = await roomOfClients(t, port);

  const says = []; // { text, answer }
  const echoes = []; // { n, answer }
  let round = 0;
  const talk = (rounds) => {
    for (let r = 0; r < rounds; r++, round++) {
      for (const [i, c] of clients.entries()) {
        const text = `${c.kind}-${round}`;
        says.push({ text, answer: c.request({ event: 'say', room: 'defaultRoom', message: text }) });
        const n = round * 10 + i;
        echoes.push({ n, answer: c.request({ event: 'action', params: { action: 'echo', payload: n } }) });
      }
    }
  };
  talk(10);
  // requests running when the stop comes: answered before the node saves its connections, and replayed if the answer
  // did not reach the client before its carrier closed
  const sleeps = clients.map((c) => c.request({ event: 'action', params: { action: 'sleepTest', sleepDuration: 400 } }));
  await sleep(100);
  const stopping = srv.stop();
  talk(3); // while the node drains: answered (OK or "the server is shutting down"), never lost
  await stopping;
  const st = fs.statSync(file);
  assert.strictEqual(st.mode & 0o777, 0o600, 'the state file holds tokens: 0600');
  await logSays(srv, /saved 4 resumable connections and the history of 1 rooms/);

  srv = await new Server({ config, port }).start();
  // the port opens before the node loads the file (its loop does not run yet): the log says when it did
  await logSays(srv, /restored 4 of 4 resumable connections and the history of 1 rooms/);
  assert.strictEqual(fs.existsSync(file), false, 'the state file is deleted once read');
  for (const c of clients) await c.until((x) => x.resumed >= 1 || x.notResumed.length > 0);
  talk(10);

  for (const s of await Promise.all(sleeps)) assert.strictEqual(s.sleepDuration, 400, `a running request finished: ${JSON.stringify(s)}`);
  for (const e of echoes) {
    const a = await e.answer;
    if (a.error !== undefined) assert.strictEqual(a.error, 'the server is shutting down');
    else assert.strictEqual(a.payload, e.n);
  }
  const ok = [];
  for (const s of says) {
    const a = await s.answer;
    if (a.status === 'OK') ok.push(s.text);
    else assert.strictEqual(a.status, 'Error: the server is shutting down');
  }
  assert.ok(ok.length >= 20 * clients.length, `the lines said before and after the restart went through (${ok.length})`);
  // every client has every line that was said, once, in the one order of the room; each sender's in its own order
  for (const c of clients) await c.until((x) => userLines(x).length >= ok.length);
  const order = userLines(clients[0]);
  assert.deepStrictEqual([...order].sort(), [...ok].sort());
  for (const c of clients) {
    assert.deepStrictEqual(userLines(c), order, `${c.kind}: the room's lines, once, in order`);
    assert.deepStrictEqual(c.gaps, [], `${c.kind}: no sequence number or offset skipped`);
    assert.deepStrictEqual(c.notResumed, [], `${c.kind}: resumed`);
    assert.ok(c.resumed >= 1, `${c.kind}: resumed`);
    assert.strictEqual(c.extraAnswers, 0, `${c.kind}: each request answered once`);
    assert.strictEqual(c.pending.size, 0);
    const mine = userLines(c).filter((m) => m.startsWith(`${c.kind}-`)).map((m) => Number(m.split('-')[1]));
    assert.deepStrictEqual(mine, [...mine].sort((x, y) => x - y), `${c.kind}: its own lines in the order it said them`);
  }
  // the same connections: the room counts the four, no more
  const v = await clients[0].request({ event: 'roomView', room: 'defaultRoom' });
  assert.strictEqual(v.data.membersCount, clients.length);
});

test('a stock client is told to reconnect and comes back as a new connection', async (t) => {
  const { file } = stateDir(t);
  const config = configOf(file);
  let srv = await new Server({ config }).start();
  t.after(() => srv.stop());
  const port = srv.port;
  const stock = await connect(`${srv.wsUrl}/primus`);
  t.after(() => stock.close());
  await stock.welcome();
  const id = (await stock.request({ event: 'detailsView' })).data.id;
  const a = new ResumeClient('primus', port);
  a.maxConnects = 1000; // it retries every 10 ms while the node is down
  t.after(() => a.stop());
  a.start();
  await a.until((x) => x.ready);
  await srv.stop();
  const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.deepStrictEqual(saved.conns.map((c) => c.id), [a.id], 'only the resumable connection is saved');
  assert.ok(!JSON.stringify(saved).includes(id));
  srv = await new Server({ config, port }).start();
  await a.until((x) => x.resumed === 1);
  const b = await connect(`${srv.wsUrl}/primus`);
  t.after(() => b.close());
  await b.welcome();
  const r = await b.request({ event: 'resume', id, token: 'f'.repeat(64), seq: 0 });
  assert.strictEqual(r.status, 'Error: not resumed: unknown connection or wrong token');
});

// What the restarted node is given instead of the file it wrote, and the reason it must log.
const REASON = {
  truncated: /damaged/,
  corrupt: /no valid token/,
  'not JSON': /damaged/,
  empty: /damaged/,
  stale: /stale: written \d+ ms ago/,
  'another node': /written by another node/,
  'another configuration': /written under another configuration/,
  'a gap in the numbered frames': /numbered frames do not add up/,
  'a room history out of order': /out of order/,
};
const DAMAGE = {
  truncated: (text) => text.slice(0, Math.floor(text.length / 2)),
  corrupt: (text) => text.replace(/"token":"([0-9a-f])/, (m, d) => `"token":"${d === 'z' ? 'y' : 'z'}`),
  'not JSON': () => '\u0000\u0001garbage',
  empty: () => '',
  stale: (text) => {
    const j = JSON.parse(text);
    j.savedAt -= 121000; // older than resumeWindow (120 s)
    return JSON.stringify(j);
  },
  'another node': (text) => {
    const j = JSON.parse(text);
    j.node = 'elsewhere';
    return JSON.stringify(j);
  },
  'another configuration': (text) => {
    const j = JSON.parse(text);
    j.config = j.config.replace(/window=\d+/, 'window=5000');
    return JSON.stringify(j);
  },
  'a gap in the numbered frames': (text) => {
    const j = JSON.parse(text);
    j.conns[0].outbox.shift();
    return JSON.stringify(j);
  },
  'a room history out of order': (text) => {
    const j = JSON.parse(text);
    j.rooms.defaultRoom.lines.reverse();
    return JSON.stringify(j);
  },
};

test('a damaged, cut short, stale or foreign state file is refused: a clean start, clients not resumed and working', async (t) => {
  const { file } = stateDir(t);
  const config = configOf(file);
  let srv = await new Server({ config }).start();
  t.after(() => srv.stop());
  const port = srv.port;
  const a = new ResumeClient('primus', port);
  a.maxConnects = 5000; // nine restarts, retrying every 10 ms while the node is down
  t.after(() => a.stop());
  a.start();
  await a.until((x) => x.ready);
  await a.request({ event: 'roomAdd', room: 'defaultRoom' });
  await a.request({ event: 'say', room: 'defaultRoom', message: 'before' });
  await a.request({ event: 'say', room: 'defaultRoom', message: 'before 2' });
  let n = 0;
  for (const [what, damage] of Object.entries(DAMAGE)) {
    await a.until((x) => x.ready);
    const resumedBefore = a.resumed, refusedBefore = a.notResumed.length;
    await srv.stop();
    const text = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, damage(text), { mode: 0o600 });
    srv = await new Server({ config, port }).start();
    await logSays(srv, /resume state file .* refused: .*; starting clean/, what);
    assert.match(/refused: (.*); starting clean/.exec(srv.stderr)[1], REASON[what], what);
    assert.strictEqual((srv.stderr.match(/refused/g) || []).length, 1, `${what}: one log line`);
    assert.strictEqual(fs.existsSync(file), false, `${what}: the file is gone after boot`);
    await a.until((x) => x.notResumed.length > refusedBefore && x.ready);
    assert.strictEqual(a.resumed, resumedBefore, `${what}: not resumed`);
    // with several workers a client whose new connection lands on another worker than the one its token names is told so
    const reasons = ['unknown connection or wrong token', ...(WORKERS > 1 ? ['the connection is on another worker'] : [])];
    assert.ok(reasons.includes(a.notResumed[a.notResumed.length - 1]), `${what}: ${a.notResumed[a.notResumed.length - 1]}`);
    // a new connection that works: it joins again and chats, and its next stop is saved whole
    assert.strictEqual((await a.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK', what);
    const line = `after ${what}`;
    assert.strictEqual((await a.request({ event: 'say', room: 'defaultRoom', message: line })).status, 'OK', what);
    await a.until((x) => userLines(x).includes(line));
    assert.strictEqual((await a.request({ event: 'say', room: 'defaultRoom', message: `${line} 2` })).status, 'OK');
    n++;
  }
  assert.strictEqual(n, Object.keys(DAMAGE).length);
  assert.deepStrictEqual(a.gaps, []);
});

test('on the Redis store the state file is not used', async (t) => {
  const { file } = stateDir(t);
  const redis = await new Redis().start();
  t.after(() => redis.stop());
  const srv = await new Server({ config: { redis: { url: redis.url }, general: { resumeStateFile: file, logLevel: 'info' } } }).start();
  const a = new ResumeClient('primus', srv.port);
  t.after(() => a.stop());
  a.start();
  await a.until((x) => x.ready);
  await srv.stop();
  await logSays(srv, /general\.resumeStateFile is not used on this store/);
  assert.strictEqual(fs.existsSync(file), false);
});

test('a token keeps its expiry across the restart: one still valid resumes with its claims, one that expired does not', async (t) => {
  const { file } = stateDir(t);
  const SECRET = 'a-test-secret-of-at-least-32-bytes-0123';
  const config = { ...configOf(file), tokens: { secret: SECRET } };
  let srv = await new Server({ config }).start();
  t.after(() => srv.stop());
  const port = srv.port;
  const long = new ResumeClient('primus', port);
  const short = new ResumeClient('primus', port);
  long.firstQuery = `?token=${sign({ alg: 'HS256' }, { sub: 'long', exp: now() + 600 }, SECRET)}`;
  short.firstQuery = `?token=${sign({ alg: 'HS256' }, { sub: 'short', exp: now() + 2 }, SECRET)}`;
  for (const c of [long, short]) {
    c.maxConnects = 2000; // it retries every 10 ms while the node is down
    t.after(() => c.stop());
    c.start();
    await c.until((x) => x.ready);
  }
  await srv.stop();
  await sleep(2500); // the short token expires while the node is down
  srv = await new Server({ config, port }).start();
  await long.until((x) => x.resumed === 1);
  await short.until((x) => x.notResumed.length === 1);
  assert.deepStrictEqual(short.notResumed, ['unknown connection or wrong token']);
  const d = await long.request({ event: 'detailsView' });
  assert.strictEqual(d.data.id, long.id);
  assert.strictEqual(d.data.claims.sub, 'long');
  await logSays(srv, /restored 1 of 2 resumable connections/);
});
