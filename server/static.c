#include "static.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "files.h"
#include "http.h"

/* bytes read and handed to h2o per send: one read per proceed keeps the loop responsive for big files */
#define CHUNK (64 * 1024)

typedef struct st_static_handler_t {
    h2o_handler_t super;
    const char *mime; /* single file: its type; directory: NULL (h2o's MIME map) */
    int is_dir;
    char path[]; /* the directory, or the single file */
} static_handler_t;

/* The response body: read from fd as h2o asks for more. Pool-owned; the fd is closed when the request goes, on every
 * path (finished, client gone, connection closed). */
typedef struct st_body_t {
    h2o_generator_t super;
    int fd;
    off_t off;
    size_t left;
    char *buf;
} body_t;

static void body_dispose(void *p)
{
    body_t *b = p;
    if (b->fd != -1)
        close(b->fd);
}

static void body_send_next(body_t *b, h2o_req_t *req)
{
    size_t want = b->left < CHUNK ? b->left : CHUNK;
    ssize_t n;
    while ((n = pread(b->fd, b->buf, want, b->off)) == -1 && errno == EINTR)
        ;
    if (n <= 0) {
        /* the file shrank or failed under us: the length is already promised, so the response can only be cut */
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    b->off += n;
    b->left -= (size_t)n;
    h2o_iovec_t buf = h2o_iovec_init(b->buf, (size_t)n);
    h2o_send(req, &buf, 1, b->left == 0 ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void body_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    body_send_next((body_t *)gen, req);
}

static void body_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)gen;
    (void)req;
}

/* h2o keeps the value's pointer: name is a literal, value is copied into the request's pool */
static void add_header(h2o_req_t *req, const char *name, const char *value, size_t len)
{
    h2o_iovec_t v = h2o_strdup(&req->pool, value, len);
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, v.base, v.len);
}

static void respond_simple(h2o_req_t *req, int status, const char *reason)
{
    add_header(req, "x-content-type-options", H2O_STRLIT("nosniff"));
    ag_http_respond(req, status, reason, "text/plain; charset=utf-8", reason, strlen(reason));
}

/* "bytes=a-b", "bytes=a-" or "bytes=-n" within size: 1 with [*from, *from + *len); 0 to send the whole file (absent,
 * malformed, or several ranges); -1 when unsatisfiable. */
static int parse_range(h2o_req_t *req, size_t size, size_t *from, size_t *len)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_RANGE, -1);
    if (i == -1)
        return 0;
    h2o_iovec_t v = req->headers.entries[i].value;
    if (v.len < 7 || memcmp(v.base, "bytes=", 6) != 0 || memchr(v.base, ',', v.len) != NULL)
        return 0;
    const char *p = v.base + 6, *end = v.base + v.len;
    int have_a = 0, have_b = 0;
    size_t a = 0, b = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++, have_a = 1)
        if ((a = a * 10 + (size_t)(*p - '0')) > ((size_t)1 << 52))
            return 0;
    if (p == end || *p++ != '-')
        return 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++, have_b = 1)
        if ((b = b * 10 + (size_t)(*p - '0')) > ((size_t)1 << 52))
            return 0;
    if (p != end || (!have_a && !have_b))
        return 0;
    if (!have_a) { /* the last b bytes */
        if (b == 0 || size == 0)
            return -1;
        *from = b < size ? size - b : 0;
        *len = size - *from;
        return 1;
    }
    if (have_b && b < a)
        return 0;
    if (a >= size)
        return -1;
    *from = a;
    *len = (have_b && b < size ? b + 1 : size) - a;
    return 1;
}

static int not_modified(h2o_req_t *req, const char *etag, size_t etag_len, time_t mtime)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    if (i != -1)
        return h2o_memis(req->headers.entries[i].value.base, req->headers.entries[i].value.len, etag, etag_len);
    if ((i = h2o_find_header(&req->headers, H2O_TOKEN_IF_MODIFIED_SINCE, -1)) != -1) {
        struct tm tm;
        if (h2o_time_parse_rfc1123(req->headers.entries[i].value.base, req->headers.entries[i].value.len, &tm) == 0)
            return timegm(&tm) >= mtime;
    }
    return 0;
}

