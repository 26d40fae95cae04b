/*
 * actiongate: the public C API for embedding the gateway in an application.
 *
 * A node is created from a configuration, the application registers its actions and hooks, then runs the loop:
 *
 *     char err[256];
 *     ag_server_t *s = ag_create("config/actiongate.yaml", err, sizeof(err));
 *     ag_action_register(s, &my_action);
 *     ag_set_hooks(s, &my_hooks);
 *     int status = ag_run(s);   // until SIGTERM/SIGINT or ag_stop()
 *     ag_destroy(s);
 *
 * Everything runs on the node's single event loop: every function here must be called from that loop (or before
 * ag_run), and every callback is invoked on it. Nothing blocks: an action that waits (a timer, I/O) returns from its
 * handler and completes its request later with ag_action_succeed() or ag_action_fail().
 *
 * JSON values are jansson's. "borrowed" means valid for the duration of the call only; "stolen" means the callee
 * takes the caller's reference.
 */
#ifndef ACTIONGATE_H
#define ACTIONGATE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_ag_server_t ag_server_t;
/* A logical realtime connection (Primus, engine.io or socket.io, whatever carries it). Opaque: read it with the
 * ag_conn_* accessors below. A connection handed to a callback is borrowed for that call; one kept longer must be
 * looked up again by id (ag_conn_find), since it may be gone. */
typedef struct st_ag_conn_t ag_conn_t;
typedef struct st_ag_action_req_t ag_action_req_t;

/* --- errors --- */

/* Sync calls return 0 or one of these; ag_strerror() names them. */
enum {
    AG_OK = 0,
    AG_ENOMEM = -1,
    AG_EINVAL = -2,
    AG_ENOENT = -3,
    AG_EEXIST = -4,
    AG_EIO = -5,
    AG_ECONFIG = -6,
    AG_ETOOBIG = -7,
    AG_EBUSY = -8,
    AG_ECLOSED = -9,
};
/* A static text for err. */
const char *ag_strerror(int err);

/* --- disconnects --- */

/* Why a connection ended: data, not control flow. Every disconnect is one of the constants below (compare pointers, or
 * read the fields); the first reason a connection gets is the one it keeps. */
typedef struct st_ag_disconnect_t {
    uint16_t code;      /* WebSocket close code; /primus sends it for the two limits (slow consumer, too big) */
    const char *reason; /* short text for logs and close frames */
    int reconnect;      /* 0: the client must not come back (Primus gets "primus::server::close", engine.io its close
                           packet, socket.io a DISCONNECT) */
} ag_disconnect_t;
extern const ag_disconnect_t AG_DISCONNECT_PEER_CLOSED;     /* the client closed its transport or left */
extern const ag_disconnect_t AG_DISCONNECT_TRANSPORT_ERROR; /* the transport failed: a dropped poll, a socket error */
extern const ag_disconnect_t AG_DISCONNECT_PROTOCOL_ERROR;  /* the client broke the protocol (a packet that does not decode) */
extern const ag_disconnect_t AG_DISCONNECT_HEARTBEAT;       /* the client stopped answering pings */
extern const ag_disconnect_t AG_DISCONNECT_SLOW;            /* what waited for the client passed its bound (slow consumer) */
extern const ag_disconnect_t AG_DISCONNECT_TOO_BIG;         /* an inbound message over the limit */
extern const ag_disconnect_t AG_DISCONNECT_RATE;            /* kept sending over the message rate: no reconnect */
extern const ag_disconnect_t AG_DISCONNECT_QUIT;            /* the client asked (quit/exit verb): no reconnect */
extern const ag_disconnect_t AG_DISCONNECT_SERVER;          /* closed by the application: no reconnect */
extern const ag_disconnect_t AG_DISCONNECT_KICKED;          /* closed by the server API, may come back */
extern const ag_disconnect_t AG_DISCONNECT_REFUSED;         /* the connect hook refused it: no reconnect */
extern const ag_disconnect_t AG_DISCONNECT_TOKEN_REFUSED;   /* its token was missing, invalid or expired at connect: no reconnect */
extern const ag_disconnect_t AG_DISCONNECT_TOKEN_EXPIRED;   /* its token expired and was not refreshed: 4408, may come back
                                                               with a fresh token */
extern const ag_disconnect_t AG_DISCONNECT_SERVER_ERROR;    /* the server could not go on with it (out of memory) */
extern const ag_disconnect_t AG_DISCONNECT_SHUTDOWN;        /* the node stops; come back later (destroyClientsOnShutdown false) */
extern const ag_disconnect_t AG_DISCONNECT_SHUTDOWN_FINAL;  /* the node stops; do not come back (destroyClientsOnShutdown true) */

