/*
 * Direct polling connections (servers.websocket.server.pollDirect; README "Design", engine.io long-polling).
 *
 * A busy long-poll session sends GET after GET on one kept HTTP/1.1 connection, and h2o set up and tore down a
 * request for each: a pool, its header vectors, a response head printed with sprintf. Once a held GET is answered and
 * its session may be served so, the answer goes out through h2o_http1_upgrade (one write, Content-Length) and the
 * socket becomes the node's. The node then reads the connection itself and serves the session's next GET only in the
 * exact happy case (ag__eio_direct_match, eio_polling_match.c); anything else goes back to h2o untouched, every byte
 * still in sock->input (h2o_http1_accept), so that h2o answers it as it always did. The answer is written from cached
 * pieces in one write.
 *
 * A direct connection owns itself. It holds a reference on its session; a session that closed is let go at the
 * connection's next request (which h2o then answers) or timeout. Its bounds are h2o's: an idle or partial request is
 * closed after http1.req_timeout (as h2o's reqread_on_timeout does), an answer the client does not take is given up
 * after sse.keepaliveMs (the sleeper's linger), and it reads at most one request head (AG__EIO_DIRECT_HEAD_MAX) before
 * giving the connection back to h2o, which applies its own limit.
 */
#include "eio.h"

#include <h2o/http1.h>
#include <stdlib.h>
#include <string.h>
#include "cluster.h"
#include "http.h"
#include "ops.h"

struct st_ag__eio_direct_info_t {
    size_t path_len, origin_len, cors_len;
    int has_origin; /* the request that made the connection direct had an Origin (its value is origin) */
    int vary;       /* the CORS lines hold Vary, which h2o turns into Cache-Control for MSIE */
    char *path, *origin, *cors;
};

enum { TAKING, READING, HELD, WRITING };

struct st_ag__eio_direct_t {
    h2o_linklist_t link; /* in the node's directs */
    ag_server_t *server;
    h2o_socket_t *sock;         /* NULL while h2o writes the answer that made the connection direct */
    ag__eio_session_t *session; /* a reference; NULL once let go */
    ag__eio_direct_info_t *info;
    struct timeval connected_at;
    int state;
    int gzip;                  /* the held GET accepts gzip */
    size_t prevlen;            /* what the last parse of an incomplete head saw (picohttpparser skips it) */
    h2o_timeout_entry_t timer; /* http1.req_timeout while reading; sse.keepaliveMs while writing */
    ag_eio_buf_t out;
    ag__eio_batched_t batch; /* the answer waiting for this iteration's submit (general.ioUring, eio_batch.c) */
    /* the held GET's access line (general.accessLog): its path and user agent (malloc'd), when it was read */
    char *log_path, *log_ua;
    size_t log_path_len, log_ua_len, log_bytes;
    struct timeval began;
};

/* --- what a connection keeps of the request that made it direct --- */

void ag__eio_direct_info_free(ag__eio_direct_info_t *info)
{
    free(info);
}

/* The request came to the private listener other workers forward to (general.workers): never direct. */
static int on_private_listener(ag_server_t *server, h2o_socket_t *sock)
{
    if (server->private_listener == NULL)
        return 0;
    struct sockaddr_storage a, b;
    socklen_t alen = h2o_socket_getsockname(sock, (struct sockaddr *)&a);
    socklen_t blen = h2o_socket_getsockname(server->private_listener, (struct sockaddr *)&b);
    return alen == 0 || blen == 0 || h2o_socket_getport((struct sockaddr *)&a) == h2o_socket_getport((struct sockaddr *)&b);
}

