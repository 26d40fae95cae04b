/*
 * ag_server_t as every module sees it: one node's configuration, loop, HTTP context, store, connection table and
 * counters, plus one slot per module for the state that module owns. A module's init allocates its slot and its
 * dispose frees it; server/server.c (the wiring, the only file that knows every module) calls them in order.
 *
 * Single-threaded: everything of a node runs on its h2o evloop. A process running several workers (general.workers)
 * holds one node per worker, each on its own thread and loop, sharing nothing but the store's data (the shared memory
 * store, or Redis) and the process-wide log; a request that reached the wrong worker is carried to its owner by the
 * cluster layer. The functions here are named after the type they work on.
 */
#ifndef AG_NODE_H
#define AG_NODE_H

#define H2O_USE_EPOLL 1
#include <h2o.h>
#include "common.h"
#include "config.h"
#include "store/store.h"

typedef struct st_ag_server_t ag_server_t;

struct st_ag_conn_handler_t; /* server/conn.h */
struct st_ag_hook_chain_t;   /* server/rooms_internal.h */
struct st_ag_actions_t;      /* server/actions.c */
struct st_ag_rooms_t;        /* server/rooms_internal.h */
struct st_ag_cluster_t;      /* server/cluster.c */
struct st_ag_clientjs_t;     /* server/clientjs.c */
struct st_ag_scripts_t;      /* server/scripts.c */
struct st_ag_ws_node_t;      /* transports/ws.c */
struct st_ag_primus_node_t;  /* transports/primus_ws.c */
struct st_ag__eio_node_t;    /* transports/eio.c */
struct st_ag_sio_node_t;     /* transports/socketio.c */
struct st_ag_limits_t;       /* server/limit.c */
struct st_ag_upstream_t;     /* server/upstream.c */
struct st_ag_backend_t;      /* server/backend.c */
struct st_ag_ops_t;          /* server/ops.c */
struct st_ag_serverapi_t;    /* server/serverapi.c */
struct st_ag_modules_t;      /* server/modules.c */
struct st_ag_tokens_t;       /* server/token.c */
struct st_ag_workers_t;      /* server/server_internal.h */
struct st_ag_away_t;         /* server/conn.c */

/* Disconnect reasons counted apart: the AG_DISCONNECT_* constants, and one for any other (server/conn.c). */
#define AG_DISCONNECT_KINDS 15

typedef struct st_ag_stats_t {
    uint64_t connections_opened, connections_closed;
    uint64_t frames_in, frames_out, invalid_json, slow_consumers;
    /* limits (README "Limits") */
    uint64_t tcp_refused;        /* accepted only to be turned away: node or address at its connection cap, descriptors out */
    uint64_t handshakes_refused; /* over servers.web.handshakeRate */
    uint64_t messages_refused;   /* over servers.websocket.server.messageRate */
    uint64_t rate_disconnects;   /* connections ended for sustained abuse of the message rate */
    size_t sse_replay_bytes;     /* bytes held by every SSE replay ring together (bounded by sse.replayTotalBytes) */
    /* README "Operations" */
    uint64_t bytes_in, bytes_out;              /* payload bytes of messages received and queued */
    uint64_t upgrades;                         /* connections that moved to another carrier (engine.io upgrade) */
    uint64_t upgrade_fallbacks;                /* upgrade probes that failed: the session stayed on its carrier */
    uint64_t sse_resumes, sse_replayed;        /* SSE streams resumed with Last-Event-ID, and the events replayed */
    uint64_t sse_resumes_refused;              /* Last-Event-ID older than the replay ring: the session ended */
    size_t polls_asleep;                       /* polling GETs off h2o's request (pollSleepMs) and not answered yet */
    uint64_t polls_slept;                      /* polling GETs that left h2o's request so */
    uint64_t polls_direct;                     /* polling GETs read and answered by the node itself (pollDirect) */
    size_t poll_conns_direct;                  /* HTTP/1.1 connections of polling sessions the node reads itself */
    size_t actions_in_progress;                /* action requests started and not completed (server/actions.c) */
    size_t conns_away;                         /* resumable connections without a carrier now (README "Resume") */
    uint64_t resumes, resumes_refused;         /* connections resumed, and resume requests answered "not resumed" */
    uint64_t away_expired;                     /* away connections that ended (window over, outbox over its bound) */
    uint64_t room_lines_fetched;               /* room lines this node missed and read from the room's history */
    uint64_t room_lines_missed;                /* room lines this node missed that the history no longer held */
    uint64_t disconnects[AG_DISCONNECT_KINDS]; /* by ag_disconnect_kind() */
    /* general.ioUring (transports/ws.c): whether WebSocket writes are batched, the submits, and the writes in them that
     * went out whole or left a rest (or all) to the normal write path */
    int ws_io_uring;
    uint64_t ws_batch_submits, ws_batch_whole, ws_batch_rest;
    /* the same for HTTP/1.x SSE streams (transports/eio_sse.c) */
    int sse_io_uring;
    uint64_t sse_batch_submits, sse_batch_whole, sse_batch_rest;
    /* the same for direct polling answers (transports/eio_polling_direct.c), which share the SSE streams' ring */
    int poll_io_uring;
    uint64_t poll_batch_submits, poll_batch_whole, poll_batch_rest;
} ag_stats_t;

