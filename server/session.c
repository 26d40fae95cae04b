/*
 * The session layer: actionhero 29's message handling over an ag_conn_t (PROTOCOL.md §2): the welcome frame, the
 * verbs, actions with messageId matching and the pending limit, and the node lifecycle of the session modules.
 */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "actions.h"
#include "backend.h"
#include "files.h"
#include "rooms.h"
#include "node.h"
#include "json.h"
#include "resume.h"
#include "token.h"

/* --- codec helpers --- */

int ag__js_truthy(const json_t *v)
{
    if (v == NULL || json_is_null(v) || json_is_false(v))
        return 0;
    if (json_is_string(v))
        return json_string_length(v) != 0;
    if (json_is_integer(v))
        return json_integer_value(v) != 0;
    if (json_is_real(v))
        return json_real_value(v) != 0;
    return 1;
}

static void sb_add(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*buf == NULL && *cap != 0)
        return; /* an earlier allocation failed */
    if (*len + n + 1 > *cap) {
        size_t ncap = (*cap == 0 ? 64 : *cap);
        while (ncap < *len + n + 1)
            ncap *= 2;
        char *nb = realloc(*buf, ncap);
        if (nb == NULL) {
            free(*buf);
            *buf = NULL;
            *cap = 1;
            return;
        }
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static void js_string_into(const json_t *v, char **buf, size_t *len, size_t *cap, int depth)
{
    char tmp[40];
    switch (json_typeof(v)) {
    case JSON_STRING:
        sb_add(buf, len, cap, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        snprintf(tmp, sizeof(tmp), "%lld", (long long)json_integer_value(v));
        sb_add(buf, len, cap, tmp, strlen(tmp));
        break;
    case JSON_REAL:
        ag_format_double(json_real_value(v), tmp);
        sb_add(buf, len, cap, tmp, strlen(tmp));
        break;
    case JSON_TRUE:
        sb_add(buf, len, cap, "true", 4);
        break;
    case JSON_FALSE:
        sb_add(buf, len, cap, "false", 5);
        break;
    case JSON_NULL:
        break; /* Array#join turns null into "" */
    case JSON_OBJECT:
        sb_add(buf, len, cap, "[object Object]", 15);
        break;
    case JSON_ARRAY:
        for (size_t i = 0; depth < 64 && i < json_array_size(v); i++) {
            if (i != 0)
                sb_add(buf, len, cap, ",", 1);
            js_string_into(json_array_get(v, i), buf, len, cap, depth + 1);
        }
        break;
    }
}

char *ag__js_string(const json_t *v)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    sb_add(&buf, &len, &cap, "", 0);
    if (v != NULL)
        js_string_into(v, &buf, &len, &cap, 0);
    return buf;
}

json_t *ag__message_id(const json_t *msg)
{
    json_t *id = json_object_get(msg, "messageId");
    if (ag__js_truthy(id))
        return json_incref(id);
    char uuid[37];
    ag_uuid4(uuid);
    return json_string(uuid);
}

json_t *ag__verb_words(const json_t *rest)
{
    json_t *words = json_array();
    json_t *room = json_object_get(rest, "room");
    if (ag__js_truthy(room))
        json_array_append(words, room);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)rest, k, v)
    {
        if (strcmp(k, "room") != 0)
            json_array_append(words, v);
    }
    return words;
}

char *ag__join_words(const json_t *words, size_t from)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    sb_add(&buf, &len, &cap, "", 0);
    for (size_t i = from; i < json_array_size(words); i++) {
        if (i != from)
            sb_add(&buf, &len, &cap, " ", 1);
        js_string_into(json_array_get(words, i), &buf, &len, &cap, 0);
    }
    return buf;
}

json_t *ag__reply(json_t *payload, const json_t *message_id)
{
    json_object_set_new(payload, "context", json_string("response"));
    json_object_set(payload, "messageId", (json_t *)message_id);
    return payload;
}

/* --- replies --- */

