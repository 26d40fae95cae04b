/* socket.io's connection state recovery, the layer's side (transports/socketio_recovery.c): the offset string every
 * event carries, what a client may present back (untrusted: anything else is refused), and frames without the resume
 * core's numbers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "socketio.h"

/* A connection's state that got seq 12 and lines of two rooms. */
static void make_state(ag__sio_state_t *st)
{
    memset(st, 0, sizeof(*st));
    st->seq = 12;
    const char *names[] = {"lobby", "r\"2"};
    uint64_t offsets[] = {7, 130};
    for (size_t i = 0; i < 2; i++)
        st->rooms[st->num_rooms++] = (ag__sio_tracked_t){ag__sio_room_hash(names[i]), offsets[i], strdup(names[i])};
}

static void test_offset_round_trip(void **state)
{
    ag__sio_state_t st;
    make_state(&st);
    char text[AG__SIO_OFFSET_MAX + 1], want[128];
    ag__sio_offset_text(&st, text);
    snprintf(want, sizeof(want), "12.%08x-7.%08x-130", (unsigned)ag__sio_room_hash("lobby"), (unsigned)ag__sio_room_hash("r\"2"));
    assert_string_equal(text, want);

    uint64_t seq = 0;
    json_t *offsets = json_object();
    ag__sio_tracked_t out[AG__SIO_TRACKED_ROOMS];
    size_t n = 0;
    assert_int_equal(ag__sio_offset_parse(&st, text, &seq, offsets, out, &n), 0);
    assert_true(seq == 12);
    assert_int_equal(n, 2);
    assert_int_equal(json_object_size(offsets), 2);
    assert_int_equal(json_integer_value(json_object_get(offsets, "lobby")), 7);
    assert_int_equal(json_integer_value(json_object_get(offsets, "r\"2")), 130);
    assert_string_equal(out[1].name, "r\"2");
    ag__sio_tracked_clear(out, &n);
    json_decref(offsets);

    /* a seq alone (no room line yet), and the largest seq a JSON integer holds */
    offsets = json_object();
    assert_int_equal(ag__sio_offset_parse(&st, "0", &seq, offsets, out, &n), 0);
    assert_true(seq == 0 && n == 0 && json_object_size(offsets) == 0);
    assert_int_equal(ag__sio_offset_parse(&st, "9223372036854775807", &seq, offsets, out, &n), 0);
    assert_true(seq == INT64_MAX);
    json_decref(offsets);

    /* rooms that cannot be told apart: no offset recovers */
    st.overflow = 1;
    ag__sio_offset_text(&st, text);
    assert_string_equal(text, "x");
    ag__sio_tracked_clear(st.rooms, &st.num_rooms);
}

static void assert_refused(const ag__sio_state_t *st, const char *text)
{
    uint64_t seq;
    json_t *offsets = json_object();
    ag__sio_tracked_t out[AG__SIO_TRACKED_ROOMS];
    size_t n = 0;
    if (ag__sio_offset_parse(st, text, &seq, offsets, out, &n) != -1)
        fail_msg("accepted: %.80s", text);
    ag__sio_tracked_clear(out, &n);
    json_decref(offsets);
}

