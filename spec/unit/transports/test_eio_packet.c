/* engine.io packet codec: base64, sid, packets and payloads, error bodies, SSE framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "eio_packet.h"

static void test_base64_roundtrip(void **state)
{
    const uint8_t in[] = {0, 1, 2, 0xfe, 0xff, 0x1e, 'a'};
    char enc[16];
    uint8_t dec[16];
    static const char *const want[] = {"", "AA==", "AAE=", "AAEC", "AAEC/g==", "AAEC/v8=", "AAEC/v8e", "AAEC/v8eYQ=="};
    for (size_t n = 0; n <= sizeof(in); n++) {
        size_t len = ag_eio_base64_encode(in, n, enc);
        assert_int_equal(len, strlen(want[n]));
        assert_memory_equal(enc, want[n], len);
        long d = ag_eio_base64_decode(enc, len, dec);
        assert_int_equal(d, (long)n);
        if (n != 0)
            assert_memory_equal(dec, in, n);
    }
    /* padding is optional, URL-safe letters accepted, garbage refused */
    assert_int_equal(ag_eio_base64_decode("AAE", 3, dec), 2);
    assert_int_equal(ag_eio_base64_decode("_-8", 3, dec), 2);
    assert_int_equal(dec[0], 0xff);
    assert_int_equal(ag_eio_base64_decode("A", 1, dec), -1);
    assert_int_equal(ag_eio_base64_decode("AA!A", 4, dec), -1);
}

static void test_sid(void **state)
{
    char a[AG_EIO_SID_LEN + 1], b[AG_EIO_SID_LEN + 1];
    ag_eio_sid_generate(a);
    ag_eio_sid_generate(b);
    assert_int_equal(strlen(a), 22);
    assert_string_not_equal(a, b);
    for (int i = 0; i < 22; i++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", a[i]));
}

static void test_packet_decode(void **state)
{
    char scratch[16];
    ag_eio_packet_t p;
    assert_int_equal(ag_eio_packet_decode("4héllo", 7, scratch, &p), 0);
    assert_int_equal(p.type, AG_EIO_MESSAGE);
    assert_int_equal(p.binary, 0);
    assert_int_equal(p.len, 6);
    assert_memory_equal(p.data, "héllo", 6);
    assert_int_equal(ag_eio_packet_decode("2probe", 6, scratch, &p), 0);
    assert_int_equal(p.type, AG_EIO_PING);
    assert_memory_equal(p.data, "probe", 5);
    assert_int_equal(ag_eio_packet_decode("6", 1, scratch, &p), 0);
    assert_int_equal(p.type, AG_EIO_NOOP);
    assert_int_equal(p.len, 0);
    assert_int_equal(ag_eio_packet_decode("bAQID", 5, scratch, &p), 0);
    assert_int_equal(p.type, AG_EIO_MESSAGE);
    assert_int_equal(p.binary, 1);
    assert_int_equal(p.len, 3);
    assert_memory_equal(p.data, "\x01\x02\x03", 3);
    assert_int_not_equal(ag_eio_packet_decode("", 0, scratch, &p), 0);
    assert_int_not_equal(ag_eio_packet_decode("7x", 2, scratch, &p), 0);
    assert_int_not_equal(ag_eio_packet_decode("x", 1, scratch, &p), 0);
    assert_int_not_equal(ag_eio_packet_decode("b!!", 3, scratch, &p), 0);
}

static void test_payload_split(void **state)
{
    const char *payload = "4a\x1e"
                          "2\x1e"
                          "bAQ==";
    size_t pos = 0, len;
    const char *piece;
    const char *want[] = {"4a", "2", "bAQ=="};
    int n = 0;
    while (ag_eio_payload_next(payload, strlen(payload), &pos, &piece, &len)) {
        assert_true(n < 3);
        assert_int_equal(len, strlen(want[n]));
        assert_memory_equal(piece, want[n], len);
        n++;
    }
    assert_int_equal(n, 3);
    /* a trailing separator leaves one empty piece, which the decoder rejects */
    pos = 0;
    n = 0;
    while (ag_eio_payload_next("4a\x1e", 3, &pos, &piece, &len))
        n++;
    assert_int_equal(n, 2);
    pos = 0;
    assert_int_equal(ag_eio_payload_next("", 0, &pos, &piece, &len), 0);
}

static void test_payload_encode(void **state)
{
    ag_eio_buf_t b = {NULL, 0, 0};
    assert_int_equal(ag_eio_payload_append(&b, AG_EIO_PING, NULL, 0, 0), 0);
    assert_int_equal(ag_eio_payload_append(&b, AG_EIO_MESSAGE, "wörld", 6, 0), 0);
    assert_int_equal(ag_eio_payload_append(&b, AG_EIO_MESSAGE, "\x01\x02\x03\x04", 4, 1), 0);
    assert_int_equal(ag_eio_payload_append(&b, AG_EIO_PONG, "probe", 5, 0), 0);
    const char *want = "2\x1e"
                       "4wörld\x1e"
                       "bAQIDBA==\x1e"
                       "3probe";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.base, want, b.len);
    ag_eio_buf_dispose(&b);
}

