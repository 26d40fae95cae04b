/*
 * The server object: builds a node with its modules in order, listens, runs, stops, destroys; and the public node API
 * (include/actiongate.h). This is the only file that knows every module: the others see the node through node.h.
 */
#define _GNU_SOURCE /* accept4 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <malloc.h>
#include "actiongate.h"
#include "actions.h"
#include "ahrpc.h"
#include "clientjs.h"
#include "cluster.h"
#include "conn.h"
#include "eio.h"
#include "http.h"
#include "limit.h"
#include "modules.h"
#include "ops.h"
#include "primus.h"
#include "push.h"
#include "rooms.h"
#include "session.h"
#include "socketio.h"
#include "token.h"
#include "upstream.h"
#include "backend.h"
#include "scripts.h"
#include "serverapi.h"
#include "static.h"
#include "webapi.h"
#include "ws.h"

/* Connections taken per readiness of the listener: bounds the time one loop iteration spends accepting. */
#define ACCEPT_BATCH 64
/* Descriptors kept out of the automatic connection cap: files being served, the store's sockets, the signalfd, the
 * reserve descriptor, forwarded requests' upstream sockets. */
#define FD_RESERVE 64

#define TURN_AWAY_503_BODY "too many connections"
#define TURN_AWAY_429_BODY "too many connections from this address"
#define TURN_AWAY(status, body)                                                                                                    \
    "HTTP/1.1 " status "\r\nContent-Type: text/plain\r\nContent-Length: " body "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
static const char turn_away_503[] = TURN_AWAY("503 Service Unavailable", "20") TURN_AWAY_503_BODY;
static const char turn_away_429[] = TURN_AWAY("429 Too Many Requests", "38") TURN_AWAY_429_BODY;

static void on_accept_resume(h2o_timeout_entry_t *entry);

/* --- building the node --- */

static int setup_tls(ag_server_t *s, char *errbuf, size_t errlen)
{
    const ag_config_t *cfg = s->config;
    s->ssl_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(s->ssl_ctx, TLS1_2_VERSION);
    /* Idle TLS connections keep no read/write buffers. */
    SSL_CTX_set_mode(s->ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(s->ssl_ctx, cfg->servers.web.certFile) != 1) {
        snprintf(errbuf, errlen, "servers.web.certFile: cannot load %s", cfg->servers.web.certFile);
        return AG_ECONFIG;
    }
    if (SSL_CTX_use_PrivateKey_file(s->ssl_ctx, cfg->servers.web.keyFile, SSL_FILETYPE_PEM) != 1) {
        snprintf(errbuf, errlen, "servers.web.keyFile: cannot load %s", cfg->servers.web.keyFile);
        return AG_ECONFIG;
    }
    if (cfg->servers.web.http2)
        h2o_ssl_register_alpn_protocols(s->ssl_ctx, h2o_http2_alpn_protocols);
    s->accept_ctx.ssl_ctx = s->ssl_ctx;
    return 0;
}

/* An installation's <prefix>/share/actiongate/<sub>, found from the binary (<prefix>/bin/actiongate) whatever the
 * prefix, when it is there: an installed binary uses its own files, a binary in a build tree the sources'. */
static int installed_dir(const char *sub, char *out, size_t len)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return 0;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return 0;
    *slash = '\0';
    int w = snprintf(out, len, "%s/../share/actiongate/%s", exe, sub);
    return w > 0 && (size_t)w < len && access(out, R_OK | X_OK) == 0;
}

static void set_dir(char *dst, size_t len, const char *dir)
{
    char *real = realpath(dir, NULL);
    snprintf(dst, len, "%s", real != NULL ? real : dir);
    free(real);
}

/* servers.web.publicDir, else the demo; the client templates from $AG_CLIENT_TEMPLATES, else as the demo. */
static void resolve_dirs(ag_server_t *s)
{
    char installed[4096];
    const char *dir = s->config->servers.web.publicDir;
    if (dir[0] == '\0')
        dir = installed_dir("public", installed, sizeof(installed)) ? installed : AG_SOURCE_DIR "/client/public";
    set_dir(s->public_dir, sizeof(s->public_dir), dir);
    dir = getenv("AG_CLIENT_TEMPLATES");
    if (dir == NULL || dir[0] == '\0')
        dir = installed_dir("client", installed, sizeof(installed)) ? installed : AG_SOURCE_DIR "/client";
    set_dir(s->client_dir, sizeof(s->client_dir), dir);
}

