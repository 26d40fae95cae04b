'use strict';
// A raw HTTP/1.1 client on one kept TCP connection, to see the bytes of responses as they come.
const net = require('node:net');

// One keep-alive TCP connection that reads HTTP/1.1 responses as they come: the head alone once it is there, then
// the whole response (content-length or chunked).
class RawConn {
  constructor(port) {
    this.sock = net.connect(port, '127.0.0.1');
    this.buf = Buffer.alloc(0);
    this.closed = false;
    this.waiters = [];
    this.sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    this.sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    this.sock.on('error', () => {});
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  wait(ms) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no response after ${ms} ms: ${JSON.stringify(this.buf.toString())}`)), ms);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  // extra: header lines ("Name: value"), each without its CRLF
  get(path, version = '1.1', extra = []) {
    this.sock.write(`GET ${path} HTTP/${version}\r\nHost: 127.0.0.1\r\n${extra.map((l) => `${l}\r\n`).join('')}\r\n`);
  }

  send(raw) {
    this.sock.write(raw);
  }

  parseHead() {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end === -1) return null;
    const lines = this.buf.subarray(0, end).toString().split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers = {};
    const fields = []; // [lower-case name, value] in order, every line
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      fields.push([l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()]);
    }
    return { status, headers, fields, statusLine: lines[0], bodyAt: end + 4 };
  }

  async head(ms = 10000) {
    for (;;) {
      const h = this.parseHead();
      if (h !== null) return h;
      if (this.closed) throw new Error('closed before a head');
      await this.wait(ms);
    }
  }

  // The next whole response, removed from the buffer: {status, headers, text, chunks}.
  async response(ms = 10000) {
    for (;;) {
      const h = this.parseHead();
      if (h !== null) {
        let at = h.bodyAt;
        if (h.headers['transfer-encoding'] === 'chunked') {
          const chunks = [];
          for (;;) {
            const eol = this.buf.indexOf('\r\n', at);
            if (eol === -1) break;
            const size = parseInt(this.buf.subarray(at, eol).toString(), 16);
            if (this.buf.length < eol + 2 + size + 2) break;
            if (size === 0) {
              this.buf = this.buf.subarray(eol + 4);
              return { ...h, chunks, text: chunks.join('') };
            }
            chunks.push(this.buf.subarray(eol + 2, eol + 2 + size).toString());
            at = eol + 2 + size + 2;
          }
        } else {
          const len = Number(h.headers['content-length']);
          if (this.buf.length >= at + len) {
            const text = this.buf.subarray(at, at + len).toString();
            this.buf = this.buf.subarray(at + len);
            return { ...h, text, chunks: null };
          }
        }
      }
      if (this.closed) throw new Error(`closed mid-response: ${JSON.stringify(this.buf.toString())}`);
      await this.wait(ms);
    }
  }

  close() {
    this.sock.destroy();
  }
}

module.exports = { RawConn };
