/* The socket.io v5 packet codec (transports/socketio.c), against socket.io-parser 4's encodings and validity rules. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "socketio_packet.h"

static ag_sio_packet_t decode_ok(const char *s)
{
    ag_sio_packet_t p;
    int ret = ag_sio_decode(s, strlen(s), &p);
    if (ret != 0)
        fail_msg("did not decode: %s", s);
    return p;
}

static void assert_rejected(const char *s)
{
    ag_sio_packet_t p;
    if (ag_sio_decode(s, strlen(s), &p) != AG_EINVAL)
        fail_msg("decoded, should not: %s", s);
}

static void assert_data(const ag_sio_packet_t *p, const char *json)
{
    char *got = json_dumps(p->data, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    assert_non_null(got);
    assert_string_equal(got, json);
    free(got);
}

static void test_connect(void **state)
{
    ag_sio_packet_t p = decode_ok("0");
    assert_int_equal(p.type, AG_SIO_CONNECT);
    assert_true(ag_sio_nsp_is_main(&p));
    assert_int_equal(p.id, -1);
    assert_null(p.data);
    ag_sio_packet_dispose(&p);

    p = decode_ok("0{\"token\":\"abc\"}");
    assert_int_equal(p.type, AG_SIO_CONNECT);
    assert_true(ag_sio_nsp_is_main(&p));
    assert_data(&p, "{\"token\":\"abc\"}");
    ag_sio_packet_dispose(&p);

    p = decode_ok("0/admin,{\"token\":\"abc\"}");
    assert_false(ag_sio_nsp_is_main(&p));
    assert_int_equal(p.nsp_len, 6);
    assert_memory_equal(p.nsp, "/admin", 6);
    ag_sio_packet_dispose(&p);

    /* a namespace without the comma ends the packet */
    p = decode_ok("0/admin");
    assert_int_equal(p.nsp_len, 6);
    assert_null(p.data);
    ag_sio_packet_dispose(&p);

    /* CONNECT payloads are objects */
    assert_rejected("0[1]");
    assert_rejected("0\"x\"");
    assert_rejected("0null");
}

static void test_event(void **state)
{
    ag_sio_packet_t p = decode_ok("2[\"action\",{\"action\":\"randomNumber\"}]");
    assert_int_equal(p.type, AG_SIO_EVENT);
    assert_int_equal(p.id, -1);
    assert_data(&p, "[\"action\",{\"action\":\"randomNumber\"}]");
    ag_sio_packet_dispose(&p);

    p = decode_ok("212[\"say\",{\"message\":\"hi\"}]");
    assert_int_equal(p.id, 12);
    assert_true(ag_sio_nsp_is_main(&p));
    ag_sio_packet_dispose(&p);

    p = decode_ok("2/chat,7[\"x\"]");
    assert_int_equal(p.id, 7);
    assert_memory_equal(p.nsp, "/chat", 5);
    ag_sio_packet_dispose(&p);

    /* numeric event names are allowed */
    p = decode_ok("2[42]");
    ag_sio_packet_dispose(&p);

    assert_rejected("2");
    assert_rejected("2[]");
    assert_rejected("2{}");
    assert_rejected("2[null]");
    assert_rejected("2[\"connect\"]");
    assert_rejected("2[\"disconnect\",1]");
    assert_rejected("2[\"newListener\"]");
    assert_rejected("2[\"x\"");                  /* bad JSON */
    assert_rejected("2[\"x\"] tail");            /* trailing garbage */
    assert_rejected("21234567890123456[\"x\"]"); /* ack id beyond exact integers */
}

