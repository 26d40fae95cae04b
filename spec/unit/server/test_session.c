/* The session layer over a fake transport: welcome, verbs, actions, pending limit, bad input, shutdown, push. */
#include "session_fixture.h"
#include "actions.h"

static ag_server_t *srv;

static int setup(void **state)
{
    srv = fixture_server("general:\n  welcomeMessage: \"hi there\"\n");
    return 0;
}

static int teardown(void **state)
{
    fixture_server_done(srv);
    return 0;
}

static void test_welcome_and_details(void **state)
{
    fake_t *f = fixture_conn(srv, "fp1");
    assert_json_text(fixture_next_text(f), "{\"welcome\":\"hi there\",\"context\":\"api\"}");
    json_t *r = (fixture_send(f, "{\"event\":\"detailsView\",\"messageId\":1}"), fixture_next(f));
    json_t *d = json_object_get(r, "data");
    assert_string_equal(json_string_value(json_object_get(d, "id")), f->conn->id);
    assert_string_equal(json_string_value(json_object_get(d, "fingerprint")), "fp1");
    assert_string_equal(json_string_value(json_object_get(d, "remoteIP")), "127.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(d, "remotePort")), 4242);
    assert_int_equal(json_integer_value(json_object_get(r, "messageId")), 1);
    json_decref(r);
    fixture_drop(f);
    fake_t *g = fixture_conn(srv, NULL);
    assert_string_equal(g->conn->fingerprint, g->conn->id);
    fixture_drop(g);
}

static void test_verb_errors(void **state)
{
    fake_t *f = fixture_conn(srv, NULL);
    fixture_drain(f);
    assert_json_text(fixture_ask(f, "{\"event\":\"nope\",\"x\":1,\"messageId\":\"m\"}"),
                     "{\"status\":\"Error: verb not found or not allowed (nope)\",\"error\":\"Error: verb not found or not allowed "
                     "(nope)\",\"context\":\"response\",\"data\":{\"x\":1},\"messageId\":\"m\"}");
    assert_json_text(fixture_ask(f, "{\"event\":\"roomAdd\",\"room\":\"zzz\",\"messageId\":2}"),
                     "{\"status\":\"Error: room does not exist\",\"error\":\"Error: room does not exist\",\"context\":\"response\","
                     "\"data\":{},\"messageId\":2}");
    assert_json_text(fixture_ask(f, "{\"event\":\"say\",\"room\":\"defaultRoom\",\"message\":\"x\",\"messageId\":3}"),
                     "{\"status\":\"Error: connection not in this room (defaultRoom)\",\"error\":\"Error: connection not in this "
                     "room (defaultRoom)\",\"context\":\"response\",\"data\":{\"message\":\"x\"},\"messageId\":3}");
    fixture_drop(f);
}

static void test_bad_input(void **state)
{
    fake_t *f = fixture_conn(srv, NULL);
    fixture_drain(f);
    uint64_t before = srv->stats.invalid_json;
    static const char bad_utf8[] = "{\"event\":\"detailsView\",\"x\":\"\xff\xfe\"}";
    ag_conn_on_frame(f->conn, bad_utf8, sizeof(bad_utf8) - 1, 0);
    fixture_send(f, "{\"event\":");
    fixture_send(f, "");
    assert_null(fixture_next_text(f));
    assert_int_equal(srv->stats.invalid_json, before + 3);
    const char *values[] = {"null", "\"x\"", "123", "[1]"};
    for (size_t i = 0; i < 4; i++) {
        json_t *r = (fixture_send(f, values[i]), fixture_next(f));
        assert_string_equal(json_string_value(json_object_get(r, "error")), "Error: verb not found or not allowed (undefined)");
        json_t *want = json_loads(values[i], JSON_DECODE_ANY, NULL);
        assert_true(json_equal(json_object_get(r, "data"), want));
        assert_int_equal(json_string_length(json_object_get(r, "messageId")), 36);
        json_decref(want);
        json_decref(r);
    }
    ag_conn_on_frame(f->conn, "\x01\x02", 2, 1);
    json_t *r = fixture_next(f);
    assert_string_equal(json_string_value(json_object_get(r, "error")), "Error: verb not found or not allowed (undefined)");
    json_decref(r);
    assert_false(f->closed);
    fixture_drop(f);
}

static void test_actions_and_messageid(void **state)
{
    fake_t *f = fixture_conn(srv, NULL);
    fixture_drain(f);
    assert_json_text(
        fixture_ask(f, "{\"event\":\"action\",\"params\":{\"action\":\"echo\",\"payload\":[1],\"junk\":2},\"messageId\":7}"),
        "{\"payload\":[1],\"context\":\"response\",\"messageId\":7}");
    assert_json_text(fixture_ask(f, "{\"event\":\"action\",\"params\":{\"action\":\"cacheTest\",\"key\":\"abc\"},\"messageId\":8}"),
                     "{\"error\":\"value is a required parameter for this action\",\"context\":\"response\",\"messageId\":8}");
    json_t *r = (fixture_send(f, "{\"event\":\"action\",\"params\":{\"action\":\"x\"},\"messageId\":false}"), fixture_next(f));
    assert_string_equal(json_string_value(json_object_get(r, "error")), "unknown action or invalid apiVersion");
    assert_int_equal(json_string_length(json_object_get(r, "messageId")), 36);
    json_decref(r);
    fixture_drop(f);
}

static void run_web_only(ag_action_req_t *r, void *data)
{
    ag_action_succeed(r, json_pack("{s:b}", "ran", 1));
}

static void run_fails(ag_action_req_t *r, void *data)
{
    ag_action_fail(r, 0, "it broke");
}

static void test_registered_actions(void **state)
{
    static const ag_input_t in[] = {{"n", 0, "3", NULL, NULL}};
    const ag_action_def_t web_only = {"webOnly", "blocked on sockets", NULL, 0, run_web_only, NULL, 1};
    const ag_action_def_t fails = {"fails", "always fails", in, 1, run_fails, NULL, 0};
    const ag_action_def_t bad_default = {"bad", "", (const ag_input_t[]){{"n", 0, "{nope", NULL, NULL}}, 1, run_fails, NULL, 0};
    assert_int_equal(ag_action_register(srv, &web_only), 0);
    assert_int_equal(ag_action_register(srv, &fails), 0);
    assert_int_equal(ag_action_register(srv, &bad_default), AG_EINVAL);
    assert_int_equal(ag_action_register(srv, &(ag_action_def_t){NULL}), AG_EINVAL);
    fake_t *f = fixture_conn(srv, NULL);
    fixture_drain(f);
    assert_json_text(
        fixture_ask(f, "{\"event\":\"action\",\"params\":{\"action\":\"webOnly\"},\"messageId\":1}"),
        "{\"error\":\"this action does not support the websocket connection type\",\"context\":\"response\",\"messageId\":1}");
    assert_json_text(fixture_ask(f, "{\"event\":\"action\",\"params\":{\"action\":\"fails\"},\"messageId\":2}"),
                     "{\"error\":\"it broke\",\"context\":\"response\",\"messageId\":2}");
    /* registering again replaces */
    const ag_action_def_t fixed = {"fails", "fixed", NULL, 0, run_web_only, NULL, 0};
    assert_int_equal(ag_action_register(srv, &fixed), 0);
    assert_json_text(fixture_ask(f, "{\"event\":\"action\",\"params\":{\"action\":\"fails\"},\"messageId\":3}"),
                     "{\"ran\":true,\"context\":\"response\",\"messageId\":3}");
    fixture_drop(f);
}

static int replies_at_least(void *arg)
{
    fake_t *f = arg;
    return ag_conn_queued(f->conn) >= 6;
}

static void test_pending_limit(void **state)
{
    fake_t *f = fixture_conn(srv, NULL);
    fixture_drain(f);
    for (int i = 1; i <= 6; i++) {
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "{\"event\":\"action\",\"params\":{\"action\":\"sleepTest\",\"sleepDuration\":20},\"messageId\":%d}", i);
        fixture_send(f, msg);
    }
    assert_int_equal(f->conn->pending_actions, 5);
    assert_int_equal(f->conn->total_actions, 6);
    assert_json_text(fixture_next_text(f),
                     "{\"error\":\"you have too many pending requests\",\"context\":\"response\",\"messageId\":6}");
    fixture_run_until(srv, replies_at_least, f, 2000);
    for (int i = 1; i <= 5; i++) {
        json_t *r = fixture_next(f);
        assert_int_equal(json_integer_value(json_object_get(r, "sleepDuration")), 20);
        assert_true(json_integer_value(json_object_get(r, "sleepDelta")) >= 20);
        json_decref(r);
    }
    assert_int_equal(f->conn->pending_actions, 0);
    fixture_drop(f);
}

