/*
 * HTTP input parsing on arbitrary bytes: query parameters, cookies, forwarded-address headers (server/http.c) and
 * form bodies (server/webapi.c). The input is one request: the first byte picks the socket peer (trusted proxy or
 * not, IPv4 or IPv6), then LF-separated fields: path with query, two Cookie headers, X-Forwarded-For, X-Real-IP,
 * X-Forwarded-Port, a cookie name; the rest is a form body.
 *
 * The request is a real h2o_req_t (h2o_init_request, its pool, its header list) on a connection object that only
 * answers getpeername; its context belongs to a node struct holding the default configuration, which is all these
 * functions read.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include "http.h"
#include "webapi.h"

static ag_server_t node;
static struct sockaddr_storage peer;
static socklen_t peer_len;

static socklen_t get_peername(h2o_conn_t *conn, struct sockaddr *sa)
{
    (void)conn;
    memcpy(sa, &peer, peer_len);
    return peer_len;
}

static const h2o_conn_callbacks_t callbacks = {.get_peername = get_peername};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    node.config = ag_config_create_default();
    if (node.config == NULL)
        abort();
    return 0;
}

static void set_peer(uint8_t how)
{
    memset(&peer, 0, sizeof(peer));
    if (how & 2) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&peer;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(40000);
        inet_pton(AF_INET6, how & 1 ? "::1" : "2001:db8::1", &a->sin6_addr);
        peer_len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&peer;
        a->sin_family = AF_INET;
        a->sin_port = htons(40000);
        inet_pton(AF_INET, how & 1 ? "127.0.0.1" : "192.0.2.1", &a->sin_addr);
        peer_len = sizeof(*a);
    }
}

/* The next LF-terminated field of [*p, end), or the rest when last. */
static h2o_iovec_t field(const char **p, const char *end, int last)
{
    const char *s = *p, *lf = last ? NULL : memchr(s, '\n', (size_t)(end - s));
    const char *e = lf != NULL ? lf : end;
    *p = lf != NULL ? lf + 1 : end;
    return h2o_iovec_init(s, (size_t)(e - s));
}

static void check_string(const char *s)
{
    if (s != NULL && strlen(s) > (1u << 20))
        abort(); /* the input is smaller than that: a decoded value cannot be longer than its text */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    set_peer(data[0]);
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    h2o_iovec_t path = field(&p, end, 0), cookie1 = field(&p, end, 0), cookie2 = field(&p, end, 0), xff = field(&p, end, 0),
                xrip = field(&p, end, 0), xfp = field(&p, end, 0), cname = field(&p, end, 0), body = field(&p, end, 1);

    h2o_conn_t conn = {.ctx = &node.ctx, .callbacks = &callbacks};
    h2o_req_t req;
    h2o_init_request(&req, &conn, NULL);
    req.path = h2o_strdup(&req.pool, path.base, path.len);
    const char *q = memchr(req.path.base, '?', req.path.len);
    req.query_at = q != NULL ? (size_t)(q - req.path.base) : SIZE_MAX;
    if (cookie1.len != 0)
        h2o_add_header(&req.pool, &req.headers, H2O_TOKEN_COOKIE, NULL, cookie1.base, cookie1.len);
    if (cookie2.len != 0)
        h2o_add_header(&req.pool, &req.headers, H2O_TOKEN_COOKIE, NULL, cookie2.base, cookie2.len);
    if (xff.len != 0)
        h2o_add_header_by_str(&req.pool, &req.headers, H2O_STRLIT("x-forwarded-for"), 0, NULL, xff.base, xff.len);
    if (xrip.len != 0)
        h2o_add_header_by_str(&req.pool, &req.headers, H2O_STRLIT("x-real-ip"), 0, NULL, xrip.base, xrip.len);
    if (xfp.len != 0)
        h2o_add_header_by_str(&req.pool, &req.headers, H2O_STRLIT("x-forwarded-port"), 0, NULL, xfp.base, xfp.len);

    static const char *const names[] = {"EIO", "transport", "sid", "lastEventId", "j", "sessionID", "action", ""};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        check_string(ag_http_query_param(&req, names[i]));
    char *name = h2o_mem_alloc_pool(&req.pool, cname.len + 1);
    memcpy(name, cname.base, cname.len);
    name[cname.len] = '\0';
    check_string(ag_http_query_param(&req, name));
    check_string(ag_http_cookie(&req, "sessionID"));
    check_string(ag_http_cookie(&req, name));

    char ip[64];
    int port = -1;
    memset(ip, 'x', sizeof(ip));
    ag_http_peer_info(&req, ip, &port);
    if (memchr(ip, '\0', sizeof(ip)) == NULL || port < 0 || port > 65535)
        abort(); /* an address is a C string in its 64 bytes; a port is a port */

    json_t *form = json_object();
    ag__parse_form(form, body.base, body.len);
    if (req.query_at != SIZE_MAX)
        ag__parse_form(form, req.path.base + req.query_at + 1, req.path.len - req.query_at - 1);
    const char *k;
    json_t *v;
    json_object_foreach(form, k, v)
    {
        if (!json_is_string(v))
            abort();
    }
    json_decref(form);

    size_t outlen;
    char *dec = ag_http_urldecode(&req.pool, body.base, body.len, 1, &outlen);
    if (outlen > body.len || dec[outlen] != '\0')
        abort();
    /* The request never reached a handler or an output stream: its pool is all there is to free. */
    h2o_mem_clear_pool(&req.pool);
    return 0;
}
