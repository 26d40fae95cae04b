#include "cluster.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http.h"
#include "store/redis_adapter.h"

/* a cached route stays trusted this long; after that the owner's registration is read again */
#define ROUTE_FRESH_MS 1000
/* request header that makes a re-dispatched request stay here (its owner is unknown) */
#define LOCAL_HEADER "x-actiongate-route-local"

typedef struct st_route_t {
    char host[64];
    uint16_t port;
    uint64_t fetched_at;
} route_t;

typedef struct st_lookup_t lookup_t;

struct st_ag_cluster_t {
    ag_server_t *server;
    ag_store_t *store;
    ag_redis_t *cmd;
    char tag[AG_CLUSTER_TAG_LEN + 1];
    char address[300];
    char *route_key;
    uint64_t ttl_ms;
    h2o_timeout_t refresh;
    h2o_timeout_entry_t refresh_entry;
    ag_map_t routes;      /* tag -> route_t* */
    ag_map_t unreachable; /* tag -> (uintptr_t) ms when forwarding to it failed */
    h2o_http1client_ctx_t client_ctx;
    h2o_timeout_t io_timeout, ws_timeout;
    int client_ready;
    h2o_linklist_t lookups;
    ag_cluster_push_receiver_fn push_receiver;
    ag_cluster_stats_t stats;
};

/* An owner lookup in Redis while the request waits. The request may go away first (HTTP/2 reset, shutdown): a
 * pool-owned guard clears lookup->req when the request's pool is released. */
struct st_lookup_t {
    ag_cluster_t *c;
    h2o_req_t *req;
    lookup_t **guard;
    h2o_linklist_t link;
    char tag[AG_CLUSTER_TAG_LEN + 1];
};

static const char TAG_ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* --- sids --- */

int ag_cluster_owner_of_sid(const char *sid, char tag[AG_CLUSTER_TAG_LEN + 1])
{
    if (sid == NULL || strnlen(sid, AG_CLUSTER_TAG_LEN) < AG_CLUSTER_TAG_LEN)
        return AG_EINVAL;
    memcpy(tag, sid, AG_CLUSTER_TAG_LEN);
    tag[AG_CLUSTER_TAG_LEN] = '\0';
    return 0;
}

void ag_cluster_sid_stamp(ag_server_t *s, char *sid)
{
    ag_cluster_t *c = s->cluster;
    if (c != NULL && c->cmd != NULL && strnlen(sid, AG_CLUSTER_TAG_LEN) == AG_CLUSTER_TAG_LEN)
        memcpy(sid, c->tag, AG_CLUSTER_TAG_LEN);
}

int ag_cluster_is_local_sid(ag_server_t *s, const char *sid)
{
    ag_cluster_t *c = s->cluster;
    if (c == NULL || c->cmd == NULL)
        return 1;
    return strncmp(sid, c->tag, AG_CLUSTER_TAG_LEN) == 0;
}

/* --- forwarding --- */

static void client_init(ag_cluster_t *c)
{
    if (c->client_ready || !c->server->ctx_ready)
        return;
    c->client_ctx.loop = c->server->loop;
    c->client_ctx.getaddr_receiver = &c->server->ctx.receivers.hostinfo_getaddr;
    c->client_ctx.io_timeout = &c->io_timeout;
    c->client_ctx.websocket_timeout = &c->ws_timeout;
    c->client_ready = 1;
}

static void forward(ag_cluster_t *c, h2o_req_t *req, const route_t *rt)
{
    client_init(c);
    h2o_req_overrides_t *o = h2o_mem_alloc_pool(&req->pool, sizeof(*o));
    *o = (h2o_req_overrides_t){NULL};
    o->client_ctx = &c->client_ctx;
    o->hostport.host = h2o_strdup(&req->pool, rt->host, strlen(rt->host));
    o->hostport.port = rt->port;
    h2o_add_header_by_str(&req->pool, &req->headers, H2O_STRLIT(AG_CLUSTER_FORWARDED_HEADER), 0, NULL, c->server->node_id,
                          strlen(c->server->node_id));
    if (req->upgrade.base != NULL)
        c->stats.forwarded_ws++;
    else
        c->stats.forwarded_http++;
    ag_debug("cluster", NULL, "forwarding %.*s %.*s to %s:%u", (int)req->method.len, req->method.base, (int)req->path.len,
             req->path.base, rt->host, rt->port);
    h2o_reprocess_request(req, req->method, req->scheme, req->authority, req->path, o, 0);
}

