/*
 * The request check of a direct polling connection (transports/eio_polling_match.c) on arbitrary bytes: the bytes a
 * stranger sends on a kept connection the node reads itself. The input: a flags byte (the connection's request had an
 * Origin, its CORS lines hold Vary, the access log is on), a byte that picks where the bytes are cut when they trickle
 * in, then LF-separated fields: the path, the session's sid, the Origin; the rest is what arrives on the connection.
 *
 * Besides what the sanitizers see, it checks the check's promises:
 *   - a request fed in pieces (the previous scan's length passed back) is served directly exactly when it is so in one
 *     piece, with the same head length;
 *   - "wait" happens only below the head limit;
 *   - what is served is, by an independent reading of its head: "GET <path>?..." (after at most one empty line),
 *     HTTP/1.1, the sid in its query, and none of the header lines that must go to h2o (Transfer-Encoding, Upgrade,
 *     Expect, the cluster's forwarded header, a Content-Length other than one "0", an Origin other than the one
 *     expected, a Connection other than keep-alive).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cluster.h"
#include "eio.h"

/* The next LF-terminated field of [*p, end) as a NUL-terminated copy (the check reads want's strings with strlen). */
static char *field(const char **p, const char *end, size_t *len)
{
    const char *s = *p, *lf = memchr(s, '\n', (size_t)(end - s));
    const char *e = lf != NULL ? lf : end;
    *p = lf != NULL ? lf + 1 : end;
    *len = (size_t)(e - s);
    char *c = malloc(*len + 1);
    if (c == NULL)
        abort();
    memcpy(c, s, *len);
    c[*len] = '\0';
    return c;
}

static int name_is(const char *n, size_t nl, const char *lit)
{
    return nl == strlen(lit) && strncasecmp(n, lit, nl) == 0;
}

/* Reads a served head line by line on its own and aborts on anything the check promised to leave to h2o. */
static void check_served(const char *buf, const ag__eio_direct_head_t *h, const ag__eio_direct_want_t *w)
{
    if (h->len == 0 || h->len > AG__EIO_DIRECT_HEAD_MAX)
        abort();
    /* an empty line before a request is skipped, as HTTP/1.1 allows (RFC 9112 2.2) */
    const char *start = buf;
    while (start < buf + h->len && (*start == '\r' || *start == '\n'))
        start++;
    if ((size_t)(start - buf) > 2 || memcmp(start, "GET ", 4) != 0)
        abort();
    if (h->path != start + 4 || h->path_len < w->path_len + 1 || memcmp(h->path, w->path, w->path_len) != 0 ||
        h->path[w->path_len] != '?')
        abort();
    /* the query holds sid=<sid> as one of its pairs */
    const char *q = h->path + w->path_len + 1, *qend = h->path + h->path_len;
    size_t sl = strlen(w->sid);
    int sid = 0;
    for (const char *pair = q; pair <= qend;) {
        const char *amp = memchr(pair, '&', (size_t)(qend - pair));
        if (amp == NULL)
            amp = qend;
        if ((size_t)(amp - pair) == 4 + sl && memcmp(pair, "sid=", 4) == 0 && memcmp(pair + 4, w->sid, sl) == 0)
            sid = 1;
        pair = amp + 1;
    }
    if (!sid || memcmp(qend, " HTTP/1.1", 9) != 0)
        abort();
    /* the header lines, each up to its LF, a CR before it dropped */
    const char *line = memchr(start, '\n', (size_t)(buf + h->len - start));
    if (line == NULL)
        abort();
    line++;
    const char *end = buf + h->len;
    int lengths = 0, origins = 0;
    while (line < end) {
        const char *lf = memchr(line, '\n', (size_t)(end - line));
        if (lf == NULL)
            abort(); /* a served head ends with an empty line */
        size_t ll = (size_t)(lf - line);
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        if (ll == 0)
            break;
        if (line[0] == ' ' || line[0] == '\t')
            abort(); /* a folded line is never served */
        const char *colon = memchr(line, ':', ll);
        if (colon == NULL)
            abort();
        size_t nl = (size_t)(colon - line);
        const char *v = colon + 1, *vend = line + ll;
        while (v < vend && (*v == ' ' || *v == '\t'))
            v++;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        size_t vl = (size_t)(vend - v);
        if (name_is(line, nl, "transfer-encoding") || name_is(line, nl, "upgrade") || name_is(line, nl, "expect") ||
            name_is(line, nl, AG_CLUSTER_FORWARDED_HEADER))
            abort();
        if (name_is(line, nl, "content-length") && (lengths++ || vl != 1 || v[0] != '0'))
            abort();
        if (name_is(line, nl, "connection") && !name_is(v, vl, "keep-alive"))
            abort();
        if (name_is(line, nl, "origin") && (origins++ || !w->has_origin || vl != w->origin_len || memcmp(v, w->origin, vl) != 0))
            abort();
        if (w->log && (name_is(line, nl, "x-forwarded-for") || name_is(line, nl, "x-real-ip")))
            abort();
        line = lf + 1;
    }
    if (w->has_origin && origins != 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t flags = data[0], cut = data[1];
    const char *p = (const char *)data + 2, *end = (const char *)data + size;
    size_t path_len, sid_len, origin_len;
    char *path = field(&p, end, &path_len), *sid = field(&p, end, &sid_len), *origin = field(&p, end, &origin_len);
    size_t len = (size_t)(end - p);
    /* the request bytes in a buffer of their own, so that a read past them is the sanitizer's to see */
    char *buf = malloc(len > 0 ? len : 1);
    if (buf == NULL)
        abort();
    memcpy(buf, p, len);
    ag__eio_direct_want_t want = {.path = path,
                                  .path_len = path_len,
                                  .sid = sid_len > 0 ? sid : NULL,
                                  .origin = origin,
                                  .origin_len = origin_len,
                                  .has_origin = flags & 1,
                                  .vary = (flags >> 1) & 1,
                                  .log = (flags >> 2) & 1};

    ag__eio_direct_head_t whole;
    size_t prev = 0;
    int r = ag__eio_direct_match(buf, len, &prev, &want, &whole);
    if (r < -1 || r > 1 || (r == 0 && len >= AG__EIO_DIRECT_HEAD_MAX))
        abort();
    if (r == 1)
        check_served(buf, &whole, &want);

    /* the same bytes trickling in: pieces of 1 + cut % 61 bytes, the scan's length passed back each time */
    size_t step = 1 + cut % 61, have = 0;
    int ri = 0;
    ag__eio_direct_head_t piece;
    prev = 0;
    while (ri == 0 && have < len) {
        have = have + step < len ? have + step : len;
        ri = ag__eio_direct_match(buf, have, &prev, &want, &piece);
    }
    if ((ri == 1) != (r == 1) || (r == 1 && piece.len != whole.len))
        abort();

    free(buf);
    free(path);
    free(sid);
    free(origin);
    return 0;
}
