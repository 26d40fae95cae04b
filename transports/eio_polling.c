/*
 * engine.io long-polling (PROTOCOL.md §4): the handshake answer, one held GET, POST bodies (shared with SSE), and the
 * held-response code that SSE streams reuse (a stream is a held response that does not finish).
 *
 * h2o 2.2.5 allows one h2o_send in flight per request; a held response keeps what arrives meanwhile in `acc` and
 * writes it when h2o calls proceed.
 */
#include "eio.h"

#include <h2o/http1.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "http.h"

typedef struct st_sleeper_t sleeper_t;

typedef struct st_polling_t {
    ag__eio_transport_t super;
    ag__eio_held_t *get;       /* the held GET, or NULL */
    sleeper_t *asleep;         /* the held GET once it left h2o's request, or NULL */
    ag__eio_direct_t *direct;  /* the held GET read by the node itself (eio_polling_direct.c), or NULL */
    h2o_timeout_entry_t sleep; /* the held GET leaves h2o's request when this fires (pollSleepMs) */
    int closed;
} polling_t;

/* --- held responses --- */

/* h2o 2.2.5 stops reading an HTTP/1 socket while its response is held, so a client that goes away is noticed only
 * when a write fails. While a GET is held its socket is read here instead: EOF or an error means the client dropped
 * the GET. h2o owns sock->data, so a map of the node's from the socket's address finds the held GET. */

static void unwatch(ag__eio_held_t *h, int stop_reading)
{
    if (h->watched == NULL)
        return;
    if (stop_reading)
        h2o_socket_read_stop(h->watched);
    ag_ptrmap_del(&h->node->watched, h->watched);
    h->watched = NULL;
}

/* The node a watched socket belongs to: h2o's HTTP/1 connection is the socket's data, and starts with its h2o_conn_t. */
static ag__eio_node_t *node_of(h2o_socket_t *sock)
{
    h2o_conn_t *conn = sock->data;
    return ag__eio_node(H2O_STRUCT_FROM_MEMBER(ag_server_t, ctx, conn->ctx));
}

static void on_watched_read(h2o_socket_t *sock, const char *err)
{
    ag__eio_held_t *h = ag_ptrmap_get(&node_of(sock)->watched, sock);
    h2o_socket_read_stop(sock);
    if (h == NULL)
        return;
    unwatch(h, 0);
    /* bytes that arrived (a pipelined request) stay in sock->input for h2o once the response is done */
    if (err != NULL && h->on_dropped != NULL)
        h->on_dropped(h);
}

static void watch(ag__eio_held_t *h)
{
    if (h->req->version >= 0x200)
        return; /* HTTP/2 tells the request itself (RST_STREAM) */
    h2o_socket_t *sock = h->req->conn->callbacks->get_socket(h->req->conn);
    if (sock == NULL)
        return;
    if (ag_ptrmap_set(&h->node->watched, sock, h) != AG_OK)
        return;
    h->watched = sock;
    h2o_socket_read_start(sock, on_watched_read);
}

static void held_pool_dispose(void *p)
{
    ag__eio_held_t *h = p;
    int premature = !h->done;
    h->req = NULL;
    unwatch(h, 0);
    ag_eio_buf_dispose(&h->acc);
    ag_eio_buf_dispose(&h->out);
    if (h->on_dispose != NULL)
        h->on_dispose(h, premature);
}

