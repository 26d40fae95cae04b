/*
 * Operations (see ops.h): metrics and probes, the module's lifecycle. The access log, systemd notification and the
 * drain are ops_service.c's.
 *
 * Label values come from a bounded set only: transports and protocols are the node's own names, disconnect reasons
 * its constants, and action names those registered here plus at most OPS_MAX_ACTIONS names the app behind the node
 * answered; anything else a client may name is counted under "(other)", so no stranger can grow the scrape.
 */
#define _GNU_SOURCE
#include "ops_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#include "cluster.h"
#include "conn.h"
#include "http.h"
#include "limit.h"
#include "resume_state.h"
#include "upstream.h"

#define OPS_MAX_ACTIONS 256
/* Upper bounds (seconds) of the action latency histogram's buckets; +Inf follows. */
static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

typedef struct {
    uint64_t ok, failed;
    uint64_t le[NBUCKETS]; /* cumulative at render time, counted per bucket here */
    uint64_t count;
    double sum;
} action_stats_t;

/* --- a growable text buffer for the scrape --- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} buf_t;

__attribute__((format(printf, 2, 3))) static void put(buf_t *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = b->oom ? 0 : vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (b->oom || n < 0)
            return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* A label value in the exposition format: backslash, double quote and line feed escaped. */
static void put_label(buf_t *b, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"')
            put(b, "\\%c", *v);
        else if (*v == '\n')
            put(b, "\\n");
        else
            put(b, "%c", *v);
    }
}

