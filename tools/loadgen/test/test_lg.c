/* Unit tests of the load generator's byte-level pieces: histogram, WebSocket framing, HTTP heads, chunked bodies,
 * SSE events, payload markers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lg.h"

static void hist_buckets_are_contiguous_and_narrow(void **state)
{
    /* every value maps to a bucket whose bounds contain it, buckets tile the range, and width ≤ 1/32 of the value */
    for (unsigned i = 0; i + 1 < LG_HIST_BUCKETS; i++)
        assert_int_equal(lg_hist_bucket_high(i) + 1, lg_hist_bucket_low(i + 1));
    uint64_t vals[] = {0, 1, 31, 32, 33, 63, 64, 65, 1000, 28000, 1000000, 123456789, 1ull << 40, UINT64_MAX};
    for (size_t k = 0; k < sizeof(vals) / sizeof(vals[0]); k++) {
        unsigned i = lg_hist_index(vals[k]);
        assert_true(i < LG_HIST_BUCKETS);
        assert_true(lg_hist_bucket_low(i) <= vals[k]);
        assert_true(vals[k] <= lg_hist_bucket_high(i));
        if (vals[k] >= 64)
            assert_true(lg_hist_bucket_high(i) - lg_hist_bucket_low(i) + 1 <= vals[k] / 32 + 1);
    }
    assert_int_equal(lg_hist_index(31), 31);
    assert_int_equal(lg_hist_index(32), 32);
    assert_int_equal(lg_hist_index(64), 64);
    assert_int_equal(lg_hist_index(66), 65);
}

static void hist_quantiles(void **state)
{
    lg_hist_t h;
    lg_hist_init(&h);
    assert_int_equal(lg_hist_quantile(&h, 0.5), 0);
    for (uint64_t v = 1; v <= 10000; v++)
        lg_hist_add(&h, v * 1000);
    assert_int_equal(h.count, 10000);
    assert_int_equal(h.min, 1000);
    assert_int_equal(h.max, 10000000);
    uint64_t p50 = lg_hist_quantile(&h, 0.5), p99 = lg_hist_quantile(&h, 0.99), p999 = lg_hist_quantile(&h, 0.999);
    /* exact values are 5.0e6, 9.9e6, 9.99e6; a bucket is at most 1/32 wide */
    assert_true(p50 >= 5000000 && p50 <= 5000000 + 5000000 / 32);
    assert_true(p99 >= 9900000 && p99 <= 9900000 + 9900000 / 32);
    assert_true(p999 >= 9990000 && p999 <= 10000000);
    assert_int_equal(lg_hist_quantile(&h, 1.0), 10000000);
    assert_int_equal(lg_hist_quantile(&h, 0.0), lg_hist_bucket_high(lg_hist_index(1000)));

    lg_hist_t a, b;
    lg_hist_init(&a);
    lg_hist_init(&b);
    lg_hist_add(&a, 5);
    lg_hist_add(&b, 700);
    lg_hist_add(&b, 9);
    lg_hist_merge(&a, &b);
    assert_int_equal(a.count, 3);
    assert_int_equal(a.min, 5);
    assert_int_equal(a.max, 700);
    assert_int_equal(a.sum, 714);
    assert_int_equal(lg_hist_quantile(&a, 0.5), 9);
}

static void ws_header_encodes_lengths_with_zero_mask(void **state)
{
    uint8_t h[14];
    size_t n = lg_ws_header(h, 1, 5);
    assert_int_equal(n, 6);
    assert_int_equal(h[0], 0x81);
    assert_int_equal(h[1], 0x80 | 5);
    assert_memory_equal(h + 2, "\0\0\0\0", 4);
    n = lg_ws_header(h, 1, 300);
    assert_int_equal(n, 8);
    assert_int_equal(h[1], 0x80 | 126);
    assert_int_equal(h[2], 1);
    assert_int_equal(h[3], 44);
    n = lg_ws_header(h, 10, 70000);
    assert_int_equal(n, 14);
    assert_int_equal(h[0], 0x8a);
    assert_int_equal(h[1], 0x80 | 127);
    assert_int_equal(((uint64_t)h[7] << 16) | ((uint64_t)h[8] << 8) | h[9], 70000);
    /* our own frames parse back */
    lg_ws_frame_t f;
    assert_int_equal(lg_ws_parse(h, n, &f), 1);
    assert_int_equal(f.len, 70000);
    assert_int_equal(f.masked, 1);
    assert_int_equal(f.hdr_len, 14);
    assert_int_equal(f.opcode, 10);
}

static void ws_parse_server_frames(void **state)
{
    lg_ws_frame_t f;
    const uint8_t small[] = {0x81, 0x03, 'a', 'b', 'c'};
    assert_int_equal(lg_ws_parse(small, 1, &f), 0);
    assert_int_equal(lg_ws_parse(small, sizeof(small), &f), 1);
    assert_int_equal(f.fin, 1);
    assert_int_equal(f.opcode, 1);
    assert_int_equal(f.len, 3);
    assert_int_equal(f.hdr_len, 2);
    assert_int_equal(f.masked, 0);
    const uint8_t mid[] = {0x82, 126, 0x01, 0x00};
    assert_int_equal(lg_ws_parse(mid, 3, &f), 0);
    assert_int_equal(lg_ws_parse(mid, 4, &f), 1);
    assert_int_equal(f.len, 256);
    assert_int_equal(f.hdr_len, 4);
    const uint8_t frag[] = {0x01, 0x01, 'x'};
    assert_int_equal(lg_ws_parse(frag, sizeof(frag), &f), 1);
    assert_int_equal(f.fin, 0);
    const uint8_t rsv[] = {0xc1, 0x01, 'x'};
    assert_int_equal(lg_ws_parse(rsv, sizeof(rsv), &f), -1);
    const uint8_t close[] = {0x88, 0x02, 0x03, 0xe8};
    assert_int_equal(lg_ws_parse(close, sizeof(close), &f), 1);
    assert_int_equal(f.opcode, 8);
}

