/*
 * The engine.io codec (transports/eio_packet.c) on arbitrary bytes, taken as a polling payload of protocol 4, of
 * protocol 3 (length-prefixed) and of protocol 3's binary encoding (octet-stream bodies), a JSONP form body and a JSONP
 * answer's payload. Besides what the sanitizers see, it checks the codec's own promises: re-encoding the decoded
 * packets and decoding again gives the same packets (all three encodings), and a binary payload that decodes whole
 * re-encodes to the same bytes; base64 round-trips; an SSE event parsed the way EventSource parses it gives its payload back; a
 * JSONP answer has no JavaScript line terminator and its string literal is the payload.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "eio_packet.h"

#define MAX_PACKETS 256

typedef struct {
    int type, binary;
    char *data;
    size_t len;
} copy_t;

static size_t decode_all(const char *payload, size_t len, copy_t *out)
{
    char *scratch = malloc(len + 1);
    if (scratch == NULL)
        abort();
    size_t n = 0, pos = 0, piece_len;
    const char *piece;
    while (n < MAX_PACKETS && ag_eio_payload_next(payload, len, &pos, &piece, &piece_len)) {
        ag_eio_packet_t p;
        if (ag_eio_packet_decode(piece, piece_len, scratch, &p) != 0)
            continue;
        if (p.type < AG_EIO_OPEN || p.type > AG_EIO_NOOP || p.len > piece_len)
            abort();
        out[n].type = p.type;
        out[n].binary = p.binary;
        out[n].len = p.len;
        out[n].data = malloc(p.len + 1);
        if (out[n].data == NULL)
            abort();
        memcpy(out[n].data, p.data, p.len);
        n++;
    }
    free(scratch);
    return n;
}

/* Protocol 3: packets up to the first malformed one (where a session would close). */
static size_t decode_all3(const char *payload, size_t len, copy_t *out)
{
    char *scratch = malloc(len + 1);
    if (scratch == NULL)
        abort();
    size_t n = 0, pos = 0, piece_len;
    const char *piece;
    int r;
    while (n < MAX_PACKETS && (r = ag_eio3_payload_next(payload, len, &pos, &piece, &piece_len)) == 1) {
        if (piece < payload || piece + piece_len > payload + len || pos > len)
            abort();
        ag_eio_packet_t p;
        if (ag_eio3_packet_decode(piece, piece_len, scratch, &p) != 0)
            break;
        if (p.type < AG_EIO_OPEN || p.type > AG_EIO_NOOP || p.len > piece_len)
            abort();
        out[n].type = p.type;
        out[n].binary = p.binary;
        out[n].len = p.len;
        out[n].data = malloc(p.len + 1);
        if (out[n].data == NULL)
            abort();
        memcpy(out[n].data, p.data, p.len);
        n++;
    }
    free(scratch);
    return n;
}

static void free_all(copy_t *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(c[i].data);
}

static void check_payload_roundtrip(const char *data, size_t size)
{
    static copy_t first[MAX_PACKETS], second[MAX_PACKETS];
    size_t n = decode_all(data, size, first);
    ag_eio_buf_t b = {0};
    for (size_t i = 0; i < n; i++)
        if (ag_eio_payload_append(&b, first[i].type, first[i].data, first[i].len, first[i].binary) != 0)
            abort();
    size_t m = decode_all(b.base, b.len, second);
    if (m != n)
        abort();
    for (size_t i = 0; i < n; i++)
        if (first[i].type != second[i].type || first[i].binary != second[i].binary || first[i].len != second[i].len ||
            memcmp(first[i].data, second[i].data, first[i].len) != 0)
            abort();
    free_all(first, n);
    free_all(second, m);
    ag_eio_buf_dispose(&b);
}

