/*
 * Action registry, param validation, request lifecycle and request timers.
 *
 * Timers: h2o 2.2.5 keeps one h2o_timeout_t per duration, so arbitrary delays (sleepTest's sleepDuration comes from
 * the client) cannot each get their own. Requests with a timer sit in a min-heap; one loop entry is linked on the
 * largest step of a fixed ladder (1 ms … 1 s) that does not pass the earliest deadline, so a 1 s sleep costs one
 * wake-up, not a thousand.
 */
#include "actions.h"

#include <stdlib.h>
#include <string.h>
#include "upstream.h"

static const uint64_t ladder[] = {1, 10, 100, 1000};

/* Deadlines are monotonic nanoseconds: the loop's cached time can be stale when a handler arms a timer, and whole
 * milliseconds would let a timer fire up to 1 ms early. */
#define NLADDER (sizeof(ladder) / sizeof(ladder[0]))

struct st_ag_actions_t {
    ag_server_t *server;
    ag_map_t by_name; /* name -> ag__action_t* */
    h2o_linklist_t pending;
    ag_action_req_t **heap;
    size_t heap_len, heap_cap;
    h2o_timeout_t steps[NLADDER];
    h2o_timeout_entry_t tick;
    int timers_ready;
};

/* --- registry --- */

static void action_free(ag__action_t *a)
{
    for (size_t i = 0; i < a->def.num_inputs; i++) {
        free((char *)a->def.inputs[i].name);
        free((char *)a->def.inputs[i].default_json);
        json_decref(a->defaults[i]);
    }
    free((ag_input_t *)a->def.inputs);
    free(a->defaults);
    free((char *)a->def.name);
    free((char *)a->def.description);
    free(a);
}

static char *dupstr(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

int ag_action_register(ag_server_t *s, const ag_action_def_t *def)
{
    if (def == NULL || def->name == NULL || def->name[0] == '\0' || def->run == NULL)
        return AG_EINVAL;
    ag__action_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return AG_ENOMEM;
    a->def = *def;
    a->def.name = strdup(def->name);
    a->def.description = strdup(def->description != NULL ? def->description : "");
    ag_input_t *inputs = calloc(def->num_inputs + 1, sizeof(*inputs));
    a->defaults = calloc(def->num_inputs + 1, sizeof(*a->defaults));
    a->def.inputs = inputs;
    a->def.num_inputs = 0;
    if (a->def.name == NULL || a->def.description == NULL || inputs == NULL || a->defaults == NULL)
        goto nomem;
    for (size_t i = 0; i < def->num_inputs; i++) {
        inputs[i] = def->inputs[i];
        inputs[i].name = dupstr(def->inputs[i].name);
        inputs[i].default_json = dupstr(def->inputs[i].default_json);
        a->def.num_inputs++;
        if (inputs[i].name == NULL)
            goto nomem;
        if (inputs[i].default_json != NULL &&
            (a->defaults[i] = json_loads(inputs[i].default_json, JSON_DECODE_ANY, NULL)) == NULL) {
            action_free(a);
            return AG_EINVAL;
        }
    }
    ag__action_t *old = ag_map_get(&s->actions->by_name, a->def.name);
    if (ag_map_set(&s->actions->by_name, a->def.name, a) != AG_OK)
        goto nomem;
    if (old != NULL)
        action_free(old);
    return AG_OK;
nomem:
    action_free(a);
    return AG_ENOMEM;
}

static const ag__action_t *action_find(ag_server_t *s, const char *name)
{
    return name != NULL ? ag_map_get(&s->actions->by_name, name) : NULL;
}

json_t *ag__actions_documentation(ag_server_t *s)
{
    json_t *doc = json_object();
    const char *name;
    void *v;
    for (size_t it = 0; ag_map_next(&s->actions->by_name, &it, &name, &v);) {
        const ag__action_t *a = v;
        json_t *inputs = json_object();
        for (size_t i = 0; i < a->def.num_inputs; i++) {
            json_t *in = json_pack("{s:b}", "required", a->def.inputs[i].required);
            if (a->defaults[i] != NULL)
                json_object_set(in, "default", a->defaults[i]);
            json_object_set_new(inputs, a->def.inputs[i].name, in);
        }
        json_t *ver = json_pack("{s:s,s:i,s:s,s:o,s:b}", "name", a->def.name, "version", 1, "description", a->def.description,
                                "inputs", inputs, "blockedWebsocket", a->def.block_websocket);
        json_object_set_new(doc, name, json_pack("{s:o}", "1", ver));
    }
    return doc;
}

/* --- params --- */

static int is_global_param(const char *k)
{
    static const char *globals[] = {"action", "apiVersion", "messageId", "file", "callback"};
    for (size_t i = 0; i < sizeof(globals) / sizeof(globals[0]); i++)
        if (strcmp(k, globals[i]) == 0)
            return 1;
    return 0;
}

static int is_input(const ag__action_t *a, const char *k)
{
    for (size_t i = 0; i < a->def.num_inputs; i++)
        if (strcmp(a->def.inputs[i].name, k) == 0)
            return 1;
    return 0;
}

void ag__params_scrub(const ag__action_t *a, json_t *params)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(params, tmp, k, v)
    {
        if (!is_global_param(k) && !is_input(a, k))
            json_object_del(params, k);
    }
}

