'use strict';
// tools/layering on small trees: a clean one passes; a cycle, an upward arrow and a module in no layer fail, with no
// exception list (the engine.io session naming the socket.io layer fails like any other). And the repository's own
// tree passes.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const TOOL = path.join(ROOT, 'tools', 'layering');

// files: {relative path: [quoted includes]}
function tree(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-layering-'));
  for (const [rel, incs] of Object.entries(files)) {
    fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), incs.map((i) => `#include "${i}"\n`).join('') + '#include <stdio.h>\n');
  }
  return dir;
}

function run(dir, ...args) {
  const r = spawnSync(process.execPath, [TOOL, '--root', dir, ...args], { encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  return { code: r.status, out: r.stdout + r.stderr };
}

test('arrows that point down pass', () => {
  const r = run(tree({
    'server/session.h': ['conn.h'], 'server/session.c': ['session.h', 'rooms.h'],
    'server/rooms.h': ['conn.h'], 'server/rooms.c': ['rooms.h', 'store/store.h'],
    'server/conn.h': ['common.h'], 'server/conn.c': ['conn.h'],
    'server/common.h': [], 'server/store/store.h': [], 'server/store/memory.c': ['store.h', '../common.h'],
  }));
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /layering: ok \(5 modules\)/);
  assert.match(r.out, /session -> conn, rooms/);
});

test('a cycle fails, naming the includes that make it', () => {
  const r = run(tree({
    'server/conn.h': [], 'server/conn.c': ['conn.h', 'session.h'],
    'server/session.h': ['conn.h'], 'server/session.c': ['session.h'],
  }));
  assert.strictEqual(r.code, 1, r.out);
  assert.match(r.out, /FAIL cycle between conn, session:/);
  assert.match(r.out, /server\/conn\.c -> server\/session\.h/);
  assert.match(r.out, /FAIL upward arrow conn \(connection\) -> session \(session\)/);
});

test('an upward arrow alone fails', () => {
  const r = run(tree({ 'server/cluster.h': [], 'server/cluster.c': ['cluster.h', 'rooms.h'], 'server/rooms.h': [] }));
  assert.strictEqual(r.code, 1, r.out);
  assert.match(r.out, /FAIL upward arrow cluster \(cluster\) -> rooms \(rooms\/actions\): server\/cluster\.c -> server\/rooms\.h/);
  assert.doesNotMatch(r.out, /cycle/);
});

test('a module in no layer fails', () => {
  const r = run(tree({ 'server/gadget.h': [], 'server/gadget.c': ['gadget.h'] }));
  assert.strictEqual(r.code, 1, r.out);
  assert.match(r.out, /FAIL module gadget is in no layer/);
});

test('a .c without a header of its own belongs to the module of the first header it includes', () => {
  const r = run(tree({
    'transports/eio.h': [], 'transports/eio.c': ['eio.h'], 'transports/eio_polling.c': ['eio.h', 'conn.h'],
    'server/conn.h': [],
  }));
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /eio -> conn/);
});

test('a private header X_internal.h is part of module X, and so are the files that include it first', () => {
  const ok = run(tree({
    'server/rooms.h': ['conn.h'], 'server/rooms_internal.h': ['rooms.h', 'line_order.h'],
    'server/rooms.c': ['rooms_internal.h', 'push.h'], 'server/rooms_history.c': ['rooms_internal.h'],
    'server/line_order.h': [], 'server/line_order.c': ['line_order.h'], 'server/push.h': ['conn.h'], 'server/push.c': ['push.h'],
    'server/conn.h': [],
  }));
  assert.strictEqual(ok.code, 0, ok.out);
  assert.match(ok.out, /layering: ok \(4 modules\)/);
  assert.match(ok.out, /rooms -> conn, line_order, push/);
  assert.doesNotMatch(ok.out, /rooms_internal|rooms_history/);
  // still a header of rooms: a lower module including it points up
  const up = run(tree({ 'server/rooms.h': [], 'server/rooms_internal.h': ['rooms.h'], 'server/conn.h': [], 'server/conn.c': ['conn.h', 'rooms_internal.h'] }));
  assert.strictEqual(up.code, 1, up.out);
  assert.match(up.out, /FAIL upward arrow conn \(connection\) -> rooms \(rooms\/actions\): server\/conn\.c -> server\/rooms_internal\.h/);
});

test('no arrow is tolerated: engine.io naming the socket.io layer fails, and --strict is gone', () => {
  const files = { 'transports/eio.h': [], 'transports/eio.c': ['eio.h', 'socketio.h'], 'transports/socketio.h': [] };
  const r = run(tree(files));
  assert.strictEqual(r.code, 1, r.out);
  assert.match(r.out, /FAIL upward arrow eio \(transports\) -> socketio \(socket\.io\): transports\/eio\.c -> transports\/socketio\.h/);
  assert.doesNotMatch(r.out, /PENDING/);
  assert.strictEqual(run(tree(files), '--strict').code, 2);
});

test('a cycle inside one module is no cycle; one between two modules of one layer is', () => {
  const ok = run(tree({ 'transports/eio.h': ['eio_ws.c'], 'transports/eio.c': ['eio.h'], 'transports/eio_ws.c': ['eio.h'] }));
  assert.strictEqual(ok.code, 0, ok.out);
  const both = run(tree({
    'server/rooms.h': ['push.h'], 'server/rooms.c': ['rooms.h'], 'server/push.h': ['rooms.h'], 'server/push.c': ['push.h'],
  }));
  assert.strictEqual(both.code, 1, both.out);
  assert.match(both.out, /FAIL cycle between push, rooms/);
});

test('the repository passes', () => {
  const r = spawnSync(process.execPath, [TOOL], { encoding: 'utf8' });
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
});
