/* server/bucket.c, server/limit.c and the rate-limited log lines of server/common.c: the token bucket, address keys, the exemption
 * of trusted proxies, the answer to a message over the rate, and at most AG_LOG_SITE_LINES_PER_SEC lines a second. */
#include "session_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <unistd.h>
#include "limit.h"

static void test_bucket(void **state)
{
    ag_bucket_t b = {0};
    /* a fresh bucket holds a full burst */
    for (int i = 0; i < 3; i++)
        assert_int_equal(ag_bucket_take(&b, 1000, 2, 3), AG_BUCKET_OK);
    assert_int_equal(ag_bucket_take(&b, 1000, 2, 3), AG_BUCKET_REFUSED);
    /* 2 per second: one token after 500 ms */
    assert_int_equal(ag_bucket_take(&b, 1500, 2, 3), AG_BUCKET_OK);
    assert_int_equal(ag_bucket_take(&b, 1500, 2, 3), AG_BUCKET_REFUSED);
    /* the burst-th refusal without the bucket filling up again is abuse */
    assert_int_equal(ag_bucket_take(&b, 1500, 2, 3), AG_BUCKET_ABUSE);
    /* full again after 1.5 s: the refusals are forgiven */
    assert_int_equal(ag_bucket_take(&b, 3000, 2, 3), AG_BUCKET_OK);
    assert_int_equal(b.refused, 0);
    assert_int_equal(ag_bucket_take(&b, 3000, 2, 3), AG_BUCKET_OK);
    assert_int_equal(ag_bucket_take(&b, 3000, 2, 3), AG_BUCKET_OK);
    assert_int_equal(ag_bucket_take(&b, 3000, 2, 3), AG_BUCKET_REFUSED);
    /* rate 0: unlimited */
    ag_bucket_t u = {0};
    for (int i = 0; i < 1000; i++)
        assert_int_equal(ag_bucket_take(&u, 5, 0, 1), AG_BUCKET_OK);
    /* a clock that does not move forward refills nothing */
    ag_bucket_t c = {0};
    assert_int_equal(ag_bucket_take(&c, 9000, 1, 1), AG_BUCKET_OK);
    assert_int_equal(ag_bucket_take(&c, 8000, 1, 1), AG_BUCKET_ABUSE);
}

static void test_keys(void **state)
{
    char key[AG_PEER_KEY_LEN];
    ag_limits_key_text("203.0.113.7", key);
    assert_string_equal(key, "203.0.113.7");
    ag_limits_key_text("::ffff:203.0.113.7", key);
    assert_string_equal(key, "203.0.113.7");
    ag_limits_key_text("2001:db8:1:2:3:4:5:6", key);
    assert_string_equal(key, "2001:db8:1:2::/64");
    ag_limits_key_text("2001:DB8:1:2::ffff", key);
    assert_string_equal(key, "2001:db8:1:2::/64");
    ag_limits_key_text("not an address", key);
    assert_string_equal(key, "not an address");
    char longer[200];
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    ag_limits_key_text(longer, key);
    assert_int_equal(strlen(key), AG_PEER_KEY_LEN - 1);
}

/* One node per process: messageRate 1/s, burst 3, and only 10.9.8.7 trusted, so the fixture's connections (from
 * 127.0.0.1) are limited. */
static ag_server_t *s;

static int setup(void **state)
{
    s = fixture_server("general:\n  trustedProxies: [\"10.9.8.7\"]\nservers:\n  websocket:\n    server:\n      messageRate: 1\n"
                       "      messageBurst: 3\n");
    return 0;
}

static int teardown(void **state)
{
    fixture_server_done(s);
    return 0;
}