static int may_direct(ag__eio_session_t *s, h2o_req_t *req)
{
    ag_server_t *server = s->server;
    const ag_config_t *cfg = server->config;
    if (!cfg->servers.websocket.server.pollDirect || server->stopping || s->closed || s->upgraded || s->is_jsonp ||
        !(s->protocol == 4 || s->b64))
        return 0;
    if (req->version != 0x101 || !req->http1_is_persistent || req->entity.base != NULL || req->upgrade.base != NULL)
        return 0;
    /* a node forwarded it (the cluster keeps its header only on a request it checked) */
    if (h2o_find_header_by_str(&req->headers, H2O_STRLIT(AG_CLUSTER_FORWARDED_HEADER), -1) != -1)
        return 0;
    /* the address an access line names is the socket's only while no proxy header could name another */
    if (cfg->general.accessLog[0] != '\0' && (h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-forwarded-for"), -1) != -1 ||
                                              h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-real-ip"), -1) != -1 ||
                                              h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-forwarded-port"), -1) != -1))
        return 0;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || on_private_listener(server, sock))
        return 0;
    ssize_t ua = h2o_find_header(&req->headers, H2O_TOKEN_USER_AGENT, -1);
    if (ua != -1 && ag__eio_direct_has_msie(req->headers.entries[ua].value.base, req->headers.entries[ua].value.len))
        return 0;
    return 1;
}

ag__eio_direct_info_t *ag__eio_direct_cors(ag__eio_session_t *s, h2o_req_t *req)
{
    size_t before = req->res.headers.size;
    ag__eio_add_common_headers(req);
    if (!may_direct(s, req))
        return NULL;
    ssize_t oi = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    if (oi != -1 && h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), oi) != -1)
        return NULL;
    h2o_iovec_t origin = oi != -1 ? req->headers.entries[oi].value : h2o_iovec_init(NULL, 0);
    const char *q = memchr(req->input.path.base, '?', req->input.path.len);
    size_t path_len = q != NULL ? (size_t)(q - req->input.path.base) : req->input.path.len;
    size_t cors_len = 0;
    int vary = 0;
    for (size_t i = before; i < req->res.headers.size; i++) {
        const h2o_header_t *h = &req->res.headers.entries[i];
        cors_len += h->name->len + h->value.len + 4;
        vary |= ag__eio_direct_ci_is(h->name->base, h->name->len, "vary");
    }
    ag__eio_direct_info_t *info = malloc(sizeof(*info) + path_len + origin.len + cors_len);
    if (info == NULL)
        return NULL;
    info->path = (char *)(info + 1);
    info->origin = info->path + path_len;
    info->cors = info->origin + origin.len;
    info->path_len = path_len;
    info->origin_len = origin.len;
    info->cors_len = cors_len;
    info->has_origin = oi != -1;
    info->vary = vary;
    memcpy(info->path, req->input.path.base, path_len);
    if (origin.len != 0)
        memcpy(info->origin, origin.base, origin.len);
    /* as h2o's flatten_headers writes them */
    char *p = info->cors;
    for (size_t i = before; i < req->res.headers.size; i++) {
        const h2o_header_t *h = &req->res.headers.entries[i];
        memcpy(p, h->orig_name != NULL ? h->orig_name : h->name->base, h->name->len);
        p += h->name->len;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, h->value.base, h->value.len);
        p += h->value.len;
        *p++ = '\r';
        *p++ = '\n';
    }
    return info;
}

/* --- the connection --- */

static void on_read(h2o_socket_t *sock, const char *err);

static void unlink_timer(ag__eio_direct_t *d)
{
    if (h2o_timeout_is_linked(&d->timer))
        h2o_timeout_unlink(&d->timer);
}

static void let_session_go(ag__eio_direct_t *d)
{
    ag__eio_session_t *s = d->session;
    d->session = NULL;
    if (s != NULL)
        ag__eio_session_release(s);
}

static void log_free(ag__eio_direct_t *d)
{
    free(d->log_path);
    free(d->log_ua);
    d->log_path = d->log_ua = NULL;
}

/* Frees d; its socket (if any) is the caller's to close or pass on first. */
static void direct_free(ag__eio_direct_t *d)
{
    unlink_timer(d);
    ag__eio_batch_remove(&d->batch);
    h2o_linklist_unlink(&d->link);
    ag_eio_buf_dispose(&d->out);
    log_free(d);
    ag__eio_direct_info_free(d->info);
    d->server->stats.poll_conns_direct--;
    let_session_go(d);
    free(d);
}

static void direct_close(ag__eio_direct_t *d)
{
    h2o_socket_t *sock = d->sock;
    d->sock = NULL;
    direct_free(d);
    if (sock != NULL)
        h2o_socket_close(sock);
}

/* The connection goes back to h2o as a fresh HTTP/1.1 connection with what the client sent in its buffer: h2o reads
 * and answers it as it would have. */
static void hand_back(ag__eio_direct_t *d)
{
    h2o_socket_t *sock = d->sock;
    ag_server_t *server = d->server;
    struct timeval at = d->connected_at;
    h2o_socket_read_stop(sock);
    d->sock = NULL;
    direct_free(d);
    h2o_http1_accept(&server->accept_ctx, sock, at);
}

