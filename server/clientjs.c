#define _GNU_SOURCE /* memrchr */
#include "clientjs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include "eio_packet.h"
#include "http.h"
#include "static.h"

/* The fallback directory this node rendered into (s->clientjs), removed when the node is destroyed. */
struct st_ag_clientjs_t {
    char dir[4096];
    char files[2][8192];
};

static const char *const suffixes[2] = {".js", ".min.js"};
static const char *const templates[2] = {"ActionheroWebsocketClient.js.tmpl", "ActionheroWebsocketClient.min.js.tmpl"};

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} sbuf_t;

static void put(sbuf_t *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->buf, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void put_json(sbuf_t *b, json_t *v)
{
    /* ASCII only: U+2028/U+2029 are line terminators inside an ES5 string literal */
    char *s = v != NULL ? json_dumps(v, JSON_ENCODE_ANY | JSON_ENSURE_ASCII | JSON_COMPACT) : NULL;
    json_decref(v);
    if (s == NULL) {
        b->failed = 1;
        return;
    }
    put(b, s, strlen(s));
    free(s);
}

static json_t *json_list(char *const *list)
{
    json_t *a = json_array();
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        json_array_append_new(a, json_string(list[i]));
    return a;
}

/* The client URL is a bare expression when it is the default one, else a string. */
#define BARE_CLIENT_URL "window.location.origin"

static int put_value(sbuf_t *b, const ag_config_t *cfg, const char *name, size_t n)
{
    const typeof(cfg->servers.websocket.client) *c = &cfg->servers.websocket.client;
#define IS(lit) (n == sizeof(lit) - 1 && memcmp(name, lit, n) == 0)
    if (IS("CLIENT_URL")) {
        const char *url = cfg->servers.websocket.clientUrl;
        if (strcmp(url, BARE_CLIENT_URL) == 0)
            put(b, url, strlen(url));
        else
            put_json(b, json_string(url));
    } else if (IS("API_PATH")) {
        put_json(b, json_string(c->apiPath));
    } else if (IS("COOKIE_KEY")) {
        put_json(b, json_string(c->cookieKey));
    } else if (IS("PATHNAME")) {
        put_json(b, json_string(cfg->servers.websocket.server.pathname));
    } else if (IS("TRANSPORTS")) {
        put_json(b, json_list(c->transports));
    } else if (IS("WEBSOCKET_FIRST")) {
        put_json(b, json_boolean(c->websocketFirst));
    } else if (IS("REMEMBER_UPGRADE")) {
        put_json(b, json_boolean(c->rememberUpgrade));
    } else if (IS("TIMEOUT")) {
        put_json(b, json_integer(c->timeout));
    } else if (IS("PING_INTERVAL")) {
        put_json(b, json_integer(cfg->servers.websocket.server.pingInterval));
    } else if (IS("PING_TIMEOUT")) {
        put_json(b, json_integer(cfg->servers.websocket.server.pingTimeout));
    } else if (IS("RECONNECT_MIN")) {
        put_json(b, json_integer(c->reconnectMin));
    } else if (IS("RECONNECT_MAX")) {
        put_json(b, json_integer(c->reconnectMax));
    } else if (IS("RECONNECT_FACTOR")) {
        put_json(b, json_real(c->reconnectFactor));
    } else if (IS("RECONNECT_RETRIES")) {
        put_json(b, json_integer(c->reconnectRetries));
    } else if (IS("QUEUE_SIZE")) {
        put_json(b, json_integer(c->queueSize));
    } else if (IS("RESUME")) {
        put_json(b, json_boolean(cfg->general.resumeWindow > 0));
    } else if (IS("PACKET_TYPES")) {
        /* the engine.io packet types and separator come from the codec the server uses, so the two cannot drift */
        static const struct {
            const char *name;
            int type;
        } types[] = {{"open", AG_EIO_OPEN},       {"close", AG_EIO_CLOSE},     {"ping", AG_EIO_PING}, {"pong", AG_EIO_PONG},
                     {"message", AG_EIO_MESSAGE}, {"upgrade", AG_EIO_UPGRADE}, {"noop", AG_EIO_NOOP}};
        json_t *o = json_object();
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            char digit[2] = {(char)('0' + types[i].type), '\0'};
            json_object_set_new(o, types[i].name, json_string(digit));
        }
        put_json(b, o);
    } else if (IS("SEPARATOR")) {
        char sep[2] = {AG_EIO_SEPARATOR, '\0'};
        put_json(b, json_string(sep));
    } else {
        return AG_EINVAL;
    }
#undef IS
    return 0;
}

