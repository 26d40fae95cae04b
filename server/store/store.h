/*
 * ag_store_t: rooms, membership, cache and pub/sub behind one interface.
 *
 * Three implementations: memory (server/store/memory.c, the embedded default), shared (server/store/shared.c, the
 * memory store of a process with several workers) and redis (server/store/redis.c, the cluster). All pass the same
 * suite (spec/unit/server/store/test_store.c). Every operation is asynchronous: the callback runs
 * exactly once, possibly *before the call returns* (the memory store answers at once), so callers must not hold
 * state that a synchronous answer would invalidate.
 *
 * Results are jansson values borrowed for the duration of the callback (take a json_incref to keep one).
 * err is NULL on success, else a short message; for room operations the message is the protocol's exact text
 * ("room exists", "room does not exist") so the session layer can forward it.
 */
#ifndef AG_STORE_H
#define AG_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

typedef struct st_ag_store_t ag_store_t;
typedef struct st_ag_store_node_t ag_store_node_t;
typedef struct st_ag_store_rconn_write_t ag_store_rconn_write_t;
typedef void (*ag_store_cb)(void *data, const char *err, json_t *result);
/* A message published on a channel this node subscribed to. payload borrowed for the call. */
typedef void (*ag_store_message_cb)(void *data, const char *channel, const char *payload, size_t len);

