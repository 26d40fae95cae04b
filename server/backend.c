/*
 * Hooks answered by the backend (server/backend.h). Each call is an upstream call with its own deadline
 * (hooks.timeout, usually shorter than an action's upstream.timeout: a client waits on it before anything else), so
 * the call is tracked here, not only by the upstream.
 */
#include "backend.h"

#include <stdlib.h>
#include <string.h>
#include "actions.h"
#include "conn.h"
#include "http.h"
#include "upstream.h"

struct st_ag_backend_t {
    ag_server_t *server;
    const char *names[AG_HOOK__COUNT]; /* borrowed from the configuration; NULL = not configured */
    h2o_timeout_t deadline, zero;
    h2o_linklist_t calls;
};

struct st_ag_backend_call_t {
    struct st_ag_backend_t *b;
    h2o_linklist_t link;
    ag_upstream_call_t *up; /* NULL once the upstream is done with it */
    h2o_timeout_entry_t deadline, defer;
    const char *deferred_err;
    ag_hook_t hook;
    ag_backend_cb cb;
    void *data;
};

static const char *hook_label(ag_hook_t h)
{
    static const char *const labels[] = {"connect", "disconnect", "roomAdd", "roomLeave", "say"};
    return labels[h];
}

int ag_backend_has(ag_server_t *s, ag_hook_t hook)
{
    return s->backend != NULL && s->backend->names[hook] != NULL;
}

static void call_free(ag_backend_call_t *c)
{
    if (h2o_linklist_is_linked(&c->link))
        h2o_linklist_unlink(&c->link);
    if (h2o_timeout_is_linked(&c->deadline))
        h2o_timeout_unlink(&c->deadline);
    if (h2o_timeout_is_linked(&c->defer))
        h2o_timeout_unlink(&c->defer);
    if (c->up != NULL)
        ag_upstream_cancel(c->up);
    free(c);
}

static void finish(ag_backend_call_t *c, const char *refusal, json_t *reply)
{
    ag_backend_cb cb = c->cb;
    void *data = c->data;
    call_free(c); /* cancels the upstream call unless it is the one answering */
    if (cb != NULL)
        cb(data, refusal, reply);
}

/* The backend failed (unreachable, late, busy): the policy decides. */
static void failed(ag_backend_call_t *c, const char *err)
{
    ag_server_t *s = c->b->server;
    ag_log_limited(AG_LOG_WARN, "hooks", NULL, "the %s hook (%s) failed: %s; %s", hook_label(c->hook), c->b->names[c->hook], err,
                   s->config->hooks.allowOnFailure ? "allowed" : "refused");
    finish(c, s->config->hooks.allowOnFailure ? NULL : err, NULL);
}

static void on_reply(void *data, const char *err, int status, json_t *reply)
{
    (void)status;
    ag_backend_call_t *c = data;
    c->up = NULL;
    if (err != NULL) {
        failed(c, err);
        return;
    }
    /* actionhero's "error": a string, or an Error serialised as {message}; "", null and false are no error */
    json_t *e = json_object_get(reply, "error");
    if (e != NULL && !json_is_null(e) && !json_is_false(e) && !(json_is_string(e) && json_string_length(e) == 0)) {
        const char *text = json_is_string(e) ? json_string_value(e) : json_string_value(json_object_get(e, "message"));
        if (text == NULL)
            text = "refused by the backend";
        /* the client gets it in a close, a handshake error or a reply: kept short, cut on a UTF-8 boundary */
        char cut[AG_BACKEND_MAX_REFUSAL + 1];
        size_t n = strlen(text);
        if (n > AG_BACKEND_MAX_REFUSAL) {
            n = AG_BACKEND_MAX_REFUSAL;
            while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
                n--;
        }
        memcpy(cut, text, n);
        cut[n] = '\0';
        finish(c, cut, reply);
        return;
    }
    finish(c, NULL, reply);
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    ag_backend_call_t *c = H2O_STRUCT_FROM_MEMBER(ag_backend_call_t, deadline, entry);
    failed(c, AG_UPSTREAM_ERR_TIMEOUT);
}

static void on_deferred(h2o_timeout_entry_t *entry)
{
    ag_backend_call_t *c = H2O_STRUCT_FROM_MEMBER(ag_backend_call_t, defer, entry);
    failed(c, c->deferred_err);
}

int ag_backend_ask(ag_server_t *s, ag_hook_t hook, json_t *params, const char *fingerprint, const char *remote_ip, ag_backend_cb cb,
                   void *data, ag_backend_call_t **handle)
{
    struct st_ag_backend_t *b = s->backend;
    ag_backend_call_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        /* the caller cannot tell: treat as the upstream refusing, without an entry to defer with */
        json_decref(params);
        if (handle != NULL)
            *handle = NULL;
        return AG_ENOMEM;
    }
    c->b = b;
    c->hook = hook;
    c->cb = cb;
    c->data = data;
    c->deadline.cb = on_deadline;
    c->defer.cb = on_deferred;
    h2o_linklist_insert(&b->calls, &c->link);
    if (handle != NULL)
        *handle = c;
    ag_upstream_who_t who = {fingerprint, remote_ip};
    int ret = params != NULL ? ag_upstream_call(s, b->names[hook], params, &who, on_reply, c, &c->up) : AG_ENOMEM;
    json_decref(params);
    if (ret != 0) {
        c->up = NULL;
        c->deferred_err = ret == AG_EBUSY     ? AG_UPSTREAM_ERR_BUSY
                          : ret == AG_ETOOBIG ? AG_UPSTREAM_ERR_TOO_LARGE
                                              : AG_UPSTREAM_ERR_UNAVAILABLE;
        h2o_timeout_link(s->loop, &b->zero, &c->defer);
        return 0;
    }
    h2o_timeout_link(s->loop, &b->deadline, &c->deadline);
    return 0;
}