static void test_closed_conn_with_pending_action(void **state)
{
    fake_t *f = fixture_conn(srv, NULL);
    fixture_send(f, "{\"event\":\"action\",\"params\":{\"action\":\"sleepTest\",\"sleepDuration\":5}}");
    ag_conn_t *c = ag_conn_addref(f->conn);
    fixture_drop(f); /* the action holds its own reference */
    assert_true(ag_conn_is_closed(c));
    uint64_t end = ag_now_ms() + 100;
    while (ag_now_ms() < end)
        h2o_evloop_run(srv->loop, 10);
    assert_int_equal(c->pending_actions, 0);
    ag_conn_release(c);
}

static void test_push(void **state)
{
    fake_t *f = fixture_conn(srv, NULL);
    fixture_drain(f);
    json_t *o = json_pack("{s:i}", "n", 1);
    assert_int_equal(ag_push_conn(srv, f->conn->id, o), 0);
    assert_json_text(fixture_next_text(f), "{\"n\":1,\"context\":\"api\"}");
    json_object_set_new(o, "context", json_string("alert"));
    assert_int_equal(ag_push_conn(srv, f->conn->id, o), 0);
    assert_json_text(fixture_next_text(f), "{\"n\":1,\"context\":\"alert\"}");
    assert_int_equal(ag_push_conn(srv, "nobody", o), AG_ENOENT);
    json_decref(o);
    fixture_drop(f);
}