static void check_payload3_roundtrip(const char *data, size_t size)
{
    static copy_t first[MAX_PACKETS], second[MAX_PACKETS];
    size_t n = decode_all3(data, size, first);
    ag_eio_buf_t b = {0};
    for (size_t i = 0; i < n; i++)
        if (ag_eio3_payload_append(&b, first[i].type, first[i].data, first[i].len, first[i].binary) != 0)
            abort();
    size_t m = decode_all3(b.base, b.len, second);
    if (m != n)
        abort();
    for (size_t i = 0; i < n; i++)
        if (first[i].type != second[i].type || first[i].binary != second[i].binary || first[i].len != second[i].len ||
            memcmp(first[i].data, second[i].data, first[i].len) != 0)
            abort();
    /* what was encoded decodes to its end, nothing left over */
    size_t pos = 0, piece_len;
    const char *piece;
    while (ag_eio3_payload_next(b.base, b.len, &pos, &piece, &piece_len) == 1)
        ;
    if (pos != b.len)
        abort();
    free_all(first, n);
    free_all(second, m);
    ag_eio_buf_dispose(&b);
}

/* Protocol 3's binary payload: packets up to the first malformed one; *canonical says whether the payload decoded to
 * its end with no text piece in protocol 3's "b4<base64>" form (which re-encodes as a binary piece). */
static size_t decode_all3_octets(const char *payload, size_t len, copy_t *out, int *canonical)
{
    char *scratch = malloc(len + 1);
    if (scratch == NULL)
        abort();
    size_t n = 0, pos = 0, piece_len;
    const char *piece;
    int r = 0, bin, b64 = 0;
    while (n < MAX_PACKETS && (r = ag_eio3_binary_payload_next(payload, len, &pos, &piece, &piece_len, &bin)) == 1) {
        if (piece < payload || piece_len == 0 || piece + piece_len > payload + len || pos > len || (bin != 0 && bin != 1))
            abort();
        ag_eio_packet_t p;
        if (ag_eio3_binary_packet_decode(piece, piece_len, bin, scratch, &p) != 0)
            break;
        if (!bin && piece[0] == 'b')
            b64 = 1;
        if (p.type < AG_EIO_OPEN || p.type > AG_EIO_NOOP || p.len > piece_len)
            abort();
        out[n].type = p.type;
        out[n].binary = p.binary;
        out[n].len = p.len;
        out[n].data = malloc(p.len + 1);
        if (out[n].data == NULL)
            abort();
        memcpy(out[n].data, p.data, p.len);
        n++;
    }
    /* at the packet bound, a payload that ends with its last packet is whole too */
    *canonical = (r == 0 || (n == MAX_PACKETS && r == 1 && pos == len)) && !b64;
    free(scratch);
    return n;
}

static void check_payload3_octets_roundtrip(const char *data, size_t size)
{
    static copy_t first[MAX_PACKETS], second[MAX_PACKETS];
    int canonical, canonical2;
    size_t n = decode_all3_octets(data, size, first, &canonical);
    ag_eio_buf_t b = {0};
    for (size_t i = 0; i < n; i++)
        if (ag_eio3_binary_payload_append(&b, first[i].type, first[i].data, first[i].len, first[i].binary) != 0)
            abort();
    size_t m = decode_all3_octets(b.base, b.len, second, &canonical2);
    if (m != n || !canonical2)
        abort();
    for (size_t i = 0; i < n; i++)
        if (first[i].type != second[i].type || first[i].binary != second[i].binary || first[i].len != second[i].len ||
            memcmp(first[i].data, second[i].data, first[i].len) != 0)
            abort();
    /* packets keep their bytes: a canonical payload without leading zeros in its lengths (the same length then) is its
     * own encoding */
    if (canonical && size != 0 && b.len == size && memcmp(b.base, data, size) != 0)
        abort();
    free_all(first, n);
    free_all(second, m);
    ag_eio_buf_dispose(&b);
}

