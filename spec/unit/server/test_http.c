/* The HTTP helpers (server/http.c) on a real node (no socket) and real h2o requests on a stand-in connection whose
 * peer address the test chooses: URL decoding, query parameters, cookies, headers, the forwarded-address walk, the
 * origin policy and the CORS headers. (ag_http_guard reads the connection's input buffer: spec/integration covers it.) */
#include "session_fixture.h"
#include <arpa/inet.h>
#include "http.h"

static ag_server_t *srv;

typedef struct {
    h2o_conn_t super;
    struct sockaddr_in peer;
} test_conn_t;

static socklen_t get_peername(h2o_conn_t *conn, struct sockaddr *sa)
{
    test_conn_t *c = (test_conn_t *)conn;
    memcpy(sa, &c->peer, sizeof(c->peer));
    return sizeof(c->peer);
}

static const h2o_conn_callbacks_t callbacks = {.get_peername = get_peername};

typedef struct {
    test_conn_t conn;
    h2o_req_t req;
} request_t;

/* A request for path (query included) from peer_ip:peer_port; headers are added with add(). */
static request_t *request(const char *path, const char *peer_ip, int peer_port)
{
    request_t *r = calloc(1, sizeof(*r));
    r->conn.super.ctx = &srv->ctx;
    r->conn.super.hosts = srv->h2o_config.hosts;
    r->conn.super.callbacks = &callbacks;
    r->conn.peer.sin_family = AF_INET;
    r->conn.peer.sin_port = htons((uint16_t)peer_port);
    assert_int_equal(inet_pton(AF_INET, peer_ip, &r->conn.peer.sin_addr), 1);
    h2o_init_request(&r->req, &r->conn.super, NULL);
    r->req.path = h2o_strdup(&r->req.pool, path, SIZE_MAX);
    const char *q = strchr(path, '?');
    r->req.query_at = q != NULL ? (size_t)(q - path) : SIZE_MAX;
    return r;
}

/* As h2o parses a request: a known name becomes its token (the cookie lookup goes by token). */
static void add(request_t *r, const char *name, const char *value)
{
    h2o_add_header_by_str(&r->req.pool, &r->req.headers, name, strlen(name), 1, NULL, value, strlen(value));
}

/* The request never ran (no handler, no generator, nothing to log): its pool is all it holds. */
static void done(request_t *r)
{
    h2o_mem_clear_pool(&r->req.pool);
    free(r);
}

static const char *res_header(request_t *r, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&r->req.res.headers, name, strlen(name), -1);
    return i == -1
               ? NULL
               : h2o_strdup(&r->req.pool, r->req.res.headers.entries[i].value.base, r->req.res.headers.entries[i].value.len).base;
}

static int setup(void **state)
{
    srv = fixture_server("general:\n  trustedProxies: [\"10.0.0.0/8\", \"192.0.2.1\"]\n"
                         "servers:\n  websocket:\n    server:\n      origins: [\"https://a.example\", \"null\"]\n"
                         "      credentials: true\n");
    return 0;
}

static int teardown(void **state)
{
    fixture_server_done(srv);
    return 0;
}

static void test_urldecode(void **state)
{
    char out[64];
    assert_int_equal(ag_http_urldecode_into(out, "a%20b+c%2B%zz%4", 15, 1), 11);
    assert_string_equal(out, "a b c+%zz%4");
    assert_int_equal(ag_http_urldecode_into(out, "a+b%00c", 7, 0), 5);
    assert_memory_equal(out, "a+b\0c", 6);
    assert_int_equal(ag_http_urldecode_into(out, "", 0, 1), 0);
    assert_string_equal(out, "");
}

