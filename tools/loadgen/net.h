/*
 * Client connections of one worker process (net.c: bytes; worker.c: what the messages mean). A client owns its two
 * sockets and their buffers; buffers stay allocated until net_client_close at the end of the run, so a callback that
 * fails a client never frees memory that a caller up the stack is still reading.
 */
#ifndef LG_NET_H
#define LG_NET_H

#include <stddef.h>
#include <stdint.h>
#include "engine.h"

enum { LG_S_CLOSED, LG_S_CONNECTING, LG_S_HTTP, LG_S_WS, LG_S_STREAM };
enum { LG_C_IDLE, LG_C_CONNECTING, LG_C_WELCOME, LG_C_JOIN, LG_C_READY, LG_C_DEAD };

typedef struct st_lg_client_t lg_client_t;

typedef struct st_lg_sock_t {
    int fd;
    uint8_t state, want_out, dirty, busy, have_head;
    lg_client_t *cl;
    struct st_lg_sock_t *next_dirty;
    uint8_t *in, *out, *body;
    size_t in_len, in_cap, out_len, out_off, out_cap, body_len, body_cap;
    size_t resp_bytes; /* bytes read since the last request started */
    lg_http_head_t head;
    lg_chunked_t ch;
    lg_sse_t sse;
} lg_sock_t;

typedef struct {
    uint32_t seq;
    uint8_t busy, measured;
    uint64_t ns;
} lg_slot_t;

struct st_lg_client_t {
    uint32_t idx;
    uint8_t transport, state, is_pub, post_inflight, target; /* target: index into lg_opts_t.targets */
    lg_sock_t main, post;
    char sid[64];
    char last_modified[64], etag[96];
    uint8_t *post_pending;
    size_t post_pending_len, post_pending_cap;
    /* action mode */
    uint32_t next_seq, in_flight, last_reply;
    lg_slot_t slots[LG_MAX_WINDOW];
    /* fan-out: publisher schedule, member receipts (bitmap over publishers x count) */
    uint64_t next_pub;
    uint8_t *seen;
    uint64_t got;
    int64_t last_seq[LG_MAX_PUBLISHERS];
};

typedef struct {
    const lg_opts_t *o;
    int ep;
    int open_fds;
    lg_sock_t *dirty;
    uint8_t *scratch;
    size_t scratch_cap;
    uint64_t errors;
    uint32_t src_next[LG_MAX_TARGETS]; /* per target, the next source address to bind, so each target sees all of them */
} lg_net_t;

extern lg_net_t lg_net;

int net_client_start(lg_client_t *c);
void net_client_close(lg_client_t *c);
/* Closes the client's sockets; buffers stay until net_client_close. */
void net_client_shut(lg_client_t *c);
int net_connect(lg_sock_t *s);
void net_on_event(lg_sock_t *s, uint32_t events);
void net_flush_dirty(void);
void net_write(lg_sock_t *s, const void *data, size_t n);
void net_sock_failed(lg_sock_t *s, const char *why);
void net_sock_free(lg_sock_t *s);
/* One session-level message (JSON text, or a raw payload for peers and nchan publishes). */
void net_send_message(lg_client_t *c, const char *data, size_t n);

/* worker.c */
void worker_on_upgraded(lg_client_t *c);
void worker_on_stream(lg_client_t *c);
void worker_on_open(lg_client_t *c);
void worker_on_message(lg_client_t *c, const char *data, size_t n);
/* A long-poll GET was answered with a body (counted while measuring: deliveries per request). */
void worker_on_poll_answer(void);
void worker_on_published(lg_client_t *c);
void worker_client_failed(lg_client_t *c, const char *why);

#endif