static void test_offset_refused(void **state)
{
    ag__sio_state_t st;
    make_state(&st);
    char h[16], text[AG__SIO_OFFSET_MAX * 2];
    snprintf(h, sizeof(h), "%08x", (unsigned)ag__sio_room_hash("lobby"));
    const char *bad[] = {"",
                         "x",
                         "-1",
                         "+1",
                         "01",
                         "00",
                         " 1",
                         "1 ",
                         "1.",
                         "1.-1",
                         "9223372036854775808",
                         "99999999999999999999",
                         "1.zzzzzzzz-1",
                         "1.DEADBEEF-1",
                         "1.deadbeef-1",
                         "1e3",
                         "0x10"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_refused(&st, bad[i]);
    /* a known room: offset 0, a leading zero, no offset, named twice, a short hash, trailing bytes */
    const char *forms[] = {"1.%s-0", "1.%s-07", "1.%s-", "1.%s-1.%s-2", "1.%.7s-1", "1.%s-1x"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(*forms); i++) {
        snprintf(text, sizeof(text), forms[i], h, h);
        assert_refused(&st, text);
    }
    /* more rooms than an offset can name, and longer than any offset the server makes */
    size_t n = (size_t)snprintf(text, sizeof(text), "1");
    for (int i = 0; i <= AG__SIO_TRACKED_ROOMS; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, ".%s-%d", h, i + 1);
    assert_refused(&st, text);
    memset(text, '1', AG__SIO_OFFSET_MAX + 1);
    text[AG__SIO_OFFSET_MAX + 1] = '\0';
    assert_refused(&st, text);
    ag__sio_tracked_clear(st.rooms, &st.num_rooms);
}

static void assert_body(const char *frame, const char *want)
{
    ag_frame_t *f = ag_frame_create(frame, strlen(frame), 0);
    ag__sio_body_t b = ag__sio_bare_body(f);
    char got[256];
    snprintf(got, sizeof(got), "%s%.*s%s", b.lead, (int)b.len, b.data, b.trail);
    assert_string_equal(got, want);
    ag_frame_release(f);
}

static void test_bare_body(void **state)
{
    assert_body("{\"seq\":5,\"status\":\"OK\",\"messageId\":3}", "{\"status\":\"OK\",\"messageId\":3}");
    assert_body("{\"seq\":17}", "{}");
    assert_body("{\"message\":\"hi\",\"room\":\"r\",\"offset\":42}", "{\"message\":\"hi\",\"room\":\"r\"}");
    assert_body("{\"offset\":1}", "{}");
    /* anything else is left as it is */
    assert_body("{\"a\":1}", "{\"a\":1}");
    assert_body("{\"a\":\"offset\":}", "{\"a\":\"offset\":}");
    assert_body("{\"seq\":x}", "{\"seq\":x}");
    assert_body("\"text\"", "\"text\"");

    ag_frame_t *f = ag_frame_create("{\"seq\":9,\"ok\":1}", 16, 0);
    ag__sio_body_t b = ag__sio_bare_body(f);
    ag_frame_t *ack = ag__sio_encode_body(AG_SIO_ACK, 4, "[", &b, "]");
    assert_string_equal(ack->data, "34[{\"ok\":1}]");
    ag_frame_release(ack);
    ag__sio_state_t st;
    make_state(&st);
    ag_frame_t *ev = ag__sio_encode_event_offset(&st, "re\"sponse", &b);
    char want[160];
    snprintf(want, sizeof(want), "2[\"re\\\"sponse\",{\"ok\":1},\"12.%08x-7.%08x-130\"]", (unsigned)ag__sio_room_hash("lobby"),
             (unsigned)ag__sio_room_hash("r\"2"));
    assert_string_equal(ev->data, want);
    ag_frame_release(ev);
    ag_frame_release(f);
    ag__sio_tracked_clear(st.rooms, &st.num_rooms);
}

static int track_text(ag__sio_state_t *st, const char *frame)
{
    json_t *obj = json_loads(frame, 0, NULL);
    assert_non_null(obj);
    int have = ag__sio_track(NULL, st, obj); /* the connection is asked only when every slot is taken */
    json_decref(obj);
    return have;
}

/* Where the client stands moves on with what it is sent; a room line it has already is not sent again. */
static void test_track(void **state)
{
    ag__sio_state_t st;
    memset(&st, 0, sizeof(st));
    assert_int_equal(track_text(&st, "{\"seq\":3,\"status\":\"OK\"}"), 0);
    assert_true(st.seq == 3);
    assert_int_equal(track_text(&st, "{\"seq\":2,\"status\":\"OK\"}"), 0); /* a stored answer sent again */
    assert_true(st.seq == 3);
    assert_int_equal(track_text(&st, "{\"message\":\"a\",\"room\":\"lobby\",\"offset\":5}"), 0);
    assert_int_equal(track_text(&st, "{\"message\":\"a\",\"room\":\"lobby\",\"offset\":5}"), 1);
    assert_int_equal(track_text(&st, "{\"message\":\"a\",\"room\":\"lobby\",\"offset\":4}"), 1);
    assert_int_equal(track_text(&st, "{\"message\":\"b\",\"room\":\"lobby\",\"offset\":6}"), 0);
    assert_int_equal(track_text(&st, "{\"message\":\"c\",\"room\":\"other\",\"offset\":1}"), 0);
    char text[AG__SIO_OFFSET_MAX + 1], want[64];
    ag__sio_offset_text(&st, text);
    snprintf(want, sizeof(want), "3.%08x-6.%08x-1", (unsigned)ag__sio_room_hash("lobby"), (unsigned)ag__sio_room_hash("other"));
    assert_string_equal(text, want);
    /* joined anew (a room made again starts its offsets again): its lines count from there */
    ag__sio_forget_room(&st, "lobby");
    assert_int_equal(track_text(&st, "{\"message\":\"d\",\"room\":\"lobby\",\"offset\":1}"), 0);
    /* a push without its room, or a frame that is neither, moves nothing */
    assert_int_equal(track_text(&st, "{\"context\":\"api\",\"offset\":99}"), 0);
    assert_int_equal(st.num_rooms, 2);
    ag__sio_tracked_clear(st.rooms, &st.num_rooms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offset_round_trip),
        cmocka_unit_test(test_offset_refused),
        cmocka_unit_test(test_bare_body),
        cmocka_unit_test(test_track),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