/* Answers from an open regular file (taking fd over). */
static void serve_fd(h2o_req_t *req, int fd, const struct stat *st, h2o_iovec_t mime)
{
    body_t *b = h2o_mem_alloc_shared(&req->pool, sizeof(*b), body_dispose);
    *b = (body_t){{body_proceed, body_stop}, fd, 0, 0, NULL};
    int is_head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    if (!is_head && !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        add_header(req, "allow", H2O_STRLIT("GET, HEAD"));
        respond_simple(req, 405, "Method Not Allowed");
        return;
    }
    size_t size = (size_t)st->st_size;
    char etag[64], lm[H2O_TIMESTR_RFC1123_LEN + 1];
    int etag_len = snprintf(etag, sizeof(etag), "\"%08llx-%zx\"", (unsigned long long)st->st_mtime, size);
    struct tm gmt;
    gmtime_r(&st->st_mtime, &gmt);
    h2o_time2str_rfc1123(lm, &gmt);
    add_header(req, "x-content-type-options", H2O_STRLIT("nosniff"));
    add_header(req, "etag", etag, (size_t)etag_len);
    add_header(req, "last-modified", lm, H2O_TIMESTR_RFC1123_LEN);
    if (not_modified(req, etag, (size_t)etag_len, st->st_mtime)) {
        req->res.status = 304;
        req->res.reason = "Not Modified";
        h2o_send_inline(req, NULL, 0);
        return;
    }
    size_t from = 0, len = size;
    int ranged = parse_range(req, size, &from, &len);
    if (ranged == -1) {
        char cr[64];
        int n = snprintf(cr, sizeof(cr), "bytes */%zu", size);
        add_header(req, "content-range", cr, (size_t)n);
        respond_simple(req, 416, "Range Not Satisfiable");
        return;
    }
    add_header(req, "accept-ranges", H2O_STRLIT("bytes"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, mime.base, mime.len); /* long-lived */
    if (ranged == 1) {
        char cr[96];
        int n = snprintf(cr, sizeof(cr), "bytes %zu-%zu/%zu", from, from + len - 1, size);
        add_header(req, "content-range", cr, (size_t)n);
        req->res.status = 206;
        req->res.reason = "Partial Content";
    } else {
        req->res.status = 200;
        req->res.reason = "OK";
    }
    req->res.content_length = len;
    b->off = (off_t)from;
    b->left = len;
    h2o_start_response(req, &b->super);
    if (is_head || len == 0) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    b->buf = h2o_mem_alloc_pool(&req->pool, len < CHUNK ? len : CHUNK);
    body_send_next(b, req);
}

static h2o_iovec_t mime_of(h2o_req_t *req, const char *real)
{
    h2o_mimemap_type_t *t = h2o_mimemap_get_type_by_extension(req->pathconf->mimemap, h2o_get_filext(real, strlen(real)));
    if (t == NULL || t->type != H2O_MIMEMAP_TYPE_MIMETYPE)
        return h2o_iovec_init(H2O_STRLIT("application/octet-stream"));
    return t->data.mimetype;
}

/* path_normalized, percent-encoded for a Location header, with a slash appended. */
static h2o_iovec_t slash_location(h2o_req_t *req)
{
    static const char hex[] = "0123456789ABCDEF";
    h2o_iovec_t p = req->path_normalized;
    char *out = h2o_mem_alloc_pool(&req->pool, p.len * 3 + 2), *o = out;
    for (size_t i = 0; i < p.len; i++) {
        unsigned char c = (unsigned char)p.base[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~/!$&'()*+,;=:@", c) != NULL) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '/';
    return h2o_iovec_init(out, (size_t)(o - out));
}

static void redirect_to_dir(h2o_req_t *req)
{
    h2o_iovec_t loc = slash_location(req);
    if (loc.len >= 2 && loc.base[0] == '/' && loc.base[1] == '/') { /* would name another host */
        respond_simple(req, 404, "Not Found");
        return;
    }
    add_header(req, "location", loc.base, loc.len);
    respond_simple(req, 301, "Moved Permanently");
}

static int on_req_dir(static_handler_t *self, h2o_req_t *req)
{
    h2o_iovec_t conf = req->pathconf->path, path = req->path_normalized;
    size_t skip = conf.len;
    if (skip != 0 && conf.base[skip - 1] == '/')
        skip--;
    if (path.len < skip)
        return -1;
    const char *rest = path.base + skip;
    size_t rest_len = path.len - skip;
    /* a decoded NUL would cut the name short for open() but not for the type (a.txt%00.html) */
    if (memchr(rest, '\0', rest_len) != NULL) {
        respond_simple(req, 404, "Not Found");
        return 0;
    }
    if (rest_len == 0) {
        redirect_to_dir(req);
        return 0;
    }
    int want_index = rest[rest_len - 1] == '/';
    char *rel = h2o_mem_alloc_pool(&req->pool, rest_len + sizeof("index.html"));
    memcpy(rel, rest + 1, rest_len - 1);
    strcpy(rel + rest_len - 1, want_index ? "index.html" : "");
    struct stat st;
    char *real = NULL;
    int is_dir = 0;
    int fd = ag__public_open(self->path, rel, &st, &real, &is_dir);
    if (fd == -1) {
        if (is_dir && !want_index)
            redirect_to_dir(req);
        else
            respond_simple(req, 404, "Not Found");
        return 0;
    }
    h2o_iovec_t mime = mime_of(req, real);
    free(real);
    serve_fd(req, fd, &st, mime);
    return 0;
}

static int on_req(h2o_handler_t *_self, h2o_req_t *req)
{
    static_handler_t *self = (static_handler_t *)_self;
    if (self->is_dir)
        return on_req_dir(self, req);
    if (req->path_normalized.len != req->pathconf->path.len)
        return -1; /* a longer path under this one: the directory handler's */
    struct stat st;
    int fd = open(self->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd != -1 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
    }
    if (fd == -1) {
        respond_simple(req, 404, "Not Found");
        return 0;
    }
    serve_fd(req, fd, &st, h2o_iovec_init(self->mime, strlen(self->mime)));
    return 0;
}

static static_handler_t *create(h2o_pathconf_t *pc, const char *path)
{
    size_t len = strlen(path);
    static_handler_t *h = (static_handler_t *)h2o_create_handler(pc, sizeof(*h) + len + 1);
    h->super.on_req = on_req;
    memcpy(h->path, path, len + 1);
    return h;
}

void ag_static_register_dir(h2o_pathconf_t *pc, const char *dir)
{
    create(pc, dir)->is_dir = 1;
}

void ag_static_register_file(h2o_pathconf_t *pc, const char *path, const char *mime)
{
    create(pc, path)->mime = mime;
}
