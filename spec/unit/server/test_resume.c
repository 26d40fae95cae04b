/* Resume on a node without sockets (README "Resume"): the verb, an away connection taken over with its token, what it
 * missed replayed once and in order (its numbered frames, then its rooms' lines with their offsets), a re-sent request
 * not run twice, and the refusals (a wrong token, a gap in the outbox, a room's history gone). */
#include "session_fixture.h"
#include "rooms.h"

static ag_server_t *srv;

static int setup(void **state)
{
    srv = fixture_server("general:\n  resumeOutboxFrames: 4\n  resumeHistoryLines: 3\n");
    return 0;
}

static int teardown(void **state)
{
    fixture_server_done(srv);
    return 0;
}

/* A welcomed connection made resumable; its id and token are copied out. */
static fake_t *resumable(char id[37], char token[65])
{
    fake_t *f = fixture_conn(srv, NULL);
    fixture_drain(f);
    fixture_send(f, "{\"event\":\"resume\",\"messageId\":\"r\"}");
    json_t *j = fixture_next(f);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "OK");
    json_t *d = json_object_get(j, "data");
    assert_int_equal(json_integer_value(json_object_get(d, "seq")), 0);
    snprintf(id, 37, "%s", json_string_value(json_object_get(d, "id")));
    snprintf(token, 65, "%s", json_string_value(json_object_get(d, "token")));
    assert_string_equal(id, f->conn->id);
    assert_int_equal(strlen(token), 64);
    json_decref(j);
    return f;
}

static void push_to(const char *id, json_t *obj)
{
    ag_push_conn(srv, id, obj);
    json_decref(obj);
}

static char *resume_request(const char *id, const char *token, int seq, const char *offsets)
{
    char *buf = malloc(512);
    snprintf(buf, 512, "{\"event\":\"resume\",\"messageId\":\"again\",\"id\":\"%s\",\"token\":\"%s\",\"seq\":%d,\"offsets\":%s}",
             id, token, seq, offsets);
    return buf;
}

static void test_resume_replays_once_in_order(void **state)
{
    char id[37], token[65];
    fake_t *a = resumable(id, token);
    fake_t *b = fixture_conn(srv, NULL);
    fixture_drain(b);
    fixture_send(a, "{\"event\":\"roomAdd\",\"room\":\"defaultRoom\",\"messageId\":1}");
    assert_json_text(fixture_next_text(a), "{\"seq\":1,\"status\":\"OK\",\"context\":\"response\",\"data\":true,\"messageId\":1}");
    fixture_send(b, "{\"event\":\"roomAdd\",\"room\":\"defaultRoom\"}");
    fixture_drain(b);
    fixture_send(b, "{\"event\":\"say\",\"room\":\"defaultRoom\",\"message\":\"one\"}");
    json_t *line = fixture_next(a);
    assert_string_equal(json_string_value(json_object_get(line, "message")), "one");
    assert_int_equal(json_integer_value(json_object_get(line, "offset")), 1);
    assert_null(json_object_get(line, "seq")); /* chat lines are counted per room, not per connection */
    json_decref(line);
    /* a stock connection in the same room sees the line as today */
    fixture_drain(b);

    /* the carrier drops: the connection is away, still in its room, still counted */
    ag_conn_t *c = ag_conn_addref(a->conn);
    size_t conns = srv->num_conns;
    fixture_drop(a);
    assert_false(ag_conn_is_closed(c));
    assert_true(ag_conn_is_away(c));
    assert_int_equal(srv->num_conns, conns);
    assert_int_equal(srv->stats.conns_away, 1);
    fixture_send(b, "{\"event\":\"say\",\"room\":\"defaultRoom\",\"message\":\"two\"}");
    fixture_send(b, "{\"event\":\"roomView\",\"room\":\"defaultRoom\"}");
    fixture_drain(b);
    push_to(id, json_pack("{s:s}", "hello", "while away"));
    fixture_settle(srv);

    /* a stranger who knows the id but not the token gets nothing of it */
    fake_t *x = fixture_conn(srv, NULL);
    fixture_drain(x);
    char wrong[65];
    snprintf(wrong, sizeof(wrong), "%s", token);
    wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
    char *req = resume_request(id, wrong, 1, "{\"defaultRoom\":1}");
    fixture_send(x, req);
    free(req);
    json_t *no = fixture_next(x);
    assert_string_equal(json_string_value(json_object_get(no, "status")), "Error: not resumed: unknown connection or wrong token");
    assert_false(json_is_true(json_object_get(json_object_get(no, "data"), "resumed")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(no, "data"), "id")), x->conn->id);
    json_decref(no);
    assert_null(fixture_next(x));
    assert_true(ag_conn_is_away(c));

    /* the client comes back with what it had: seq 1, offset 1 */
    fake_t *n = fixture_conn(srv, NULL);
    fixture_drain(n);
    ag_conn_t *carrier = ag_conn_addref(n->conn);
    req = resume_request(id, token, 1, "{\"defaultRoom\":1}");
    fixture_send(n, req);
    free(req);
    assert_ptr_equal(n->conn, c); /* the fake carries the old connection now */
    assert_true(ag_conn_is_closed(carrier));
    ag_conn_release(carrier);
    assert_false(ag_conn_is_away(c));
    json_t *push = fixture_next(n);
    assert_int_equal(json_integer_value(json_object_get(push, "seq")), 2);
    assert_string_equal(json_string_value(json_object_get(push, "hello")), "while away");
    json_decref(push);
    line = fixture_next(n);
    assert_string_equal(json_string_value(json_object_get(line, "message")), "two");
    assert_int_equal(json_integer_value(json_object_get(line, "offset")), 2);
    json_decref(line);
    json_t *ok = fixture_next(n);
    assert_string_equal(json_string_value(json_object_get(ok, "messageId")), "again");
    assert_true(json_is_true(json_object_get(json_object_get(ok, "data"), "resumed")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(ok, "data"), "id")), id);
    json_decref(ok);
    assert_null(fixture_next(n));
    assert_int_equal(srv->stats.conns_away, 0);

    /* a request re-sent with a messageId already answered gets that answer again, and does not run again */
    fixture_send(n, "{\"event\":\"roomAdd\",\"room\":\"defaultRoom\",\"messageId\":1}");
    assert_json_text(fixture_next_text(n), "{\"seq\":1,\"status\":\"OK\",\"context\":\"response\",\"data\":true,\"messageId\":1}");
    assert_null(fixture_next(n));
    /* and live chat goes on */
    fixture_send(b, "{\"event\":\"say\",\"room\":\"defaultRoom\",\"message\":\"three\"}");
    line = fixture_next(n);
    assert_int_equal(json_integer_value(json_object_get(line, "offset")), 3);
    json_decref(line);
    ag_conn_release(c);
    fixture_drop(n);
    fixture_drop(b);
    fixture_drop(x);
}