typedef struct st_ag_store_ops_t {
    const char *name; /* "memory", "redis" */
    void (*destroy)(ag_store_t *store);

    /* rooms: result true | err "room exists" | err AG_STORE_ERR_TOO_MANY_ROOMS when the store holds max_rooms rooms */
    void (*room_add)(ag_store_t *store, const char *room, ag_store_cb cb, void *data);
    /* result true | err "room does not exist"; members are removed too */
    void (*room_del)(ag_store_t *store, const char *room, ag_store_cb cb, void *data);
    /* result true/false */
    void (*room_exists)(ag_store_t *store, const char *room, ag_store_cb cb, void *data);
    /* result: array of room names */
    void (*room_list)(ag_store_t *store, ag_store_cb cb, void *data);
    /* details: an object kept verbatim ({id, joinedAt, node}); result true | err "room does not exist" */
    void (*member_add)(ag_store_t *store, const char *room, const char *conn_id, const json_t *details, ag_store_cb cb, void *data);
    /* result true (removed) / false (was not a member) */
    void (*member_del)(ag_store_t *store, const char *room, const char *conn_id, ag_store_cb cb, void *data);
    /* Optional (NULL: nothing to do): conn_id's membership of room lives on under another node now (a connection handed
     * over, server/resume.c): this node stops counting it as its own (what it writes again after Redis lost its data,
     * what it removes when it leaves) without touching the membership. */
    void (*member_forget)(ag_store_t *store, const char *room, const char *conn_id);
    /* result: object conn_id -> details | err "room does not exist" */
    void (*members)(ag_store_t *store, const char *room, ag_store_cb cb, void *data);

    /* cache. expire_ms: absolute ms epoch, 0 = never. result true */
    void (*cache_save)(ag_store_t *store, const char *key, const json_t *value, uint64_t expire_ms, ag_store_cb cb, void *data);
    /* result {key, value, expireTimestamp, createdAt, readAt} or null when missing/expired; updates readAt */
    void (*cache_load)(ag_store_t *store, const char *key, ag_store_cb cb, void *data);
    /* result true (deleted) / false */
    void (*cache_del)(ag_store_t *store, const char *key, ag_store_cb cb, void *data);
    /* result: integer, live keys */
    void (*cache_size)(ag_store_t *store, ag_store_cb cb, void *data);

    /* pub/sub: publish reaches every node subscribed to channel, this one included. cb may be NULL. */
    void (*publish)(ag_store_t *store, const char *channel, const char *payload, size_t len, ag_store_cb cb, void *data);
    /* Node-level subscription (refcounting is the caller's job: one per channel per node). */
    void (*subscribe)(ag_store_t *store, const char *channel);
    void (*unsubscribe)(ag_store_t *store, const char *channel);
    /* Optional (NULL: subscriptions take effect at once). cb(data, NULL, true) once every subscribe() made so far is
     * in effect, so that what is published from then on reaches this node (a join is answered after that). */
    void (*subscribed)(ag_store_t *store, ag_store_cb cb, void *data);

    /*
     * The cluster's node registry, for server/cluster.c: which node owns a session (tag -> address). A store that
     * is not clustered (memory) has no registry: node_register returns AG_ENOENT, node_lookup answers
     * AG_STORE_NOT_CLUSTERED, node_leave does nothing, node_list answers AG_STORE_NOT_CLUSTERED.
     */
    /* Publishes this node (strings copied) and keeps it published with the store's heartbeat (node TTL) until
     * node_leave or the process dies. Call again when the address is known or changes; with address "" nothing is
     * published yet. 0, or AG_ENOENT (not clustered). */
    int (*node_register)(ag_store_t *store, const ag_store_node_t *self);
    /* result {"address": "host:port", "token": "..."} of the live node registered as tag, or null when no live node is;
     * err when the registry cannot be read (e.g. "redis unavailable"). Only what nodes registered is ever returned. */
    void (*node_lookup)(ag_store_t *store, const char *tag, ag_store_cb cb, void *data);
    /* A clean exit: this node's registration and its room members are removed at once (blocking briefly, as the loop no
     * longer runs). */
    void (*node_leave)(ag_store_t *store);
    /* result: array of {"id": node id, "address": "host:port" or ""} for every node whose heartbeat is alive (this one
     * included once it beat), in no order; err AG_STORE_NOT_CLUSTERED without a registry, or why the registry cannot be
     * read ("redis unavailable"). The list is as long as the cluster: only nodes write it. */
    void (*node_list)(ag_store_t *store, ag_store_cb cb, void *data);
    /*
     * Room history, for resume (README "Resume"). Optional: a store without it keeps none, and connections on it are
     * not resumable. A room's history lives as long as the room (room_del drops it) and holds its last
     * history_lines lines, history_bytes bytes and history_ms milliseconds (the bounds below), whichever is smallest.
     * Offsets are 1, 2, 3, ... per room; epoch names one life of a room's history (a new one when the room is made
     * again, or the store lost its data): an offset means something only together with its epoch.
     */
    /* Appends payload (copied) to room's history under the next offset, then publishes "#<offset>:" followed by
     * payload on channel, as publish does (one step: no other line can come between). A room that does not exist
     * keeps no history: payload is published as it is. result {"offset": n, "epoch": "e"}, or null without history. */
    void (*history_publish)(ag_store_t *store, const char *room, const char *channel, const char *payload, size_t len,
                            ag_store_cb cb, void *data);
    /* result {"epoch": "e", "last": n, "items": [[offset, "payload"], ...]}: the lines after offset `after`, in order
     * (none when after is AG_STORE_HISTORY_TAIL: only where the history stands); err AG_STORE_HISTORY_GONE when a
     * line after `after` is no longer kept, or the room has no history. */
    void (*history_since)(ag_store_t *store, const char *room, uint64_t after, ag_store_cb cb, void *data);
    /* Optional (NULL: the store's history cannot be saved; the Redis store keeps its own). For the resume state file of
     * a graceful restart (README "Resume"): history_dump answers {"<room>": history, ...} for every room that keeps
     * one, each as ag_store_hist_dump writes it (store/history.h); history_load makes room (when missing) with that
     * history (borrowed) before any line is published there: result true | err "room exists" when the room keeps one
     * already, or why the value was refused (nothing changed). */
    void (*history_dump)(ag_store_t *store, ag_store_cb cb, void *data);
    void (*history_load)(ag_store_t *store, const char *room, const json_t *hist, ag_store_cb cb, void *data);
    /*
     * Resumable connections kept in the store (README "Resume", "A node that dies"), so that another node can take one
     * over when the node holding it died. Optional (NULL: kept by its node only). One record per connection, owned by
     * one node, expiring ttl_ms after its last write or touch.
     */
    /* Applies w to the record of conn id (strings borrowed for the call); nothing happens when another node owns it
     * (it took the connection over) or, without w->token_hash, when there is no record. Fire and forget. */
    void (*rconn_put)(ag_store_t *store, const char *id, const ag_store_rconn_write_t *w);
    /* Keeps the record of conn id for ttl_ms more. Fire and forget. */
    void (*rconn_touch)(ag_store_t *store, const char *id, uint64_t ttl_ms);
    /* Removes the record of conn id when this node owns it (the connection ended). Fire and forget. */
    void (*rconn_del)(ag_store_t *store, const char *id);
    /* Makes this node the owner of conn id when token_hash matches and its owner is this node or a node that is dead
     * (its heartbeat expired). result: the record as it was,
     * {"node", "tag", "seq", "floor", "fingerprint", "frames": [[seq, "messageId" or null, "frame"], ...] in seq order,
     * "rooms": {room: [epoch (hex), since]}, "carrier": the last carrier string written, when one was}; null when there is no such
     * record or the token does not match; err AG_STORE_RCONN_ALIVE (with result {"tag", "routed": its route is registered}) when
     * its owner's heartbeat is alive. */
    void (*rconn_claim)(ag_store_t *store, const char *id, const char *token_hash, ag_store_cb cb, void *data);
    /* Optional (NULL: always): 1 while the store can be used (Redis connected), for /readyz and metrics. */
    int (*is_up)(ag_store_t *store);
    /* Optional (NULL: no remote commands): the figures of the store's commands so far, for metrics. */
    const struct st_ag_store_stats_t *(*stats)(ag_store_t *store);
} ag_store_ops_t;