/* actionhero's missingParamChecks: undefined, null and "". */
static int is_missing(const json_t *v)
{
    return v == NULL || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0);
}

int ag__params_validate(const ag__action_t *a, json_t *params, char *err, size_t errlen)
{
    for (size_t i = 0; i < a->def.num_inputs; i++) {
        const ag_input_t *in = &a->def.inputs[i];
        json_t *v = json_object_get(params, in->name);
        if (is_missing(v) && a->defaults[i] != NULL)
            json_object_set(params, in->name, a->defaults[i]);
    }
    for (size_t i = 0; i < a->def.num_inputs; i++) {
        const ag_input_t *in = &a->def.inputs[i];
        json_t *v = json_object_get(params, in->name);
        if (v != NULL && in->formatter != NULL) {
            json_t *nv = in->formatter(v);
            if (nv != NULL)
                json_object_set_new(params, in->name, nv);
        }
    }
    for (size_t i = 0; i < a->def.num_inputs; i++) {
        const ag_input_t *in = &a->def.inputs[i];
        json_t *v = json_object_get(params, in->name);
        if (is_missing(v)) {
            if (in->required) {
                snprintf(err, errlen, "%s is a required parameter for this action", in->name);
                return 422;
            }
            continue;
        }
        const char *msg = NULL;
        if (in->validator != NULL && in->validator(v, &msg) != 0) {
            if (msg != NULL)
                snprintf(err, errlen, "%s", msg);
            else
                snprintf(err, errlen, "Input for parameter \"%s\" failed validation!", in->name);
            return 422;
        }
    }
    return 0;
}

/* --- timers --- */

static void heap_swap(ag_action_req_t **h, size_t i, size_t j)
{
    ag_action_req_t *t = h[i];
    h[i] = h[j];
    h[j] = t;
    h[i]->heap_index = i;
    h[j]->heap_index = j;
}

static void heap_up(ag_action_req_t **h, size_t i)
{
    while (i > 0 && h[(i - 1) / 2]->timer_at > h[i]->timer_at) {
        heap_swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(ag_action_req_t **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l]->timer_at < h[m]->timer_at)
            m = l;
        if (r < n && h[r]->timer_at < h[m]->timer_at)
            m = r;
        if (m == i)
            return;
        heap_swap(h, i, m);
        i = m;
    }
}

static void heap_remove(struct st_ag_actions_t *as, ag_action_req_t *r)
{
    size_t i = r->heap_index;
    if (i == SIZE_MAX)
        return;
    r->heap_index = SIZE_MAX;
    as->heap_len--;
    if (i != as->heap_len) {
        as->heap[i] = as->heap[as->heap_len];
        as->heap[i]->heap_index = i;
        heap_down(as->heap, as->heap_len, i);
        heap_up(as->heap, i);
    }
}

