/*
 * The server object: a node is built with every module and no socket, listening is a step of its own, and each node
 * owns its modules' state (two nodes live side by side in one process). Push to a connection reaches it on the node
 * that holds it, through the cluster (two nodes in this process on a real redis-server).
 */
#include "session_fixture.h"
#include "redis_helper.h"
#include "cluster.h"

/* Listening sockets of this process (its file descriptors that accept connections). */
static int count_listening(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++) {
        int on = 0;
        socklen_t len = sizeof(on);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on)
            n++;
    }
    return n;
}

static void test_create_binds_nothing(void **state)
{
    int before = count_listening();
    ag_server_t *s = fixture_server("servers:\n  web:\n    port: 0\n    bindIP: \"127.0.0.1\"\n");
    assert_int_equal(ag_server_port(s), -1);
    assert_int_equal(count_listening(), before);
    char err[256] = "";
    assert_int_equal(ag_server_listen(s, err, sizeof(err)), 0);
    assert_true(ag_server_port(s) > 0);
    assert_int_equal(count_listening(), before + 1);
    ag_server_destroy(s);
    assert_int_equal(count_listening(), before);
}

static void test_listen_reports_a_bad_address(void **state)
{
    ag_server_t *s = fixture_server("servers:\n  web:\n    port: 0\n    bindIP: \"not-an-address\"\n");
    char err[256] = "";
    assert_int_equal(ag_server_listen(s, err, sizeof(err)), AG_ECONFIG);
    assert_string_equal(err, "servers.web.bindIP: not an IP address: not-an-address");
    ag_server_destroy(s);
}

/* Every module keeps its state on its node: two nodes in one process serve their own connections, and one is destroyed
 * while the other goes on. */
static void test_two_nodes_in_one_process(void **state)
{
    ag_server_t *a = fixture_server("general:\n  welcomeMessage: \"from a\"\n");
    ag_server_t *b = fixture_server("general:\n  welcomeMessage: \"from b\"\n");
    assert_ptr_not_equal(a->eio, b->eio);
    assert_ptr_not_equal(a->sio, b->sio);
    assert_ptr_not_equal(a->primus, b->primus);
    assert_ptr_not_equal(a->ws, b->ws);
    assert_ptr_not_equal(a->clientjs, b->clientjs);
    fake_t *fa = fixture_conn(a, NULL), *fb = fixture_conn(b, NULL);
    assert_json_text(fixture_next_text(fa), "{\"welcome\":\"from a\",\"context\":\"api\"}");
    assert_json_text(fixture_next_text(fb), "{\"welcome\":\"from b\",\"context\":\"api\"}");
    assert_int_equal(a->num_conns, 1);
    assert_int_equal(b->num_conns, 1);
    fixture_drop(fa);
    ag_server_destroy(a);
    assert_json_text(fixture_ask(fb, "{\"event\":\"roomAdd\",\"room\":\"defaultRoom\",\"messageId\":1}"),
                     "{\"status\":\"OK\",\"context\":\"response\",\"data\":true,\"messageId\":1}");
    fixture_drop(fb);
    ag_server_destroy(b);
}

static test_redis_t redis;

/* Runs both nodes' loops for about ms, or until f has a frame queued. */
static void run_both(ag_server_t *a, ag_server_t *b, fake_t *f, int ms)
{
    uint64_t end = ag_now_ms() + (uint64_t)ms;
    while ((f == NULL || ag_conn_queued(f->conn) == 0) && ag_now_ms() < end) {
        h2o_evloop_run(a->loop, 5);
        h2o_evloop_run(b->loop, 5);
    }
}

/* ag_push_conn on one node reaches a connection held by the other: the push module hands it to the cluster, and the
 * other node's cluster hands it to its push receiver. */
static void test_push_reaches_the_node_that_holds_the_connection(void **state)
{
    if (test_redis_setup(&redis) != 0) {
        test_redis_teardown(&redis);
        skip();
    }
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "redis:\n  url: \"%s\"\n  prefix: \"pushtest:\"\n", redis.url);
    ag_server_t *a = fixture_server(yaml), *b = fixture_server(yaml);
    fake_t *f = fixture_conn(b, NULL);
    fixture_drain(f);
    run_both(a, b, NULL, 300); /* both nodes connect to Redis and subscribe the cluster channel */
    json_t *o = json_pack("{s:s}", "hello", "across");
    int ret = AG_EIO;
    for (int i = 0; i < 50 && ag_conn_queued(f->conn) == 0; i++) {
        ret = ag_push_conn(a, f->conn->id, o);
        run_both(a, b, f, 100);
    }
    json_decref(o);
    assert_int_equal(ret, 0);
    assert_true(ag_cluster_stats(a)->pushes_out >= 1);
    assert_true(ag_cluster_stats(b)->pushes_in >= 1);
    assert_json_text(fixture_next_text(f), "{\"hello\":\"across\",\"context\":\"api\"}");
    /* a connection no node holds: published, delivered nowhere */
    json_t *x = json_pack("{s:s}", "to", "nobody");
    assert_int_equal(ag_push_conn(a, "no-such-connection", x), 0);
    json_decref(x);
    fixture_drop(f);
    ag_server_destroy(a);
    ag_server_destroy(b);
    test_redis_teardown(&redis);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_binds_nothing),
        cmocka_unit_test(test_listen_reports_a_bad_address),
        cmocka_unit_test(test_two_nodes_in_one_process),
        cmocka_unit_test(test_push_reaches_the_node_that_holds_the_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