/* Upper bounds (seconds) of the command latency histogram's buckets; +Inf follows. */
#define AG_STORE_LATENCY_BOUNDS                                                                                                    \
    {                                                                                                                              \
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1                                                                          \
    }
#define AG_STORE_LATENCY_BUCKETS 8

/* Commands of a remote store (Redis): each answered one counted in the bucket of its round trip. */
typedef struct st_ag_store_stats_t {
    uint64_t commands;                          /* sent */
    uint64_t errors;                            /* answered with an error, timed out or lost with the connection */
    uint64_t buckets[AG_STORE_LATENCY_BUCKETS]; /* answered, by round trip (not cumulative) */
    uint64_t answered;                          /* answered: the histogram's count (+Inf) */
    double seconds;                             /* their round trips' sum */
} ag_store_stats_t;

#define AG_STORE_NOT_CLUSTERED "not clustered"
/* history_since: what was asked for is no longer kept (or never was) */
#define AG_STORE_HISTORY_GONE "history gone"
#define AG_STORE_HISTORY_TAIL UINT64_MAX
/* The longest `who` a record keeps (a connection whose identity is longer is taken over with its carrier's). */
#define AG_STORE_RCONN_WHO_MAX 16384
/* rconn_claim: the record's owner is alive */
#define AG_STORE_RCONN_ALIVE "owner alive"

/* One write to a resumable connection's record (rconn_put): the fields given are set, the others kept. */
/* The longest carrier string a record keeps (ag_store_rconn_write_t.carrier). */
#define AG_STORE_RCONN_CARRIER_MAX 128

struct st_ag_store_rconn_write_t {
    uint64_t ttl_ms;
    const char *token_hash;  /* non-NULL: (re)creates the record, owned by this node */
    const char *fingerprint; /* with token_hash */
    const char *who;         /* with token_hash: who the connection is, JSON {"user", "claims", "data"}, or NULL */
    /* frame != NULL: numbered frame seq (its messageId or NULL) was sent; frames up to floor are no longer kept */
    uint64_t seq, floor;
    const char *frame;
    size_t frame_len;
    const char *message_id;
    /* non-NULL: what the connection's transport keeps of its own (a short string, conn.h carrier_state_brief), as it
     * stood when that answer was sent */
    const char *carrier;
    /* room != NULL: the connection is in room since the room's history stood at (epoch, since); epoch NULL: it left */
    const char *room;
    const char *epoch;
    uint64_t since;
};

