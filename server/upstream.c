/*
 * The upstream client: actionhero's web API over h2o 2.2.5's HTTP/1 client.
 *
 * h2o's client delivers a response in three callbacks (connect, head, body) and frees itself after the last one, or
 * when cancelled; a call keeps the client pointer only while the client is alive and clears it before running the
 * caller's callback, so nothing cancels a client that is already finishing. The body is read out of the socket's
 * buffer as it comes and copied into the call's own buffer, which is where the size cap applies.
 *
 * Time: h2o's client only has a per-I/O timeout; every call also has its own deadline (one h2o_timeout_t, since every
 * call has the same duration), so a server that trickles bytes cannot hold a call past upstream.timeout.
 */
#include "upstream.h"

#include <arpa/inet.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "frame.h"

/* a base that refused a connection is left alone this long before a call tries it again */
#define RETRY_DOWN_MS 1000

typedef enum { ST_UNKNOWN = 0, ST_UP, ST_DOWN, ST_TIMEOUT, ST_BAD_REPLY } base_state_t;

typedef struct st_base_t {
    char *url; /* as configured, for logs */
    ag_url_t parsed;
    char hostport[300]; /* the Host header */
    h2o_socketpool_t pool;
    base_state_t state;
    uint64_t retry_at; /* while ST_DOWN */
} base_t;

struct st_ag_upstream_t {
    ag_server_t *server;
    base_t *bases;
    size_t num_bases, next_base;
    h2o_http1client_ctx_t client_ctx;
    h2o_timeout_t io_timeout, deadline, zero;
    h2o_linklist_t calls;
    ag_upstream_stats_t stats;
};

struct st_ag_upstream_call_t {
    ag_upstream_t *up;
    h2o_linklist_t link;
    h2o_http1client_t *client; /* NULL when no client is alive */
    base_t *base;
    size_t tries;
    h2o_timeout_entry_t deadline, defer;
    const char *deferred_err; /* static text: why the zero timeout was armed */
    int connect_failed;
    ag_upstream_cb cb;
    void *data;
    h2o_iovec_t req[2]; /* head, body */
    char *action;
    char *cookie; /* "<key>=<value>", or NULL */
    char xff[64]; /* "" = none */
    int status;
    char *body;
    size_t body_len, body_cap;
};

/* --- URLs and names --- */

int ag_upstream_valid_name(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    if (n == 0 || n > 200 || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!(('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '_' || c == '-' || c == ':' ||
              c == '.' || c == '~'))
            return 0;
    }
    return 1;
}

int ag_upstream_routes(ag_server_t *s, const char *action, int is_local)
{
    if (s->upstream == NULL || action == NULL)
        return 0;
    if (is_local && s->config->upstream.keepLocalActions)
        return 0;
    for (char **p = s->config->upstream.actions; p != NULL && *p != NULL; p++)
        if (fnmatch(*p, action, 0) == 0)
            return 1;
    return 0;
}

/* --- state of a base --- */

static const char *state_text(base_state_t st)
{
    switch (st) {
    case ST_DOWN:
        return "down (connection failed)";
    case ST_TIMEOUT:
        return "failing (no answer in time)";
    case ST_BAD_REPLY:
        return "failing (invalid responses)";
    default:
        return "up";
    }
}

/* Logs only changes, so a dead upstream under load costs one line, not one per request. */
static void set_state(ag_upstream_t *up, base_t *b, base_state_t st, const char *detail)
{
    if (st == ST_DOWN)
        b->retry_at = h2o_now(up->server->loop) + RETRY_DOWN_MS;
    if (b->state == st || (st == ST_UP && b->state == ST_UNKNOWN)) {
        b->state = st;
        return;
    }
    if (st == ST_UP) /* as loud as the line that said it was not */
        ag_log(AG_LOG_WARN, "upstream", NULL, "%s is back up", b->url);
    else
        ag_log(AG_LOG_WARN, "upstream", NULL, "%s is %s: %s", b->url, state_text(st), detail != NULL ? detail : "");
    b->state = st;
}

/* The next base in round robin that is not known to be down; a down base whose retry time came is tried again. */
static base_t *pick_base(ag_upstream_t *up, const base_t *not_this)
{
    uint64_t now = h2o_now(up->server->loop);
    for (size_t i = 0; i < up->num_bases; i++) {
        base_t *b = &up->bases[(up->next_base + i) % up->num_bases];
        if (b == not_this || (b->state == ST_DOWN && now < b->retry_at))
            continue;
        up->next_base = (size_t)(b - up->bases + 1) % up->num_bases;
        return b;
    }
    return NULL;
}

