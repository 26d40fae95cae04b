/*
 * The SSE transport (PROTOCOL.md §5): downstream is a held response that never finishes (text/event-stream), upstream
 * is POST exactly as for polling (ag__eio_post). Every event has an id; the last events stay in a bounded ring, so a
 * reconnect with Last-Event-ID (header, or ?lastEventId=) within pingTimeout gets what it missed. A dropped stream
 * does not end the session; a newer stream replaces an older one; a stream is ended cleanly after recycleBytes.
 *
 * Replay memory is bounded per session (replayEvents, replayBytes) and per node (replayTotalBytes): over the node's
 * budget, the rings written to longest ago lose their oldest events first. A reconnect whose Last-Event-ID is older
 * than what its ring still holds cannot be served without a gap: it is answered as for a session that is gone
 * ("Session ID unknown", the session ends) and the client starts a new one; nothing is lost silently.
 */
#include "eio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http.h"

#define PAD_BYTES 2048

typedef struct st_sse_event_t {
    uint64_t id;
    size_t len;
    char data[];
} sse_event_t;

typedef struct st_sse_t {
    ag__eio_transport_t super;
    ag__eio_held_t *stream; /* the current response, or NULL between reconnects */
    int closed;
    uint64_t seq;
    sse_event_t **ring; /* the last events written, oldest first from ring_head */
    size_t ring_cap, ring_head, ring_len, ring_bytes;
    h2o_timeout_entry_t keepalive;
    /* the stream's URL carries the sid: an EventSource reconnect comes back to this session, so it may be recycled */
    int recyclable;
    h2o_linklist_t lru; /* in the node's sse_rings while the ring holds events */
} sse_t;

static void ring_drop_oldest(sse_t *x)
{
    sse_event_t *e = x->ring[x->ring_head];
    x->ring_bytes -= e->len;
    x->super.session->server->stats.sse_replay_bytes -= e->len;
    free(e);
    x->ring_head = (x->ring_head + 1) % x->ring_cap;
    if (--x->ring_len == 0 && h2o_linklist_is_linked(&x->lru))
        h2o_linklist_unlink(&x->lru);
}

/* An emptied ring gives its slots back too. */
static void ring_free_if_empty(sse_t *x)
{
    if (x->ring_len != 0)
        return;
    free(x->ring);
    x->ring = NULL;
    x->ring_cap = x->ring_head = 0;
}

/* The ring grows by doubling up to replayEvents, so an idle session keeps a handful of slots, not hundreds. */
static int ring_grow(sse_t *x, size_t max)
{
    size_t ncap = x->ring_cap == 0 ? 4 : x->ring_cap * 2;
    if (ncap > max)
        ncap = max;
    sse_event_t **n = malloc(ncap * sizeof(*n));
    if (n == NULL)
        return AG_ENOMEM;
    for (size_t i = 0; i < x->ring_len; i++)
        n[i] = x->ring[(x->ring_head + i) % x->ring_cap];
    free(x->ring);
    x->ring = n;
    x->ring_cap = ncap;
    x->ring_head = 0;
    return AG_OK;
}

static void ring_push(sse_t *x, uint64_t id, const char *data, size_t len)
{
    ag_server_t *server = x->super.session->server;
    const ag_config_t *cfg = server->config;
    size_t max = (size_t)(cfg->servers.websocket.server.sse.replayEvents > 0 ? cfg->servers.websocket.server.sse.replayEvents : 1);
    while (x->ring_len != 0 && (x->ring_len == max || x->ring_bytes + len > (size_t)cfg->servers.websocket.server.sse.replayBytes))
        ring_drop_oldest(x);
    if (x->ring_len == x->ring_cap && ring_grow(x, max) != AG_OK)
        return;
    sse_event_t *e = malloc(sizeof(*e) + len);
    if (e == NULL)
        return;
    e->id = id;
    e->len = len;
    memcpy(e->data, data, len);
    x->ring[(x->ring_head + x->ring_len) % x->ring_cap] = e;
    x->ring_len++;
    x->ring_bytes += len;
    server->stats.sse_replay_bytes += len;
    if (h2o_linklist_is_linked(&x->lru))
        h2o_linklist_unlink(&x->lru);
    h2o_linklist_t *rings = &ag__eio_node(server)->sse_rings;
    h2o_linklist_insert(rings, &x->lru);
    /* the node's budget: the rings written to longest ago shrink first (this one last) */
    size_t budget = (size_t)cfg->servers.websocket.server.sse.replayTotalBytes;
    while (server->stats.sse_replay_bytes > budget && !h2o_linklist_is_empty(rings)) {
        sse_t *old = H2O_STRUCT_FROM_MEMBER(sse_t, lru, rings->next);
        ring_drop_oldest(old);
        ring_free_if_empty(old);
    }
}