static void send_acc(ag__eio_held_t *h, int final)
{
    ag_eio_buf_t tmp = h->out;
    h->out = h->acc;
    h->acc = tmp;
    h->acc.len = 0;
    h2o_iovec_t iov[4];
    size_t n = 0;
    if (h->chunked && h->out.len != 0) {
        static const char hex[] = "0123456789abcdef";
        char *e = h->chunk_head + sizeof(h->chunk_head), *p = e;
        *--p = '\n';
        *--p = '\r';
        for (size_t v = h->out.len; v != 0; v >>= 4)
            *--p = hex[v & 15];
        iov[n++] = h2o_iovec_init(p, (size_t)(e - p));
    }
    if (h->out.len != 0)
        iov[n++] = h2o_iovec_init(h->out.base, h->out.len);
    if (h->chunked && h->out.len != 0)
        iov[n++] = h2o_iovec_init(H2O_STRLIT("\r\n"));
    if (h->chunked && final)
        iov[n++] = h2o_iovec_init(H2O_STRLIT("0\r\n\r\n"));
    h->written += h->out.len;
    h->sending = 1;
    if (final)
        h->done = 1;
    h2o_send(h->req, iov, n, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void held_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    ag__eio_held_t *h = H2O_STRUCT_FROM_MEMBER(ag__eio_held_t, gen, gen);
    h->sending = 0;
    if (h->req == NULL || h->done)
        return;
    if (h->acc.len != 0 || h->final) {
        send_acc(h, h->final);
        return;
    }
    /* an idle stream keeps no buffers */
    ag_eio_buf_dispose(&h->out);
    ag_eio_buf_dispose(&h->acc);
    if (h->on_proceed != NULL)
        h->on_proceed(h);
}

static void held_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    ag__eio_held_t *h = H2O_STRUCT_FROM_MEMBER(ag__eio_held_t, gen, gen);
    h->req = NULL; /* the client went away: nothing more may be sent; the pool destructor follows */
}

ag__eio_held_t *ag__eio_held_create(h2o_req_t *req, void *owner, void (*on_proceed)(ag__eio_held_t *),
                                    void (*on_dispose)(ag__eio_held_t *, int))
{
    ag__eio_held_t *h = h2o_mem_alloc_shared(&req->pool, sizeof(*h), held_pool_dispose);
    memset(h, 0, sizeof(*h));
    h->node = ag__eio_node(ag_http_server(req));
    h->req = req;
    h->owner = owner;
    h->on_proceed = on_proceed;
    h->on_dispose = on_dispose;
    h->gen.proceed = held_proceed;
    h->gen.stop = held_stop;
    return h;
}

int ag__eio_accepts_gzip(const char *v, size_t len)
{
    for (size_t k = 0; k + 4 <= len; k++)
        if (memcmp(v + k, "gzip", 4) == 0)
            return 1;
    return 0;
}

static int accepts_gzip(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT_ENCODING, -1);
    return i != -1 && ag__eio_accepts_gzip(req->headers.entries[i].value.base, req->headers.entries[i].value.len);
}

int ag__eio_gzip(ag_eio_buf_t *out, const char *body, size_t len)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    out->len = 0;
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return 0;
    size_t cap = deflateBound(&zs, (uLong)len) + 32;
    if (ag_eio_buf_reserve(out, cap) != AG_OK) {
        deflateEnd(&zs);
        return 0;
    }
    zs.next_in = (Bytef *)body;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out->base;
    zs.avail_out = (uInt)cap;
    int ret = deflate(&zs, Z_FINISH);
    out->len = cap - zs.avail_out;
    deflateEnd(&zs);
    return ret == Z_STREAM_END;
}

/* The answer to a polling GET or a handshake: text/plain payload (a script for JSONP polling; octets: protocol 3's
 * binary payload), no-store, CORS, gzip when large and accepted. */
static void respond_payload(ag__eio_session_t *s, h2o_req_t *req, h2o_generator_t *gen, const char *body, size_t len, int octets,
                            int direct)
{
    ag_eio_buf_t js = {NULL, 0, 0};
    /* an answer of the session's polling transport may make its connection the node's (pollDirect) */
    ag__eio_direct_info_t *info = NULL;
    if (direct && !octets)
        info = ag__eio_direct_cors(s, req);
    else
        ag__eio_add_common_headers(req);
    if (s->is_jsonp && ag_eio_jsonp_append(&js, s->jsonp, body, len) == AG_OK) {
        body = js.base;
        len = js.len;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/javascript; charset=UTF-8"));
    } else if (octets) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/octet-stream"));
    } else {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain; charset=UTF-8"));
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_iovec_t buf;
    ag_eio_buf_t z = {NULL, 0, 0};
    if (len >= AG__EIO_GZIP_THRESHOLD && accepts_gzip(req) && ag__eio_gzip(&z, body, len)) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_ENCODING, NULL, H2O_STRLIT("gzip"));
        buf = h2o_strdup(&req->pool, z.base, z.len);
    } else {
        buf = h2o_strdup(&req->pool, body, len);
    }
    ag_eio_buf_dispose(&z);
    ag_eio_buf_dispose(&js);
    if (info != NULL) {
        ag__eio_direct_take(s, req, info, buf);
        return;
    }
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = buf.len;
    h2o_start_response(req, gen);
    h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