static void arm(struct st_ag_actions_t *as)
{
    if (h2o_timeout_is_linked(&as->tick))
        h2o_timeout_unlink(&as->tick);
    if (as->heap_len == 0)
        return;
    uint64_t now = ag_mono_ns(), due = as->heap[0]->timer_at;
    uint64_t wait = due > now ? (due - now) / 1000000 : 0;
    size_t step = 0;
    while (step + 1 < NLADDER && ladder[step + 1] <= wait)
        step++;
    h2o_timeout_link(as->server->loop, &as->steps[step], &as->tick);
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    struct st_ag_actions_t *as = H2O_STRUCT_FROM_MEMBER(struct st_ag_actions_t, tick, entry);
    uint64_t now = ag_mono_ns();
    while (as->heap_len != 0 && as->heap[0]->timer_at <= now) {
        ag_action_req_t *r = as->heap[0];
        heap_remove(as, r);
        void (*cb)(ag_action_req_t *) = r->timer_cb;
        r->timer_cb = NULL;
        cb(r);
    }
    arm(as);
}

void ag_action_after(ag_action_req_t *r, uint64_t ms, void (*cb)(ag_action_req_t *r))
{
    struct st_ag_actions_t *as = r->server->actions;
    heap_remove(as, r);
    if (as->heap_len == as->heap_cap) {
        size_t ncap = as->heap_cap == 0 ? 16 : as->heap_cap * 2;
        ag_action_req_t **n = realloc(as->heap, ncap * sizeof(*n));
        if (n == NULL) {
            ag_action_fail(r, 500, "out of memory");
            return;
        }
        as->heap = n;
        as->heap_cap = ncap;
    }
    r->timer_at = ag_mono_ns() + ms * 1000000;
    r->timer_cb = cb;
    r->heap_index = as->heap_len;
    as->heap[as->heap_len++] = r;
    heap_up(as->heap, r->heap_index);
    arm(as);
}

/* --- requests --- */

static void req_free(ag_action_req_t *r)
{
    struct st_ag_actions_t *as = r->server->actions;
    if (h2o_linklist_is_linked(&r->link)) {
        h2o_linklist_unlink(&r->link);
        r->server->stats.actions_in_progress--;
    }
    if (r->conn != NULL) {
        if (r->conn_prev != NULL)
            r->conn_prev->conn_next = r->conn_next;
        else if (r->conn->requests == r)
            r->conn->requests = r->conn_next;
        if (r->conn_next != NULL)
            r->conn_next->conn_prev = r->conn_prev;
    }
    if (r->heap_index != SIZE_MAX) {
        heap_remove(as, r);
        arm(as);
    }
    if (r->upstream_call != NULL)
        ag_upstream_cancel(r->upstream_call);
    json_decref(r->params);
    json_decref(r->message_id);
    if (r->conn != NULL)
        ag_conn_release(r->conn);
    free(r);
}

static void answer(ag_action_req_t *r, json_t *result, int status, const char *error)
{
    if (r->answered)
        return;
    r->answered = 1;
    /* an upstream action's name is the client's word until the app answered for it (ag_ops_action_done bounds them) */
    const char *name = r->action != NULL ? r->action->def.name
                       : r->upstream     ? json_string_value(json_object_get(r->params, "action"))
                                         : NULL;
    if (r->server->on_action_done != NULL)
        r->server->on_action_done(r->server, name, r->upstream, status, r->started_ms);
    json_t *empty = NULL;
    if (result == NULL)
        result = empty = json_object();
    r->done(r, result, status, error);
    json_decref(empty);
}

static ag_action_req_t *req_new(ag_server_t *s, json_t *params, json_t *message_id, ag_conn_t *conn, ag__action_done_fn done,
                                void *origin)
{
    ag_action_req_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        json_decref(params);
        json_decref(message_id);
        return NULL;
    }
    r->server = s;
    r->params = params;
    r->message_id = message_id;
    r->conn = conn != NULL ? ag_conn_addref(conn) : NULL;
    if (conn != NULL) {
        r->conn_next = conn->requests;
        if (conn->requests != NULL)
            conn->requests->conn_prev = r;
        conn->requests = r;
    }
    r->done = done;
    r->origin = origin;
    r->heap_index = SIZE_MAX;
    r->started_ms = ag_now_ms();
    return r;
}

static void complete(ag_action_req_t *r, json_t *result, int status, const char *error)
{
    answer(r, result, status, error);
    req_free(r);
}

