/*
 * loadgen: a small epoll load generator for actiongate and its peers. This header holds the pieces that are pure
 * functions of bytes (histogram, WebSocket framing, HTTP response head, chunked bodies, SSE events, payload markers),
 * so they are unit-tested on their own (tools/loadgen/test/test_lg.c). The engine (net.c) and the command line
 * (main.c) own everything that touches sockets and processes.
 */
#ifndef LG_H
#define LG_H

#include <stddef.h>
#include <stdint.h>

/* ---- log-linear histogram of nanosecond values: 32 linear sub-buckets per power of two (≤ 3.2 % bucket width) ---- */
#define LG_HIST_SUB_BITS 5
#define LG_HIST_SUB (1u << LG_HIST_SUB_BITS)
#define LG_HIST_BUCKETS (LG_HIST_SUB + (64 - LG_HIST_SUB_BITS) * LG_HIST_SUB)

typedef struct {
    uint64_t count, sum, min, max;
    uint64_t b[LG_HIST_BUCKETS];
} lg_hist_t;

void lg_hist_init(lg_hist_t *h);
unsigned lg_hist_index(uint64_t v);
uint64_t lg_hist_bucket_low(unsigned idx);
uint64_t lg_hist_bucket_high(unsigned idx); /* inclusive */
void lg_hist_add(lg_hist_t *h, uint64_t v);
void lg_hist_merge(lg_hist_t *into, const lg_hist_t *from);
/* The smallest recorded bucket's upper bound such that at least q of the values are at or below it; clamped to
 * [min, max] so p100 is exact. 0 when empty. */
uint64_t lg_hist_quantile(const lg_hist_t *h, double q);

/* ---- WebSocket client frames (RFC 6455) ---- */
/* Writes a masked client frame header (mask key 0, so the payload goes out unchanged) into hdr (≥ 14 bytes). */
size_t lg_ws_header(uint8_t *hdr, int opcode, size_t len);

typedef struct {
    int fin, opcode;
    size_t hdr_len;
    uint64_t len;
    int masked;
    uint8_t mask[4];
} lg_ws_frame_t;
/* 1 with *f filled when buf holds a whole header, 0 when more bytes are needed, -1 on a malformed header. */
int lg_ws_parse(const uint8_t *buf, size_t n, lg_ws_frame_t *f);

/* ---- HTTP/1.1 response head ---- */
typedef struct {
    int status;
    size_t head_len;     /* through the blank line */
    long content_length; /* -1 when absent */
    int chunked;
    char last_modified[64], etag[96];
} lg_http_head_t;
/* 1 parsed, 0 need more, -1 malformed. */
int lg_http_parse_head(const char *buf, size_t n, lg_http_head_t *h);

/* ---- chunked transfer decoding, incremental ---- */
typedef struct {
    int state; /* 0 size line, 1 data, 2 CRLF after data, 3 trailer, 4 done */
    uint64_t left;
} lg_chunked_t;
/* Decodes in place: consumes up to n bytes of buf, moves the body bytes to the front of buf. Returns the number of
 * input bytes consumed (≤ n), sets *out_len to the body bytes now at buf[0..out_len). -1 on malformed input. */
long lg_chunked_decode(lg_chunked_t *c, uint8_t *buf, size_t n, size_t *out_len);

/* ---- Server-Sent Events, incremental: feed body bytes; on_event gets each event's data (lines joined by LF) ---- */
typedef void (*lg_sse_cb)(void *ud, const char *data, size_t len, const char *id);
typedef struct {
    char *line;
    size_t line_len, line_cap;
    char *data;
    size_t data_len, data_cap;
    char id[64];
    int have_data, skip_lf;
} lg_sse_t;
void lg_sse_free(lg_sse_t *s);
int lg_sse_feed(lg_sse_t *s, const char *buf, size_t n, lg_sse_cb cb, void *ud);

/* ---- payload markers: "~<src>:<seq>:<ns>~" carried in every message; found anywhere in a frame ---- */
typedef struct {
    uint32_t src, seq;
    uint64_t ns;
} lg_marker_t;
int lg_marker_write(char *buf, size_t cap, const lg_marker_t *m);
/* 1 when a marker was found in buf (the first one), else 0. */
int lg_marker_find(const char *buf, size_t n, lg_marker_t *m);
/* Finds `"messageId":<unsigned>` in a JSON text; 1 when found. */
int lg_find_message_id(const char *buf, size_t n, uint64_t *id);

#endif
