/*
 * The server API (server/serverapi.h). Room calls go through the store, so any node of a cluster answers them for the
 * whole cluster. Calls about connections (push by id, user or fingerprint, disconnect, the node list) run on every
 * node through ag_cluster_call (server/cluster.h): here first, then, unless that settled it, on the other live nodes,
 * whose answers are gathered until all came or serverApi.timeout passed; server/push.c runs them on each node.
 * Answers that wait keep their request through a sentinel in the request's pool: when the client goes first, the
 * store's answer finds no request and is dropped, and a call to the nodes is cancelled.
 */
#include "serverapi.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include "cluster.h"
#include "conn.h"
#include "http.h"
#include "push.h"
#include "rooms.h"

#define JSON_TYPE "application/json; charset=utf-8"

typedef struct {
    h2o_req_t *req; /* NULL once the request is gone */
    int store_done; /* the store answered */
    char *room;
    json_t *body;
    char op;
} pending_t;

typedef struct {
    pending_t *p;
} sentinel_t;

/* The calls modules added: a bounded table, since registration is open to any module. */
#define EXT_MAX 256
#define EXT_NAME_MAX 64

typedef struct {
    ag_api_handler_fn fn;
    void *data;
} ext_t;

struct st_ag_serverapi_t {
    ag_map_t calls; /* name -> ext_t* */
};

static const char *const builtin_calls[] = {"publish", "push", "disconnect", "members", "rooms", "nodes"};

static void respond_json(h2o_req_t *req, int status, json_t *obj)
{
    static const char *const reasons[] = {"OK",    "Bad Request", "Unauthorized",   "Not Found",
                                          "Error", "Unavailable", "Gateway Timeout"};
    const char *reason = status == 200   ? reasons[0]
                         : status == 400 ? reasons[1]
                         : status == 401 ? reasons[2]
                         : status == 404 ? reasons[3]
                         : status == 503 ? reasons[5]
                         : status == 504 ? reasons[6]
                                         : reasons[4];
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
    const char *out = text != NULL ? text : "{\"error\":\"out of memory\"}";
    ag_http_respond(req, text != NULL ? status : 500, reason, JSON_TYPE, out, strlen(out));
    free(text);
    json_decref(obj);
}

static void respond_error(h2o_req_t *req, int status, const char *text)
{
    respond_json(req, status, json_pack("{s:s}", "error", text));
}

/* Both sides hashed first, so the comparison takes the same time whatever the lengths. */
static int key_ok(const ag_server_t *s, h2o_req_t *req)
{
    const char *key = s->config->serverApi.key;
    size_t len = 0;
    const char *given = ag_http_header(req, "x-api-key", &len);
    if (given == NULL) {
        const char *auth = ag_http_header(req, "authorization", &len);
        if (auth == NULL || len < 7 || strncasecmp(auth, "Bearer ", 7) != 0)
            return 0;
        given = auth + 7;
        len -= 7;
    }
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)given, len, a);
    SHA256((const unsigned char *)key, strlen(key), b);
    return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}

static void pending_free(pending_t *p)
{
    free(p->room);
    json_decref(p->body);
    free(p);
}

static void sentinel_dispose(void *v)
{
    sentinel_t *sn = v;
    sn->p->req = NULL;
    if (sn->p->store_done)
        pending_free(sn->p);
}

/* The store's answer to room_exists or members. */
static void on_store(void *data, const char *err, json_t *result)
{
    pending_t *p = data;
    p->store_done = 1;
    h2o_req_t *req = p->req;
    if (req == NULL) {
        pending_free(p);
        return;
    }
    ag_server_t *s = ag_http_server(req);
    if (p->op == 'm') {
        if (err != NULL || !json_is_object(result)) {
            respond_error(req, 404, "room not found");
            return;
        }
        json_t *ids = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(result, k, v) json_array_append_new(ids, json_string(k));
        respond_json(req, 200,
                     json_pack("{s:s,s:o,s:I}", "room", p->room, "members", ids, "count", (json_int_t)json_object_size(result)));
        return;
    }
    if (err != NULL || !json_is_true(result)) {
        respond_error(req, 404, "room not found");
        return;
    }
    /* publish */
    json_t *message = json_object_get(p->body, "message");
    json_t *payload = json_object_get(p->body, "data");
    int ret =
        json_is_string(message) ? ag_room_broadcast(s, p->room, json_string_value(message)) : ag_push_room(s, p->room, payload);
    if (ret != 0)
        respond_error(req, 400, ag_strerror(ret));
    else
        respond_json(req, 200, json_pack("{s:b}", "ok", 1));
}