/* What a reply that no queue could take becomes: the same kind of error, small. A verb's error keeps its text and
 * loses its data (the request, which may be what was too big); anything else says the response was too big. */
static json_t *too_big_reply(ag_conn_t *c, const json_t *reply)
{
    char text[80];
    snprintf(text, sizeof(text), "%s (at most %zu bytes)", AG_ERR_RESPONSE_TOO_BIG, ag_conn_max_frame(c->server));
    const json_t *message_id = json_object_get(reply, "messageId");
    const char *status = json_string_value(json_object_get(reply, "status"));
    if (status == NULL) {
        json_t *e = json_pack("{s:s}", "error", text);
        return e != NULL ? ag__reply(e, message_id != NULL ? message_id : json_null()) : NULL;
    }
    if (strncmp(status, "Error", 5) == 0) {
        json_t *e = json_deep_copy(reply);
        json_object_del(e, "data");
        return e;
    }
    return ag__verb_reply(text, NULL, message_id != NULL ? message_id : json_null());
}

/* Sends a reply (taking obj). Replies are encoded here, once, so that one over the per-message bound can be swapped
 * for an error before it reaches the queue. */
static void send_owned(ag_conn_t *c, json_t *obj)
{
    if (obj == NULL || ag_conn_is_closed(c)) {
        json_decref(obj);
        return;
    }
    ag_frame_t *f = ag_frame_from_json(obj);
    if (f != NULL && f->len > ag_conn_max_frame(c->server)) {
        /* debug only: any client can ask for such replies as often as it likes */
        ag_debug("session", c->id, "a reply of %zu bytes is over the limit of %zu: answered with an error", f->len,
                 ag_conn_max_frame(c->server));
        ag_frame_release(f);
        json_t *small = too_big_reply(c, obj);
        f = small != NULL ? ag_frame_from_json(small) : NULL;
        json_decref(small);
    }
    if (f != NULL) {
        /* AG_ETOOBIG for a messageId that alone is too big: logged there */
        char *key = ag_conn_is_resumable(c) ? ag__resume_key(json_object_get(obj, "messageId")) : NULL;
        ag_conn_send_reply(c, f, key);
        free(key);
    }
    ag_frame_release(f);
    json_decref(obj);
}

static void verb_error(ag_conn_t *c, const char *err, json_t *data, const json_t *message_id)
{
    send_owned(c, ag__verb_reply(err, data, message_id));
}

/* The state of a verb answered later (the store may be asynchronous). */
typedef struct {
    json_t *message_id;
    json_t *rest; /* the request minus event, messageId and room: an error's data */
} verb_ctx_t;

static verb_ctx_t *verb_ctx(const json_t *message_id, const json_t *rest)
{
    verb_ctx_t *v = malloc(sizeof(*v));
    if (v == NULL)
        return NULL;
    v->message_id = json_incref((json_t *)message_id);
    v->rest = json_incref((json_t *)rest);
    return v;
}

static void verb_ctx_free(verb_ctx_t *v)
{
    json_decref(v->message_id);
    json_decref(v->rest);
    free(v);
}

static void on_join_or_leave(ag_conn_t *c, const char *err, void *ud)
{
    verb_ctx_t *v = ud;
    verb_error(c, err, err != NULL ? v->rest : json_true(), v->message_id);
    verb_ctx_free(v);
}

static void on_view_or_say(ag_conn_t *c, const char *err, json_t *data, void *ud)
{
    verb_ctx_t *v = ud;
    verb_error(c, err, err != NULL ? v->rest : data, v->message_id);
    verb_ctx_free(v);
}

/* --- actions over the socket --- */

static void ws_action_done(ag_action_req_t *r, json_t *result, int status, const char *error)
{
    (void)status;
    ag_conn_t *c = r->conn;
    if (c->pending_actions > 0)
        c->pending_actions--;
    if (ag_conn_is_closed(c))
        return;
    json_t *reply = json_copy(result);
    if (reply == NULL)
        return;
    if (error != NULL)
        json_object_set_new(reply, "error", json_string(error));
    send_owned(c, ag__reply(reply, r->message_id));
}

