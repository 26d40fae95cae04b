/*
 * The socket.io layer over engine.io sessions (see socketio.h). The CONNECT is socketio_connect.c, connection state
 * recovery socketio_recovery.c (what they share: socketio_internal.h). The packet codec is socketio_packet.c; the
 * scripts of the socket.io and faye eras are served by server/scripts.c.
 */
#include "socketio_internal.h"
#include "eio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http.h"
#include "json.h"
#include "rooms.h"

/* --- the layer --- */

/* Refusals of binary packets waiting in sio->out: a client that sends binary events and reads nothing is closed here
 * rather than queued for without end. */
#define MAX_REFUSALS_QUEUED 256

/* The node's socket.io state (s->sio). */
typedef struct st_ag_sio_node_t {
    h2o_timeout_t connect_timeout; /* socket.io's connectTimeout: a session that never CONNECTs is closed */
    int started;
    ag_frame_t *last_in, *last_out; /* the last pushed frame translated, and what it became (see translate) */
} sio_node_t;

void ag__sio_out_push(ag_sio_t *sio, ag_frame_t *f, int front)
{
    if (f == NULL)
        return;
    if (sio->out_len == sio->out_cap) {
        size_t ncap = sio->out_cap == 0 ? 4 : sio->out_cap * 2;
        ag_frame_t **n = malloc(ncap * sizeof(*n));
        if (n == NULL) {
            ag_frame_release(f);
            return;
        }
        for (size_t i = 0; i < sio->out_len; i++)
            n[i] = sio->out[(sio->out_head + i) % sio->out_cap];
        free(sio->out);
        sio->out = n;
        sio->out_cap = ncap;
        sio->out_head = 0;
    }
    if (front) {
        sio->out_head = (sio->out_head + sio->out_cap - 1) % sio->out_cap;
        sio->out[sio->out_head] = f;
    } else {
        sio->out[(sio->out_head + sio->out_len) % sio->out_cap] = f;
    }
    sio->out_len++;
}

static ag_frame_t *out_pop(ag_sio_t *sio)
{
    if (sio->out_len == 0)
        return NULL;
    ag_frame_t *f = sio->out[sio->out_head];
    sio->out_head = (sio->out_head + 1) % sio->out_cap;
    sio->out_len--;
    return f;
}

void ag__sio_state_free(void *data)
{
    ag__sio_state_t *st = data;
    for (size_t i = 0; i < st->num_pend; i++)
        free(st->pend[i].room);
    free(st->pend);
    free(st->room);
    ag__sio_tracked_clear(st->rooms, &st->num_rooms);
    free(st);
}

/* The layer's state of the connection sio carries, or NULL when it carries none. */
static ag__sio_state_t *state_of(const ag_sio_t *sio)
{
    return sio->conn != NULL ? sio->conn->carrier_state : NULL;
}

/* mid < 0: the next messageId of the connection. */
ag__sio_pending_t *ag__sio_pending_add(ag__sio_state_t *st, int64_t mid, int64_t ack, int swallow, const char *room, int current)
{
    if (st->num_pend == st->cap_pend) {
        size_t ncap = st->cap_pend == 0 ? 8 : st->cap_pend * 2;
        ag__sio_pending_t *n = realloc(st->pend, ncap * sizeof(*n));
        if (n == NULL)
            return NULL;
        st->pend = n;
        st->cap_pend = ncap;
    }
    ag__sio_pending_t *p = &st->pend[st->num_pend];
    p->mid = mid >= 0 ? mid : ++st->next_mid;
    p->ack = ack;
    p->swallow = swallow;
    p->room = room != NULL ? strdup(room) : NULL;
    p->current = current;
    st->num_pend++;
    return p;
}

ag__sio_pending_t *ag__sio_pending_find(ag__sio_state_t *st, int64_t mid)
{
    for (size_t i = 0; i < st->num_pend; i++)
        if (st->pend[i].mid == mid)
            return &st->pend[i];
    return NULL;
}