static void on_timeout(h2o_timeout_entry_t *entry)
{
    ag__eio_direct_t *d = H2O_STRUCT_FROM_MEMBER(ag__eio_direct_t, timer, entry);
    direct_close(d);
}

/* An empty buffer goes back; a read takes one only when bytes come (as a sleeper does). */
static void shrink_input(h2o_socket_t *sock)
{
    if (sock->input->size == 0 && sock->input->capacity != 0) {
        h2o_buffer_dispose(&sock->input);
        h2o_buffer_init(&sock->input, &h2o_socket_buffer_prototype);
    }
}

static void start_reading(ag__eio_direct_t *d)
{
    d->state = READING;
    unlink_timer(d);
    h2o_timeout_link(d->server->loop, &d->server->ctx.http1.req_timeout, &d->timer);
    h2o_socket_read_start(d->sock, on_read);
    if (d->sock->input->size != 0)
        on_read(d->sock, NULL);
}

static int batch_batchable(ag__eio_batched_t *e);
static void batch_after(ag__eio_batched_t *e);

static ag__eio_direct_t *direct_new(ag__eio_session_t *s, struct timeval connected_at, ag__eio_direct_info_t *info)
{
    ag__eio_direct_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->server = s->server;
    d->session = s;
    ag__eio_session_addref(s);
    d->info = info;
    d->connected_at = connected_at;
    d->timer.cb = on_timeout;
    d->batch.buf = &d->out;
    d->batch.kind = AG__EIO_BATCH_POLL;
    d->batch.batchable = batch_batchable;
    d->batch.after = batch_after;
    h2o_linklist_insert(&ag__eio_node(s->server)->directs, &d->link);
    s->server->stats.poll_conns_direct++;
    return d;
}

static void on_taken(void *data, h2o_socket_t *sock, size_t reqsize)
{
    ag__eio_direct_t *d = data;
    if (sock == NULL) {
        direct_free(d); /* the write failed: h2o closed the socket */
        return;
    }
    d->sock = sock;
    sock->data = d;
    h2o_buffer_consume(&sock->input, reqsize);
    shrink_input(sock);
    if (d->server->stopping) {
        direct_close(d);
        return;
    }
    start_reading(d);
}

void ag__eio_direct_take(ag__eio_session_t *s, h2o_req_t *req, ag__eio_direct_info_t *info, h2o_iovec_t body)
{
    ag__eio_direct_t *d = direct_new(s, req->conn->connected_at, info);
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = body.len;
    req->bytes_sent = body.len; /* the access line counts the body, as when h2o sends it */
    if (d == NULL) {
        ag__eio_direct_info_free(info);
        static h2o_generator_t gen = {NULL, NULL};
        h2o_start_response(req, &gen);
        h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
        return;
    }
    d->state = TAKING;
    h2o_http1_upgrade(req, &body, 1, on_taken, d);
}

void ag__eio_direct_adopt(ag__eio_session_t *s, h2o_socket_t *sock, struct timeval connected_at, ag__eio_direct_info_t *info)
{
    ag__eio_direct_t *d = direct_new(s, connected_at, info);
    if (d == NULL) {
        ag__eio_direct_info_free(info);
        h2o_http1_accept(&s->server->accept_ctx, sock, connected_at);
        return;
    }
    d->sock = sock;
    sock->data = d;
    start_reading(d);
}

/* --- reading a request --- */

static char *dup_bytes(const char *p, size_t len)
{
    char *c = malloc(len + 1);
    if (c != NULL) {
        memcpy(c, p, len);
        c[len] = '\0';
    }
    return c;
}

