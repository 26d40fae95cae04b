#include "cluster_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http.h"

/* a cached route stays trusted this long; after that the owner's registration is read again */
#define ROUTE_FRESH_MS 1000
/* cached routes beyond this many are pruned of the stale ones (a route per node boot seen) */
#define ROUTES_PRUNE_AT 64
/* a request header older nodes used between themselves; nothing believes it any more, it is only removed */
#define OLD_LOCAL_HEADER "x-actiongate-route-local"

typedef struct st_route_t {
    char host[64];
    uint16_t port;
    char address[80]; /* as registered: "host:port" */
    char token[64];
    uint64_t fetched_at;
} route_t;

typedef struct st_lookup_t lookup_t;

/* An owner lookup in the registry while the request waits. The request may go away first (HTTP/2 reset, shutdown): a
 * pool-owned guard clears lookup->req when the request's pool is released. */
struct st_lookup_t {
    ag_cluster_t *c;
    h2o_req_t *req;
    h2o_handler_t *handler; /* the routing handler: an unknown owner continues with the handlers after it */
    lookup_t **guard;
    h2o_linklist_t link;
    char tag[AG_CLUSTER_TAG_LEN + 1];
};

static const char TAG_ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void random_text(char *out, size_t n)
{
    unsigned char rnd[32];
    ag_random_bytes(rnd, n);
    for (size_t i = 0; i < n; i++)
        out[i] = TAG_ALPHABET[rnd[i] & 63];
    out[n] = '\0';
}

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
    if (c != NULL && c->clustered && strnlen(sid, AG_CLUSTER_TAG_LEN) == AG_CLUSTER_TAG_LEN)
        memcpy(sid, c->tag, AG_CLUSTER_TAG_LEN);
}

int ag_cluster_is_local_sid(ag_server_t *s, const char *sid)
{
    ag_cluster_t *c = s->cluster;
    if (c == NULL || !c->clustered)
        return 1;
    return strncmp(sid, c->tag, AG_CLUSTER_TAG_LEN) == 0;
}

/* --- the forwarded-request header --- */

