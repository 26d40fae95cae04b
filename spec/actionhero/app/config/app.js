'use strict';
// The fixture app's configuration, loaded over actionhero's own defaults (ACTIONHERO_CONFIG points here). Ports,
// Redis and the routes come from the environment: PORT, REDIS_PORT, AUTOMATIC_ROUTES=post.
const path = require('node:path');
const os = require('node:os');

const coreActions = path.join(path.dirname(require.resolve('actionhero/package.json')), 'dist', 'actions');
const runDir = process.env.AH_FIXTURE_RUN_DIR || os.tmpdir();

exports.DEFAULT = {
  general: () => ({
    serverName: 'ahfixture',
    welcomeMessage: 'Welcome to the ahfixture api',
    serverToken: 'ahfixture-token',
    // actionhero's own example actions (status, randomNumber, cacheTest, sleepTest, swagger, …) plus ours
    paths: {
      action: [coreActions, path.join(__dirname, '..', 'actions')],
      public: [path.join(__dirname, '..', 'public')],
      pid: [path.join(runDir, 'pids')],
      log: [],
    },
    // ahStartRoom exists only because the app created it at boot (actiongate's own defaults have the other two)
    startingChatRooms: { defaultRoom: {}, otherRoom: {}, ahStartRoom: {} },
  }),
  logger: () => {
    const winston = require('winston');
    const level = process.env.LOG_LEVEL || 'crit';
    return {
      loggers: [() => winston.createLogger({ level, levels: winston.config.syslog.levels, transports: [new winston.transports.Console()] })],
    };
  },
  web: () => ({ bindIP: '127.0.0.1' }),
  tasks: () => ({ scheduler: false, queues: [], minTaskProcessors: 0, maxTaskProcessors: 0 }),
};