static void http_head(void **state)
{
    lg_http_head_t h;
    const char *r = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 12\r\nLast-Modified: Sun, 22 Nov 2026 "
                    "04:00:00 GMT\r\nEtag: 0\r\n\r\nhello world!";
    assert_int_equal(lg_http_parse_head(r, 20, &h), 0);
    assert_int_equal(lg_http_parse_head(r, strlen(r), &h), 1);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.content_length, 12);
    assert_int_equal(h.chunked, 0);
    assert_string_equal(h.last_modified, "Sun, 22 Nov 2026 04:00:00 GMT");
    assert_string_equal(h.etag, "0");
    assert_string_equal(r + h.head_len, "hello world!");
    const char *c = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(lg_http_parse_head(c, strlen(c), &h), 1);
    assert_int_equal(h.status, 101);
    assert_int_equal(h.chunked, 1);
    assert_int_equal(h.content_length, -1);
    assert_int_equal(lg_http_parse_head("XTTP/1.1 200 OK\r\n\r\n", 19, &h), -1);
}

static void chunked_incremental(void **state)
{
    const char *in = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
    size_t len = strlen(in);
    /* byte by byte, carrying the unconsumed tail as a reader would */
    lg_chunked_t c = {0};
    uint8_t buf[128];
    size_t have = 0;
    char body[64] = {0};
    size_t blen = 0;
    for (size_t i = 0; i < len; i++) {
        buf[have++] = (uint8_t)in[i];
        size_t out;
        long used = lg_chunked_decode(&c, buf, have, &out);
        assert_true(used >= 0);
        memcpy(body + blen, buf, out);
        blen += out;
        memmove(buf, buf + used, have - (size_t)used);
        have -= (size_t)used;
    }
    assert_int_equal(c.state, 4);
    assert_int_equal(blen, 12);
    assert_memory_equal(body, "hello, world", 12);
    lg_chunked_t bad = {0};
    uint8_t junk[] = "zz\r\n";
    size_t out;
    assert_int_equal(lg_chunked_decode(&bad, junk, 4, &out), -1);
}

typedef struct {
    int n;
    char data[4][64];
    char id[4][16];
} events_t;

static void on_event(void *ud, const char *data, size_t len, const char *id)
{
    events_t *e = ud;
    assert_true(e->n < 4);
    memcpy(e->data[e->n], data, len);
    e->data[e->n][len] = '\0';
    snprintf(e->id[e->n], sizeof(e->id[0]), "%s", id);
    e->n++;
}

static void sse_events(void **state)
{
    const char *s = ": padding\n\nretry: 2000\n\nid: 1\ndata: 0{\"sid\":\"x\"}\n\nid: 2\r\ndata: a\r\ndata:b\r\n\r\n"
                    "data: 4{\"m\":1}\x1e"
                    "4{\"m\":2}\n\n";
    events_t e = {0};
    lg_sse_t p = {0};
    /* split at every position to prove the parser is incremental */
    size_t len = strlen(s);
    for (size_t i = 0; i < len; i += 3)
        assert_int_equal(lg_sse_feed(&p, s + i, len - i < 3 ? len - i : 3, on_event, &e), 0);
    assert_int_equal(e.n, 3);
    assert_string_equal(e.data[0], "0{\"sid\":\"x\"}");
    assert_string_equal(e.id[0], "1");
    assert_string_equal(e.data[1], "a\nb");
    assert_string_equal(e.id[1], "2");
    assert_string_equal(e.data[2], "4{\"m\":1}\x1e"
                                   "4{\"m\":2}");
    lg_sse_free(&p);
}

static void markers(void **state)
{
    char buf[128], json[256];
    lg_marker_t m = {7, 123456, 987654321012ull}, r;
    int n = lg_marker_write(buf, sizeof(buf), &m);
    assert_string_equal(buf, "~7:123456:987654321012~");
    assert_int_equal(n, (int)strlen(buf));
    snprintf(json, sizeof(json), "{\"message\":\"%sxxxx\",\"room\":\"r~1:2\",\"context\":\"user\"}", buf);
    assert_int_equal(lg_marker_find(json, strlen(json), &r), 1);
    assert_int_equal(r.src, 7);
    assert_int_equal(r.seq, 123456);
    assert_int_equal(r.ns, 987654321012ull);
    assert_int_equal(lg_marker_find("~1:2~ ~x:1:2~ ~1:2:", 19, &r), 0);
    /* a marker cut at the buffer end is not a marker */
    assert_int_equal(lg_marker_find(buf, strlen(buf) - 1, &r), 0);
    uint64_t id;
    const char *reply = "{\"randomNumber\":0.5,\"context\":\"response\",\"messageId\":42}";
    assert_int_equal(lg_find_message_id(reply, strlen(reply), &id), 1);
    assert_int_equal(id, 42);
    assert_int_equal(lg_find_message_id("{\"messageId\":\"abc\"}", 19, &id), 0);
    assert_int_equal(lg_find_message_id("{\"x\":1}", 7, &id), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hist_buckets_are_contiguous_and_narrow),
        cmocka_unit_test(hist_quantiles),
        cmocka_unit_test(ws_header_encodes_lengths_with_zero_mask),
        cmocka_unit_test(ws_parse_server_frames),
        cmocka_unit_test(http_head),
        cmocka_unit_test(chunked_incremental),
        cmocka_unit_test(sse_events),
        cmocka_unit_test(markers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