static void register_static(ag_server_t *s)
{
    const ag_config_t *cfg = s->config;
    char path[256];
    snprintf(path, sizeof(path), "/%s", cfg->servers.web.urlPathForFiles);
    h2o_expires_args_t expires = {H2O_EXPIRES_MODE_MAX_AGE, {.max_age = (uint64_t)cfg->servers.web.flatFileCacheDuration}};
    h2o_pathconf_t *pc = ag_server_register_path(s, path);
    ag_static_register_dir(pc, s->public_dir);
    h2o_expires_register(pc, &expires);
    pc = ag_server_register_path(s, "/");
    ag_static_register_dir(pc, s->public_dir);
    h2o_expires_register(pc, &expires);
}

/* servers.web.maxConnections, or (0, or more than the descriptors allow) the descriptor limit minus a reserve. */
static size_t connection_cap(const ag_config_t *cfg)
{
    struct rlimit rl;
    size_t fds = 1u << 20;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < fds)
        fds = (size_t)rl.rlim_cur;
    size_t room = fds > 2 * FD_RESERVE ? fds - FD_RESERVE : fds / 2;
    size_t want = (size_t)cfg->servers.web.maxConnections;
    if (want > room)
        ag_log(AG_LOG_WARN, "server", NULL, "servers.web.maxConnections %zu: the descriptor limit (%zu) allows %zu; using that",
               want, fds, room);
    return want == 0 || want > room ? room : want;
}

