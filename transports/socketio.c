/*
 * The socket.io layer over engine.io sessions (see socketio.h). The packet codec is socketio_packet.c; the scripts of the
 * socket.io and faye eras are served by server/scripts.c.
 */
#include "socketio.h"
#include "eio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "token.h"
#include "http.h"
#include "json.h"
#include "outbox.h"
#include "rooms.h"

/* --- the layer --- */

#define MAX_PENDING 1024
/* Refusals of binary packets waiting in sio->out: a client that sends binary events and reads nothing is closed here
 * rather than queued for without end. */
#define MAX_REFUSALS_QUEUED 256

struct st_ag_sio_t {
    ag_server_t *server;
    const ag_sio_lower_t *lower;
    void *lower_self;
    ag_conn_t *conn; /* NULL until the client CONNECTs to "/", and again after it DISCONNECTs */
    char *fingerprint;
    char remote_ip[64];
    int remote_port;
    const char *transport_name;
    ag_frame_t **out; /* packets that go before the connection's queue (CONNECT replies), or were drained at close */
    size_t out_head, out_len, out_cap;
    h2o_timeout_entry_t connect_timer;
    int creating;                 /* inside ag_conn_create: the welcome is queued before the CONNECT reply exists */
    int closing;                  /* the engine.io session was asked to close */
    int legacy;                   /* socket.io protocol 4 (socket.io-client 2.x over engine.io protocol 3) */
    unsigned drop;                /* attachments of a refused binary packet still to read (and drop) */
    int64_t drop_ack;             /* that packet's ack id for the refusal, or -1: a "response" event */
    const ag_disconnect_t *why;   /* the layer's own reason for closing (a client that broke the protocol), or NULL */
    ag_backend_call_t *hook_call; /* the connect hook, asked at CONNECT */
    json_t *handshake;            /* what the engine.io handshake tells the connect hook, or NULL */
    char *hook_fp;                /* the fingerprint the CONNECT named, while the hook works */
    json_t *hs_claims;            /* the engine.io handshake's verified token, or NULL */
    json_t *hook_claims;          /* the CONNECT's token claims, while the hook works */
    char *want_pid, *want_offset; /* what the CONNECT presented for a recovery (untrusted), until it is answered */
    int recovering;               /* the CONNECT answer waits for the recovery: nothing of the connection goes out */
    ag__sio_tracked_t rec_rooms[AG__SIO_TRACKED_ROOMS]; /* the client's offsets, read, while it recovers */
    size_t num_rec_rooms;
    uint64_t rec_seq;
    uint64_t ev_hash; /* the EVENT being handled, for the requests it makes */
};

/* The node's socket.io state (s->sio). */
typedef struct st_ag_sio_node_t {
    h2o_timeout_t connect_timeout; /* socket.io's connectTimeout: a session that never CONNECTs is closed */
    int started;
    ag_frame_t *last_in, *last_out; /* the last pushed frame translated, and what it became (see translate) */
} sio_node_t;

static void out_push(ag_sio_t *sio, ag_frame_t *f, int front)
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
static ag__sio_pending_t *pending_add(ag__sio_state_t *st, int64_t mid, int64_t ack, int swallow, const char *room, int current)
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

static ag__sio_pending_t *pending_find(ag__sio_state_t *st, int64_t mid)
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
    ag__sio_pending_t *p = st != NULL ? pending_find(st, mid) : NULL;
    if (p == NULL)
        return 0;
    *out = *p;
    size_t i = (size_t)(p - st->pend);
    memmove(&st->pend[i], &st->pend[i + 1], (st->num_pend - i - 1) * sizeof(*st->pend));
    st->num_pend--;
    return 1;
}

static void set_room(ag__sio_state_t *st, const char *room)
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
                set_room(st, p.room);
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

static void lower_kick(ag_sio_t *sio)
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
    lower_kick(self);
}

static void tr_close(ag_conn_t *conn, void *self, const ag_disconnect_t *why)
{
    ag_sio_t *sio = self;
    /* What the connection still has goes out before the DISCONNECT; the session closes after writing it. */
    ag_frame_t *f;
    while ((f = ag_conn_shift(conn)) != NULL) {
        out_push(sio, translate(sio, f), 0);
        ag_frame_release(f);
    }
    /* A DISCONNECT tells socket.io-client not to reconnect; without it ("transport close") the client comes back. */
    if (!why->reconnect)
        out_push(sio, ag_sio_encode(AG_SIO_DISCONNECT, NULL, -1, NULL, NULL, 0, NULL), 0);
    lower_close(sio);
}