/* --- calls --- */

static void call_free(ag_upstream_call_t *c)
{
    if (h2o_linklist_is_linked(&c->link))
        h2o_linklist_unlink(&c->link);
    if (h2o_timeout_is_linked(&c->deadline))
        h2o_timeout_unlink(&c->deadline);
    if (h2o_timeout_is_linked(&c->defer))
        h2o_timeout_unlink(&c->defer);
    c->up->stats.in_flight--;
    free(c->req[0].base);
    free(c->req[1].base);
    free(c->action);
    free(c->cookie);
    free(c->body);
    free(c);
}

/* Reports the end once and frees the call. The client, if any, is no longer ours: h2o frees it after the callback
 * that brought us here, or we cancelled it. */
static void finish(ag_upstream_call_t *c, const char *err, int status, json_t *reply)
{
    c->client = NULL;
    if (err != NULL)
        c->up->stats.failed++;
    ag_upstream_cb cb = c->cb;
    void *data = c->data;
    call_free(c);
    cb(data, err, status, reply);
}

static void fail(ag_upstream_call_t *c, base_state_t st, const char *detail)
{
    if (c->base != NULL && st != ST_UNKNOWN)
        set_state(c->up, c->base, st, detail);
    ag_debug("upstream", NULL, "%s %s: %s", c->base != NULL ? c->base->url : "-", c->action, detail);
    const char *err = st == ST_TIMEOUT     ? AG_UPSTREAM_ERR_TIMEOUT
                      : st == ST_BAD_REPLY ? AG_UPSTREAM_ERR_BAD_REPLY
                                           : AG_UPSTREAM_ERR_UNAVAILABLE;
    finish(c, err, st == ST_TIMEOUT ? 504 : 502, NULL);
}

static void start(ag_upstream_call_t *c);

/* A connect failed (nothing was sent, so another base may take the call), or no base could be tried at all. */
static void on_deferred(h2o_timeout_entry_t *entry)
{
    ag_upstream_call_t *c = H2O_STRUCT_FROM_MEMBER(ag_upstream_call_t, defer, entry);
    if (c->connect_failed && c->tries < c->up->num_bases) {
        c->connect_failed = 0;
        c->up->stats.failovers++;
        start(c);
        return;
    }
    fail(c, ST_UNKNOWN, c->deferred_err);
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    ag_upstream_call_t *c = H2O_STRUCT_FROM_MEMBER(ag_upstream_call_t, deadline, entry);
    if (c->client != NULL)
        h2o_http1client_cancel(c->client);
    c->client = NULL;
    fail(c, ST_TIMEOUT, "no answer within upstream.timeout");
}

static void finish_body(ag_upstream_call_t *c)
{
    json_error_t jerr;
    json_t *reply = c->body != NULL ? json_loadb(c->body, c->body_len, 0, &jerr) : NULL;
    if (!json_is_object(reply)) {
        json_decref(reply);
        char detail[96];
        snprintf(detail, sizeof(detail), "HTTP %d with a body that is not a JSON object", c->status);
        fail(c, ST_BAD_REPLY, detail);
        return;
    }
    /* actionhero answers a failed action with a JSON "error" (500 for a throw); a 5xx without one is not the app */
    if (c->status >= 500 && !json_is_string(json_object_get(reply, "error"))) {
        json_decref(reply);
        char detail[64];
        snprintf(detail, sizeof(detail), "HTTP %d without an error text", c->status);
        fail(c, ST_BAD_REPLY, detail);
        return;
    }
    set_state(c->up, c->base, ST_UP, NULL);
    finish(c, NULL, c->status, reply);
    json_decref(reply);
}