static int create_store(ag_server_t *s, char *errbuf, size_t errlen)
{
    const ag_config_t *cfg = s->config;
    if (cfg->redis.url[0] != '\0') {
        ag_store_redis_options_t ro = {.url = cfg->redis.url,
                                       .prefix = cfg->redis.prefix,
                                       .node_id = s->node_id,
                                       .connect_timeout_ms = (uint64_t)cfg->redis.connectTimeout,
                                       .command_timeout_ms = (uint64_t)cfg->redis.commandTimeout,
                                       .node_ttl_ms = (uint64_t)cfg->redis.nodeTtl * 1000};
        if (strcmp(cfg->redis.compat, "actionhero") == 0) {
            ro.actionhero_channel = cfg->general.channel;
            ro.actionhero_token = cfg->general.serverToken;
        }
        return (s->store = ag_store_redis_create(s->loop, &ro, errbuf, errlen)) != NULL ? 0 : AG_ECONFIG;
    }
    if (cfg->redis.compat[0] != '\0') {
        snprintf(errbuf, errlen, "redis.compat: %s shares the app's Redis: set redis.url (or env REDIS_URL)", cfg->redis.compat);
        return AG_ECONFIG;
    }
    if ((s->store = ag_store_memory_create(s->loop)) == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    return 0;
}

/* The modules, in the order their HTTP paths are registered (the first registered prefix wins; static files last). */
static int modules_init(ag_server_t *s, char *errbuf, size_t errlen)
{
    int ret;
    /* first: logging is configured before anything logs, and the probes' paths win over every other */
    if ((ret = ag_ops_init(s, errbuf, errlen)) != 0)
        return ret;
    if ((ret = ag__actions_init(s)) != 0) {
        snprintf(errbuf, errlen, "actions: %s", ag_strerror(ret));
        return ret;
    }
    if ((ret = ag__rooms_init(s, errbuf, errlen)) != 0)
        return ret;
    ag_session_init(s);
    if ((ret = ag_upstream_init(s, errbuf, errlen)) != 0)
        return ret;
    if ((ret = ag_backend_init(s, errbuf, errlen)) != 0)
        return ret;
    if ((ret = ag_token_init(s, errbuf, errlen)) != 0)
        return ret;
    if (s->config->servers.web.enabled && (ret = ag__webapi_register(s, errbuf, errlen)) != 0)
        return ret;
    if ((ret = ag_serverapi_register(s, errbuf, errlen)) != 0)
        return ret;
    if ((ret = ag_cluster_init(s, errbuf, errlen)) != 0)
        return ret;
    ag__push_init(s);
    ag_ahrpc_init(s);
    /* before the transports: it takes engine.io requests whose session lives on another node */
    ag_cluster_register(s);
    if ((ret = ag_ws_init(s)) != 0 ||
        (s->config->servers.websocket.enabled && ((ret = ag_primus_register(s)) != 0 || (ret = ag_eio_register(s)) != 0))) {
        snprintf(errbuf, errlen, "out of memory");
        return ret;
    }
    /* before socket.io: its script answers at the socket.io path ahead of the engine.io handler there */
    if ((ret = ag_scripts_register(s, errbuf, errlen)) != 0 || (ret = ag_socketio_register(s, errbuf, errlen)) != 0)
        return ret;
    if ((ret = ag_clientjs_init(s, errbuf, errlen)) != 0)
        return ret;
    return 0;
}

/* Graceful stop, first phase: stop taking work, answer what is pending. */
static void modules_stop(ag_server_t *s)
{
    ag_conn_away_end_all(s); /* nobody can come back to a node that stops */
    ag__actions_stop(s);
    ag_backend_stop(s);
    ag_eio_stop(s);
    ag_cluster_stop(s);
}

/* Last: free module state (the connections are gone). */
static void modules_dispose(ag_server_t *s)
{
    ag_conn_away_dispose(s); /* first: they leave their rooms and call the disconnect hooks like any other */
    ag_backend_dispose(s);   /* its callbacks reach into the transports' state */
    ag_token_dispose(s);
    ag_eio_dispose(s);
    ag_primus_dispose(s);
    ag_ws_dispose(s);
    ag_clientjs_dispose(s);
    ag_scripts_dispose(s);
    ag_socketio_dispose(s);
    ag_cluster_dispose(s);
    ag__actions_dispose(s);
    /* after the session layer, whose pending requests cancel their own upstream calls */
    ag_upstream_dispose(s);
    ag__rooms_dispose(s);
    ag_serverapi_dispose(s);
    ag_ops_dispose(s);
}

/* The heap's top goes back to the system when sockets go to sleep (malloc_trim, transports/ws.c), not after every free:
 * a fan-out frees one write buffer per recipient per message, and glibc's own trimming then shrank the heap and grew it
 * again at each message, a page fault per page touched (a third of fan-out throughput). */
static void tune_heap(void)
{
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_TOP_PAD, 1 << 20);
}