/* --- upstream --- */

static ag_upstream_who_t who_of(const ag_action_req_t *r, const ag__requester_t *who)
{
    ag_upstream_who_t w = {NULL, NULL};
    if (who != NULL) {
        w.fingerprint = who->fingerprint;
        w.remote_ip = who->remote_ip;
    } else if (r->conn != NULL) {
        /* actionhero's socket fingerprint: ?sessionID= of the socket URL, else the connection id */
        w.fingerprint = r->conn->fingerprint != NULL && r->conn->fingerprint[0] != '\0' ? r->conn->fingerprint : r->conn->id;
        w.remote_ip = r->conn->remote_ip;
    }
    return w;
}

/* Starts the call for a pending request; answers it at once when the upstream refuses. */
static void upstream_call(ag_action_req_t *r, const char *name, const json_t *params, const ag__requester_t *who, ag_upstream_cb cb)
{
    h2o_linklist_insert(&r->server->actions->pending, &r->link);
    r->server->stats.actions_in_progress++;
    ag_upstream_who_t w = who_of(r, who);
    /* what the connect hook said about the connection goes with each of its calls, in place of whatever the client
     * put under that name */
    json_t *with_data = NULL;
    json_t *data = r->conn != NULL ? ag__conn_hook_data(r->conn) : NULL;
    if (data != NULL && json_is_object(params) && (with_data = json_copy((json_t *)params)) != NULL) {
        json_object_set(with_data, "connectionData", data);
        params = with_data;
    }
    r->upstream = 1;
    int ret = ag_upstream_call(r->server, name, params, &w, cb, r, &r->upstream_call);
    json_decref(with_data);
    if (ret != 0)
        r->upstream = 0; /* refused here: the app never saw the name */
    if (ret == AG_EINVAL)
        complete(r, NULL, 404, AG_ERR_UNKNOWN_ACTION);
    else if (ret == AG_EBUSY)
        complete(r, NULL, 503, AG_UPSTREAM_ERR_BUSY);
    else if (ret == AG_ETOOBIG)
        complete(r, NULL, 413, AG_UPSTREAM_ERR_TOO_LARGE);
    else if (ret != 0)
        complete(r, NULL, 500, ag_strerror(ret));
}

/* The app's answer as actionhero's own socket server would send it: the action's keys and its error text. The web
 * metadata (serverInformation, requesterInformation) is the app's to give to web clients only. */
static void on_upstream_action(void *data, const char *err, int status, json_t *reply)
{
    ag_action_req_t *r = data;
    r->upstream_call = NULL;
    if (err != NULL) {
        complete(r, NULL, status, err);
        return;
    }
    json_t *res = json_copy(reply);
    if (res == NULL) {
        complete(r, NULL, 500, "out of memory");
        return;
    }
    if (r->conn != NULL) {
        json_object_del(res, "serverInformation");
        json_object_del(res, "requesterInformation");
    }
    json_t *e = json_object_get(res, "error");
    if (json_is_string(e)) {
        char *text = strdup(json_string_value(e));
        json_object_del(res, "error");
        complete(r, res, status >= 400 ? status : 500, text != NULL ? text : "action failed");
        free(text);
    } else {
        complete(r, res, status, NULL);
    }
    json_decref(res);
}

void ag__action_start_as(ag_server_t *s, json_t *params, json_t *message_id, ag_conn_t *conn, const ag__requester_t *who,
                         ag__action_done_fn done, void *origin)
{
    ag_action_req_t *r = req_new(s, params, message_id, conn, done, origin);
    if (r == NULL)
        return;
    if (s->stopping) {
        complete(r, NULL, 503, AG_ERR_SHUTTING_DOWN);
        return;
    }
    const char *name = json_string_value(json_object_get(params, "action"));
    r->action = action_find(s, name);
    if (ag_upstream_routes(s, name, r->action != NULL)) {
        r->action = NULL;
        /* the app scrubs and validates its own params; a JSONP callback would make its answer not JSON */
        json_object_del(params, "callback");
        upstream_call(r, name, params, who, on_upstream_action);
        return;
    }
    if (r->action == NULL) {
        complete(r, NULL, 404, AG_ERR_UNKNOWN_ACTION);
        return;
    }
    if (conn != NULL && r->action->def.block_websocket) {
        complete(r, NULL, 422, AG_ERR_BLOCKED_WEBSOCKET);
        return;
    }
    ag__params_scrub(r->action, params);
    char err[256];
    int status = ag__params_validate(r->action, params, err, sizeof(err));
    if (status != 0) {
        complete(r, NULL, status, err);
        return;
    }
    h2o_linklist_insert(&s->actions->pending, &r->link);
    s->stats.actions_in_progress++;
    r->action->def.run(r, r->action->def.data);
}

