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
 *
 * Over HTTP/1.x the stream leaves h2o's request once its head is written (sse_raw_t below); over HTTP/2 it stays a
 * held response (ag__eio_held_t).
 */
#include "eio.h"

#include <errno.h>
#include <h2o/http1.h>
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

typedef struct st_sse_t sse_t;

/*
 * Over HTTP/1.x a stream does not stay on h2o's request: h2o_http1_upgrade writes the response head and hands the
 * socket over, and h2o frees the request, its pool and its connection (an idle stream then costs its socket, not
 * ~11 KB of request). The body is close-delimited (no length, no chunks) and written straight on the socket.
 *
 * A raw stream owns itself: h2o calls back once the head is written, whatever became of the session meanwhile, and
 * a stream that was let go still writes what it holds (a close packet) before it closes. It holds a reference on its
 * session until it is freed, and touches the session only while its transport owns it.
 */
typedef struct st_sse_raw_t {
    sse_t *owner; /* the transport using it; NULL once let go */
    ag__eio_session_t *session;
    h2o_socket_t *sock;    /* NULL while h2o writes the head */
    ag_eio_buf_t acc, out; /* what waits for the socket; what the socket is writing */
    size_t written;
    int final;                  /* close once everything is written */
    h2o_timeout_entry_t linger; /* a stream let go with bytes unwritten is closed after keepaliveMs at the latest */
    ag__eio_batched_t batch;    /* in the node's batch while its events wait for this iteration's submit (eio_batch.c) */
} sse_raw_t;

struct st_sse_t {
    ag__eio_transport_t super;
    ag__eio_held_t *stream; /* the current response over HTTP/2, or NULL */
    sse_raw_t *raw;         /* the current stream over HTTP/1.x, or NULL */
    int closed;
    uint64_t seq;
    sse_event_t **ring; /* the last events written, oldest first from ring_head */
    size_t ring_cap, ring_head, ring_len, ring_bytes;
    h2o_timeout_entry_t keepalive;
    /* the stream's URL carries the sid: an EventSource reconnect comes back to this session, so it may be recycled */
    int recyclable;
    h2o_linklist_t lru; /* in the node's sse_rings while the ring holds events */
};

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

/* --- HTTP/1.x streams on their own socket --- */

static void raw_on_written(h2o_socket_t *sock, const char *err);
static void stream_dropped(sse_t *x);

static void raw_free(sse_raw_t *r)
{
    if (h2o_timeout_is_linked(&r->linger))
        h2o_timeout_unlink(&r->linger);
    ag__eio_batch_remove(&r->batch);
    if (r->sock != NULL)
        h2o_socket_close(r->sock);
    ag_eio_buf_dispose(&r->acc);
    ag_eio_buf_dispose(&r->out);
    ag__eio_session_t *s = r->session;
    free(r);
    ag__eio_session_release(s);
}

/* The client went away (EOF, an error, bytes it should not send) or the head could not be written. */
static void raw_dropped(sse_raw_t *r)
{
    if (r->sock != NULL)
        h2o_socket_close(r->sock);
    r->sock = NULL;
    sse_t *x = r->owner;
    if (x != NULL) {
        r->owner = NULL;
        x->raw = NULL;
        stream_dropped(x);
    }
    raw_free(r);
}

/* Starts the next write: what is buffered, or, once let go with nothing left, an empty write whose completion closes
 * the socket from the loop instead of from inside whoever let the stream go. */
static void raw_pump(sse_raw_t *r)
{
    /* whoever pumps first writes everything buffered: the stream has nothing left for a batch */
    ag__eio_batch_remove(&r->batch);
    if (r->sock == NULL || h2o_socket_is_writing(r->sock) || (r->acc.len == 0 && !r->final))
        return;
    ag_eio_buf_t tmp = r->out;
    r->out = r->acc;
    r->acc = tmp;
    r->acc.len = 0;
    r->written += r->out.len;
    h2o_iovec_t iov = h2o_iovec_init(r->out.base, r->out.len);
    h2o_socket_write(r->sock, &iov, r->out.len != 0 ? 1 : 0, raw_on_written);
}

/* Everything is written: an idle stream keeps no buffers, and the session may write more. */
static void raw_idle(sse_raw_t *r)
{
    ag_eio_buf_dispose(&r->out);
    ag_eio_buf_dispose(&r->acc);
    if (r->owner != NULL)
        ag__eio_on_writable(r->session);
}

