/*
 * Listening and accepting (server_internal.h): the node's connection cap, the per-address cap, running out of
 * descriptors; the listener a process's workers share and each worker's private one; the public listener's
 * connections handed round the workers.
 */
#define _GNU_SOURCE /* accept4 */
#include "server_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "cluster.h"
#include "limit.h"

/* Connections taken per readiness of the listener: bounds the time one loop iteration spends accepting. */
#define ACCEPT_BATCH 64
/* Connections accepted for a worker that has not taken them yet: beyond, the acceptor serves them (a worker whose loop
 * is stuck is not given more). */
#define HANDED_MAX 1024

#define TURN_AWAY_503_BODY "too many connections"
#define TURN_AWAY_429_BODY "too many connections from this address"
#define TURN_AWAY(status, body)                                                                                                    \
    "HTTP/1.1 " status "\r\nContent-Type: text/plain\r\nContent-Length: " body "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
static const char turn_away_503[] = TURN_AWAY("503 Service Unavailable", "20") TURN_AWAY_503_BODY;
static const char turn_away_429[] = TURN_AWAY("429 Too Many Requests", "38") TURN_AWAY_429_BODY;

/* Stops reading the listener (pending connections wait in the kernel's backlog) until a connection closes or 100 ms
 * passed. A listener left readable at EMFILE would wake the loop at once, forever. */
static void accept_pause(ag_server_t *s)
{
    if (!s->accept_paused) {
        s->accept_paused = 1;
        ag__server_taking(s, 0); /* the other workers keep what they accept meanwhile */
        if (s->listener != NULL)
            h2o_socket_read_stop(s->listener);
        if (s->private_listener != NULL)
            h2o_socket_read_stop(s->private_listener);
    }
    if (h2o_timeout_is_linked(&s->accept_resume))
        h2o_timeout_unlink(&s->accept_resume);
    h2o_timeout_link(s->loop, &s->ctx.hundred_ms_timeout, &s->accept_resume);
}

void ag__server_on_accept_resume(h2o_timeout_entry_t *entry)
{
    ag_server_t *s = H2O_STRUCT_FROM_MEMBER(ag_server_t, accept_resume, entry);
    if (!s->accept_paused)
        return;
    /* a stopping worker still takes what the others forward to its sessions */
    if (s->listener != NULL && !s->stopping) {
        h2o_socket_read_start(s->listener, ag__server_on_accept);
        ag__server_taking(s, 1);
    }
    if (s->private_listener != NULL)
        h2o_socket_read_start(s->private_listener, ag__server_on_accept);
    s->accept_paused = 0;
}

static void on_tcp_close(void *data)
{
    ag_peer_t *p = data;
    ag_server_t *s = p->owner->server;
    ag_limits_tcp_closed(p);
    if (s->accept_paused) {
        /* room again: look at the backlog on the next iteration */
        if (h2o_timeout_is_linked(&s->accept_resume))
            h2o_timeout_unlink(&s->accept_resume);
        h2o_timeout_link(s->loop, &s->ctx.zero_timeout, &s->accept_resume);
    }
}

/* Answers a connection the node will not serve and closes it (HTTP/1 clients read the status; over TLS there is only
 * the close). What the client already sent is read away first, so the close is a FIN, not a reset that could
 * overtake the answer. Costs one descriptor for the duration of the call. */
