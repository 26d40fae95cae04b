/*
 * The engine.io request router (eio.h): which path and which session a request is for, and which transport takes it;
 * the CORS preflight, the handshake that opens a session (after the connect hook when the path asks it first), and the
 * errors engine.io answers. Sessions, their timers and their packets are eio.c's.
 */
#include "eio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "token.h"
#include "http.h"
#include "limit.h"
#include <h2o/websocket.h>

static ag__eio_session_t *session_create(ag_server_t *server, h2o_req_t *req)
{
    char ip[64];
    int port;
    ag_http_peer_info(req, ip, &port);
    ag__eio_session_t *s = ag__eio_session_new(server, ag_limits_exempt(server, ip));
    if (s == NULL)
        return NULL;
    const char *b64 = ag_http_query_param(req, "b64");
    s->b64 = b64 != NULL && strcmp(b64, "1") == 0;
    const char *eio = ag_http_query_param(req, "EIO");
    s->protocol = eio != NULL && strcmp(eio, "3") == 0 ? 3 : 4;
    const char *j = ag_http_query_param(req, "j");
    if (s->protocol == 3 && j != NULL) {
        s->is_jsonp = 1;
        size_t k = 0;
        for (const char *p = j; *p != '\0' && k + 1 < sizeof(s->jsonp); p++)
            if (*p >= '0' && *p <= '9')
                s->jsonp[k++] = *p;
        s->jsonp[k] = '\0';
    }
    return s;
}

static int path_is(const char *pathname, h2o_req_t *req)
{
    size_t plen = strlen(pathname);
    h2o_iovec_t p = req->path_normalized;
    return p.len >= plen && memcmp(p.base, pathname, plen) == 0 && (p.len == plen || (p.len == plen + 1 && p.base[plen] == '/'));
}

/* The handler of one path ag_eio_serve serves. */
typedef struct st_eio_handler_t {
    h2o_handler_t super;
    const char *path; /* the configuration's */
    ag_eio_path_mode_t mode;
    ag__eio_attach_cb attach;
    int hook_at_handshake; /* the connect hook is asked before the handshake (else the upper asks it) */
    int echo;              /* echo mode: no connections, no tokens */
} eio_handler_t;

/* Puts the upper on a fresh session (not in echo mode); info from the handshake request. hook_data non-NULL: the
 * connect hook answered before the handshake went on. claims: the handshake's verified token, or NULL (borrowed). */
static void attach(ag__eio_session_t *s, const eio_handler_t *h, h2o_req_t *req, ag__eio_kind_t kind, json_t *hook_data,
                   json_t *claims)
{
    static const char *const names[] = {"polling", "websocket", "sse"};
    char ip[64];
    int port;
    ag_http_peer_info(req, ip, &port);
    const char *fp = ag_http_query_param(req, s->server->config->servers.web.cookieKey);
    ag_conn_info_t info = {fp, ip, port, names[kind], hook_data != NULL, hook_data, NULL, claims, NULL};
    /* an upper that asks the connect hook itself (socket.io, at its CONNECT) gets what the hook will be shown */
    if (!h->hook_at_handshake)
        info.handshake = ag_backend_handshake_of(s->server, req);
    h->attach(s, &info);
    json_decref(info.handshake);
    if (s->upper == NULL) {
        ag__eio_session_close(s, &AG_DISCONNECT_SERVER_ERROR, 0);
        return;
    }
    ag__eio_on_writable(s); /* what the upper queued before it was attached (the welcome) */
}

/* --- HTTP --- */

static void add_header(h2o_req_t *req, const char *name, const char *value, size_t vlen)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, value, vlen);
}

void ag__eio_add_common_headers(h2o_req_t *req)
{
    ag_http_cors_origin(req);
}

void ag__eio_respond_error(h2o_req_t *req, int code)
{
    if (req->upgrade.base != NULL) {
        /* a failed WebSocket upgrade: the bare message, and the connection goes */
        const char *msg = ag_eio_error_message(code);
        req->http1_is_persistent = 0;
        ag_http_respond(req, 400, "Bad Request", "text/html", msg, strlen(msg));
        return;
    }
    char body[96];
    size_t n = ag_eio_error_body(code, body, sizeof(body));
    ag__eio_add_common_headers(req);
    ag_http_respond(req, code == AG_EIO_ERR_FORBIDDEN ? 403 : 400, code == AG_EIO_ERR_FORBIDDEN ? "Forbidden" : "Bad Request",
                    "application/json", body, n);
}