static void test_error_bodies(void **state)
{
    char buf[96];
    static const char *const want[] = {
        "{\"code\":0,\"message\":\"Transport unknown\"}",
        "{\"code\":1,\"message\":\"Session ID unknown\"}",
        "{\"code\":2,\"message\":\"Bad handshake method\"}",
        "{\"code\":3,\"message\":\"Bad request\"}",
        "{\"code\":4,\"message\":\"Forbidden\"}",
        "{\"code\":5,\"message\":\"Unsupported protocol version\"}",
    };
    for (int i = 0; i < 6; i++) {
        size_t n = ag_eio_error_body(i, buf, sizeof(buf));
        assert_int_equal(n, strlen(want[i]));
        assert_string_equal(buf, want[i]);
    }
}

static void expect_event(uint64_t id, const char *payload, size_t len, const char *want)
{
    ag_eio_buf_t b = {NULL, 0, 0};
    assert_int_equal(ag_eio_sse_event_append(&b, id, payload, len), 0);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.base, want, b.len);
    ag_eio_buf_dispose(&b);
}

/* protocol 3: "<UTF-16 length>:<packet>", binary as b4<base64> */
static void test_payload3(void **state)
{
    ag_eio_buf_t b = {0};
    assert_int_equal(ag_eio3_payload_append(&b, AG_EIO_MESSAGE, "h\xc3\xa9\xf0\x9f\x98\x80", 7, 0), 0); /* hé😀 */
    assert_int_equal(ag_eio3_payload_append(&b, AG_EIO_PONG, NULL, 0, 0), 0);
    assert_int_equal(ag_eio3_payload_append(&b, AG_EIO_MESSAGE, "\x01\x02\x03", 3, 1), 0);
    const char want[] = "5:4h\xc3\xa9\xf0\x9f\x98\x80"
                        "1:3"
                        "6:b4AQID";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.base, want, b.len);
    size_t pos = 0, n;
    const char *piece;
    char scratch[16];
    ag_eio_packet_t p;
    assert_int_equal(ag_eio3_payload_next(b.base, b.len, &pos, &piece, &n), 1);
    assert_int_equal(n, 8);
    assert_int_equal(ag_eio3_packet_decode(piece, n, scratch, &p), 0);
    assert_int_equal(p.type, AG_EIO_MESSAGE);
    assert_int_equal(p.len, 7);
    assert_int_equal(ag_eio3_payload_next(b.base, b.len, &pos, &piece, &n), 1);
    assert_int_equal(ag_eio3_packet_decode(piece, n, scratch, &p), 0);
    assert_int_equal(p.type, AG_EIO_PONG);
    assert_int_equal(ag_eio3_payload_next(b.base, b.len, &pos, &piece, &n), 1);
    assert_int_equal(ag_eio3_packet_decode(piece, n, scratch, &p), 0);
    assert_true(p.binary);
    assert_int_equal(p.len, 3);
    assert_memory_equal(p.data, "\x01\x02\x03", 3);
    assert_int_equal(ag_eio3_payload_next(b.base, b.len, &pos, &piece, &n), 0);
    ag_eio_buf_dispose(&b);
    /* malformed: past the end, inside a surrogate pair, no or zero or overlong length, no colon */
    const char *bad[] = {"9:4abc", "2:4\xf0\x9f\x98\x80", "4abc", "0:", "12345678901:4", "3", ":4a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pos = 0;
        assert_true(ag_eio3_payload_next(bad[i], strlen(bad[i]), &pos, &piece, &n) < 0);
    }
    assert_int_not_equal(ag_eio3_packet_decode("bAQID", 5, scratch, &p), 0); /* v4's binary form */
    assert_int_not_equal(ag_eio3_packet_decode("b2AQID", 6, scratch, &p), 0);
}