/* --- node --- */

/* Loads the YAML file (NULL = built-in defaults), creates the node with the built-in actions, loads the configured
 * modules and binds the listener. NULL on failure, with one line in errbuf ("FILE:LINE: …" for configuration errors).
 * Same as ag_create_ex with only config_path set. */
ag_server_t *ag_create(const char *config_path, char *errbuf, size_t errlen);

/* What a command line may put over the configuration file (defaults < file < these). A zeroed field (NULL, 0) keeps
 * the file's value, so that {.config_path = "x.yaml"} overrides nothing. */
#define AG_PORT_ANY (-1)       /* as a port: any free one (servers.web.port: 0) */
#define AG_WORKERS_CONFIG (-1) /* as workers: general.workers */
#define AG_WORKERS_CORES (-2)  /* as workers: one per core this process may run on */
typedef struct st_ag_options_t {
    const char *config_path; /* the YAML file; NULL = built-in defaults */
    int port;                /* servers.web.port: 1 to 65535, or AG_PORT_ANY; 0 keeps the file's */
    const char *host;        /* servers.web.bindIP */
    const char *public_dir;  /* servers.web.publicDir */
    const char *log_level;   /* general.logLevel: debug, info, warn, error or none */
    const char *redis_url;   /* redis.url ("" = the memory store) */
    /* Event loops, one thread and one node each, sharing the port (README "Workers"): 0 = one, on the caller's thread
     * (an embedding application's actions and hooks are registered on the node it gets); AG_WORKERS_CONFIG =
     * general.workers (what the binary does; its default is one per core this process may run on: its CPU affinity);
     * AG_WORKERS_CORES = the same; N = N (at most 64). With more than
     * one, the node returned is worker 0: ag_run runs the others on threads of their own and returns when all have
     * stopped, ag_stop stops them all, ag_destroy frees them all; modules are loaded by every worker. */
    int workers;
} ag_options_t;
/* ag_create with options. Returns 0 and the node in *out, or (nothing in *out, one line in errbuf):
 * AG_ECONFIG when the configuration, an option or a module is wrong (a missing file or init symbol, an init that
 * failed), AG_ENOMEM, or AG_EIO when the node could not be built or could not bind its listener (errbuf says why). */
int ag_create_ex(const ag_options_t *opts, ag_server_t **out, char *errbuf, size_t errlen);
/* Loads and validates the YAML file without building a node: 0, or AG_ECONFIG with one line in errbuf. */
int ag_check_config(const char *config_path, char *errbuf, size_t errlen);
/* "MAJOR.MINOR.PATCH" of the actiongate the caller runs in (a module may be loaded by another build than the one it
 * was compiled against). */
const char *ag_version(void);
/* The port the listener is bound to (useful when configured as 0), or -1 before it listens. */
int ag_port(ag_server_t *s);
/* This node's id (general.id, or a random one): borrowed for the node's life. */
const char *ag_node_id(ag_server_t *s);
/* Runs the loop until the graceful shutdown has finished; returns the exit status. */
int ag_run(ag_server_t *s);
/* Begins the graceful shutdown: pending actions are answered "the server is shutting down", connections close. */
void ag_stop(ag_server_t *s);
void ag_destroy(ag_server_t *s);

/* --- connections --- */

/* Every string returned below is borrowed: valid while the connection is, and only until the next call into the node
 * that may change it (ag_conn_user: a token refresh or a connect hook). Copy what you keep. */
/* The connection's id (a UUID): what detailsView shows, what ag_push_conn and the server API take. */
const char *ag_conn_id(const ag_conn_t *c);
/* The client's fingerprint (the socket URL's ?sessionID=, else the id). */
const char *ag_conn_fingerprint(const ag_conn_t *c);
/* The peer's address (resolved through general.trustedProxies) and port. */
const char *ag_conn_remote_ip(const ag_conn_t *c);
int ag_conn_remote_port(const ag_conn_t *c);
/* What carries it now: "websocket", "polling" or "sse" (an engine.io connection may move from one to another). */
const char *ag_conn_transport(const ag_conn_t *c);
/* Which protocol: "primus", "engine.io" or "socket.io". */
const char *ag_conn_protocol(const ag_conn_t *c);
/* Who it is: the connect hook's data.user (or a token's sub), or NULL when unknown. */
const char *ag_conn_user(const ag_conn_t *c);
/* The object the connect hook answered as "data" (borrowed; incref to keep it), or NULL. */
json_t *ag_conn_data(const ag_conn_t *c);
/* When it connected, ms since the epoch. */
uint64_t ag_conn_connected_at(const ag_conn_t *c);
/* 1 once the connection is closing or closed: write nothing more to it. */
int ag_conn_closed(const ag_conn_t *c);
/* The node it belongs to. */
ag_server_t *ag_conn_server(const ag_conn_t *c);
/* Calls cb for each room the connection is in on this node, in join order (room borrowed for the call); cb returns 0
 * to go on, non-zero to stop. cb must not join or leave rooms. Returns the number of calls made. */