static void head(buf_t *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(buf_t *b, const char *name, const char *type, const char *help, double v)
{
    head(b, name, type, help);
    put(b, "%s %.17g\n", name, v);
}

/* --- actions --- */

static action_stats_t *action_slot(ag_ops_t *o, const char *label)
{
    action_stats_t *a = ag_map_get(&o->actions, label);
    if (a != NULL)
        return a;
    if (o->actions.size >= OPS_MAX_ACTIONS && strcmp(label, "(other)") != 0)
        return action_slot(o, "(other)");
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return NULL;
    if (ag_map_set(&o->actions, label, a) != 0) {
        free(a);
        return NULL;
    }
    return a;
}

static void on_action_done(ag_server_t *s, const char *name, int upstream, int status, uint64_t started_ms)
{
    ag_ops_t *o = s->ops;
    if (o == NULL)
        return;
    /* a name the app did not know (404) is a stranger's word: counted, never a label of its own */
    const char *label = name != NULL && (status != 404 || !upstream) ? name : "(other)";
    action_stats_t *a = action_slot(o, label);
    if (a == NULL)
        return;
    if (status >= 200 && status < 300)
        a->ok++;
    else
        a->failed++;
    uint64_t now = ag_now_ms();
    double secs = now > started_ms ? (double)(now - started_ms) / 1000.0 : 0;
    for (size_t i = 0; i < NBUCKETS; i++) {
        if (secs <= buckets[i]) {
            a->le[i]++;
            break;
        }
    }
    a->count++;
    a->sum += secs;
}

/* --- the scrape --- */

static const char *protocol_of(const ag_conn_t *c)
{
    const char *p = c->_transport != NULL ? c->_transport->protocol : NULL;
    return p != NULL ? p : "unknown";
}

static void render_connections(ag_server_t *s, buf_t *b)
{
    /* a handful of (protocol, transport) pairs: counted by a scan, as the table is bounded by the connection cap */
    struct {
        const char *protocol, *transport;
        size_t n;
    } seen[16];
    size_t nseen = 0, queued_frames = 0, queued_bytes = 0, memberships = 0;
    const char *id;
    void *v;
    for (size_t it = 0; ag_map_next(&s->conns, &it, &id, &v);) {
        const ag_conn_t *c = v;
        const char *p = protocol_of(c), *t = c->transport_name != NULL ? c->transport_name : "unknown";
        size_t i = 0;
        while (i < nseen && (strcmp(seen[i].protocol, p) != 0 || strcmp(seen[i].transport, t) != 0))
            i++;
        if (i == nseen && nseen < sizeof(seen) / sizeof(seen[0]))
            seen[nseen++] = (typeof(seen[0])){p, t, 0};
        if (i < nseen)
            seen[i].n++;
        queued_frames += c->_q_len;
        queued_bytes += c->_q_bytes;
        memberships += c->num_rooms;
    }
    head(b, "actiongate_connections", "gauge", "Open realtime connections by protocol and transport.");
    for (size_t i = 0; i < nseen; i++)
        put(b, "actiongate_connections{protocol=\"%s\",transport=\"%s\"} %zu\n", seen[i].protocol, seen[i].transport, seen[i].n);
    one(b, "actiongate_tcp_connections", "gauge", "Accepted TCP connections not closed yet.",
        (double)(s->limits != NULL ? s->limits->tcp_conns : 0));
    one(b, "actiongate_tcp_connections_max", "gauge", "The node's connection cap in effect.",
        (double)(s->limits != NULL ? s->limits->max_tcp : 0));
    one(b, "actiongate_queued_frames", "gauge", "Frames waiting in every connection's outbound queue.", (double)queued_frames);
    one(b, "actiongate_queued_bytes", "gauge", "Bytes waiting in every connection's outbound queue.", (double)queued_bytes);
    one(b, "actiongate_room_memberships", "gauge", "Room memberships of this node's connections.", (double)memberships);
    one(b, "actiongate_actions_in_progress", "gauge", "Action requests started and not answered yet (socket and /api).",
        (double)s->stats.actions_in_progress);
}

static void render_actions(ag_ops_t *o, buf_t *b)
{
    const char *name;
    void *v;
    head(b, "actiongate_actions_total", "counter", "Action requests answered, by action and outcome.");
    for (size_t it = 0; ag_map_next(&o->actions, &it, &name, &v);) {
        const action_stats_t *a = v;
        const char *outcome[] = {"ok", "error"};
        const uint64_t n[] = {a->ok, a->failed};
        for (int k = 0; k < 2; k++) {
            put(b, "actiongate_actions_total{action=\"");
            put_label(b, name);
            put(b, "\",outcome=\"%s\"} %llu\n", outcome[k], (unsigned long long)n[k]);
        }
    }
    head(b, "actiongate_action_duration_seconds", "histogram", "Time from an action request to its answer.");
    for (size_t it = 0; ag_map_next(&o->actions, &it, &name, &v);) {
        const action_stats_t *a = v;
        uint64_t cum = 0;
        for (size_t i = 0; i <= NBUCKETS; i++) {
            put(b, "actiongate_action_duration_seconds_bucket{action=\"");
            put_label(b, name);
            if (i < NBUCKETS) {
                cum += a->le[i];
                put(b, "\",le=\"%g\"} %llu\n", buckets[i], (unsigned long long)cum);
            } else {
                put(b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)a->count);
            }
        }
        put(b, "actiongate_action_duration_seconds_sum{action=\"");
        put_label(b, name);
        put(b, "\"} %.6f\nactiongate_action_duration_seconds_count{action=\"", a->sum);
        put_label(b, name);
        put(b, "\"} %llu\n", (unsigned long long)a->count);
    }
}

/* Redis command round trips (the command connection; subscriptions are not commands). */
static void render_store(ag_server_t *s, buf_t *b)
{
    const ag_store_stats_t *st = s->store != NULL && s->store->ops->stats != NULL ? s->store->ops->stats(s->store) : NULL;
    if (st == NULL)
        return;
    static const double bounds[] = AG_STORE_LATENCY_BOUNDS;
    one(b, "actiongate_store_commands_total", "counter", "Commands sent to the store.", (double)st->commands);
    one(b, "actiongate_store_command_errors_total", "counter",
        "Store commands answered with an error, timed out, or lost with the connection.", (double)st->errors);
    head(b, "actiongate_store_command_duration_seconds", "histogram", "Round trip of a store command that was answered.");
    uint64_t cum = 0;
    for (size_t i = 0; i < AG_STORE_LATENCY_BUCKETS; i++) {
        cum += st->buckets[i];
        put(b, "actiongate_store_command_duration_seconds_bucket{le=\"%g\"} %llu\n", bounds[i], (unsigned long long)cum);
    }
    put(b, "actiongate_store_command_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)st->answered);
    put(b, "actiongate_store_command_duration_seconds_sum %.6f\n", st->seconds);
    put(b, "actiongate_store_command_duration_seconds_count %llu\n", (unsigned long long)st->answered);
}

static size_t open_fds(void)
{
    size_t n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n > 3 ? n - 3 : 0; /* ".", ".." and the directory's own descriptor */
}

static size_t rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}