/* The session carries another connection from now on: the one its client recovered (README "Resume"). */
static void tr_rebind(ag_conn_t *to, void *self)
{
    ag_sio_t *sio = self;
    sio->conn = to;
}

static const ag_transport_t sio_transport = {"socket.io", tr_on_pending, tr_close, "socket.io", tr_rebind};

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

static void connect_answer(ag_sio_t *sio, const ag_conn_t *c, const char *pid)
{
    /* protocol 4's CONNECT has no payload; pid only when the connection can be recovered (socket.io's rule) */
    char text[64 + AG__SIO_PID_MAX];
    int n = pid != NULL && pid[0] != '\0' ? snprintf(text, sizeof(text), "{\"sid\":\"%s\",\"pid\":\"%s\"}", c->id, pid)
                                          : snprintf(text, sizeof(text), "{\"sid\":\"%s\"}", c->id);
    /* in front of the welcome (or the replay) the connection already queued */
    out_push(sio, ag_sio_encode(AG_SIO_CONNECT, NULL, -1, NULL, sio->legacy ? NULL : text, sio->legacy ? 0 : (size_t)n, NULL), 1);
}

/* The connection becomes resumable and gets its pid when resume is on (general.resumeWindow, a store with history). */
static void make_recoverable(ag_sio_t *sio, ag_conn_t *c)
{
    ag__sio_state_t *st = c->carrier_state;
    char token[AG_RESUME_TOKEN_LEN + 1];
    if (!sio->legacy && sio->server->config->servers.socketio.connectionStateRecovery && ag_conn_resumable(c, token) == AG_OK)
        snprintf(st->pid, sizeof(st->pid), "%s.%s", c->id, token);
}

static void want_clear(ag_sio_t *sio)
{
    free(sio->want_pid);
    free(sio->want_offset);
    sio->want_pid = sio->want_offset = NULL;
    ag__sio_tracked_clear(sio->rec_rooms, &sio->num_rec_rooms);
}

/* The layer's state of a connection as JSON, for the node or worker it is handed over to (conn.h carrier_state_save):
 * its request table, the rooms it got lines of, what a request emitted again is matched with, its current room. */
static json_t *state_save(const void *state)
{
    const ag__sio_state_t *st = state;
    json_t *pend = json_array(), *rooms = json_array();
    char hash[24];
    snprintf(hash, sizeof(hash), "%llu", (unsigned long long)st->last_hash);
    json_t *out =
        json_pack("{s:I,s:o,s:o,s:I,s:I,s:s,s:s?}", "next_mid", (json_int_t)st->next_mid, "pend", pend, "rooms", rooms, "last_ack",
                  (json_int_t)st->last_ack, "last_mid", (json_int_t)st->last_mid, "last_hash", hash, "room", st->room);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < st->num_pend; i++) {
        const ag__sio_pending_t *p = &st->pend[i];
        json_array_append_new(pend,
                              json_pack("[I,I,b,s?,b]", (json_int_t)p->mid, (json_int_t)p->ack, p->swallow, p->room, p->current));
    }
    for (size_t i = 0; i < st->num_rooms; i++)
        json_array_append_new(rooms, json_string(st->rooms[i].name));
    return out;
}

/* What state_save wrote, into the fresh state of the connection that took it over (untrusted only as far as another
 * node of the cluster is: sizes are bounded all the same). */
static void state_load(ag__sio_state_t *st, const json_t *in)
{
    size_t i;
    json_t *e;
    st->next_mid = json_integer_value(json_object_get(in, "next_mid"));
    st->last_ack = json_integer_value(json_object_get(in, "last_ack"));
    st->last_mid = json_integer_value(json_object_get(in, "last_mid"));
    const char *h = json_string_value(json_object_get(in, "last_hash"));
    st->last_hash = h != NULL ? strtoull(h, NULL, 10) : 0;
    set_room(st, json_string_value(json_object_get(in, "room")));
    json_array_foreach(json_object_get(in, "pend"), i, e)
    {
        if (i >= MAX_PENDING)
            break;
        pending_add(st, json_integer_value(json_array_get(e, 0)), json_integer_value(json_array_get(e, 1)),
                    json_is_true(json_array_get(e, 2)), json_string_value(json_array_get(e, 3)),
                    json_is_true(json_array_get(e, 4)));
    }
}