size_t ag_conn_rooms(const ag_conn_t *c, int (*cb)(const char *room, void *data), void *data);
/* Finds an open connection of this node by id (borrowed for the current callback), or NULL. A connection held by
 * another node of a cluster is not found here: ag_push_conn reaches it. */
ag_conn_t *ag_conn_find(ag_server_t *s, const char *id);
/* Ends the connection, for why (one of the AG_DISCONNECT_* constants: AG_DISCONNECT_SERVER = closed by the
 * application, do not come back; AG_DISCONNECT_KICKED = may come back). Idempotent: the first reason stays. */
void ag_conn_close(ag_conn_t *c, const ag_disconnect_t *why);

/* --- actions --- */

/* A validator returns 0 when value is acceptable. Otherwise it may point *message at a static text sent to the client;
 * left NULL, the client gets `Input for parameter "<key>" failed validation!`. value is borrowed. */
typedef int (*ag_validator_fn)(const json_t *value, const char **message);
/* A formatter returns a new reference to the value to use instead (or NULL to keep value). value is borrowed. */
typedef json_t *(*ag_formatter_fn)(const json_t *value);

typedef struct st_ag_input_t {
    const char *name;
    int required;             /* missing, null or "" -> "<name> is a required parameter for this action" */
    const char *default_json; /* JSON text of the default used when the param is missing, or NULL */
    ag_validator_fn validator;
    ag_formatter_fn formatter;
} ag_input_t;

/* Runs the action. params (ag_action_params) hold only the declared inputs plus action, apiVersion, messageId, file
 * and callback. The handler completes the request exactly once, now or later, with ag_action_succeed/ag_action_fail. */
typedef void (*ag_action_run_fn)(ag_action_req_t *req, void *data);

typedef struct st_ag_action_def_t {
    const char *name;
    const char *description;
    const ag_input_t *inputs;
    size_t num_inputs;
    ag_action_run_fn run;
    void *data;
    int block_websocket; /* 1: "this action does not support the websocket connection type" */
} ag_action_def_t;

/* Registers (or replaces) an action. The definition and its strings are copied. 0 or AG_EINVAL/AG_ENOMEM. */
int ag_action_register(ag_server_t *s, const ag_action_def_t *def);

/* The request's params (borrowed for the life of the request). */
json_t *ag_action_params(ag_action_req_t *req);
/* Shortcuts: the param as a string/integer/number, or the fallback when missing or of another type (or, for the
 * integer, a number no long long can hold). */
const char *ag_action_param_str(ag_action_req_t *req, const char *name, const char *fallback);
long long ag_action_param_int(ag_action_req_t *req, const char *name, long long fallback);
ag_server_t *ag_action_server(ag_action_req_t *req);
/* The socket connection that asked, or NULL (a web request, or the connection is gone already). Borrowed. */
ag_conn_t *ag_action_conn(ag_action_req_t *req);
/* Completes the request with result (an object; stolen; NULL = {}): its keys are the reply's payload keys. */
void ag_action_succeed(ag_action_req_t *req, json_t *result);
/* Completes the request with an error string; status is the HTTP status for /api (0 = 500). */
void ag_action_fail(ag_action_req_t *req, int status, const char *message);
/* Calls cb once, ms milliseconds from now, on the loop (one timer per request; a second call replaces the first).
 * The timer is cancelled if the node is destroyed first. */
void ag_action_after(ag_action_req_t *req, uint64_t ms, void (*cb)(ag_action_req_t *req));

/* --- rooms and push --- */

/* Creates a room. The store answers asynchronously (at once for the memory store); a room that exists already is
 * logged, not an error. Returns 0. */
int ag_room_create(ag_server_t *s, const char *room);
/* Deletes a room: its members get "this room has been deleted" from "0" and are removed (every node). */
int ag_room_delete(ag_server_t *s, const char *room);
/* Says message in room from "0" (the server), to every member on every node. */
int ag_room_broadcast(ag_server_t *s, const char *room, const char *message);
/* Sends obj (borrowed) to every member of room on every node; context defaults to "api". */
int ag_push_room(ag_server_t *s, const char *room, json_t *obj);
/* Sends obj (borrowed) to one connection by id, on whichever node holds it (through the cluster when it is not
 * local); context defaults to "api". 0, AG_ENOENT (not local and no cluster), AG_EINVAL (not an object), AG_ETOOBIG
 * (over the per-message bound). */