static int is_name_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
}

char *ag_clientjs_substitute(const ag_config_t *cfg, const char *tmpl, size_t len, size_t *outlen, char *errbuf, size_t errlen)
{
    static const char open[] = "__AG_";
    sbuf_t b = {NULL, 0, 0, 0};
    size_t i = 0, copied = 0;
    while (i + sizeof(open) - 1 <= len) {
        if (memcmp(tmpl + i, open, sizeof(open) - 1) != 0) {
            i++;
            continue;
        }
        size_t start = i + sizeof(open) - 1, end = start;
        while (end < len && is_name_char(tmpl[end]))
            end++;
        /* the name runs up to the closing "__" (names themselves hold single underscores) */
        if (end - start < 3 || tmpl[end - 1] != '_' || tmpl[end - 2] != '_') {
            i = end;
            continue;
        }
        put(&b, tmpl + copied, i - copied);
        if (put_value(&b, cfg, tmpl + start, end - start - 2) != 0) {
            snprintf(errbuf, errlen, "client template: unknown placeholder %.*s", (int)(end - i), tmpl + i);
            free(b.buf);
            return NULL;
        }
        i = copied = end;
    }
    put(&b, tmpl + copied, len - copied);
    if (b.failed || b.buf == NULL) {
        snprintf(errbuf, errlen, "client template: out of memory");
        free(b.buf);
        return NULL;
    }
    *outlen = b.len;
    return b.buf;
}

/* Opens (creating what is missing) the directory rel under the directory fd base, one component at a time and without
 * following a symlink: a link planted where the files go (a shared or world-writable directory) is refused, not
 * written through. "." and ".." components are refused too. Returns a directory fd or -1 (errno set). */
static int open_dirs(int base, const char *rel)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", rel);
    char *save = NULL;
    int dfd = dup(base);
    for (char *name = strtok_r(tmp, "/", &save); name != NULL && dfd != -1; name = strtok_r(NULL, "/", &save)) {
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
            close(dfd);
            errno = EINVAL;
            return -1;
        }
        if (mkdirat(dfd, name, 0755) != 0 && errno != EEXIST) {
            close(dfd);
            return -1;
        }
        int next = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(dfd);
        dfd = next;
    }
    return dfd;
}

/* Written under a fresh random name (O_EXCL, never through a link) and renamed, so that a reader (or another node
 * sharing the directory) never sees half a file. */
static int write_file(int dfd, const char *name, const char *data, size_t len)
{
    unsigned char rnd[8];
    char tmp[300];
    ag_random_bytes(rnd, sizeof(rnd));
    snprintf(tmp, sizeof(tmp), ".%.200s.%02x%02x%02x%02x%02x%02x%02x%02x.tmp", name, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5],
             rnd[6], rnd[7]);
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd == -1)
        return -1;
    size_t done = 0;
    ssize_t n = 0;
    while (done < len && (n = write(fd, data + done, len - done)) > 0)
        done += (size_t)n;
    int ok = done == len;
    ok = close(fd) == 0 && ok;
    if (!ok || renameat(dfd, tmp, dfd, name) != 0) {
        int saved = errno;
        unlinkat(dfd, tmp, 0);
        errno = saved;
        return -1;
    }
    return 0;
}

/* Renders into base/rel (rel may be ""); base itself is trusted (the public directory, or our own fresh directory). */
static int render_into(const char *base, const char *rel, const char *name, char *const out[2], size_t outlen[2], char *errbuf,
                       size_t errlen)
{
    int bfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int dfd = bfd != -1 ? open_dirs(bfd, rel) : -1;
    if (bfd != -1)
        close(bfd);
    if (dfd == -1) {
        snprintf(errbuf, errlen, "cannot create %s/%s: %s", base, rel, strerror(errno));
        return AG_EIO;
    }
    for (int k = 0; k < 2; k++) {
        char file[300];
        snprintf(file, sizeof(file), "%s%s", name, suffixes[k]);
        if (write_file(dfd, file, out[k], outlen[k]) != 0) {
            snprintf(errbuf, errlen, "cannot write %s/%s%s: %s", base, rel, file, strerror(errno));
            close(dfd);
            return AG_EIO;
        }
    }
    close(dfd);
    return 0;
}

