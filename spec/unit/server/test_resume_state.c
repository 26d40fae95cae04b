/* The resume state file's parser (server/resume_state.h, ag_resume_state_parse): a file a node wrote is taken; every
 * other input, whatever shape, is refused with its reason, and nothing of it is trusted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "common.h"
#include "resume_state.h"

#define NOW 1800000000000ULL
#define TOKEN "aa2afc3e4e1978f5935730d35f2b5f5c03743eada66ad5ec6afc245a200eb252"

static ag_resume_state_expect_t expect(void)
{
    ag_resume_state_expect_t e = {
        .node = "",
        .now_ms = NOW,
        .window_ms = 120000,
        .workers = 1,
        .max_conns = 10,
        .max_rooms = 4,
        .max_rooms_per_conn = 2,
        .room_name_max = 16,
        .outbox_frames = 4,
        .outbox_bytes = 4096,
        .history_lines = 3,
        .history_bytes = 4096,
    };
    snprintf(e.config, sizeof(e.config), "cfg");
    return e;
}

/* A file as a node writes it: one connection with two numbered frames, in one room with two lines kept. */
static json_t *good(void)
{
    json_error_t je;
    json_t *j = json_loads("{\"format\":\"actiongate resume state\",\"version\":1,\"node\":\"\",\"config\":\"cfg\","
                           "\"savedAt\":1799999990000,\"routes\":[null],"
                           "\"rooms\":{\"lobby\":{\"epoch\":\"00112233445566ff\",\"last\":5,\"floor\":3,"
                           "\"lines\":[[4,1799999980000,\"c{}\"],[5,1799999985000,\"c{\\\"m\\\":1}\"]]}},"
                           "\"conns\":[{\"worker\":0,\"id\":\"e32fce96-6984-4ddd-8a5b-7042545f1d59\",\"token\":\"" TOKEN "\","
                           "\"fingerprint\":\"fp\",\"user\":null,\"remoteIp\":\"127.0.0.1\",\"transport\":\"sse\","
                           "\"connectedAt\":1799999000000,\"left\":100000,\"seq\":7,\"floor\":5,"
                           "\"outbox\":[[6,\"m1\",\"{\\\"seq\\\":6,\\\"a\\\":1}\"],[7,null,\"{\\\"seq\\\":7}\"]],"
                           "\"rooms\":[[\"lobby\",\"00112233445566ff\",4]]}]}",
                           0, &je);
    assert_non_null(j);
    return j;
}

/* Parses j's text under e: the value, or NULL with the reason in err. */
static json_t *parse(const json_t *j, const ag_resume_state_expect_t *e, char *err, size_t errlen)
{
    char *text = json_dumps(j, JSON_COMPACT);
    assert_non_null(text);
    json_t *v = ag_resume_state_parse(text, strlen(text), e, err, errlen);
    free(text);
    return v;
}

/* j (taken) must be refused with a reason containing want. */
static void refused(json_t *j, const char *want)
{
    ag_resume_state_expect_t e = expect();
    char err[320] = "";
    json_t *v = parse(j, &e, err, sizeof(err));
    if (v != NULL || strstr(err, want) == NULL)
        fail_msg("wanted a refusal with \"%s\", got %s \"%s\"", want, v != NULL ? "a value" : "a refusal", err);
    json_decref(j);
}

#define CONN(j) json_array_get(json_object_get((j), "conns"), 0)
#define ROOM(j) json_object_get(json_object_get((j), "rooms"), "lobby")

static void test_good_file(void **state)
{
    ag_resume_state_expect_t e = expect();
    char err[320] = "";
    json_t *j = good(), *v = parse(j, &e, err, sizeof(err));
    if (v == NULL)
        fail_msg("refused: %s", err);
    assert_true(json_equal(v, j));
    json_decref(v);
    /* a connection without rooms and frames, with a user, a token's claims and the hook's data: fine too */
    json_object_set_new(CONN(j), "claims", json_pack("{s:s,s:i}", "sub", "ann", "exp", 1800000100));
    json_object_set_new(CONN(j), "data", json_pack("{s:s}", "user", "ann"));
    json_object_set_new(CONN(j), "user", json_string("ann"));
    json_object_set_new(CONN(j), "outbox", json_array());
    json_object_set_new(CONN(j), "floor", json_integer(7));
    json_object_set_new(CONN(j), "rooms", json_array());
    assert_non_null(v = parse(j, &e, err, sizeof(err)));
    json_decref(v);
    json_decref(j);
}