/* Serves the request at the head of the input when it is the happy case. 1: held; 0: incomplete, wait; -1: h2o's. */
static int parse(ag__eio_direct_t *d)
{
    ag__eio_session_t *s = d->session;
    const ag__eio_direct_info_t *info = d->info;
    ag__eio_direct_want_t want = {.path = info->path,
                                  .path_len = info->path_len,
                                  .sid = s != NULL && !s->closed ? s->sid : NULL,
                                  .origin = info->origin,
                                  .origin_len = info->origin_len,
                                  .has_origin = info->has_origin,
                                  .vary = info->vary,
                                  .log = d->server->config->general.accessLog[0] != '\0'};
    ag__eio_direct_head_t head;
    int r = ag__eio_direct_match(d->sock->input->bytes, d->sock->input->size, &d->prevlen, &want, &head);
    if (r != 1)
        return r;
    /* the session as the h2o path would find it: open, on polling, no GET held, its heartbeat alive */
    if (d->server->stopping || s->upgraded || s->transport == NULL || s->transport->ops->kind != AG__EIO_POLLING ||
        s->transport != s->polling || ag__eio_heartbeat_expired(s))
        return -1;
    if (!ag__eio_polling_direct_may_get(s))
        return -1;
    if (want.log) {
        log_free(d);
        d->log_path = dup_bytes(head.path, head.path_len);
        d->log_path_len = head.path_len;
        d->log_ua = head.ua != NULL ? dup_bytes(head.ua, head.ua_len) : NULL;
        d->log_ua_len = head.ua_len;
        gettimeofday(&d->began, NULL);
    }
    d->gzip = head.gzip;
    h2o_buffer_consume(&d->sock->input, head.len);
    return 1;
}

static void held_on_read(ag__eio_direct_t *d, const char *err)
{
    if (err != NULL) {
        /* the client dropped its held GET: the session ends, as with h2o's */
        h2o_socket_t *sock = d->sock;
        h2o_socket_read_stop(sock);
        ag__eio_session_t *s = d->session;
        ag__eio_session_addref(s);
        ag__eio_polling_direct_dropped(s, d);
        ag__eio_session_release(s);
        direct_close(d);
        return;
    }
    if (d->sock->input->size != 0)
        h2o_socket_read_stop(d->sock); /* a pipelined request waits for the answer */
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    ag__eio_direct_t *d = sock->data;
    if (d->state == HELD) {
        held_on_read(d, err);
        return;
    }
    if (err != NULL) {
        direct_close(d);
        return;
    }
    if (sock->input->size == 0)
        return; /* woken by a TLS record not complete yet */
    int r = parse(d);
    if (r == 0)
        return;
    if (r < 0) {
        hand_back(d);
        return;
    }
    unlink_timer(d);
    d->state = HELD;
    d->server->stats.polls_direct++;
    if (sock->input->size == 0) {
        shrink_input(sock); /* a quiet held GET keeps no buffer */
    } else {
        h2o_socket_read_stop(sock);
    }
    ag__eio_polling_direct_get(d->session, d);
}

/* --- the answer --- */

static void on_written(h2o_socket_t *sock, const char *err)
{
    ag__eio_direct_t *d = sock->data;
    if (d->log_path != NULL && err == NULL) {
        char ip[64] = "", host[NI_MAXHOST];
        struct sockaddr_storage ss;
        socklen_t sslen = h2o_socket_getpeername(sock, (struct sockaddr *)&ss);
        size_t hl = sslen != 0 ? h2o_socket_getnumerichost((struct sockaddr *)&ss, sslen, host) : SIZE_MAX;
        if (hl == SIZE_MAX || ag_addr_parse(host, hl, NULL, ip, NULL) != 0)
            ip[0] = '\0';
        ag_ops_access_t a = {.method = "GET",
                             .method_len = 3,
                             .path = d->log_path,
                             .path_len = d->log_path_len,
                             .ua = d->log_ua,
                             .ua_len = d->log_ua_len,
                             .ip = ip,
                             .version = 0x101,
                             .status = 200,
                             .bytes = d->log_bytes,
                             .began = d->began};
        ag_ops_access_write(d->server, &a);
    }
    log_free(d);
    ag_eio_buf_dispose(&d->out);
    if (err != NULL || d->server->stopping || d->session == NULL || d->session->closed) {
        direct_close(d);
        return;
    }
    start_reading(d);
}

#define APPEND_LIT(b, s) ag_eio_buf_append(b, s, sizeof(s) - 1)