/* Removes the entry for mid into *out (the caller frees out->room); 0 when mid is not one of ours. */
static int pending_take(ag__sio_state_t *st, int64_t mid, ag__sio_pending_t *out)
{
    /* Replies mostly come back in request order: the oldest entries are looked at first. */
    ag__sio_pending_t *p = st != NULL ? ag__sio_pending_find(st, mid) : NULL;
    if (p == NULL)
        return 0;
    *out = *p;
    size_t i = (size_t)(p - st->pend);
    memmove(&st->pend[i], &st->pend[i + 1], (st->num_pend - i - 1) * sizeof(*st->pend));
    st->num_pend--;
    return 1;
}

void ag__sio_set_room(ag__sio_state_t *st, const char *room)
{
    free(st->room);
    st->room = room != NULL ? strdup(room) : NULL;
}

/* The room a "say" or "roomView" without one goes to: the one roomChange chose while the connection is still in it,
 * else the first room the connection joined. */
static const char *current_room(ag_sio_t *sio)
{
    ag__sio_state_t *st = state_of(sio);
    if (st->room != NULL && ag__conn_in_room(sio->conn, st->room))
        return st->room;
    return ag__conn_first_room(sio->conn);
}

/* The event a pushed frame is emitted as; socket.io clients drop a packet that uses a reserved name. */
static const char *push_event_name(json_t *frame)
{
    const char *ctx = json_string_value(json_object_get(frame, "context"));
    if (json_object_get(frame, "welcome") != NULL)
        return "welcome";
    if (ctx == NULL || ctx[0] == '\0' || ag_sio_is_reserved_event(ctx))
        return "message";
    if (strcmp(ctx, "user") == 0)
        return "say";
    return ctx;
}

/* One outbound session frame as the socket.io packet to send, or NULL when it is not for the client. */
static ag_frame_t *translate(ag_sio_t *sio, ag_frame_t *f)
{
    if (f->binary)
        return NULL; /* no binary events on this endpoint */
    ag__sio_state_t *st = state_of(sio);
    /* a recoverable connection's events carry its own offset: they are made for it alone */
    int recoverable = st != NULL && st->pid[0] != '\0';
    /* A broadcast is one frame in every recipient's queue, pulled by one recipient after the other: what it becomes
     * does not depend on the recipient (only replies do), so the last one is kept. */
    sio_node_t *node = sio->server->sio;
    if (!recoverable && f == node->last_in)
        return ag_frame_addref(node->last_out);
    json_t *obj = ag_json_loadb(f->data, f->len, JSON_DECODE_ANY, NULL);
    ag_frame_t *out = NULL;
    const char *name = "message";
    int cache = 0;
    if (!json_is_object(obj))
        goto event;
    if (recoverable && ag__sio_track(sio->conn, st, obj))
        goto done;
    const char *ctx = json_string_value(json_object_get(obj, "context"));
    json_t *mid = json_object_get(obj, "messageId");
    int is_response = ctx != NULL && strcmp(ctx, "response") == 0;
    ag__sio_pending_t p;
    if (is_response && json_is_integer(mid) && pending_take(st, json_integer_value(mid), &p)) {
        if (p.room != NULL) {
            const char *status = json_string_value(json_object_get(obj, "status"));
            if (status != NULL && strcmp(status, "OK") == 0 && p.current)
                ag__sio_set_room(st, p.room);
            if (status != NULL && strcmp(status, "OK") == 0 && recoverable)
                ag__sio_forget_room(st, p.room);
            free(p.room);
        }
        if (p.swallow)
            goto done;
        if (p.ack >= 0) {
            ag__sio_body_t b = ag__sio_bare_body(f);
            out = recoverable ? ag__sio_encode_body(AG_SIO_ACK, p.ack, "[", &b, "]")
                              : ag_sio_encode(AG_SIO_ACK, NULL, p.ack, "[", f->data, f->len, "]");
            goto done;
        }
        name = "response";
        goto event;
    }
    name = is_response ? "response" : push_event_name(obj);
    cache = !is_response;
event:
    if (recoverable) {
        ag__sio_body_t b = ag__sio_bare_body(f);
        out = ag__sio_encode_event_offset(st, name, &b);
    } else {
        out = ag_sio_encode_event(NULL, -1, name, f->data, f->len);
        if (out != NULL && cache) {
            /* the references keep the pointer from being reused by another frame while it is the key */
            ag_frame_release(node->last_in);
            ag_frame_release(node->last_out);
            node->last_in = ag_frame_addref(f);
            node->last_out = ag_frame_addref(out);
        }
    }
done:
    json_decref(obj);
    return out;
}

