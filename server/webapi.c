/*
 * /api: actions over plain HTTP. Params come from the query, then a JSON or form body over it; the route names the
 * action (or the "action" param with query routing). The answer is the action's keys plus serverInformation and
 * requesterInformation; the sessionID cookie links the browser's web requests to its socket (fingerprint).
 *
 * An action may finish after the client went away: the h2o request's pool holds a guard whose dispose callback
 * detaches the request from our state, so a late answer is dropped instead of touching freed memory.
 */
#include "webapi.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "actions.h"
#include "http.h"

typedef struct st_web_t web_t;
typedef struct {
    web_t *web;
} guard_t;

struct st_web_t {
    h2o_req_t *req; /* NULL once h2o disposed the request */
    guard_t *guard;
    ag_server_t *server;
    char *fingerprint;
    char uuid[37];
    char ip[64];
    uint64_t started_ms;
};

static void guard_dispose(void *p)
{
    guard_t *g = p;
    if (g->web != NULL)
        g->web->req = NULL;
}

static void web_free(web_t *w)
{
    if (w->guard != NULL)
        w->guard->web = NULL;
    free(w->fingerprint);
    free(w);
}

void ag__http_date(uint64_t ms, char buf[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(buf, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static char *urldecode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (out != NULL)
        ag_http_urldecode_into(out, s, len, 1);
    return out;
}

void ag__parse_form(json_t *obj, const char *s, size_t len)
{
    const char *end = s + len;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        if (amp == NULL)
            amp = end;
        const char *eq = memchr(s, '=', (size_t)(amp - s));
        const char *kend = eq != NULL ? eq : amp;
        if (kend > s) {
            char *k = urldecode(s, (size_t)(kend - s));
            char *v = eq != NULL ? urldecode(eq + 1, (size_t)(amp - eq - 1)) : strdup("");
            json_t *jv = v != NULL ? json_string(v) : NULL; /* NULL when not UTF-8: dropped */
            if (k != NULL && jv != NULL)
                json_object_set_new(obj, k, jv);
            else
                json_decref(jv);
            free(k);
            free(v);
        }
        s = amp + 1;
    }
}

static void add_header(h2o_req_t *req, const char *name, const char *value)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, value, strlen(value));
}

/* CORS as for the socket endpoints: the same origins list, so a page allowed to open the socket may call /api too. */
static void cors_headers(h2o_req_t *req)
{
    ag_http_cors_origin(req);
    add_header(req, "access-control-allow-methods", "HEAD, GET, POST, PUT, PATCH, DELETE, OPTIONS, TRACE");
    add_header(req, "access-control-allow-headers", "Content-Type");
    add_header(req, "x-content-type-options", "nosniff");
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 404:
        return "Not Found";
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Entity";
    case 502:
        return "Bad Gateway";
    case 504:
        return "Gateway Timeout";
    case 503:
        return "Service Unavailable";
    default:
        return status < 500 ? "Bad Request" : "Internal Server Error";
    }
}