/* The owner is not registered: handle the request here, where its sid is unknown. */
static void handle_here(ag_cluster_t *c, h2o_req_t *req)
{
    c->stats.unknown_owner++;
    h2o_add_header_by_str(&req->pool, &req->headers, H2O_STRLIT(LOCAL_HEADER), 0, NULL, H2O_STRLIT("1"));
    h2o_reprocess_request_deferred(req, req->method, req->scheme, req->authority, req->path, NULL, 0);
}

static int parse_address(const char *s, size_t len, route_t *rt)
{
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (s[i] == ':')
            colon = s + i;
    if (colon == NULL || (size_t)(colon - s) >= sizeof(rt->host))
        return -1;
    memcpy(rt->host, s, (size_t)(colon - s));
    rt->host[colon - s] = '\0';
    char port[8];
    size_t plen = len - (size_t)(colon - s) - 1;
    if (plen == 0 || plen >= sizeof(port))
        return -1;
    memcpy(port, colon + 1, plen);
    port[plen] = '\0';
    long p = strtol(port, NULL, 10);
    if (p <= 0 || p > 65535)
        return -1;
    rt->port = (uint16_t)p;
    return 0;
}

static void on_guard_dispose(void *p)
{
    lookup_t **guard = p;
    if (*guard != NULL)
        (*guard)->req = NULL;
}

static void on_lookup(void *data, const char *err, redisReply *reply)
{
    lookup_t *lk = data;
    ag_cluster_t *c = lk->c;
    h2o_req_t *req = lk->req;
    if (req != NULL)
        *lk->guard = NULL;
    if (h2o_linklist_is_linked(&lk->link))
        h2o_linklist_unlink(&lk->link);
    if (c != NULL && req != NULL) {
        route_t rt;
        if (err == NULL && reply->type == REDIS_REPLY_STRING && parse_address(reply->str, reply->len, &rt) == 0) {
            route_t *cached = ag_map_get(&c->routes, lk->tag);
            if (cached == NULL && (cached = malloc(sizeof(*cached))) != NULL && ag_map_set(&c->routes, lk->tag, cached) != 0) {
                free(cached);
                cached = NULL;
            }
            rt.fetched_at = h2o_now(c->server->loop);
            if (cached != NULL)
                *cached = rt;
            forward(c, req, &rt);
        } else {
            free(ag_map_del(&c->routes, lk->tag));
            handle_here(c, req);
        }
    }
    free(lk);
}

int ag_cluster_route(h2o_req_t *req, const char *sid)
{
    ag_server_t *s = ag_http_server(req);
    ag_cluster_t *c = s->cluster;
    char tag[AG_CLUSTER_TAG_LEN + 1];
    if (c == NULL || c->cmd == NULL || sid == NULL || ag_cluster_is_local_sid(s, sid) || ag_cluster_owner_of_sid(sid, tag) != 0)
        return 1;
    if (h2o_find_header_by_str(&req->headers, H2O_STRLIT(AG_CLUSTER_FORWARDED_HEADER), -1) != -1 ||
        h2o_find_header_by_str(&req->headers, H2O_STRLIT(LOCAL_HEADER), -1) != -1)
        return 1;
    /* its node refused the last forward: dead, though its route has not expired yet */
    uintptr_t failed_at = (uintptr_t)ag_map_get(&c->unreachable, tag);
    if (failed_at != 0 && h2o_now(s->loop) - failed_at < c->ttl_ms) {
        handle_here(c, req);
        return 0;
    }
    route_t *rt = ag_map_get(&c->routes, tag);
    if (rt != NULL && h2o_now(s->loop) - rt->fetched_at < ROUTE_FRESH_MS) {
        forward(c, req, rt);
        return 0;
    }
    lookup_t *lk = calloc(1, sizeof(*lk));
    char *key = malloc(strlen(ag__store_redis_prefix(c->store)) + sizeof("route:") + AG_CLUSTER_TAG_LEN);
    if (lk == NULL || key == NULL) {
        free(lk);
        free(key);
        return 1;
    }
    sprintf(key, "%sroute:%s", ag__store_redis_prefix(c->store), tag);
    lk->c = c;
    lk->req = req;
    memcpy(lk->tag, tag, sizeof(tag));
    lk->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*lk->guard), on_guard_dispose);
    *lk->guard = lk;
    h2o_linklist_insert(&c->lookups, &lk->link);
    ag_redis_commandv(c->cmd, on_lookup, lk, "GET", key, NULL);
    free(key);
    return 0;
}

/* A forward that failed (h2o's proxy answers 502 when the owner refuses the connection): remember the owner as
 * unreachable until its route expires, so the session's next request is answered here, as unknown. */