static void test_quit(void **state)
{
    fake_t *f = fixture_conn(srv, NULL);
    fixture_drain(f);
    fixture_send(f, "{\"event\":\"quit\",\"messageId\":1}");
    assert_true(f->closed);
    assert_ptr_equal(f->why, &AG_DISCONNECT_QUIT);
    assert_null(fixture_next_text(f));
    fixture_drop(f);
}

/* Last: the node stops taking actions. */
static void test_shutdown(void **state)
{
    fake_t *f = fixture_conn(srv, NULL);
    fixture_drain(f);
    fixture_send(f, "{\"event\":\"action\",\"params\":{\"action\":\"sleepTest\",\"sleepDuration\":60000},\"messageId\":1}");
    assert_null(fixture_next_text(f));
    srv->stopping = 1;
    ag__actions_stop(srv);
    assert_json_text(fixture_next_text(f), "{\"error\":\"the server is shutting down\",\"context\":\"response\",\"messageId\":1}");
    assert_json_text(fixture_ask(f, "{\"event\":\"action\",\"params\":{\"action\":\"randomNumber\"},\"messageId\":2}"),
                     "{\"error\":\"the server is shutting down\",\"context\":\"response\",\"messageId\":2}");
    fixture_drop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_welcome_and_details),
        cmocka_unit_test(test_verb_errors),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_actions_and_messageid),
        cmocka_unit_test(test_pending_limit),
        cmocka_unit_test(test_closed_conn_with_pending_action),
        cmocka_unit_test(test_push),
        cmocka_unit_test(test_registered_actions),
        cmocka_unit_test(test_quit),
        cmocka_unit_test(test_shutdown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
