#include "http.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* Refuses a request whose body length is ambiguous (Transfer-Encoding with Content-Length, or two of them) before any
 * handler or upstream sees it: 0 when it answered, -1 to let the next handler run. h2o 2.2.5 drops these headers from
 * req->headers (it picks one and frames the body by it), so the request head is read again from the connection's
 * input buffer, where it stays until the response is done. */
static int guard(h2o_req_t *req);

static int on_req_guard(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    return guard(req);
}

h2o_pathconf_t *ag_server_register_path(ag_server_t *s, const char *path)
{
    h2o_hostconf_t *host = s->h2o_config.hosts[0];
    for (size_t i = 0; i < host->paths.size; i++)
        if (host->paths.entries[i].path.len == strlen(path) && memcmp(host->paths.entries[i].path.base, path, strlen(path)) == 0)
            return &host->paths.entries[i];
    h2o_pathconf_t *pc = h2o_config_register_path(host, path, 0);
    /* every path's first handler: requests with an ambiguous body length stop here, whoever registered the path */
    h2o_create_handler(pc, sizeof(h2o_handler_t))->on_req = on_req_guard;
    return pc;
}

ag_server_t *ag_http_server(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(ag_server_t, ctx, req->conn->ctx);
}

const char *ag_http_header(h2o_req_t *req, const char *name, size_t *len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i == -1)
        return NULL;
    *len = req->headers.entries[i].value.len;
    return req->headers.entries[i].value.base;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t ag_http_urldecode_into(char *out, const char *s, size_t len, int form)
{
    char *o = out;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else if (form && s[i] == '+') {
            *o++ = ' ';
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return (size_t)(o - out);
}

char *ag_http_urldecode(h2o_mem_pool_t *pool, const char *s, size_t len, int form, size_t *outlen)
{
    char *out = h2o_mem_alloc_pool(pool, len + 1);
    size_t n = ag_http_urldecode_into(out, s, len, form);
    if (outlen != NULL)
        *outlen = n;
    return out;
}

const char *ag_http_query_param(h2o_req_t *req, const char *name)
{
    if (req->query_at == SIZE_MAX)
        return NULL;
    const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t nlen = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        if (amp == NULL)
            amp = end;
        const char *eq = memchr(q, '=', (size_t)(amp - q));
        const char *kend = eq != NULL ? eq : amp;
        size_t raw = (size_t)(kend - q);
        int match;
        if (memchr(q, '%', raw) == NULL && memchr(q, '+', raw) == NULL) {
            match = raw == nlen && memcmp(q, name, nlen) == 0; /* nothing to decode: no copy (the common case) */
        } else {
            size_t klen;
            char *key = ag_http_urldecode(&req->pool, q, raw, 1, &klen);
            match = klen == nlen && memcmp(key, name, nlen) == 0;
        }
        if (match)
            return eq != NULL ? ag_http_urldecode(&req->pool, eq + 1, (size_t)(amp - eq - 1), 1, NULL) : "";
        q = amp + 1;
    }
    return NULL;
}

const char *ag_http_cookie(h2o_req_t *req, const char *name)
{
    size_t nlen = strlen(name);
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, i)) != -1;) {
        const char *p = req->headers.entries[i].value.base, *end = p + req->headers.entries[i].value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            if (semi == NULL)
                semi = end;
            const char *eq = memchr(p, '=', (size_t)(semi - p));
            if (eq != NULL && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0)
                return ag_http_urldecode(&req->pool, eq + 1, (size_t)(semi - eq - 1), 0, NULL);
            p = semi;
        }
    }
    return NULL;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

static int is_trusted(ag_server_t *s, const ag_addr_t *addr)
{
    for (char *const *p = s->config->general.trustedProxies; p != NULL && *p != NULL; p++)
        if (ag_addr_match(*p, addr) == 1)
            return 1;
    return 0;
}

static int is_header(const h2o_header_t *h, const char *name)
{
    return h2o_memis(h->name->base, h->name->len, name, strlen(name));
}

typedef struct {
    char ip[64];
    int port; /* 0: none given */
} hop_t;

/* Walks the X-Forwarded-For list from its right end. Returns 1 with *client set when some entry was believed. */
static int walk_forwarded_for(ag_server_t *s, h2o_req_t *req, hop_t *client)
{
    int found = 0;
    for (size_t i = req->headers.size; i-- > 0;) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (!is_header(h, "x-forwarded-for"))
            continue;
        const char *v = h->value.base;
        size_t end = h->value.len;
        for (;;) {
            size_t start = end;
            while (start > 0 && v[start - 1] != ',')
                start--;
            const char *e = v + start;
            size_t elen = end - start;
            while (elen > 0 && is_space(*e))
                e++, elen--;
            if (elen != 0) {
                ag_addr_t addr;
                hop_t hop;
                if (ag_addr_parse(e, elen, &addr, hop.ip, &hop.port) != 0)
                    return found; /* garbage: what is left of it cannot be told apart from what the client wrote */
                *client = hop;
                found = 1;
                if (!is_trusted(s, &addr))
                    return 1;
            }
            if (start == 0)
                break;
            end = start - 1;
        }
    }
    return found;
}

/* The value of the only header of that name, or NULL when there is none or several. */
static const char *single_header(h2o_req_t *req, const char *name, size_t *len)
{
    const char *found = NULL;
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (!is_header(h, name))
            continue;
        if (found != NULL)
            return NULL;
        found = h->value.base;
        *len = h->value.len;
    }
    return found;
}