static void test_bytes(void **state)
{
    ag_resume_state_expect_t e = expect();
    char err[320];
    const char *bad[] = {"", "{", "nul\0l", "[]", "{\"format\":\"actiongate resume state\"", "\xff\xfe{}", "{\"a\":1,\"a\":2}"};
    const size_t lens[] = {0, 1, 5, 2, 34, 4, 13};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        json_t *v = ag_resume_state_parse(bad[i], lens[i], &e, err, sizeof(err));
        assert_null(v);
        assert_true(err[0] != '\0');
    }
    /* cut short anywhere: refused */
    json_t *j = good();
    char *text = json_dumps(j, JSON_COMPACT);
    for (size_t n = 0; n < strlen(text); n += 7) {
        json_t *v = ag_resume_state_parse(text, n, &e, err, sizeof(err));
        assert_null(v);
    }
    free(text);
    json_decref(j);
    /* more than the configuration can have written */
    e.max_conns = 0;
    e.max_rooms = 0;
    e.outbox_bytes = e.history_bytes = 0;
    char big[8192];
    memset(big, ' ', sizeof(big));
    assert_null(ag_resume_state_parse(big, sizeof(big), &e, err, sizeof(err)));
    assert_non_null(strstr(err, "larger than"));
}

static void test_header(void **state)
{
    json_t *j;
    refused(json_pack("{s:s}", "format", "something else"), "not a resume state file");
    j = good(), json_object_set_new(j, "version", json_integer(2)), refused(j, "version");
    j = good(), json_object_set_new(j, "node", json_string("other")), refused(j, "another node");
    j = good(), json_object_del(j, "node"), refused(j, "another node");
    j = good(), json_object_set_new(j, "config", json_string("port=1")), refused(j, "another configuration");
    j = good(), json_object_set_new(j, "savedAt", json_integer((json_int_t)NOW - 120001)), refused(j, "stale");
    j = good(), json_object_set_new(j, "savedAt", json_integer((json_int_t)NOW + 3600000)), refused(j, "future");
    j = good(), json_object_set_new(j, "savedAt", json_string("now")), refused(j, "future");
    j = good(), json_object_set_new(j, "routes", json_pack("[n,n]")), refused(j, "routes");
    j = good(), json_object_set_new(j, "routes", json_pack("[s]", "x/y")), refused(j, "not a tag");
    j = good(), json_object_set_new(j, "conns", json_object()), refused(j, "connections");
}

static void test_conns(void **state)
{
    json_t *j;
    j = good(), json_object_set_new(CONN(j), "id", json_string("")), refused(j, "no valid id");
    j = good(), json_object_set_new(CONN(j), "id", json_string("../../etc")), refused(j, "no valid id");
    j = good(), json_array_append(json_object_get(j, "conns"), CONN(j)), refused(j, "twice");
    j = good(), json_object_set_new(CONN(j), "worker", json_integer(1)), refused(j, "worker");
    j = good(), json_object_set_new(CONN(j), "token", json_string("short")), refused(j, "token");
    j = good(), json_object_set_new(CONN(j), "token", json_string(TOKEN "0")), refused(j, "token");
    j = good(), json_object_set_new(CONN(j), "fingerprint", json_integer(1)), refused(j, "fingerprint");
    j = good(), json_object_set_new(CONN(j), "user", json_integer(1)), refused(j, "user");
    j = good(), json_object_set_new(CONN(j), "claims", json_string("sub")), refused(j, "claims are not an object");
    j = good(), json_object_set_new(CONN(j), "data", json_pack("[]")), refused(j, "data is not an object");
    j = good();
    char *big = malloc(70000);
    memset(big, 'x', 69999);
    big[69999] = '\0';
    json_object_set_new(CONN(j), "data", json_pack("{s:s}", "big", big));
    free(big);
    refused(j, "data is not an object within bounds");
    j = good(), json_object_set_new(CONN(j), "left", json_integer(120001)), refused(j, "window left");
    j = good(), json_object_set_new(CONN(j), "left", json_integer(-1)), refused(j, "window left");
    j = good(),
    json_object_set_new(CONN(j), "remoteIp", json_string("0123456789012345678901234567890123456789012345678901234567890123")),
    refused(j, "address");
    /* too many for the window's bound: ten a worker */
    j = good();
    for (int i = 0; i < 10; i++) {
        json_t *c = json_deep_copy(CONN(j));
        char id[8];
        snprintf(id, sizeof(id), "%d", i);
        json_object_set_new(c, "id", json_string(id));
        json_array_append_new(json_object_get(j, "conns"), c);
    }
    refused(j, "over resumeMaxAway");
}