/* Compares without leaking where the first difference is. */
static int same_secret(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    unsigned char diff = alen != blen;
    for (size_t i = 0; i < alen && i < blen; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

static void delete_headers(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i;
    while ((i = h2o_find_header_by_str(&req->headers, name, len, -1)) != -1)
        h2o_delete_header(&req->headers, i);
}

/* Whether a node forwarded req to us: it carries our token, which only the registry tells. Anything else a client
 * sent under the cluster's header names is removed, so it neither pins a request here nor reaches an owner. */
static int forwarded_by_node(ag_cluster_t *c, h2o_req_t *req)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT(AG_CLUSTER_FORWARDED_HEADER), -1);
    int ok = i != -1 && h2o_find_header_by_str(&req->headers, H2O_STRLIT(AG_CLUSTER_FORWARDED_HEADER), i) == -1 &&
             same_secret(req->headers.entries[i].value.base, req->headers.entries[i].value.len, c->token);
    if (!ok && i != -1) {
        c->stats.forged_header++;
        ag_debug("cluster", NULL, "a request carried %s without this node's token: removed", AG_CLUSTER_FORWARDED_HEADER);
    }
    if (!ok)
        delete_headers(req, H2O_STRLIT(AG_CLUSTER_FORWARDED_HEADER));
    delete_headers(req, H2O_STRLIT(OLD_LOCAL_HEADER));
    return ok;
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

/* Sends req to the owner at rt, an address read from the registry (never one derived from the request: the overrides
 * name the upstream, so h2o's proxy does not look at Host). Returns 1 without touching req when rt is this node itself
 * (a route left by this address's previous process): the caller handles it here. */
static int forward(ag_cluster_t *c, h2o_req_t *req, const route_t *rt)
{
    if (strcmp(rt->address, c->address) == 0)
        return 1;
    client_init(c);
    h2o_req_overrides_t *o = h2o_mem_alloc_pool(&req->pool, sizeof(*o));
    *o = (h2o_req_overrides_t){NULL};
    o->client_ctx = &c->client_ctx;
    o->hostport.host = h2o_strdup(&req->pool, rt->host, strlen(rt->host));
    o->hostport.port = rt->port;
    delete_headers(req, H2O_STRLIT(AG_CLUSTER_FORWARDED_HEADER));
    h2o_add_header_by_str(&req->pool, &req->headers, H2O_STRLIT(AG_CLUSTER_FORWARDED_HEADER), 0, NULL,
                          h2o_strdup(&req->pool, rt->token, strlen(rt->token)).base, strlen(rt->token));
    if (req->upgrade.base != NULL)
        c->stats.forwarded_ws++;
    else
        c->stats.forwarded_http++;
    ag_debug("cluster", NULL, "forwarding %.*s %.*s to %s", (int)req->method.len, req->method.base, (int)req->path.len,
             req->path.base, rt->address);
    h2o_reprocess_request(req, req->method, req->scheme, req->authority, req->path, o, 0);
    return 0;
}

/* The owner is not registered (or cannot be asked): the request goes on to this node's engine.io handler, where its sid
 * is unknown. Deferred: this runs from a store callback, not from inside the handler. */
static void handle_here(ag_cluster_t *c, h2o_req_t *req, h2o_handler_t *handler)
{
    c->stats.unknown_owner++;
    h2o_delegate_request_deferred(req, handler);
}

/* "host:port" as the registry holds it; the port is digits only. */
static int parse_address(const char *s, size_t len, route_t *rt)
{
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (s[i] == ':')
            colon = s + i;
    size_t hlen = colon != NULL ? (size_t)(colon - s) : 0, plen = colon != NULL ? len - hlen - 1 : 0;
    if (colon == NULL || hlen == 0 || hlen >= sizeof(rt->host) || len >= sizeof(rt->address) || plen == 0 || plen > 5)
        return -1;
    unsigned long p = 0;
    for (size_t i = 0; i < plen; i++) {
        if (colon[1 + i] < '0' || colon[1 + i] > '9')
            return -1;
        p = p * 10 + (unsigned long)(colon[1 + i] - '0');
    }
    if (p == 0 || p > 65535)
        return -1;
    memcpy(rt->host, s, hlen);
    rt->host[hlen] = '\0';
    memcpy(rt->address, s, len);
    rt->address[len] = '\0';
    rt->port = (uint16_t)p;
    return 0;
}

/* A registry answer {address, token} into rt; -1 when it is not one. */
static int route_of(const json_t *node, route_t *rt)
{
    const char *addr = json_string_value(json_object_get(node, "address"));
    const char *token = json_string_value(json_object_get(node, "token"));
    if (addr == NULL || token == NULL || strlen(token) >= sizeof(rt->token) || parse_address(addr, strlen(addr), rt) != 0)
        return -1;
    snprintf(rt->token, sizeof(rt->token), "%s", token);
    return 0;
}

static void prune_routes(ag_cluster_t *c, uint64_t now)
{
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&c->routes, &it, &k, &v);)
        if (now - ((route_t *)v)->fetched_at >= ROUTE_FRESH_MS)
            free(ag_map_del(&c->routes, k));
}

static void remember_route(ag_cluster_t *c, const char *tag, const route_t *rt)
{
    route_t *cached = ag_map_get(&c->routes, tag);
    if (cached == NULL) {
        if (c->routes.size >= ROUTES_PRUNE_AT)
            prune_routes(c, rt->fetched_at);
        if ((cached = malloc(sizeof(*cached))) != NULL && ag_map_set(&c->routes, tag, cached) != 0) {
            free(cached);
            cached = NULL;
        }
    }
    if (cached != NULL)
        *cached = *rt;
}

static void on_guard_dispose(void *p)
{
    lookup_t **guard = p;
    if (*guard != NULL)
        (*guard)->req = NULL;
}

/* The registry's answer (possibly before node_lookup returned). */
static void on_lookup(void *data, const char *err, json_t *result)
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
        if (err == NULL && route_of(result, &rt) == 0) {
            rt.fetched_at = h2o_now(c->server->loop);
            remember_route(c, lk->tag, &rt);
            if (forward(c, req, &rt) != 0)
                handle_here(c, req, lk->handler);
        } else {
            free(ag_map_del(&c->routes, lk->tag));
            handle_here(c, req, lk->handler);
        }
    }
    free(lk);
}