void ag_http_peer_info(h2o_req_t *req, char ip[64], int *port)
{
    struct sockaddr_storage ss;
    socklen_t sslen = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    char host[NI_MAXHOST];
    size_t hl = sslen != 0 ? h2o_socket_getnumerichost((struct sockaddr *)&ss, sslen, host) : SIZE_MAX;
    ag_addr_t peer;
    ip[0] = '\0';
    *port = 0;
    if (hl == SIZE_MAX || ag_addr_parse(host, hl, &peer, ip, NULL) != 0)
        return;
    *port = h2o_socket_getport((struct sockaddr *)&ss);
    ag_server_t *s = ag_http_server(req);
    if (!is_trusted(s, &peer))
        return;
    hop_t client;
    size_t len;
    const char *v;
    int forwarded = walk_forwarded_for(s, req, &client);
    if (!forwarded && (v = single_header(req, "x-real-ip", &len)) != NULL)
        forwarded = ag_addr_parse(v, len, NULL, client.ip, &client.port) == 0;
    if (!forwarded)
        return;
    memcpy(ip, client.ip, sizeof(client.ip));
    if (client.port != 0) {
        *port = client.port;
    } else if ((v = single_header(req, "x-forwarded-port", &len)) != NULL && len >= 1 && len <= 5) {
        int p = 0;
        for (size_t i = 0; i < len && p >= 0; i++)
            p = v[i] >= '0' && v[i] <= '9' ? p * 10 + (v[i] - '0') : -1;
        if (p >= 1 && p <= 65535)
            *port = p;
    }
}

/* --- origins --- */

static int origin_listed(const ag_config_t *cfg, const char *origin, size_t len)
{
    for (char *const *p = cfg->servers.websocket.server.origins; p != NULL && *p != NULL; p++)
        if (strlen(*p) == len && strncasecmp(*p, origin, len) == 0)
            return 1;
    return 0;
}

static const char *request_origin(h2o_req_t *req, size_t *len, int *several)
{
    const char *found = NULL;
    *several = 0;
    for (ssize_t i = -1; (i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), i)) != -1;) {
        if (found != NULL)
            *several = 1;
        found = req->headers.entries[i].value.base;
        *len = req->headers.entries[i].value.len;
    }
    return found;
}

ag_http_origin_t ag_http_origin_check(h2o_req_t *req)
{
    const ag_config_t *cfg = ag_http_server(req)->config;
    size_t len = 0;
    int several;
    const char *origin = request_origin(req, &len, &several);
    if (origin == NULL)
        return AG_HTTP_ORIGIN_NONE;
    if (several)
        return AG_HTTP_ORIGIN_REFUSED;
    if (ag_config_list_has(cfg->servers.websocket.server.origins, "*") || origin_listed(cfg, origin, len))
        return AG_HTTP_ORIGIN_ALLOWED;
    return AG_HTTP_ORIGIN_REFUSED;
}

static void add_res_header(h2o_req_t *req, const char *name, const char *value, size_t vlen)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, value, vlen);
}

void ag_http_cors_origin(h2o_req_t *req)
{
    const ag_config_t *cfg = ag_http_server(req)->config;
    if (ag_config_list_has(cfg->servers.websocket.server.origins, "*")) {
        add_res_header(req, "access-control-allow-origin", H2O_STRLIT("*"));
        return;
    }
    size_t len = 0;
    int several;
    const char *origin = request_origin(req, &len, &several);
    if (origin != NULL && !several && origin_listed(cfg, origin, len)) {
        add_res_header(req, "access-control-allow-origin", origin, len);
        if (cfg->servers.websocket.server.credentials)
            add_res_header(req, "access-control-allow-credentials", H2O_STRLIT("true"));
    }
    add_res_header(req, "vary", H2O_STRLIT("Origin"));
}

/* --- request framing --- */

static int line_is(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

static int guard(h2o_req_t *req)
{
    /* only HTTP/1 frames bodies by these headers; no entity means h2o saw neither of them */
    if (req->version >= 0x200 || req->entity.base == NULL)
        return -1;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->input == NULL)
        return -1;
    const char *head = sock->input->bytes;
    if (req->entity.base < head || req->entity.base > head + sock->input->size)
        return -1;
    size_t headlen = (size_t)(req->entity.base - head);
    int content_length = 0, transfer_encoding = 0;
    for (size_t at = 0; at < headlen;) {
        const char *nl = memchr(head + at, '\n', headlen - at);
        size_t len = (nl != NULL ? (size_t)(nl - head) : headlen) - at;
        const char *line = head + at;
        if (len != 0 && line[len - 1] == '\r')
            len--;
        if (len == 0)
            break; /* the end of the head */
        /* the first line is the request line; a line starting with a space continues the previous header */
        if (at != 0 && !is_space(line[0])) {
            content_length += line_is(line, len, "content-length");
            transfer_encoding += line_is(line, len, "transfer-encoding");
        }
        if (nl == NULL)
            break;
        at = (size_t)(nl - head) + 1;
    }
    if (content_length + transfer_encoding <= 1)
        return -1;
    req->http1_is_persistent = 0;
    ag_http_respond(req, 400, "Bad Request", "text/plain; charset=utf-8",
                    H2O_STRLIT("Bad Request: the body length is ambiguous (Content-Length and Transfer-Encoding)\n"));
    return 0;
}

void ag_http_respond(h2o_req_t *req, int status, const char *reason, const char *content_type, const char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = len;
    if (content_type != NULL)
        h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, content_type, strlen(content_type), 1);
    h2o_iovec_t buf = h2o_strdup(&req->pool, body, len);
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}
