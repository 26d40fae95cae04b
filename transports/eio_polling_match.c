/*
 * The request check of a direct polling connection (eio_polling_direct.c), on bytes alone: is the head at the start of
 * a connection's input the exact happy case the node serves itself, or anything else, which goes back to h2o with its
 * bytes untouched? No session, socket or allocation here, so that spec/fuzz/fuzz_poll_direct.c can run it on anything.
 *
 * The head is parsed by h2o's own picohttpparser; what follows only compares bytes whose lengths are checked first.
 */
#include "eio.h"

#include <string.h>
#include <strings.h>
#include "cluster.h"

/* picohttpparser's request parser, built into libh2o-evloop (and exported by it) but without an installed header:
 * the prototype and struct are picohttpparser's own, declared here once. */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path, size_t *path_len,
                      int *minor_version, struct phr_header *headers, size_t *num_headers, size_t last_len);

#define HEADERS_MAX 32 /* more header lines than this: h2o's */

int ag__eio_direct_ci_is(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && strncasecmp(s, lit, n) == 0;
}

int ag__eio_direct_has_msie(const char *ua, size_t len)
{
    for (size_t i = 0; i + 7 <= len; i++)
        if (memcmp(ua + i, "; MSIE ", 7) == 0)
            return 1;
    return 0;
}

/* The query of a GET served here: transport=polling and the session's sid, EIO present, no j; each at most once and
 * with nothing encoded in what is compared. 0: it is; -1: h2o's. */
static int query_ok(const char *want_sid, const char *q, const char *end)
{
    int transport = 0, sid = 0, eio = 0;
    size_t sidlen = strlen(want_sid);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        if (amp == NULL)
            amp = end;
        const char *eq = memchr(q, '=', (size_t)(amp - q));
        const char *kend = eq != NULL ? eq : amp;
        size_t klen = (size_t)(kend - q);
        if (memchr(q, '%', klen) != NULL || memchr(q, '+', klen) != NULL)
            return -1;
        const char *v = eq != NULL ? eq + 1 : amp;
        size_t vlen = (size_t)(amp - v);
        if (klen == 9 && memcmp(q, "transport", 9) == 0) {
            if (transport++ || eq == NULL || vlen != 7 || memcmp(v, "polling", 7) != 0)
                return -1;
        } else if (klen == 3 && memcmp(q, "sid", 3) == 0) {
            if (sid++ || eq == NULL || vlen != sidlen || memcmp(v, want_sid, sidlen) != 0)
                return -1;
        } else if (klen == 3 && memcmp(q, "EIO", 3) == 0) {
            if (eio++)
                return -1;
        } else if (klen == 1 && q[0] == 'j') {
            return -1;
        }
        q = amp + 1;
    }
    return transport && sid && eio ? 0 : -1;
}

int ag__eio_direct_match(const char *buf, size_t len, size_t *prevlen, const ag__eio_direct_want_t *want,
                         ag__eio_direct_head_t *head)
{
    size_t avail = len < AG__EIO_DIRECT_HEAD_MAX ? len : AG__EIO_DIRECT_HEAD_MAX;
    const char *method, *path;
    size_t method_len, path_len, nh = HEADERS_MAX;
    int minor;
    struct phr_header hs[HEADERS_MAX];
    int r = phr_parse_request(buf, avail, &method, &method_len, &path, &path_len, &minor, hs, &nh, *prevlen);
    if (r == -2) {
        *prevlen = avail; /* a head trickling in is not scanned again from its start */
        return avail < AG__EIO_DIRECT_HEAD_MAX ? 0 : -1;
    }
    *prevlen = 0;
    if (r < 0 || minor != 1 || method_len != 3 || memcmp(method, "GET", 3) != 0)
        return -1;
    const char *q = memchr(path, '?', path_len);
    if (q == NULL || (size_t)(q - path) != want->path_len || memcmp(path, want->path, want->path_len) != 0)
        return -1;
    if (want->sid == NULL || query_ok(want->sid, q + 1, path + path_len) != 0)
        return -1;
    int origin = 0, gzip = 0, length = 0;
    const char *ua = NULL;
    size_t ua_len = 0;
    for (size_t i = 0; i < nh; i++) {
        const char *n = hs[i].name, *v = hs[i].value;
        size_t nl = hs[i].name_len, vl = hs[i].value_len;
        if (n == NULL)
            return -1; /* a folded line */
        switch (nl) {
        case 6:
            if (ag__eio_direct_ci_is(n, nl, "origin")) {
                if (origin++ || !want->has_origin || vl != want->origin_len || memcmp(v, want->origin, vl) != 0)
                    return -1;
            } else if (ag__eio_direct_ci_is(n, nl, "expect")) {
                return -1;
            }
            break;
        case 7:
            if (ag__eio_direct_ci_is(n, nl, "upgrade"))
                return -1;
            break;
        case 10:
            if (ag__eio_direct_ci_is(n, nl, "connection") && !ag__eio_direct_ci_is(v, vl, "keep-alive"))
                return -1;
            if (ag__eio_direct_ci_is(n, nl, "user-agent")) {
                if (want->vary && ag__eio_direct_has_msie(v, vl))
                    return -1;
                ua = v;
                ua_len = vl;
            }
            break;
        case 14:
            /* two of them are ambiguous however alike: h2o's guard answers that (server/http.c) */
            if (ag__eio_direct_ci_is(n, nl, "content-length") && (length++ || !(vl == 1 && v[0] == '0')))
                return -1;
            break;
        case 15:
            if (ag__eio_direct_ci_is(n, nl, "accept-encoding"))
                gzip |= ag__eio_accepts_gzip(v, vl);
            else if (want->log && ag__eio_direct_ci_is(n, nl, "x-forwarded-for"))
                return -1; /* the access line would name another address */
            break;
        case 17:
            if (ag__eio_direct_ci_is(n, nl, "transfer-encoding"))
                return -1;
            break;
        default:
            if (nl == sizeof(AG_CLUSTER_FORWARDED_HEADER) - 1 && ag__eio_direct_ci_is(n, nl, AG_CLUSTER_FORWARDED_HEADER))
                return -1;
            if (want->log && (ag__eio_direct_ci_is(n, nl, "x-forwarded-port") || ag__eio_direct_ci_is(n, nl, "x-real-ip")))
                return -1;
            break;
        }
    }
    if (origin == 0 && want->has_origin)
        return -1;
    head->len = (size_t)r;
    head->path = path;
    head->path_len = path_len;
    head->ua = ua;
    head->ua_len = ua_len;
    head->gzip = gzip;
    return 1;
}