/* Routes an engine.io request for sid. 0: taken over (forwarded to the owner, or continued after handler once the
 * owner turned out unknown); 1: this node handles it (its own sid, no cluster, a node forwarded it here, or an owner
 * known to be unreachable). */
static int route(ag_cluster_t *c, h2o_handler_t *handler, h2o_req_t *req, const char *sid)
{
    char tag[AG_CLUSTER_TAG_LEN + 1];
    if (!c->clustered || forwarded_by_node(c, req) || ag_cluster_is_local_sid(c->server, sid) ||
        ag_cluster_owner_of_sid(sid, tag) != 0)
        return 1;
    uint64_t now = h2o_now(c->server->loop);
    /* its node refused the last forward: dead, though its route has not expired yet */
    uintptr_t failed_at = (uintptr_t)ag_map_get(&c->unreachable, tag);
    if (failed_at != 0) {
        if (now - failed_at < c->ttl_ms) {
            c->stats.unknown_owner++;
            return 1;
        }
        ag_map_del(&c->unreachable, tag);
    }
    route_t *rt = ag_map_get(&c->routes, tag);
    if (rt != NULL && now - rt->fetched_at < ROUTE_FRESH_MS)
        return forward(c, req, rt);
    lookup_t *lk = calloc(1, sizeof(*lk));
    if (lk == NULL)
        return 1;
    lk->c = c;
    lk->req = req;
    lk->handler = handler;
    memcpy(lk->tag, tag, sizeof(tag));
    lk->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*lk->guard), on_guard_dispose);
    *lk->guard = lk;
    h2o_linklist_insert(&c->lookups, &lk->link);
    c->store->ops->node_lookup(c->store, tag, on_lookup, lk);
    return 0;
}

static const char *owner_key(h2o_req_t *req);

/* Whether h2o's proxy could not connect to the owner at all. Only that says the owner is gone: a 502 for a failure later
 * in the exchange is one request's trouble, and must not let one request make a live owner unreachable from here. */
static int connect_failed(h2o_req_t *req)
{
    for (size_t i = 0; i < req->error_logs.size; i++) {
        h2o_iovec_t m = req->error_logs.entries[i].msg;
        if (h2o_memis(m.base, m.len, h2o_socket_error_conn_fail, strlen(h2o_socket_error_conn_fail)) ||
            h2o_memis(m.base, m.len, H2O_STRLIT("connection timeout")))
            return 1;
    }
    return 0;
}

/* A forward that failed (h2o's proxy answers 502 when the owner refuses the connection): remember the owner as
 * unreachable until its route expires, so the session's next request is answered here, as unknown. */
static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    ag_cluster_t *c = ag_http_server(req)->cluster;
    char tag[AG_CLUSTER_TAG_LEN + 1];
    if (c != NULL && req->res.status == 502 && req->overrides != NULL && req->overrides->client_ctx == &c->client_ctx &&
        connect_failed(req) && ag_cluster_owner_of_sid(owner_key(req), tag) == 0) {
        uint64_t now = h2o_now(c->server->loop);
        ag_map_set(&c->unreachable, tag, (void *)(uintptr_t)(now != 0 ? now : 1));
        free(ag_map_del(&c->routes, tag));
        ag_log(AG_LOG_WARN, "cluster", NULL, "node with sid tag %s unreachable: its sessions are unknown here", tag);
    }
    h2o_setup_next_ostream(req, slot);
}

/* What names the node a request belongs to: an engine.io request's sid; else, for the first request of a resume's
 * new connection (a /primus WebSocket, an engine.io handshake), the resume parameter, the tag the resumable connection
 * was given (ag_cluster_tag), so that the new carrier is made where the connection it resumes lives. */