static void held_respond(ag__eio_session_t *s, ag__eio_held_t *h, const char *body, size_t len, int octets, int direct)
{
    h2o_req_t *req = h->req;
    if (req == NULL || h->done)
        return;
    unwatch(h, 1);
    h->done = 1;
    h->gen.proceed = NULL;
    h->gen.stop = NULL;
    respond_payload(s, req, &h->gen, body, len, octets, direct);
}

/* A held GET answered with one control packet, in the session's protocol. */
static void held_respond_packet(ag__eio_session_t *s, ag__eio_held_t *h, int type)
{
    ag_eio_buf_t b = {NULL, 0, 0};
    if (ag__eio_payload_append(s, &b, type, NULL, 0, 0, 0) == AG_OK)
        held_respond(s, h, b.base, b.len, 0, 0);
    ag_eio_buf_dispose(&b);
}

/* Over HTTP/1.1 the stream frames its own chunks: h2o 2.2.5's chunked encoder formats each chunk's size with sprintf,
 * which cost a fifth of an SSE event's instructions; a response that names its transfer-encoding passes it by. */
void ag__eio_held_start_stream(ag__eio_held_t *h)
{
    if (h->req->version == 0x101 && h->req->res.content_length == SIZE_MAX) {
        h2o_add_header(&h->req->pool, &h->req->res.headers, H2O_TOKEN_TRANSFER_ENCODING, NULL, H2O_STRLIT("chunked"));
        h->chunked = 1;
    }
    h->req->res.status = 200;
    h->req->res.reason = "OK";
    h2o_start_response(h->req, &h->gen);
}

int ag__eio_held_write(ag__eio_held_t *h, const char *data, size_t len)
{
    if (h->req == NULL || h->done || h->final)
        return AG_ECLOSED;
    if (ag_eio_buf_append(&h->acc, data, len) != AG_OK)
        return AG_ENOMEM;
    if (!h->sending)
        send_acc(h, 0);
    return AG_OK;
}

void ag__eio_held_finish(ag__eio_held_t *h)
{
    if (h->req == NULL || h->done || h->final)
        return;
    h->final = 1;
    if (!h->sending)
        send_acc(h, 1);
}

/* --- a held GET asleep (servers.websocket.server.pollSleepMs) --- */

/*
 * A GET held pollSleepMs with nothing to answer leaves h2o's request over HTTP/1.1, as an SSE stream does: h2o writes
 * the head (200, chunked) through h2o_http1_upgrade and frees the request, its pool, its connection and the buffer
 * that held the request, so an idle polling session costs its socket and this, not ~11 KB. The answer is written
 * later as one chunk and the last chunk, and the socket goes back to h2o as a fresh HTTP/1.1 connection
 * (h2o_http1_accept) for the client's next request. It is never gzipped: the head went before the answer was known.
 * A GET answered within pollSleepMs (a busy session) never sleeps and costs nothing more.
 *
 * A sleeper owns itself: h2o calls back once the head is written whatever became of the session meanwhile, and a
 * sleeper answered (let go by its transport) still writes its answer before its socket goes back or closes. It holds
 * a reference on its session until it is freed.
 */
struct st_sleeper_t {
    polling_t *owner;           /* the transport it answers for; NULL once answered */
    ag__eio_session_t *session; /* a reference */
    ag_server_t *server;
    h2o_socket_t *sock; /* NULL while h2o writes the head */
    struct timeval connected_at;
    ag_eio_buf_t answer; /* the chunk and the last chunk; empty once answered: the socket closes */
    int answered, writing;
    ag__eio_direct_info_t *direct; /* what the connection keeps once direct (pollDirect), or NULL: back to h2o */
    h2o_timeout_entry_t linger;    /* an answer the client does not take is given up after sse.keepaliveMs */
};

/* Only a text answer can be promised before it is known: JSONP answers a script, protocol 3 without b64 may answer
 * octets. HTTP/1.0 has no chunks, HTTP/2 keeps its stream. */
