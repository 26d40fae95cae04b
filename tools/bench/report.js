'use strict';
// Turns the raw runs of tools/bench/compare (one JSON object per line) into tools/results/latest.md and, through
// gnuplot, latest.png. usage: node report.js RESULTS.jsonl OUTDIR
//
// Every figure is normalised by the server's own CPU time (utime+stime from /proc), and every ratio is paired: the
// actiongate run and the peer run of the same round, so drift between rounds cancels. "Advantage" is oriented so that
// above 1.0 means actiongate does better: throughput per CPU-second is actiongate/peer, memory per connection is
// peer/actiongate.
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const [file, outDir] = process.argv.slice(2);
const rows = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const runs = rows.filter((r) => r.round !== undefined);

const JOBS = {
  idle: { metric: 'rss_per_conn_bytes', unit: 'B of server RSS per idle connection', lower: true, label: 'idle memory' },
  idlepoll: { metric: 'rss_per_conn_bytes', unit: 'B of server RSS per idle long-polling session', lower: true, label: 'idle memory, long-poll' },
  idlesse: { metric: 'rss_per_conn_bytes', unit: 'B of server RSS per idle event-stream session', lower: true, label: 'idle memory, SSE' },
  action: { metric: 'per_server_cpu_s', unit: 'echoes per server CPU-second', label: 'action/echo' },
  jsonaction: { metric: 'per_server_cpu_s', unit: 'JSON actions per server CPU-second, both sides parsing and answering JSON', label: 'JSON action' },
  wsecho: { metric: 'per_server_cpu_s', unit: 'raw engine.io/WebSocket echoes per server CPU-second, no session layer', label: 'transport echo' },
  fanout: { metric: 'per_server_cpu_s', unit: 'deliveries per server CPU-second', label: 'fan-out (ws)' },
  longpoll: { metric: 'per_server_cpu_s', unit: 'deliveries per server CPU-second', label: 'long-poll' },
  sse: { metric: 'per_server_cpu_s', unit: 'deliveries per server CPU-second', label: 'SSE' },
};
// Targets from the benchmark issue: advantage over this peer, per job.
const TARGETS = { 'idle/uws': 1.0, 'jsonaction/uws-json': 1.2, 'fanout/uws': 1.2, 'longpoll/engine.io': 3.0, 'longpoll/nchan': 1.2, 'sse/nchan': 1.2 };
const LABEL = { actiongate: 'actiongate', uws: 'uWS.js 20.30 (unofficial npm build)', 'uws-json': 'uWS.js 20.30, JSON action (parse, check, JSON reply)', 'engine.io': 'engine.io 6', nchan: 'nginx 1.22 + nchan 1.3.6' };

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const fmt = (x, digits = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a');
// Long-poll: how many deliveries each answered GET carried. A server that answers later (it is busy, or waits) packs
// more messages into each answer and so spends less per delivery; this shows it next to the latency that bought it.
const perGet = (good, med) =>
  good.length && good.every((r) => r.polls > 0) ? `, ${fmt(med('deliveries') / med('polls'), 2)} deliveries per answered GET` : '';
const ok = (r) => !r.error && r.rc === 0 && r.lost === 0 && r.dup === 0 && r.errors === 0 && r[JOBS[r.job].metric] > 0;

const lines = [];
const chart = [];
lines.push('# actiongate vs peers');
lines.push('');
const meta = runs[0] || {};
lines.push(`Rounds: ${Math.max(0, ...runs.map((r) => r.round))}, interleaved (A B C per round, fresh server process per run, warm-up discarded), ` +
  'server pinned to CPU 0 and the load generator to CPU 1. Each figure is the median over rounds; ratios are paired per round, ' +
  'shown as median (min–max). **Advantage > 1 means actiongate does better** (more work per server CPU-second, or fewer bytes ' +
  'per connection). A run with any lost, duplicated or failed message counts as failed and is left out.');
lines.push('');
lines.push('| job | peer | actiongate | peer | advantage, median (min–max) | target | met |');
lines.push('|---|---|---|---|---|---|---|');
const details = [];
for (const [job, spec] of Object.entries(JOBS)) {
  const jr = runs.filter((r) => r.job === job);
  if (jr.length === 0) continue;
  const servers = [...new Set(jr.map((r) => r.server))];
  const val = (srv) => jr.filter((r) => r.server === srv && ok(r)).map((r) => r[spec.metric]);
  const ag = val('actiongate');
  for (const srv of servers.filter((s) => s !== 'actiongate')) {
    const ratios = [];
    for (const round of [...new Set(jr.map((r) => r.round))]) {
      const a = jr.find((r) => r.round === round && r.server === 'actiongate');
      const b = jr.find((r) => r.round === round && r.server === srv);
      if (a && b && ok(a) && ok(b)) ratios.push(spec.lower ? b[spec.metric] / a[spec.metric] : a[spec.metric] / b[spec.metric]);
    }
    const target = TARGETS[`${job}/${srv}`];
    const m = median(ratios);
    const range = ratios.length ? `${fmt(Math.min(...ratios), 2)}–${fmt(Math.max(...ratios), 2)}` : '';
    const straddle = ratios.length && Math.min(...ratios) < 1 && Math.max(...ratios) > 1 ? ' ⚠ straddles 1' : '';
    lines.push(`| ${spec.label} (${spec.unit}) | ${LABEL[srv]} | ${fmt(median(ag))} | ${fmt(median(val(srv)))} | ` +
      `**${fmt(m, 2)}** (${range})${straddle} | ${target ? `≥ ${target}` : ''} | ${target ? (m >= target ? 'yes' : 'no') : ''} |`);
    chart.push({ label: `${spec.label}\\nvs ${srv}`, m, lo: ratios.length ? Math.min(...ratios) : 0, hi: ratios.length ? Math.max(...ratios) : 0, target: target || 0 });
  }
  for (const srv of servers) {
    const rs = jr.filter((r) => r.server === srv);
    const good = rs.filter(ok);
    const bad = rs.length - good.length;
    const med = (k) => median(good.map((r) => r[k]));
    if (spec.metric === 'rss_per_conn_bytes') {
      details.push(`| ${job} | ${srv} | ${fmt(med('n1'))}→${fmt(med('n2'))} conns | RSS ${fmt(med('rss1_kb'))}→${fmt(med('rss2_kb'))} kB | ` +
        `connect ${fmt(med('connect_s'), 2)} s | | ${good.length}/${rs.length}${bad ? ' (failed: ' + bad + ')' : ''} |`);
    } else {
      const last = job === 'action' || job === 'jsonaction' || job === 'wsecho' ? '' : `last ${fmt(med('last_p50_us'))} / ${fmt(med('last_p95_us'))} / ${fmt(med('last_max_us'))}`;
      details.push(`| ${job} | ${srv} | ${fmt(med('lat_p50_us'))} / ${fmt(med('lat_p99_us'))} / ${fmt(med('lat_p999_us'))} / ${fmt(med('lat_max_us'))} | ` +
        `${last} | server CPU ${fmt(med('server_cpu_s'), 2)} s, wall ${fmt(med('rate_wall'))}/s${perGet(good, med)} | client CPU ${fmt(med('client_cpu_s'), 2)} s | ` +
        `${good.length}/${rs.length}${bad ? ' (failed: ' + bad + ')' : ''} |`);
    }
  }
}
lines.push('');
lines.push('## Per server (medians over the good runs)');
lines.push('');
lines.push('Latency in µs: p50 / p99 / p99.9 / max of each receipt (action: request→reply; fan-out: publish→each delivery); ' +
  '"last" is publish→last member\'s delivery, p50 / p95 / max. "good" counts runs with no loss, duplicate or error.');
lines.push('');
lines.push('| job | server | latency | last delivery | server | client | good |');
lines.push('|---|---|---|---|---|---|---|');
lines.push(...details);

const cg = rows.filter((r) => r.callgrind);
const pf = rows.filter((r) => r.perf);
if (cg.length || pf.length) {
  lines.push('');
  lines.push('## Deterministic figures');
  lines.push('');
}
for (const r of cg) {
  const [a, b] = r.callgrind.map((s) => s.split(':').map(Number));
  const per = (b[0] - a[0]) / (b[1] - a[1]);
  lines.push(`- callgrind, actiongate ${r.job}: **${fmt(per)} instructions per ${r.job === 'fanout' ? 'delivery' : 'action'}** ` +
    `(user space; slope between ${fmt(a[1])} and ${fmt(b[1])} ${r.job === 'fanout' ? 'deliveries' : 'actions'}: ${fmt(a[0])} → ${fmt(b[0])} Ir)`);
}
for (const r of pf) {
  lines.push(`- perf, ${r.server} ${r.job}: ${fmt(r.perf.syscalls / r.perf.units, 2)} syscalls and ${fmt(r.perf.ctxsw / r.perf.units, 3)} ` +
    `context switches per ${r.job === 'fanout' ? 'delivery' : 'message'} (${fmt(r.perf.units)} messages, connection set-up included)`);
}
lines.push('');
lines.push(`Machine: ${fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] || '?'}, ` +
  `${require('node:os').cpus().length} CPUs, kernel ${require('node:os').release()}, node ${process.version}. ` +
  `Load average at the start of each run: ${[...new Set(runs.map((r) => r.loadavg))].slice(0, 3).join('; ')}…`);
lines.push('');
fs.writeFileSync(path.join(outDir, 'latest.md'), lines.join('\n'));

// chart: advantage per job and peer, with the min–max range and the target
const dat = path.join(outDir, 'tmp', 'chart.dat');
fs.mkdirSync(path.dirname(dat), { recursive: true });
fs.writeFileSync(dat, chart.map((c, i) => `${i} "${c.label}" ${c.m || 0} ${c.lo} ${c.hi} ${c.target}`).join('\n') + '\n');
const gp = `
set terminal pngcairo size 1100,520 font ",10" noenhanced
set output "${path.join(outDir, 'latest.png')}"
set title "actiongate advantage over each peer (per server CPU-second; memory per idle connection) — above 1 = actiongate better"
set style fill solid 0.6 border -1
set boxwidth 0.6
set logscale y 2
set yrange [0.05:*]
set grid ytics
set bmargin 5
set ylabel "advantage (median, min-max over rounds)"
set xtics rotate by 0 font ",8"
set key top left
plot "${dat}" using 1:3:xtic(2) with boxes lc rgb "#4e79a7" title "median", \\
     "" using 1:3:4:5 with yerrorbars lc rgb "black" pt 0 title "min-max", \\
     "" using 1:($6 > 0 ? $6 : 1/0) with points pt 2 ps 2 lc rgb "#e15759" title "target", \\
     1 with lines dt 2 lc rgb "gray" notitle
`;
try {
  execFileSync('gnuplot', { input: gp, stdio: ['pipe', 'inherit', 'inherit'] });
} catch (e) {
  // pngcairo is not in gnuplot-nox everywhere; the plain png terminal always is
  execFileSync('gnuplot', { input: gp.replace('pngcairo', 'png'), stdio: ['pipe', 'inherit', 'inherit'] });
}
console.log(lines.join('\n'));
