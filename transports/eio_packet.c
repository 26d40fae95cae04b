#include "eio_packet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

static const char *const error_messages[] = {
    "Transport unknown", "Session ID unknown", "Bad handshake method", "Bad request", "Forbidden", "Unsupported protocol version",
};

const char *ag_eio_error_message(int code)
{
    return code >= 0 && code <= 5 ? error_messages[code] : "Bad request";
}

size_t ag_eio_error_body(int code, char *out, size_t cap)
{
    int n = snprintf(out, cap, "{\"code\":%d,\"message\":\"%s\"}", code, ag_eio_error_message(code));
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

int ag_eio_buf_reserve(ag_eio_buf_t *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return AG_OK;
    size_t ncap = b->cap == 0 ? 256 : b->cap;
    while (ncap < b->len + extra)
        ncap *= 2;
    char *n = realloc(b->base, ncap);
    if (n == NULL)
        return AG_ENOMEM;
    b->base = n;
    b->cap = ncap;
    return AG_OK;
}

int ag_eio_buf_append(ag_eio_buf_t *b, const void *data, size_t len)
{
    if (ag_eio_buf_reserve(b, len) != AG_OK)
        return AG_ENOMEM;
    if (len != 0)
        memcpy(b->base + b->len, data, len);
    b->len += len;
    return AG_OK;
}

void ag_eio_buf_dispose(ag_eio_buf_t *b)
{
    free(b->base);
    b->base = NULL;
    b->len = b->cap = 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ag_eio_base64_encode(const uint8_t *in, size_t len, char *out)
{
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = b64[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    return (size_t)(o - out);
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

long ag_eio_base64_decode(const char *in, size_t len, uint8_t *out)
{
    while (len > 0 && in[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return -1;
    uint8_t *o = out;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (uint8_t)(acc >> bits);
        }
    }
    return (long)(o - out);
}

void ag_eio_sid_generate(char out[AG_EIO_SID_LEN + 1])
{
    uint8_t raw[16];
    char enc[24];
    ag_random_bytes(raw, sizeof(raw));
    ag_eio_base64_encode(raw, sizeof(raw), enc);
    for (int i = 0; i < AG_EIO_SID_LEN; i++)
        out[i] = enc[i] == '+' ? '-' : enc[i] == '/' ? '_' : enc[i];
    out[AG_EIO_SID_LEN] = '\0';
}

int ag_eio_packet_decode(const char *s, size_t len, char *scratch, ag_eio_packet_t *out)
{
    if (len == 0)
        return AG_EINVAL;
    if (s[0] == 'b') {
        long n = ag_eio_base64_decode(s + 1, len - 1, (uint8_t *)scratch);
        if (n < 0)
            return AG_EINVAL;
        *out = (ag_eio_packet_t){AG_EIO_MESSAGE, scratch, (size_t)n, 1};
        return AG_OK;
    }
    if (s[0] < '0' || s[0] > '6')
        return AG_EINVAL;
    *out = (ag_eio_packet_t){s[0] - '0', s + 1, len - 1, 0};
    return AG_OK;
}

int ag_eio_payload_next(const char *payload, size_t len, size_t *pos, const char **piece, size_t *piece_len)
{
    if (*pos == SIZE_MAX || len == 0)
        return 0;
    const char *start = payload + *pos;
    const char *sep = memchr(start, AG_EIO_SEPARATOR, len - *pos);
    size_t n = sep != NULL ? (size_t)(sep - start) : len - *pos;
    *piece = start;
    *piece_len = n;
    /* a trailing separator yields one last empty piece, which the decoder rejects */
    *pos = sep != NULL ? *pos + n + 1 : SIZE_MAX;
    return 1;
}

int ag_eio_payload_append(ag_eio_buf_t *b, int type, const char *data, size_t len, int binary)
{
    size_t need = 1 + 1 + (binary ? (len + 2) / 3 * 4 : len);
    if (ag_eio_buf_reserve(b, need) != AG_OK)
        return AG_ENOMEM;
    if (b->len != 0)
        b->base[b->len++] = AG_EIO_SEPARATOR;
    if (binary) {
        b->base[b->len++] = 'b';
        b->len += ag_eio_base64_encode((const uint8_t *)data, len, b->base + b->len);
    } else {
        b->base[b->len++] = (char)('0' + type);
        if (len != 0)
            memcpy(b->base + b->len, data, len);
        b->len += len;
    }
    return AG_OK;
}

static int json_string_append(ag_eio_buf_t *b, const char *s, size_t len)
{
    if (ag_eio_buf_reserve(b, len * 6 + 2) != AG_OK)
        return AG_ENOMEM;
    char *o = b->base + b->len;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            *o++ = '\\', *o++ = '"';
            break;
        case '\\':
            *o++ = '\\', *o++ = '\\';
            break;
        case '\n':
            *o++ = '\\', *o++ = 'n';
            break;
        case '\r':
            *o++ = '\\', *o++ = 'r';
            break;
        case '\t':
            *o++ = '\\', *o++ = 't';
            break;
        default:
            if (c < 0x20) {
                static const char hex[] = "0123456789abcdef";
                *o++ = '\\', *o++ = 'u', *o++ = '0', *o++ = '0', *o++ = hex[c >> 4], *o++ = hex[c & 15];
            } else if (c == 0xe2 && i + 2 < len && (unsigned char)s[i + 1] == 0x80 &&
                       ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) {
                /* U+2028 and U+2029 end a line in older JavaScript, where a JSONP answer is parsed */
                *o++ = '\\', *o++ = 'u', *o++ = '2', *o++ = '0', *o++ = '2', *o++ = s[i + 2] == (char)0xa8 ? '8' : '9';
                i += 2;
            } else {
                *o++ = (char)c;
            }
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->base);
    return AG_OK;
}

int ag_eio_sse_event_append(ag_eio_buf_t *b, uint64_t id, const char *payload, size_t len)
{
    /* "id: N\n", written by hand: one per event per recipient, where snprintf cost as much as the rest together */
    char idline[32];
    size_t i = sizeof(idline);
    idline[--i] = '\n';
    do
        idline[--i] = (char)('0' + id % 10);
    while ((id /= 10) != 0);
    memcpy(idline + i - 4, "id: ", 4);
    i -= 4;
    /* room for the common case (one line of data) at once */
    if (ag_eio_buf_reserve(b, sizeof(idline) - i + 6 + len + 2) != AG_OK ||
        ag_eio_buf_append(b, idline + i, sizeof(idline) - i) != AG_OK)
        return AG_ENOMEM;
    if (memchr(payload, '\r', len) != NULL) {
        /* EventSource parsers end lines at CR too, so a payload with CR travels as a JSON string */
        if (ag_eio_buf_append(b, "event: j\ndata: ", 15) != AG_OK || json_string_append(b, payload, len) != AG_OK ||
            ag_eio_buf_append(b, "\n\n", 2) != AG_OK)
            return AG_ENOMEM;
        return AG_OK;
    }
    for (size_t pos = 0;;) {
        const char *lf = memchr(payload + pos, '\n', len - pos);
        size_t piece = lf != NULL ? (size_t)(lf - (payload + pos)) : len - pos;
        if (ag_eio_buf_append(b, "data: ", 6) != AG_OK || ag_eio_buf_append(b, payload + pos, piece) != AG_OK ||
            ag_eio_buf_append(b, "\n", 1) != AG_OK)
            return AG_ENOMEM;
        if (lf == NULL)
            break;
        pos += piece + 1;
    }
    return ag_eio_buf_append(b, "\n", 1);
}

/* --- engine.io protocol 3 --- */

/* UTF-16 code units of the UTF-8 character whose first byte is c (a stray continuation byte counts as one). */
static size_t utf16_units(unsigned char c)
{
    return c >= 0xf0 ? 2 : 1;
}

static int is_continuation(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

static size_t utf16_length(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (!is_continuation((unsigned char)s[i]))
            n += utf16_units((unsigned char)s[i]);
    return n;
}

int ag_eio3_payload_append(ag_eio_buf_t *b, int type, const char *data, size_t len, int binary)
{
    size_t body = binary ? 2 + (len + 2) / 3 * 4 : 1 + len;
    char prefix[24];
    /* a binary packet is ASCII ("b4" and base64): its bytes are its UTF-16 units */
    int n = snprintf(prefix, sizeof(prefix), "%zu:", binary ? body : 1 + utf16_length(data, len));
    if (ag_eio_buf_reserve(b, (size_t)n + body) != AG_OK)
        return AG_ENOMEM;
    memcpy(b->base + b->len, prefix, (size_t)n);
    b->len += (size_t)n;
    if (binary) {
        b->base[b->len++] = 'b';
        b->base[b->len++] = (char)('0' + type);
        b->len += ag_eio_base64_encode((const uint8_t *)data, len, b->base + b->len);
    } else {
        b->base[b->len++] = (char)('0' + type);
        if (len != 0)
            memcpy(b->base + b->len, data, len);
        b->len += len;
    }
    return AG_OK;
}

int ag_eio3_payload_next(const char *payload, size_t len, size_t *pos, const char **piece, size_t *piece_len)
{
    size_t i = *pos;
    if (i >= len)
        return 0;
    size_t units = 0;
    int digits = 0;
    for (; i < len && payload[i] != ':'; i++, digits++) {
        /* ten digits are far beyond any body maxHttpBufferSize lets in */
        if (payload[i] < '0' || payload[i] > '9' || digits == 10)
            return AG_EINVAL;
        units = units * 10 + (size_t)(payload[i] - '0');
    }
    if (i >= len || digits == 0 || units == 0)
        return AG_EINVAL;
    size_t start = ++i, seen = 0;
    while (seen < units) {
        if (i >= len)
            return AG_EINVAL;
        seen += utf16_units((unsigned char)payload[i++]);
        while (i < len && is_continuation((unsigned char)payload[i]))
            i++;
    }
    if (seen != units) /* the length ends inside a surrogate pair */
        return AG_EINVAL;
    *piece = payload + start;
    *piece_len = i - start;
    *pos = i;
    return 1;
}

int ag_eio3_packet_decode(const char *s, size_t len, char *scratch, ag_eio_packet_t *out)
{
    if (len == 0)
        return AG_EINVAL;
    if (s[0] == 'b') {
        /* "b<type><base64>": only a message carries binary */
        if (len < 2 || s[1] != '0' + AG_EIO_MESSAGE)
            return AG_EINVAL;
        long n = ag_eio_base64_decode(s + 2, len - 2, (uint8_t *)scratch);
        if (n < 0)
            return AG_EINVAL;
        *out = (ag_eio_packet_t){AG_EIO_MESSAGE, scratch, (size_t)n, 1};
        return AG_OK;
    }
    return ag_eio_packet_decode(s, len, scratch, out);
}

/* The protocol 3 binary payload's length prefix: one byte per decimal digit (0-9), then 0xFF. */
#define EIO3_LENGTH_END 0xFF

int ag_eio3_binary_payload_append(ag_eio_buf_t *b, int type, const char *data, size_t len, int binary)
{
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%zu", 1 + len);
    if (ag_eio_buf_reserve(b, (size_t)n + 3 + len) != AG_OK)
        return AG_ENOMEM;
    b->base[b->len++] = binary ? 1 : 0;
    for (int i = 0; i < n; i++)
        b->base[b->len++] = (char)(digits[i] - '0');
    b->base[b->len++] = (char)EIO3_LENGTH_END;
    /* a binary packet's type is the byte itself, a text packet's its digit */
    b->base[b->len++] = binary ? (char)type : (char)('0' + type);
    if (len != 0)
        memcpy(b->base + b->len, data, len);
    b->len += len;
    return AG_OK;
}

int ag_eio3_binary_payload_next(const char *payload, size_t len, size_t *pos, const char **piece, size_t *piece_len, int *binary)
{
    size_t i = *pos;
    if (i >= len)
        return 0;
    unsigned char kind = (unsigned char)payload[i++];
    if (kind > 1)
        return AG_EINVAL;
    size_t n = 0;
    int digits = 0;
    for (; i < len && (unsigned char)payload[i] != EIO3_LENGTH_END; i++, digits++) {
        /* ten digits are far beyond any body maxHttpBufferSize lets in */
        if ((unsigned char)payload[i] > 9 || digits == 10)
            return AG_EINVAL;
        n = n * 10 + (unsigned char)payload[i];
    }
    if (i >= len || digits == 0 || n == 0 || n > len - i - 1)
        return AG_EINVAL;
    i++;
    *piece = payload + i;
    *piece_len = n;
    *binary = kind;
    *pos = i + n;
    return 1;
}

int ag_eio3_binary_packet_decode(const char *s, size_t len, int binary, char *scratch, ag_eio_packet_t *out)
{
    if (!binary)
        return ag_eio3_packet_decode(s, len, scratch, out);
    /* only a message carries binary */
    if (len == 0 || s[0] != AG_EIO_MESSAGE)
        return AG_EINVAL;
    *out = (ag_eio_packet_t){AG_EIO_MESSAGE, s + 1, len - 1, 1};
    return AG_OK;
}

int ag_eio_jsonp_append(ag_eio_buf_t *b, const char *index, const char *payload, size_t len)
{
    if (ag_eio_buf_append(b, "___eio[", 7) != AG_OK)
        return AG_ENOMEM;
    /* only the digits of the index, as engine.io: the rest of it would be script */
    for (const char *p = index; *p != '\0'; p++)
        if (*p >= '0' && *p <= '9' && ag_eio_buf_append(b, p, 1) != AG_OK)
            return AG_ENOMEM;
    if (ag_eio_buf_append(b, "](", 2) != AG_OK || json_string_append(b, payload, len) != AG_OK ||
        ag_eio_buf_append(b, ");", 2) != AG_OK)
        return AG_ENOMEM;
    return AG_OK;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

long ag_eio_jsonp_form_decode(const char *body, size_t len, char *out)
{
    /* the value of the first "d" field, percent-decoded */
    size_t i = 0, o = 0;
    for (;;) {
        if (i + 1 < len && body[i] == 'd' && body[i + 1] == '=')
            break;
        const char *amp = i < len ? memchr(body + i, '&', len - i) : NULL;
        if (amp == NULL)
            return -1;
        i = (size_t)(amp - body) + 1;
    }
    for (i += 2; i < len && body[i] != '&'; i++) {
        if (body[i] == '+') {
            out[o++] = ' ';
        } else if (body[i] == '%') {
            int hi = i + 2 < len ? hexval(body[i + 1]) : -1, lo = i + 2 < len ? hexval(body[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = body[i];
        }
    }
    /* The client writes each newline as the two characters \n and a \n that was in the data as \\n (a form would
     * turn a real newline into CRLF); undo both in one pass. */
    size_t w = 0;
    for (size_t r = 0; r < o; r++) {
        if (out[r] == '\\' && r + 2 < o && out[r + 1] == '\\' && out[r + 2] == 'n') {
            out[w++] = '\\', out[w++] = 'n';
            r += 2;
        } else if (out[r] == '\\' && r + 1 < o && out[r + 1] == 'n') {
            out[w++] = '\n';
            r += 1;
        } else {
            out[w++] = out[r];
        }
    }
    return (long)w;
}