/* This node as the registry publishes it. */
struct st_ag_store_node_t {
    const char *tag;     /* the prefix of the sids it owns */
    const char *address; /* "host:port" other nodes forward to; "" while unknown */
    const char *token;   /* secret the forwarding nodes present to it (the owner checks it); read only from the registry */
};

/* room_add's answer when the store is full (the session layer adds the bound). */
#define AG_STORE_ERR_TOO_MANY_ROOMS "too many rooms"

struct st_ag_store_t {
    const ag_store_ops_t *ops;
    size_t max_rooms; /* room_add refuses a new room when the store holds this many (0: no bound); set by its user */
    /* the bounds of one room's history (history_publish), set by its user; history_lines 0: no history is kept */
    size_t history_lines, history_bytes;
    uint64_t history_ms;
    /* Messages on the session layer's channels (rooms_history.c). */
    ag_store_message_cb on_message;
    void *on_message_data;
    /* Optional: the subscriptions were lost and are in effect again (Redis reconnected): what was published meanwhile
     * never came (called with on_message_data). */
    void (*on_resubscribed)(void *data);
    /* The node layer's events (server/cluster.c): messages on reserved channels ("_" + name), "_up" (empty payload)
     * each time the store is connected again, "_dead" (payload: the node id) when this node found a node dead. */
    ag_store_message_cb on_node_event;
    void *on_node_event_data;
};

struct st_h2o_evloop_t;
/* Published messages reach on_message on loop's next pass (the order the Redis store gives); with loop NULL (unit tests
 * without a loop) they are delivered before publish returns. */
ag_store_t *ag_store_memory_create(struct st_h2o_evloop_t *loop);

/* The memory store of a process running several workers (server/store/shared.c): one set of rooms, members, cache and
 * node registry under a lock, one handle per worker. The creator holds one reference, each handle another; the data
 * go with the last. Published messages reach each subscribed worker's on_message on its own loop, on a later pass, in
 * one order for every worker; a room's history (history_publish) is kept in that same order. attach: the worker's handle on its
 * loop (called before that loop runs; at most AG_CONFIG_WORKERS_MAX), NULL when out of memory or slots; its destroy releases the
 * handle's reference. */
typedef struct st_ag_store_shared_t ag_store_shared_t;
ag_store_shared_t *ag_store_shared_create(void);
void ag_store_shared_release(ag_store_shared_t *sh);
ag_store_t *ag_store_shared_attach(ag_store_shared_t *sh, struct st_h2o_evloop_t *loop, const char *node_id);

/* The Redis store (cluster mode): see server/store/redis.c for the key layout. It connects in the background and keeps
 * reconnecting; operations fail with "redis unavailable" while Redis is away. */
typedef struct st_ag_store_redis_options_t {
    const char *url;             /* redis://[:password@]host[:port][/db] */
    const char *prefix;          /* key and channel prefix, "actiongate:" */
    const char *node_id;         /* this node: member details without a "node" key are indexed under it */
    uint64_t connect_timeout_ms; /* 2000 */
    uint64_t command_timeout_ms; /* 5000 */
    uint64_t node_ttl_ms;        /* 5000: heartbeat key lifetime; the heartbeat runs every third of it */
    /* Non-NULL: share rooms, members and chat with an actionhero cluster on the same Redis (README "In front of an
     * actionhero app"). Rooms and members live under actionhero's keys, a chat frame published on "room:<name>" goes
     * out as actionhero's chat envelope on this channel (and the app's come in as chat frames), and the app's cluster
     * RPC reaches the node layer: every `do` carrying actionhero_token arrives as on_node_event "_rpc" (the message's
     * JSON), and publishing {"messageId", "response"} on "_rpc" sends the matching doResponse. The node registry, the
     * cache and the other channels stay under prefix. */
    const char *actionhero_channel;
    const char *actionhero_token; /* the app's general.serverToken: messages without it are ignored */
} ag_store_redis_options_t;
/* NULL on a bad URL (errbuf gets one line) or ENOMEM. */
ag_store_t *ag_store_redis_create(struct st_h2o_evloop_t *loop, const ag_store_redis_options_t *opts, char *errbuf, size_t errlen);

#endif