static int on_body(h2o_http1client_t *client, const char *errstr)
{
    ag_upstream_call_t *c = client->data;
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        fail(c, ST_BAD_REPLY, errstr);
        return -1;
    }
    h2o_buffer_t *in = client->sock->input;
    size_t max = (size_t)c->up->server->config->upstream.maxResponseBytes;
    if (in->size != 0) {
        /* returning non-zero makes h2o close the client: never cancel it from here */
        if (c->body_len + in->size > max) {
            fail(c, ST_BAD_REPLY, "response body over upstream.maxResponseBytes");
            return -1;
        }
        if (c->body_len + in->size > c->body_cap) {
            size_t ncap = c->body_cap == 0 ? 4096 : c->body_cap;
            while (ncap < c->body_len + in->size)
                ncap *= 2;
            char *nb = realloc(c->body, ncap);
            if (nb == NULL) {
                fail(c, ST_UNKNOWN, "out of memory");
                return -1;
            }
            c->body = nb;
            c->body_cap = ncap;
        }
        memcpy(c->body + c->body_len, in->bytes, in->size);
        c->body_len += in->size;
        h2o_buffer_consume(&client->sock->input, in->size);
    }
    if (errstr == h2o_http1client_error_is_eos)
        finish_body(c);
    return 0;
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client, const char *errstr, int minor_version, int status,
                                       h2o_iovec_t msg, h2o_header_t *headers, size_t num_headers, int rlen)
{
    (void)minor_version;
    (void)rlen;
    (void)msg;
    ag_upstream_call_t *c = client->data;
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        fail(c, strcmp(errstr, "I/O timeout") == 0 ? ST_TIMEOUT : ST_BAD_REPLY, errstr);
        return NULL;
    }
    c->status = status;
    for (size_t i = 0; i < num_headers; i++) {
        if (headers[i].name == &H2O_TOKEN_CONTENT_LENGTH->buf &&
            h2o_strtosize(headers[i].value.base, headers[i].value.len) > (size_t)c->up->server->config->upstream.maxResponseBytes) {
            fail(c, ST_BAD_REPLY, "content-length over upstream.maxResponseBytes");
            return NULL;
        }
    }
    if (errstr == h2o_http1client_error_is_eos) { /* no body at all */
        finish_body(c);
        return NULL;
    }
    return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client, const char *errstr, h2o_iovec_t **reqbufs, size_t *reqbufcnt,
                                          int *method_is_head)
{
    ag_upstream_call_t *c = client->data;
    if (errstr != NULL) {
        /* h2o may report a refused connect from inside the connect call itself: the failover runs from the loop */
        c->client = NULL;
        set_state(c->up, c->base, ST_DOWN, errstr);
        c->connect_failed = 1;
        c->deferred_err = errstr;
        h2o_timeout_link(c->up->server->loop, &c->up->zero, &c->defer);
        return NULL;
    }
    *reqbufs = c->req;
    *reqbufcnt = 2;
    *method_is_head = 0;
    return on_head;
}

/* The head depends on the base (path, Host), so it is built per attempt. */
static int build_head(ag_upstream_call_t *c)
{
    const base_t *b = c->base;
    size_t cap = 256 + strlen(b->parsed.path) + strlen(c->action) + strlen(b->hostport) +
                 (c->cookie != NULL ? strlen(c->cookie) : 0) + strlen(c->xff);
    char *head = malloc(cap);
    if (head == NULL)
        return AG_ENOMEM;
    size_t m = (size_t)snprintf(head, cap,
                                "POST %s/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json; charset=utf-8\r\n"
                                "Accept: application/json\r\nContent-Length: %zu\r\n",
                                b->parsed.path, c->action, b->hostport, c->req[1].len);
    if (c->up->server->config->upstream.keepAlive == 0)
        m += (size_t)snprintf(head + m, cap - m, "Connection: close\r\n");
    if (c->cookie != NULL)
        m += (size_t)snprintf(head + m, cap - m, "Cookie: %s\r\n", c->cookie);
    if (c->xff[0] != '\0')
        m += (size_t)snprintf(head + m, cap - m, "X-Forwarded-For: %s\r\n", c->xff);
    m += (size_t)snprintf(head + m, cap - m, "\r\n");
    free(c->req[0].base);
    c->req[0] = h2o_iovec_init(head, m);
    return 0;
}

static void start(ag_upstream_call_t *c)
{
    c->base = pick_base(c->up, NULL);
    if (c->base == NULL) {
        c->deferred_err = "every upstream base URL is down";
        h2o_timeout_link(c->up->server->loop, &c->up->zero, &c->defer);
        return;
    }
    c->tries++;
    if (build_head(c) != 0) {
        c->deferred_err = "out of memory";
        h2o_timeout_link(c->up->server->loop, &c->up->zero, &c->defer);
        return;
    }
    h2o_http1client_connect_with_pool(&c->client, c, &c->up->client_ctx, &c->base->pool, on_connect);
}

/* A cookie value actionhero reads back unchanged: printable ASCII without separators; anything else is
 * percent-encoded (the app then sees the encoded form, as it would from a browser). */