/* What a node that takes the connection over from a dead one needs to match a request emitted again (reemitted): written
 * to the store's record with each answer (conn.h carrier_state_brief). */
static size_t state_brief(const void *state, char *buf, size_t cap)
{
    const ag__sio_state_t *st = state;
    int n =
        snprintf(buf, cap, "%lld:%lld:%llu", (long long)st->last_ack, (long long)st->last_mid, (unsigned long long)st->last_hash);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* What state_brief wrote (read from the store: checked as anything read back is). */
static void brief_load(ag_conn_t *c, ag__sio_state_t *st, const char *brief)
{
    long long ack, mid;
    unsigned long long hash;
    int used = 0;
    if (sscanf(brief, "%lld:%lld:%llu%n", &ack, &mid, &hash, &used) != 3 || (size_t)used != strlen(brief) || ack < 0 || mid <= 0)
        return;
    st->last_ack = ack;
    st->last_mid = mid;
    st->last_hash = hash;
    char key[32];
    snprintf(key, sizeof(key), "%lld", mid);
    /* its answer is among the frames replayed: it goes as the ACK it was (the client dropped that id and ignores it), not
     * as an event; the request emitted again gets it under its new id (reemitted) */
    if (ag_conn_reply_of(c, key) != NULL)
        pending_add(st, mid, ack, 0, NULL, 0);
}

/* A connection whose node died comes without the layer's request table: its requests are numbered after every answer
 * it kept, so that an answer replayed from before never reaches a request made after. */
static int64_t newest_answered(const ag_conn_t *c)
{
    const char *token;
    const ag_outbox_t *o;
    uint64_t left;
    int64_t newest = 0;
    if (ag_conn_resume_info(c, &token, &o, &left) != AG_OK)
        return 0;
    for (size_t i = 0; i < o->n; i++) {
        const char *mid = ag_outbox_at(o, i)->message_id;
        long long v = mid != NULL ? strtoll(mid, NULL, 10) : 0;
        if (v > newest)
            newest = v;
    }
    return newest;
}

static void on_recovered(ag_conn_t *carrier, ag_conn_t *resumed, const char *reason, const json_t *carried, void *ud)
{
    ag_sio_t *sio = ud;
    sio->recovering = 0;
    if (resumed != NULL) {
        /* the session now carries resumed (tr_rebind, or the carrier became it); the client stands where its offset said */
        ag__sio_state_t *st = resumed->carrier_state;
        if (resumed == carrier) {
            /* taken over from another node or worker: its pid is the one the client presented (checked: the token is
             * the connection's), and what the layer knew of it came along when it was handed over live */
            snprintf(st->pid, sizeof(st->pid), "%s", sio->want_pid);
            if (json_is_object(carried)) {
                state_load(st, carried);
            } else {
                st->next_mid = newest_answered(resumed);
                if (json_is_string(carried))
                    brief_load(resumed, st, json_string_value(carried));
                if (st->last_mid > st->next_mid)
                    st->next_mid = st->last_mid;
            }
        }
        ag__sio_tracked_clear(st->rooms, &st->num_rooms);
        memcpy(st->rooms, sio->rec_rooms, sio->num_rec_rooms * sizeof(*st->rooms));
        st->num_rooms = sio->num_rec_rooms;
        sio->num_rec_rooms = 0;
        st->seq = sio->rec_seq;
        st->overflow = 0;
        st->matching = 1;
        ag_debug("socket.io", resumed->id, "recovered from %llu", (unsigned long long)sio->rec_seq);
        connect_answer(sio, resumed, st->pid);
    } else {
        ag_debug("socket.io", carrier->id, "not recovered: %s", reason);
        make_recoverable(sio, carrier);
        connect_answer(sio, carrier, ((ag__sio_state_t *)carrier->carrier_state)->pid);
    }
    want_clear(sio);
    lower_kick(sio);
}

/* The connection the pid names is on another node or worker: the client's offset is read against what came of it (the
 * rooms it got lines of when it was handed over live, else its rooms), as against a connection held here. */
static int recovery_position(void *ud, const json_t *rec, uint64_t *seq, json_t *offsets)
{
    ag_sio_t *sio = ud;
    ag__sio_state_t tmp = {0};
    const json_t *names = json_object_get(json_object_get(rec, "carrier"), "rooms");
    const char *name;
    json_t *e;
    size_t i;
    if (json_is_array(names)) {
        json_array_foreach(names, i, e)
        {
            if (json_is_string(e) && tmp.num_rooms < AG__SIO_TRACKED_ROOMS)
                tmp.rooms[tmp.num_rooms++] =
                    (ag__sio_tracked_t){ag__sio_room_hash(json_string_value(e)), 0, (char *)json_string_value(e)};
        }
    } else {
        json_object_foreach(json_object_get(rec, "rooms"), name, e)
        {
            if (tmp.num_rooms < AG__SIO_TRACKED_ROOMS)
                tmp.rooms[tmp.num_rooms++] = (ag__sio_tracked_t){ag__sio_room_hash(name), 0, (char *)name};
        }
    }
    ag__sio_tracked_clear(sio->rec_rooms, &sio->num_rec_rooms);
    if (ag__sio_offset_parse(&tmp, sio->want_offset, seq, offsets, sio->rec_rooms, &sio->num_rec_rooms) != 0)
        return -1;
    sio->rec_seq = *seq;
    return 0;
}

/* The CONNECT presented a pid and an offset: the connection they name carries on on this session if they are right. */
static void recover(ag_sio_t *sio)
{
    const char *pid = sio->want_pid, *dot = strchr(pid, '.');
    char id[AG__SIO_ID_MAX + 1];
    uint64_t seq = 0;
    json_t *offsets = json_object();
    if (dot == NULL || (size_t)(dot - pid) > AG__SIO_ID_MAX || offsets == NULL) {
        json_decref(offsets);
        on_recovered(sio->conn, NULL, "a malformed pid", NULL, sio);
        return;
    }
    memcpy(id, pid, (size_t)(dot - pid));
    id[dot - pid] = '\0';
    /* only a socket.io connection can be recovered here; the offset is read against what it was sent */
    ag_conn_t *old = ag_conn_find(sio->server, id);
    if (old != NULL &&
        (old->carrier_state_free != ag__sio_state_free ||
         ag__sio_offset_parse(old->carrier_state, sio->want_offset, &seq, offsets, sio->rec_rooms, &sio->num_rec_rooms) != 0)) {
        json_decref(offsets);
        on_recovered(sio->conn, NULL, "a pid or an offset that does not fit", NULL, sio);
        return;
    }
    sio->rec_seq = seq;
    sio->recovering = 1;
    /* an unknown id, a wrong token, a window that passed: refused there, with the reason; a connection another node or
     * worker holds is handed over (recovery_position reads the offset then) */
    ag__resume_take_over(sio->conn, id, dot + 1, seq, offsets, recovery_position, on_recovered, sio);
    json_decref(offsets);
}

/* claims: the verified token, or NULL (borrowed). */
static void attach_conn(ag_sio_t *sio, const char *fp, json_t *hook_data, json_t *claims)
{
    ag_conn_info_t info = {fp,  sio->remote_ip, sio->remote_port, sio->transport_name, hook_data != NULL, hook_data, NULL, claims,
                           NULL};
    ag__sio_state_t *st = calloc(1, sizeof(*st));
    sio->creating = 1;
    sio->conn = st != NULL ? ag_conn_create(sio->server, &sio_transport, sio, &info) : NULL;
    sio->creating = 0;
    if (sio->conn == NULL) {
        free(st);
        want_clear(sio);
        out_push(sio, ag_sio_encode(AG_SIO_CONNECT_ERROR, NULL, -1, NULL, "{\"message\":\"server error\"}", 26, NULL), 0);
    } else {
        sio->conn->carrier_state = st;
        sio->conn->carrier_state_free = ag__sio_state_free;
        sio->conn->carrier_state_save = state_save;
        sio->conn->carrier_state_brief = state_brief;
        if (h2o_timeout_is_linked(&sio->connect_timer))
            h2o_timeout_unlink(&sio->connect_timer);
        if (sio->want_pid != NULL && sio->want_offset != NULL && !sio->legacy &&
            sio->server->config->servers.socketio.connectionStateRecovery) {
            recover(sio); /* answers the CONNECT when it knows */
            return;
        }
        want_clear(sio);
        make_recoverable(sio, sio->conn);
        connect_answer(sio, sio->conn, st->pid);
    }
    if (h2o_timeout_is_linked(&sio->connect_timer))
        h2o_timeout_unlink(&sio->connect_timer);
    lower_kick(sio);
}

/* socket.io's refusal from a middleware: CONNECT_ERROR with the text; the session stays until connectTimeout. */
static void connect_error(ag_sio_t *sio, const char *refusal)
{
    json_t *body = json_pack("{s:s}", "message", refusal);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    if (text != NULL)
        out_push(sio, ag_sio_encode(AG_SIO_CONNECT_ERROR, NULL, -1, NULL, text, strlen(text), NULL), 0);
    free(text);
    json_decref(body);
    lower_kick(sio);
}

static void on_connect_answer(void *data, const char *refusal, json_t *reply)
{
    ag_sio_t *sio = data;
    sio->hook_call = NULL;
    char *fp = sio->hook_fp;
    sio->hook_fp = NULL;
    json_t *claims = sio->hook_claims;
    sio->hook_claims = NULL;
    if (refusal != NULL) {
        connect_error(sio, refusal);
    } else {
        json_t *d = json_object_get(reply, "data");
        json_t *hook_data = json_is_object(d) ? json_incref(d) : json_object();
        attach_conn(sio, fp, hook_data, claims);
        json_decref(hook_data);
    }
    json_decref(claims);
    free(fp);
}

/* The CONNECT's token: auth.token, else the engine.io handshake's (query or Authorization header). Checked first;
 * AG_TOKEN_OK with *claims a new reference or NULL. */
static ag_token_err_t connect_token(ag_sio_t *sio, const ag_sio_packet_t *p, json_t **claims)
{
    *claims = NULL;
    json_t *tok = json_object_get(p->data, "token");
    if (tok != NULL) {
        /* a token that is not a string is presented and invalid, not absent */
        const char *text = json_is_string(tok) ? json_string_value(tok) : "";
        return ag_token_check_text(sio->server, text, json_is_string(tok) ? json_string_length(tok) : 0, sio->remote_ip, claims);
    }
    if (sio->hs_claims != NULL) {
        /* the engine.io session may CONNECT again long after its handshake: its token may have expired meanwhile */
        json_t *exp = json_object_get(sio->hs_claims, "exp");
        if (json_is_number(exp) &&
            (double)(ag_now_ms() / 1000) >= json_number_value(exp) + (double)sio->server->config->tokens.leeway)
            return AG_TOKEN_EXPIRED;
        *claims = json_incref(sio->hs_claims);
        return AG_TOKEN_OK;
    }
    return ag_token_check_text(sio->server, NULL, 0, sio->remote_ip, claims);
}

static void on_connect(ag_sio_t *sio, const ag_sio_packet_t *p)
{
    const char *fp = sio->fingerprint;
    const char *cookie_key = sio->server->config->servers.web.cookieKey;
    /* A page that cannot put the fingerprint in the URL may pass it in the CONNECT auth payload. */
    if (fp == NULL && json_is_string(json_object_get(p->data, cookie_key)))
        fp = json_string_value(json_object_get(p->data, cookie_key));
    /* socket.io-client's recovery: {pid, offset} merged into the auth payload (bounded; checked when it is used) */
    const char *pid = json_string_value(json_object_get(p->data, "pid"));
    const char *offset = json_string_value(json_object_get(p->data, "offset"));
    want_clear(sio);
    if (pid != NULL && offset != NULL && strlen(pid) <= AG__SIO_PID_MAX && strlen(offset) <= AG__SIO_OFFSET_MAX) {
        sio->want_pid = strdup(pid);
        sio->want_offset = strdup(offset);
    }
    json_t *claims;
    ag_token_err_t terr = connect_token(sio, p, &claims);
    if (terr != AG_TOKEN_OK) {
        connect_error(sio, ag_token_client_error(terr));
        return;
    }
    if (!ag_backend_has(sio->server, AG_HOOK_CONNECT)) {
        attach_conn(sio, fp, NULL, claims);
        json_decref(claims);
        return;
    }
    json_t *params = sio->handshake != NULL ? json_deep_copy(sio->handshake) : json_object();
    if (params != NULL) {
        json_object_set_new(params, "remoteIP", json_string(sio->remote_ip));
        json_object_set_new(params, "transport", json_string(sio->transport_name));
        if (fp != NULL)
            json_object_set_new(params, "fingerprint", json_string(fp));
        json_object_set(params, "auth", json_is_object(p->data) ? p->data : json_null());
        json_t *sub = json_object_get(claims, "sub");
        if (json_is_string(sub))
            json_object_set(params, "user", sub);
        if (claims != NULL)
            json_object_set(params, "claims", claims);
    }
    sio->hook_fp = fp != NULL ? strdup(fp) : NULL;
    sio->hook_claims = claims;
    ag_backend_ask(sio->server, AG_HOOK_CONNECT, params, fp, sio->remote_ip, on_connect_answer, sio, &sio->hook_call);
}

/* The connection ends for why: the client left "/" (it keeps its engine.io session and may CONNECT again), or the
 * session is gone. */
static void detach(ag_sio_t *sio, const ag_disconnect_t *why, int for_good)
{
    ag_conn_t *c = sio->conn;
    sio->conn = NULL;
    sio->recovering = 0; /* its connection was never resumable: it ends, and the recovery's answer with it */
    want_clear(sio);
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
    if (st->num_pend >= MAX_PENDING) {
        fail(sio, "too many unanswered requests");
        return;
    }
    ag__sio_pending_t *p = pending_add(st, -1, ack, swallow, room, current);
    if (p == NULL)
        return;
    if (ack >= 0) {
        /* a recovered client may emit it again: see reemitted */
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

/*
 * socket.io-client forgets the acks it waits for when its connection drops; with `retries` (one request in flight at a
 * time) it emits the unanswered one again as soon as it is connected: the same text under a new ack id (the next, or a
 * later one when an emit again was itself lost in a drop). So the first event after a recovery is that request again
 * when its ack id is above the newest one the connection got (nothing the client emitted since reached it), its text
 * is the same, and its answer is kept or still to come: it gets the stored answer, or the answer when it comes, under
 * its new ack id, and does not run twice. Whether the client got the answer cannot be told (it may have, and still
 * emit again: an ACK that arrives after it gave up on its connection is dropped), so a new request of the same text,
 * first after a recovery, is answered so too. 1 when handled.
 */
static int reemitted(ag_sio_t *sio, ag__sio_state_t *st, int64_t ack)
{
    if (st->last_mid <= 0 || ack <= st->last_ack || st->last_hash != sio->ev_hash)
        return 0;
    char key[32];
    snprintf(key, sizeof(key), "%lld", (long long)st->last_mid);
    ag_frame_t *f = ag_conn_reply_of(sio->conn, key);
    ag__sio_pending_t *p = pending_find(st, st->last_mid);
    if (p != NULL) {
        /* still to be answered, or answered under an ack id an earlier emit again had (its ACK was lost in a drop, and
         * the client forgot that id): one entry per request, under the newest ack id, or the stale one would take the
         * answer and this emit wait forever */
        p->ack = ack;
        if (f != NULL)
            ag_conn_send_unnumbered(sio->conn, f);
    } else if (f != NULL) {
        if (pending_add(st, st->last_mid, ack, 0, NULL, 0) == NULL)
            return 0;
        ag_conn_send_unnumbered(sio->conn, f);
    } else {
        return 0;
    }
    st->last_ack = ack;
    return 1;
}

static void on_event(ag_sio_t *sio, const ag_sio_packet_t *p)
{
    ag__sio_state_t *st = state_of(sio);
    if (st->matching) {
        st->matching = 0;
        if (p->id >= 0 && reemitted(sio, st, p->id))
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
            set_room(st, NULL);
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
        out_push(sio, ag_sio_encode(AG_SIO_ACK, NULL, sio->drop_ack, "[", err, sizeof(err) - 1, "]"), 0);
    else
        out_push(sio, ag_sio_encode_event(NULL, -1, "response", err, sizeof(err) - 1), 0);
    lower_kick(sio);
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
                out_push(sio, ag_sio_encode(AG_SIO_CONNECT_ERROR, nsp, -1, NULL, "\"Invalid namespace\"", 19, NULL), 0);
            else
                out_push(sio, ag_sio_encode(AG_SIO_CONNECT_ERROR, nsp, -1, NULL, "{\"message\":\"Invalid namespace\"}", 31, NULL),
                         0);
            lower_kick(sio);
        } else if (sio->conn != NULL || sio->hook_call != NULL) {
            fail(sio, "CONNECT while connected");
        } else {
            on_connect(sio, &p);
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
    on_connect(sio, &none);
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