void ag__sio_lower_kick(ag_sio_t *sio)
{
    if (!sio->creating)
        sio->lower->on_pending(sio->lower_self);
}

static void lower_close(ag_sio_t *sio)
{
    if (sio->closing)
        return;
    sio->closing = 1;
    if (h2o_timeout_is_linked(&sio->connect_timer))
        h2o_timeout_unlink(&sio->connect_timer);
    sio->lower->close(sio->lower_self);
}

/* --- ag_transport_t of the logical connection --- */

static void tr_on_pending(ag_conn_t *conn, void *self)
{
    (void)conn;
    ag__sio_lower_kick(self);
}

static void tr_close(ag_conn_t *conn, void *self, const ag_disconnect_t *why)
{
    ag_sio_t *sio = self;
    /* What the connection still has goes out before the DISCONNECT; the session closes after writing it. */
    ag_frame_t *f;
    while ((f = ag_conn_shift(conn)) != NULL) {
        ag__sio_out_push(sio, translate(sio, f), 0);
        ag_frame_release(f);
    }
    /* A DISCONNECT tells socket.io-client not to reconnect; without it ("transport close") the client comes back. */
    if (!why->reconnect)
        ag__sio_out_push(sio, ag_sio_encode(AG_SIO_DISCONNECT, NULL, -1, NULL, NULL, 0, NULL), 0);
    lower_close(sio);
}

/* The session carries another connection from now on: the one its client recovered (README "Resume"). */
static void tr_rebind(ag_conn_t *to, void *self)
{
    ag_sio_t *sio = self;
    sio->conn = to;
}

const ag_transport_t ag__sio_transport = {"socket.io", tr_on_pending, tr_close, "socket.io", tr_rebind};

/* --- inbound --- */

static void on_connect_timeout(h2o_timeout_entry_t *entry)
{
    ag_sio_t *sio = H2O_STRUCT_FROM_MEMBER(ag_sio_t, connect_timer, entry);
    ag_log_limited(AG_LOG_INFO, "socket.io", NULL, "no CONNECT within %d ms; closing",
                   sio->server->config->servers.socketio.connectTimeout);
    lower_close(sio);
}

ag_sio_t *ag_sio_create(ag_server_t *s, const ag_sio_lower_t *lower, void *lower_self, const ag_conn_info_t *info)
{
    ag_sio_t *sio = calloc(1, sizeof(*sio));
    if (sio == NULL)
        return NULL;
    sio->server = s;
    sio->lower = lower;
    sio->lower_self = lower_self;
    if (info->fingerprint != NULL && info->fingerprint[0] != '\0' && (sio->fingerprint = strdup(info->fingerprint)) == NULL) {
        free(sio);
        return NULL;
    }
    snprintf(sio->remote_ip, sizeof(sio->remote_ip), "%s", info->remote_ip != NULL ? info->remote_ip : "");
    sio->remote_port = info->remote_port;
    sio->transport_name = info->transport_name != NULL ? info->transport_name : "polling";
    sio->handshake = info->handshake != NULL ? json_incref(info->handshake) : NULL;
    sio->hs_claims = info->claims != NULL ? json_incref(info->claims) : NULL;
    sio->connect_timer.cb = on_connect_timeout;
    if (s->sio->started)
        h2o_timeout_link(s->loop, &s->sio->connect_timeout, &sio->connect_timer);
    return sio;
}