void ag__action_start(ag_server_t *s, json_t *params, json_t *message_id, ag_conn_t *conn, ag__action_done_fn done, void *origin)
{
    ag__action_start_as(s, params, message_id, conn, NULL, done, origin);
}

/* --- the documentation verb --- */

json_t *ag__verb_reply(const char *err, json_t *data, const json_t *message_id)
{
    json_t *r = json_object();
    if (err != NULL) {
        size_t n = strlen(err) + 8;
        char *text = malloc(n);
        if (text != NULL)
            snprintf(text, n, "Error: %s", err);
        json_object_set_new(r, "status", json_string(text != NULL ? text : "Error"));
        json_object_set_new(r, "error", json_string(text != NULL ? text : "Error"));
        free(text);
    } else {
        json_object_set_new(r, "status", json_string("OK"));
    }
    json_object_set_new(r, "context", json_string("response"));
    if (data != NULL)
        json_object_set(r, "data", data);
    json_object_set(r, "messageId", (json_t *)message_id);
    return r;
}

static void docs_done(ag_action_req_t *r, json_t *result, int status, const char *error)
{
    (void)status;
    ag_conn_t *c = r->conn;
    if (c->pending_actions > 0)
        c->pending_actions--;
    if (ag_conn_is_closed(c))
        return;
    json_t *empty = json_object();
    json_t *reply = ag__verb_reply(error, error != NULL ? empty : result, r->message_id);
    ag_conn_send_json(c, reply);
    json_decref(reply);
    json_decref(empty);
}

/* Local actions that stay local, and the app's actions that are routed to it. */
static json_t *merged_documentation(ag_server_t *s, const json_t *upstream_docs)
{
    json_t *out = json_object();
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)upstream_docs, name, v)
    {
        if (ag_upstream_routes(s, name, action_find(s, name) != NULL))
            json_object_set(out, name, v);
    }
    json_t *local = ag__actions_documentation(s);
    json_object_foreach(local, name, v)
    {
        if (!ag_upstream_routes(s, name, 1))
            json_object_set(out, name, v);
    }
    json_decref(local);
    return out;
}

static void on_upstream_docs(void *data, const char *err, int status, json_t *reply)
{
    ag_action_req_t *r = data;
    r->upstream_call = NULL;
    /* an app without that action still has its actions served: they are just not listed */
    const char *e = err != NULL ? err : status == 404 ? NULL : json_string_value(json_object_get(reply, "error"));
    if (e != NULL) {
        complete(r, NULL, status, e);
        return;
    }
    json_t *up = err == NULL && status != 404 ? ag_upstream_documentation_from(reply) : json_object();
    json_t *docs = merged_documentation(r->server, up);
    json_decref(up);
    complete(r, docs, 200, NULL);
    json_decref(docs);
}

void ag__documentation_verb(ag_conn_t *c, const json_t *message_id)
{
    ag_server_t *s = c->server;
    const char *doc_action = s->config->upstream.documentationAction;
    if (s->upstream == NULL || doc_action[0] == '\0') {
        json_t *d = merged_documentation(s, NULL);
        json_t *reply = ag__verb_reply(NULL, d, message_id);
        ag_conn_send_json(c, reply);
        json_decref(reply);
        json_decref(d);
        return;
    }
    /* one upstream call per verb: bounded per connection like actions */
    if (c->pending_actions + 1 > (uint32_t)s->config->general.simultaneousActions) {
        json_t *empty = json_object();
        json_t *reply = ag__verb_reply(AG_ERR_TOO_MANY_PENDING, empty, message_id);
        ag_conn_send_json(c, reply);
        json_decref(reply);
        json_decref(empty);
        return;
    }
    ag_action_req_t *r = req_new(s, json_object(), json_incref((json_t *)message_id), c, docs_done, NULL);
    if (r == NULL)
        return;
    c->pending_actions++;
    if (s->stopping) {
        complete(r, NULL, 503, AG_ERR_SHUTTING_DOWN);
        return;
    }
    upstream_call(r, doc_action, r->params, NULL, on_upstream_docs);
}