static void turn_away(ag_server_t *s, int fd, int per_address)
{
    s->stats.tcp_refused++;
    if (!s->config->servers.web.secure) {
        const char *r = per_address ? turn_away_429 : turn_away_503;
        size_t n = per_address ? sizeof(turn_away_429) - 1 : sizeof(turn_away_503) - 1;
        char sink[4096];
        for (int i = 0; i < 4 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
            ;
        if (send(fd, r, n, MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
            shutdown(fd, SHUT_WR);
    }
    close(fd);
}

/* EMFILE/ENFILE: the backlog's connections get their 503 through the descriptor held in reserve, up to budget. */
static void turn_away_with_reserve(ag_server_t *s, int lfd, int budget)
{
    while (budget-- > 0 && s->reserve_fd >= 0) {
        close(s->reserve_fd);
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd != -1)
            turn_away(s, fd, 0);
        s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd == -1)
            break;
    }
}

/* Serves one accepted connection on s's loop, or turns it away at the caps. *at_cap is set when s is at its connection
 * cap. */
static void take(ag_server_t *s, int fd, struct sockaddr_storage *ss, socklen_t sslen, int private, int *at_cap)
{
    if (s->limits->tcp_conns >= s->limits->max_tcp) {
        turn_away(s, fd, 0);
        *at_cap = 1;
        return;
    }
    ag_peer_t *peer = ag_limits_tcp_open(s->limits, (struct sockaddr *)ss);
    if (peer == NULL) {
        char ip[64];
        ag_limits_sockaddr_text((struct sockaddr *)ss, ip);
        ag_log_limited(AG_LOG_WARN, "server", NULL, "%s: at servers.web.maxConnectionsPerIp (%d); turned away", ip,
                       s->config->servers.web.maxConnectionsPerIp);
        turn_away(s, fd, 1);
        return;
    }
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    h2o_socket_t *sock = h2o_evloop_socket_create(s->loop, fd, H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION);
    h2o_socket_setpeername(sock, (struct sockaddr *)ss, sslen);
    sock->on_close.cb = on_tcp_close;
    sock->on_close.data = peer;
    h2o_accept(private ? &s->private_accept_ctx : &s->accept_ctx, sock);
}

static void at_cap_pause(ag_server_t *s)
{
    ag_log_limited(AG_LOG_WARN, "server", NULL, "at servers.web.maxConnections (%zu): turning new connections away",
                   s->limits->max_tcp);
    accept_pause(s);
}

/* The public listener's connections go round a process's workers, whichever loop woke first to accept them: one
 * loop's accept is not left to take most of them. The acceptor keeps a connection that is its own turn's, or whose
 * worker does not read the listener now (starting, stopping), or has HANDED_MAX waiting already. 1: handed to worker
 * *to (woken once the accept batch is done). */
static int hand(ag_server_t *s, int fd, struct sockaddr_storage *ss, socklen_t sslen, size_t *to)
{
    ag_workers_t *w = s->workers;
    if (w == NULL || w->n < 2)
        return 0;
    size_t i = atomic_fetch_add(&w->next_accept, 1) % w->n;
    if (i == s->worker || !atomic_load(&w->taking[i]))
        return 0;
    ag__handed_t *h = malloc(sizeof(*h));
    if (h == NULL)
        return 0;
    h->fd = fd;
    h->sslen = sslen;
    memcpy(&h->ss, ss, sizeof(h->ss));
    pthread_mutex_lock(&w->lock);
    int full = w->num_handed[i] >= HANDED_MAX;
    if (!full) {
        h->next = w->handed[i];
        w->handed[i] = h;
        w->num_handed[i]++;
    }
    pthread_mutex_unlock(&w->lock);
    if (full) {
        free(h);
        return 0;
    }
    *to = i;
    return 1;
}

void ag__server_on_accept(h2o_socket_t *listener, const char *err)
{
    ag_server_t *s = listener->data;
    if (err != NULL)
        return;
    int lfd = h2o_socket_get_fd(listener), at_cap = 0, private = listener == s->private_listener;
    unsigned char woken[AG_CONFIG_WORKERS_MAX] = {0};
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK)
                break;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO)
                continue; /* that one connection is gone; the next may be fine */
            ag_log_limited(AG_LOG_ERROR, "server", NULL, "accept: %s; new connections wait until descriptors are free",
                           strerror(e));
            if (e == EMFILE || e == ENFILE)
                turn_away_with_reserve(s, lfd, ACCEPT_BATCH - i);
            accept_pause(s);
            break;
        }
        size_t to;
        if (!private && hand(s, fd, &ss, sslen, &to)) {
            woken[to] = 1;
            continue;
        }
        take(s, fd, &ss, sslen, private, &at_cap);
    }
    for (size_t i = 0; s->workers != NULL && i < s->workers->n; i++)
        if (woken[i])
            ag__server_wake(s->workers, i);
    if (at_cap)
        at_cap_pause(s);
}