static int store_up(ag_server_t *s)
{
    return s->store->ops->is_up == NULL || s->store->ops->is_up(s->store);
}

/* Why the node is not ready, or NULL. */
static const char *not_ready(ag_server_t *s)
{
    if (s->stopping)
        return "stopping";
    if (!store_up(s))
        return "redis unavailable";
    if (s->limits != NULL && s->limits->tcp_conns >= s->limits->max_tcp)
        return "at the connection cap";
    return NULL;
}

/* general.ioUring for one kind of socket: whether its writes are batched, the submits, and the writes in them that went
 * out whole or left a rest (a full socket, an error) to the normal write path. */
static void batch_family(buf_t *b, const char *kind, const char *what, int on, uint64_t submits, uint64_t whole, uint64_t rest)
{
    put(b, "# HELP actiongate_%s_io_uring Workers (1 for each) whose %s writes of a loop iteration go out in io_uring submits.\n",
        kind, what);
    put(b, "# TYPE actiongate_%s_io_uring gauge\nactiongate_%s_io_uring %d\n", kind, kind, on);
    put(b, "# HELP actiongate_%s_batch_submits_total io_uring submits of batched %s writes.\n", kind, what);
    put(b, "# TYPE actiongate_%s_batch_submits_total counter\nactiongate_%s_batch_submits_total %llu\n", kind, kind,
        (unsigned long long)submits);
    put(b,
        "# HELP actiongate_%s_batch_writes_total %s writes in a batch: sent whole, or with a rest (a full socket, an error) "
        "left to the normal write path.\n",
        kind, what);
    put(b, "# TYPE actiongate_%s_batch_writes_total counter\n", kind);
    put(b, "actiongate_%s_batch_writes_total{result=\"whole\"} %llu\n", kind, (unsigned long long)whole);
    put(b, "actiongate_%s_batch_writes_total{result=\"rest\"} %llu\n", kind, (unsigned long long)rest);
}