static void raw_on_written(h2o_socket_t *sock, const char *err)
{
    sse_raw_t *r = sock->data;
    if (err != NULL) {
        raw_dropped(r);
        return;
    }
    if (r->acc.len != 0) {
        raw_pump(r);
        return;
    }
    if (r->final) {
        raw_free(r);
        return;
    }
    raw_idle(r);
}

/* --- batched writes (general.ioUring, eio_batch.c) --- */

/* A stream h2o would write right now: plain TCP (h2o encrypts in its write), its socket handed over, no write in
 * flight, not closing, events buffered. */
static int raw_batchable(const sse_raw_t *r)
{
    return r->sock != NULL && r->sock->ssl == NULL && !h2o_socket_is_writing(r->sock) && !r->final && r->acc.len != 0;
}

static int batch_batchable(ag__eio_batched_t *e)
{
    return raw_batchable(H2O_STRUCT_FROM_MEMBER(sse_raw_t, batch, e));
}

static void batch_sent(ag__eio_batched_t *e, size_t n)
{
    H2O_STRUCT_FROM_MEMBER(sse_raw_t, batch, e)->written += n;
}

/* After the batch: idle again as after h2o's write callback when everything went, else h2o writes what is left (a
 * rest, a write in flight, TLS). */
static void batch_after(ag__eio_batched_t *e)
{
    sse_raw_t *r = H2O_STRUCT_FROM_MEMBER(sse_raw_t, batch, e);
    if (r->acc.len != 0 || r->final || r->sock == NULL || h2o_socket_is_writing(r->sock))
        raw_pump(r);
    else
        raw_idle(r); /* went out whole */
}

/* Buffers data for r (the caller counted it as backlog) and has it written: in this iteration's batch when the node
 * batches and h2o would write it now, else by h2o (at once, or after the write in flight). */
static int raw_write(sse_raw_t *r, const char *data, size_t len)
{
    if (ag_eio_buf_append(&r->acc, data, len) != AG_OK)
        return AG_ENOMEM;
    ag__eio_node_t *n = ag__eio_node(r->session->server);
    if (h2o_linklist_is_linked(&r->batch.link))
        return AG_OK;
    if (ag__eio_batching(n) && raw_batchable(r)) {
        r->batch.sock = r->sock;
        ag__eio_batch_add(n, &r->batch);
        return AG_OK;
    }
    raw_pump(r);
    return AG_OK;
}

/* An EventSource sends nothing after its request: EOF, an error or any byte ends the stream, so a client cannot make
 * the node keep what it sends. */
static void raw_on_read(h2o_socket_t *sock, const char *err)
{
    if (err == NULL && sock->input->size == 0)
        return; /* woken by a TLS record not complete yet */
    raw_dropped(sock->data);
}

static void raw_on_linger(h2o_timeout_entry_t *entry)
{
    raw_free(H2O_STRUCT_FROM_MEMBER(sse_raw_t, linger, entry));
}

/* A stream let go with bytes unwritten (a client that stopped reading) is closed after keepaliveMs at the latest. */
static void raw_arm_linger(sse_raw_t *r)
{
    if (r->final && r->sock != NULL && !h2o_timeout_is_linked(&r->linger))
        h2o_timeout_link(r->session->server->loop, &ag__eio_node(r->session->server)->keepalive, &r->linger);
}

/* h2o wrote the head and freed the request and its connection: the socket is the stream's. */
static void raw_on_head(void *data, h2o_socket_t *sock, size_t reqsize)
{
    sse_raw_t *r = data;
    if (sock == NULL) {
        raw_dropped(r);
        return;
    }
    r->sock = sock;
    sock->data = r;
    h2o_buffer_consume(&sock->input, reqsize);
    if (sock->input->size != 0) {
        raw_dropped(r); /* the client sent more than its request */
        return;
    }
    /* the buffer that held the request goes back; a read takes one only when bytes come */
    h2o_buffer_dispose(&sock->input);
    h2o_buffer_init(&sock->input, &h2o_socket_buffer_prototype);
    h2o_socket_read_start(sock, raw_on_read);
    raw_arm_linger(r);
    raw_pump(r);
}

/* Takes req's connection for x: the head (status and headers already in req->res) is written by h2o; 0 when out of
 * memory (the caller keeps the stream on the request). */
