'use strict';
// What resume costs on Redis (not a test: run it by hand).
//   node spec/cluster/bench_resume.js [connections=1000]
// One node on a real redis-server. (1) Redis commands per chat line in a room with a resumable member: a stock client
// says N lines; (2) per numbered frame: a resumable client runs N echo actions (each answer is numbered and written to
// Redis); both read from INFO commandstats after CONFIG RESETSTAT (calls made inside scripts are listed too). (3) Server
// RSS per idle resumable connection in one room: RSS after opening `connections` stock connections, then as many
// resumable ones, 3 s to settle each time.
const fs = require('node:fs');
const { startServer, Redis } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { ResumeClient } = require('../lib/resume_client');

const CONNS = Number(process.argv[2] || 1000);
const N = 200;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function stats(redis) {
  const out = {};
  for (const line of redis.cli('INFO', 'commandstats').split('\n')) {
    const m = /^cmdstat_([a-z|]+):calls=(\d+)/.exec(line.trim());
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

function rssKb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

async function stock(srv) {
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  await c.request({ event: 'roomAdd', room: 'defaultRoom' });
  return c;
}

async function resumable(srv) {
  const c = new ResumeClient('primus', srv.port);
  c.start();
  await c.until((x) => x.ready);
  await c.request({ event: 'roomAdd', room: 'defaultRoom' });
  return c;
}

async function main() {
  const redis = await new Redis().start();
  const srv = await startServer({ config: { redis: { url: redis.url } } });
  try {
    const b = await stock(srv);
    const a = await resumable(srv);
    await sleep(500);
    redis.cli('CONFIG', 'RESETSTAT');
    for (let i = 0; i < N; i++) await b.request({ event: 'say', room: 'defaultRoom', message: `m${i}` });
    await a.until((x) => x.lines.length >= N);
    console.log(`per chat line (${N} says):`, JSON.stringify(stats(redis)));
    redis.cli('CONFIG', 'RESETSTAT');
    for (let i = 0; i < N; i++) await a.request({ event: 'action', params: { action: 'echo', payload: i } });
    console.log(`per numbered frame (${N} echo answers):`, JSON.stringify(stats(redis)));
    a.stop();
    b.close();
    await sleep(500);

    const pid = srv.proc.pid;
    const base = rssKb(pid);
    const plain = [];
    for (let i = 0; i < CONNS; i++) plain.push(await stock(srv));
    await sleep(3000);
    const afterStock = rssKb(pid);
    const res = [];
    for (let i = 0; i < CONNS; i++) res.push(await resumable(srv));
    await sleep(3000);
    const afterResumable = rssKb(pid);
    console.log(`RSS: ${base} kB idle; +${CONNS} stock: ${((afterStock - base) * 1024 / CONNS / 1000).toFixed(1)} KB each; ` +
      `+${CONNS} resumable: ${((afterResumable - afterStock) * 1024 / CONNS / 1000).toFixed(1)} KB each`);
    console.log(`Redis used_memory per resumable connection record: see INFO memory (${redis.cli('DBSIZE')} keys)`);
    for (const c of plain) c.close();
    for (const c of res) c.stop();
  } finally {
    await srv.stop();
    await redis.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