/* JSONP: a form body decodes within its bound; an answer is a script whose string literal is the payload. */
static void check_jsonp(const char *data, size_t size)
{
    char *out = malloc(size + 1);
    if (out == NULL)
        abort();
    long n = ag_eio_jsonp_form_decode(data, size, out);
    if (n > (long)size)
        abort();
    free(out);
    ag_eio_buf_t b = {0};
    if (ag_eio_jsonp_append(&b, "12x", data, size) != 0)
        abort();
    static const char head[] = "___eio[12](\"";
    if (b.len < sizeof(head) - 1 + 3 || memcmp(b.base, head, sizeof(head) - 1) != 0 || memcmp(b.base + b.len - 3, "\");", 3) != 0)
        abort();
    for (size_t i = 0; i < b.len; i++)
        if ((unsigned char)b.base[i] < 0x20 ||
            (i + 2 < b.len && (unsigned char)b.base[i] == 0xe2 && (unsigned char)b.base[i + 1] == 0x80 &&
             ((unsigned char)b.base[i + 2] & 0xfe) == 0xa8))
            abort(); /* no line terminator of JavaScript inside the script */
    json_error_t err;
    json_t *s = json_loadb(b.base + sizeof(head) - 2, b.len - (sizeof(head) - 2) - 2, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (s != NULL && (!json_is_string(s) || json_string_length(s) != size || memcmp(json_string_value(s), data, size) != 0))
        abort();
    json_decref(s);
    ag_eio_buf_dispose(&b);
}

static void check_base64(const uint8_t *data, size_t size)
{
    char *enc = malloc((size + 2) / 3 * 4 + 1);
    uint8_t *dec = malloc(size + 3);
    if (enc == NULL || dec == NULL)
        abort();
    size_t elen = ag_eio_base64_encode(data, size, enc);
    if (elen != (size + 2) / 3 * 4)
        abort();
    long dlen = ag_eio_base64_decode(enc, elen, dec);
    if (dlen != (long)size || memcmp(dec, data, size) != 0)
        abort();
    /* arbitrary text: decodes within the documented bound or fails */
    uint8_t *any = malloc(size * 3 / 4 + 3);
    if (any == NULL)
        abort();
    long alen = ag_eio_base64_decode((const char *)data, size, any);
    if (alen > (long)(size * 3 / 4 + 3))
        abort();
    free(any);
    free(enc);
    free(dec);
}

/* EventSource: lines end at LF (CR never appears in the data lines: such payloads travel as a JSON string), "data: x"
 * adds x and a LF to the buffer, a blank line dispatches with the last LF removed. */
static void check_sse(const char *data, size_t size)
{
    ag_eio_buf_t b = {0};
    if (ag_eio_sse_event_append(&b, 42, data, size) != 0)
        abort();
    static const char id[] = "id: 42\n";
    if (b.len < sizeof(id) - 1 || memcmp(b.base, id, sizeof(id) - 1) != 0 || b.len < 2 || b.base[b.len - 1] != '\n' ||
        b.base[b.len - 2] != '\n')
        abort();
    const char *p = b.base + sizeof(id) - 1, *end = b.base + b.len - 1; /* end: the blank line's LF */
    int json_event = 0;
    ag_eio_buf_t got = {0};
    while (p < end) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        if (lf == NULL)
            abort();
        size_t n = (size_t)(lf - p);
        if (n == 0 || memchr(p, '\r', n) != NULL)
            abort(); /* no blank line inside an event, no CR in any line */
        if (n == 8 && memcmp(p, "event: j", 8) == 0) {
            json_event = 1;
        } else if (n >= 6 && memcmp(p, "data: ", 6) == 0) {
            if (ag_eio_buf_append(&got, p + 6, n - 6) != 0 || ag_eio_buf_append(&got, "\n", 1) != 0)
                abort();
        } else {
            abort();
        }
        p = lf + 1;
    }
    if (got.len == 0)
        abort();
    got.len--; /* the last LF */
    if (json_event) {
        json_error_t err;
        json_t *s = json_loadb(got.base, got.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        /* the JSON form keeps bytes as they are: text that is not UTF-8 is not JSON, nothing to compare */
        if (s != NULL && (!json_is_string(s) || json_string_length(s) != size || memcmp(json_string_value(s), data, size) != 0))
            abort();
        json_decref(s);
    } else if (got.len != size || memcmp(got.base, data, size) != 0) {
        abort();
    }
    ag_eio_buf_dispose(&got);
    ag_eio_buf_dispose(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_payload_roundtrip((const char *)data, size);
    check_payload3_roundtrip((const char *)data, size);
    check_payload3_octets_roundtrip((const char *)data, size);
    check_jsonp((const char *)data, size);
    check_base64(data, size);
    check_sse((const char *)data, size);
    return 0;
}