ag_server_t *ag_server_create(ag_config_t *cfg, char *errbuf, size_t errlen)
{
    tune_heap();
    ag_server_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        ag_config_destroy(cfg);
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    s->config = cfg;
    s->started_ms = ag_now_ms();
    s->reserve_fd = -1;
    s->accept_resume.cb = on_accept_resume;
    ag_map_init(&s->conns);
    if (cfg->general.id[0] != '\0') {
        snprintf(s->node_id, sizeof(s->node_id), "%s", cfg->general.id);
    } else {
        unsigned char b[6];
        ag_random_bytes(b, sizeof(b));
        snprintf(s->node_id, sizeof(s->node_id), "n%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
    }
    resolve_dirs(s);

    h2o_config_init(&s->h2o_config);
    s->h2o_config.server_name = h2o_iovec_init(H2O_STRLIT("actiongate"));
    /* Polling POST bodies and /api bodies: h2o buffers whole bodies before the handler runs (2.2.5). */
    long maxbody = cfg->servers.web.maxRequestBody;
    if (cfg->servers.websocket.server.maxHttpBufferSize > maxbody)
        maxbody = cfg->servers.websocket.server.maxHttpBufferSize;
    s->h2o_config.max_request_entity_size = (size_t)maxbody + 1024;
    s->h2o_config.http1.upgrade_to_http2 = cfg->servers.web.http2;
    h2o_config_register_host(&s->h2o_config, h2o_iovec_init(H2O_STRLIT("default")), 65535);

    /* Modules may create timers on the loop while registering; the context comes after every path is registered,
     * because h2o runs each handler's per-context init only in h2o_context_init. */
    s->loop = h2o_evloop_create();
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->h2o_config.hosts;

    if (cfg->servers.web.secure && setup_tls(s, errbuf, errlen) != 0)
        goto fail;
    if (create_store(s, errbuf, errlen) != 0)
        goto fail;
    if (modules_init(s, errbuf, errlen) != 0)
        goto fail;
    register_static(s);
    ag_ops_access_register(s);
    h2o_context_init(&s->ctx, s->loop, &s->h2o_config);
    s->ctx_ready = 1;
    if ((s->limits = ag_limits_create(s, connection_cap(cfg))) == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto fail;
    }
    return s;
fail:
    ag_server_destroy(s);
    return NULL;
}

/* --- listening and accepting: the node's connection cap, the per-address cap, running out of descriptors --- */

static void on_accept(h2o_socket_t *listener, const char *err);

/* Stops reading the listener (pending connections wait in the kernel's backlog) until a connection closes or 100 ms
 * passed. A listener left readable at EMFILE would wake the loop at once, forever. */
static void accept_pause(ag_server_t *s)
{
    if (!s->accept_paused) {
        s->accept_paused = 1;
        h2o_socket_read_stop(s->listener);
    }
    if (h2o_timeout_is_linked(&s->accept_resume))
        h2o_timeout_unlink(&s->accept_resume);
    h2o_timeout_link(s->loop, &s->ctx.hundred_ms_timeout, &s->accept_resume);
}

static void on_accept_resume(h2o_timeout_entry_t *entry)
{
    ag_server_t *s = H2O_STRUCT_FROM_MEMBER(ag_server_t, accept_resume, entry);
    if (!s->accept_paused || s->listener == NULL || s->stopping)
        return;
    s->accept_paused = 0;
    h2o_socket_read_start(s->listener, on_accept);
}

static void on_tcp_close(void *data)
{
    ag_peer_t *p = data;
    ag_server_t *s = p->owner->server;
    ag_limits_tcp_closed(p);
    if (s->accept_paused && !s->stopping) {
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

static void on_accept(h2o_socket_t *listener, const char *err)
{
    ag_server_t *s = listener->data;
    if (err != NULL)
        return;
    int lfd = h2o_socket_get_fd(listener), at_cap = 0;
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
            return;
        }
        if (s->limits->tcp_conns >= s->limits->max_tcp) {
            turn_away(s, fd, 0);
            at_cap = 1;
            continue;
        }
        ag_peer_t *peer = ag_limits_tcp_open(s->limits, (struct sockaddr *)&ss);
        if (peer == NULL) {
            char ip[64];
            ag_limits_sockaddr_text((struct sockaddr *)&ss, ip);
            ag_log_limited(AG_LOG_WARN, "server", NULL, "%s: at servers.web.maxConnectionsPerIp (%d); turned away", ip,
                           s->config->servers.web.maxConnectionsPerIp);
            turn_away(s, fd, 1);
            continue;
        }
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
        h2o_socket_t *sock = h2o_evloop_socket_create(s->loop, fd, H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION);
        h2o_socket_setpeername(sock, (struct sockaddr *)&ss, sslen);
        sock->on_close.cb = on_tcp_close;
        sock->on_close.data = peer;
        h2o_accept(&s->accept_ctx, sock);
    }
    if (at_cap) {
        ag_log_limited(AG_LOG_WARN, "server", NULL, "at servers.web.maxConnections (%zu): turning new connections away",
                       s->limits->max_tcp);
        accept_pause(s);
    }
}

int ag_server_listen(ag_server_t *s, char *errbuf, size_t errlen)
{
    if (s->listener != NULL)
        return 0;
    const char *bind_ip = s->config->servers.web.bindIP;
    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, bind_ip, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)s->config->servers.web.port);
        sslen = sizeof(*sin);
    } else if (inet_pton(AF_INET6, bind_ip, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)s->config->servers.web.port);
        sslen = sizeof(*sin6);
    } else {
        snprintf(errbuf, errlen, "servers.web.bindIP: not an IP address: %s", bind_ip);
        return AG_ECONFIG;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, SOMAXCONN) != 0) {
        snprintf(errbuf, errlen, "cannot listen on %s:%d: %s", bind_ip, s->config->servers.web.port, strerror(errno));
        if (fd != -1)
            close(fd);
        return AG_EIO;
    }
    s->listener = h2o_evloop_socket_create(s->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    s->listener->data = s;
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ag_cluster_listening(s);
    return 0;
}