static int may_sleep(const ag__eio_session_t *s, const h2o_req_t *req)
{
    return s->server->config->servers.websocket.server.pollSleepMs > 0 && req->version == 0x101 && !s->is_jsonp &&
           (s->protocol == 4 || s->b64);
}

static void sleeper_free(sleeper_t *z)
{
    if (h2o_timeout_is_linked(&z->linger))
        h2o_timeout_unlink(&z->linger);
    if (z->sock != NULL)
        h2o_socket_close(z->sock);
    ag_eio_buf_dispose(&z->answer);
    ag__eio_direct_info_free(z->direct);
    z->server->stats.polls_asleep--;
    ag__eio_session_t *s = z->session;
    free(z);
    ag__eio_session_release(s);
}

/* The client went away (EOF, an error) or the head could not be written: as a dropped held GET, the session ends. */
static void sleeper_dropped(sleeper_t *z)
{
    polling_t *p = z->owner;
    if (p != NULL) {
        z->owner = NULL;
        p->asleep = NULL;
        ag__eio_transport_gone(z->session, &p->super, &AG_DISCONNECT_TRANSPORT_ERROR);
    }
    sleeper_free(z);
}

static void sleeper_on_written(h2o_socket_t *sock, const char *err)
{
    sleeper_t *z = sock->data;
    z->writing = 0;
    if (err != NULL || z->answer.len == 0 || z->server->stopping) {
        sleeper_free(z);
        return;
    }
    /* answered: the connection is h2o's again (or the node's, pollDirect), keep-alive, with what the client sent
     * meanwhile still in its buffer */
    ag_server_t *server = z->server;
    struct timeval at = z->connected_at;
    z->sock = NULL;
    if (z->direct != NULL && !z->session->closed && !z->session->upgraded) {
        ag__eio_direct_info_t *info = z->direct;
        z->direct = NULL;
        ag__eio_direct_adopt(z->session, sock, at, info);
        sleeper_free(z);
        return;
    }
    sleeper_free(z);
    h2o_http1_accept(&server->accept_ctx, sock, at);
}

static void sleeper_on_linger(h2o_timeout_entry_t *entry)
{
    sleeper_free(H2O_STRUCT_FROM_MEMBER(sleeper_t, linger, entry));
}

/* Writes the answer once there is one and the head is out; an empty answer is an empty write whose completion closes
 * the socket from the loop rather than from inside whoever answered. */
static void sleeper_pump(sleeper_t *z)
{
    if (z->sock == NULL || !z->answered || z->writing)
        return;
    h2o_socket_read_stop(z->sock);
    z->writing = 1;
    h2o_iovec_t iov = h2o_iovec_init(z->answer.base, z->answer.len);
    h2o_socket_write(z->sock, &iov, z->answer.len != 0 ? 1 : 0, sleeper_on_written);
    h2o_timeout_link(z->server->loop, &ag__eio_node(z->server)->keepalive, &z->linger);
}

/* While asleep the socket is read for the client going away; bytes are its next request (pipelined), which waits in
 * the buffer for h2o once the answer is out. */
static void sleeper_on_read(h2o_socket_t *sock, const char *err)
{
    sleeper_t *z = sock->data;
    if (err == NULL && sock->input->size == 0)
        return; /* woken by a TLS record not complete yet */
    h2o_socket_read_stop(sock);
    if (err != NULL)
        sleeper_dropped(z);
}

/* h2o wrote the head and freed the request and its connection: the socket is the sleeper's. */
static void sleeper_on_head(void *data, h2o_socket_t *sock, size_t reqsize)
{
    sleeper_t *z = data;
    if (sock == NULL) {
        sleeper_dropped(z);
        return;
    }
    z->sock = sock;
    sock->data = z;
    h2o_buffer_consume(&sock->input, reqsize);
    if (sock->input->size == 0) {
        /* the buffer that held the request goes back; a read takes one only when bytes come */
        h2o_buffer_dispose(&sock->input);
        h2o_buffer_init(&sock->input, &h2o_socket_buffer_prototype);
        h2o_socket_read_start(sock, sleeper_on_read);
    }
    sleeper_pump(z);
}

