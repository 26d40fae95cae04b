'use strict';
// Actions of the fixture app: what the actiongate upstream tests call through actiongate and directly.
const { Action } = require('actionhero');

class Echo extends Action {
  constructor() {
    super();
    this.name = 'echoParams';
    this.description = 'I echo my inputs';
    this.inputs = {
      name: { required: true },
      count: {
        required: false,
        default: 1,
        formatter: (v) => parseInt(v, 10),
        validator: (v) => {
          if (!(v >= 1 && v <= 100)) throw new Error('count must be between 1 and 100');
        },
      },
      word: { required: false, validator: (v) => typeof v === 'string' && v.length >= 2 },
    };
  }
  async run({ params }) {
    return { name: params.name, count: params.count, word: params.word === undefined ? null : params.word };
  }
}

class Whoami extends Action {
  constructor() {
    super();
    this.name = 'whoami';
    this.description = 'I return what the app knows about the connection';
    this.inputs = {};
  }
  async run({ connection }) {
    return { fingerprint: connection.fingerprint, remoteIP: connection.remoteIP, type: connection.type };
  }
}

class Boom extends Action {
  constructor() {
    super();
    this.name = 'boom';
    this.description = 'I throw';
    this.inputs = {};
  }
  async run() {
    throw new Error('boom went the action');
  }
}

class Slow extends Action {
  constructor() {
    super();
    this.name = 'slow';
    this.description = 'I answer after ms milliseconds';
    this.inputs = { ms: { required: false, default: 500, formatter: (v) => parseInt(v, 10) } };
  }
  async run({ params }) {
    await new Promise((r) => setTimeout(r, Math.min(params.ms, 30000)));
    return { sleptMs: params.ms };
  }
}

module.exports = { Echo, Whoami, Boom, Slow };