/* --- running and stopping --- */

/* Signals come through a signalfd on the loop, so the handler runs as a normal loop callback. */
static void on_signal(h2o_socket_t *sock, const char *err)
{
    (void)err;
    ag_server_t *s = sock->data;
    struct signalfd_siginfo si;
    while (read(h2o_socket_get_fd(sock), &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            ag_ops_reopen(s);
            continue;
        }
        ag_log(AG_LOG_INFO, "server", NULL, "signal %u: shutting down", si.ssi_signo);
        ag_server_stop(s);
    }
    h2o_buffer_consume(&sock->input, sock->input->size);
}

static void stop_listening(ag_server_t *s)
{
    if (h2o_timeout_is_linked(&s->accept_resume))
        h2o_timeout_unlink(&s->accept_resume);
    if (s->listener != NULL) {
        if (!s->accept_paused)
            h2o_socket_read_stop(s->listener);
        h2o_socket_close(s->listener);
        s->listener = NULL;
    }
}

/* Without a drain delay or window, connections are told at once and pending actions fail at once (the old stop). */
static int drain_at_once(const ag_config_t *cfg)
{
    return cfg->ops.drainDelay == 0 && cfg->ops.drainWindow == 0;
}

void ag_server_stop(ag_server_t *s)
{
    if (s->stopping)
        return;
    s->stopping = 1;
    const ag_config_t *cfg = s->config;
    s->stop_deadline =
        h2o_now(s->loop) + (uint64_t)cfg->ops.drainDelay + (uint64_t)cfg->ops.drainWindow + (uint64_t)cfg->general.shutdownTimeout;
    /* during ops.drainDelay the node still listens: load balancers read /readyz's 503 and stop sending first */
    if (cfg->ops.drainDelay == 0)
        stop_listening(s);
    /* /readyz answers 503 from here on; the connections are told to go by the drain (ag_server_run), spread over
     * ops.drainWindow; what they asked before the stop finishes meanwhile, and new actions are refused */
    ag_ops_drain_start(s);
    if (drain_at_once(cfg)) {
        modules_stop(s);
        ag_ops_drain_step(s);
        h2o_context_request_shutdown(&s->ctx);
    } else {
        ag_log(AG_LOG_INFO, "server", NULL, "draining: %zu connections told to reconnect over %d ms after %d ms", s->num_conns,
               cfg->ops.drainWindow, cfg->ops.drainDelay);
    }
}