/* protocol 3's binary payload: kind byte, length digits as bytes, 0xFF, packet */
static void test_payload3_octets(void **state)
{
    ag_eio_buf_t b = {0};
    assert_int_equal(ag_eio3_binary_payload_append(&b, AG_EIO_MESSAGE, "h\xc3\xa9", 3, 0), 0);
    assert_int_equal(ag_eio3_binary_payload_append(&b, AG_EIO_MESSAGE, "\x01\x02\xff", 3, 1), 0);
    assert_int_equal(ag_eio3_binary_payload_append(&b, AG_EIO_PONG, NULL, 0, 0), 0);
    char big[1234];
    memset(big, 7, sizeof(big));
    assert_int_equal(ag_eio3_binary_payload_append(&b, AG_EIO_MESSAGE, big, sizeof(big), 1), 0);
    const char want[] = "\x00\x04\xff"
                        "4h\xc3\xa9"
                        "\x01\x04\xff\x04\x01\x02\xff"
                        "\x00\x01\xff"
                        "3"
                        "\x01\x01\x02\x03\x05\xff\x04";
    assert_int_equal(b.len, sizeof(want) - 1 + sizeof(big));
    assert_memory_equal(b.base, want, sizeof(want) - 1);
    size_t pos = 0, n;
    const char *piece;
    int bin;
    char scratch[16];
    ag_eio_packet_t p;
    assert_int_equal(ag_eio3_binary_payload_next(b.base, b.len, &pos, &piece, &n, &bin), 1);
    assert_int_equal(bin, 0);
    assert_int_equal(ag_eio3_binary_packet_decode(piece, n, bin, scratch, &p), 0);
    assert_int_equal(p.type, AG_EIO_MESSAGE);
    assert_false(p.binary);
    assert_int_equal(p.len, 3);
    assert_memory_equal(p.data, "h\xc3\xa9", 3);
    assert_int_equal(ag_eio3_binary_payload_next(b.base, b.len, &pos, &piece, &n, &bin), 1);
    assert_int_equal(bin, 1);
    assert_int_equal(ag_eio3_binary_packet_decode(piece, n, bin, scratch, &p), 0);
    assert_true(p.binary);
    assert_int_equal(p.len, 3);
    assert_memory_equal(p.data, "\x01\x02\xff", 3);
    assert_int_equal(ag_eio3_binary_payload_next(b.base, b.len, &pos, &piece, &n, &bin), 1);
    assert_int_equal(ag_eio3_binary_packet_decode(piece, n, bin, scratch, &p), 0);
    assert_int_equal(p.type, AG_EIO_PONG);
    assert_int_equal(ag_eio3_binary_payload_next(b.base, b.len, &pos, &piece, &n, &bin), 1);
    assert_int_equal(ag_eio3_binary_packet_decode(piece, n, bin, scratch, &p), 0);
    assert_int_equal(p.len, sizeof(big));
    assert_int_equal(ag_eio3_binary_payload_next(b.base, b.len, &pos, &piece, &n, &bin), 0);
    ag_eio_buf_dispose(&b);
    /* malformed: a kind byte above 1, a digit byte above 9, no 0xFF, no digits, a zero length, past the end, eleven
     * digits */
    static const struct {
        const char *s;
        size_t len;
    } bad[] = {{"\x02\x01\xff"
                "4",
                4},
               {"\x00\x0a\xff"
                "4",
                4},
               {"\x00\x01\x02", 3},
               {"\x00\xff"
                "4",
                3},
               {"\x00\x00\xff", 3},
               {"\x00\x03\xff"
                "4a",
                5},
               {"\x00\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\xff"
                "4",
                14}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pos = 0;
        assert_true(ag_eio3_binary_payload_next(bad[i].s, bad[i].len, &pos, &piece, &n, &bin) < 0);
    }
    /* a binary packet is a message, its type the byte 4 */
    assert_int_not_equal(ag_eio3_binary_packet_decode("\x02\x01", 2, 1, scratch, &p), 0);
    assert_int_not_equal(ag_eio3_binary_packet_decode("4\x01", 2, 1, scratch, &p), 0);
}