static char *cookie_of(const char *key, const char *fp)
{
    size_t klen = strlen(key), flen = strlen(fp);
    if (flen > 1024)
        flen = 1024;
    char *out = malloc(klen + 1 + flen * 3 + 1), *o = out;
    if (out == NULL)
        return NULL;
    memcpy(o, key, klen);
    o += klen;
    *o++ = '=';
    for (size_t i = 0; i < flen; i++) {
        unsigned char ch = (unsigned char)fp[i];
        if (ch > 0x20 && ch < 0x7f && ch != ';' && ch != '=' && ch != ',' && ch != '"' && ch != '\\' && ch != '%') {
            *o++ = (char)ch;
        } else {
            sprintf(o, "%%%02X", ch);
            o += 3;
        }
    }
    *o = '\0';
    return out;
}

static int is_address(const char *ip)
{
    struct in6_addr a6;
    struct in_addr a4;
    return ip != NULL && strlen(ip) < 64 && (inet_pton(AF_INET, ip, &a4) == 1 || inet_pton(AF_INET6, ip, &a6) == 1);
}

int ag_upstream_call(ag_server_t *s, const char *action, const json_t *params, const ag_upstream_who_t *who, ag_upstream_cb cb,
                     void *data, ag_upstream_call_t **handle)
{
    ag_upstream_t *up = s->upstream;
    if (up == NULL)
        return AG_ENOENT;
    if (!ag_upstream_valid_name(action))
        return AG_EINVAL;
    if (up->stats.in_flight >= (size_t)s->config->upstream.maxInFlight) {
        up->stats.refused_busy++;
        return AG_EBUSY;
    }
    ag_upstream_call_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return AG_ENOMEM;
    c->up = up;
    up->stats.in_flight++;
    c->cb = cb;
    c->data = data;
    c->deadline.cb = on_deadline;
    c->defer.cb = on_deferred;
    c->action = strdup(action);
    json_t *empty = json_object();
    char *body = json_dumps(params != NULL ? params : empty, AG_JSON_FLAGS);
    json_decref(empty);
    c->req[1] = h2o_iovec_init(body, body != NULL ? strlen(body) : 0);
    if (who != NULL && who->fingerprint != NULL && who->fingerprint[0] != '\0')
        c->cookie = cookie_of(s->config->servers.web.cookieKey, who->fingerprint);
    if (who != NULL && is_address(who->remote_ip))
        snprintf(c->xff, sizeof(c->xff), "%s", who->remote_ip);
    if (c->action == NULL || body == NULL ||
        (who != NULL && who->fingerprint != NULL && who->fingerprint[0] != '\0' && c->cookie == NULL)) {
        call_free(c);
        return AG_ENOMEM;
    }
    if (c->req[1].len > (size_t)s->config->upstream.maxRequestBytes) {
        call_free(c);
        return AG_ETOOBIG;
    }
    h2o_linklist_insert(&up->calls, &c->link);
    up->stats.calls++;
    h2o_timeout_link(s->loop, &up->deadline, &c->deadline);
    if (handle != NULL)
        *handle = c;
    start(c);
    return 0;
}

void ag_upstream_cancel(ag_upstream_call_t *c)
{
    if (c->client != NULL)
        h2o_http1client_cancel(c->client);
    c->client = NULL;
    call_free(c);
}

/* --- documentation --- */

static json_t *doc_entry(const char *name, const char *description, json_t *inputs)
{
    json_t *v = json_pack("{s:s,s:i,s:s,s:o}", "name", name, "version", 1, "description", description != NULL ? description : "",
                          "inputs", inputs);
    return json_pack("{s:o}", "1", v);
}

json_t *ag_upstream_documentation_from(const json_t *reply)
{
    json_t *doc = json_object_get(reply, "documentation");
    if (json_is_object(doc))
        return json_deep_copy(doc);
    json_t *out = json_object();
    json_t *paths = json_object_get(reply, "paths");
    const char *path;
    json_t *methods;
    json_object_foreach(paths, path, methods)
    {
        /* automatic routes are "/<action>"; hand-written routes ("/users/{id}") name no action by themselves */
        if (path[0] != '/' || !ag_upstream_valid_name(path + 1) || json_object_get(out, path + 1) != NULL)
            continue;
        const char *method;
        json_t *op, *chosen = NULL;
        json_object_foreach(methods, method, op)
        {
            if (chosen == NULL || strcmp(method, "post") == 0)
                chosen = op;
        }
        if (!json_is_object(chosen))
            continue;
        json_t *inputs = json_object();
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(chosen, "parameters"), i, p)
        {
            const char *pname = json_string_value(json_object_get(p, "name"));
            if (pname == NULL)
                continue;
            json_t *in = json_pack("{s:b}", "required", json_is_true(json_object_get(p, "required")));
            json_t *def = json_object_get(p, "default");
            if (def != NULL && !json_is_null(def))
                json_object_set(in, "default", def);
            json_object_set_new(inputs, pname, in);
        }
        json_object_set_new(out, path + 1, doc_entry(path + 1, json_string_value(json_object_get(chosen, "summary")), inputs));
    }
    return out;
}

