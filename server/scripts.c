/* The browser scripts served from memory (see scripts.h). */
#include "scripts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "clientjs.h"
#include "frame.h"
#include "http.h"

/* The module's state (s->scripts). */
typedef struct st_ag_scripts_t {
    struct st_script_t *scripts[4]; /* what the module serves, for dispose */
    size_t num_scripts;
} ag_scripts_t;

#define SIO_PATH_MARK "\"/socket.io\"/*path*/"

/* One script served from memory at one exact path. */
typedef struct st_script_t {
    h2o_handler_t super;
    char *path;
    ag_frame_t *body;
    char etag[32];
} script_t;

/* A file of the client directory. */
static char *read_client_file(const ag_server_t *s, const char *rel, size_t *len, char *errbuf, size_t errlen)
{
    char path[4096 + 64];
    int n = snprintf(path, sizeof(path), "%s/%s", s->client_dir, rel);
    char *text = n > 0 && (size_t)n < sizeof(path) ? ag_read_file(path, AG_CLIENT_FILE_MAX, len) : NULL;
    if (text == NULL)
        snprintf(errbuf, errlen, "cannot read %s", path);
    return text;
}

/* The socket.io client with the configured path baked in where it carries the default one. */
static ag_frame_t *render_socketio_js(const char *text, size_t len, const char *path)
{
    const char *mark = strstr(text, SIO_PATH_MARK);
    if (mark == NULL)
        return ag_frame_create(text, len, 0);
    json_t *jpath = json_string(path);
    char *lit = jpath != NULL ? json_dumps(jpath, JSON_ENCODE_ANY) : NULL;
    json_decref(jpath);
    if (lit == NULL)
        return NULL;
    size_t pre = (size_t)(mark - text), mlen = sizeof(SIO_PATH_MARK) - 1, llen = strlen(lit), rest = len - pre - mlen;
    char *buf = malloc(pre + llen + rest);
    ag_frame_t *f = NULL;
    if (buf != NULL) {
        memcpy(buf, text, pre);
        memcpy(buf + pre, lit, llen);
        memcpy(buf + pre + llen, mark + mlen, rest);
        f = ag_frame_create(buf, pre + llen + rest, 0);
        free(buf);
    }
    free(lit);
    return f;
}

static int on_script_req(h2o_handler_t *self, h2o_req_t *req)
{
    script_t *sc = (script_t *)self;
    h2o_iovec_t path = req->path_normalized;
    int get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")),
        head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    /* Only the exact path, and not the engine.io endpoint that may share its prefix. */
    if (!(get || head) || !h2o_memis(path.base, path.len, sc->path, strlen(sc->path)) || ag_http_query_param(req, "EIO") != NULL)
        return -1;
    ag_server_t *s = ag_http_server(req);
    char cc[64];
    int n = snprintf(cc, sizeof(cc), "public, max-age=%d", s->config->servers.web.flatFileCacheDuration);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, h2o_strdup(&req->pool, cc, (size_t)n).base,
                   (size_t)n);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, sc->etag, strlen(sc->etag));
    size_t inm_len;
    const char *inm = ag_http_header(req, "if-none-match", &inm_len);
    if (inm != NULL && h2o_memis(inm, inm_len, sc->etag, strlen(sc->etag))) {
        req->res.status = 304;
        req->res.reason = "Not Modified";
        h2o_send_inline(req, NULL, 0);
        return 0;
    }
    ag_http_respond(req, 200, "OK", "application/javascript; charset=utf-8", sc->body->data, sc->body->len);
    return 0;
}

/* Serves body (the reference is taken) at the exact path url, on the handlers of pathconf prefix. */
static int add_script(ag_server_t *s, const char *prefix, const char *url, ag_frame_t *body, char *errbuf, size_t errlen)
{
    char *path = body != NULL ? strdup(url) : NULL;
    ag_scripts_t *node = s->scripts;
    if (path == NULL || node->num_scripts == sizeof(node->scripts) / sizeof(node->scripts[0])) {
        free(path);
        ag_frame_release(body);
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    script_t *sc = (script_t *)h2o_create_handler(ag_server_register_path(s, prefix), sizeof(*sc));
    sc->super.on_req = on_script_req;
    sc->path = path;
    sc->body = body;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < body->len; i++)
        h = (h ^ (uint8_t)body->data[i]) * 1099511628211ULL;
    snprintf(sc->etag, sizeof(sc->etag), "\"%016llx\"", (unsigned long long)h);
    node->scripts[node->num_scripts++] = sc;
    return 0;
}

