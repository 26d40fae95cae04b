#include "http.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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
        size_t klen;
        char *key = ag_http_urldecode(&req->pool, q, (size_t)(kend - q), 1, &klen);
        if (klen == nlen && memcmp(key, name, nlen) == 0)
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

static int is_trusted(ag_server_t *s, const char *ip)
{
    return ag_config_list_has(s->config->general.trustedProxies, ip);
}

/* Sets *port to the leading number of s when that is a port (1..65535); anything else leaves it. atoi would overflow
 * on a long run of digits and give any value. */
static void take_port(const char *s, int *port)
{
    char *end;
    errno = 0;
    long p = strtol(s, &end, 10);
    if (port != NULL && end != s && errno == 0 && p >= 1 && p <= 65535)
        *port = (int)p;
}

/* "::ffff:1.2.3.4" -> "1.2.3.4", "[::1]:80" -> "::1" (port into *port, when it is one) */
static void normalize_ip(const char *in, size_t len, char out[64], int *port)
{
    while (len > 0 && (*in == ' ' || *in == '\t'))
        in++, len--;
    while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\t'))
        len--;
    char buf[64];
    if (len >= sizeof(buf))
        len = sizeof(buf) - 1;
    memcpy(buf, in, len);
    buf[len] = '\0';
    char *p = buf;
    if (*p == '[') {
        char *close = strchr(p, ']');
        if (close != NULL) {
            *close = '\0';
            if (close[1] == ':')
                take_port(close + 2, port);
        }
        p++;
    } else if (strchr(p, ':') != NULL && strchr(p, ':') == strrchr(p, ':')) {
        /* IPv4 with a port */
        char *colon = strchr(p, ':');
        *colon = '\0';
        take_port(colon + 1, port);
    }
    if (strncmp(p, "::ffff:", 7) == 0 && strchr(p + 7, '.') != NULL)
        p += 7;
    snprintf(out, 64, "%s", p);
}

void ag_http_peer_info(h2o_req_t *req, char ip[64], int *port)
{
    struct sockaddr_storage ss;
    socklen_t sslen = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    char host[NI_MAXHOST];
    size_t hl = sslen != 0 ? h2o_socket_getnumerichost((struct sockaddr *)&ss, sslen, host) : SIZE_MAX;
    if (hl == SIZE_MAX) {
        strcpy(ip, "");
        *port = 0;
    } else {
        normalize_ip(host, hl, ip, NULL);
        *port = h2o_socket_getport((struct sockaddr *)&ss);
    }
    ag_server_t *s = ag_http_server(req);
    if (!is_trusted(s, ip))
        return;
    size_t len;
    const char *v;
    if ((v = ag_http_header(req, "x-forwarded-for", &len)) != NULL) {
        const char *comma = memchr(v, ',', len);
        normalize_ip(v, comma != NULL ? (size_t)(comma - v) : len, ip, port);
    }
    if ((v = ag_http_header(req, "x-real-ip", &len)) != NULL)
        normalize_ip(v, len, ip, port);
    if ((v = ag_http_header(req, "x-forwarded-port", &len)) != NULL) {
        char pb[16];
        size_t n = len < sizeof(pb) - 1 ? len : sizeof(pb) - 1;
        memcpy(pb, v, n);
        pb[n] = '\0';
        take_port(pb, port);
    }
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
