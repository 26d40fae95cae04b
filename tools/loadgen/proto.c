/*
 * The byte-level pieces of the load generator: histogram, WebSocket client framing, HTTP response heads, chunked
 * bodies, SSE events and payload markers. No I/O here.
 */
#include "lg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void lg_hist_init(lg_hist_t *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned lg_hist_index(uint64_t v)
{
    if (v < LG_HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned sub = (unsigned)(v >> (e - LG_HIST_SUB_BITS)) - LG_HIST_SUB;
    return LG_HIST_SUB + (e - LG_HIST_SUB_BITS) * LG_HIST_SUB + sub;
}

uint64_t lg_hist_bucket_low(unsigned idx)
{
    if (idx < LG_HIST_SUB)
        return idx;
    unsigned e = (idx - LG_HIST_SUB) / LG_HIST_SUB + LG_HIST_SUB_BITS;
    uint64_t sub = (idx - LG_HIST_SUB) % LG_HIST_SUB;
    return (LG_HIST_SUB + sub) << (e - LG_HIST_SUB_BITS);
}

uint64_t lg_hist_bucket_high(unsigned idx)
{
    if (idx + 1 >= LG_HIST_BUCKETS)
        return UINT64_MAX;
    return lg_hist_bucket_low(idx + 1) - 1;
}

void lg_hist_add(lg_hist_t *h, uint64_t v)
{
    h->b[lg_hist_index(v)]++;
    h->count++;
    h->sum += v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void lg_hist_merge(lg_hist_t *into, const lg_hist_t *from)
{
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
        into->b[i] += from->b[i];
    into->count += from->count;
    into->sum += from->sum;
    if (from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t lg_hist_quantile(const lg_hist_t *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t acc = 0;
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
        acc += h->b[i];
        if (acc >= rank) {
            uint64_t v = lg_hist_bucket_high(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

size_t lg_ws_header(uint8_t *hdr, int opcode, size_t len)
{
    size_t n = 0;
    hdr[n++] = (uint8_t)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        hdr[n++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xffff) {
        hdr[n++] = 0x80 | 126;
        hdr[n++] = (uint8_t)(len >> 8);
        hdr[n++] = (uint8_t)len;
    } else {
        hdr[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    /* a zero mask key: XOR with 0 leaves the payload as it is, so it needs no copy */
    memset(hdr + n, 0, 4);
    return n + 4;
}

int lg_ws_parse(const uint8_t *buf, size_t n, lg_ws_frame_t *f)
{
    if (n < 2)
        return 0;
    f->fin = buf[0] >> 7;
    if (buf[0] & 0x70)
        return -1; /* no extension was negotiated, so RSV bits must be 0 */
    f->opcode = buf[0] & 0x0f;
    f->masked = buf[1] >> 7;
    uint64_t len = buf[1] & 0x7f;
    size_t h = 2;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = ((uint64_t)buf[2] << 8) | buf[3];
        h = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | buf[2 + i];
        if (len >> 63)
            return -1;
        h = 10;
    }
    if (f->masked) {
        if (n < h + 4)
            return 0;
        memcpy(f->mask, buf + h, 4);
        h += 4;
    }
    f->hdr_len = h;
    f->len = len;
    return 1;
}

static void header_value(const char *v, size_t vlen, char *out, size_t cap)
{
    if (vlen >= cap)
        vlen = cap - 1;
    memcpy(out, v, vlen);
    out[vlen] = '\0';
}

int lg_http_parse_head(const char *buf, size_t n, lg_http_head_t *h)
{
    const char *end = NULL;
    for (size_t i = 3; i < n; i++) {
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            end = buf + i + 1;
            break;
        }
    }
    if (end == NULL)
        return n > 65536 ? -1 : 0;
    memset(h, 0, sizeof(*h));
    h->content_length = -1;
    h->head_len = (size_t)(end - buf);
    if (h->head_len < 12 || memcmp(buf, "HTTP/1.", 7) != 0)
        return -1;
    h->status = atoi(buf + 9);
    if (h->status < 100 || h->status > 599)
        return -1;
    const char *p = memchr(buf, '\n', h->head_len) + 1;
    while (p < end - 2) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon != NULL) {
            size_t klen = (size_t)(colon - p);
            const char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t vlen = (size_t)(eol - v);
            if (klen == 14 && strncasecmp(p, "content-length", 14) == 0)
                h->content_length = atol(v);
            else if (klen == 17 && strncasecmp(p, "transfer-encoding", 17) == 0)
                h->chunked = vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0;
            else if (klen == 13 && strncasecmp(p, "last-modified", 13) == 0)
                header_value(v, vlen, h->last_modified, sizeof(h->last_modified));
            else if (klen == 4 && strncasecmp(p, "etag", 4) == 0)
                header_value(v, vlen, h->etag, sizeof(h->etag));
        }
        p = eol + 2;
    }
    return 1;
}

long lg_chunked_decode(lg_chunked_t *c, uint8_t *buf, size_t n, size_t *out_len)
{
    size_t in = 0, out = 0;
    while (in < n && c->state != 4) {
        switch (c->state) {
        case 0: { /* size line: hex digits, optional extensions, CRLF */
            uint8_t *lf = memchr(buf + in, '\n', n - in);
            if (lf == NULL) {
                if (n - in > 1024)
                    return -1;
                goto done;
            }
            char *e;
            unsigned long long sz = strtoull((const char *)buf + in, &e, 16);
            if ((uint8_t *)e == buf + in)
                return -1;
            in = (size_t)(lf - buf) + 1;
            c->left = sz;
            c->state = sz == 0 ? 3 : 1;
            break;
        }
        case 1: {
            size_t take = n - in < c->left ? n - in : (size_t)c->left;
            memmove(buf + out, buf + in, take);
            out += take;
            in += take;
            c->left -= take;
            if (c->left == 0)
                c->state = 2;
            break;
        }
        case 2: { /* CRLF after the data */
            uint8_t *lf = memchr(buf + in, '\n', n - in);
            if (lf == NULL)
                goto done;
            in = (size_t)(lf - buf) + 1;
            c->state = 0;
            break;
        }
        case 3: { /* trailers up to an empty line */
            uint8_t *lf = memchr(buf + in, '\n', n - in);
            if (lf == NULL)
                goto done;
            size_t linelen = (size_t)(lf - (buf + in));
            in = (size_t)(lf - buf) + 1;
            if (linelen == 0 || (linelen == 1 && lf[-1] == '\r'))
                c->state = 4;
            break;
        }
        }
    }
done:
    *out_len = out;
    return (long)in;
}

static int grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    char *q = realloc(*p, c);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

void lg_sse_free(lg_sse_t *s)
{
    free(s->line);
    free(s->data);
    memset(s, 0, sizeof(*s));
}

static int sse_line(lg_sse_t *s, lg_sse_cb cb, void *ud)
{
    const char *l = s->line;
    size_t n = s->line_len;
    if (n == 0) {
        if (s->have_data)
            cb(ud, s->data, s->data_len, s->id);
        s->data_len = 0;
        s->have_data = 0;
        return 0;
    }
    if (l[0] == ':')
        return 0;
    const char *colon = memchr(l, ':', n);
    size_t flen = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    if (v < l + n && *v == ' ')
        v++;
    size_t vlen = (size_t)(l + n - v);
    if (flen == 4 && memcmp(l, "data", 4) == 0) {
        size_t need = s->data_len + vlen + 2;
        if (grow(&s->data, &s->data_cap, need) != 0)
            return -1;
        if (s->have_data)
            s->data[s->data_len++] = '\n';
        memcpy(s->data + s->data_len, v, vlen);
        s->data_len += vlen;
        s->data[s->data_len] = '\0';
        s->have_data = 1;
    } else if (flen == 2 && memcmp(l, "id", 2) == 0) {
        header_value(v, vlen, s->id, sizeof(s->id));
    }
    return 0;
}

int lg_sse_feed(lg_sse_t *s, const char *buf, size_t n, lg_sse_cb cb, void *ud)
{
    for (size_t i = 0; i < n; i++) {
        char ch = buf[i];
        if (s->skip_lf) {
            s->skip_lf = 0;
            if (ch == '\n')
                continue;
        }
        if (ch == '\r' || ch == '\n') {
            s->skip_lf = ch == '\r';
            if (sse_line(s, cb, ud) != 0)
                return -1;
            s->line_len = 0;
            continue;
        }
        if (grow(&s->line, &s->line_cap, s->line_len + 1) != 0)
            return -1;
        s->line[s->line_len++] = ch;
    }
    return 0;
}

int lg_marker_write(char *buf, size_t cap, const lg_marker_t *m)
{
    return snprintf(buf, cap, "~%u:%u:%llu~", m->src, m->seq, (unsigned long long)m->ns);
}

static int parse_u64(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        v = v * 10 + (uint64_t)(*s - '0');
        s++;
    }
    if (s == *p)
        return -1;
    *p = s;
    *out = v;
    return 0;
}

int lg_marker_find(const char *buf, size_t n, lg_marker_t *m)
{
    const char *end = buf + n, *p = buf;
    while ((p = memchr(p, '~', (size_t)(end - p))) != NULL) {
        const char *s = p + 1;
        uint64_t a, b, c;
        if (parse_u64(&s, end, &a) == 0 && s < end && *s == ':' && (s++, parse_u64(&s, end, &b) == 0) && s < end && *s == ':' &&
            (s++, parse_u64(&s, end, &c) == 0) && s < end && *s == '~') {
            m->src = (uint32_t)a;
            m->seq = (uint32_t)b;
            m->ns = c;
            return 1;
        }
        p++;
    }
    return 0;
}

int lg_find_message_id(const char *buf, size_t n, uint64_t *id)
{
    static const char key[] = "\"messageId\":";
    const size_t klen = sizeof(key) - 1;
    const char *end = buf + n;
    for (const char *p = buf; (size_t)(end - p) > klen; p++) {
        p = memchr(p, '"', (size_t)(end - p));
        if (p == NULL || (size_t)(end - p) <= klen)
            return 0;
        if (memcmp(p, key, klen) == 0) {
            const char *s = p + klen;
            return parse_u64(&s, end, id) == 0;
        }
    }
    return 0;
}
