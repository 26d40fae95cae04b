/* The connection's outbound queue: order, unshift, the bound (the one slow-consumer rule, with what a transport holds
 * unsent), no memory held when idle; and the consumer vtable a node's connections report to. */
#include "session_fixture.h"

static ag_server_t *srv;

static int setup(void **state)
{
    srv = fixture_server("servers:\n  websocket:\n    server:\n      queueMaxFrames: 64\n      queueMaxBytes: 4096\n"
                         "      maxLength: 2048\n      maxHttpBufferSize: 2048\n");
    return 0;
}

static int teardown(void **state)
{
    fixture_server_done(srv);
    return 0;
}

static void test_order_and_unshift(void **state)
{
    fake_t *f = fixture_conn(srv, NULL);
    fixture_drain(f);
    for (int i = 0; i < 10; i++) {
        char b[8];
        snprintf(b, sizeof(b), "%d", i);
        ag_frame_t *fr = ag_frame_create(b, strlen(b), 0);
        assert_int_equal(ag_conn_send(f->conn, fr), 0);
        ag_frame_release(fr);
    }
    assert_int_equal(ag_conn_queued(f->conn), 10);
    ag_frame_t *first = ag_conn_shift(f->conn);
    assert_string_equal(first->data, "0");
    ag_conn_unshift(f->conn, first); /* could not be written after all */
    for (int i = 0; i < 10; i++) {
        ag_frame_t *fr = ag_conn_shift(f->conn);
        assert_int_equal(atoi(fr->data), i);
        ag_frame_release(fr);
    }
    assert_null(ag_conn_shift(f->conn));
    fixture_drop(f);
}

static void test_frame_bound(void **state)
{
    fake_t *f = fixture_conn(srv, NULL);
    fixture_drain(f);
    ag_frame_t *fr = ag_frame_create("x", 1, 0);
    uint64_t slow = srv->stats.slow_consumers;
    int ret = 0, sent = 0;
    while (ret == 0 && sent < 1000) {
        ret = ag_conn_send(f->conn, fr);
        sent += ret == 0;
    }
    assert_int_equal(sent, 64);
    assert_int_equal(ret, AG_EBUSY);
    assert_true(f->closed);
    assert_ptr_equal(f->why, &AG_DISCONNECT_SLOW);
    assert_int_equal(srv->stats.slow_consumers, slow + 1);
    assert_int_equal(ag_conn_send(f->conn, fr), AG_ECLOSED);
    ag_frame_release(fr);
    fixture_drop(f);
}

static void test_byte_bound_and_shared_frames(void **state)
{
    fake_t *f = fixture_conn(srv, NULL), *g = fixture_conn(srv, NULL);
    fixture_drain(f);
    fixture_drain(g);
    char big[1000];
    memset(big, 'b', sizeof(big));
    ag_frame_t *fr = ag_frame_create(big, sizeof(big), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ag_conn_send(f->conn, fr), 0);
        assert_int_equal(ag_conn_send(g->conn, fr), 0);
    }
    assert_int_equal(fr->refcnt, 9); /* one frame, eight queue slots */
    assert_int_equal(ag_conn_send(f->conn, fr), AG_EBUSY);
    assert_true(f->closed);
    assert_false(g->closed); /* the other consumer is unaffected */
    fixture_drain(g);
    assert_int_equal(ag_conn_send(g->conn, fr), 0);
    fixture_drain(g);
    ag_frame_release(fr);
    fixture_drop(f);
    fixture_drop(g);
}

/* A frame no queue could hold is refused by itself: the consumer is not slow and stays. */
static void test_oversized_frame_is_refused_not_slow(void **state)
{
    fake_t *f = fixture_conn(srv, NULL);
    fixture_drain(f);
    assert_int_equal(ag_conn_max_frame(srv), 2048);
    char big[2049];
    memset(big, 'b', sizeof(big));
    ag_frame_t *over = ag_frame_create(big, sizeof(big), 0), *fits = ag_frame_create(big, 2048, 0);
    uint64_t slow = srv->stats.slow_consumers;
    assert_int_equal(ag_conn_send(f->conn, over), AG_ETOOBIG);
    assert_false(f->closed);
    assert_int_equal(ag_conn_queued(f->conn), 0);
    assert_int_equal(srv->stats.slow_consumers, slow);
    assert_int_equal(ag_conn_send(f->conn, fits), 0);
    assert_int_equal(ag_conn_queued(f->conn), 1);
    ag_frame_release(over);
    ag_frame_release(fits);
    fixture_drop(f);
}