static const char *owner_key(h2o_req_t *req)
{
    const char *sid = ag_http_query_param(req, "EIO") != NULL ? ag_http_query_param(req, "sid") : NULL;
    return sid != NULL ? sid : ag_http_query_param(req, AG_CLUSTER_RESUME_PARAM);
}

/* The first handler on the engine.io path: takes requests owned elsewhere, passes everything else on. */
static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    ag_cluster_t *c = ag_http_server(req)->cluster;
    if (c == NULL)
        return -1;
    const char *key = owner_key(req);
    return key != NULL && route(c, self, req, key) == 0 ? 0 : -1;
}

int ag_cluster_is_unreachable(ag_server_t *s, const char *tag)
{
    ag_cluster_t *c = s->cluster;
    uintptr_t failed_at = c != NULL ? (uintptr_t)ag_map_get(&c->unreachable, tag) : 0;
    return failed_at != 0 && h2o_now(s->loop) - failed_at < c->ttl_ms;
}

const char *ag_cluster_tag(ag_server_t *s)
{
    ag_cluster_t *c = s->cluster;
    return c != NULL && c->clustered ? c->tag : NULL;
}

/* --- push --- */

void ag_cluster_set_push_receiver(ag_server_t *s, ag_cluster_push_receiver_fn fn)
{
    if (s->cluster != NULL)
        s->cluster->push_receiver = fn;
}

void ag_cluster_set_rpc_receiver(ag_server_t *s, ag_cluster_rpc_receiver_fn fn)
{
    if (s->cluster != NULL)
        s->cluster->rpc_receiver = fn;
}