struct st_ag_server_t {
    ag_config_t *config;
    char node_id[64];
    uint64_t started_ms; /* ms epoch when the node was created (the status action's uptime) */
    h2o_globalconf_t h2o_config;
    h2o_context_t ctx; /* initialised after the modules registered their paths (ctx_ready) */
    int ctx_ready;
    h2o_evloop_t *loop;
    h2o_accept_ctx_t accept_ctx;
    SSL_CTX *ssl_ctx;
    h2o_socket_t *listener;            /* NULL until ag_server_listen */
    struct st_ag_limits_t *limits;     /* per-address state and the TCP connection count (server/limit.c) */
    int accept_paused;                 /* listener not read: at the connection cap, or out of descriptors */
    h2o_timeout_entry_t accept_resume; /* reads it again */
    int reserve_fd;                    /* held so that a connection can be answered and closed at EMFILE */
    /* general.workers > 1: the process's workers (owned by worker 0, server/server.c), this one's index, and its private
     * listener (bindIP, a port of its own) where the other workers forward the requests of its sessions */
    struct st_ag_workers_t *workers;
    unsigned worker;
    h2o_socket_t *private_listener;
    h2o_accept_ctx_t private_accept_ctx;
    h2o_socket_t *wake;   /* an eventfd the other workers write to when the process stops or reopens its logs */
    unsigned reopen_seen; /* the workers' reopen count this worker acted on */
    char public_dir[4096];
    char client_dir[4096]; /* the browser client's templates and scripts (server/server.c says where they are found) */
    ag_store_t *store;

    /* the connection table (server/conn.c) and the consumer of every connection's frames */
    ag_map_t conns; /* id -> ag_conn_t* (open local connections) */
    size_t num_conns;
    const struct st_ag_conn_handler_t *conn_handler;
    void *conn_handler_data;

    /* module state, each slot owned by its module */
    struct st_ag_hook_chain_t *hooks; /* the application's and the modules' hooks (ag_set_hooks, ag_hooks_add) */
    struct st_ag_actions_t *actions;
    struct st_ag_rooms_t *rooms;
    struct st_ag_cluster_t *cluster;
    struct st_ag_clientjs_t *clientjs;
    struct st_ag_scripts_t *scripts;
    struct st_ag_ws_node_t *ws;
    struct st_ag_primus_node_t *primus;
    struct st_ag__eio_node_t *eio;
    struct st_ag_sio_node_t *sio;
    struct st_ag_upstream_t *upstream; /* NULL without upstream.urls */
    struct st_ag_backend_t *backend;   /* NULL without hooks (server/backend.c) */
    struct st_ag_tokens_t *tokens;     /* NULL without tokens.secret or tokens.publicKeyFile (server/token.c) */
    struct st_ag_ops_t *ops;
    struct st_ag_serverapi_t *serverapi; /* the calls modules added (ag_api_register); NULL until the first */
    struct st_ag_modules_t *modules;     /* the loaded shared objects; NULL without any */
    struct st_ag_away_t *away;           /* the away connections and their window (server/conn_resume.c); NULL until one */
    /* socket.io recoveries waiting for a connection another node or worker holds (server/resume.c): the pause between
     * two tries; initialised with the first */
    h2o_timeout_t resume_retry;
    int resume_retry_ready;
    json_t *resume_saved; /* what a stop saves of its resumable connections (server/resume_state.c); NULL until then */

    ag_stats_t stats;
    /* Called when an action request is answered (server/ops.c registers it for its metrics): name is the registered
     * action's, or the upstream one's (borrowed for the call), or NULL; status is the answer's HTTP status. */
    void (*on_action_done)(ag_server_t *s, const char *name, int upstream, int status, uint64_t started_ms);
    int stopping; /* SIGTERM/SIGINT seen: no new connections, pending actions fail with "the server is shutting down" */
    int exit_code;
    uint64_t stop_deadline;
};

/* The port actually bound (when configured as 0), or -1 before ag_server_listen. */
int ag_server_port(ag_server_t *s);
/* Several workers (general.workers): render runs on every other worker's own loop and returns a malloc'd text (len
 * set), or NULL; done then runs once on s's loop with texts[i] / lens[i] per worker index (NULL for s itself and for a
 * worker that did not answer within a second), and frees nothing: the texts are freed after done returns. Returns 0,
 * or AG_ENOENT when s has no other workers (done is not called), AG_ENOMEM. done's data must outlive the wait: a
 * request's pool is the caller's to guard. */
typedef char *(*ag_server_render_fn)(ag_server_t *s, size_t *len);
typedef void (*ag_server_gathered_fn)(void *data, char *const *texts, const size_t *lens, size_t n);
int ag_server_gather(ag_server_t *s, ag_server_render_fn render, ag_server_gathered_fn done, void *data);

/* The port other nodes forward this node's sessions' requests to: the private listener's with several workers, else
 * the public one. */
int ag_server_forward_port(ag_server_t *s);
/* Disposes a timer list a module owns, unless entries are still linked to it: objects that h2o keeps alive until the
 * process exits (a WebSocket still closing, a spliced tunnel) may hold one. Returns 0 when disposed, -1 when the list
 * stays: the module then leaves the memory holding it, and what it reaches, with the loop, which ag_server_destroy
 * leaves to process exit (h2o 2.2.5 cannot close its live sockets; spec/lsan.supp names the node's creation). */
int ag_server_timeout_dispose(ag_server_t *s, h2o_timeout_t *t);

#endif