static void render(ag_server_t *s, buf_t *b)
{
    const ag_stats_t *st = &s->stats;
    head(b, "actiongate_info", "gauge", "The node: its id and version (always 1).");
    put(b, "actiongate_info{node=\"");
    put_label(b, s->node_id);
    put(b, "\",version=\"%s\",store=\"%s\"} 1\n", AG_VERSION, s->store->ops->name);
    one(b, "actiongate_ready", "gauge", "1 when /readyz answers 200.", not_ready(s) == NULL);
    one(b, "actiongate_draining", "gauge", "1 while a stopping node tells its connections to go.", s->stopping);
    render_connections(s, b);
    one(b, "actiongate_connections_opened_total", "counter", "Realtime connections opened.", (double)st->connections_opened);
    head(b, "actiongate_disconnects_total", "counter", "Realtime connections closed, by reason.");
    for (size_t i = 0; i < AG_DISCONNECT_KINDS; i++) {
        put(b, "actiongate_disconnects_total{reason=\"");
        put_label(b, ag_disconnect_kind_name(i));
        put(b, "\"} %llu\n", (unsigned long long)st->disconnects[i]);
    }
    one(b, "actiongate_upgrades_total", "counter", "Connections that moved to another transport (engine.io upgrade).",
        (double)st->upgrades);
    one(b, "actiongate_upgrade_fallbacks_total", "counter",
        "engine.io upgrade probes that failed (timed out or their carrier broke): the session stayed on its transport.",
        (double)st->upgrade_fallbacks);
    one(b, "actiongate_messages_received_total", "counter", "Messages received from clients.", (double)st->frames_in);
    one(b, "actiongate_messages_sent_total", "counter", "Messages queued to clients.", (double)st->frames_out);
    one(b, "actiongate_received_bytes_total", "counter", "Payload bytes of messages received.", (double)st->bytes_in);
    one(b, "actiongate_sent_bytes_total", "counter", "Payload bytes of messages queued to clients.", (double)st->bytes_out);
    one(b, "actiongate_invalid_json_total", "counter", "Messages that were not valid JSON.", (double)st->invalid_json);
    one(b, "actiongate_slow_consumer_disconnects_total", "counter", "Connections closed because their queue passed its bound.",
        (double)st->slow_consumers);
    one(b, "actiongate_tcp_refused_total", "counter", "TCP connections turned away at a connection cap.", (double)st->tcp_refused);
    one(b, "actiongate_handshakes_refused_total", "counter", "Handshakes refused over servers.web.handshakeRate.",
        (double)st->handshakes_refused);
    one(b, "actiongate_messages_refused_total", "counter", "Messages refused over the message rate.", (double)st->messages_refused);
    one(b, "actiongate_rate_disconnects_total", "counter", "Connections closed for sustained abuse of the message rate.",
        (double)st->rate_disconnects);
    batch_family(b, "ws", "WebSocket", st->ws_io_uring, st->ws_batch_submits, st->ws_batch_whole, st->ws_batch_rest);
    batch_family(b, "sse", "HTTP/1.x SSE", st->sse_io_uring, st->sse_batch_submits, st->sse_batch_whole, st->sse_batch_rest);
    batch_family(b, "poll", "direct long-poll answer", st->poll_io_uring, st->poll_batch_submits, st->poll_batch_whole,
                 st->poll_batch_rest);
    one(b, "actiongate_sse_replay_bytes", "gauge", "Bytes held by the SSE replay rings.", (double)st->sse_replay_bytes);
    one(b, "actiongate_sse_resumes_total", "counter", "SSE streams that came back with Last-Event-ID and were resumed.",
        (double)st->sse_resumes);
    one(b, "actiongate_sse_replayed_events_total", "counter", "Events sent again to resumed SSE streams.",
        (double)st->sse_replayed);
    one(b, "actiongate_sse_resumes_refused_total", "counter",
        "SSE streams that came back too late (Last-Event-ID older than the replay ring): their session ended.",
        (double)st->sse_resumes_refused);
    one(b, "actiongate_polls_asleep", "gauge",
        "Held polling GETs that left their HTTP request after servers.websocket.server.pollSleepMs, not answered yet.",
        (double)st->polls_asleep);
    one(b, "actiongate_polls_slept_total", "counter", "Held polling GETs that left their HTTP request so.",
        (double)st->polls_slept);
    one(b, "actiongate_polls_direct_total", "counter",
        "Polling GETs read and answered by the node itself on a kept HTTP/1.1 connection (servers.websocket.server.pollDirect).",
        (double)st->polls_direct);
    one(b, "actiongate_poll_connections_direct", "gauge", "HTTP/1.1 connections of polling sessions the node reads itself.",
        (double)st->poll_conns_direct);
    one(b, "actiongate_connections_away", "gauge", "Resumable connections waiting for their client to come back.",
        (double)st->conns_away);
    one(b, "actiongate_resumes_total", "counter", "Connections resumed.", (double)st->resumes);
    one(b, "actiongate_resumes_refused_total", "counter", "Resume requests answered \"not resumed\".", (double)st->resumes_refused);
    one(b, "actiongate_away_expired_total", "counter", "Away connections that ended unresumed.", (double)st->away_expired);
    one(b, "actiongate_room_lines_fetched_total", "counter",
        "Room lines this node missed (its store subscription was lost) and read from the room's history.",
        (double)st->room_lines_fetched);
    one(b, "actiongate_room_lines_missed_total", "counter", "Room lines this node missed that the room's history no longer held.",
        (double)st->room_lines_missed);
    render_actions(s->ops, b);
    const ag_upstream_stats_t *up = ag_upstream_stats(s);
    one(b, "actiongate_upstream_calls_total", "counter", "Calls to the app behind the node.", (double)up->calls);
    one(b, "actiongate_upstream_failovers_total", "counter", "Upstream calls retried on another URL.", (double)up->failovers);
    one(b, "actiongate_upstream_refused_total", "counter", "Upstream calls refused at upstream.maxInFlight.",
        (double)up->refused_busy);
    one(b, "actiongate_upstream_failed_total", "counter", "Upstream calls that failed.", (double)up->failed);
    one(b, "actiongate_upstream_in_flight", "gauge", "Upstream calls in flight.", (double)up->in_flight);
    const ag_cluster_stats_t *cl = ag_cluster_stats(s);
    head(b, "actiongate_cluster_forwarded_total", "counter", "Requests forwarded to the node that owns their session.");
    put(b, "actiongate_cluster_forwarded_total{kind=\"http\"} %llu\n", (unsigned long long)cl->forwarded_http);
    put(b, "actiongate_cluster_forwarded_total{kind=\"websocket\"} %llu\n", (unsigned long long)cl->forwarded_ws);
    head(b, "actiongate_cluster_pushes_total", "counter", "Server pushes exchanged with other nodes.");
    put(b, "actiongate_cluster_pushes_total{direction=\"in\"} %llu\n", (unsigned long long)cl->pushes_in);
    put(b, "actiongate_cluster_pushes_total{direction=\"out\"} %llu\n", (unsigned long long)cl->pushes_out);
    head(b, "actiongate_cluster_calls_total", "counter",
         "Server API calls sent to every node (out), and run here for another node (in).");
    put(b, "actiongate_cluster_calls_total{direction=\"in\"} %llu\n", (unsigned long long)cl->calls_in);
    put(b, "actiongate_cluster_calls_total{direction=\"out\"} %llu\n", (unsigned long long)cl->calls_out);
    one(b, "actiongate_cluster_call_timeouts_total", "counter", "Server API calls that some node did not answer in time.",
        (double)cl->call_timeouts);
    one(b, "actiongate_store_up", "gauge", "1 when the store (Redis in cluster mode) is reachable.", store_up(s));
    render_store(s, b);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    one(b, "process_cpu_seconds_total", "counter", "User and system CPU time spent.", cpu);
    one(b, "process_resident_memory_bytes", "gauge", "Resident set size.", (double)rss_bytes());
    one(b, "process_open_fds", "gauge", "Open file descriptors.", (double)open_fds());
    one(b, "process_start_time_seconds", "gauge", "Start time since the Unix epoch.", (double)s->started_ms / 1000.0);
}