static void do_action(ag_conn_t *c, const json_t *msg, json_t *message_id)
{
    ag_server_t *s = c->server;
    c->total_actions++;
    c->pending_actions++;
    if (c->pending_actions > (uint32_t)s->config->general.simultaneousActions) {
        c->pending_actions--;
        json_t *e = json_pack("{s:s}", "error", AG_ERR_TOO_MANY_PENDING);
        send_owned(c, ag__reply(e, message_id));
        json_decref(message_id);
        return;
    }
    json_t *params = json_object_get(msg, "params");
    /* the action takes the message's own params (msg is dropped right after, so nobody else sees them change) */
    params = json_is_object(params) ? json_incref(params) : json_object();
    ag__action_start(s, params, message_id, c, ws_action_done, NULL);
}

/* --- verbs --- */

/* A string that may not be UTF-8 (query strings, headers): fallback when it is not. */
static json_t *utf8_or(const char *s, const char *fallback)
{
    json_t *j = json_string(s);
    return j != NULL ? j : json_string(fallback);
}

json_t *ag__conn_details(ag_conn_t *c)
{
    json_t *rooms = json_array();
    for (const ag_room_member_t *m = c->rooms_first; m != NULL; m = ag__room_next(m))
        json_array_append_new(rooms, json_string(ag__room_name(m)));
    return json_pack("{s:s,s:o,s:o,s:i,s:{},s:I,s:o,s:I,s:I}", "id", c->id, "fingerprint", utf8_or(c->fingerprint, c->id),
                     "remoteIP", utf8_or(c->remote_ip, ""), "remotePort", c->remote_port, "params", "connectedAt",
                     (json_int_t)c->connected_at, "rooms", rooms, "totalActions", (json_int_t)c->total_actions, "pendingActions",
                     (json_int_t)c->pending_actions);
}

static json_t *details_view_with_data(ag_conn_t *c)
{
    json_t *d = ag__conn_details(c);
    if (d != NULL && ag__conn_hook_data(c) != NULL)
        json_object_set(d, "data", c->hook_data);
    if (d != NULL && c->user != NULL)
        json_object_set_new(d, "user", json_string(c->user));
    if (d != NULL && c->claims != NULL)
        json_object_set(d, "claims", c->claims);
    return d;
}

/* --- verbs the backend is asked about first (server/backend.h) --- */

typedef struct {
    ag_conn_t *conn; /* a reference */
    verb_ctx_t *v;
    int verb; /* AG_HOOK_ROOM_ADD, AG_HOOK_ROOM_LEAVE, AG_HOOK_SAY */
    char *room, *message;
} hooked_verb_t;

static void hooked_verb_free(hooked_verb_t *h)
{
    ag_conn_release(h->conn);
    free(h->room);
    free(h->message);
    free(h);
}

static void run_verb(ag_conn_t *c, int verb, const char *room, const char *message, verb_ctx_t *v)
{
    if (verb == AG_HOOK_ROOM_ADD)
        ag_room_join(c, room, on_join_or_leave, v);
    else if (verb == AG_HOOK_ROOM_LEAVE)
        ag_room_leave(c, room, on_join_or_leave, v);
    else
        ag__room_say(c, room, message, on_view_or_say, v);
}

static void on_verb_hook(void *data, const char *refusal, json_t *reply)
{
    hooked_verb_t *h = data;
    ag_conn_t *c = h->conn;
    if (ag_conn_is_closed(c)) {
        verb_ctx_free(h->v);
    } else if (refusal != NULL) {
        verb_error(c, refusal, h->v->rest, h->v->message_id);
        verb_ctx_free(h->v);
    } else {
        /* say: the backend may put other words in the sender's mouth */
        json_t *m = h->verb == AG_HOOK_SAY ? json_object_get(reply, "message") : NULL;
        const char *message = json_is_string(m) ? json_string_value(m) : h->message;
        run_verb(c, h->verb, h->room, message, h->v);
    }
    hooked_verb_free(h);
}