static void wait_store(h2o_req_t *req, char op, const char *room, json_t *body)
{
    ag_server_t *s = ag_http_server(req);
    pending_t *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->room = strdup(room)) == NULL) {
        free(p);
        respond_error(req, 500, "out of memory");
        return;
    }
    p->req = req;
    p->op = op;
    p->body = json_incref(body);
    sentinel_t *sn = h2o_mem_alloc_shared(&req->pool, sizeof(*sn), sentinel_dispose);
    sn->p = p;
    if (op == 'm')
        s->store->ops->members(s->store, room, on_store, p);
    else
        s->store->ops->room_exists(s->store, room, on_store, p);
}

static void on_rooms(void *data, const char *err, json_t *result)
{
    pending_t *p = data;
    p->store_done = 1;
    if (p->req == NULL) {
        pending_free(p);
        return;
    }
    if (err != NULL)
        respond_error(p->req, 500, err);
    else
        respond_json(p->req, 200,
                     json_pack("{s:O,s:I}", "rooms", json_is_array(result) ? result : json_array(), "count",
                               (json_int_t)json_array_size(result)));
}

/* A call to every node (cluster.h) while its request waits; lives in the request's pool, whose release cancels it. */
typedef struct {
    h2o_req_t *req;
    ag_cluster_call_t *call; /* NULL once done ran */
    char op;                 /* 'p' push to a connection, 'm' to many (user, fingerprint), 'd' disconnect, 'n' nodes */
} called_t;

static void called_dispose(void *v)
{
    called_t *w = v;
    ag_cluster_call_cancel(w->call);
}

static int answer_found(void *data, const json_t *answer)
{
    (void)data;
    return json_is_true(json_object_get(answer, "found"));
}

/* The nodes the registry listed that did not answer (by the deadline). */
static size_t count_silent(const json_t *nodes, const json_t *answers)
{
    size_t i, n = 0;
    json_t *e;
    json_array_foreach(nodes, i, e) n += json_object_get(answers, json_string_value(json_object_get(e, "id"))) == NULL;
    return n;
}

static void respond_silent(h2o_req_t *req, size_t silent, size_t listed, const char *what, json_t *extra)
{
    char text[160];
    snprintf(text, sizeof(text), "%s: %zu of %zu nodes did not answer in time", what, silent, listed);
    json_t *obj = extra != NULL ? extra : json_object();
    json_object_set_new(obj, "error", json_string(text));
    respond_json(req, 504, obj);
}

static void respond_nodes(h2o_req_t *req, const json_t *nodes, const json_t *answers)
{
    json_t *list = json_array();
    json_int_t total = 0;
    size_t i;
    json_t *e;
    json_array_foreach(nodes, i, e)
    {
        const char *id = json_string_value(json_object_get(e, "id"));
        json_t *n = json_object_get(json_object_get(answers, id), "connections");
        json_t *entry = json_pack("{s:s,s:O}", "id", id, "connections", json_is_integer(n) ? n : json_null());
        const char *address = json_string_value(json_object_get(e, "address"));
        if (entry != NULL && address != NULL && address[0] != '\0')
            json_object_set_new(entry, "address", json_string(address));
        json_array_append_new(list, entry);
        total += json_integer_value(n);
    }
    respond_json(req, 200, json_pack("{s:o,s:I}", "nodes", list, "connections", total));
}

static void on_called(void *data, const json_t *nodes, const json_t *answers, const char *err)
{
    called_t *w = data;
    h2o_req_t *req = w->req;
    w->call = NULL;
    if (answers == NULL) {
        respond_error(req, 500, err);
        return;
    }
    size_t silent = count_silent(nodes, answers), listed = json_array_size(nodes);
    char text[200];
    if (w->op == 'p' || w->op == 'd') {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)answers, k, v)
        {
            if (!answer_found(NULL, v))
                continue;
            const char *error = json_string_value(json_object_get(v, "error"));
            if (error != NULL)
                respond_error(req, 400, error);
            else
                respond_json(req, 200, json_pack("{s:b}", "ok", 1));
            return;
        }
    }
    if (err != NULL) {
        snprintf(text, sizeof(text), "the other nodes cannot be asked: %s", err);
        respond_error(req, 503, text);
    } else if (w->op == 'n') {
        respond_nodes(req, nodes, answers);
    } else if (w->op == 'm') {
        json_int_t count = 0, skipped = 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)answers, k, v)
        {
            count += json_integer_value(json_object_get(v, "count"));
            skipped += json_integer_value(json_object_get(v, "skipped"));
        }
        json_t *obj = json_pack("{s:b,s:I}", "ok", silent == 0, "count", count);
        if (skipped > 0)
            json_object_set_new(obj, "skipped", json_integer(skipped));
        if (silent > 0)
            respond_silent(req, silent, listed, "pushed where it could", obj);
        else
            respond_json(req, 200, obj);
    } else if (silent > 0) {
        respond_silent(req, silent, listed, "connection not found on the nodes that answered", NULL);
    } else {
        respond_error(req, 404, "connection not found");
    }
}