static void test_jsonp(void **state)
{
    ag_eio_buf_t b = {0};
    assert_int_equal(ag_eio_jsonp_append(&b, "3<script>", "1:\"\\\n\xe2\x80\xa8", 8), 0);
    const char want[] = "___eio[3](\"1:\\\"\\\\\\n\\u2028\");";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.base, want, b.len);
    ag_eio_buf_dispose(&b);
    char out[64];
    /* the client wrote a newline as \n and a \n of the data as \\n */
    const char form[] = "x=1&d=6%3A4a%5C%5Cnb%5Cn+%C3%A9&y=2";
    long n = ag_eio_jsonp_form_decode(form, sizeof(form) - 1, out);
    assert_int_equal(n, 11);
    assert_memory_equal(out, "6:4a\\nb\n \xc3\xa9", 11);
    assert_int_equal(ag_eio_jsonp_form_decode("x=1", 3, out), -1);
    assert_int_equal(ag_eio_jsonp_form_decode("d=%4", 4, out), -1);
    assert_int_equal(ag_eio_jsonp_form_decode("d=%zz", 5, out), -1);
    assert_int_equal(ag_eio_jsonp_form_decode("d=", 2, out), 0);
}

static void test_sse_framing(void **state)
{
    expect_event(1, "4hi", 3, "id: 1\ndata: 4hi\n\n");
    expect_event(42, "", 0, "id: 42\ndata: \n\n");
    expect_event(7, "4a\nb\n", 5, "id: 7\ndata: 4a\ndata: b\ndata: \n\n");
    expect_event(18446744073709551615ull,
                 "2\x1e"
                 "4x",
                 4,
                 "id: 18446744073709551615\ndata: 2\x1e"
                 "4x\n\n");
    expect_event(3, "4a\rb\"\\\x01\n", 8, "id: 3\nevent: j\ndata: \"4a\\rb\\\"\\\\\\u0001\\n\"\n\n");
    expect_event(4, "4ü😀\r", 8, "id: 4\nevent: j\ndata: \"4ü😀\\r\"\n\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_roundtrip), cmocka_unit_test(test_sid),
        cmocka_unit_test(test_packet_decode),    cmocka_unit_test(test_payload_split),
        cmocka_unit_test(test_payload_encode),   cmocka_unit_test(test_error_bodies),
        cmocka_unit_test(test_sse_framing),      cmocka_unit_test(test_payload3),
        cmocka_unit_test(test_payload3_octets),  cmocka_unit_test(test_jsonp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