static void respond_preflight(h2o_req_t *req)
{
    const ag_config_t *cfg = ag_http_server(req)->config;
    ag__eio_add_common_headers(req);
    char methods[256] = "";
    size_t m = 0;
    for (char *const *p = cfg->servers.websocket.server.methods; p != NULL && *p != NULL; p++)
        m += (size_t)snprintf(methods + m, m < sizeof(methods) ? sizeof(methods) - m : 0, "%s%s", m != 0 ? "," : "", *p);
    if (m >= sizeof(methods))
        m = sizeof(methods) - 1;
    add_header(req, "access-control-allow-methods", methods, m);
    size_t hlen;
    const char *hdrs = ag_http_header(req, "access-control-request-headers", &hlen);
    if (hdrs != NULL) {
        add_header(req, "access-control-allow-headers", hdrs, hlen);
        add_header(req, "vary", H2O_STRLIT("Access-Control-Request-Headers"));
    }
    char age[24];
    int an = snprintf(age, sizeof(age), "%d", cfg->servers.websocket.server.maxAge);
    add_header(req, "access-control-max-age", age, (size_t)an);
    ag_http_respond(req, 204, "No Content", NULL, "", 0);
}

static int kind_of(const char *transport, ag__eio_kind_t *kind)
{
    if (strcmp(transport, "polling") == 0)
        *kind = AG__EIO_POLLING;
    else if (strcmp(transport, "websocket") == 0)
        *kind = AG__EIO_WEBSOCKET;
    else if (strcmp(transport, "sse") == 0)
        *kind = AG__EIO_SSE;
    else
        return -1;
    return 0;
}

/* The handshake proper: a session, its first transport and the connection. Takes hook_data; claims borrowed. */
static void handshake(ag_server_t *server, const eio_handler_t *h, h2o_req_t *req, ag__eio_kind_t kind, const char *key,
                      json_t *hook_data, json_t *claims)
{
    ag__eio_session_t *s = session_create(server, req);
    if (s == NULL) {
        json_decref(hook_data);
        ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST);
        return;
    }
    const char *sse_q = ag_http_query_param(req, "sse");
    int sse_offered = sse_q != NULL && strcmp(sse_q, "1") == 0;
    if (kind == AG__EIO_POLLING)
        ag__eio_polling_handshake(s, req, sse_offered);
    else if (kind == AG__EIO_WEBSOCKET)
        ag__eio_ws_accept(server, s, req, key);
    else
        ag__eio_sse_get(s, req);
    if (!s->closed)
        attach(s, h, req, kind, hook_data, claims);
    json_decref(hook_data);
}

/* A handshake waiting for the connect hook. It lives in the request's pool: when the client goes first, the pool's
 * destructor cancels the call. */
typedef struct {
    ag_server_t *server;
    const eio_handler_t *handler;
    h2o_req_t *req;
    ag__eio_kind_t kind;
    const char *key; /* a header of req */
    ag_backend_call_t *call;
    json_t *claims; /* the handshake's verified token, or NULL */
} pending_handshake_t;

static void on_pending_handshake_gone(void *p)
{
    pending_handshake_t *ph = p;
    if (ph->call != NULL)
        ag_backend_cancel(ph->call);
    ph->call = NULL;
    json_decref(ph->claims);
    ph->claims = NULL;
}

/* A handshake refused (by the connect hook, or for its token): engine.io's handshake error {code: 4, message}; a
 * WebSocket upgrade gets the bare text. */
static void respond_refused(h2o_req_t *req, const char *refusal)
{
    json_t *body = json_pack("{s:i,s:s}", "code", AG_EIO_ERR_FORBIDDEN, "message", refusal);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    const char *out = text != NULL ? text : "{\"code\":4,\"message\":\"refused\"}";
    if (req->upgrade.base != NULL) {
        req->http1_is_persistent = 0;
        ag_http_respond(req, 403, "Forbidden", "text/plain", refusal, strlen(refusal));
    } else {
        ag__eio_add_common_headers(req);
        ag_http_respond(req, 403, "Forbidden", "application/json", out, strlen(out));
    }
    free(text);
    json_decref(body);
}