/* The whole response in d->out: the head h2o's flatten_headers would write for respond_payload's answer. */
static int build(ag__eio_direct_t *d, const char *body, size_t len)
{
    ag_eio_buf_t *b = &d->out;
    b->len = 0;
    ag_eio_buf_t z = {NULL, 0, 0};
    int gz = len >= AG__EIO_GZIP_THRESHOLD && d->gzip && ag__eio_gzip(&z, body, len);
    if (gz) {
        body = z.base;
        len = z.len;
    }
    h2o_context_t *ctx = &d->server->ctx;
    h2o_get_timestamp(ctx, NULL, NULL);
    char num[24], *e = num + sizeof(num), *p = e;
    size_t v = len;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    const ag__eio_direct_info_t *info = d->info;
    const h2o_iovec_t server_name = ctx->globalconf->server_name;
    int ok = ag_eio_buf_reserve(b, 160 + info->cors_len + server_name.len + len) == AG_OK &&
             APPEND_LIT(b, "HTTP/1.1 200 OK\r\nDate: ") == AG_OK &&
             ag_eio_buf_append(b, ctx->_timestamp_cache.value->rfc1123, H2O_TIMESTR_RFC1123_LEN) == AG_OK &&
             APPEND_LIT(b, "\r\nConnection: keep-alive\r\nContent-Length: ") == AG_OK &&
             ag_eio_buf_append(b, p, (size_t)(e - p)) == AG_OK && APPEND_LIT(b, "\r\n") == AG_OK;
    if (ok && server_name.len != 0)
        ok = APPEND_LIT(b, "Server: ") == AG_OK && ag_eio_buf_append(b, server_name.base, server_name.len) == AG_OK &&
             APPEND_LIT(b, "\r\n") == AG_OK;
    ok = ok && ag_eio_buf_append(b, info->cors, info->cors_len) == AG_OK &&
         APPEND_LIT(b, "content-type: text/plain; charset=UTF-8\r\ncache-control: no-store\r\n") == AG_OK &&
         (!gz || APPEND_LIT(b, "content-encoding: gzip\r\n") == AG_OK) && APPEND_LIT(b, "\r\n") == AG_OK &&
         ag_eio_buf_append(b, body, len) == AG_OK;
    ag_eio_buf_dispose(&z);
    d->log_bytes = len;
    return ok ? 0 : -1;
}

void ag__eio_direct_answer(ag__eio_direct_t *d, const char *data, size_t len)
{
    if (data == NULL || build(d, data, len) != 0) {
        /* from the loop rather than from inside whoever answered */
        d->state = WRITING;
        h2o_socket_read_stop(d->sock);
        d->out.len = 0;
        log_free(d);
        h2o_socket_write(d->sock, NULL, 0, on_written);
        return;
    }
    d->state = WRITING;
    h2o_socket_read_stop(d->sock);
    h2o_timeout_link(d->server->loop, &ag__eio_node(d->server)->keepalive, &d->timer);
    ag__eio_node_t *n = ag__eio_node(d->server);
    if (ag__eio_batching(n) && batch_batchable(&d->batch)) {
        /* a fan-out answers hundreds of GETs in this iteration: they go out together */
        d->batch.sock = d->sock;
        ag__eio_batch_add(n, &d->batch);
        return;
    }
    h2o_iovec_t iov = h2o_iovec_init(d->out.base, d->out.len);
    h2o_socket_write(d->sock, &iov, 1, on_written);
}

/* h2o would write it now: plain TCP (h2o encrypts in its write), no write in flight, an answer waiting. */
static int batch_batchable(ag__eio_batched_t *e)
{
    ag__eio_direct_t *d = H2O_STRUCT_FROM_MEMBER(ag__eio_direct_t, batch, e);
    return d->sock != NULL && d->sock->ssl == NULL && !h2o_socket_is_writing(d->sock) && d->out.len != 0;
}

/* After the batch: an answer that went out whole is a completed write; the rest (a full socket, an error, not taken)
 * goes to h2o's write, which meets the full buffer or the error as it would have. */
static void batch_after(ag__eio_batched_t *e)
{
    ag__eio_direct_t *d = H2O_STRUCT_FROM_MEMBER(ag__eio_direct_t, batch, e);
    if (d->out.len == 0) {
        on_written(d->sock, NULL);
        return;
    }
    h2o_iovec_t iov = h2o_iovec_init(d->out.base, d->out.len);
    h2o_socket_write(d->sock, &iov, 1, on_written);
}

void ag__eio_direct_node_dispose(ag__eio_node_t *n)
{
    /* the loop is not run again: what waits for h2o (a taking write) stays with it, the rest closes */
    h2o_linklist_t *next;
    for (h2o_linklist_t *l = n->directs.next; l != &n->directs; l = next) {
        next = l->next;
        ag__eio_direct_t *d = H2O_STRUCT_FROM_MEMBER(ag__eio_direct_t, link, l);
        if (d->sock != NULL && d->state != WRITING)
            direct_close(d);
    }
}