/* The transport's answer (data NULL: none, the socket closes): one chunk, then the last chunk. */
static void sleeper_answer(polling_t *p, const char *data, size_t len)
{
    sleeper_t *z = p->asleep;
    p->asleep = NULL;
    z->owner = NULL;
    z->answered = 1;
    if (data != NULL && len != 0) {
        char size[24];
        int n = snprintf(size, sizeof(size), "%zx\r\n", len);
        if (ag_eio_buf_append(&z->answer, size, (size_t)n) != AG_OK || ag_eio_buf_append(&z->answer, data, len) != AG_OK ||
            ag_eio_buf_append(&z->answer, H2O_STRLIT("\r\n0\r\n\r\n")) != AG_OK)
            z->answer.len = 0;
    }
    sleeper_pump(z);
}

/* What the requests of the GETs that went to sleep held is free, but the allocator keeps the pages it touched: the
 * heap's free pages go back to the system pollSleepMs after a GET went to sleep (at most that often). */
static void on_trim(h2o_timeout_entry_t *entry)
{
    (void)entry;
    malloc_trim(0);
}

static void on_sleep(h2o_timeout_entry_t *entry)
{
    polling_t *p = H2O_STRUCT_FROM_MEMBER(polling_t, sleep, entry);
    ag__eio_held_t *h = p->get;
    if (h == NULL || h->req == NULL || h->done || p->closed)
        return;
    h2o_req_t *req = h->req;
    ag__eio_session_t *s = p->super.session;
    sleeper_t *z = calloc(1, sizeof(*z));
    if (z == NULL)
        return; /* it stays on its request */
    z->owner = p;
    z->session = s;
    z->server = s->server;
    z->connected_at = req->conn->connected_at;
    z->linger.cb = sleeper_on_linger;
    ag__eio_session_addref(s);
    s->server->stats.polls_asleep++;
    s->server->stats.polls_slept++;
    /* the held GET is done without an answer of its own: h2o frees its request once the head is written */
    unwatch(h, 1);
    h->done = 1;
    p->get = NULL;
    p->asleep = z;
    z->direct = ag__eio_direct_cors(s, req);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain; charset=UTF-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_TRANSFER_ENCODING, NULL, H2O_STRLIT("chunked"));
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_http1_upgrade(req, NULL, 0, sleeper_on_head, z);
    ag__eio_node_t *n = ag__eio_node(s->server);
    if (!h2o_timeout_is_linked(&n->trim)) {
        n->trim.cb = on_trim;
        h2o_timeout_link(s->server->loop, &n->poll_sleep, &n->trim);
    }
}

/* --- the polling transport --- */

static int polling_writable(ag__eio_transport_t *t)
{
    polling_t *p = (polling_t *)t;
    return !p->closed && (p->get != NULL || p->asleep != NULL || p->direct != NULL);
}

static void polling_send(ag__eio_transport_t *t, const ag__eio_out_t *pkts, size_t n)
{
    polling_t *p = (polling_t *)t;
    ag__eio_held_t *h = p->get;
    if (h == NULL && p->asleep == NULL && p->direct == NULL)
        return;
    ag__eio_session_t *s = t->session;
    ag__eio_node_t *node = ag__eio_node(s->server);
    ag_eio_buf_t own[2] = {{NULL, 0, 0}, {NULL, 0, 0}}, *b, *unused;
    int shared;
    ag__eio_scratch_get(node, own, &b, &unused, &shared);
    /* Protocol 3 clients that did not ask for b64 take binary as octets, as engine.io 3 sends it: the whole answer is
     * then a binary payload. */
    int octets = 0;
    for (size_t i = 0; i < n && s->protocol == 3 && !s->b64 && !s->is_jsonp; i++)
        if (pkts[i].frame != NULL && pkts[i].frame->binary)
            octets = 1;
    for (size_t i = 0; i < n; i++) {
        const char *d = pkts[i].frame != NULL ? pkts[i].frame->data : pkts[i].text;
        size_t len = pkts[i].frame != NULL ? pkts[i].frame->len : d != NULL ? strlen(d) : 0;
        ag__eio_payload_append(s, b, pkts[i].type, d, len, pkts[i].frame != NULL && pkts[i].frame->binary, octets);
    }
    if (h != NULL) {
        p->get = NULL;
        held_respond(s, h, b->base, b->len, octets, 1); /* the answer is copied into the request's pool */
    } else if (p->direct != NULL) {
        ag__eio_direct_t *d = p->direct;
        p->direct = NULL;
        ag__eio_direct_answer(d, b->base, b->len); /* octets never: a GET that may get them is not direct */
    } else {
        sleeper_answer(p, b->base, b->len); /* octets never: a GET that may get them does not sleep */
    }
    ag__eio_scratch_put(node, b, unused, shared);
}