/* The rendered ActionheroWebsocketClient followed by the wrappers of the socket.io and faye eras, under the names those
 * eras' pages load: <public>/<clientJsPath>actionHeroWebSocket.js and actionheroClient.js. */
static int add_legacy_clients(ag_server_t *s, char *errbuf, size_t errlen)
{
    static const char *const names[] = {"actionHeroWebSocket", "actionheroClient"};
    const ag_config_t *cfg = s->config;
    size_t tlen, clen, wlen;
    char *tmpl = read_client_file(s, "ActionheroWebsocketClient.js.tmpl", &tlen, errbuf, errlen);
    if (tmpl == NULL)
        return AG_EIO;
    char *client = ag_clientjs_substitute(cfg, tmpl, tlen, &clen, errbuf, errlen);
    free(tmpl);
    if (client == NULL)
        return AG_ECONFIG;
    char *wrapper = read_client_file(s, "legacy/actionHeroWebSocket.js", &wlen, errbuf, errlen);
    char *both = wrapper != NULL ? malloc(clen + 1 + wlen) : NULL;
    ag_frame_t *body = NULL;
    if (both != NULL) {
        memcpy(both, client, clen);
        both[clen] = '\n';
        memcpy(both + clen + 1, wrapper, wlen);
        body = ag_frame_create(both, clen + 1 + wlen, 0);
    }
    free(both);
    free(wrapper);
    free(client);
    if (body == NULL) {
        if (wrapper != NULL)
            snprintf(errbuf, errlen, "out of memory");
        return wrapper != NULL ? AG_ENOMEM : AG_EIO;
    }
    int ret = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && ret == 0; i++) {
        char url[1024];
        snprintf(url, sizeof(url), "/%s/%s%s.js", cfg->servers.web.urlPathForFiles, cfg->servers.websocket.clientJsPath, names[i]);
        ret = add_script(s, url, url, ag_frame_addref(body), errbuf, errlen);
    }
    ag_frame_release(body);
    return ret;
}

int ag_scripts_register(ag_server_t *s, char *errbuf, size_t errlen)
{
    const ag_config_t *cfg = s->config;
    size_t len;
    char *text;
    int ret;
    if ((s->scripts = calloc(1, sizeof(*s->scripts))) == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    if ((text = read_client_file(s, "legacy/faye.js", &len, errbuf, errlen)) == NULL)
        return AG_EIO;
    ret = add_script(s, "/faye/client.js", "/faye/client.js", ag_frame_create(text, len, 0), errbuf, errlen);
    free(text);
    if (ret == 0)
        ret = add_legacy_clients(s, errbuf, errlen);
    if (ret != 0 || !cfg->servers.socketio.enabled)
        return ret;
    if ((text = read_client_file(s, "socket.io.js", &len, errbuf, errlen)) == NULL)
        return AG_EIO;
    char url[1024];
    snprintf(url, sizeof(url), "%s/socket.io.js", cfg->servers.socketio.path);
    ret = add_script(s, cfg->servers.socketio.path, url, render_socketio_js(text, len, cfg->servers.socketio.path), errbuf, errlen);
    free(text);
    return ret;
}

void ag_scripts_dispose(ag_server_t *s)
{
    ag_scripts_t *node = s->scripts;
    if (node == NULL)
        return;
    s->scripts = NULL;
    /* the script handlers belong to h2o's configuration, which outlives this: they are emptied, not freed */
    for (size_t i = 0; i < node->num_scripts; i++) {
        ag_frame_release(node->scripts[i]->body);
        free(node->scripts[i]->path);
        node->scripts[i]->body = NULL;
        node->scripts[i]->path = NULL;
    }
    free(node);
}
