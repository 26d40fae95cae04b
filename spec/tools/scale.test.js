'use strict';
// tools/bench/scale with small numbers: a real redis-server, two real nodes of the build under test, idle
// connections over every transport held from two source addresses, one room over both nodes and every transport.
// Asserts the report's structure and that nothing was lost, doubled or dropped; never a timing.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { BIN, ROOT } = require('../lib/harness');

const SCALE = path.join(ROOT, 'tools', 'bench', 'scale');

function scale(args, out) {
  return new Promise((resolve) => {
    execFile(process.execPath, [SCALE, ...args, '--out', out], { env: { ...process.env, AG_BIN: BIN }, timeout: 240000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

test('scale run, small: every connection held, every member got every publish once, the report written', async (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-scale-test-'));
  t.after(() => fs.rmSync(out, { recursive: true, force: true }));
  const r = await scale(['--conns', '300', '--members', '60', '--nodes', '2', '--rate', '20', '--count', '15', '--warmup-msgs', '2', '--hold-window', '2'], out);
  assert.strictEqual(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const runs = fs.readFileSync(path.join(out, 'scale.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.strictEqual(runs.length, 1);
  const rep = runs[0];
  assert.deepStrictEqual(rep.problems, []);
  assert.strictEqual(rep.nodes, 2);
  assert.deepStrictEqual(rep.nodeExits, [{ code: 0, sig: null }, { code: 0, sig: null }]);
  // 80 / 10 / 10 of 300, each transport measured on its own
  assert.deepStrictEqual(Object.fromEntries(Object.entries(rep.idle).map(([k, v]) => [k, v.conns])), { primus: 240, polling: 30, sse: 30 });
  for (const [k, v] of Object.entries(rep.idle)) {
    assert.strictEqual(v.failed, 0, k);
    assert.strictEqual(v.dropped, 0, `${k}: held connections dropped`);
    assert.ok(v.connects_per_s > 0, k);
    assert.ok(Number.isFinite(v.bytes_per_conn), k);
  }
  assert.strictEqual(rep.held.conns, 300);
  assert.ok(rep.held.nodesRssKb > 0 && rep.held.perNodeRssKb.length === 2);
  assert.ok(rep.held.nodesCpuCores >= 0 && rep.held.kernel.slabKb > 0, JSON.stringify(rep.held));
  const f = rep.fanout;
  assert.strictEqual(f.members, 60);
  assert.deepStrictEqual(f.by_transport, { primus: 48, polling: 6, sse: 6 });
  assert.strictEqual(f.published, 15);
  assert.strictEqual(f.expected, 60 * 15);
  assert.strictEqual(f.received, 60 * 15);
  assert.strictEqual(f.lost + f.dup + f.reorder + f.errors + f.never_delivered, 0);
  assert.ok(f.last_p50_ms > 0 && f.last_p50_ms <= f.last_p95_ms && f.last_p95_ms <= f.last_p99_ms);
  assert.ok(f.redis_calls.publish >= 15, JSON.stringify(f.redis_calls));
  assert.ok(f.nodes_cpu_s >= 0 && f.redis_cpu_s >= 0);
  const md = fs.readFileSync(path.join(out, 'scale.md'), 'utf8');
  assert.match(md, /^# Scale run: 300 idle connections, a room of 60/);
  assert.match(md, /\| WebSocket \(\/primus\) \| 240 \|/);
  assert.match(md, /publish -> last member p50 \/ p95 \/ p99/);
  assert.match(md, /No problems/);
});

test('scale: bad options are refused with a clear error', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-scale-test-'));
  try {
    for (const [args, msg] of [[['--mix', 'primus:80,carrier:20'], /--mix: carrier:20/], [['--members', '0'], /--members/],
      [['--bogus'], /unknown option --bogus/]]) {
      const r = await scale(args, out);
      assert.strictEqual(r.code, 64, args.join(' '));
      assert.match(r.stderr, msg);
    }
    assert.deepStrictEqual(fs.readdirSync(out), [], 'nothing run, nothing written');
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