/* Runs a room verb, asking the backend first when its hook is configured. Takes v. */
static void room_verb(ag_conn_t *c, int verb, const char *room, const char *message, verb_ctx_t *v)
{
    if (!ag_backend_has(c->server, (ag_hook_t)verb) || room == NULL) {
        run_verb(c, verb, room, message, v);
        return;
    }
    hooked_verb_t *h = calloc(1, sizeof(*h));
    json_t *params = ag_backend_conn_params(c);
    if (h == NULL || params == NULL || (h->room = strdup(room)) == NULL ||
        (message != NULL && (h->message = strdup(message)) == NULL)) {
        if (h != NULL) {
            free(h->room);
            free(h);
        }
        json_decref(params);
        verb_error(c, "server error", v->rest, v->message_id);
        verb_ctx_free(v);
        return;
    }
    h->conn = ag_conn_addref(c);
    h->v = v;
    h->verb = verb;
    json_object_set_new(params, "room", json_string(room));
    if (message != NULL)
        json_object_set_new(params, "message", json_string(message));
    ag_backend_ask(c->server, (ag_hook_t)verb, params, c->fingerprint, c->remote_ip, on_verb_hook, h, NULL);
}

/* {"event":"refreshToken","token":"..."}: a new token for the same user moves the connection's deadline. */
static void refresh_token(ag_conn_t *c, json_t *rest, const json_t *message_id)
{
    json_t *token = json_object_get(rest, "token");
    ag_token_err_t err =
        json_is_string(token) ? ag_token_refresh(c, json_string_value(token), json_string_length(token)) : AG_TOKEN_MISSING;
    if (err == AG_TOKEN_OK) {
        verb_error(c, NULL, json_true(), message_id);
        return;
    }
    /* the error's data is the request without the token: the client has it, and it can be kilobytes */
    json_object_del(rest, "token");
    verb_error(c, ag_token_client_error(err), rest, message_id);
}

static void do_verb(ag_conn_t *c, const char *verb, json_t *rest, const json_t *message_id)
{
    /* actionhero: room first, then the values of the other keys; an error's data is the request without room */
    json_t *words = ag__verb_words(rest);
    char *room = json_array_size(words) > 0 ? ag__js_string(json_array_get(words, 0)) : NULL;
    json_object_del(rest, "room");

    if (strcmp(verb, "detailsView") == 0) {
        json_t *d = details_view_with_data(c);
        verb_error(c, NULL, d, message_id);
        json_decref(d);
    } else if (strcmp(verb, "documentation") == 0) {
        ag__documentation_verb(c, message_id);
    } else if (strcmp(verb, "roomAdd") == 0 || strcmp(verb, "roomLeave") == 0) {
        verb_ctx_t *v = verb_ctx(message_id, rest);
        if (v != NULL)
            room_verb(c, verb[4] == 'A' ? AG_HOOK_ROOM_ADD : AG_HOOK_ROOM_LEAVE, room, NULL, v);
    } else if (strcmp(verb, "roomView") == 0) {
        verb_ctx_t *v = verb_ctx(message_id, rest);
        if (v != NULL)
            ag__room_view(c, room, on_view_or_say, v);
    } else if (strcmp(verb, "say") == 0) {
        char *message = ag__join_words(words, 1);
        verb_ctx_t *v = verb_ctx(message_id, rest);
        if (v != NULL && message != NULL)
            room_verb(c, AG_HOOK_SAY, room, message, v);
        else if (v != NULL)
            verb_ctx_free(v);
        free(message);
    } else if (strcmp(verb, "resume") == 0) {
        ag__resume_verb(c, rest, message_id);
    } else if (strcmp(verb, "refreshToken") == 0 && ag_token_enabled(c->server)) {
        refresh_token(c, rest, message_id);
    } else if (strcmp(verb, "quit") == 0 || strcmp(verb, "exit") == 0) {
        ag_conn_close(c, &AG_DISCONNECT_QUIT);
    } else {
        size_t n = strlen(verb) + 64;
        char *err = malloc(n);
        if (err != NULL) {
            snprintf(err, n, "verb not found or not allowed (%s)", verb);
            verb_error(c, err, rest, message_id);
            free(err);
        }
    }
    free(room);
    json_decref(words);
}