static void fail(ag_sio_t *sio, const char *what)
{
    ag_log_limited(AG_LOG_INFO, "socket.io", sio->conn != NULL ? sio->conn->id : NULL, "%s; closing", what);
    if (sio->why == NULL)
        sio->why = &AG_DISCONNECT_PROTOCOL_ERROR;
    lower_close(sio);
}

/* The connection ends for why: the client left "/" (it keeps its engine.io session and may CONNECT again), or the
 * session is gone. */
static void detach(ag_sio_t *sio, const ag_disconnect_t *why, int for_good)
{
    ag_conn_t *c = sio->conn;
    sio->conn = NULL;
    sio->recovering = 0; /* its connection was never resumable: it ends, and the recovery's answer with it */
    ag__sio_want_clear(sio);
    /* an engine.io session in no namespace is closed unless it CONNECTs again in time */
    sio_node_t *node = sio->server->sio;
    if (node->started && !sio->closing && !h2o_timeout_is_linked(&sio->connect_timer))
        h2o_timeout_link(sio->server->loop, &node->connect_timeout, &sio->connect_timer);
    if (c != NULL) {
        ag_conn_addref(c);
        ag_conn_on_transport_gone(c, why);
        /* a client that left "/" on purpose does not come back for it */
        if (for_good && ag_conn_is_away(c))
            ag_conn_away_end(c, NULL);
        ag_conn_release(c);
    }
}

static int is_name(const char *name, const char *what)
{
    return strcmp(name, what) == 0;
}

/* Copies the keys of an object argument into req, except those the layer sets itself. */
static void copy_args(json_t *req, json_t *arg)
{
    const char *k;
    json_t *v;
    json_object_foreach(arg, k, v)
    {
        if (strcmp(k, "event") != 0 && strcmp(k, "messageId") != 0 && json_object_get(req, k) == NULL)
            json_object_set(req, k, v);
    }
}

/* Hands one request to the session layer, remembering how its reply goes back. */
static void submit(ag_sio_t *sio, json_t *req, int64_t ack, int swallow, const char *room, int current)
{
    ag__sio_state_t *st = state_of(sio);
    if (st->num_pend >= AG__SIO_MAX_PENDING) {
        fail(sio, "too many unanswered requests");
        return;
    }
    ag__sio_pending_t *p = ag__sio_pending_add(st, -1, ack, swallow, room, current);
    if (p == NULL)
        return;
    if (ack >= 0) {
        /* a recovered client may emit it again: see ag__sio_reemitted */
        st->last_ack = ack;
        st->last_mid = p->mid;
        st->last_hash = sio->ev_hash;
    }
    json_object_set_new(req, "messageId", json_integer(p->mid));
    char *text = json_dumps(req, AG_JSON_FLAGS);
    if (text != NULL) {
        /* The entry exists before the call: the reply may be written from inside it. */
        ag_conn_on_frame(sio->conn, text, strlen(text), 0);
        free(text);
    }
}