static void test_idle_holds_no_queue(void **state)
{
    fake_t *f = fixture_conn(srv, NULL);
    fixture_drain(f);
    ag_frame_t *fr = ag_frame_create("y", 1, 0);
    for (int i = 0; i < 40; i++)
        ag_conn_send(f->conn, fr);
    fixture_drain(f);
    assert_null(f->conn->_queue);
    ag_frame_release(fr);
    fixture_drop(f);
}

static void test_transport_backlog_counts(void **state)
{
    fake_t *f = fixture_conn(srv, NULL);
    fixture_drain(f);
    char hundred[100];
    memset(hundred, 'h', sizeof(hundred));
    ag_frame_t *fr = ag_frame_create(hundred, sizeof(hundred), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(ag_conn_send(f->conn, fr), 0);
    ag_frame_release(fr);
    /* 1000 bytes and 10 frames queued: the transport's unsent bytes and frames add to them */
    assert_int_equal(ag_conn_note_backlog(f->conn, 3096, 54), 0);
    assert_false(f->closed);
    uint64_t slow = srv->stats.slow_consumers;
    assert_int_equal(ag_conn_note_backlog(f->conn, 3097, 0), AG_EBUSY);
    assert_true(f->closed);
    assert_ptr_equal(f->why, &AG_DISCONNECT_SLOW);
    assert_int_equal(srv->stats.slow_consumers, slow + 1);
    assert_int_equal(ag_conn_note_backlog(f->conn, 1 << 20, 0), AG_ECLOSED);
    assert_int_equal(srv->stats.slow_consumers, slow + 1);
    fixture_drop(f);

    fake_t *g = fixture_conn(srv, NULL);
    fixture_drain(g);
    assert_int_equal(ag_conn_note_backlog(g->conn, 0, 65), AG_EBUSY);
    assert_ptr_equal(g->why, &AG_DISCONNECT_SLOW);
    fixture_drop(g);
}

static void test_bound_without_connection(void **state)
{
    uint64_t slow = srv->stats.slow_consumers;
    assert_int_equal(ag_conn_bound_exceeded(srv, "echo", 4096, 64), 0);
    assert_int_equal(srv->stats.slow_consumers, slow);
    assert_int_equal(ag_conn_bound_exceeded(srv, "echo", 4097, 1), 1);
    assert_int_equal(ag_conn_bound_exceeded(srv, "echo", 0, 65), 1);
    assert_int_equal(srv->stats.slow_consumers, slow + 2);
}

/* What a consumer registered on a node hears of its connections. */
typedef struct {
    int opens, frames, closes;
    char last[32];
    const ag_disconnect_t *why;
} heard_t;

static void heard_open(ag_conn_t *c, void *data)
{
    ((heard_t *)data)->opens++;
}

static void heard_frame(ag_conn_t *c, const char *msg, size_t len, int binary, void *data)
{
    heard_t *h = data;
    h->frames++;
    snprintf(h->last, sizeof(h->last), "%.*s", (int)len, msg);
}

static void heard_close(ag_conn_t *c, const ag_disconnect_t *why, void *data)
{
    heard_t *h = data;
    h->closes++;
    h->why = why;
}

static void test_consumer_vtable(void **state)
{
    static const ag_conn_handler_t handler = {.on_open = heard_open, .on_frame = heard_frame, .on_close = heard_close};
    heard_t heard = {0};
    ag_server_t *s = fixture_server(NULL);
    ag_conn_set_handler(s, &handler, &heard);
    fake_t *f = fixture_conn(s, NULL);
    assert_int_equal(heard.opens, 1);
    assert_null(ag_conn_shift(f->conn)); /* no session layer: no welcome */
    fixture_send(f, "hello");
    assert_int_equal(heard.frames, 1);
    assert_string_equal(heard.last, "hello");
    ag_conn_close(f->conn, &AG_DISCONNECT_SERVER);
    assert_int_equal(heard.closes, 0); /* the transport closes first */
    fixture_drop(f);
    assert_int_equal(heard.closes, 1);
    assert_ptr_equal(heard.why, &AG_DISCONNECT_SERVER);
    ag_server_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_unshift),
        cmocka_unit_test(test_frame_bound),
        cmocka_unit_test(test_byte_bound_and_shared_frames),
        cmocka_unit_test(test_idle_holds_no_queue),
        cmocka_unit_test(test_oversized_frame_is_refused_not_slow),
        cmocka_unit_test(test_transport_backlog_counts),
        cmocka_unit_test(test_bound_without_connection),
        cmocka_unit_test(test_consumer_vtable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