json_t *ag_action_params(ag_action_req_t *r)
{
    return r->params;
}

const char *ag_action_param_str(ag_action_req_t *r, const char *name, const char *fallback)
{
    const char *v = json_string_value(json_object_get(r->params, name));
    return v != NULL ? v : fallback;
}

long long ag_action_param_int(ag_action_req_t *r, const char *name, long long fallback)
{
    json_t *v = json_object_get(r->params, name);
    if (json_is_integer(v))
        return json_integer_value(v);
    long long n;
    if (json_is_real(v) && ag_double_to_ll(json_real_value(v), &n) == 0)
        return n;
    return fallback;
}

ag_server_t *ag_action_server(ag_action_req_t *r)
{
    return r->server;
}

ag_conn_t *ag_action_conn(ag_action_req_t *r)
{
    return r->conn != NULL && !ag_conn_is_closed(r->conn) ? r->conn : NULL;
}

void ag_action_succeed(ag_action_req_t *r, json_t *result)
{
    if (result != NULL && !json_is_object(result)) {
        json_decref(result);
        result = NULL;
    }
    answer(r, result, 200, NULL);
    json_decref(result);
    req_free(r);
}

void ag_action_fail(ag_action_req_t *r, int status, const char *message)
{
    answer(r, NULL, status >= 100 && status <= 599 ? status : 500, message != NULL ? message : "action failed");
    req_free(r);
}

/* --- node lifecycle --- */

int ag__actions_init(ag_server_t *s)
{
    struct st_ag_actions_t *as = calloc(1, sizeof(*as));
    if (as == NULL)
        return AG_ENOMEM;
    as->server = s;
    ag_map_init(&as->by_name);
    h2o_linklist_init_anchor(&as->pending);
    for (size_t i = 0; i < NLADDER; i++)
        h2o_timeout_init(s->loop, &as->steps[i], ladder[i]);
    as->tick.cb = on_tick;
    s->actions = as;
    return ag__builtin_actions_register(s);
}

void ag__actions_stop(ag_server_t *s)
{
    struct st_ag_actions_t *as = s->actions;
    if (as == NULL)
        return;
    for (h2o_linklist_t *l = as->pending.next; l != &as->pending; l = l->next) {
        ag_action_req_t *r = H2O_STRUCT_FROM_MEMBER(ag_action_req_t, link, l);
        answer(r, NULL, 503, AG_ERR_SHUTTING_DOWN);
    }
}

void ag__actions_conn_closed(ag_conn_t *c)
{
    ag_action_req_t *next;
    for (ag_action_req_t *r = c->requests; r != NULL; r = next) {
        next = r->conn_next;
        if (r->heap_index != SIZE_MAX || r->upstream_call != NULL)
            complete(r, NULL, 503, "the connection closed");
    }
}

void ag__actions_dispose(ag_server_t *s)
{
    struct st_ag_actions_t *as = s->actions;
    if (as == NULL)
        return;
    /* Handlers that never completed: their requests go now, timers included. */
    while (!h2o_linklist_is_empty(&as->pending)) {
        ag_action_req_t *r = H2O_STRUCT_FROM_MEMBER(ag_action_req_t, link, as->pending.next);
        answer(r, NULL, 503, AG_ERR_SHUTTING_DOWN);
        req_free(r);
    }
    if (h2o_timeout_is_linked(&as->tick))
        h2o_timeout_unlink(&as->tick);
    for (size_t i = 0; i < NLADDER; i++)
        h2o_timeout_dispose(s->loop, &as->steps[i]);
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&as->by_name, &it, &k, &v);)
        action_free(v);
    ag_map_dispose(&as->by_name);
    free(as->heap);
    free(as);
    s->actions = NULL;
}