/* --- node lifecycle --- */

int ag_upstream_init(ag_server_t *s, char *errbuf, size_t errlen)
{
    const ag_config_t *cfg = s->config;
    size_t n = ag_config_list_len(cfg->upstream.urls);
    if (n == 0)
        return 0;
    ag_upstream_t *up = calloc(1, sizeof(*up));
    if (up == NULL || (up->bases = calloc(n, sizeof(*up->bases))) == NULL) {
        free(up);
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    up->server = s;
    h2o_linklist_init_anchor(&up->calls);
    for (size_t i = 0; i < n; i++) {
        base_t *b = &up->bases[i];
        if (ag_url_parse(cfg->upstream.urls[i], &b->parsed) != 0) {
            snprintf(errbuf, errlen, "upstream.urls: not http://host[:port][/path]: %s", cfg->upstream.urls[i]);
            for (size_t j = 0; j < i; j++) {
                h2o_socketpool_dispose(&up->bases[j].pool);
                free(up->bases[j].url);
            }
            free(up->bases);
            free(up);
            return AG_ECONFIG;
        }
        b->url = strdup(cfg->upstream.urls[i]);
        int v6 = strchr(b->parsed.host, ':') != NULL;
        snprintf(b->hostport, sizeof(b->hostport), "%s%s%s:%u", v6 ? "[" : "", b->parsed.host, v6 ? "]" : "", b->parsed.port);
        h2o_socketpool_init_by_hostport(&b->pool, h2o_iovec_init(b->parsed.host, strlen(b->parsed.host)), b->parsed.port, 0,
                                        (size_t)cfg->upstream.maxInFlight);
        /* always: h2o 2.2.5's pool reads the loop this sets on every connect (with keepAlive 0 nothing is pooled, as
         * every request says Connection: close) */
        h2o_socketpool_set_timeout(&b->pool, s->loop, cfg->upstream.keepAlive > 0 ? (uint64_t)cfg->upstream.keepAlive : 1);
    }
    up->num_bases = n;
    h2o_timeout_init(s->loop, &up->io_timeout, (uint64_t)cfg->upstream.timeout);
    h2o_timeout_init(s->loop, &up->deadline, (uint64_t)cfg->upstream.timeout);
    h2o_timeout_init(s->loop, &up->zero, 0);
    up->client_ctx.loop = s->loop;
    /* names are resolved by h2o's resolver threads, answering through the context's queue (ready once serving) */
    up->client_ctx.getaddr_receiver = &s->ctx.receivers.hostinfo_getaddr;
    up->client_ctx.io_timeout = &up->io_timeout;
    s->upstream = up;
    ag_log(AG_LOG_INFO, "upstream", NULL, "%zu upstream base URL%s, first %s", n, n == 1 ? "" : "s", up->bases[0].url);
    return 0;
}

void ag_upstream_dispose(ag_server_t *s)
{
    ag_upstream_t *up = s->upstream;
    if (up == NULL)
        return;
    while (!h2o_linklist_is_empty(&up->calls))
        ag_upstream_cancel(H2O_STRUCT_FROM_MEMBER(ag_upstream_call_t, link, up->calls.next));
    for (size_t i = 0; i < up->num_bases; i++) {
        h2o_socketpool_dispose(&up->bases[i].pool);
        free(up->bases[i].url);
    }
    h2o_timeout_dispose(s->loop, &up->io_timeout);
    h2o_timeout_dispose(s->loop, &up->deadline);
    h2o_timeout_dispose(s->loop, &up->zero);
    free(up->bases);
    free(up);
    s->upstream = NULL;
}

const ag_upstream_stats_t *ag_upstream_stats(ag_server_t *s)
{
    static const ag_upstream_stats_t none;
    return s->upstream != NULL ? &s->upstream->stats : &none;
}