static int raw_start(sse_t *x, h2o_req_t *req)
{
    sse_raw_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return 0;
    r->owner = x;
    r->session = x->super.session;
    r->linger.cb = raw_on_linger;
    r->batch.buf = &r->acc;
    r->batch.kind = AG__EIO_BATCH_SSE;
    r->batch.batchable = batch_batchable;
    r->batch.sent = batch_sent;
    r->batch.after = batch_after;
    x->raw = r;
    req->res.status = 200;
    req->res.reason = "OK";
    /* h2o's head says "Connection: upgrade" (it names no Upgrade header, so it means nothing to a client or a proxy);
     * the body ends when the socket closes, which this says too */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONNECTION, NULL, H2O_STRLIT("close"));
    h2o_http1_upgrade(req, NULL, 0, raw_on_head, r);
    return 1;
}

static void raw_let_go(sse_raw_t *r)
{
    r->owner = NULL;
    r->final = 1;
    raw_arm_linger(r);
    raw_pump(r);
}

/* --- the stream, on the request (HTTP/2) or on its socket (HTTP/1.x) --- */

static int has_stream(const sse_t *x)
{
    return x->stream != NULL || x->raw != NULL;
}

static void arm_keepalive(sse_t *x)
{
    ag__eio_session_t *s = x->super.session;
    if (h2o_timeout_is_linked(&x->keepalive))
        h2o_timeout_unlink(&x->keepalive);
    if (has_stream(x))
        h2o_timeout_link(s->server->loop, &ag__eio_node(s->server)->keepalive, &x->keepalive);
}

static void end_stream(sse_t *x)
{
    ag__eio_held_t *h = x->stream;
    sse_raw_t *r = x->raw;
    x->stream = NULL;
    x->raw = NULL;
    if (h != NULL)
        ag__eio_held_finish(h);
    if (r != NULL)
        raw_let_go(r);
    if (h2o_timeout_is_linked(&x->keepalive))
        h2o_timeout_unlink(&x->keepalive);
}

/* The current stream is gone under the transport: a dropped probe ends the probe; a dropped current stream waits for
 * the reconnect (the ping timeout runs). */
static void stream_dropped(sse_t *x)
{
    ag__eio_session_t *s = x->super.session;
    if (h2o_timeout_is_linked(&x->keepalive))
        h2o_timeout_unlink(&x->keepalive);
    if (&x->super == s->probe)
        ag__eio_transport_gone(s, &x->super, &AG_DISCONNECT_PEER_CLOSED);
}

static void write_stream(sse_t *x, const char *data, size_t len)
{
    ag__eio_held_t *h = x->stream;
    sse_raw_t *r = x->raw;
    if (h == NULL && r == NULL)
        return;
    const ag_config_t *cfg = x->super.session->server->config;
    /* what the stream has not written yet is the consumer's backlog */
    if (ag__eio_note_backlog(x->super.session, (r != NULL ? r->acc.len : h->acc.len) + len, 0))
        return;
    if (r != NULL) {
        if (raw_write(r, data, len) != AG_OK)
            return;
    } else {
        ag__eio_held_write(h, data, len);
    }
    arm_keepalive(x);
    size_t total = r != NULL ? r->written + r->acc.len : h->written + h->acc.len;
    if (x->recyclable && total >= (size_t)cfg->servers.websocket.server.sse.recycleBytes)
        end_stream(x); /* recycle: end cleanly; EventSource reconnects with Last-Event-ID */
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
    return !x->closed && has_stream(x);
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
        stream_dropped(x);
    }
    ag__eio_session_release(s);
}

/* Starts a response on req for x: headers, padding when asked, the retry line; flushed at once. */
static void attach(sse_t *x, h2o_req_t *req)
{
    ag__eio_session_t *s = x->super.session;
    const ag_config_t *cfg = s->server->config;
    if (has_stream(x))
        end_stream(x);         /* a newer stream replaces the older one */
    ag__eio_session_addref(s); /* released when the stream is freed */
    x->recyclable = ag_http_query_param(req, "sid") != NULL;
    ag__eio_add_common_headers(req);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/event-stream; charset=utf-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache, no-store, no-transform, must-revalidate, max-age=0"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-accel-buffering"), 0, NULL, H2O_STRLIT("no"));
    if (req->version >= 0x200 || !raw_start(x, req)) {
        ag__eio_held_t *h = ag__eio_held_create(req, x, stream_proceed, stream_dispose);
        ag__eio_held_start_stream(h);
        x->stream = h;
    }
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
            for (size_t i = 0; i < x->ring_len && has_stream(x); i++) {
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
