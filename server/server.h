/*
 * ag_server_t: one node. Owns the h2o context and loop, the configuration, the store, the action registry, the local
 * room index and the connection table. Single-threaded: everything runs on the h2o evloop of this process (a machine's
 * cores are used as several processes forming a cluster over Redis).
 */
#ifndef AG_SERVER_H
#define AG_SERVER_H

#define H2O_USE_EPOLL 1
#include <h2o.h>
#include "common.h"
#include "config.h"
#include "conn.h"
#include "store/store.h"

struct st_ag_actions_t; /* server/actions.c */
struct st_ag_rooms_t;   /* server/rooms.c */
struct st_ag_hooks_t;   /* include/actiongate.h */
struct st_ag_cluster_t; /* server/cluster.c */
struct st_ag_limits_t;  /* server/limit.c */

struct st_ag_upstream_t; /* server/upstream.c */

typedef struct st_ag_stats_t {
    uint64_t connections_opened, connections_closed;
    uint64_t frames_in, frames_out, invalid_json, slow_consumers;
    /* limits (README "Limits") */
    uint64_t tcp_refused;        /* accepted only to be turned away: node or address at its connection cap, descriptors out */
    uint64_t handshakes_refused; /* over servers.web.handshakeRate */
    uint64_t messages_refused;   /* over servers.websocket.server.messageRate */
    uint64_t rate_disconnects;   /* connections ended for sustained abuse of the message rate */
    size_t sse_replay_bytes;     /* bytes held by every SSE replay ring together (bounded by sse.replayTotalBytes) */
} ag_stats_t;

struct st_ag_server_t {
    ag_config_t *config;
    char node_id[64];
    h2o_globalconf_t h2o_config;
    h2o_context_t ctx; /* initialised after the modules registered their paths (ctx_ready) */
    int ctx_ready;
    h2o_evloop_t *loop;
    h2o_accept_ctx_t accept_ctx;
    SSL_CTX *ssl_ctx;
    h2o_socket_t *listener;
    struct st_ag_limits_t *limits;     /* per-address state and the TCP connection count */
    int accept_paused;                 /* listener not read: at the connection cap, or out of descriptors */
    h2o_timeout_entry_t accept_resume; /* reads it again */
    int reserve_fd;                    /* held so that a connection can be answered and closed at EMFILE */
    char public_dir[4096];

    ag_store_t *store;
    struct st_ag_actions_t *actions;
    struct st_ag_rooms_t *rooms;
    struct st_ag_hooks_t *hooks;
    struct st_ag_cluster_t *cluster;
    void *eio; /* transports/eio.c: the engine.io session table */

    struct st_ag_upstream_t *upstream; /* NULL without upstream.urls */

    ag_map_t conns; /* id -> ag_conn_t* (open local connections) */
    size_t num_conns;
    ag_stats_t stats;

    int stopping; /* SIGTERM/SIGINT seen: no new connections, pending actions fail with "the server is shutting down" */
    int exit_code;
    uint64_t stop_deadline;
};

/* Creates a node from cfg (ownership of cfg passes to the server). Binds the listener. errbuf gets one line on failure. */
ag_server_t *ag_server_create(ag_config_t *cfg, char *errbuf, size_t errlen);
/* Runs the loop until ag_server_stop() finished the graceful shutdown. Returns the exit status. */
int ag_server_run(ag_server_t *s);
/* Begins the graceful shutdown (safe from the loop thread only; main wires signals through a self-pipe). */
void ag_server_stop(ag_server_t *s);
void ag_server_destroy(ag_server_t *s);
/* The port actually bound (when configured as 0). */
int ag_server_port(ag_server_t *s);

/* Registers a handler on the (single) host for paths starting with path; call before the server starts accepting.
 * Handlers registered first win; static files come last. Used by the modules' *_register functions. */
h2o_pathconf_t *ag_server_register_path(ag_server_t *s, const char *path);

#endif