static void do_file(ag_conn_t *c, const json_t *msg, const json_t *message_id)
{
    const char *rel = json_string_value(json_object_get(msg, "file"));
    json_t *payload =
        ag__file_payload(c->server->public_dir, rel, (size_t)c->server->config->servers.websocket.server.queueMaxBytes / 2);
    send_owned(c, ag__reply(payload, message_id));
}

static void on_frame(ag_conn_t *c, const char *data, size_t len, int binary, void *unused)
{
    (void)unused;
    if (!c->accepted) {
        /* the connect hook has not answered: the client was not welcomed, so it has nothing to say yet */
        ag_debug("session", c->id, "a message before the connect hook answered: dropped");
        return;
    }
    if (binary) {
        json_t *id = ag__message_id(NULL);
        verb_error(c, "verb not found or not allowed (undefined)", json_null(), id);
        json_decref(id);
        return;
    }
    json_error_t jerr;
    json_t *msg = ag_json_loadb(data, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (msg == NULL) {
        c->server->stats.invalid_json++;
        ag_log_limited(AG_LOG_INFO, "session", c->id, "invalid JSON ignored: %s", jerr.text);
        return;
    }
    if (!json_is_object(msg)) {
        json_t *id = ag__message_id(NULL);
        verb_error(c, "verb not found or not allowed (undefined)", msg, id);
        json_decref(id);
        json_decref(msg);
        return;
    }
    json_t *event = json_object_get(msg, "event");
    if (ag__resume_seen(c, msg)) {
        /* sent again after a resume: answered once already, or still running */
        json_decref(msg);
        return;
    }
    json_t *message_id = ag__message_id(msg);
    char *verb = event != NULL ? ag__js_string(event) : strdup("undefined");
    if (verb != NULL && strcmp(verb, "action") == 0) {
        do_action(c, msg, message_id); /* takes message_id */
        message_id = NULL;
    } else if (verb != NULL && strcmp(verb, "file") == 0) {
        do_file(c, msg, message_id);
    } else if (verb != NULL) {
        json_t *rest = json_copy(msg);
        json_object_del(rest, "event");
        json_object_del(rest, "messageId");
        do_verb(c, verb, rest, message_id);
        json_decref(rest);
    }
    free(verb);
    json_decref(message_id);
    json_decref(msg);
}

static void welcome(ag_conn_t *c)
{
    c->accepted = 1;
    ag_token_watch(c); /* from now on its token's exp counts */
    json_t *w = json_pack("{s:s,s:s}", "welcome", c->server->config->general.welcomeMessage, "context", "api");
    ag_conn_send_json(c, w);
    json_decref(w);
    ag__hooks_connect(c);
}

static void on_connect_hook(void *data, const char *refusal, json_t *reply)
{
    ag_conn_t *c = data;
    c->hook_call = NULL;
    json_decref(c->handshake);
    c->handshake = NULL;
    if (ag_conn_is_closed(c)) {
    } else if (refusal != NULL) {
        json_t *e = json_pack("{s:s,s:s}", "error", refusal, "context", "api");
        ag_conn_send_json(c, e);
        json_decref(e);
        ag_conn_close(c, &AG_DISCONNECT_REFUSED);
    } else {
        json_t *d = json_object_get(reply, "data");
        if (json_is_object(d) && ag_conn_set_data(c, d) != AG_OK) {
            ag_conn_close(c, &AG_DISCONNECT_SERVER_ERROR);
        } else {
            welcome(c);
        }
    }
    ag_conn_release(c);
}

/* The welcome waits for the connect hook, unless the transport already asked it (an engine.io handshake, a socket.io
 * CONNECT). */
static void on_open(ag_conn_t *c, void *unused)
{
    (void)unused;
    if (c->refused != NULL) {
        /* the transport refused its token: the same refusal as the connect hook's, and the hook is not asked */
        json_t *e = json_pack("{s:s,s:s}", "error", c->refused, "context", "api");
        ag_conn_send_json(c, e);
        json_decref(e);
        ag_conn_close(c, &AG_DISCONNECT_TOKEN_REFUSED);
        return;
    }
    if (c->accepted || !ag_backend_has(c->server, AG_HOOK_CONNECT)) {
        welcome(c);
        return;
    }
    json_t *params = ag_backend_conn_params(c);
    if (params != NULL && c->handshake != NULL)
        json_object_update(params, c->handshake);
    ag_conn_addref(c);
    ag_backend_ask(c->server, AG_HOOK_CONNECT, params, c->fingerprint, c->remote_ip, on_connect_hook, c, &c->hook_call);
}

static void on_close(ag_conn_t *c, const ag_disconnect_t *why, void *unused)
{
    (void)unused;
    ag_token_unwatch(c);
    if (c->handed_over) {
        /* it lives on on another node or worker, in the same rooms: only this node's copy of it goes */
        ag__rooms_conn_handed_over(c);
        ag__actions_conn_closed(c);
        return;
    }
    if (c->hook_call != NULL) {
        ag_backend_cancel(c->hook_call);
        c->hook_call = NULL;
        ag_conn_release(c); /* the hook's: the caller of on_close holds its own */
    }
    if (c->accepted && ag_backend_has(c->server, AG_HOOK_DISCONNECT)) {
        json_t *params = ag_backend_conn_params(c);
        if (params != NULL) {
            json_object_set_new(params, "reason", json_string(why->reason));
            json_object_set_new(params, "code", json_integer(why->code));
        }
        ag_backend_ask(c->server, AG_HOOK_DISCONNECT, params, c->fingerprint, c->remote_ip, NULL, NULL, NULL);
    }
    ag__rooms_conn_closed(c);
    ag__actions_conn_closed(c);
    ag__hooks_disconnect(c, why);
}

/* A message the connection refused (over the message rate), answered as this layer answers a request that fails: an
 * action's (or file's) error, else a verb error whose data is the request minus event, messageId and room. Text that
 * is not JSON gets none, as invalid JSON gets none. */
static void on_refused(ag_conn_t *c, const char *data, size_t len, int binary, const char *error, void *unused)
{
    (void)unused;
    json_t *msg = binary ? json_null() : ag_json_loadb(data, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (msg == NULL)
        return;
    json_t *mid = ag__message_id(json_is_object(msg) ? msg : NULL), *reply;
    const char *event = json_string_value(json_object_get(msg, "event"));
    if (event != NULL && (strcmp(event, "action") == 0 || strcmp(event, "file") == 0)) {
        reply = ag__reply(json_pack("{s:s}", "error", error), mid);
    } else if (json_is_object(msg)) {
        json_t *rest = json_copy(msg);
        json_object_del(rest, "event");
        json_object_del(rest, "messageId");
        json_object_del(rest, "room");
        reply = ag__verb_reply(error, rest, mid);
        json_decref(rest);
    } else {
        reply = ag__verb_reply(error, msg, mid);
    }
    if (reply != NULL)
        ag_conn_send_json(c, reply);
    json_decref(reply);
    json_decref(mid);
    json_decref(msg);
}

static const ag_conn_handler_t handler = {.on_open = on_open, .on_frame = on_frame, .on_refused = on_refused, .on_close = on_close};

void ag_session_init(ag_server_t *s)
{
    ag_conn_set_handler(s, &handler, NULL);
}