/* ops.metricsKey as a bearer token, compared in constant time. */
static int key_ok(ag_server_t *s, h2o_req_t *req)
{
    const char *key = s->config->ops.metricsKey;
    if (key[0] == '\0')
        return 1;
    size_t len, klen = strlen(key);
    const char *h = ag_http_header(req, "authorization", &len);
    if (h == NULL || len != 7 + klen || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    unsigned char diff = 0;
    for (size_t i = 0; i < klen; i++)
        diff |= (unsigned char)(h[7 + i] ^ key[i]);
    return diff == 0;
}

static int is_get(h2o_req_t *req)
{
    return h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
           h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
}

/* One worker's scrape, rendered on its own loop (ag_server_gather). */
static char *render_text(ag_server_t *s, size_t *len)
{
    buf_t b = {NULL, 0, 0, 0};
    render(s, &b);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* The process's scrape from its workers' (several workers, README "Workers"): every sample of the same name and labels
 * is summed, families and series in the order they first appear; actiongate_ready is the least of them (the process is
 * ready when all its workers are) and actiongate_draining the greatest. The workers' actiongate_info lines differ by
 * their node label and all stay. */
typedef struct {
    char *head; /* its "# HELP" and "# TYPE" lines */
    ag_map_t index;
    char **keys;
    double *values;
    size_t n, cap;
    int combine; /* 0 sum, 1 min, 2 max */
} family_t;

static void family_free(family_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->keys[i]);
    free(f->keys);
    free(f->values);
    free(f->head);
    ag_map_dispose(&f->index);
    free(f);
}

static int family_add(family_t *f, const char *key, size_t klen, double v)
{
    char k[1024];
    if (klen >= sizeof(k))
        return 0; /* no series of ours is that long */
    memcpy(k, key, klen);
    k[klen] = '\0';
    uintptr_t at = (uintptr_t)ag_map_get(&f->index, k);
    if (at != 0) {
        double *cur = &f->values[at - 1];
        *cur = f->combine == 1 ? (v < *cur ? v : *cur) : f->combine == 2 ? (v > *cur ? v : *cur) : *cur + v;
        return 0;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap == 0 ? 8 : f->cap * 2;
        char **keys = realloc(f->keys, cap * sizeof(*keys));
        if (keys == NULL)
            return -1;
        f->keys = keys;
        double *values = realloc(f->values, cap * sizeof(*values));
        if (values == NULL)
            return -1;
        f->values = values;
        f->cap = cap;
    }
    if ((f->keys[f->n] = strdup(k)) == NULL || ag_map_set(&f->index, k, (void *)(uintptr_t)(f->n + 1)) != AG_OK) {
        free(f->keys[f->n]);
        return -1;
    }
    f->values[f->n++] = v;
    return 0;
}

static int merge_text(ag_map_t *names, family_t ***order, size_t *nfam, size_t *capfam, const char *p, size_t len)
{
    const char *end = p + len;
    family_t *cur = NULL;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        if (le - p > 7 && memcmp(p, "# HELP ", 7) == 0) {
            /* "# HELP name ...\n# TYPE name type\n": the family starts */
            const char *sp = memchr(p + 7, ' ', (size_t)(le - p - 7));
            char name[256];
            size_t nlen = sp != NULL ? (size_t)(sp - p - 7) : 0;
            if (nlen == 0 || nlen >= sizeof(name))
                return -1;
            memcpy(name, p + 7, nlen);
            name[nlen] = '\0';
            const char *type_end = le < end ? memchr(le + 1, '\n', (size_t)(end - le - 1)) : NULL;
            if (type_end == NULL)
                return -1;
            cur = ag_map_get(names, name);
            if (cur == NULL) {
                if ((cur = calloc(1, sizeof(*cur))) == NULL)
                    return -1;
                ag_map_init(&cur->index);
                cur->combine = strcmp(name, "actiongate_ready") == 0 ? 1 : strcmp(name, "actiongate_draining") == 0 ? 2 : 0;
                cur->head = strndup(p, (size_t)(type_end - p + 1));
                if (*nfam == *capfam) {
                    size_t cap = *capfam == 0 ? 64 : *capfam * 2;
                    family_t **o = realloc(*order, cap * sizeof(*o));
                    if (o == NULL) {
                        family_free(cur);
                        return -1;
                    }
                    *order = o;
                    *capfam = cap;
                }
                if (cur->head == NULL || ag_map_set(names, name, cur) != AG_OK) {
                    family_free(cur);
                    return -1;
                }
                (*order)[(*nfam)++] = cur;
            }
            p = type_end + 1;
            continue;
        }
        if (le > p && p[0] != '#' && cur != NULL) {
            const char *sp = NULL;
            for (const char *q = le; q > p; q--)
                if (q[-1] == ' ') {
                    sp = q - 1;
                    break;
                }
            if (sp != NULL && family_add(cur, p, (size_t)(sp - p), strtod(sp + 1, NULL)) != 0)
                return -1;
        }
        p = le + 1;
    }
    return 0;
}

