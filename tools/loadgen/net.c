/*
 * Sockets and client protocols: each client has a main socket (WebSocket, long-poll GET or event stream) and, for the
 * HTTP transports, a keep-alive POST socket. This file turns bytes into session-level messages (net_on_message in
 * worker.c) and messages into bytes (net_send_message). Writes are buffered and flushed once per epoll batch.
 */
#include "net.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define IN_MIN 4096

lg_net_t lg_net;

static int grow(uint8_t **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : IN_MIN;
    while (c < need)
        c *= 2;
    uint8_t *q = realloc(*p, c);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static void mark_dirty(lg_sock_t *s)
{
    if (s->dirty)
        return;
    s->dirty = 1;
    s->next_dirty = lg_net.dirty;
    lg_net.dirty = s;
}

void net_write(lg_sock_t *s, const void *data, size_t n)
{
    if (grow(&s->out, &s->out_cap, s->out_len + n) != 0)
        abort();
    memcpy(s->out + s->out_len, data, n);
    s->out_len += n;
    if (s->state != LG_S_CONNECTING && s->fd >= 0)
        mark_dirty(s);
}

static void update_events(lg_sock_t *s)
{
    uint32_t ev = EPOLLIN | (s->want_out ? EPOLLOUT : 0);
    struct epoll_event e = {.events = ev, .data.ptr = s};
    epoll_ctl(lg_net.ep, EPOLL_CTL_MOD, s->fd, &e);
}

static void flush(lg_sock_t *s)
{
    while (s->out_off < s->out_len) {
        ssize_t w = write(s->fd, s->out + s->out_off, s->out_len - s->out_off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                if (!s->want_out) {
                    s->want_out = 1;
                    update_events(s);
                }
                return;
            }
            net_sock_failed(s, "write");
            return;
        }
        s->out_off += (size_t)w;
    }
    s->out_off = s->out_len = 0;
    if (s->want_out) {
        s->want_out = 0;
        update_events(s);
    }
}

void net_flush_dirty(void)
{
    while (lg_net.dirty != NULL) {
        lg_sock_t *s = lg_net.dirty;
        lg_net.dirty = s->next_dirty;
        s->dirty = 0;
        if (s->fd >= 0 && s->state != LG_S_CONNECTING)
            flush(s);
    }
}

static void sock_close(lg_sock_t *s)
{
    if (s->fd >= 0) {
        epoll_ctl(lg_net.ep, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
        s->fd = -1;
        lg_net.open_fds--;
    }
    s->state = LG_S_CLOSED;
    s->in_len = s->out_len = s->out_off = 0;
    s->want_out = 0;
    s->busy = 0;
}

void net_sock_free(lg_sock_t *s)
{
    sock_close(s);
    free(s->in);
    free(s->out);
    free(s->body);
    lg_sse_free(&s->sse);
    s->in = s->out = s->body = NULL;
    s->in_cap = s->out_cap = s->body_cap = 0;
}

void net_sock_failed(lg_sock_t *s, const char *why)
{
    lg_client_t *c = s->cl;
    int was_open = s->state != LG_S_CLOSED;
    sock_close(s);
    if (!was_open)
        return;
    /* a keep-alive POST socket that the server closed between requests is simply reopened on the next POST */
    if (s == &c->post && !c->post_inflight)
        return;
    if ((c->transport == LG_T_NCHAN_LP) && s == &c->main && c->state == LG_C_READY && s->resp_bytes == 0) {
        net_connect(s); /* nginx ends keep-alive connections now and then: re-poll with the same cursor */
        return;
    }
    worker_client_failed(c, why);
}

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static const lg_target_t *target_of(const lg_client_t *c)
{
    return &lg_net.o->targets[c->target];
}

int net_connect(lg_sock_t *s)
{
    const lg_opts_t *o = lg_net.o;
    const lg_target_t *t = target_of(s->cl);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (o->nsources > 0) {
        /* Without IP_BIND_ADDRESS_NO_PORT, bind() would reserve a port for the source address alone (~28k in all);
         * with it the port is picked at connect(), unique per (source, destination) pair only. */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        uint32_t k = lg_net.src_next[s->cl->target]++ % (uint32_t)o->nsources;
        struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(ntohl(o->source_base) + k)};
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)t->port), .sin_addr.s_addr = t->addr};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    s->fd = fd;
    s->state = LG_S_CONNECTING;
    s->want_out = 1;
    s->resp_bytes = 0;
    lg_net.open_fds++;
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.ptr = s};
    epoll_ctl(lg_net.ep, EPOLL_CTL_ADD, fd, &e);
    return 0;
}