static void call_nodes(h2o_req_t *req, char op, json_t *call)
{
    called_t *w = h2o_mem_alloc_shared(&req->pool, sizeof(*w), called_dispose);
    *w = (called_t){.req = req, .op = op};
    if (call == NULL) {
        respond_error(req, 500, "out of memory");
        return;
    }
    ag_cluster_call_t *k = ag_cluster_call(ag_http_server(req), call, op == 'p' || op == 'd' ? answer_found : NULL, on_called, w);
    if (k != NULL) /* else on_called ran already */
        w->call = k;
    json_decref(call);
}

/* A field that must be a non-empty string, or NULL after answering 400. */
static const char *need_str(h2o_req_t *req, json_t *body, const char *name)
{
    const char *v = json_string_value(json_object_get(body, name));
    if (v == NULL || v[0] == '\0') {
        char text[96];
        snprintf(text, sizeof(text), "\"%s\" must be a non-empty string", name);
        respond_error(req, 400, text);
        return NULL;
    }
    return v;
}

static void call_ext(h2o_req_t *req, const char *call, size_t call_len, json_t *body)
{
    ag_server_t *s = ag_http_server(req);
    char name[EXT_NAME_MAX + 1];
    ext_t *e = NULL;
    if (s->serverapi != NULL && call_len <= EXT_NAME_MAX) {
        memcpy(name, call, call_len);
        name[call_len] = '\0';
        e = ag_map_get(&s->serverapi->calls, name);
    }
    if (e == NULL) {
        respond_error(req, 404, "no such call (publish, push, disconnect, members, rooms, nodes, or one a module added)");
        return;
    }
    json_t *reply = NULL;
    int status = e->fn(s, body, &reply, e->data);
    if (status < 200 || status > 599)
        status = 500;
    if (reply == NULL)
        reply = status == 200 ? json_object() : json_pack("{s:s}", "error", "failed");
    else if (!json_is_object(reply)) {
        json_decref(reply);
        status = 500;
        reply = json_pack("{s:s}", "error", "the call answered something other than an object");
    }
    respond_json(req, status, reply);
}

int ag_api_register(ag_server_t *s, const char *name, ag_api_handler_fn fn, void *data)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (fn == NULL || len == 0 || len > EXT_NAME_MAX ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != len)
        return AG_EINVAL;
    for (size_t i = 0; i < sizeof(builtin_calls) / sizeof(builtin_calls[0]); i++)
        if (strcmp(name, builtin_calls[i]) == 0)
            return AG_EEXIST;
    if (s->serverapi == NULL) {
        if ((s->serverapi = calloc(1, sizeof(*s->serverapi))) == NULL)
            return AG_ENOMEM;
        ag_map_init(&s->serverapi->calls);
    }
    if (ag_map_get(&s->serverapi->calls, name) != NULL)
        return AG_EEXIST;
    if (s->serverapi->calls.size >= EXT_MAX)
        return AG_EBUSY;
    ext_t *e = malloc(sizeof(*e));
    if (e == NULL)
        return AG_ENOMEM;
    e->fn = fn;
    e->data = data;
    if (ag_map_set(&s->serverapi->calls, name, e) != AG_OK) {
        free(e);
        return AG_ENOMEM;
    }
    return AG_OK;
}

void ag_serverapi_dispose(ag_server_t *s)
{
    if (s->serverapi == NULL)
        return;
    for (size_t i = 0; i < s->serverapi->calls.capacity; i++) {
        ag_map_entry_t *en = &s->serverapi->calls.entries[i];
        if (en->key != NULL && en->value != NULL)
            free(en->value);
    }
    ag_map_dispose(&s->serverapi->calls);
    free(s->serverapi);
    s->serverapi = NULL;
}