static void test_outbox(void **state)
{
    json_t *j;
    j = good(), json_array_remove(json_object_get(CONN(j), "outbox"), 0), refused(j, "do not add up");
    j = good(), json_object_set_new(CONN(j), "floor", json_integer(8)), refused(j, "do not add up");
    j = good(), json_array_set_new(json_object_get(CONN(j), "outbox"), 1, json_pack("[i,n,s]", 7, "{\"seq\":70}")),
    refused(j, "frame 1");
    j = good(), json_array_set_new(json_object_get(CONN(j), "outbox"), 1, json_pack("[i,n,s]", 7, "{\"seq\":7 ")),
    refused(j, "frame 1");
    j = good(), json_array_set_new(json_object_get(CONN(j), "outbox"), 0, json_pack("[i,i,s]", 6, 1, "{\"seq\":6}")),
    refused(j, "frame 0");
    j = good(), json_array_set_new(json_object_get(CONN(j), "outbox"), 0, json_pack("[i,s]", 6, "{\"seq\":6}")),
    refused(j, "frame 0");
    /* over the frame bound */
    j = good();
    json_t *o = json_array();
    for (int i = 1; i <= 5; i++) {
        char f[32];
        snprintf(f, sizeof(f), "{\"seq\":%d}", i);
        json_array_append_new(o, json_pack("[i,n,s]", i, f));
    }
    json_object_set_new(CONN(j), "outbox", o);
    json_object_set_new(CONN(j), "seq", json_integer(5));
    json_object_set_new(CONN(j), "floor", json_integer(0));
    refused(j, "do not add up");
}

static void test_rooms(void **state)
{
    json_t *j;
    j = good(), json_array_set_new(json_object_get(CONN(j), "rooms"), 0, json_pack("[s,s,i]", "", "00112233445566ff", 1)),
    refused(j, "room 0 malformed");
    j = good(), json_array_set_new(json_object_get(CONN(j), "rooms"), 0, json_pack("[s,s,i]", "lobby", "xyz", 1)),
    refused(j, "room 0");
    j = good(),
    json_array_set_new(json_object_get(CONN(j), "rooms"), 0, json_pack("[s,s,i]", "a-room-name-too-long", "00112233445566ff", 1)),
    refused(j, "room 0");
    j = good(), json_array_append_new(json_object_get(CONN(j), "rooms"), json_pack("[s,s,i]", "lobby", "00112233445566ff", 1)),
    refused(j, "twice");
    j = good();
    json_array_append_new(json_object_get(CONN(j), "rooms"), json_pack("[s,s,i]", "b", "00112233445566ff", 1));
    json_array_append_new(json_object_get(CONN(j), "rooms"), json_pack("[s,s,i]", "c", "00112233445566ff", 1));
    refused(j, "maxRoomsPerConnection");
}

static void test_history(void **state)
{
    json_t *j;
    j = good(), json_array_remove(json_object_get(ROOM(j), "lines"), 0), refused(j, "room history over its bounds");
    j = good(), json_object_set_new(ROOM(j), "floor", json_integer(6)), refused(j, "not a room history");
    j = good(), json_object_set_new(ROOM(j), "epoch", json_string("0011")), refused(j, "not a room history");
    j = good(), json_object_set_new(ROOM(j), "lines", json_pack("[[i,i,s],[i,i,s]]", 5, 1, "c{}", 4, 1, "c{}")),
    refused(j, "out of order");
    j = good(), json_object_set_new(ROOM(j), "lines", json_pack("[[i,i,i],[i,i,s]]", 4, 1, 7, 5, 1, "c{}")),
    refused(j, "malformed");
    /* more lines than history_lines */
    j = good();
    json_object_set_new(ROOM(j), "floor", json_integer(1));
    json_object_set_new(ROOM(j), "lines",
                        json_pack("[[i,i,s],[i,i,s],[i,i,s],[i,i,s]]", 2, 1, "a", 3, 1, "b", 4, 1, "c", 5, 1, "d"));
    refused(j, "over its bounds");
    j = good(), json_object_set_new(json_object_get(j, "rooms"), "", json_deep_copy(ROOM(j))), refused(j, "room name");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file), cmocka_unit_test(test_bytes),  cmocka_unit_test(test_header),
        cmocka_unit_test(test_conns),     cmocka_unit_test(test_outbox), cmocka_unit_test(test_rooms),
        cmocka_unit_test(test_history),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