static void test_message_over_the_rate(void **state)
{
    fake_t *f = fixture_conn(s, NULL);
    fixture_drain(f);
    for (int i = 1; i <= 3; i++) {
        json_t *r = (fixture_send(f, "{\"event\":\"detailsView\"}"), fixture_next(f));
        assert_string_equal(json_string_value(json_object_get(r, "status")), "OK");
        json_decref(r);
    }
    /* an action and a file request get an action's error; a verb a verb's error, data without event, messageId, room */
    assert_json_text(fixture_ask(f, "{\"event\":\"action\",\"params\":{\"action\":\"status\"},\"messageId\":4}"),
                     "{\"error\":\"you are sending messages too fast\",\"context\":\"response\",\"messageId\":4}");
    assert_false(f->closed);
    assert_json_text(fixture_ask(f, "{\"event\":\"say\",\"room\":\"defaultRoom\",\"message\":\"hi\",\"messageId\":\"m5\"}"),
                     "{\"status\":\"Error: you are sending messages too fast\",\"error\":\"Error: you are sending messages too "
                     "fast\",\"context\":\"response\",\"data\":{\"message\":\"hi\"},\"messageId\":\"m5\"}");
    assert_false(f->closed);
    /* the third refusal in a row: the error, then the close for abuse (code 1008, no reconnect) */
    assert_json_text(fixture_ask(f, "{\"event\":\"file\",\"file\":\"x\",\"messageId\":6}"),
                     "{\"error\":\"you are sending messages too fast\",\"context\":\"response\",\"messageId\":6}");
    assert_true(f->closed);
    assert_ptr_equal(f->why, &AG_DISCONNECT_RATE);
    assert_int_equal(AG_DISCONNECT_RATE.code, 1008);
    assert_int_equal(AG_DISCONNECT_RATE.reconnect, 0);
    assert_int_equal(s->stats.messages_refused, 3);
    assert_int_equal(s->stats.rate_disconnects, 1);
    fixture_drop(f);

    /* control messages count too; text that is not JSON is refused without an answer */
    fake_t *g = fixture_conn(s, NULL);
    fixture_drain(g);
    for (int i = 0; i < 3; i++)
        assert_true(ag_conn_inbound_control(g->conn));
    assert_false(ag_conn_inbound_control(g->conn));
    fixture_send(g, "not json");
    assert_null(fixture_next_text(g));
    assert_false(g->closed);
    fixture_drop(g);
}

static void test_trusted_proxies_are_exempt(void **state)
{
    assert_true(ag_limits_exempt(s, "10.9.8.7"));
    assert_false(ag_limits_exempt(s, "127.0.0.1"));
    fake_t *f = calloc(1, sizeof(*f));
    ag_conn_info_t info = {NULL, "10.9.8.7", 4242, "websocket", 0, NULL, NULL, NULL, NULL};
    assert_non_null(f->conn = ag_conn_create(s, &fake_transport, f, &info));
    fixture_drain(f);
    for (int i = 0; i < 20; i++) {
        json_t *r = (fixture_send(f, "{\"event\":\"detailsView\"}"), fixture_next(f));
        assert_string_equal(json_string_value(json_object_get(r, "status")), "OK");
        json_decref(r);
    }
    assert_false(f->closed);
    fixture_drop(f);
}

static void test_config_checks(void **state)
{
    char err[512];
    assert_null(ag_config_load_string("servers:\n  web:\n    handshakeRate: -1\n", "t.yaml", err, sizeof(err)));
    assert_non_null(strstr(err, "must not be negative"));
    assert_null(ag_config_load_string("servers:\n  websocket:\n    server:\n      messageBurst: 0\n", "t.yaml", err, sizeof(err)));
    assert_non_null(strstr(err, "must be at least 1"));
    ag_config_t *c =
        ag_config_load_string("servers:\n  web:\n    handshakeRate: 0\n    handshakeBurst: 0\n", "t.yaml", err, sizeof(err));
    assert_non_null(c);
    ag_config_destroy(c);
    c = ag_config_create_default();
    assert_int_equal(c->servers.web.maxConnections, 0);
    assert_int_equal(c->servers.web.maxConnectionsPerIp, 1000);
    assert_true(c->servers.web.handshakeRate == 20);
    assert_int_equal(c->servers.web.handshakeBurst, 200);
    assert_true(c->servers.websocket.server.messageRate == 100);
    assert_int_equal(c->servers.websocket.server.messageBurst, 200);
    assert_int_equal(c->servers.websocket.server.sse.replayTotalBytes, 67108864);
    ag_config_destroy(c);
}