static void on_connect_answer(void *data, const char *refusal, json_t *reply)
{
    pending_handshake_t *ph = data;
    ph->call = NULL;
    h2o_req_t *req = ph->req;
    if (refusal != NULL) {
        respond_refused(req, refusal);
        return;
    }
    if (ph->server->stopping) {
        ag__eio_add_common_headers(req);
        ag_http_respond(req, 503, "Service Unavailable", "text/plain", H2O_STRLIT("shutting down"));
        return;
    }
    json_t *d = json_object_get(reply, "data");
    handshake(ph->server, ph->handler, req, ph->kind, ph->key, json_is_object(d) ? json_incref(d) : json_object(), ph->claims);
}

/* Takes claims. */
static void ask_connect(ag_server_t *server, const eio_handler_t *h, h2o_req_t *req, ag__eio_kind_t kind, const char *key,
                        json_t *claims)
{
    static const char *const names[] = {"polling", "websocket", "sse"};
    /* one reference, the pool's: dropped when the request goes */
    pending_handshake_t *ph = h2o_mem_alloc_shared(&req->pool, sizeof(*ph), on_pending_handshake_gone);
    *ph = (pending_handshake_t){server, h, req, kind, key, NULL, claims};
    char ip[64];
    int port;
    ag_http_peer_info(req, ip, &port);
    const char *fp = ag_http_query_param(req, server->config->servers.web.cookieKey);
    json_t *params = ag_backend_handshake_of(server, req);
    if (params != NULL) {
        json_object_set_new(params, "remoteIP", json_string(ip));
        json_object_set_new(params, "transport", json_string(names[kind]));
        if (fp != NULL && fp[0] != '\0')
            json_object_set_new(params, "fingerprint", json_string(fp));
        json_t *sub = json_object_get(claims, "sub");
        if (json_is_string(sub))
            json_object_set(params, "user", sub);
        if (claims != NULL)
            json_object_set(params, "claims", claims);
    }
    ag_backend_ask(server, AG_HOOK_CONNECT, params, fp, ip, on_connect_answer, ph, &ph->call);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    eio_handler_t *h = (eio_handler_t *)self;
    ag_server_t *server = ag_http_server(req);
    const ag_config_t *cfg = server->config;
    const char *eio = ag_http_query_param(req, "EIO");
    if (!path_is(h->path, req) || (eio == NULL && h->mode == AG_EIO_PATH_SHARED))
        return -1;
    if (eio == NULL)
        eio = ""; /* on a path of its own, engine.io's answer: code 5 once the transport and method pass */
    ag__eio_node_t *n = ag__eio_node(server);
    /* Every request, not only the handshake: a sid travels in URLs and logs, and a page that learnt one must not
     * drive the session from a foreign origin (engine.io's allowRequest, code 4). */
    if (ag_http_origin_check(req) == AG_HTTP_ORIGIN_REFUSED) {
        ag__eio_respond_error(req, AG_EIO_ERR_FORBIDDEN);
        return 0;
    }
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS"))) {
        respond_preflight(req);
        return 0;
    }
    const char *transport = ag_http_query_param(req, "transport");
    ag__eio_kind_t kind;
    if (transport == NULL || !ag_config_list_has(cfg->servers.websocket.server.transports, transport) ||
        kind_of(transport, &kind) != 0) {
        ag__eio_respond_error(req, AG_EIO_ERR_TRANSPORT_UNKNOWN);
        return 0;
    }
    const char *key = NULL;
    int is_upgrade = h2o_is_websocket_handshake(req, &key) == 0 && key != NULL;
    int is_get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"));
    int is_post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    const char *sid = ag_http_query_param(req, "sid");
    if (sid != NULL) {
        ag__eio_session_t *s = ag_map_get(&n->sessions, sid);
        if (s != NULL && !s->closed && ag__eio_heartbeat_expired(s)) {
            ag_debug("eio", s->sid, "ping timeout (seen by a request)");
            ag__eio_session_close_self(s, &AG_DISCONNECT_HEARTBEAT);
            s = NULL; /* the close may have released the last reference */
        }
        if (s == NULL || s->closed) {
            ag__eio_respond_error(req, AG_EIO_ERR_UNKNOWN_SID);
            return 0;
        }
        if (s->protocol == 3 && kind == AG__EIO_SSE) {
            ag__eio_respond_error(req, AG_EIO_ERR_TRANSPORT_UNKNOWN); /* SSE is a protocol 4 extension */
            return 0;
        }
        if (kind == AG__EIO_WEBSOCKET) {
            if (!is_upgrade)
                ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST); /* a proxy stripped Upgrade: polling goes on */
            else
                ag__eio_ws_accept(server, s, req, key);
            return 0;
        }
        if (kind == AG__EIO_POLLING) {
            if (s->upgraded || s->transport == NULL || s->transport->ops->kind != AG__EIO_POLLING)
                ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST);
            else if (is_get)
                ag__eio_polling_get(s, req);
            else if (is_post)
                ag__eio_post(s, s->transport, req);
            else
                ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST);
            return 0;
        }
        /* sse */
        if (is_get) {
            ag__eio_sse_get(s, req);
        } else if (is_post) {
            ag__eio_transport_t *t = s->transport != NULL && s->transport->ops->kind == AG__EIO_SSE ? s->transport
                                     : s->probe != NULL && s->probe->ops->kind == AG__EIO_SSE       ? s->probe
                                                                                                    : NULL;
            if (t == NULL)
                ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST);
            else
                ag__eio_post(s, t, req);
        } else {
            ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST);
        }
        return 0;
    }
    /* handshake */
    if (!is_get) {
        ag__eio_respond_error(req, AG_EIO_ERR_BAD_HANDSHAKE_METHOD);
        return 0;
    }
    if (kind == AG__EIO_WEBSOCKET && !is_upgrade) {
        ag__eio_respond_error(req, AG_EIO_ERR_BAD_REQUEST);
        return 0;
    }
    if (strcmp(eio, "4") != 0 && !(strcmp(eio, "3") == 0 && cfg->servers.websocket.server.allowEIO3)) {
        ag__eio_respond_error(req, AG_EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION);
        return 0;
    }
    if (strcmp(eio, "3") == 0 && kind == AG__EIO_SSE) {
        ag__eio_respond_error(req, AG_EIO_ERR_TRANSPORT_UNKNOWN); /* SSE is a protocol 4 extension */
        return 0;
    }
    if (server->stopping) {
        /* documented in the README: a node that is stopping takes no new sessions */
        ag__eio_add_common_headers(req);
        ag_http_respond(req, 503, "Service Unavailable", "text/plain", H2O_STRLIT("shutting down"));
        return 0;
    }
    if (!ag_limits_handshake(req)) {
        ag__eio_add_common_headers(req);
        ag_limits_respond_refused(req);
        return 0;
    }
    /* the token first, then the connect hook; an upper that reads a token of its own (socket.io's CONNECT auth) may
     * still get one when the handshake has none */
    json_t *claims = NULL;
    if (!h->echo) {
        ag_token_err_t terr = ag_token_check_request(server, req, !h->hook_at_handshake, &claims);
        if (terr != AG_TOKEN_OK) {
            respond_refused(req, ag_token_client_error(terr));
            return 0;
        }
    }
    if (h->hook_at_handshake && ag_backend_has(server, AG_HOOK_CONNECT)) {
        ask_connect(server, h, req, kind, key, claims);
        return 0;
    }
    handshake(server, h, req, kind, key, json_object(), claims);
    json_decref(claims);
    return 0;
}

int ag_eio_serve(ag_server_t *s, const char *path, ag_eio_path_mode_t mode, ag__eio_attach_cb attach, int hook_at_handshake)
{
    h2o_pathconf_t *pc = ag_server_register_path(s, path);
    if (pc == NULL)
        return AG_ENOMEM;
    eio_handler_t *h = (eio_handler_t *)h2o_create_handler(pc, sizeof(*h));
    h->super.on_req = on_req;
    h->path = path;
    h->mode = mode;
    /* echo mode is the endpoint's, whatever the path would carry */
    h->attach = s->config->servers.websocket.server.echo ? ag__eio_attach_echo : attach;
    h->hook_at_handshake = hook_at_handshake && !s->config->servers.websocket.server.echo; /* echo has no connections */
    h->echo = s->config->servers.websocket.server.echo;
    return 0;
}