static void on_event(ag_sio_t *sio, const ag_sio_packet_t *p)
{
    ag__sio_state_t *st = state_of(sio);
    if (st->matching) {
        st->matching = 0;
        if (p->id >= 0 && ag__sio_reemitted(sio, st, p->id))
            return;
    }
    json_t *jname = json_array_get(p->data, 0), *arg = json_array_get(p->data, 1);
    char numbuf[32];
    const char *name = json_string_value(jname);
    if (name == NULL) {
        snprintf(numbuf, sizeof(numbuf), "%g", json_number_value(jname));
        name = numbuf;
    }
    const char *arg_room = json_string_value(json_object_get(arg, "room"));
    json_t *req = json_object();
    if (is_name(name, "action")) {
        json_object_set_new(req, "event", json_string("action"));
        json_object_set_new(req, "params", json_is_object(arg) ? json_incref(arg) : json_object());
        submit(sio, req, p->id, 0, NULL, 0);
    } else if (is_name(name, "roomChange")) {
        const char *room = arg_room != NULL ? arg_room : json_string_value(arg);
        const char *from = current_room(sio);
        if (from != NULL) {
            json_t *leave = json_pack("{s:s,s:s}", "event", "roomLeave", "room", from);
            ag__sio_set_room(st, NULL);
            submit(sio, leave, -1, 1, NULL, 0);
            json_decref(leave);
        }
        if (sio->conn == NULL || ag_conn_is_closed(sio->conn))
            goto done;
        json_object_set_new(req, "event", json_string("roomAdd"));
        if (room != NULL)
            json_object_set_new(req, "room", json_string(room));
        submit(sio, req, p->id, 0, room, 1);
    } else {
        /* say, roomView, detailsView, quit, and every other verb by name: the session layer answers what it does not
         * know with its own error. */
        int is_say = is_name(name, "say"), is_file = is_name(name, "file");
        json_object_set_new(req, "event", json_string(name));
        const char *room = arg_room;
        if (room == NULL && json_is_string(arg) && !is_say && !is_file)
            room = json_string_value(arg);
        if (room == NULL && (is_say || is_name(name, "roomView")))
            room = current_room(sio);
        if (room != NULL)
            json_object_set_new(req, "room", json_string(room));
        if (json_is_object(arg))
            copy_args(req, arg);
        else if (json_is_string(arg) && (is_say || is_file))
            json_object_set(req, is_say ? "message" : "file", arg);
        submit(sio, req, p->id, 0, is_name(name, "roomAdd") ? room : NULL, 0);
    }
done:
    json_decref(req);
}

/* A binary packet outside the conformance mode: its attachments are read and dropped, then the client is told, in the
 * ACK when the event asked for one, else in a "response" event, as the session layer's refusals are. */
static void refuse_binary(ag_sio_t *sio, const ag_sio_packet_t *p)
{
    if (sio->out_len >= MAX_REFUSALS_QUEUED) {
        fail(sio, "binary packets faster than their refusals are read");
        return;
    }
    sio->drop = p->attachments;
    sio->drop_ack = p->type == AG_SIO_BINARY_EVENT ? p->id : -1;
}

/* The last attachment of a refused packet was read: the packet is whole, and refused. */
static void send_refusal(ag_sio_t *sio)
{
    static const char err[] = "{\"error\":\"" AG_SIO_ERR_BINARY "\",\"context\":\"response\"}";
    if (sio->drop_ack >= 0)
        ag__sio_out_push(sio, ag_sio_encode(AG_SIO_ACK, NULL, sio->drop_ack, "[", err, sizeof(err) - 1, "]"), 0);
    else
        ag__sio_out_push(sio, ag_sio_encode_event(NULL, -1, "response", err, sizeof(err) - 1), 0);
    ag__sio_lower_kick(sio);
}