int ag_server_run(ag_server_t *s)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    h2o_socket_t *sigsock = h2o_evloop_socket_create(s->loop, sfd, H2O_SOCKET_FLAG_DONT_READ);
    sigsock->data = s;
    h2o_socket_read_start(sigsock, on_signal);

    if (s->listener != NULL)
        h2o_socket_read_start(s->listener, on_accept);
    ag_log(AG_LOG_INFO, "server", NULL, "actiongate %s node %s listening on %s://%s:%d (store: %s, public: %s)", AG_VERSION,
           s->node_id, s->config->servers.web.secure ? "https" : "http", s->config->servers.web.bindIP, ag_server_port(s),
           s->store->ops->name, s->public_dir);
    ag_ops_notify("READY=1");
    while (!s->stopping)
        h2o_evloop_run(s->loop, INT32_MAX);
    if (!drain_at_once(s->config)) {
        while (ag_ops_drain_step(s) && h2o_now(s->loop) < s->stop_deadline) {
            if (s->listener != NULL && !ag_ops_drain_waiting(s))
                stop_listening(s);
            h2o_evloop_run(s->loop, 10);
        }
        stop_listening(s);
        modules_stop(s);
        h2o_context_request_shutdown(&s->ctx);
    }
    /* Drain: closing connections flush their close frames; give them until the deadline. HTTP answers given at stop
     * (a 503 for a pending /api action, a held poll's last packet) are not connections: linger a little for them. */
    uint64_t linger_until = h2o_now(s->loop) + 200;
    while ((s->num_conns != 0 || h2o_now(s->loop) < linger_until) && h2o_now(s->loop) < s->stop_deadline)
        h2o_evloop_run(s->loop, 50);
    if (s->num_conns != 0)
        ag_log(AG_LOG_WARN, "server", NULL, "%zu connections still open at the shutdown deadline", s->num_conns);
    h2o_socket_read_stop(sigsock);
    h2o_socket_close(sigsock);
    ag_log(AG_LOG_INFO, "server", NULL, "stopped");
    return s->exit_code;
}

/* h2o's side of the node: freed when nothing h2o runs is left (no timer linked: a node that never served, or whose
 * connections all finished), else left to process exit with whatever still links into it. h2o 2.2.5 cannot close its
 * live connections (an idle HTTP/1 keep-alive, a WebSocket still closing) and asserts on disposing a context or loop
 * whose timers are in use; spec/lsan.supp names what stays. */
static void dispose_h2o(ag_server_t *s)
{
    if (s->ctx_ready) {
        h2o_timeout_t *lists[] = {&s->ctx.zero_timeout,
                                  &s->ctx.one_sec_timeout,
                                  &s->ctx.hundred_ms_timeout,
                                  &s->ctx.handshake_timeout,
                                  &s->ctx.http1.req_timeout,
                                  &s->ctx.http2.idle_timeout,
                                  &s->ctx.http2.graceful_shutdown_timeout,
                                  &s->ctx.proxy.io_timeout};
        for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
            if (!h2o_linklist_is_empty(&lists[i]->_entries))
                return;
        h2o_context_dispose(&s->ctx);
        free(s->ctx.queue); /* 2.2.5's evloop flavour closes the queue it created but does not free it */
        s->ctx_ready = 0;
    }
    h2o_config_dispose(&s->h2o_config);
    if (s->loop != NULL && h2o_linklist_is_empty(&s->loop->_timeouts))
        h2o_evloop_destroy(s->loop);
}

void ag_server_destroy(ag_server_t *s)
{
    if (s == NULL)
        return;
    /* unloaded last: the actions, hooks and calls freed below point into them */
    struct st_ag_modules_t *modules = ag_modules_detach(s);
    if (s->listener != NULL) {
        h2o_socket_close(s->listener);
        s->listener = NULL;
    }
    if (s->reserve_fd >= 0)
        close(s->reserve_fd);
    if (h2o_timeout_is_linked(&s->accept_resume))
        h2o_timeout_unlink(&s->accept_resume);
    modules_dispose(s);
    if (s->store != NULL)
        s->store->ops->destroy(s->store);
    ag_map_dispose(&s->conns);
    /* sockets still open (idle keep-alive connections) point at their entries: then the table stays with the loop */
    if (s->limits != NULL && s->limits->tcp_conns == 0)
        ag_limits_destroy(s->limits);
    dispose_h2o(s);
    if (s->ssl_ctx != NULL)
        SSL_CTX_free(s->ssl_ctx);
    ag_config_destroy(s->config);
    free(s);
    ag_modules_unload(modules);
}

/* --- the public node API (include/actiongate.h) --- */

static int replace(char **field, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return AG_ENOMEM;
    free(*field);
    *field = copy;
    return 0;
}