/* ---- requests ---- */

static const char *eio_name(int t)
{
    return t == LG_T_SSE ? "sse" : t == LG_T_POLLING ? "polling" : "websocket";
}

static void start_request(lg_sock_t *s)
{
    lg_client_t *c = s->cl;
    const lg_opts_t *o = lg_net.o;
    const lg_target_t *t = target_of(c);
    char req[1024];
    int n = 0;
    const char *path = c->is_pub ? o->pub_path : o->paths[c->transport];
    const char *sep = strchr(path, '?') ? "&" : "?";
    memset(&s->head, 0, sizeof(s->head));
    s->have_head = 0;
    s->resp_bytes = 0;
    memset(&s->ch, 0, sizeof(s->ch));
    s->body_len = 0;
    switch (c->transport) {
    case LG_T_PRIMUS:
    case LG_T_RAW_WS:
    case LG_T_EIO_WS:
        n = snprintf(req, sizeof(req),
                     "GET %s%s%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " WS_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path, c->transport == LG_T_EIO_WS ? sep : "", c->transport == LG_T_EIO_WS ? "EIO=4&transport=websocket" : "",
                     t->host, t->port);
        break;
    case LG_T_POLLING:
    case LG_T_SSE:
        n = snprintf(req, sizeof(req), "GET %s%sEIO=4&transport=%s%s%s HTTP/1.1\r\nHost: %s:%d\r\n%s\r\n", path, sep,
                     eio_name(c->transport), c->sid[0] ? "&sid=" : "", c->sid, t->host, t->port,
                     c->transport == LG_T_SSE ? "Accept: text/event-stream\r\n" : "");
        break;
    case LG_T_NCHAN_LP:
        n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s%s%s%s%s\r\n", path, t->host, t->port,
                     c->last_modified[0] ? "If-Modified-Since: " : "", c->last_modified, c->last_modified[0] ? "\r\n" : "",
                     c->etag[0] ? "If-None-Match: " : "", c->etag, c->etag[0] ? "\r\n" : "");
        break;
    case LG_T_NCHAN_SSE:
        n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n\r\n", path, t->host,
                     t->port);
        break;
    default:
        return;
    }
    s->busy = 1;
    net_write(s, req, (size_t)n);
}