void ag_sio_on_message(ag_sio_t *sio, const char *data, size_t len, int binary)
{
    if (sio->closing)
        return;
    if (sio->drop > 0) {
        /* socket.io-parser, too, refuses text while the attachments of a packet are due */
        if (!binary)
            fail(sio, "text while attachments were due");
        else if (--sio->drop == 0)
            send_refusal(sio);
        return;
    }
    ag_sio_packet_t p;
    if (binary || ag_sio_decode(data, len, &p) != 0) {
        /* socket.io closes a client whose packets do not decode */
        fail(sio, binary ? "an attachment nobody announced" : "parse error");
        return;
    }
    int main_nsp = ag_sio_nsp_is_main(&p);
    switch (p.type) {
    case AG_SIO_CONNECT:
        if (!main_nsp) {
            /* Only "/" exists: the client is told so and keeps its session for the namespaces that do. */
            char nsp[256];
            snprintf(nsp, sizeof(nsp), "%.*s", (int)(p.nsp_len < 255 ? p.nsp_len : 255), p.nsp);
            /* protocol 4's ERROR packet carries the bare text */
            if (sio->legacy)
                ag__sio_out_push(sio, ag_sio_encode(AG_SIO_CONNECT_ERROR, nsp, -1, NULL, "\"Invalid namespace\"", 19, NULL), 0);
            else
                ag__sio_out_push(
                    sio, ag_sio_encode(AG_SIO_CONNECT_ERROR, nsp, -1, NULL, "{\"message\":\"Invalid namespace\"}", 31, NULL), 0);
            ag__sio_lower_kick(sio);
        } else if (sio->conn != NULL || sio->hook_call != NULL) {
            fail(sio, "CONNECT while connected");
        } else {
            ag__sio_on_connect(sio, &p);
        }
        break;
    case AG_SIO_DISCONNECT:
        if (main_nsp && sio->conn != NULL)
            detach(sio, &AG_DISCONNECT_PEER_CLOSED, 1);
        else
            fail(sio, "DISCONNECT from a namespace that is not connected");
        break;
    case AG_SIO_EVENT:
        if (main_nsp && sio->conn != NULL && !sio->recovering) {
            const char *args = state_of(sio)->pid[0] != '\0' ? memchr(data, '[', len) : NULL;
            sio->ev_hash = args != NULL ? ag__sio_text_hash(args, len - (size_t)(args - data)) : 0;
            on_event(sio, &p);
        } else {
            fail(sio, "EVENT for a namespace that is not connected");
        }
        break;
    case AG_SIO_ACK:
    case AG_SIO_CONNECT_ERROR:
        /* The server asks for no acks, and only servers send CONNECT_ERROR: nothing to do. */
        break;
    case AG_SIO_BINARY_EVENT:
    case AG_SIO_BINARY_ACK:
        if (!main_nsp || sio->conn == NULL)
            fail(sio, "binary packet for a namespace that is not connected");
        else if (p.attachments > AG_SIO_MAX_ATTACHMENTS)
            fail(sio, "too many attachments");
        else
            refuse_binary(sio, &p);
        break;
    }
    ag_sio_packet_dispose(&p);
}

void ag_sio_start_legacy(ag_sio_t *sio)
{
    sio->legacy = 1;
    /* socket.io 2 connected every client to "/" at once; its clients never send that CONNECT */
    ag_sio_packet_t none = {0};
    none.type = AG_SIO_CONNECT;
    ag__sio_on_connect(sio, &none);
}

void ag_sio_set_transport_name(ag_sio_t *sio, const char *name)
{
    sio->transport_name = name;
    if (sio->conn != NULL)
        ag_conn_set_transport_name(sio->conn, name);
}

ag_frame_t *ag_sio_shift(ag_sio_t *sio)
{
    ag_frame_t *f = out_pop(sio);
    if (f != NULL || sio->conn == NULL || sio->recovering)
        return f;
    ag_frame_t *in;
    while ((in = ag_conn_shift(sio->conn)) != NULL) {
        f = translate(sio, in);
        ag_frame_release(in);
        if (f != NULL)
            return f;
    }
    return NULL;
}

size_t ag_sio_queued(ag_sio_t *sio)
{
    return sio->out_len + (sio->conn != NULL ? ag_conn_queued(sio->conn) : 0);
}

int ag_sio_closing(const ag_sio_t *sio)
{
    return sio->closing;
}

void ag_sio_on_gone(ag_sio_t *sio, const ag_disconnect_t *why)
{
    if (h2o_timeout_is_linked(&sio->connect_timer))
        h2o_timeout_unlink(&sio->connect_timer);
    sio->closing = 1;
    if (sio->hook_call != NULL)
        ag_backend_cancel(sio->hook_call);
    sio->hook_call = NULL;
    free(sio->hook_fp);
    json_decref(sio->handshake);
    json_decref(sio->hs_claims);
    json_decref(sio->hook_claims);
    detach(sio, sio->why != NULL ? sio->why : why, 0);
    ag_frame_t *f;
    while ((f = out_pop(sio)) != NULL)
        ag_frame_release(f);
    free(sio->out);
    free(sio->fingerprint);
    free(sio);
}

/* --- the upper of the engine.io session under the layer (eio.h) --- */

