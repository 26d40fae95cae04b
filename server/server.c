/*
 * The server object: builds a node with its modules in order, runs, stops, destroys. This is the only file that knows
 * every module: the others see the node through node.h. Listening and accepting are server_accept.c, the workers'
 * wake-ups and gathers server_workers.c, the public node API (include/actiongate.h) server_public.c; what they share
 * is server_internal.h.
 */
#include "server_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
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
#include "resume.h"
#include "primus.h"
#include "push.h"
#include "resume_state.h"
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

/* Descriptors kept out of the automatic connection cap: files being served, the store's sockets, the signalfd, the
 * reserve descriptor, forwarded requests' upstream sockets. */
#define FD_RESERVE 64

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

/* servers.web.maxConnections, or (0, or more than the descriptors allow) the descriptor limit minus a reserve. The
 * descriptors are the process's: with several workers each gets its share. */
static size_t connection_cap(const ag_config_t *cfg, size_t workers)
{
    struct rlimit rl;
    size_t fds = 1u << 20;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < fds)
        fds = (size_t)rl.rlim_cur;
    size_t room = fds > 2 * FD_RESERVE * workers ? (fds - FD_RESERVE * workers) / workers : fds / (2 * workers);
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
    s->store =
        s->workers != NULL ? ag_store_shared_attach(s->workers->shared, s->loop, s->node_id) : ag_store_memory_create(s->loop);
    if (s->store == NULL) {
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
    ag__resume_init(s); /* after push: it answers the cluster calls it does not know */
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
    ag_conn_away_dispose(s);      /* first: they leave their rooms and call the disconnect hooks like any other */
    json_decref(s->resume_saved); /* a stop that was never followed by ag_server_run's save */
    s->resume_saved = NULL;
    ag__resume_dispose(s);
    ag_backend_dispose(s); /* its callbacks reach into the transports' state */
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

/* A node, or worker `index` of a process's workers (w non-NULL). */
ag_server_t *ag__server_create(ag_config_t *cfg, ag_workers_t *w, unsigned index, const char *base_id, char *errbuf, size_t errlen)
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
    s->accept_resume.cb = ag__server_on_accept_resume;
    s->workers = w;
    s->worker = index;
    ag_map_init(&s->conns);
    if (w != NULL) {
        /* every worker is a node of its own (the status action and the metrics name it) */
        snprintf(s->node_id, sizeof(s->node_id), "%.50s-w%u", base_id, index);
    } else if (cfg->general.id[0] != '\0') {
        snprintf(s->node_id, sizeof(s->node_id), "%s", cfg->general.id);
    } else {
        unsigned char b[6];
        ag_random_bytes(b, sizeof(b));
        snprintf(s->node_id, sizeof(s->node_id), "n%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
    }
    resolve_dirs(s);

    h2o_config_init(&s->h2o_config);
    /* No Server header: h2o 2.2.5 formats it into every HTTP/1 response head with sprintf, a tenth of what a long-poll
     * answer costs, and it only tells a stranger what to probe for. */
    s->h2o_config.server_name = h2o_iovec_init("", 0);
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
    /* forwarded requests come from the other workers in plain HTTP/1 */
    s->private_accept_ctx.ctx = &s->ctx;
    s->private_accept_ctx.hosts = s->h2o_config.hosts;
    if (w != NULL) {
        int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (efd == -1) {
            snprintf(errbuf, errlen, "eventfd: %s", strerror(errno));
            goto fail;
        }
        s->wake = h2o_evloop_socket_create(s->loop, efd, H2O_SOCKET_FLAG_DONT_READ);
        s->wake->data = s;
        h2o_socket_read_start(s->wake, ag__server_on_wake);
    }

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
    if ((s->limits = ag_limits_create(s, connection_cap(cfg, w != NULL ? w->n : 1))) == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto fail;
    }
    return s;
fail:
    ag_server_destroy(s);
    return NULL;
}

ag_server_t *ag_server_create(ag_config_t *cfg, char *errbuf, size_t errlen)
{
    return ag__server_create(cfg, NULL, 0, NULL, errbuf, errlen);
}

/* --- running and stopping --- */

/* Signals come through a signalfd on the loop (worker 0's), so the handler runs as a normal loop callback. */
static void on_signal(h2o_socket_t *sock, const char *err)
{
    (void)err;
    ag_server_t *s = sock->data;
    struct signalfd_siginfo si;
    while (read(h2o_socket_get_fd(sock), &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            ag_ops_reopen(s);
            if (s->workers != NULL) {
                s->reopen_seen = atomic_fetch_add(&s->workers->reopen, 1) + 1;
                ag__server_wake_others(s);
            }
            continue;
        }
        ag_log(AG_LOG_INFO, "server", NULL, "signal %u: shutting down", si.ssi_signo);
        ag_server_stop(s);
    }
    h2o_buffer_consume(&sock->input, sock->input->size);
}

static void stop_listening(ag_server_t *s)
{
    ag__server_taking(s, 0);
    if (h2o_timeout_is_linked(&s->accept_resume))
        h2o_timeout_unlink(&s->accept_resume);
    if (s->listener != NULL) {
        if (!s->accept_paused)
            h2o_socket_read_stop(s->listener);
        h2o_socket_close(s->listener);
        s->listener = NULL;
    }
    /* the private listener stays open: while the process drains, the other workers still forward this one's
     * sessions' requests to it */
    if (s->accept_paused && s->private_listener != NULL) {
        s->accept_paused = 0;
        h2o_socket_read_start(s->private_listener, ag__server_on_accept);
    }
}

/* Without a drain delay or window, connections are told at once and pending actions fail at once (the old stop),
 * unless resumable connections are saved for a restart: their requests are answered first. */
static int drain_at_once(const ag_server_t *s)
{
    return s->config->ops.drainDelay == 0 && s->config->ops.drainWindow == 0 && !ag_resume_state_on(s);
}

void ag_server_stop(ag_server_t *s)
{
    if (s->stopping)
        return;
    s->stopping = 1;
    /* one worker stopping stops the process: every worker drains its own connections */
    if (s->workers != NULL && !atomic_exchange(&s->workers->stop, 1))
        ag__server_wake_others(s);
    const ag_config_t *cfg = s->config;
    s->stop_deadline =
        h2o_now(s->loop) + (uint64_t)cfg->ops.drainDelay + (uint64_t)cfg->ops.drainWindow + (uint64_t)cfg->general.shutdownTimeout;
    /* during ops.drainDelay the node still listens: load balancers read /readyz's 503 and stop sending first */
    if (cfg->ops.drainDelay == 0)
        stop_listening(s);
    /* /readyz answers 503 from here on; the connections are told to go by the drain (ag_server_run), spread over
     * ops.drainWindow; what they asked before the stop finishes meanwhile, and new actions are refused */
    ag_ops_drain_start(s);
    if (drain_at_once(s)) {
        modules_stop(s);
        ag_ops_drain_step(s);
        h2o_context_request_shutdown(&s->ctx);
    } else {
        ag_log(AG_LOG_INFO, "server", NULL, "draining: %zu connections told to reconnect over %d ms after %d ms", s->num_conns,
               cfg->ops.drainWindow, cfg->ops.drainDelay);
    }
}

/* One node's loop, from the first accept to the end of its drain. */
static int run_loop(ag_server_t *s)
{
    if (s->listener != NULL && !s->stopping) {
        h2o_socket_read_start(s->listener, ag__server_on_accept);
        ag__server_taking(s, 1);
    }
    if (s->private_listener != NULL)
        h2o_socket_read_start(s->private_listener, ag__server_on_accept);
    while (!s->stopping)
        h2o_evloop_run(s->loop, INT32_MAX);
    if (!drain_at_once(s)) {
        while (ag_ops_drain_step(s) && h2o_now(s->loop) < s->stop_deadline) {
            if (s->listener != NULL && !ag_ops_drain_waiting(s))
                stop_listening(s);
            h2o_evloop_run(s->loop, 10);
        }
        stop_listening(s);
        /* resumable connections saved for a restart: their requests answered first, within the same deadline */
        while (ag_resume_state_busy(s) && h2o_now(s->loop) < s->stop_deadline)
            h2o_evloop_run(s->loop, 10);
        ag_resume_state_collect(s);
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
    return s->exit_code;
}

static void *worker_main(void *arg)
{
    ag_server_t *s = arg;
    ag_log_thread_node(s->node_id);
    s->workers->exit_codes[s->worker] = run_loop(s);
    return NULL;
}

int ag_server_run(ag_server_t *s)
{
    /* blocked before the workers' threads start, so that they inherit the mask and only the signalfd sees them */
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

    ag_workers_t *w = s->workers;
    ag_server_t *const *nodes = w != NULL ? w->nodes : &s;
    size_t nnodes = w != NULL ? w->n : 1;
    /* a graceful restart's connections come back before any loop runs (each to its worker's loop) */
    ag_resume_state_load(nodes, nnodes);
    if (w != NULL) {
        ag_log_thread_node(s->node_id);
        for (size_t i = 1; i < w->n && w->started == i - 1; i++) {
            int e = pthread_create(&w->threads[i], NULL, worker_main, w->nodes[i]);
            if (e != 0) {
                ag_log(AG_LOG_ERROR, "server", NULL, "cannot start worker %zu: %s; stopping", i, strerror(e));
                ag_server_stop(s);
                break;
            }
            w->started++;
        }
    }
    ag_log(AG_LOG_INFO, "server", NULL, "actiongate %s node %s listening on %s://%s:%d (store: %s, public: %s, workers: %zu)",
           AG_VERSION, s->node_id, s->config->servers.web.secure ? "https" : "http", s->config->servers.web.bindIP,
           ag_server_port(s), s->store->ops->name, s->public_dir, w != NULL ? w->n : 1);
    ag_ops_notify("READY=1");
    int ret = run_loop(s);
    if (w != NULL) {
        for (size_t i = 1; i <= w->started; i++) {
            pthread_join(w->threads[i], NULL);
            if (ret == 0)
                ret = w->exit_codes[i];
        }
        w->started = 0;
    }
    /* every loop has stopped: what they collected of their resumable connections, with the rooms' history */
    ag_resume_state_save(nodes, nnodes);
    h2o_socket_read_stop(sigsock);
    h2o_socket_close(sigsock);
    ag_log(AG_LOG_INFO, "server", NULL, "stopped");
    return ret;
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
    /* worker 0 owns the others (their threads have ended: ag_server_run joined them) and the shared store */
    ag_workers_t *w = s->workers != NULL && s->worker == 0 && s->workers->nodes[0] == s ? s->workers : NULL;
    if (w != NULL) {
        ag__server_gathers_drop(w);
        ag__server_handed_drop(w);
    }
    for (size_t i = 1; w != NULL && i < w->n; i++)
        ag_server_destroy(w->nodes[i]);
    /* unloaded last: the actions, hooks and calls freed below point into them */
    struct st_ag_modules_t *modules = ag_modules_detach(s);
    if (s->listener != NULL) {
        h2o_socket_close(s->listener);
        s->listener = NULL;
    }
    if (s->private_listener != NULL) {
        h2o_socket_close(s->private_listener);
        s->private_listener = NULL;
    }
    if (s->wake != NULL) {
        h2o_socket_read_stop(s->wake);
        h2o_socket_close(s->wake);
        s->wake = NULL;
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
    if (w != NULL) {
        ag_store_shared_release(w->shared);
        pthread_mutex_destroy(&w->lock);
        free(w);
    }
}