static struct sockaddr_in v4(uint32_t host)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(host);
    return sin;
}

/* The per-address table stays bounded whatever the number of addresses, never drops an address that holds a
 * connection, and expires idle entries once their handshake bucket would be full again. */
static void test_peer_table_bounded(void **state)
{
    ag_limits_t *l = ag_limits_create(s, 2); /* at most 2 + 4096 entries */
    struct sockaddr_in keep = v4(0xc6336401);
    ag_peer_t *kept = ag_limits_tcp_open(l, (struct sockaddr *)&keep);
    assert_non_null(kept);
    assert_ptr_not_equal(kept, &l->exempt);
    for (uint32_t i = 0; i < 10000; i++) {
        struct sockaddr_in a = v4(0x0a000000 + i);
        ag_peer_t *p = ag_limits_tcp_open(l, (struct sockaddr *)&a);
        assert_non_null(p);
        ag_limits_tcp_closed(p);
        assert_true(l->peers.size <= l->max_peers);
    }
    assert_int_equal(l->peers.size, l->max_peers);
    assert_ptr_equal(ag_map_get(&l->peers, "198.51.100.1"), kept);
    assert_int_equal(kept->conns, 1);
    assert_int_equal(l->tcp_conns, 1);
    /* the trusted address is not kept per address */
    struct sockaddr_in trusted = v4(0x0a090807);
    ag_peer_t *t = ag_limits_tcp_open(l, (struct sockaddr *)&trusted);
    assert_ptr_equal(t, &l->exempt);
    ag_limits_tcp_closed(t);
    /* idle entries expire once their bucket would be full (200 / 20 per s = 10 s): pretend they were seen long ago */
    for (h2o_linklist_t *n = l->idle.next; n != &l->idle; n = n->next)
        H2O_STRUCT_FROM_MEMBER(ag_peer_t, idle, n)->seen_ms -= 11000;
    l->sweep.cb(&l->sweep);
    assert_int_equal(l->peers.size, 1);
    ag_limits_tcp_closed(kept);
    assert_int_equal(l->tcp_conns, 0);
    ag_limits_destroy(l);
}

/* Runs fn with stderr going to a file; returns what it wrote (malloc'ed). */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
    fflush(stderr);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    long n = ftell(tmp);
    char *out = calloc(1, (size_t)n + 1);
    rewind(tmp);
    assert_int_equal(fread(out, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return out;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static ag_log_site_t site;

static void log_many(void *arg)
{
    for (int i = 0; i < 100; i++)
        ag_log_site(&site, AG_LOG_WARN, "test", NULL, "line %d", i);
}

static void log_one_more(void *arg)
{
    site.window_ms -= 1000; /* as if a second went by */
    ag_log_site(&site, AG_LOG_WARN, "test", NULL, "line after");
}

static void test_log_lines_per_site(void **state)
{
    ag_log_threshold = AG_LOG_INFO;
    char *out = capture_stderr(log_many, NULL);
    assert_int_equal(count(out, "[test] - line "), AG_LOG_SITE_LINES_PER_SEC);
    assert_non_null(strstr(out, "line 0\n"));
    assert_null(strstr(out, "suppressed"));
    free(out);
    out = capture_stderr(log_one_more, NULL);
    char want[64];
    snprintf(want, sizeof(want), "suppressed %d similar lines\n", 100 - AG_LOG_SITE_LINES_PER_SEC);
    assert_non_null(strstr(out, want));
    assert_true(strstr(out, want) < strstr(out, "line after"));
    free(out);
    /* below the threshold: nothing printed, nothing counted */
    ag_log_threshold = AG_LOG_ERROR;
    out = capture_stderr(log_many, NULL);
    assert_string_equal(out, "");
    free(out);
    ag_log_threshold = AG_LOG_NONE;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_peer_table_bounded),
        cmocka_unit_test(test_message_over_the_rate),
        cmocka_unit_test(test_trusted_proxies_are_exempt),
        cmocka_unit_test(test_config_checks),
        cmocka_unit_test(test_log_lines_per_site),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