int ag_cluster_forward_push(ag_server_t *s, const char *conn_id, const json_t *obj)
{
    ag_cluster_t *c = s->cluster;
    if (c == NULL || !c->clustered)
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

static void on_node_event(void *data, const char *channel, const char *payload, size_t len)
{
    ag_cluster_t *c = data;
    if (strcmp(channel, "_rpc") == 0) { /* redis.compat actionhero: the app's cluster RPC */
        if (c->rpc_receiver != NULL)
            c->rpc_receiver(c->server, payload, len);
        return;
    }
    if (strcmp(channel, c->reply_channel) == 0) {
        json_t *msg = json_loadb(payload, len, 0, NULL);
        ag__cluster_reply_in(c, msg);
        json_decref(msg);
        return;
    }
    if (strcmp(channel, "_cluster") != 0)
        return;
    json_t *msg = json_loadb(payload, len, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (type != NULL && strcmp(type, "call") == 0) {
        ag__cluster_call_in(c, msg);
        json_decref(msg);
        return;
    }
    const char *to = json_string_value(json_object_get(msg, "to"));
    json_t *obj = json_object_get(msg, "msg");
    if (type != NULL && strcmp(type, "push") == 0 && to != NULL && json_is_object(obj) && c->push_receiver != NULL &&
        c->push_receiver(c->server, to, obj) == 0)
        c->stats.pushes_in++;
    json_decref(msg);
}

/* --- registration --- */

static int publish_node(ag_cluster_t *c)
{
    ag_store_node_t self = {.tag = c->tag, .address = c->address, .token = c->token};
    return c->store->ops->node_register(c->store, &self);
}

int ag_cluster_is_tag(const char *tag)
{
    return tag != NULL && strlen(tag) == AG_CLUSTER_TAG_LEN && strspn(tag, TAG_ALPHABET) == AG_CLUSTER_TAG_LEN;
}

int ag_cluster_adopt_tag(ag_server_t *s, const char *tag)
{
    ag_cluster_t *c = s->cluster;
    if (c == NULL || !c->clustered)
        return AG_ENOENT;
    if (!ag_cluster_is_tag(tag))
        return AG_EINVAL;
    memcpy(c->tag, tag, AG_CLUSTER_TAG_LEN + 1);
    return publish_node(c);
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
    ag_map_init(&c->routes);
    ag_map_init(&c->unreachable);
    ag_map_init(&c->calls);
    h2o_linklist_init_anchor(&c->lookups);
    h2o_linklist_init_anchor(&c->open_calls);
    s->cluster = c;
    random_text(c->tag, AG_CLUSTER_TAG_LEN);
    random_text(c->token, AG__CLUSTER_TOKEN_LEN);
    /* the address comes once the listener is bound (ag_cluster_listening); a store without a registry is no cluster */
    int ret = publish_node(c);
    if (ret == AG_ENOENT)
        return 0;
    if (ret != 0) {
        snprintf(errbuf, errlen, "cluster: %s", ag_strerror(ret));
        return ret;
    }
    c->clustered = 1;
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
    s->store->on_node_event = on_node_event;
    s->store->on_node_event_data = c;
    h2o_timeout_init(s->loop, &c->call_timeout, (uint64_t)cfg->serverApi.timeout);
    snprintf(c->reply_channel, sizeof(c->reply_channel), "_reply:%s", s->node_id);
    s->store->ops->subscribe(s->store, "_cluster");
    s->store->ops->subscribe(s->store, c->reply_channel);
    return 0;
}

void ag_cluster_register(ag_server_t *s)
{
    ag_cluster_t *c = s->cluster;
    if (c == NULL || !c->clustered)
        return;
    /* engine.io sessions live at the Primus pathname, at the engine.io path and, for socket.io clients, at the socket.io
     * path */
    const ag_config_t *cfg = s->config;
    const char *paths[] = {cfg->servers.websocket.server.pathname,
                           cfg->servers.engineio.path[0] != '\0' ? cfg->servers.engineio.path : NULL,
                           cfg->servers.socketio.enabled ? cfg->servers.socketio.path : NULL};
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
    if (c == NULL || !c->clustered)
        return;
    const char *host = getenv("AG_NODE_ADDRESS");
    if (host == NULL || host[0] == '\0') {
        host = s->config->servers.web.bindIP;
        /* a wildcard bind is reachable on loopback at least; set AG_NODE_ADDRESS for nodes on several machines */
        if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
            host = "127.0.0.1";
    }
    snprintf(c->address, sizeof(c->address), "%s:%d", host, ag_server_forward_port(s));
    int ret = publish_node(c);
    if (ret != 0)
        ag_log(AG_LOG_ERROR, "cluster", NULL, "node address %s not registered: %s", c->address, ag_strerror(ret));
    else
        ag_log(AG_LOG_INFO, "cluster", NULL, "node %s (sid tag %s) reachable at %s", s->node_id, c->tag, c->address);
}

void ag_cluster_stop(ag_server_t *s)
{
    /* nothing to stop: the registration is kept alive by the store's heartbeat until ag_cluster_dispose leaves */
    (void)s;
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
    if (c->clustered) {
        s->store->on_node_event = NULL;
        s->store->on_node_event_data = NULL;
        /* a clean exit leaves at once instead of waiting for the heartbeat to expire */
        s->store->ops->node_leave(s->store);
    }
    while (!h2o_linklist_is_empty(&c->lookups)) {
        lookup_t *lk = H2O_STRUCT_FROM_MEMBER(lookup_t, link, c->lookups.next);
        lk->c = NULL;
        h2o_linklist_unlink(&lk->link);
    }
    /* calls still waiting stay with their requests, which cancel them (or end with the process) */
    while (!h2o_linklist_is_empty(&c->open_calls)) {
        ag_cluster_call_t *k = H2O_STRUCT_FROM_MEMBER(ag_cluster_call_t, link, c->open_calls.next);
        ag__cluster_call_end(k);
        k->c = NULL;
    }
    ag_map_dispose(&c->calls);
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&c->routes, &it, &k, &v);)
        free(v);
    ag_map_dispose(&c->routes);
    ag_map_dispose(&c->unreachable);
    /* live tunnels and forwarded requests, which end with the process, link their timers to the proxy timeouts: then
     * the cluster's state stays with the loop (see ag_server_timeout_dispose) */
    int open = 0;
    if (c->clustered) {
        open |= ag_server_timeout_dispose(s, &c->io_timeout) != 0;
        open |= ag_server_timeout_dispose(s, &c->ws_timeout) != 0;
        open |= ag_server_timeout_dispose(s, &c->call_timeout) != 0;
    }
    if (!open)
        free(c);
}