/* Sends what waits in c->post_pending as one POST (engine.io payload, or a publish body) when none is in flight. */
static void post_kick(lg_client_t *c)
{
    lg_sock_t *s = &c->post;
    if (c->post_inflight || c->post_pending_len == 0)
        return;
    if (s->state == LG_S_CLOSED || s->fd < 0) {
        if (net_connect(s) != 0) {
            worker_client_failed(c, "connect");
            return;
        }
    }
    const lg_opts_t *o = lg_net.o;
    const lg_target_t *t = target_of(c);
    char hdr[512];
    int n;
    if (c->transport == LG_T_HTTP_PUB) {
        n = snprintf(hdr, sizeof(hdr), "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: %zu\r\n\r\n", o->pub_path, t->host,
                     t->port, c->post_pending_len);
    } else {
        const char *path = c->is_pub ? o->pub_path : o->paths[c->transport];
        n = snprintf(hdr, sizeof(hdr),
                     "POST %s%sEIO=4&transport=%s&sid=%s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: text/plain;charset=UTF-8\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     path, strchr(path, '?') ? "&" : "?", eio_name(c->transport), c->sid, t->host, t->port, c->post_pending_len);
    }
    memset(&s->head, 0, sizeof(s->head));
    s->have_head = 0;
    s->resp_bytes = 0;
    memset(&s->ch, 0, sizeof(s->ch));
    s->body_len = 0;
    net_write(s, hdr, (size_t)n);
    net_write(s, c->post_pending, c->post_pending_len);
    c->post_pending_len = 0;
    c->post_inflight = 1;
}

static void post_append(lg_client_t *c, const void *data, size_t n, int sep)
{
    size_t need = c->post_pending_len + n + 1;
    if (grow(&c->post_pending, &c->post_pending_cap, need) != 0)
        abort();
    if (sep && c->post_pending_len > 0)
        c->post_pending[c->post_pending_len++] = 0x1e;
    memcpy(c->post_pending + c->post_pending_len, data, n);
    c->post_pending_len += n;
    post_kick(c);
}

static void ws_send(lg_sock_t *s, int opcode, const char *prefix, const void *data, size_t n)
{
    uint8_t hdr[14];
    size_t plen = prefix ? strlen(prefix) : 0;
    size_t h = lg_ws_header(hdr, opcode, n + plen);
    net_write(s, hdr, h);
    if (plen)
        net_write(s, prefix, plen);
    net_write(s, data, n);
}

void net_send_message(lg_client_t *c, const char *data, size_t n)
{
    switch (c->transport) {
    case LG_T_PRIMUS:
    case LG_T_RAW_WS:
        ws_send(&c->main, 1, NULL, data, n);
        break;
    case LG_T_EIO_WS:
        ws_send(&c->main, 1, "4", data, n);
        break;
    case LG_T_POLLING:
    case LG_T_SSE: {
        if (grow(&lg_net.scratch, &lg_net.scratch_cap, n + 1) != 0)
            abort();
        lg_net.scratch[0] = '4';
        memcpy(lg_net.scratch + 1, data, n);
        post_append(c, lg_net.scratch, n + 1, 1);
        break;
    }
    case LG_T_HTTP_PUB:
        post_append(c, data, n, 0);
        break;
    default:
        break;
    }
}

static void send_eio_packet(lg_client_t *c, const char *pkt)
{
    if (c->transport == LG_T_EIO_WS)
        ws_send(&c->main, 1, NULL, pkt, strlen(pkt));
    else
        post_append(c, pkt, strlen(pkt), 1);
}

/* ---- incoming ---- */

static void eio_packet(lg_client_t *c, const char *p, size_t n)
{
    if (n == 0)
        return;
    switch (p[0]) {
    case '0': {
        const char *sid = memmem(p, n, "\"sid\":\"", 7);
        if (sid != NULL) {
            sid += 7;
            const char *e = memchr(sid, '"', n - (size_t)(sid - p));
            size_t l = e ? (size_t)(e - sid) : 0;
            if (l >= sizeof(c->sid))
                l = sizeof(c->sid) - 1;
            memcpy(c->sid, sid, l);
            c->sid[l] = '\0';
        }
        worker_on_open(c);
        break;
    }
    case '2':
        send_eio_packet(c, "3");
        break;
    case '4':
        worker_on_message(c, p + 1, n - 1);
        break;
    case '1':
        worker_client_failed(c, "engine.io close packet");
        break;
    default:
        break;
    }
}

static void eio_payload(lg_client_t *c, const char *p, size_t n)
{
    const char *end = p + n;
    while (p < end && c->state != LG_C_DEAD) {
        const char *rs = memchr(p, 0x1e, (size_t)(end - p));
        size_t l = rs ? (size_t)(rs - p) : (size_t)(end - p);
        eio_packet(c, p, l);
        p += l + (rs ? 1 : 0);
    }
}

static void on_sse_event(void *ud, const char *data, size_t len, const char *id)
{
    (void)id;
    lg_client_t *c = ud;
    if (c->transport == LG_T_SSE)
        eio_payload(c, data, len);
    else
        worker_on_message(c, data, len);
}

static void ws_frames(lg_sock_t *s)
{
    lg_client_t *c = s->cl;
    size_t off = 0;
    while (s->fd >= 0) {
        lg_ws_frame_t f;
        int r = lg_ws_parse(s->in + off, s->in_len - off, &f);
        if (r < 0) {
            net_sock_failed(s, "bad websocket frame");
            return;
        }
        if (r == 0 || s->in_len - off - f.hdr_len < f.len)
            break;
        const char *payload = (const char *)s->in + off + f.hdr_len;
        size_t plen = (size_t)f.len;
        off += f.hdr_len + plen;
        if (f.opcode == 1 || f.opcode == 2) {
            if (!f.fin) {
                lg_net.errors++; /* the servers under test send small frames whole */
                continue;
            }
            if (c->transport == LG_T_EIO_WS)
                eio_packet(c, payload, plen);
            else
                worker_on_message(c, payload, plen);
        } else if (f.opcode == 9) {
            ws_send(s, 10, NULL, payload, plen);
        } else if (f.opcode == 8) {
            net_sock_failed(s, "websocket closed by the server");
            return;
        }
    }
    if (s->fd >= 0 && off > 0) {
        memmove(s->in, s->in + off, s->in_len - off);
        s->in_len -= off;
    }
}

/* A whole HTTP response body arrived (long-poll GET, POST answer). */
static void on_body(lg_sock_t *s, const char *body, size_t n)
{
    lg_client_t *c = s->cl;
    int status = s->head.status;
    s->busy = 0;
    if (s == &c->post) {
        c->post_inflight = 0;
        if (status >= 300) {
            worker_client_failed(c, "POST refused");
            return;
        }
        if (c->transport == LG_T_HTTP_PUB)
            worker_on_published(c);
        post_kick(c);
        return;
    }
    if (c->transport == LG_T_POLLING) {
        if (status != 200) {
            worker_client_failed(c, "polling GET refused");
            return;
        }
        worker_on_poll_answer();
        eio_payload(c, body, n);
        if (c->state != LG_C_DEAD)
            start_request(s);
    } else if (c->transport == LG_T_NCHAN_LP) {
        if (s->head.last_modified[0])
            memcpy(c->last_modified, s->head.last_modified, sizeof(c->last_modified));
        if (s->head.etag[0])
            memcpy(c->etag, s->head.etag, sizeof(c->etag));
        if (status == 200) {
            worker_on_poll_answer();
            worker_on_message(c, body, n);
        }
        start_request(s);
    }
}

static int is_stream(lg_sock_t *s)
{
    return s == &s->cl->main && (s->cl->transport == LG_T_SSE || s->cl->transport == LG_T_NCHAN_SSE);
}

static void http_input(lg_sock_t *s)
{
    lg_client_t *c = s->cl;
    for (;;) {
        if (s->fd < 0)
            return;
        if (!s->have_head) {
            int r = lg_http_parse_head((const char *)s->in, s->in_len, &s->head);
            if (r < 0) {
                net_sock_failed(s, "bad HTTP response");
                return;
            }
            if (r == 0)
                return;
            s->have_head = 1;
            memmove(s->in, s->in + s->head.head_len, s->in_len - s->head.head_len);
            s->in_len -= s->head.head_len;
            if (s->head.status == 101) {
                s->state = LG_S_WS;
                worker_on_upgraded(c);
                ws_frames(s);
                return;
            }
            if (is_stream(s)) {
                if (s->head.status != 200) {
                    net_sock_failed(s, "event stream refused");
                    return;
                }
                s->state = LG_S_STREAM;
                worker_on_stream(c);
            }
        }
        if (s->state == LG_S_STREAM) {
            size_t out = s->in_len;
            long used = (long)s->in_len;
            if (s->head.chunked && (used = lg_chunked_decode(&s->ch, s->in, s->in_len, &out)) < 0) {
                net_sock_failed(s, "bad chunked body");
                return;
            }
            if (lg_sse_feed(&s->sse, (const char *)s->in, out, on_sse_event, c) != 0)
                abort();
            if (s->fd >= 0) {
                memmove(s->in, s->in + used, s->in_len - (size_t)used);
                s->in_len -= (size_t)used;
            }
            return;
        }
        if (s->head.chunked) {
            size_t out;
            long used = lg_chunked_decode(&s->ch, s->in, s->in_len, &out);
            if (used < 0) {
                net_sock_failed(s, "bad chunked body");
                return;
            }
            if (grow(&s->body, &s->body_cap, s->body_len + out + 1) != 0)
                abort();
            memcpy(s->body + s->body_len, s->in, out);
            s->body_len += out;
            memmove(s->in, s->in + used, s->in_len - (size_t)used);
            s->in_len -= (size_t)used;
            if (s->ch.state != 4)
                return;
            s->have_head = 0;
            on_body(s, (const char *)s->body, s->body_len);
        } else {
            size_t cl = s->head.content_length < 0 ? 0 : (size_t)s->head.content_length;
            if (s->in_len < cl)
                return;
            s->have_head = 0;
            /* the body is handled in place, then dropped; a new request may append to `in` only after that */
            if (grow(&s->body, &s->body_cap, cl + 1) != 0)
                abort();
            memcpy(s->body, s->in, cl);
            memmove(s->in, s->in + cl, s->in_len - cl);
            s->in_len -= cl;
            on_body(s, (const char *)s->body, cl);
        }
        if (s->in_len == 0)
            return;
    }
}

void net_on_event(lg_sock_t *s, uint32_t events)
{
    if (s->state == LG_S_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof(err);
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
            net_sock_failed(s, "connect failed");
            return;
        }
        s->state = LG_S_HTTP;
        if (s == &s->cl->main) {
            start_request(s);
            if (s->cl->transport == LG_T_NCHAN_LP)
                worker_on_open(s->cl); /* the subscription is the held GET itself */
        }
        if (s->out_len > 0)
            flush(s);
        else if (s->want_out) {
            s->want_out = 0;
            update_events(s);
        }
        return;
    }
    if (events & EPOLLOUT)
        flush(s);
    if (s->fd < 0 || !(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    for (;;) {
        if (grow(&s->in, &s->in_cap, s->in_len + IN_MIN) != 0)
            abort();
        ssize_t r = read(s->fd, s->in + s->in_len, s->in_cap - s->in_len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            net_sock_failed(s, r == 0 ? "closed by the server" : "read error");
            return;
        }
        s->in_len += (size_t)r;
        s->resp_bytes += (size_t)r;
        if (s->state == LG_S_WS)
            ws_frames(s);
        else
            http_input(s);
        if (s->fd < 0 || s->in_len < s->in_cap)
            return;
    }
}

int net_client_start(lg_client_t *c)
{
    c->main.cl = c;
    c->post.cl = c;
    c->main.fd = c->post.fd = -1;
    c->state = LG_C_CONNECTING;
    if (c->transport == LG_T_HTTP_PUB) {
        c->main.state = LG_S_CLOSED;
        worker_on_open(c);
        return 0;
    }
    return net_connect(&c->main);
}

void net_client_close(lg_client_t *c)
{
    net_sock_free(&c->main);
    net_sock_free(&c->post);
    free(c->post_pending);
    c->post_pending = NULL;
    c->post_pending_len = c->post_pending_cap = 0;
}

void net_client_shut(lg_client_t *c)
{
    sock_close(&c->main);
    sock_close(&c->post);
    c->post_inflight = 0;
}
