/*
 * ag_config_t: the whole configuration, loaded from YAML (config/actiongate.yaml documents every key) over built-in
 * defaults. The structure mirrors actionhero's config: general.*, servers.web.*, servers.websocket.*, redis.*.
 * Strings are owned by the config; lists are NULL-terminated arrays of owned strings.
 */
#ifndef AG_CONFIG_H
#define AG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* The largest general.maxRoomNameLength accepted: room names (and the channels named after them) fit stack buffers. */
#define AG_CONFIG_ROOM_NAME_MAX 1024
/* general.workers at most */
#define AG_CONFIG_WORKERS_MAX 64
/* The most entries `modules` may have. */
#define AG_CONFIG_MODULES_MAX 32
#define AG_STR_(x) #x
#define AG_STR(x) AG_STR_(x)

typedef struct st_ag_config_t {
    struct {
        char *welcomeMessage;     /* "Welcome to the actiongate api" */
        char *serverName;         /* "actiongate" */
        char *apiVersion;         /* AG_VERSION */
        char *id;                 /* node id; "" = generated at boot */
        char *serverToken;        /* redis.compat actionhero: the app's general.serverToken, "change-me" */
        char *channel;            /* redis.compat actionhero: the app's pub/sub channel, "actionhero" */
        int simultaneousActions;  /* 5 */
        char **startingChatRooms; /* defaultRoom, otherRoom */
        int announceRoomJoins;    /* 0: "I have entered the room: <id>" / "I have left the room: <id>" from "0" */
        char **trustedProxies;    /* addresses whose X-Forwarded-For / X-Real-IP / X-Forwarded-Port are believed */
        char *logLevel;           /* "info" */
        char *logFormat;          /* "text" or "json" (one JSON object per line) */
        char *logFile;            /* "" = stderr; a file is appended to and opened again on SIGHUP */
        char *accessLog;          /* "" = none; "-" = the log's own stream; else a file (SIGHUP opens it again) */
        int shutdownTimeout;      /* ms to finish pending actions and flush closes, 5000 */
        int workers;   /* event loops (threads) of the process, each a node; 0 = the cores this process may run on, 1..64 */
        char *ioUring; /* "auto": WebSocket writes of one loop iteration go out in one io_uring submit where the kernel
                          allows it (transports/ws.c, server/batch_send.c); "off": one write each */

        /* bounds on rooms (server/rooms.c) */
        int maxRoomsPerConnection; /* rooms one connection may be in (or joining) at once, 100 */
        int maxRooms;              /* rooms the store holds (per node on the memory store, per cluster on Redis), 10000 */
        int maxRoomNameLength;     /* bytes, 256 (at most AG_CONFIG_ROOM_NAME_MAX) */

        /* resume (README "Resume") */
        int resumeWindow;       /* ms an away connection waits for its client, 120000; 0 = no resume, no room history */
        int resumeMaxAway;      /* away connections per node, 10000 */
        int resumeOutboxFrames; /* numbered frames kept per resumable connection, 64 */
        int resumeOutboxBytes;  /* their bytes, 65536 */
        int resumeHistoryLines; /* lines kept per room (for resumeWindow at most), 100 */
        int resumeHistoryBytes; /* their bytes, 262144 */
        char *resumeStateFile;  /* "" = off: where a graceful stop saves what resumable connections need (memory store) */
    } general;
    struct {
        struct {
            int enabled;  /* 1 */
            int port;     /* 8080, or env PORT */
            char *bindIP; /* "0.0.0.0" */
            int secure;   /* 0 */
            char *certFile, *keyFile;
            int http2;                 /* 0: h2 only when enabled on purpose (see README security note) */
            char *publicDir;           /* "" = the demo directory shipped under client/public */
            char *urlPathForActions;   /* "api" */
            char *urlPathForFiles;     /* "public" */
            int queryRouting;          /* 1: /api?action=… and body {"action":…} */
            int serverInformation;     /* 1 */
            int requesterInformation;  /* 1 */
            char *cookieKey;           /* "sessionID" */
            int cookieExpires;         /* 3600000 ms */
            long maxRequestBody;       /* bytes, 10485760 */
            int flatFileCacheDuration; /* s, 60 */
            int maxConnections;        /* TCP connections per node; 0 = what the descriptor limit allows (README "Limits") */
            int maxConnectionsPerIp;   /* TCP connections per peer address (IPv6: per /64), 1000; 0 = no cap */
            double handshakeRate;      /* new realtime connections per address and second, 20; 0 = no limit */
            int handshakeBurst;        /* 200 */
        } web;
        struct {
            int enabled;                  /* 1 */
            char *clientUrl;              /* "window.location.origin" (a bare expression) or a URL */
            char *clientJsPath;           /* "javascript/" */
            char *clientJsName;           /* "ActionheroWebsocketClient"; "" = not rendered */
            int destroyClientsOnShutdown; /* 0 */
            struct {
                char *pathname;         /* "/primus" */
                char **transports;      /* polling, websocket, sse */
                int pingInterval;       /* engine.io, 25000 */
                int pingTimeout;        /* engine.io, 20000 */
                int upgradeTimeout;     /* 10000 */
                long maxHttpBufferSize; /* 1000000 */
                char **origins;         /* "*" */
                int credentials;        /* 0 */
                char **methods;         /* GET, POST */
                int maxAge;             /* s, 86400 */
                int primusPingInterval; /* plain /primus heartbeat, 30000 */
                long maxLength;         /* plain /primus frame limit, 1048576 */
                long queueMaxBytes;     /* per-connection outbound bound, 4194304 */
                int queueMaxFrames;     /* 4096 */
                int echo;               /* 0: raw engine.io echo, no session layer (conformance suites) */
                int allowEIO3;          /* 1: engine.io protocol 3 clients (engine.io-client 3, socket.io-client 2) */
                double messageRate;     /* inbound messages per connection and second, 100; 0 = no limit */
                int messageBurst;       /* 200; this many refusals in a row end the connection */
                int pollSleepMs;        /* a held polling GET leaves h2o's request after this long, 1000; 0 = never */
                int pollDirect;         /* 1: a polling session's kept HTTP/1.1 connection is read and answered by the node */
                struct {
                    int replayEvents;  /* 512 */
                    long replayBytes;  /* 1048576 */
                    long recycleBytes; /* 8388608 */
                    int keepaliveMs;   /* 15000 */
                    /* node-wide bound on every session's replay ring together, 67108864 */
                    long replayTotalBytes;
                } sse;
            } server;
            struct {
                char *apiPath;          /* "/api" */
                char *cookieKey;        /* "sessionID" */
                char **transports;      /* order tried by the browser client: polling, websocket, sse */
                int websocketFirst;     /* 0 */
                int rememberUpgrade;    /* 1 */
                int timeout;            /* connect timeout ms, 10000 */
                int reconnectMin;       /* 500 */
                int reconnectMax;       /* 30000 */
                double reconnectFactor; /* 2 */
                int reconnectRetries;   /* 0 = forever */
                int queueSize;          /* 100 */
            } client;
        } websocket;
        struct {
            int enabled;        /* 1 */
            char *path;         /* "/socket.io" */
            int connectTimeout; /* ms without a CONNECT before the session closes, 45000 */
            int conformance;    /* 0: 1 answers as socket.io-protocol's reference server (test suites only) */
            /* 0: 1 recovers socket.io-client's connections (pid / offset) within general.resumeWindow */
            int connectionStateRecovery;
        } socketio;
        struct {
            char *path; /* "/engine.io": engine.io v4 on a path of its own; "" = off */
        } engineio;
    } servers;
    struct {
        char *url;          /* "" = embedded memory store; env REDIS_URL overrides */
        int connectTimeout; /* ms, 2000 */
        int commandTimeout; /* ms, 5000 */
        char *prefix;       /* "actiongate:" */
        int nodeTtl;        /* s, 5: a node missing this long is dead */
        char *compat;       /* "" = actiongate's own keys; "actionhero" = rooms, members and chat on an actionhero app's */
    } redis;
    struct {
        char **urls;               /* base URLs of an actionhero web API ("http://host:port/api"); none = no upstream */
        char **actions;            /* names or fnmatch patterns of the actions that go upstream: "*" */
        int keepLocalActions;      /* 1: actions registered here (the built-in ones) stay local */
        int timeout;               /* ms per call, 10000 */
        int maxInFlight;           /* calls in flight per node, 1024 */
        int keepAlive;             /* ms an idle upstream connection is kept, 2000; 0 = one connection per call */
        long maxRequestBytes;      /* params sent per call, as JSON, 1048576 */
        long maxResponseBytes;     /* 1048576 */
        char *documentationAction; /* the app's action the documentation verb lists actions from: "swagger"; "" = none */
    } upstream;
    struct {
        /* the upstream actions that answer each hook (server/backend.h); "" = no such hook */
        char *connect, *disconnect, *roomAdd, *roomLeave, *say;
        int timeout;        /* ms a hook may take, 3000 */
        int allowOnFailure; /* 0: an unreachable or late backend refuses; 1: it allows */
    } hooks;
    struct {
        char *key;     /* the server API's key (server/serverapi.h); "" = no server API */
        char *prefix;  /* its path prefix, "/server" */
        int timeout;   /* ms a call waits for the other nodes of a cluster to answer, 2000 */
        int maxFanout; /* connections one node pushes to per user or fingerprint push, 10000 */
    } serverApi;
    struct {
        /* signed tokens (server/token.h); on when secret or publicKeyFile is set */
        char *secret;        /* HMAC key for HS256/384/512, at least 32 bytes; "" = none */
        char *publicKeyFile; /* PEM public key (RSA or EC) for RS* / ES*; "" = none */
        char **algorithms;   /* allowed algs; empty = HS* with only a secret, RS* or ES* (by the key) with only a key, both
                                with both; "none" is refused at load */
        int require;         /* 1: a connection without a valid token is refused */
        int leeway;          /* seconds of clock skew allowed on exp and nbf, 0 */
        char *audience;      /* "" = aud not checked; else aud must name it */
        char *issuer;        /* "" = iss not checked; else iss must equal it */
        char *queryParam;    /* the handshake query parameter that carries a token, "token" */
        int maxBytes;        /* longest token read, 8192 */
    } tokens;
    struct {
        char *metricsPath; /* "/metrics"; "" = no metrics endpoint */
        char *metricsKey;  /* "" = open; else /metrics wants "Authorization: Bearer <key>" */
        char *healthPath;  /* "/healthz"; "" = none */
        char *readyPath;   /* "/readyz"; "" = none */
        int drainDelay;    /* ms between readyPath turning 503 and the first connection told to go, 0 */
        int drainWindow;   /* ms the connections of a drain are told to reconnect over (uniformly), 0 = all at once */
    } ops;
    char **modules; /* shared objects loaded at boot (server/modules.h), in order; none by default */
    char *path;     /* the file it came from, or NULL for built-in defaults */
} ag_config_t;

/* Built-in defaults. NULL on ENOMEM. */
ag_config_t *ag_config_create_default(void);
/* Loads path over the defaults. On error returns NULL and writes one line "FILE:LINE: what is wrong" to errbuf. */
ag_config_t *ag_config_load(const char *path, char *errbuf, size_t errlen);
/* Parses YAML text (for tests); name is used in error lines. */
ag_config_t *ag_config_load_string(const char *yaml, const char *name, char *errbuf, size_t errlen);
/* The same for len bytes that need not be NUL-terminated (the buffer is borrowed for the call). */
ag_config_t *ag_config_load_buffer(const char *yaml, size_t len, const char *name, char *errbuf, size_t errlen);
void ag_config_destroy(ag_config_t *cfg);
/* Number of entries in a NULL-terminated list. */
size_t ag_config_list_len(char *const *list);
int ag_config_list_has(char *const *list, const char *s);

#endif
