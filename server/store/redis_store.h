/*
 * Internals shared by the Redis store's files: server/store/redis.c (the store operations) and
 * server/store/redis_nodes.c (the node registry: heartbeat, routes, dead-node reaper, resync, clean leave) and
 * server/store/redis_history.c (the rooms' history, for resume). Not for
 * other modules.
 */
#ifndef AG_REDIS_STORE_H
#define AG_REDIS_STORE_H

#include <jansson.h>
#include "common.h"
#include "redis_adapter.h"
#include "store.h"

typedef struct st_ag__redis_store_t ag__redis_store_t;
struct st_ag__redis_store_t {
    ag_store_t super;
    h2o_evloop_t *loop;
    ag_redis_t *cmd, *sub;
    char *prefix;
    char *rooms_key;      /* the SET of room names: prefix "rooms", or actionhero's */
    char *members_prefix; /* + room = the HASH of its members: prefix "members:", or actionhero's */
    char *ah_channel;     /* NULL, or actionhero's pub/sub channel (compat mode) */
    char *ah_token;
    char node_id[64];
    /* the registration (node_register): sid tag, "host:port", token; the heartbeat publishes it once address is set */
    char tag[32];
    char address[300];
    char token[64];
    uint64_t node_ttl_ms;
    h2o_timeout_t beat;
    h2o_timeout_entry_t beat_entry;
    ag_map_t local_members; /* "<conn> <room>" -> strdup'ed details JSON */
    ag_map_t local_rooms;   /* room -> (void*)1 */
    ag_map_t subs;          /* channel (unprefixed) -> (void*)1 */
    int down_logged;
    int sub_lost; /* the pub/sub connection was lost and is not subscribed again yet */
    /* the epoch a room's history gets if a script finds it missing (redis_history.c): a random start drawn once, then
     * the next value at each offer, so no two offers repeat without a syscall per publish */
    uint64_t epoch_next;
};

/* prefix + a + b (b may be NULL), heap-allocated (NULL on ENOMEM). */
char *ag__redis_pkey(ag__redis_store_t *s, const char *a, const char *b);
/* The rooms SET and a room's members HASH (actionhero's in compat mode), heap-allocated (NULL on ENOMEM). */
char *ag__redis_rooms_key(ag__redis_store_t *s);
char *ag__redis_members_key(ag__redis_store_t *s, const char *room);
/* EVAL script with nkeys keys and nargs args (all NUL-terminated) on the command connection. */
void ag__redis_eval(ag__redis_store_t *s, ag_redis_reply_cb cb, void *data, const char *script, int nkeys, const char **keys,
                    int nargs, const char **args);
/* A script run with EVALSHA (its digest computed once); NOSCRIPT makes the command go again once as EVAL. */
typedef struct st_ag__redis_script_t {
    const char *src;
    char sha[41];
} ag__redis_script_t;
/* EVALSHA script with nkeys keys, then the args, all nall of them in `all` (lens[i] bytes each, so a payload may hold
 * any byte; at most 13); cb as ag_redis_command's. */
void ag__redis_evalsha(ag__redis_store_t *s, ag__redis_script_t *script, ag_redis_reply_cb cb, void *data, int nkeys, int nall,
                       const char **all, const size_t *lens);
/* SCRIPT LOAD script on the command connection (sent first when the connection comes up, so that no EVALSHA of it
 * meets NOSCRIPT and has to be sent again behind later commands). */
void ag__redis_script_load(ag__redis_store_t *s, ag__redis_script_t *script);
/* The scripts of redis_history.c and redis_conn.c, loaded when the command connection is up. */
void ag__redis_history_up(ag__redis_store_t *s);
void ag__redis_conn_up(ag__redis_store_t *s);
/* An integer reply's value, or -1. */
int ag__redis_reply_int(const redisReply *r);

/* redis_nodes.c: writes the heartbeat (and the local rooms and members again when it had expired), then reaps. */
void ag__redis_store_beat(ag__redis_store_t *s);
/* redis_nodes.c: the registry's store operations (store.h). */
int ag__redis_node_register(ag_store_t *store, const ag_store_node_t *self);
void ag__redis_node_lookup(ag_store_t *store, const char *tag, ag_store_cb cb, void *data);
void ag__redis_node_leave(ag_store_t *store);
void ag__redis_node_list(ag_store_t *store, ag_store_cb cb, void *data);
/* redis_history.c: the room history's store operations (store.h). */
void ag__redis_history_publish(ag_store_t *store, const char *room, const char *channel, const char *payload, size_t len,
                               ag_store_cb cb, void *data);
void ag__redis_history_since(ag_store_t *store, const char *room, uint64_t after, ag_store_cb cb, void *data);
/* redis_conn.c: resumable connections' records (store.h rconn_*). */
void ag__redis_rconn_put(ag_store_t *store, const char *id, const ag_store_rconn_write_t *w);
void ag__redis_rconn_touch(ag_store_t *store, const char *id, uint64_t ttl_ms);
void ag__redis_rconn_del(ag_store_t *store, const char *id);
void ag__redis_rconn_claim(ag_store_t *store, const char *id, const char *token_hash, ag_store_cb cb, void *data);
/* The node layer's event hook (store.h on_node_event), when set. */
void ag__redis_node_event(ag__redis_store_t *s, const char *name, const char *payload, size_t len);

#endif