static void render_merged(char *const *texts, const size_t *lens, size_t n, buf_t *b)
{
    ag_map_t names;
    ag_map_init(&names);
    family_t **order = NULL;
    size_t nfam = 0, capfam = 0;
    for (size_t i = 0; i < n && !b->oom; i++)
        if (texts[i] != NULL && merge_text(&names, &order, &nfam, &capfam, texts[i], lens[i]) != 0)
            b->oom = 1;
    for (size_t i = 0; i < nfam; i++) {
        put(b, "%s", order[i]->head);
        for (size_t j = 0; j < order[i]->n; j++)
            put(b, "%s %.15g\n", order[i]->keys[j], order[i]->values[j]);
        family_free(order[i]);
    }
    free(order);
    ag_map_dispose(&names);
}

/* A scrape waiting for the other workers; the request may go first (HTTP/2 reset): a pool-owned guard clears req. */
typedef struct st_scrape_t {
    h2o_req_t *req;
    struct st_scrape_t **guard;
} scrape_t;

static void on_scrape_guard_dispose(void *p)
{
    scrape_t **guard = p;
    if (*guard != NULL)
        (*guard)->req = NULL;
}

static void on_gathered(void *data, char *const *texts, const size_t *lens, size_t n)
{
    scrape_t *sc = data;
    h2o_req_t *req = sc->req;
    if (req != NULL)
        *sc->guard = NULL;
    free(sc);
    if (req == NULL)
        return;
    ag_server_t *s = ag_http_server(req);
    char *all[AG_CONFIG_WORKERS_MAX];
    size_t alens[AG_CONFIG_WORKERS_MAX];
    for (size_t i = 0; i < n && i < AG_CONFIG_WORKERS_MAX; i++) {
        all[i] = texts[i];
        alens[i] = lens[i];
    }
    /* this worker's own, rendered now: it goes first, so the families keep its order */
    size_t own_len = 0;
    char *own = render_text(s, &own_len);
    all[s->worker] = own;
    alens[s->worker] = own_len;
    char *first = all[0];
    size_t first_len = alens[0];
    all[0] = all[s->worker];
    alens[0] = alens[s->worker];
    all[s->worker] = first;
    alens[s->worker] = first_len;
    buf_t b = {NULL, 0, 0, own == NULL};
    render_merged(all, alens, n, &b);
    free(own);
    if (b.oom)
        ag_http_respond(req, 503, "Service Unavailable", "text/plain", H2O_STRLIT("out of memory\n"));
    else
        ag_http_respond(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
    free(b.p);
}

static int on_metrics(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    ag_server_t *s = ag_http_server(req);
    if (!is_get(req)) {
        ag_http_respond(req, 405, "Method Not Allowed", "text/plain", H2O_STRLIT("GET only\n"));
        return 0;
    }
    if (!key_ok(s, req)) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
        ag_http_respond(req, 401, "Unauthorized", "text/plain", H2O_STRLIT("a metrics key is required\n"));
        return 0;
    }
    if (s->workers != NULL) {
        /* the process's figures: every worker renders its own on its loop, summed here */
        scrape_t *sc = calloc(1, sizeof(*sc));
        if (sc != NULL) {
            sc->req = req;
            sc->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*sc->guard), on_scrape_guard_dispose);
            *sc->guard = sc;
            if (ag_server_gather(s, render_text, on_gathered, sc) == 0)
                return 0;
            *sc->guard = NULL;
            free(sc);
        }
    }
    buf_t b = {NULL, 0, 0, 0};
    render(s, &b);
    if (b.oom)
        ag_http_respond(req, 503, "Service Unavailable", "text/plain", H2O_STRLIT("out of memory\n"));
    else
        ag_http_respond(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
    free(b.p);
    return 0;
}

