'use strict';
// A minimal XMLHttpRequest for running the browser client in node: the subset the client uses (open, send,
// setRequestHeader, abort, onreadystatechange, readyState, status, statusText, responseText), over node:http, with a
// cookie jar shared by every request made through the same class (like a browser tab).
const http = require('node:http');

function makeXhr(jar = {}) {
  class NodeXhr {
    constructor() {
      this.readyState = 0;
      this.status = 0;
      this.statusText = '';
      this.responseText = '';
      this.headers = {};
      this.onreadystatechange = null;
      NodeXhr.count++;
    }
    open(method, url) {
      this.method = method;
      this.url = new URL(url);
      this.readyState = 1;
    }
    setRequestHeader(k, v) {
      this.headers[k] = v;
    }
    send(body) {
      const cookies = Object.entries(jar).map(([k, v]) => `${k}=${v}`).join('; ');
      const headers = { ...this.headers };
      if (cookies) headers.Cookie = cookies;
      if (body != null) headers['Content-Length'] = Buffer.byteLength(body);
      NodeXhr.log.push({ method: this.method, url: this.url.toString(), body });
      this.req = http.request(this.url, { method: this.method, headers, agent: NodeXhr.agent }, (res) => {
        for (const c of [].concat(res.headers['set-cookie'] || [])) {
          const m = /^([^=]+)=([^;]*)/.exec(c);
          if (m) jar[m[1]] = m[2];
        }
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (data += d));
        res.on('end', () => this.finish(res.statusCode, res.statusMessage, data));
        res.on('error', () => this.finish(0, '', ''));
      });
      this.req.on('error', () => this.finish(0, '', ''));
      if (body != null) this.req.write(body);
      this.req.end();
    }
    finish(status, statusText, text) {
      if (this.readyState === 4 || this.aborted) return;
      this.readyState = 4;
      this.status = status;
      this.statusText = statusText || '';
      this.responseText = text;
      if (this.onreadystatechange) this.onreadystatechange();
    }
    abort() {
      this.aborted = true;
      if (this.req) this.req.destroy();
    }
  }
  NodeXhr.count = 0;
  NodeXhr.log = [];
  NodeXhr.jar = jar;
  NodeXhr.agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  return NodeXhr;
}

module.exports = { makeXhr };
