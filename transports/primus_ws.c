/*
 * Primus "websockets" framing over ag_ws_t. Each text frame is one JSON value; Primus control frames are JSON strings
 * ("primus::ping::<ms>", "primus::pong::<ms>", "primus::id::", "primus::server::close").
 *
 * Heartbeat: one timer for the whole node (not one per connection). Each tick closes the connections that sent no pong
 * (and no WebSocket PING) since the previous tick, without "primus::server::close" so their clients reconnect, and
 * pings the others.
 */
#include "primus.h"

#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "token.h"
#include "http.h"
#include "limit.h"
#include "ws.h"

typedef struct st_primus_t {
    ag_ws_t *ws;
    ag_conn_t *conn;
    h2o_linklist_t link; /* in the node's heartbeat list */
    int alive;
} primus_t;

/* The node's Primus sockets and their one heartbeat timer (s->primus). */
typedef struct st_ag_primus_node_t {
    ag_server_t *server;
    h2o_linklist_t all;
    h2o_timeout_t heartbeat;
    h2o_timeout_entry_t tick;
} primus_node_t;

#define PRIMUS_SERVER_CLOSE "\"primus::server::close\""

static void on_pending(ag_conn_t *conn, void *self)
{
    primus_t *p = self;
    ag_frame_t *f;
    while ((f = ag_conn_shift(conn)) != NULL) {
        ag_ws_send(p->ws, f->data, f->len, f->binary);
        ag_frame_release(f);
    }
    /* what the socket has not taken yet is the consumer's backlog */
    ag_conn_note_backlog(conn, ag_ws_queued_bytes(p->ws), ag_ws_queued_count(p->ws));
}

static void transport_close(ag_conn_t *conn, void *self, const ag_disconnect_t *why)
{
    primus_t *p = self;
    on_pending(conn, self);
    if (!why->reconnect)
        ag_ws_send(p->ws, PRIMUS_SERVER_CLOSE, sizeof(PRIMUS_SERVER_CLOSE) - 1, 0);
    /* Primus ends with a close frame without a status code; the limits and an expired token keep their codes so
     * clients can tell (and fetch a fresh token before they come back). */
    uint16_t code = why == &AG_DISCONNECT_TOO_BIG || why == &AG_DISCONNECT_SLOW || why == &AG_DISCONNECT_RATE ||
                            why == &AG_DISCONNECT_TOKEN_EXPIRED
                        ? why->code
                        : 0;
    ag_ws_close(p->ws, code, why->reason);
}

static void rebind(ag_conn_t *to, void *self)
{
    ((primus_t *)self)->conn = to;
}

static const ag_transport_t primus_transport = {"websocket", on_pending, transport_close, "primus", rebind};

static int starts_with(const uint8_t *data, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(data, prefix, n) == 0;
}

static void on_message(ag_ws_t *ws, const uint8_t *data, size_t len, int binary)
{
    primus_t *p = ws->data;
    if (!binary && starts_with(data, len, "\"primus::") && data[len - 1] == '"') {
        /* control strings count against the message rate too (data messages: in ag_conn_on_frame) */
        if (!ag_conn_inbound_control(p->conn))
            return;
        if (starts_with(data, len, "\"primus::pong::")) {
            p->alive = 1;
            return;
        }
        if (len == sizeof("\"primus::id::\"") - 1 && starts_with(data, len, "\"primus::id::\"")) {
            char reply[64];
            int n = snprintf(reply, sizeof(reply), "\"primus::id::%s\"", p->conn->id);
            ag_ws_send(ws, reply, (size_t)n, 0);
            return;
        }
        /* any other "primus::…" string is data for the session layer, as in Primus */
    }
    ag_conn_on_frame(p->conn, (const char *)data, len, binary);
}

static void on_ping(ag_ws_t *ws)
{
    primus_t *p = ws->data;
    if (ag_conn_inbound_control(p->conn))
        p->alive = 1;
}

static void on_closed(ag_ws_t *ws, const ag_disconnect_t *why)
{
    primus_t *p = ws->data;
    if (h2o_linklist_is_linked(&p->link))
        h2o_linklist_unlink(&p->link);
    if (p->conn != NULL)
        ag_conn_on_transport_gone(p->conn, why);
    free(p);
}

static const ag_ws_callbacks_t ws_callbacks = {on_message, on_ping, on_closed};

static void on_tick(h2o_timeout_entry_t *entry)
{
    primus_node_t *node = H2O_STRUCT_FROM_MEMBER(primus_node_t, tick, entry);
    char ping[64];
    int n = snprintf(ping, sizeof(ping), "\"primus::ping::%llu\"", (unsigned long long)ag_now_ms());
    for (h2o_linklist_t *l = node->all.next, *next; l != &node->all; l = next) {
        next = l->next;
        primus_t *p = H2O_STRUCT_FROM_MEMBER(primus_t, link, l);
        if (ag_ws_is_closing(p->ws))
            continue;
        if (!p->alive) {
            ag_log_limited(AG_LOG_INFO, "primus", p->conn->id, "no pong since the last heartbeat; closing");
            ag_conn_close(p->conn, &AG_DISCONNECT_HEARTBEAT);
            continue;
        }
        p->alive = 0;
        ag_ws_send(p->ws, ping, (size_t)n, 0);
    }
    h2o_timeout_link(node->server->loop, &node->heartbeat, &node->tick);
}