static void test_query_params(void **state)
{
    request_t *r = request("/p/?EIO=4&transport=polling&sid=a%2Bb+c&empty&x=1&x=2&t%72ansport=no", "127.0.0.1", 5);
    assert_ptr_equal(ag_http_server(&r->req), srv);
    assert_string_equal(ag_http_query_param(&r->req, "EIO"), "4");
    assert_string_equal(ag_http_query_param(&r->req, "transport"), "polling"); /* the first one wins */
    assert_string_equal(ag_http_query_param(&r->req, "sid"), "a+b c");
    assert_string_equal(ag_http_query_param(&r->req, "empty"), "");
    assert_string_equal(ag_http_query_param(&r->req, "x"), "1");
    assert_null(ag_http_query_param(&r->req, "missing"));
    assert_null(ag_http_query_param(&r->req, "EI"));
    done(r);
    /* keys are compared decoded: an escaped key matches, a raw key with an escape-like text does not */
    r = request("/p/?%73id=enc&a+b=plus&pad%3D=1&p%25=pct", "127.0.0.1", 5);
    assert_string_equal(ag_http_query_param(&r->req, "sid"), "enc");
    assert_string_equal(ag_http_query_param(&r->req, "a b"), "plus");
    assert_string_equal(ag_http_query_param(&r->req, "pad="), "1");
    assert_string_equal(ag_http_query_param(&r->req, "p%"), "pct");
    assert_null(ag_http_query_param(&r->req, "a+b"));
    assert_null(ag_http_query_param(&r->req, "p%25"));
    done(r);
    r = request("/p/", "127.0.0.1", 5);
    assert_null(ag_http_query_param(&r->req, "EIO"));
    done(r);
    /* one request after another, same length, other layout */
    r = request("/p/?a=1&bb=2", "127.0.0.1", 5);
    assert_string_equal(ag_http_query_param(&r->req, "bb"), "2");
    done(r);
    r = request("/p/?bb=1&a=2", "127.0.0.1", 5);
    assert_string_equal(ag_http_query_param(&r->req, "bb"), "1");
    assert_string_equal(ag_http_query_param(&r->req, "a"), "2");
    done(r);
    r = request("/p/?&&x=1&", "127.0.0.1", 5);
    assert_string_equal(ag_http_query_param(&r->req, "x"), "1");
    assert_null(ag_http_query_param(&r->req, "a"));
    done(r);
    r = request("/p/?", "127.0.0.1", 5);
    assert_null(ag_http_query_param(&r->req, "x"));
    done(r);
    /* a long query, many parameters */
    char path[700];
    int n = snprintf(path, sizeof(path), "/p/?pad=");
    memset(path + n, 'x', 300);
    snprintf(path + n + 300, sizeof(path) - (size_t)n - 300, "&last=%s", "ok");
    r = request(path, "127.0.0.1", 5);
    assert_string_equal(ag_http_query_param(&r->req, "last"), "ok");
    assert_int_equal(strlen(ag_http_query_param(&r->req, "pad")), 300);
    done(r);
    n = snprintf(path, sizeof(path), "/p/?");
    for (int i = 0; i < 30; i++)
        n += snprintf(path + n, sizeof(path) - (size_t)n, "k%d=%d&", i, i);
    r = request(path, "127.0.0.1", 5);
    assert_string_equal(ag_http_query_param(&r->req, "k29"), "29");
    assert_string_equal(ag_http_query_param(&r->req, "k0"), "0");
    done(r);
}

static void test_cookies_and_headers(void **state)
{
    request_t *r = request("/", "127.0.0.1", 5);
    add(r, "cookie", "a=1; sessionIDx=no;sessionID=ab%20c");
    add(r, "cookie", "later=2"); /* HTTP/2 sends one header per cookie */
    add(r, "x-thing", "v");
    assert_string_equal(ag_http_cookie(&r->req, "sessionID"), "ab c");
    assert_string_equal(ag_http_cookie(&r->req, "a"), "1");
    assert_string_equal(ag_http_cookie(&r->req, "later"), "2");
    assert_null(ag_http_cookie(&r->req, "session"));
    size_t len = 0;
    const char *v = ag_http_header(&r->req, "x-thing", &len);
    assert_non_null(v);
    assert_int_equal(len, 1);
    assert_memory_equal(v, "v", 1);
    assert_null(ag_http_header(&r->req, "x-other", &len));
    done(r);
}

/* ip and port of a request from peer with one X-Forwarded-For value (NULL: none) and an X-Real-IP (NULL: none) */
static void peer(const char *peer_ip, const char *xff, const char *real, const char *want_ip, int want_port)
{
    request_t *r = request("/", peer_ip, 4000);
    if (xff != NULL)
        add(r, "x-forwarded-for", xff);
    if (real != NULL)
        add(r, "x-real-ip", real);
    char ip[64];
    int port = -1;
    ag_http_peer_info(&r->req, ip, &port);
    assert_string_equal(ip, want_ip);
    assert_int_equal(port, want_port);
    done(r);
}

static void test_peer_info(void **state)
{
    peer("203.0.113.9", NULL, NULL, "203.0.113.9", 4000);
    /* an untrusted peer's headers are not believed */
    peer("203.0.113.9", "1.2.3.4", "5.6.7.8", "203.0.113.9", 4000);
    /* a trusted peer: read from the right, trusted hops skipped, the first untrusted one is the client */
    peer("10.1.2.3", "6.6.6.6, 1.2.3.4, 10.9.9.9", NULL, "1.2.3.4", 4000);
    peer("192.0.2.1", "1.2.3.4:81", NULL, "1.2.3.4", 81);
    peer("192.0.2.1", "[2001:db8::1]:82", NULL, "2001:db8::1", 82);
    /* garbage ends the walk: nothing left of it is believed */
    peer("10.1.2.3", "1.2.3.4, nonsense, 10.0.0.5", NULL, "10.0.0.5", 4000);
    /* X-Real-IP only without X-Forwarded-For */
    peer("10.1.2.3", NULL, "5.6.7.8", "5.6.7.8", 4000);
    peer("10.1.2.3", "1.2.3.4", "5.6.7.8", "1.2.3.4", 4000);
}