/* The options over the file's values (defaults < file < options). */
static int apply_options(ag_config_t *cfg, const ag_options_t *o, char *errbuf, size_t errlen)
{
    if (o->port < AG_PORT_ANY || o->port > 65535) {
        snprintf(errbuf, errlen, "port: not a port number: %d", o->port);
        return AG_ECONFIG;
    }
    if (o->port != 0)
        cfg->servers.web.port = o->port == AG_PORT_ANY ? 0 : o->port;
    if ((o->host != NULL && replace(&cfg->servers.web.bindIP, o->host) != 0) ||
        (o->public_dir != NULL && replace(&cfg->servers.web.publicDir, o->public_dir) != 0) ||
        (o->log_level != NULL && replace(&cfg->general.logLevel, o->log_level) != 0) ||
        (o->redis_url != NULL && replace(&cfg->redis.url, o->redis_url) != 0)) {
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    int lvl = ag_log_level_parse(cfg->general.logLevel);
    if (lvl < 0) {
        snprintf(errbuf, errlen, "log level: one of debug, info, warn, error, none (not %.40s)", cfg->general.logLevel);
        return AG_ECONFIG;
    }
    ag_log_threshold = (ag_log_level_t)lvl;
    return 0;
}

/* The token keys are files the configuration names: a missing or unusable one is a configuration error too. */
static int check_token_keys(const ag_config_t *cfg, const char *name, char *errbuf, size_t errlen)
{
    if (!ag_token_configured(cfg))
        return 0;
    char err[512];
    ag_token_verifier_t *v = ag_token_verifier_create(cfg, err, sizeof(err));
    if (v == NULL) {
        snprintf(errbuf, errlen, "%s:1: %s", name != NULL ? name : "(built-in defaults)", err);
        return AG_ECONFIG;
    }
    ag_token_verifier_destroy(v);
    return 0;
}

int ag_create_ex(const ag_options_t *opts, ag_server_t **out, char *errbuf, size_t errlen)
{
    static const ag_options_t none;
    const ag_options_t *o = opts != NULL ? opts : &none;
    *out = NULL;
    ag_config_t *cfg = o->config_path != NULL ? ag_config_load(o->config_path, errbuf, errlen) : ag_config_create_default();
    if (cfg == NULL) {
        if (o->config_path == NULL) {
            snprintf(errbuf, errlen, "out of memory");
            return AG_ENOMEM;
        }
        return AG_ECONFIG;
    }
    int ret = apply_options(cfg, o, errbuf, errlen);
    if (ret == 0)
        ret = check_token_keys(cfg, o->config_path, errbuf, errlen);
    if (ret != 0) {
        ag_config_destroy(cfg);
        return ret;
    }
    ag_server_t *s = ag_server_create(cfg, errbuf, errlen);
    if (s == NULL)
        return AG_EIO;
    /* before binding: a node whose modules fail never takes a connection */
    if ((ret = ag_modules_load(s, errbuf, errlen)) != 0) {
        ag_server_destroy(s);
        return ret;
    }
    if (ag_server_listen(s, errbuf, errlen) != 0) {
        ag_server_destroy(s);
        return AG_EIO;
    }
    *out = s;
    return 0;
}

ag_server_t *ag_create(const char *config_path, char *errbuf, size_t errlen)
{
    ag_options_t o = {.config_path = config_path};
    ag_server_t *s;
    return ag_create_ex(&o, &s, errbuf, errlen) == 0 ? s : NULL;
}

int ag_check_config(const char *config_path, char *errbuf, size_t errlen)
{
    ag_config_t *cfg = ag_config_load(config_path, errbuf, errlen);
    if (cfg == NULL)
        return AG_ECONFIG;
    int ret = check_token_keys(cfg, config_path, errbuf, errlen);
    ag_config_destroy(cfg);
    return ret;
}

const char *ag_version(void)
{
    return AG_VERSION;
}

int ag_port(ag_server_t *s)
{
    return ag_server_port(s);
}

const char *ag_node_id(ag_server_t *s)
{
    return s->node_id;
}

int ag_run(ag_server_t *s)
{
    return ag_server_run(s);
}

void ag_stop(ag_server_t *s)
{
    ag_server_stop(s);
}

void ag_destroy(ag_server_t *s)
{
    ag_server_destroy(s);
}