static void do_call(h2o_req_t *req, const char *call, size_t call_len, json_t *body)
{
    ag_server_t *s = ag_http_server(req);
    const char *room, *id;
    if (h2o_memis(call, call_len, H2O_STRLIT("publish"))) {
        if ((room = need_str(req, body, "room")) == NULL)
            return;
        json_t *m = json_object_get(body, "message"), *d = json_object_get(body, "data");
        if ((m != NULL) == (d != NULL) || (m != NULL && !json_is_string(m)) || (d != NULL && !json_is_object(d))) {
            respond_error(req, 400, "give either \"message\" (a string, said from \"0\") or \"data\" (an object)");
            return;
        }
        wait_store(req, 'p', room, body);
    } else if (h2o_memis(call, call_len, H2O_STRLIT("push"))) {
        static const char *const to[] = {"connectionId", "user", "fingerprint"};
        size_t given = 0, which = 0;
        for (size_t i = 0; i < 3; i++)
            if (json_object_get(body, to[i]) != NULL) {
                given++;
                which = i;
            }
        if (given != 1) {
            respond_error(req, 400, "give one of \"connectionId\", \"user\" or \"fingerprint\"");
            return;
        }
        if ((id = need_str(req, body, to[which])) == NULL)
            return;
        json_t *d = json_object_get(body, "data");
        if (!json_is_object(d)) {
            respond_error(req, 400, "\"data\" must be an object");
            return;
        }
        if (json_dumpb(d, NULL, 0, AG_JSON_FLAGS) > ag_conn_max_frame(s)) {
            respond_error(req, 400, ag_strerror(AG_ETOOBIG)); /* before it travels to the other nodes */
            return;
        }
        static const char *const ops[] = {AG_PUSH_OP_PUSH, AG_PUSH_OP_USER, AG_PUSH_OP_FINGERPRINT};
        call_nodes(req, which == 0 ? 'p' : 'm', json_pack("{s:s,s:s,s:O}", "op", ops[which], to[which], id, "data", d));
    } else if (h2o_memis(call, call_len, H2O_STRLIT("disconnect"))) {
        if ((id = need_str(req, body, "connectionId")) == NULL)
            return;
        json_t *rc = json_object_get(body, "reconnect");
        if (rc != NULL && !json_is_boolean(rc)) {
            respond_error(req, 400, "\"reconnect\" must be a boolean");
            return;
        }
        call_nodes(req, 'd',
                   json_pack("{s:s,s:s,s:b}", "op", AG_PUSH_OP_DISCONNECT, "connectionId", id, "reconnect", json_is_true(rc)));
    } else if (h2o_memis(call, call_len, H2O_STRLIT("nodes"))) {
        call_nodes(req, 'n', json_pack("{s:s}", "op", AG_PUSH_OP_COUNT));
    } else if (h2o_memis(call, call_len, H2O_STRLIT("members"))) {
        if ((room = need_str(req, body, "room")) != NULL)
            wait_store(req, 'm', room, body);
    } else if (h2o_memis(call, call_len, H2O_STRLIT("rooms"))) {
        pending_t *p = calloc(1, sizeof(*p));
        if (p == NULL) {
            respond_error(req, 500, "out of memory");
            return;
        }
        p->req = req;
        sentinel_t *sn = h2o_mem_alloc_shared(&req->pool, sizeof(*sn), sentinel_dispose);
        sn->p = p;
        s->store->ops->room_list(s->store, on_rooms, p);
    } else {
        call_ext(req, call, call_len, body);
    }
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    ag_server_t *s = ag_http_server(req);
    const char *prefix = s->config->serverApi.prefix;
    size_t plen = strlen(prefix);
    h2o_iovec_t path = req->path_normalized;
    if (path.len < plen + 2 || path.base[plen] != '/')
        return -1;
    if (!key_ok(s, req)) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
        respond_error(req, 401, "a valid API key is required");
        return 0;
    }
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        respond_error(req, 400, "use POST with a JSON object");
        return 0;
    }
    json_error_t jerr;
    json_t *body = req->entity.base != NULL ? json_loadb(req->entity.base, req->entity.len, 0, &jerr) : json_object();
    if (!json_is_object(body)) {
        char text[200];
        snprintf(text, sizeof(text), "the body must be a JSON object%s%s", body == NULL ? ": " : "", body == NULL ? jerr.text : "");
        respond_error(req, 400, text);
        json_decref(body);
        return 0;
    }
    do_call(req, path.base + plen + 1, path.len - plen - 1, body);
    json_decref(body);
    return 0;
}

int ag_serverapi_register(ag_server_t *s, char *errbuf, size_t errlen)
{
    if (s->config->serverApi.key[0] == '\0')
        return 0;
    h2o_pathconf_t *pc = ag_server_register_path(s, s->config->serverApi.prefix);
    h2o_handler_t *h = pc != NULL ? h2o_create_handler(pc, sizeof(*h)) : NULL;
    if (h == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    h->on_req = on_req;
    return 0;
}
