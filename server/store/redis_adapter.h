/*
 * ag_redis_t: one Redis connection on h2o's evloop, kept up for the life of the node.
 *
 * hiredis 0.14's async API knows no event loop and has no connect or command timeouts and no reconnect; this adapter
 * adds them. hiredis' socket is dup()ed and wrapped in an h2o_socket_t (h2o and hiredis each close their own fd);
 * h2o_socket_notify_write is one-shot and must not be armed twice, hence a flag.
 *
 * Life of a connection: connect (connect timeout) -> AUTH (when the URL has a password) -> SELECT (when it has a
 * database) -> up: on_state(data, 1). A lost connection (EOF, error, a command over the command timeout) fails every
 * command in flight with an error, calls on_state(data, 0) once, and reconnects with backoff (100 ms doubling to 5 s).
 *
 * Commands given while a connection attempt is under way wait for it (after AUTH/SELECT) and fail with it; while the
 * connection is down between attempts they fail at once ("redis unavailable"), so a node without Redis keeps serving
 * what it can locally. Pub/sub lives on its own connection (a subscribed connection accepts nothing
 * else): the channel set given with ag_redis_subscribe/unsubscribe is the wanted state, and the adapter makes Redis
 * match it, one (UN)SUBSCRIBE batch in flight at a time, again after every reconnect.
 *
 * Leaf module: returns errors, does not log. Single-threaded: everything runs on the loop given at creation.
 */
#ifndef AG_REDIS_ADAPTER_H
#define AG_REDIS_ADAPTER_H

#include <stddef.h>
#include <stdint.h>
#define H2O_USE_EPOLL 1
#include <h2o.h>
#include <hiredis/hiredis.h>

/* redis://[:password@]host[:port][/db] (also redis://user:password@…; the user is ignored, as Redis 5 has none). */
typedef struct st_ag_redis_url_t {
    char host[256];
    int port;           /* 6379 */
    char password[256]; /* "" = no AUTH */
    int db;             /* 0 = no SELECT */
} ag_redis_url_t;
/* Returns 0 or AG_EINVAL. */
int ag_redis_url_parse(const char *url, ag_redis_url_t *out);

typedef struct st_ag_redis_t ag_redis_t;
/* err: NULL, or the connection's failure ("redis unavailable", "redis timeout", "redis connection lost") or an error
 * reply's text. reply is borrowed for the call (NULL when err comes from the connection). */
typedef void (*ag_redis_reply_cb)(void *data, const char *err, redisReply *reply);
/* up = 1: connected and ready (also after every reconnect); up = 0: lost (once per loss). */
typedef void (*ag_redis_state_cb)(void *data, int up);
/* A message on a subscribed channel; both buffers borrowed for the call. */
typedef void (*ag_redis_message_cb)(void *data, const char *channel, size_t chlen, const char *payload, size_t len);

typedef struct st_ag_redis_options_t {
    h2o_evloop_t *loop;
    ag_redis_url_t url;
    uint64_t connect_timeout_ms;    /* 2000 */
    uint64_t command_timeout_ms;    /* 5000 */
    ag_redis_state_cb on_state;     /* may be NULL */
    ag_redis_message_cb on_message; /* non-NULL makes this a pub/sub connection */
    void *data;
} ag_redis_options_t;

/* Creates the connection and starts connecting. NULL on ENOMEM. */
ag_redis_t *ag_redis_create(const ag_redis_options_t *opts);
/* Fails what is in flight ("redis closed"), closes, frees. Not from inside one of this connection's callbacks. */
void ag_redis_destroy(ag_redis_t *r);
int ag_redis_is_up(const ag_redis_t *r);
/* The figures of this connection's commands (ag_redis_command), for metrics. */
const struct st_ag_store_stats_t *ag_redis_stats(const ag_redis_t *r);

/* Sends one command; cb (may be NULL) runs exactly once, possibly before this returns (when the connection is down).
 * The arguments are copied. */
void ag_redis_command(ag_redis_t *r, ag_redis_reply_cb cb, void *data, int argc, const char **argv, const size_t *argvlen);
/* The same with NUL-terminated arguments, NULL-terminated list. */
void ag_redis_commandv(ag_redis_t *r, ag_redis_reply_cb cb, void *data, ...) __attribute__((sentinel));

/* Pub/sub connections only: add or remove a channel from the wanted set (idempotent). */
int ag_redis_subscribe(ag_redis_t *r, const char *channel);
void ag_redis_unsubscribe(ag_redis_t *r, const char *channel);
/* The URL the connection was created with. */
const ag_redis_url_t *ag__redis_url(const ag_redis_t *r);
/* cb(data) once Redis confirmed every channel of the wanted set (at once when it has, or when the connection is down;
 * also when the connection is lost or destroyed meanwhile). */
void ag_redis_when_subscribed(ag_redis_t *r, void (*cb)(void *data), void *data);

/* For the unit tests, implemented by the Redis store (server/store/redis.c): its command connection (borrowed for the
 * store's life), NULL when the store is not the Redis store. */
struct st_ag_store_t;
ag_redis_t *ag__store_redis_cmd(struct st_ag_store_t *store);

#endif