void ag__server_taking(ag_server_t *s, int on)
{
    if (s->workers != NULL)
        atomic_store(&s->workers->taking[s->worker], on);
}

/* The connections handed to s, in the order they were accepted. */
void ag__server_take_handed(ag_server_t *s)
{
    ag_workers_t *w = s->workers;
    pthread_mutex_lock(&w->lock);
    ag__handed_t *h = w->handed[s->worker], *in_order = NULL;
    w->handed[s->worker] = NULL;
    w->num_handed[s->worker] = 0;
    pthread_mutex_unlock(&w->lock);
    while (h != NULL) {
        ag__handed_t *next = h->next;
        h->next = in_order;
        in_order = h;
        h = next;
    }
    int at_cap = 0;
    while (in_order != NULL) {
        ag__handed_t *next = in_order->next;
        take(s, in_order->fd, &in_order->ss, in_order->sslen, 0, &at_cap);
        free(in_order);
        in_order = next;
    }
    if (at_cap)
        at_cap_pause(s);
}

void ag__server_handed_drop(ag_workers_t *w)
{
    for (size_t i = 0; i < w->n; i++) {
        while (w->handed[i] != NULL) {
            ag__handed_t *h = w->handed[i];
            w->handed[i] = h->next;
            close(h->fd);
            free(h);
        }
        w->num_handed[i] = 0;
    }
}

/* A listening socket on bind_ip:port; -1 with one line in errbuf. */
static int bind_listener(const char *bind_ip, int port, char *errbuf, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, bind_ip, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sslen = sizeof(*sin);
    } else if (inet_pton(AF_INET6, bind_ip, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        sslen = sizeof(*sin6);
    } else {
        snprintf(errbuf, errlen, "servers.web.bindIP: not an IP address: %s", bind_ip);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, SOMAXCONN) != 0) {
        snprintf(errbuf, errlen, "cannot listen on %s:%d: %s", bind_ip, port, strerror(errno));
        if (fd != -1)
            close(fd);
        return -1;
    }
    return fd;
}

int ag_server_listen(ag_server_t *s, char *errbuf, size_t errlen)
{
    if (s->listener != NULL)
        return 0;
    const char *bind_ip = s->config->servers.web.bindIP;
    int fd;
    if (s->workers != NULL && s->worker != 0) {
        /* one public socket for the process, as h2o's own server shares it: each worker polls a descriptor of its own
         * and runs its own accept loop (its limits, its pauses); whoever accepts first hands the connection to the
         * worker whose turn it is (hand()) */
        ag_server_t *first = s->workers->nodes[0];
        if (first->listener == NULL || (fd = fcntl(h2o_socket_get_fd(first->listener), F_DUPFD_CLOEXEC, 0)) == -1) {
            snprintf(errbuf, errlen, "cannot share the listener with worker %u: %s", s->worker, strerror(errno));
            return AG_EIO;
        }
    } else if ((fd = bind_listener(bind_ip, s->config->servers.web.port, errbuf, errlen)) == -1) {
        return strncmp(errbuf, "servers.web.bindIP", 18) == 0 ? AG_ECONFIG : AG_EIO;
    }
    s->listener = h2o_evloop_socket_create(s->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    s->listener->data = s;
    if (s->workers != NULL) {
        /* where the other workers forward this one's sessions: its own port, so that a request reaches this loop */
        if ((fd = bind_listener(bind_ip, 0, errbuf, errlen)) == -1)
            return AG_EIO;
        s->private_listener = h2o_evloop_socket_create(s->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
        s->private_listener->data = s;
    }
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ag_cluster_listening(s);
    return 0;
}