static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    ag_cluster_t *c = ag_http_server(req)->cluster;
    char tag[AG_CLUSTER_TAG_LEN + 1];
    if (c != NULL && req->res.status == 502 && req->overrides != NULL && req->overrides->client_ctx == &c->client_ctx &&
        ag_cluster_owner_of_sid(ag_http_query_param(req, "sid"), tag) == 0) {
        uint64_t now = h2o_now(c->server->loop);
        ag_map_set(&c->unreachable, tag, (void *)(uintptr_t)(now != 0 ? now : 1));
        free(ag_map_del(&c->routes, tag));
        ag_log(AG_LOG_WARN, "cluster", NULL, "node with sid tag %s unreachable: its sessions are unknown here", tag);
    }
    h2o_setup_next_ostream(req, slot);
}

/* The first handler on the engine.io path: takes requests for sids owned elsewhere, passes everything else on. */
static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    if (ag_http_query_param(req, "EIO") == NULL)
        return -1;
    const char *sid = ag_http_query_param(req, "sid");
    return sid != NULL && ag_cluster_route(req, sid) == 0 ? 0 : -1;
}

static void refresh(ag_cluster_t *c);

/* --- push --- */

void ag_cluster_set_push_receiver(ag_server_t *s, ag_cluster_push_receiver_fn fn)
{
    if (s->cluster != NULL)
        s->cluster->push_receiver = fn;
}

int ag_cluster_forward_push(ag_server_t *s, const char *conn_id, const json_t *obj)
{
    ag_cluster_t *c = s->cluster;
    if (c == NULL || c->cmd == NULL)
        return AG_ENOENT;
    json_t *msg = json_pack("{s:s,s:s,s:O}", "type", "push", "to", conn_id, "msg", obj);
    char *text = msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (text == NULL)
        return AG_ENOMEM;
    c->stats.pushes_out++;
    c->store->ops->publish(c->store, "_cluster", text, strlen(text), NULL, NULL);
    free(text);
    return 0;
}

static void on_cluster_message(void *data, const char *channel, const char *payload, size_t len)
{
    ag_cluster_t *c = data;
    if (strcmp(channel, "_up") == 0) {
        refresh(c);
        return;
    }
    if (strcmp(channel, "_cluster") != 0)
        return;
    json_t *msg = json_loadb(payload, len, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    const char *to = json_string_value(json_object_get(msg, "to"));
    json_t *obj = json_object_get(msg, "msg");
    if (type != NULL && strcmp(type, "push") == 0 && to != NULL && json_is_object(obj) && c->push_receiver != NULL &&
        c->push_receiver(c->server, to, obj) == 0)
        c->stats.pushes_in++;
    json_decref(msg);
}

/* --- registration --- */

static void refresh(ag_cluster_t *c)
{
    if (c->address[0] == '\0' || c->route_key == NULL)
        return;
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)c->ttl_ms);
    ag_redis_commandv(c->cmd, NULL, NULL, "SET", c->route_key, c->address, "PX", ttl, NULL);
}

static void on_refresh_timer(h2o_timeout_entry_t *entry)
{
    ag_cluster_t *c = H2O_STRUCT_FROM_MEMBER(ag_cluster_t, refresh_entry, entry);
    refresh(c);
    h2o_timeout_link(c->server->loop, &c->refresh, &c->refresh_entry);
}