int ag_clientjs_render(const ag_config_t *cfg, const char *template_dir, const char *public_dir, const char *fallback_root,
                       char *fallback_dir, size_t fallback_len, char *errbuf, size_t errlen)
{
    const char *name = cfg->servers.websocket.clientJsName;
    fallback_dir[0] = '\0';
    if (name[0] == '\0')
        return 0;
    char *out[2] = {NULL, NULL};
    size_t outlen[2] = {0, 0};
    int ret = 0;
    for (int k = 0; k < 2 && ret == 0; k++) {
        char path[4096];
        size_t len;
        snprintf(path, sizeof(path), "%s/%s", template_dir, templates[k]);
        char *tmpl = ag_read_file(path, AG_CLIENT_FILE_MAX, &len);
        if (tmpl == NULL) {
            snprintf(errbuf, errlen, "cannot read the client template %s: %s", path, strerror(errno));
            ret = AG_EIO;
            break;
        }
        if ((out[k] = ag_clientjs_substitute(cfg, tmpl, len, &outlen[k], errbuf, errlen)) == NULL)
            ret = AG_ECONFIG;
        free(tmpl);
    }
    if (ret == 0 && (strchr(name, '/') != NULL || strlen(name) > 200)) {
        snprintf(errbuf, errlen, "servers.websocket.clientJsName: a file name, without /, of at most 200 bytes");
        ret = AG_ECONFIG;
    }
    if (ret == 0 && render_into(public_dir, cfg->servers.websocket.clientJsPath, name, out, outlen, errbuf, errlen) != 0) {
        ag_log(AG_LOG_WARN, "clientjs", NULL, "%s; rendering under %s instead", errbuf, fallback_root);
        /* a fresh directory of our own (0700): a name known in advance could be planted, as a link, by anyone */
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/actiongate-client-XXXXXX", fallback_root);
        if (mkdtemp(dir) == NULL) {
            snprintf(errbuf, errlen, "cannot create a directory under %s: %s", fallback_root, strerror(errno));
            ret = AG_EIO;
        } else if ((ret = render_into(dir, "", name, out, outlen, errbuf, errlen)) != 0) {
            rmdir(dir);
        } else {
            snprintf(fallback_dir, fallback_len, "%s", dir);
        }
    }
    free(out[0]);
    free(out[1]);
    return ret;
}

static const char *fallback_root(void)
{
    const char *vars[] = {"RUNTIME_DIRECTORY", "TMPDIR"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i]);
        if (v != NULL && v[0] == '/')
            return v;
    }
    return "/tmp";
}

int ag_clientjs_init(ag_server_t *s, char *errbuf, size_t errlen)
{
    const ag_config_t *cfg = s->config;
    struct st_ag_clientjs_t *rendered = calloc(1, sizeof(*rendered));
    if (rendered == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    s->clientjs = rendered;
    int ret = ag_clientjs_render(cfg, s->client_dir, s->public_dir, fallback_root(), rendered->dir, sizeof(rendered->dir), errbuf,
                                 errlen);
    if (ret != 0 || rendered->dir[0] == '\0')
        return ret;
    for (int k = 0; k < 2; k++) {
        int n = snprintf(rendered->files[k], sizeof(rendered->files[k]), "%s/%s%s", rendered->dir,
                         cfg->servers.websocket.clientJsName, suffixes[k]);
        if (n < 0 || (size_t)n >= sizeof(rendered->files[k])) {
            snprintf(errbuf, errlen, "servers.websocket.clientJsName: too long");
            return AG_ECONFIG;
        }
    }
    /* Served at the URLs they would have had in the public directory; registered before the static handler, so
     * these paths win. */
    h2o_expires_args_t expires = {H2O_EXPIRES_MODE_MAX_AGE, {.max_age = (uint64_t)cfg->servers.web.flatFileCacheDuration}};
    for (int k = 0; k < 2; k++) {
        char url[1024];
        snprintf(url, sizeof(url), "/%s/%s%s%s", cfg->servers.web.urlPathForFiles, cfg->servers.websocket.clientJsPath,
                 cfg->servers.websocket.clientJsName, suffixes[k]);
        h2o_pathconf_t *pc = ag_server_register_path(s, url);
        ag_static_register_file(pc, rendered->files[k], "application/javascript");
        h2o_expires_register(pc, &expires);
    }
    return 0;
}

void ag_clientjs_dispose(ag_server_t *s)
{
    struct st_ag_clientjs_t *rendered = s->clientjs;
    if (rendered == NULL)
        return;
    s->clientjs = NULL;
    if (rendered->dir[0] != '\0') {
        for (int k = 0; k < 2; k++)
            unlink(rendered->files[k]);
        rmdir(rendered->dir);
    }
    free(rendered);
}