void ag_backend_cancel(ag_backend_call_t *c)
{
    if (c != NULL)
        call_free(c);
}

/* --- what the hooks are told --- */

/* A query string part, URL-decoded ('+' as a space); NULL when it is not UTF-8 afterwards (then left out). */
static json_t *decoded(h2o_req_t *req, const char *p, size_t n)
{
    size_t len;
    char *out = ag_http_urldecode(&req->pool, p, n, 1, &len);
    return out != NULL ? json_stringn(out, len) : NULL;
}

json_t *ag_backend_handshake_of(ag_server_t *s, h2o_req_t *req)
{
    if (!ag_backend_has(s, AG_HOOK_CONNECT))
        return NULL;
    json_t *query = json_object();
    if (req->query_at != SIZE_MAX) {
        const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
        while (p < end) {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            if (amp == NULL)
                amp = end;
            const char *eq = memchr(p, '=', (size_t)(amp - p));
            json_t *k = decoded(req, p, (size_t)((eq != NULL ? eq : amp) - p));
            json_t *v = eq != NULL ? decoded(req, eq + 1, (size_t)(amp - eq - 1)) : json_string("");
            if (k != NULL && v != NULL && json_string_length(k) != 0)
                json_object_set(query, json_string_value(k), v);
            json_decref(k);
            json_decref(v);
            p = amp + 1;
        }
    }
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, -1);
    json_t *cookies = i >= 0 ? json_stringn(req->headers.entries[i].value.base, req->headers.entries[i].value.len) : NULL;
    return json_pack("{s:o,s:o}", "query", query, "cookies", cookies != NULL ? cookies : json_string(""));
}

json_t *ag_backend_conn_params(const ag_conn_t *c)
{
    json_t *p = json_pack("{s:s,s:s?,s:s,s:s}", "connectionId", c->id, "fingerprint",
                          c->fingerprint != NULL && c->fingerprint[0] != '\0' ? c->fingerprint : c->id, "remoteIP", c->remote_ip,
                          "transport", c->transport_name != NULL ? c->transport_name : "");
    if (p == NULL) /* a fingerprint that is not UTF-8 */
        p = json_pack("{s:s,s:s,s:s,s:s}", "connectionId", c->id, "fingerprint", c->id, "remoteIP", c->remote_ip, "transport",
                      c->transport_name != NULL ? c->transport_name : "");
    if (p != NULL && ag_conn_data(c) != NULL)
        json_object_set(p, "data", c->hook_data);
    if (p != NULL && c->user != NULL)
        json_object_set_new(p, "user", json_string(c->user)); /* NULL (not set) when not UTF-8 */
    if (p != NULL && c->claims != NULL)
        json_object_set(p, "claims", c->claims);
    return p;
}

/* --- lifecycle --- */

int ag_backend_init(ag_server_t *s, char *errbuf, size_t errlen)
{
    const ag_config_t *cfg = s->config;
    const char *names[AG_HOOK__COUNT] = {cfg->hooks.connect, cfg->hooks.disconnect, cfg->hooks.roomAdd, cfg->hooks.roomLeave,
                                         cfg->hooks.say};
    int any = 0;
    for (size_t i = 0; i < AG_HOOK__COUNT; i++)
        any |= names[i][0] != '\0';
    if (!any)
        return 0;
    if (s->upstream == NULL) {
        snprintf(errbuf, errlen, "hooks: a hook is answered by the upstream, but upstream.urls is empty");
        return AG_EINVAL;
    }
    struct st_ag_backend_t *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    b->server = s;
    for (size_t i = 0; i < AG_HOOK__COUNT; i++)
        b->names[i] = names[i][0] != '\0' ? names[i] : NULL;
    h2o_timeout_init(s->loop, &b->deadline, (uint64_t)cfg->hooks.timeout);
    h2o_timeout_init(s->loop, &b->zero, 0);
    h2o_linklist_init_anchor(&b->calls);
    s->backend = b;
    return 0;
}

void ag_backend_stop(ag_server_t *s)
{
    struct st_ag_backend_t *b = s->backend;
    if (b == NULL)
        return;
    while (!h2o_linklist_is_empty(&b->calls)) {
        ag_backend_call_t *c = H2O_STRUCT_FROM_MEMBER(ag_backend_call_t, link, b->calls.next);
        finish(c, AG_ERR_SHUTTING_DOWN, NULL);
    }
}

void ag_backend_dispose(ag_server_t *s)
{
    struct st_ag_backend_t *b = s->backend;
    if (b == NULL)
        return;
    ag_backend_stop(s);
    ag_server_timeout_dispose(s, &b->deadline);
    ag_server_timeout_dispose(s, &b->zero);
    free(b);
    s->backend = NULL;
}