static void respond_426(h2o_req_t *req)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store, no-cache, must-revalidate, max-age=0"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("pragma"), 0, NULL, H2O_STRLIT("no-cache"));
    ag_http_respond(req, 426, "Upgrade Required", "text/plain", H2O_STRLIT("Upgrade Required"));
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    ag_server_t *s = ag_http_server(req);
    const ag_config_t *cfg = s->config;
    if (ag_http_query_param(req, "EIO") != NULL)
        return -1; /* engine.io */
    const char *pathname = cfg->servers.websocket.server.pathname;
    size_t plen = strlen(pathname);
    h2o_iovec_t path = req->path_normalized;
    const char *rest = path.base + plen;
    size_t rest_len = path.len - plen;
    if (rest_len == sizeof("/spec") - 1 && memcmp(rest, "/spec", rest_len) == 0) {
        char body[512];
        int n = snprintf(
            body, sizeof(body),
            "{\"pingInterval\":%d,\"pathname\":\"%s\",\"version\":\"%s\",\"parser\":\"json\",\"transformer\":\"engineio\"}",
            cfg->servers.websocket.server.primusPingInterval, pathname, AG_VERSION);
        ag_http_respond(req, 200, "OK", "application/json", body, (size_t)n);
        return 0;
    }
    if (!(rest_len == 0 || (rest_len == 1 && rest[0] == '/')))
        return -1; /* e.g. /primusX or /primus/other: not ours */
    const char *key;
    if (h2o_is_websocket_handshake(req, &key) != 0 || key == NULL) {
        respond_426(req);
        return 0;
    }
    /* A browser sends the page's Origin with every WebSocket handshake, and its cookies too: a socket opened from a
     * page that is not listed would act with the victim's session (cross-site WebSocket hijacking). */
    if (ag_http_origin_check(req) == AG_HTTP_ORIGIN_REFUSED) {
        req->http1_is_persistent = 0;
        ag_http_respond(req, 403, "Forbidden", "text/plain", H2O_STRLIT("Forbidden"));
        return 0;
    }
    if (s->stopping) {
        ag_http_respond(req, 503, "Service Unavailable", "text/plain", H2O_STRLIT("shutting down"));
        return 0;
    }
    if (!ag_limits_handshake(req)) {
        ag_limits_respond_refused(req);
        return 0;
    }
    primus_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -1;
    p->alive = 1;
    char ip[64];
    int port;
    ag_http_peer_info(req, ip, &port);
    const char *fp = ag_http_query_param(req, cfg->servers.web.cookieKey);
    json_t *handshake = ag_backend_handshake_of(s, req); /* before the upgrade, while req is the handler's */
    /* a refusal is Primus' own, over the socket (as the connect hook's): the session layer sends it */
    json_t *claims;
    ag_token_err_t terr = ag_token_check_request(s, req, 0, &claims);
    p->ws = ag_ws_upgrade(req, key, (size_t)cfg->servers.websocket.server.maxLength, &ws_callbacks, p);
    if (p->ws == NULL) {
        json_decref(handshake);
        json_decref(claims);
        free(p);
        return -1;
    }
    primus_node_t *node = s->primus;
    /* the heartbeat starts with the first socket */
    if (!h2o_timeout_is_linked(&node->tick))
        h2o_timeout_link(s->loop, &node->heartbeat, &node->tick);
    h2o_linklist_insert(&node->all, &p->link);
    ag_conn_info_t info = {
        fp, ip, port, "websocket", 0, NULL, handshake, claims, terr != AG_TOKEN_OK ? ag_token_client_error(terr) : NULL};
    p->conn = ag_conn_create(s, &primus_transport, p, &info);
    json_decref(handshake);
    json_decref(claims);
    if (p->conn == NULL) {
        ag_ws_close(p->ws, 1011, "out of memory");
        return 0;
    }
    return 0;
}

int ag_primus_register(ag_server_t *s)
{
    primus_node_t *node = calloc(1, sizeof(*node));
    if (node == NULL)
        return AG_ENOMEM;
    node->server = s;
    h2o_linklist_init_anchor(&node->all);
    h2o_timeout_init(s->loop, &node->heartbeat, (uint64_t)s->config->servers.websocket.server.primusPingInterval);
    node->tick.cb = on_tick;
    s->primus = node;
    h2o_pathconf_t *pc = ag_server_register_path(s, s->config->servers.websocket.server.pathname);
    h2o_handler_t *h = h2o_create_handler(pc, sizeof(*h));
    h->on_req = on_req;
    return 0;
}

void ag_primus_dispose(ag_server_t *s)
{
    primus_node_t *node = s->primus;
    if (node == NULL)
        return;
    s->primus = NULL;
    if (h2o_timeout_is_linked(&node->tick))
        h2o_timeout_unlink(&node->tick);
    /* sockets still open are linked here: then the node stays with the loop */
    if (h2o_linklist_is_empty(&node->all) && ag_server_timeout_dispose(s, &node->heartbeat) == 0)
        free(node);
}