static void arm_keepalive(sse_t *x)
{
    ag__eio_session_t *s = x->super.session;
    if (h2o_timeout_is_linked(&x->keepalive))
        h2o_timeout_unlink(&x->keepalive);
    if (x->stream != NULL)
        h2o_timeout_link(s->server->loop, &ag__eio_node(s->server)->keepalive, &x->keepalive);
}

static void write_stream(sse_t *x, const char *data, size_t len)
{
    ag__eio_held_t *h = x->stream;
    if (h == NULL)
        return;
    const ag_config_t *cfg = x->super.session->server->config;
    /* what the response has not written yet is the consumer's backlog */
    if (ag__eio_note_backlog(x->super.session, h->acc.len + len, 0))
        return;
    ag__eio_held_write(h, data, len);
    arm_keepalive(x);
    if (x->recyclable && h->written + h->acc.len >= (size_t)cfg->servers.websocket.server.sse.recycleBytes) {
        /* recycle: end cleanly; EventSource reconnects with Last-Event-ID */
        x->stream = NULL;
        ag__eio_held_finish(h);
        arm_keepalive(x);
    }
}

/* Writes one event carrying payload, with the next id, into ev, and keeps it for replay. */
static void emit(sse_t *x, ag_eio_buf_t *ev, const char *payload, size_t len)
{
    uint64_t id = ++x->seq;
    if (ag_eio_sse_event_append(ev, id, payload, len) == AG_OK) {
        ring_push(x, id, ev->base, ev->len);
        write_stream(x, ev->base, ev->len);
    }
}

static int sse_writable(ag__eio_transport_t *t)
{
    sse_t *x = (sse_t *)t;
    return !x->closed && x->stream != NULL;
}

static void sse_send(ag__eio_transport_t *t, const ag__eio_out_t *pkts, size_t n)
{
    sse_t *x = (sse_t *)t;
    ag__eio_node_t *node = ag__eio_node(x->super.session->server);
    ag_eio_buf_t own[2] = {{NULL, 0, 0}, {NULL, 0, 0}}, *b, *ev;
    int shared;
    ag__eio_scratch_get(node, own, &b, &ev, &shared);
    for (size_t i = 0; i < n; i++) {
        const char *d = pkts[i].frame != NULL ? pkts[i].frame->data : pkts[i].text;
        size_t len = pkts[i].frame != NULL ? pkts[i].frame->len : d != NULL ? strlen(d) : 0;
        ag_eio_payload_append(b, pkts[i].type, d, len, pkts[i].frame != NULL && pkts[i].frame->binary);
    }
    emit(x, ev, b->base, b->len);
    ag__eio_scratch_put(node, b, ev, shared);
}

static void end_stream(sse_t *x)
{
    ag__eio_held_t *h = x->stream;
    x->stream = NULL;
    if (h != NULL)
        ag__eio_held_finish(h);
    if (h2o_timeout_is_linked(&x->keepalive))
        h2o_timeout_unlink(&x->keepalive);
}

static void sse_close(ag__eio_transport_t *t)
{
    sse_t *x = (sse_t *)t;
    x->closed = 1;
    end_stream(x);
}

static const ag__eio_transport_ops_t sse_ops = {AG__EIO_SSE, "sse", sse_writable, sse_send, sse_close};

static void on_keepalive(h2o_timeout_entry_t *entry)
{
    sse_t *x = H2O_STRUCT_FROM_MEMBER(sse_t, keepalive, entry);
    write_stream(x, ":\n\n", 3);
}

static ag__eio_transport_t *sse_create(ag__eio_session_t *s)
{
    sse_t *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return NULL;
    x->super.ops = &sse_ops;
    x->super.session = s;
    x->keepalive.cb = on_keepalive;
    return &x->super;
}

void ag__eio_sse_destroy(ag__eio_transport_t *t)
{
    sse_t *x = (sse_t *)t;
    if (h2o_timeout_is_linked(&x->keepalive))
        h2o_timeout_unlink(&x->keepalive);
    while (x->ring_len != 0)
        ring_drop_oldest(x);
    ring_free_if_empty(x);
    free(x);
}

static void stream_proceed(ag__eio_held_t *h)
{
    sse_t *x = h->owner;
    if (x->stream == h)
        ag__eio_on_writable(x->super.session);
}

static void stream_dispose(ag__eio_held_t *h, int premature)
{
    (void)premature;
    sse_t *x = h->owner;
    ag__eio_session_t *s = x->super.session;
    if (x->stream == h) {
        x->stream = NULL;
        if (h2o_timeout_is_linked(&x->keepalive))
            h2o_timeout_unlink(&x->keepalive);
        /* a dropped probe ends the probe; a dropped current stream waits for the reconnect (the ping timeout runs) */
        if (&x->super == s->probe)
            ag__eio_transport_gone(s, &x->super, &AG_DISCONNECT_PEER_CLOSED);
    }
    ag__eio_session_release(s);
}