static void test_other_types(void **state)
{
    ag_sio_packet_t p = decode_ok("1");
    assert_int_equal(p.type, AG_SIO_DISCONNECT);
    ag_sio_packet_dispose(&p);
    p = decode_ok("1/admin,");
    assert_int_equal(p.type, AG_SIO_DISCONNECT);
    assert_false(ag_sio_nsp_is_main(&p));
    ag_sio_packet_dispose(&p);
    assert_rejected("1{}");

    p = decode_ok("33[\"a\",1]");
    assert_int_equal(p.type, AG_SIO_ACK);
    assert_int_equal(p.id, 3);
    ag_sio_packet_dispose(&p);
    p = decode_ok("3[]");
    ag_sio_packet_dispose(&p);
    assert_rejected("3{}");

    p = decode_ok("4{\"message\":\"nope\"}");
    assert_int_equal(p.type, AG_SIO_CONNECT_ERROR);
    ag_sio_packet_dispose(&p);
    p = decode_ok("4\"nope\"");
    ag_sio_packet_dispose(&p);
    assert_rejected("4");
    assert_rejected("4[1]");

    p = decode_ok("51-[\"up\",{\"_placeholder\":true,\"num\":0}]");
    assert_int_equal(p.type, AG_SIO_BINARY_EVENT);
    assert_int_equal(p.attachments, 1);
    ag_sio_packet_dispose(&p);
    p = decode_ok("62-/x,9[{\"_placeholder\":true,\"num\":0}]");
    assert_int_equal(p.type, AG_SIO_BINARY_ACK);
    assert_int_equal(p.attachments, 2);
    assert_int_equal(p.id, 9);
    ag_sio_packet_dispose(&p);
    assert_rejected("5-[\"x\"]");
    assert_rejected("50-[\"x\"]");
    assert_rejected("51[\"x\"]");

    assert_rejected("");
    assert_rejected("7");
    assert_rejected("x");
    assert_rejected("{\"event\":\"say\"}");
}

static void assert_frame(ag_frame_t *f, const char *want)
{
    assert_non_null(f);
    assert_int_equal(f->len, strlen(want));
    assert_string_equal(f->data, want);
    assert_int_equal(f->binary, 0);
    ag_frame_release(f);
}

static void test_encode(void **state)
{
    static const char sid[] = "{\"sid\":\"0b3b2b1e-0000-4000-8000-000000000000\"}";
    assert_frame(ag_sio_encode(AG_SIO_CONNECT, NULL, -1, NULL, sid, strlen(sid), NULL),
                 "0{\"sid\":\"0b3b2b1e-0000-4000-8000-000000000000\"}");
    assert_frame(ag_sio_encode(AG_SIO_DISCONNECT, "/", -1, NULL, NULL, 0, NULL), "1");
    assert_frame(ag_sio_encode(AG_SIO_CONNECT_ERROR, "/admin", -1, NULL, "{\"message\":\"Invalid namespace\"}", 31, NULL),
                 "4/admin,{\"message\":\"Invalid namespace\"}");
    static const char reply[] = "{\"status\":\"OK\",\"context\":\"response\",\"data\":true,\"messageId\":2}";
    assert_frame(ag_sio_encode(AG_SIO_ACK, NULL, 17, "[", reply, strlen(reply), "]"),
                 "317[{\"status\":\"OK\",\"context\":\"response\",\"data\":true,\"messageId\":2}]");
    assert_frame(ag_sio_encode(AG_SIO_ACK, "/x", 0, "[", "1", 1, "]"), "3/x,0[1]");
    assert_frame(ag_sio_encode_event(NULL, -1, "response", reply, strlen(reply)),
                 "2[\"response\",{\"status\":\"OK\",\"context\":\"response\",\"data\":true,\"messageId\":2}]");
    assert_frame(ag_sio_encode_event("/", 5, "we\"ird", "1", 1), "25[\"we\\\"ird\",1]");
    assert_frame(ag_sio_encode_event(NULL, -1, "ping", NULL, 0), "2[\"ping\"]");
}

/* What the layer encodes, the reference decoder's rules accept, and the parts come back. */
static void test_round_trip(void **state)
{
    static const char chat[] = "{\"message\":\"h\\u00e9\",\"room\":\"r\",\"from\":\"0\",\"context\":\"user\",\"sentAt\":1}";
    ag_frame_t *f = ag_sio_encode_event(NULL, -1, "say", chat, strlen(chat));
    ag_sio_packet_t p = decode_ok(f->data);
    assert_int_equal(p.type, AG_SIO_EVENT);
    assert_string_equal(json_string_value(json_array_get(p.data, 0)), "say");
    assert_string_equal(json_string_value(json_object_get(json_array_get(p.data, 1), "message")), "h\xc3\xa9");
    ag_sio_packet_dispose(&p);
    ag_frame_release(f);

    f = ag_sio_encode(AG_SIO_ACK, NULL, 123456789012345, "[", "{}", 2, "]");
    p = decode_ok(f->data);
    assert_int_equal(p.type, AG_SIO_ACK);
    assert_true(p.id == 123456789012345);
    ag_sio_packet_dispose(&p);
    ag_frame_release(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect), cmocka_unit_test(test_event),      cmocka_unit_test(test_other_types),
        cmocka_unit_test(test_encode),  cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