int ag_cluster_init(ag_server_t *s, char *errbuf, size_t errlen)
{
    ag_cluster_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    c->server = s;
    c->store = s->store;
    c->cmd = ag__store_redis_cmd(s->store);
    ag_map_init(&c->routes);
    ag_map_init(&c->unreachable);
    h2o_linklist_init_anchor(&c->lookups);
    s->cluster = c;
    if (c->cmd == NULL)
        return 0;
    unsigned char rnd[AG_CLUSTER_TAG_LEN];
    ag_random_bytes(rnd, sizeof(rnd));
    for (int i = 0; i < AG_CLUSTER_TAG_LEN; i++)
        c->tag[i] = TAG_ALPHABET[rnd[i] & 63];
    c->tag[AG_CLUSTER_TAG_LEN] = '\0';
    const char *prefix = ag__store_redis_prefix(s->store);
    if ((c->route_key = malloc(strlen(prefix) + sizeof("route:") + AG_CLUSTER_TAG_LEN)) == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    sprintf(c->route_key, "%sroute:%s", prefix, c->tag);
    c->ttl_ms = (uint64_t)s->config->redis.nodeTtl * 1000;
    if (c->ttl_ms == 0)
        c->ttl_ms = 5000;
    const ag_config_t *cfg = s->config;
    /* a held GET lasts up to pingInterval, an idle SSE stream writes every keepaliveMs, a WebSocket pings every
     * pingInterval: the upstream may be silent that long, plus the pong window */
    uint64_t idle = (uint64_t)cfg->servers.websocket.server.pingInterval + (uint64_t)cfg->servers.websocket.server.pingTimeout;
    if ((uint64_t)cfg->servers.websocket.server.sse.keepaliveMs > idle)
        idle = (uint64_t)cfg->servers.websocket.server.sse.keepaliveMs;
    h2o_timeout_init(s->loop, &c->io_timeout, idle + 5000);
    h2o_timeout_init(s->loop, &c->ws_timeout, idle + 5000);
    h2o_timeout_init(s->loop, &c->refresh, c->ttl_ms / 3 < 100 ? 100 : c->ttl_ms / 3);
    c->refresh_entry.cb = on_refresh_timer;
    ag__store_redis_set_hook(s->store, on_cluster_message, c);
    s->store->ops->subscribe(s->store, "_cluster");
    return 0;
}

void ag_cluster_register(ag_server_t *s)
{
    ag_cluster_t *c = s->cluster;
    if (c == NULL || c->cmd == NULL)
        return;
    /* engine.io sessions live at the Primus pathname and, for socket.io clients, at the socket.io path */
    const char *paths[] = {s->config->servers.websocket.server.pathname,
                           s->config->servers.socketio.enabled ? s->config->servers.socketio.path : NULL};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (paths[i] == NULL || (i > 0 && strcmp(paths[i], paths[0]) == 0))
            continue;
        h2o_pathconf_t *pc = ag_server_register_path(s, paths[i]);
        h2o_create_handler(pc, sizeof(h2o_handler_t))->on_req = on_req;
        h2o_create_filter(pc, sizeof(h2o_filter_t))->on_setup_ostream = on_setup_ostream;
    }
}

void ag_cluster_listening(ag_server_t *s)
{
    ag_cluster_t *c = s->cluster;
    if (c == NULL || c->cmd == NULL)
        return;
    const char *host = getenv("AG_NODE_ADDRESS");
    if (host == NULL || host[0] == '\0') {
        host = s->config->servers.web.bindIP;
        /* a wildcard bind is reachable on loopback at least; set AG_NODE_ADDRESS for nodes on several machines */
        if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
            host = "127.0.0.1";
    }
    snprintf(c->address, sizeof(c->address), "%s:%d", host, ag_server_port(s));
    char info[400];
    snprintf(info, sizeof(info), "%s %s", c->tag, c->address);
    ag__store_redis_set_address(s->store, info);
    refresh(c);
    if (!h2o_timeout_is_linked(&c->refresh_entry))
        h2o_timeout_link(s->loop, &c->refresh, &c->refresh_entry);
    ag_log(AG_LOG_INFO, "cluster", NULL, "node %s (sid tag %s) reachable at %s", s->node_id, c->tag, c->address);
}

void ag_cluster_stop(ag_server_t *s)
{
    ag_cluster_t *c = s->cluster;
    if (c == NULL || c->cmd == NULL)
        return;
    if (h2o_timeout_is_linked(&c->refresh_entry))
        h2o_timeout_unlink(&c->refresh_entry);
}

const ag_cluster_stats_t *ag_cluster_stats(ag_server_t *s)
{
    static const ag_cluster_stats_t none;
    return s->cluster != NULL ? &s->cluster->stats : &none;
}

void ag_cluster_dispose(ag_server_t *s)
{
    ag_cluster_t *c = s->cluster;
    if (c == NULL)
        return;
    s->cluster = NULL;
    if (c->cmd != NULL) {
        ag__store_redis_set_hook(s->store, NULL, NULL);
        /* a clean exit leaves at once instead of waiting for the heartbeat to expire */
        ag__store_redis_leave(s->store, c->route_key);
        if (h2o_timeout_is_linked(&c->refresh_entry))
            h2o_timeout_unlink(&c->refresh_entry);
        h2o_timeout_dispose(s->loop, &c->refresh);
    }
    while (!h2o_linklist_is_empty(&c->lookups)) {
        lookup_t *lk = H2O_STRUCT_FROM_MEMBER(lookup_t, link, c->lookups.next);
        lk->c = NULL;
        h2o_linklist_unlink(&lk->link);
    }
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&c->routes, &it, &k, &v);)
        free(v);
    ag_map_dispose(&c->routes);
    ag_map_dispose(&c->unreachable);
    free(c->route_key);
    /* live tunnels and forwarded requests, which end with the process, link their timers to the proxy timeouts: then
     * the cluster's state stays with the loop (see ag_server_timeout_dispose) */
    int open = 0;
    if (c->cmd != NULL) {
        open |= ag_server_timeout_dispose(s, &c->io_timeout) != 0;
        open |= ag_server_timeout_dispose(s, &c->ws_timeout) != 0;
    }
    if (!open)
        free(c);
}