static void test_refusals(void **state)
{
    char id[37], token[65];
    fake_t *a = resumable(id, token);
    fake_t *b = fixture_conn(srv, NULL);
    fixture_drain(b);
    fixture_send(a, "{\"event\":\"roomAdd\",\"room\":\"otherRoom\"}");
    fixture_drain(a);
    ag_conn_t *c = ag_conn_addref(a->conn);
    fixture_drop(a);
    /* four lines while away: the history keeps three, so the first is gone */
    fixture_send(b, "{\"event\":\"roomAdd\",\"room\":\"otherRoom\"}");
    for (int i = 0; i < 4; i++)
        fixture_send(b, "{\"event\":\"say\",\"room\":\"otherRoom\",\"message\":\"m\"}");
    fixture_drain(b);
    fake_t *n = fixture_conn(srv, NULL);
    fixture_drain(n);
    char *req = resume_request(id, token, 1, "{}");
    fixture_send(n, req);
    free(req);
    json_t *no = fixture_next(n);
    assert_string_equal(json_string_value(json_object_get(no, "status")), "Error: not resumed: room history gone");
    json_decref(no);
    assert_true(ag_conn_is_closed(c)); /* it could never be resumed now */
    ag_conn_release(c);

    /* the outbox (4 frames) overflows while away: the connection ends at once, it cannot resume */
    fake_t *a2 = resumable(id, token);
    c = ag_conn_addref(a2->conn);
    fixture_drop(a2);
    for (int i = 0; i < 4 && !ag_conn_is_closed(c); i++)
        push_to(id, json_pack("{s:i}", "n", i));
    assert_false(ag_conn_is_closed(c));
    push_to(id, json_pack("{s:i}", "n", 4));
    assert_true(ag_conn_is_closed(c));
    ag_conn_release(c);
    fixture_drop(n);
    fixture_drop(b);
}

/* Closed while away (kicked, its token expired): it ends at once, leaves its rooms, and its memory goes with the loop's
 * next pass. Before, it stayed "closing" with nothing to finish it. */
static void test_closed_while_away(void **state)
{
    char id[37], token[65];
    fake_t *a = resumable(id, token);
    fixture_send(a, "{\"event\":\"roomAdd\",\"room\":\"defaultRoom\"}");
    ag_conn_t *c = ag_conn_addref(a->conn);
    size_t conns = srv->num_conns;
    fixture_drop(a);
    assert_true(ag_conn_is_away(c));
    assert_int_equal(ag__room_local_members(srv, "defaultRoom"), 1);
    ag_conn_close(c, &AG_DISCONNECT_KICKED);
    assert_true(ag_conn_is_closed(c));
    assert_int_equal(srv->num_conns, conns - 1);
    assert_int_equal(srv->stats.conns_away, 0);
    assert_int_equal(ag__room_local_members(srv, "defaultRoom"), 0);
    fixture_settle(srv);
    ag_conn_release(c); /* the last reference: the away one went on the pass above */
}

/* Without the verb a connection behaves as before: dropped is gone. */
static void test_not_asked(void **state)
{
    fake_t *a = fixture_conn(srv, NULL);
    fixture_drain(a);
    ag_conn_t *c = ag_conn_addref(a->conn);
    fixture_drop(a);
    assert_true(ag_conn_is_closed(c));
    ag_conn_release(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resume_replays_once_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_while_away, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_asked, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