int ag_push_conn(ag_server_t *s, const char *conn_id, json_t *obj);
/* Adds / removes a local connection to / from a room, with the hooks and announcements of roomAdd / roomLeave. The
 * result is reported through cb (may be NULL): err NULL on success, else the protocol's text. */
void ag_room_join(ag_conn_t *c, const char *room, void (*cb)(ag_conn_t *c, const char *err, void *data), void *data);
void ag_room_leave(ag_conn_t *c, const char *room, void (*cb)(ag_conn_t *c, const char *err, void *data), void *data);

/* --- hooks --- */

/* Every hook is optional. Rejecting hooks return 0 to allow, non-zero to reject; the reject text (static or owned by
 * the application, e.g. "joining rooms blocked") goes to the client as "Error: <text>".
 * on_say runs once per message on the sender's node: return payload (possibly modified), a new object instead, or NULL
 * to drop the message. on_say_recipient runs per local recipient: return a new reference to the object to send to
 * that connection (payload itself, incref'ed, if unchanged) or NULL to suppress it for that recipient. */
typedef struct st_ag_hooks_t {
    int (*on_join)(ag_conn_t *c, const char *room, const char **reject, void *data);
    int (*on_leave)(ag_conn_t *c, const char *room, const char **reject, void *data);
    json_t *(*on_say)(ag_conn_t *sender, const char *room, json_t *payload, void *data);
    json_t *(*on_say_recipient)(ag_conn_t *recipient, const char *room, json_t *payload, void *data);
    void (*on_connect)(ag_conn_t *c, void *data);
    /* why is one of the AG_DISCONNECT_* constants (borrowed for the call). */
    void (*on_disconnect)(ag_conn_t *c, const ag_disconnect_t *why, void *data);
    void *data;
} ag_hooks_t;

/* Installs the application's hooks (copied; NULL removes them). Hooks added with ag_hooks_add stay. */
void ag_set_hooks(ag_server_t *s, const ag_hooks_t *hooks);
/* Adds a set of hooks after the others (copied), so that several modules each keep their own. They run in order: the
 * application's (ag_set_hooks) first, then the added ones in the order they were added. on_join / on_leave: the first
 * that rejects wins and the later ones are not asked. on_say and on_say_recipient: each gets what the one before
 * returned; a NULL stops the chain (dropped). on_connect / on_disconnect: every one is called. At most 64 sets:
 * 0, AG_EBUSY (too many), AG_ENOMEM. */
int ag_hooks_add(ag_server_t *s, const ag_hooks_t *hooks);

/* --- server API extensions --- */

/* Handles POST <serverApi.prefix>/<name> after the key check (the same key and answers as the built-in calls, README
 * "Server API"). body is the request's JSON object (borrowed). Returns the HTTP status (200, or 400 / 404 / ... with
 * {"error": text}), and may set *reply to the answer's object (stolen; left NULL: {} for 200, {"error":"failed"}
 * otherwise). Runs synchronously on the loop: answer before returning. */
typedef int (*ag_api_handler_fn)(ag_server_t *s, json_t *body, json_t **reply, void *data);
/* Registers a call named name (1 to 64 of [A-Za-z0-9_-], not a built-in call's name; copied). Served while
 * serverApi.key is set. 0, AG_EINVAL (bad name or NULL fn), AG_EEXIST (taken), AG_EBUSY (more than 256), AG_ENOMEM. */
int ag_api_register(ag_server_t *s, const char *name, ag_api_handler_fn fn, void *data);

/* --- modules --- */

/*
 * A module is a shared object named in the configuration's `modules` list, loaded at boot (before the node listens)
 * with dlopen(RTLD_NOW | RTLD_LOCAL): this API's functions resolve against the actiongate binary, which exports them.
 * It defines
 *
 *     int actiongate_module_init(ag_server_t *server, const char *path, char *errbuf, size_t errlen);
 *
 * which registers its actions (ag_action_register), hooks (ag_hooks_add) and server-API calls (ag_api_register) and
 * returns 0, or non-zero with one line in errbuf: the node then does not start (exit status 2). path is the file as
 * configured. A module stays loaded until ag_destroy, which unloads the modules last, after everything that could
 * call into them is gone.
 */
#define AG_MODULE_INIT_SYMBOL "actiongate_module_init"
typedef int (*ag_module_init_fn)(ag_server_t *server, const char *path, char *errbuf, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