static void eio_on_pending(void *self)
{
    ag__eio_on_writable(self);
}

/* on_pending, and close: the session closes once what the layer has is out (eio.c's flush asks closing()) */
static const ag_sio_lower_t eio_lower = {eio_on_pending, eio_on_pending};

static void up_on_message(void *self, const char *data, size_t len, int binary)
{
    ag_sio_on_message(self, data, len, binary);
}

static size_t up_queued(void *self)
{
    return ag_sio_queued(self);
}

static ag_frame_t *up_shift(void *self)
{
    return ag_sio_shift(self);
}

/* The connection connected to "/" counts the backlog; a session in no namespace is left to the session's rule. */
static int up_note_backlog(void *self, size_t bytes, size_t frames)
{
    ag_sio_t *sio = self;
    if (sio->conn == NULL)
        return AG__EIO_UPPER_DEFAULT;
    return ag_conn_note_backlog(sio->conn, bytes, frames) == AG_EBUSY ? AG_EBUSY : AG_OK;
}

/* EVENTs count in ag_conn_on_frame (a refusal is an error reply); every other packet in the session's bucket. */
static int up_inbound(void *self, const ag_eio_packet_t *pkt)
{
    (void)self;
    if (pkt != NULL && pkt->type == AG_EIO_MESSAGE && pkt->len > 0 && pkt->data[0] == '2')
        return 1;
    return AG__EIO_UPPER_DEFAULT;
}

static void up_set_transport_name(void *self, const char *name)
{
    ag_sio_set_transport_name(self, name);
}

static int up_closing(void *self)
{
    return ag_sio_closing(self);
}

static void up_on_gone(void *self, const ag_disconnect_t *why)
{
    ag_sio_on_gone(self, why);
}

static const ag__eio_upper_t sio_upper = {
    up_on_message, up_queued, up_shift, up_note_backlog, up_inbound, up_set_transport_name, up_closing, NULL, up_on_gone,
};

static void attach(ag__eio_session_t *s, const ag_conn_info_t *info)
{
    ag_sio_t *sio = ag_sio_create(s->server, &eio_lower, s, info);
    if (sio == NULL)
        return;
    s->upper = &sio_upper;
    s->upper_self = sio;
    if (s->protocol == 3)
        ag_sio_start_legacy(sio);
}

void ag__sio_connect_timer_link(ag_server_t *s, h2o_timeout_entry_t *entry)
{
    if (s->sio != NULL && s->sio->started)
        h2o_timeout_link(s->loop, &s->sio->connect_timeout, entry);
}

int ag_socketio_register(ag_server_t *s, char *errbuf, size_t errlen)
{
    const ag_config_t *cfg = s->config;
    int ret;
    if ((s->sio = calloc(1, sizeof(*s->sio))) == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    if (!cfg->servers.socketio.enabled)
        return 0;
    /* engine.io sessions on the socket.io path carry the layer (when the engine.io endpoint is on) */
    ag__eio_attach_cb a = cfg->servers.socketio.conformance ? ag__sio_attach_conformance : attach;
    if (s->eio != NULL && (ret = ag_eio_serve(s, cfg->servers.socketio.path, AG_EIO_PATH_OWN, a, 0)) != 0) {
        snprintf(errbuf, errlen, "out of memory");
        return ret;
    }
    h2o_timeout_init(s->loop, &s->sio->connect_timeout, (uint64_t)cfg->servers.socketio.connectTimeout);
    s->sio->started = 1;
    return 0;
}

void ag_socketio_dispose(ag_server_t *s)
{
    sio_node_t *node = s->sio;
    if (node == NULL)
        return;
    s->sio = NULL;
    ag_frame_release(node->last_in);
    ag_frame_release(node->last_out);
    node->last_in = node->last_out = NULL;
    /* sessions still waiting for their CONNECT link their timers here: then the node stays with the loop */
    if (!node->started || ag_server_timeout_dispose(s, &node->connect_timeout) == 0)
        free(node);
}