static void test_forwarded_port(void **state)
{
    const char *ports[][2] = {{"8443", "8443"}, {"0", "4000"}, {"65536", "4000"}, {"12a", "4000"}, {"", "4000"}};
    for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        request_t *r = request("/", "10.0.0.1", 4000);
        add(r, "x-forwarded-for", "1.2.3.4");
        add(r, "x-forwarded-port", ports[i][0]);
        char ip[64];
        int port;
        ag_http_peer_info(&r->req, ip, &port);
        assert_string_equal(ip, "1.2.3.4");
        assert_int_equal(port, atoi(ports[i][1]));
        done(r);
    }
}

static ag_http_origin_t origin_of(const char *o1, const char *o2, const char **allow, const char **vary, const char **creds)
{
    request_t *r = request("/api", "127.0.0.1", 1);
    if (o1 != NULL)
        add(r, "origin", o1);
    if (o2 != NULL)
        add(r, "origin", o2);
    ag_http_origin_t ret = ag_http_origin_check(&r->req);
    ag_http_cors_origin(&r->req);
    static char a[3][128];
    const char *v[3] = {res_header(r, "access-control-allow-origin"), res_header(r, "vary"),
                        res_header(r, "access-control-allow-credentials")};
    for (int i = 0; i < 3; i++)
        snprintf(a[i], sizeof(a[i]), "%s", v[i] != NULL ? v[i] : "(none)");
    *allow = a[0];
    *vary = a[1];
    *creds = a[2];
    done(r);
    return ret;
}

static void test_origins_and_cors(void **state)
{
    const char *allow, *vary, *creds;
    assert_int_equal(origin_of(NULL, NULL, &allow, &vary, &creds), AG_HTTP_ORIGIN_NONE);
    assert_string_equal(allow, "(none)");
    assert_string_equal(vary, "Origin");
    assert_int_equal(origin_of("https://a.example", NULL, &allow, &vary, &creds), AG_HTTP_ORIGIN_ALLOWED);
    assert_string_equal(allow, "https://a.example");
    assert_string_equal(creds, "true");
    assert_string_equal(vary, "Origin");
    assert_int_equal(origin_of("HTTPS://A.EXAMPLE", NULL, &allow, &vary, &creds), AG_HTTP_ORIGIN_ALLOWED);
    assert_int_equal(origin_of("null", NULL, &allow, &vary, &creds), AG_HTTP_ORIGIN_ALLOWED);
    assert_int_equal(origin_of("https://evil.example", NULL, &allow, &vary, &creds), AG_HTTP_ORIGIN_REFUSED);
    assert_string_equal(allow, "(none)");
    assert_string_equal(creds, "(none)");
    assert_int_equal(origin_of("https://a.example.evil", NULL, &allow, &vary, &creds), AG_HTTP_ORIGIN_REFUSED);
    /* two Origin headers: refused, and no CORS answer for either */
    assert_int_equal(origin_of("https://a.example", "https://a.example", &allow, &vary, &creds), AG_HTTP_ORIGIN_REFUSED);
    assert_string_equal(allow, "(none)");
}

/* With the default "*": everyone, and "*" in the answer. */
static void test_origins_star(void **state)
{
    ag_server_t *keep = srv;
    srv = fixture_server(NULL);
    const char *allow, *vary, *creds;
    assert_int_equal(origin_of("https://anything.example", NULL, &allow, &vary, &creds), AG_HTTP_ORIGIN_ALLOWED);
    assert_string_equal(allow, "*");
    assert_string_equal(creds, "(none)");
    fixture_server_done(srv);
    srv = keep;
}

static void test_register_path_once(void **state)
{
    /* the node is built: every registered path already has the guard as its first handler */
    h2o_hostconf_t *host = srv->h2o_config.hosts[0];
    assert_true(host->paths.size > 0);
    for (size_t i = 0; i < host->paths.size; i++)
        assert_true(host->paths.entries[i].handlers.size >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urldecode),    cmocka_unit_test(test_query_params),       cmocka_unit_test(test_cookies_and_headers),
        cmocka_unit_test(test_peer_info),    cmocka_unit_test(test_forwarded_port),     cmocka_unit_test(test_origins_and_cors),
        cmocka_unit_test(test_origins_star), cmocka_unit_test(test_register_path_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