/* Starts a response on req for x: headers, padding when asked, the retry line; flushed at once. */
static void attach(sse_t *x, h2o_req_t *req)
{
    ag__eio_session_t *s = x->super.session;
    const ag_config_t *cfg = s->server->config;
    if (x->stream != NULL)
        end_stream(x); /* a newer stream replaces the older one */
    ag__eio_session_addref(s);
    x->recyclable = ag_http_query_param(req, "sid") != NULL;
    ag__eio_held_t *h = ag__eio_held_create(req, x, stream_proceed, stream_dispose);
    ag__eio_add_common_headers(req);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/event-stream; charset=utf-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache, no-store, no-transform, must-revalidate, max-age=0"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-accel-buffering"), 0, NULL, H2O_STRLIT("no"));
    ag__eio_held_start_stream(h);
    x->stream = h;
    ag_eio_buf_t pre = {NULL, 0, 0};
    const char *pad = ag_http_query_param(req, "pad");
    if (pad != NULL && strcmp(pad, "1") == 0) {
        ag_eio_buf_reserve(&pre, PAD_BYTES + 2);
        pre.base[pre.len++] = ':';
        memset(pre.base + pre.len, ' ', PAD_BYTES);
        pre.len += PAD_BYTES;
        pre.base[pre.len++] = '\n';
    }
    /* reconnect well inside pingTimeout, so a replay is still possible */
    int retry = cfg->servers.websocket.server.pingTimeout / 2;
    if (retry > 2000)
        retry = 2000;
    char line[40];
    int n = snprintf(line, sizeof(line), "retry: %d\n\n", retry);
    ag_eio_buf_append(&pre, line, (size_t)n);
    write_stream(x, pre.base, pre.len);
    ag_eio_buf_dispose(&pre);
}

static int last_event_id(h2o_req_t *req, uint64_t *out)
{
    size_t len;
    const char *v = ag_http_header(req, "last-event-id", &len);
    char buf[32];
    if (v != NULL) {
        if (len == 0 || len >= sizeof(buf))
            return 0;
        memcpy(buf, v, len);
        buf[len] = '\0';
        v = buf;
    } else if ((v = ag_http_query_param(req, "lastEventId")) == NULL) {
        return 0;
    }
    char *end;
    unsigned long long id = strtoull(v, &end, 10);
    if (end == v || *end != '\0')
        return 0;
    *out = id;
    return 1;
}

/* Whether every event after `last` is still in the ring. */
static int replay_possible(const sse_t *x, uint64_t last)
{
    if (last >= x->seq)
        return 1;
    uint64_t first = x->ring_len != 0 ? x->ring[x->ring_head]->id : x->seq + 1;
    return first <= last + 1;
}

void ag__eio_sse_get(ag__eio_session_t *s, h2o_req_t *req)
{
    int handshake = s->transport == NULL && s->polling == NULL && s->sse == NULL;
    if (handshake) {
        if ((s->sse = sse_create(s)) == NULL) {
            ag__eio_session_close(s, &AG_DISCONNECT_SERVER_ERROR, 0);
            ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST);
            return;
        }
        sse_t *x = (sse_t *)s->sse;
        attach(x, req);
        char body[512];
        body[0] = '0';
        size_t n = ag__eio_open_json(s, AG__EIO_SSE, 0, body + 1, sizeof(body) - 1);
        ag_eio_buf_t ev = {NULL, 0, 0};
        emit(x, &ev, body, n + 1);
        ag_eio_buf_dispose(&ev);
        ag__eio_session_start(s, s->sse);
        return;
    }
    if (s->transport != NULL && s->transport == s->sse) {
        sse_t *x = (sse_t *)s->sse;
        uint64_t last;
        int resume = last_event_id(req, &last);
        if (resume && !replay_possible(x, last)) {
            s->server->stats.sse_resumes_refused++;
            ag_log_limited(AG_LOG_INFO, "eio", s->sid, "Last-Event-ID %llu is older than the replay ring; ending the session",
                           (unsigned long long)last);
            ag__eio_respond_error(req, AG_EIO_ERR_UNKNOWN_SID);
            ag__eio_session_close(s, &AG_DISCONNECT_TRANSPORT_ERROR, 0); /* what it missed is gone */
            return;
        }
        attach(x, req);
        if (resume) {
            s->server->stats.sse_resumes++;
            for (size_t i = 0; i < x->ring_len && x->stream != NULL; i++) {
                sse_event_t *e = x->ring[(x->ring_head + i) % x->ring_cap];
                if (e->id > last) {
                    write_stream(x, e->data, e->len);
                    s->server->stats.sse_replayed++;
                }
            }
        }
        ag__eio_on_writable(s);
        return;
    }
    if (!s->upgraded && s->probe == NULL && s->transport != NULL && s->transport->ops->kind == AG__EIO_POLLING) {
        if (s->sse == NULL && (s->sse = sse_create(s)) == NULL) {
            ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST);
            return;
        }
        ((sse_t *)s->sse)->closed = 0;
        attach((sse_t *)s->sse, req);
        ag__eio_probe_start(s, s->sse);
        return;
    }
    ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST);
}