static void polling_close(ag__eio_transport_t *t)
{
    polling_t *p = (polling_t *)t;
    p->closed = 1;
    if (p->direct != NULL || p->asleep != NULL) {
        /* a sleeper's head said 200 already, a direct connection reads on after its answer: a GET that raced the
         * upgrade gets a noop rather than a 400 (none when it cannot be built: the socket closes) */
        ag_eio_buf_t b = {NULL, 0, 0};
        int ok = ag__eio_payload_append(t->session, &b, AG_EIO_NOOP, NULL, 0, 0, 0) == AG_OK;
        if (p->direct != NULL) {
            ag__eio_direct_t *d = p->direct;
            p->direct = NULL;
            ag__eio_direct_answer(d, ok ? b.base : NULL, ok ? b.len : 0);
        } else {
            sleeper_answer(p, ok ? b.base : NULL, ok ? b.len : 0);
        }
        ag_eio_buf_dispose(&b);
        return;
    }
    ag__eio_held_t *h = p->get;
    if (h == NULL)
        return;
    p->get = NULL;
    if (t->session->upgraded && !t->session->closed) {
        /* a GET that raced the upgrade belongs to a transport that is gone */
        h2o_req_t *req = h->req;
        unwatch(h, 1);
        h->done = 1;
        if (req != NULL)
            ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST);
        return;
    }
    held_respond_packet(t->session, h, AG_EIO_NOOP);
}

static const ag__eio_transport_ops_t polling_ops = {AG__EIO_POLLING, "polling", polling_writable, polling_send, polling_close};

static ag__eio_transport_t *polling_create(ag__eio_session_t *s)
{
    polling_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->super.ops = &polling_ops;
    p->super.session = s;
    p->sleep.cb = on_sleep;
    return &p->super;
}

void ag__eio_polling_destroy(ag__eio_transport_t *t)
{
    polling_t *p = (polling_t *)t;
    if (h2o_timeout_is_linked(&p->sleep))
        h2o_timeout_unlink(&p->sleep);
    free(t);
}

void ag__eio_polling_handshake(ag__eio_session_t *s, h2o_req_t *req, int sse_offered)
{
    static h2o_generator_t gen = {NULL, NULL};
    if ((s->polling = polling_create(s)) == NULL) {
        ag__eio_session_close(s, &AG_DISCONNECT_SERVER_ERROR, 0);
        ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST);
        return;
    }
    char open[512];
    size_t n = ag__eio_open_json(s, AG__EIO_POLLING, sse_offered, open, sizeof(open));
    ag_eio_buf_t b = {NULL, 0, 0};
    if (ag__eio_payload_append(s, &b, AG_EIO_OPEN, open, n, 0, 0) != AG_OK) {
        ag__eio_session_close(s, &AG_DISCONNECT_SERVER_ERROR, 0);
        ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST);
        return;
    }
    respond_payload(s, req, &gen, b.base, b.len, 0, 0);
    ag_eio_buf_dispose(&b);
    ag__eio_session_start(s, s->polling);
}

/* The client closed the connection of its held GET: the session ends ("poll connection closed prematurely"), and the
 * dead request is answered so that h2o writes, fails and frees the connection. */
static void get_dropped(ag__eio_held_t *h)
{
    polling_t *p = h->owner;
    ag__eio_session_t *s = p->super.session;
    if (p->get == h) {
        p->get = NULL;
        ag__eio_session_addref(s);
        ag__eio_transport_gone(s, &p->super, &AG_DISCONNECT_TRANSPORT_ERROR);
        ag__eio_session_release(s);
    }
    held_respond_packet(s, h, AG_EIO_CLOSE);
}