static int on_health(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    ag_http_respond(req, 200, "OK", "text/plain", H2O_STRLIT("ok\n"));
    return 0;
}

static int on_ready(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    const char *why = not_ready(ag_http_server(req));
    if (why == NULL) {
        ag_http_respond(req, 200, "OK", "text/plain", H2O_STRLIT("ready\n"));
    } else {
        char body[64];
        int n = snprintf(body, sizeof(body), "not ready: %s\n", why);
        ag_http_respond(req, 503, "Service Unavailable", "text/plain", body, (size_t)n);
    }
    return 0;
}

static void add_path(ag_server_t *s, const char *path, int (*cb)(h2o_handler_t *, h2o_req_t *))
{
    if (path[0] == '\0')
        return;
    h2o_handler_t *h = h2o_create_handler(ag_server_register_path(s, path), sizeof(*h));
    h->on_req = cb;
}

/* --- lifecycle --- */

int ag_ops_init(ag_server_t *s, char *errbuf, size_t errlen)
{
    const ag_config_t *cfg = s->config;
    if ((s->ops = calloc(1, sizeof(*s->ops))) == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    ag_map_init(&s->ops->actions);
    s->on_action_done = on_action_done;
    if (ag_log_configure(cfg->general.logFile, strcmp(cfg->general.logFormat, "json") == 0, s->node_id) != 0) {
        snprintf(errbuf, errlen, "general.logFile: cannot open %s for appending", cfg->general.logFile);
        return AG_ECONFIG;
    }
    if (ag__ops_access_open(s) != 0) {
        snprintf(errbuf, errlen, "general.accessLog: cannot open %s for appending", cfg->general.accessLog);
        return AG_ECONFIG;
    }
    add_path(s, cfg->ops.healthPath, on_health);
    add_path(s, cfg->ops.readyPath, on_ready);
    add_path(s, cfg->ops.metricsPath, on_metrics);
    return 0;
}

void ag_ops_dispose(ag_server_t *s)
{
    ag_ops_t *o = s->ops;
    if (o == NULL)
        return;
    const char *name;
    void *v;
    for (size_t it = 0; ag_map_next(&o->actions, &it, &name, &v);)
        free(v);
    ag_map_dispose(&o->actions);
    if (o->access != NULL)
        fclose(o->access);
    free(o);
    s->ops = NULL;
    s->on_action_done = NULL;
}