static void web_done(ag_action_req_t *r, json_t *result, int status, const char *error)
{
    web_t *w = r->origin;
    h2o_req_t *req = w->req;
    if (req != NULL) {
        const ag_config_t *cfg = w->server->config;
        json_t *body = json_copy(result);
        if (error != NULL)
            json_object_set_new(body, "error", json_string(error));
        /* an upstream app's answer carries its own metadata: the app's view of the request is the one to give */
        if (cfg->servers.web.serverInformation && json_object_get(body, "serverInformation") == NULL)
            json_object_set_new(body, "serverInformation",
                                json_pack("{s:s,s:s,s:I,s:I}", "serverName", cfg->general.serverName, "apiVersion",
                                          cfg->general.apiVersion, "requestDuration", (json_int_t)(ag_now_ms() - w->started_ms),
                                          "currentTime", (json_int_t)ag_now_ms()));
        if (cfg->servers.web.requesterInformation && json_object_get(body, "requesterInformation") == NULL) {
            char id[256];
            snprintf(id, sizeof(id), "%.200s-%s", w->fingerprint, w->uuid);
            json_object_set_new(body, "requesterInformation",
                                json_pack("{s:s,s:s,s:s,s:s,s:O}", "id", id, "fingerprint", w->fingerprint, "messageId", w->uuid,
                                          "remoteIP", w->ip, "receivedParams", r->params));
        }
        char *text = json_dumps(body, AG_JSON_FLAGS);
        json_decref(body);
        if (text == NULL) {
            status = 500;
            text = strdup("{\"error\":\"cannot encode the response\"}");
        }
        ag_http_respond(req, status, reason_of(status), "application/json; charset=utf-8", text, strlen(text));
        free(text);
    }
    web_free(w);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    ag_server_t *s = ag_http_server(req);
    const ag_config_t *cfg = s->config;
    size_t plen = strlen(cfg->servers.web.urlPathForActions) + 1;
    h2o_iovec_t path = req->path_normalized;
    if (path.len < plen || (path.len > plen && path.base[plen] != '/'))
        return -1; /* e.g. /apix: not ours */
    cors_headers(req);
    /* A foreign page cannot read the answer, but a simple cross-site POST would still run the action with the
     * browser's cookies: refused before anything runs. */
    if (ag_http_origin_check(req) == AG_HTTP_ORIGIN_REFUSED) {
        static const char body[] = "{\"error\":\"origin not allowed\"}";
        ag_http_respond(req, 403, "Forbidden", "application/json; charset=utf-8", body, sizeof(body) - 1);
        return 0;
    }
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS"))) {
        ag_http_respond(req, 200, "OK", "text/plain; charset=utf-8", "", 0);
        return 0;
    }

    web_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -1;
    guard_t *g = h2o_mem_alloc_shared(&req->pool, sizeof(*g), guard_dispose);
    g->web = w;
    w->guard = g;
    w->req = req;
    w->server = s;
    w->started_ms = ag_now_ms();
    ag_uuid4(w->uuid);
    int port;
    ag_http_peer_info(req, w->ip, &port);

    const char *cookie = ag_http_cookie(req, cfg->servers.web.cookieKey);
    json_t *valid = cookie != NULL ? json_string(cookie) : NULL; /* a cookie that is not UTF-8 counts as absent */
    json_decref(valid);
    if (cookie != NULL && cookie[0] != '\0' && valid != NULL && strlen(cookie) <= 256) {
        w->fingerprint = strdup(cookie);
    } else {
        unsigned char rnd[20];
        char hex[41], date[32], header[200];
        ag_random_bytes(rnd, sizeof(rnd));
        for (size_t i = 0; i < sizeof(rnd); i++)
            snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
        w->fingerprint = strdup(hex);
        ag__http_date(ag_now_ms() + (uint64_t)cfg->servers.web.cookieExpires, date);
        /* Not HttpOnly: actionhero's client and ours read this cookie in the page and pass it as ?sessionID= on the
         * socket URL, which is how a socket learns its fingerprint. The fingerprint is an identifier a client may
         * choose (any ?sessionID= is taken), not a credential. */
        snprintf(header, sizeof(header), "%.40s=%s;path=/;expires=%s;SameSite=Lax;%s", cfg->servers.web.cookieKey, hex, date,
                 cfg->servers.web.secure ? "Secure;" : "");
        add_header(req, "set-cookie", h2o_strdup(&req->pool, header, SIZE_MAX).base);
    }
    if (w->fingerprint == NULL) {
        web_free(w);
        return -1;
    }

    json_t *params = json_object();
    if (req->query_at != SIZE_MAX)
        ag__parse_form(params, req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
    if (req->entity.base != NULL && req->entity.len != 0) {
        ssize_t ct = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
        h2o_iovec_t type = ct != -1 ? req->headers.entries[ct].value : h2o_iovec_init(H2O_STRLIT(""));
        static const char form[] = "application/x-www-form-urlencoded";
        if (type.len >= sizeof(form) - 1 && strncasecmp(type.base, form, sizeof(form) - 1) == 0) {
            ag__parse_form(params, req->entity.base, req->entity.len);
        } else {
            json_t *body = json_loadb(req->entity.base, req->entity.len, JSON_DECODE_ANY, NULL);
            if (json_is_object(body))
                json_object_update(params, body);
            else if (json_is_array(body))
                json_object_set(params, "payload", body);
            json_decref(body);
        }
    }
    /* The route names the action; otherwise the "action" param does, when query routing is on. */
    if (path.len > plen + 1) {
        const char *name = path.base + plen + 1;
        const char *slash = memchr(name, '/', path.len - plen - 1);
        size_t nlen = slash != NULL ? (size_t)(slash - name) : path.len - plen - 1;
        json_object_set_new(params, "action", json_stringn(name, nlen));
    } else if (!cfg->servers.web.queryRouting) {
        json_object_set_new(params, "action", json_null());
    }
    ag__action_start_as(s, params, NULL, NULL, &(ag__requester_t){w->fingerprint, w->ip}, web_done, w);
    return 0;
}

int ag__webapi_register(ag_server_t *s, char *errbuf, size_t errlen)
{
    char path[256];
    snprintf(path, sizeof(path), "/%s", s->config->servers.web.urlPathForActions);
    h2o_pathconf_t *pc = ag_server_register_path(s, path);
    h2o_handler_t *h = h2o_create_handler(pc, sizeof(*h));
    if (h == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    h->on_req = on_req;
    return 0;
}