static void get_dispose(ag__eio_held_t *h, int premature)
{
    polling_t *p = h->owner;
    ag__eio_session_t *s = p->super.session;
    if (p->get == h) {
        p->get = NULL;
        /* the client dropped its GET: engine.io closes the session ("poll connection closed prematurely") */
        if (premature)
            ag__eio_transport_gone(s, &p->super, &AG_DISCONNECT_TRANSPORT_ERROR);
    }
    ag__eio_session_release(s);
}

void ag__eio_polling_get(ag__eio_session_t *s, h2o_req_t *req)
{
    polling_t *p = (polling_t *)s->polling;
    if (p->get != NULL || p->asleep != NULL || p->direct != NULL) {
        /* an overlapping GET: this one gets 400, the held one the close packet, and the session ends */
        ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST);
        ag__eio_session_close(s, &AG_DISCONNECT_TRANSPORT_ERROR, 1);
        return;
    }
    ag__eio_session_addref(s);
    p->get = ag__eio_held_create(req, p, NULL, get_dispose);
    p->get->on_dropped = get_dropped;
    watch(p->get);
    if (may_sleep(s, req)) {
        if (h2o_timeout_is_linked(&p->sleep))
            h2o_timeout_unlink(&p->sleep);
        h2o_timeout_link(s->server->loop, &ag__eio_node(s->server)->poll_sleep, &p->sleep);
    }
    ag__eio_on_writable(s);
}

void ag__eio_post(ag__eio_session_t *s, ag__eio_transport_t *t, h2o_req_t *req)
{
    const ag_config_t *cfg = s->server->config;
    size_t len = req->entity.base != NULL ? req->entity.len : 0;
    if (len > (size_t)cfg->servers.websocket.server.maxHttpBufferSize) {
        ag__eio_add_common_headers(req);
        ag_http_respond(req, 413, "Payload Too Large", NULL, "", 0);
        return;
    }
    ssize_t ct = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    int octets = ct != -1 && h2o_memis(req->headers.entries[ct].value.base, req->headers.entries[ct].value.len,
                                       H2O_STRLIT("application/octet-stream"));
    if (octets && (s->protocol != 3 || s->is_jsonp)) {
        /* v4 polling bodies are text (engine.io closes the session on binary content); protocol 3 sends binary
         * payloads as octets, but never over JSONP */
        ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST);
        ag__eio_session_close(s, &AG_DISCONNECT_TRANSPORT_ERROR, 0);
        return;
    }
    const char *body = req->entity.base != NULL ? req->entity.base : "";
    if (s->is_jsonp) {
        /* a form the page posted from a hidden iframe: the payload is its "d" field */
        char *d = h2o_mem_alloc_pool(&req->pool, len + 1);
        long dlen = ag_eio_jsonp_form_decode(body, len, d);
        if (dlen < 0) {
            ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST);
            ag__eio_session_close(s, &AG_DISCONNECT_PROTOCOL_ERROR, 0);
            return;
        }
        body = d;
        len = (size_t)dlen;
    }
    if (ag__eio_on_payload(s, t, body, len, octets) != 0) {
        ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST);
        return;
    }
    ag__eio_add_common_headers(req);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    ag_http_respond(req, 200, "OK", "text/html", "ok", 2);
}

/* --- direct GETs (eio_polling_direct.c) --- */

int ag__eio_polling_direct_may_get(ag__eio_session_t *s)
{
    polling_t *p = (polling_t *)s->polling;
    return p != NULL && !p->closed && p->get == NULL && p->asleep == NULL && p->direct == NULL;
}

void ag__eio_polling_direct_get(ag__eio_session_t *s, ag__eio_direct_t *d)
{
    polling_t *p = (polling_t *)s->polling;
    p->direct = d;
    ag__eio_on_writable(s);
}

/* The client closed the connection of its held direct GET: the session ends, as for a held GET of h2o's. */
void ag__eio_polling_direct_dropped(ag__eio_session_t *s, ag__eio_direct_t *d)
{
    polling_t *p = (polling_t *)s->polling;
    if (p == NULL || p->direct != d)
        return;
    p->direct = NULL;
    ag__eio_transport_gone(s, &p->super, &AG_DISCONNECT_TRANSPORT_ERROR);
}
