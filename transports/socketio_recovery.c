/*
 * socket.io's connection state recovery, the layer's side (socketio.h, README "Resume"): where a client stands (the
 * offset string every event carries), reading what a client presents back, frames without the resume core's numbers;
 * the connection made recoverable, a recovering CONNECT (asked by socketio_connect.c), the layer's state carried in a
 * hand-over or a takeover, and a request emitted again after a recovery.
 */
#include "socketio_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "outbox.h"
#include "rooms.h"

void ag__sio_tracked_clear(ag__sio_tracked_t *t, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free(t[i].name);
    *n = 0;
}

uint32_t ag__sio_room_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

uint64_t ag__sio_text_hash(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* A room line reaches the client: its room's offset moves on (1: the client has it already). A room the offsets cannot
 * name makes them unusable. */
static int track_room(ag_conn_t *conn, ag__sio_state_t *st, const char *name, uint64_t offset)
{
    uint32_t h = ag__sio_room_hash(name);
    for (size_t i = 0; i < st->num_rooms; i++) {
        if (st->rooms[i].hash != h)
            continue;
        if (strcmp(st->rooms[i].name, name) != 0) {
            st->overflow = 1; /* two rooms, one hash: an offset could not tell them apart */
            return 0;
        }
        if (offset <= st->rooms[i].offset)
            return 1;
        st->rooms[i].offset = offset;
        return 0;
    }
    /* room lines of rooms the connection left are of no use to a recovery */
    for (size_t i = 0; st->num_rooms == AG__SIO_TRACKED_ROOMS && i < st->num_rooms; i++) {
        if (!ag__conn_in_room(conn, st->rooms[i].name)) {
            free(st->rooms[i].name);
            st->rooms[i] = st->rooms[--st->num_rooms];
        }
    }
    char *copy = st->num_rooms < AG__SIO_TRACKED_ROOMS ? strdup(name) : NULL;
    if (copy == NULL) {
        st->overflow = 1;
        return 0;
    }
    st->rooms[st->num_rooms++] = (ag__sio_tracked_t){h, offset, copy};
    return 0;
}

void ag__sio_forget_room(ag__sio_state_t *st, const char *room)
{
    for (size_t i = 0; i < st->num_rooms; i++) {
        if (strcmp(st->rooms[i].name, room) == 0) {
            free(st->rooms[i].name);
            st->rooms[i] = st->rooms[--st->num_rooms];
            return;
        }
    }
}

/* What a translated session frame tells about where the client stands: a numbered frame's seq, a room line's offset. */
int ag__sio_track(ag_conn_t *conn, ag__sio_state_t *st, json_t *obj)
{
    json_t *seq = json_object_get(obj, "seq"), *off = json_object_get(obj, "offset"), *room = json_object_get(obj, "room");
    if (json_is_integer(seq)) {
        if (json_integer_value(seq) > 0 && (uint64_t)json_integer_value(seq) > st->seq)
            st->seq = (uint64_t)json_integer_value(seq);
    } else if (json_is_integer(off) && json_integer_value(off) > 0 && json_is_string(room)) {
        return track_room(conn, st, json_string_value(room), (uint64_t)json_integer_value(off));
    }
    return 0;
}

/* "<seq>" then ".<room hash, 8 hex digits>-<offset>" per tracked room; "x" when they cannot be told. */
void ag__sio_offset_text(const ag__sio_state_t *st, char buf[AG__SIO_OFFSET_MAX + 1])
{
    if (st->overflow) {
        snprintf(buf, AG__SIO_OFFSET_MAX + 1, "x");
        return;
    }
    size_t n = (size_t)snprintf(buf, AG__SIO_OFFSET_MAX + 1, "%llu", (unsigned long long)st->seq);
    for (size_t i = 0; i < st->num_rooms && n < AG__SIO_OFFSET_MAX; i++)
        n += (size_t)snprintf(buf + n, AG__SIO_OFFSET_MAX + 1 - n, ".%08x-%llu", (unsigned)st->rooms[i].hash,
                              (unsigned long long)st->rooms[i].offset);
}

/* A decimal number of 1 to 20 digits that fits an int64 (offsets and seqs travel as JSON integers); advances *p. */
static int read_u64(const char **p, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    size_t n = 0;
    for (; *s >= '0' && *s <= '9'; s++, n++) {
        if (n == 19 || (x == 0 && n == 1))
            return -1; /* too long, or a leading zero */
        x = x * 10 + (uint64_t)(*s - '0');
    }
    if (n == 0 || x > (uint64_t)INT64_MAX)
        return -1;
    *p = s;
    *v = x;
    return 0;
}

/* The offset a client presents (untrusted): its seq and, for each room it names, the offset, as {room: offset} in
 * offsets, the rooms' names read from st (the connection it recovers) into out. 0, or -1 when any of it is wrong. */
int ag__sio_offset_parse(const ag__sio_state_t *st, const char *text, uint64_t *seq, json_t *offsets, ag__sio_tracked_t *out,
                         size_t *nout)
{
    const char *p = text;
    *nout = 0;
    if (strlen(text) > AG__SIO_OFFSET_MAX || read_u64(&p, seq) != 0)
        return -1;
    while (*p != '\0') {
        char hex[9];
        uint64_t off;
        if (*p++ != '.' || *nout == AG__SIO_TRACKED_ROOMS || strspn(p, "0123456789abcdef") < 8)
            return -1;
        memcpy(hex, p, 8);
        hex[8] = '\0';
        p += 8;
        if (*p++ != '-' || read_u64(&p, &off) != 0 || off == 0)
            return -1;
        uint32_t h = (uint32_t)strtoul(hex, NULL, 16);
        const ag__sio_tracked_t *t = NULL;
        for (size_t i = 0; i < st->num_rooms && t == NULL; i++)
            if (st->rooms[i].hash == h)
                t = &st->rooms[i];
        if (t == NULL || json_object_get(offsets, t->name) != NULL)
            return -1; /* a room it never got a line of, or named twice */
        char *name = strdup(t->name);
        if (name == NULL || json_object_set_new(offsets, t->name, json_integer((json_int_t)off)) != 0) {
            free(name);
            return -1;
        }
        out[(*nout)++] = (ag__sio_tracked_t){h, off, name};
    }
    return 0;
}

ag__sio_body_t ag__sio_bare_body(const ag_frame_t *f)
{
    static const char head[] = "{\"seq\":";
    ag__sio_body_t b = {"", f->data, "", f->len};
    const char *end = f->data + f->len;
    if (f->len > sizeof(head) && memcmp(f->data, head, sizeof(head) - 1) == 0) {
        const char *p = f->data + sizeof(head) - 1;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p < end && (*p == ',' || *p == '}')) {
            b.lead = "{";
            b.data = *p == ',' ? p + 1 : p;
            b.len = (size_t)(end - b.data);
        }
        return b;
    }
    /* the offset is the last member of a room line (rooms_history.c, ag__rooms_with_offset) */
    const char *p = end - 1;
    if (b.len < 12 || *p != '}')
        return b;
    for (p--; p > b.data && *p >= '0' && *p <= '9'; p--)
        ;
    static const char key[] = "\"offset\":";
    size_t kl = sizeof(key) - 1;
    if (p == end - 2 || (size_t)(p - b.data) < kl || memcmp(p + 1 - kl, key, kl) != 0)
        return b;
    p -= kl; /* at the character before the key: ',' or the opening brace */
    if (*p == ',') {
        b.len = (size_t)(p - b.data);
        b.trail = "}";
    } else if (*p == '{' && p == b.data) {
        b.len = 1;
        b.trail = "}";
    }
    return b;
}

/* "<opening><lead>" and "<trail><closing>" around b, as one packet. */
ag_frame_t *ag__sio_encode_body(ag_sio_type_t type, int64_t id, const char *opening, const ag__sio_body_t *b, const char *closing)
{
    size_t ol = strlen(opening), cl = strlen(closing);
    char *pre = malloc(ol + 2), *suf = malloc(cl + 2);
    ag_frame_t *f = NULL;
    if (pre != NULL && suf != NULL) {
        snprintf(pre, ol + 2, "%s%s", opening, b->lead);
        snprintf(suf, cl + 2, "%s%s", b->trail, closing);
        f = ag_sio_encode(type, NULL, id, pre, b->data, b->len, suf);
    }
    free(pre);
    free(suf);
    return f;
}

/* EVENT ["<name>",<json>,"<offset>"]: the offset, last, is what socket.io-client keeps and presents when it comes back. */
ag_frame_t *ag__sio_encode_event_offset(const ag__sio_state_t *st, const char *name, const ag__sio_body_t *b)
{
    json_t *jn = json_string(name);
    char *esc = jn != NULL ? json_dumps(jn, JSON_ENCODE_ANY) : NULL;
    json_decref(jn);
    char off[AG__SIO_OFFSET_MAX + 1], closing[AG__SIO_OFFSET_MAX + 8];
    ag__sio_offset_text(st, off);
    snprintf(closing, sizeof(closing), ",\"%s\"]", off);
    size_t el = esc != NULL ? strlen(esc) : 0;
    char *opening = esc != NULL ? malloc(el + 3) : NULL;
    ag_frame_t *f = NULL;
    if (opening != NULL) {
        snprintf(opening, el + 3, "[%s,", esc);
        f = ag__sio_encode_body(AG_SIO_EVENT, -1, opening, b, closing);
    }
    free(opening);
    free(esc);
    return f;
}

/* --- the connection made recoverable, recovered, handed over --- */

/* The connection becomes resumable and gets its pid when resume is on (general.resumeWindow, a store with history). */
void ag__sio_make_recoverable(ag_sio_t *sio, ag_conn_t *c)
{
    ag__sio_state_t *st = c->carrier_state;
    char token[AG_RESUME_TOKEN_LEN + 1];
    if (!sio->legacy && sio->server->config->servers.socketio.connectionStateRecovery && ag_conn_resumable(c, token) == AG_OK)
        snprintf(st->pid, sizeof(st->pid), "%s.%s", c->id, token);
}

void ag__sio_want_clear(ag_sio_t *sio)
{
    free(sio->want_pid);
    free(sio->want_offset);
    sio->want_pid = sio->want_offset = NULL;
    ag__sio_tracked_clear(sio->rec_rooms, &sio->num_rec_rooms);
}

/* The layer's state of a connection as JSON, for the node or worker it is handed over to (conn.h carrier_state_save):
 * its request table, the rooms it got lines of, what a request emitted again is matched with, its current room. */
json_t *ag__sio_state_save(const void *state)
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

/* What ag__sio_state_save wrote, into the fresh state of the connection that took it over (untrusted only as far as another
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
    ag__sio_set_room(st, json_string_value(json_object_get(in, "room")));
    json_array_foreach(json_object_get(in, "pend"), i, e)
    {
        if (i >= AG__SIO_MAX_PENDING)
            break;
        ag__sio_pending_add(st, json_integer_value(json_array_get(e, 0)), json_integer_value(json_array_get(e, 1)),
                            json_is_true(json_array_get(e, 2)), json_string_value(json_array_get(e, 3)),
                            json_is_true(json_array_get(e, 4)));
    }
}

/* What a node that takes the connection over from a dead one needs to match a request emitted again (ag__sio_reemitted): written
 * to the store's record with each answer (conn.h carrier_state_brief). */
size_t ag__sio_state_brief(const void *state, char *buf, size_t cap)
{
    const ag__sio_state_t *st = state;
    int n =
        snprintf(buf, cap, "%lld:%lld:%llu", (long long)st->last_ack, (long long)st->last_mid, (unsigned long long)st->last_hash);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* What ag__sio_state_brief wrote (read from the store: checked as anything read back is). */
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
     * as an event; the request emitted again gets it under its new id (ag__sio_reemitted) */
    if (ag_conn_reply_of(c, key) != NULL)
        ag__sio_pending_add(st, mid, ack, 0, NULL, 0);
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
        ag__sio_connect_answer(sio, resumed, st->pid);
    } else {
        ag_debug("socket.io", carrier->id, "not recovered: %s", reason);
        ag__sio_make_recoverable(sio, carrier);
        ag__sio_connect_answer(sio, carrier, ((ag__sio_state_t *)carrier->carrier_state)->pid);
    }
    ag__sio_want_clear(sio);
    ag__sio_lower_kick(sio);
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
void ag__sio_recover(ag_sio_t *sio)
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
int ag__sio_reemitted(ag_sio_t *sio, ag__sio_state_t *st, int64_t ack)
{
    if (st->last_mid <= 0 || ack <= st->last_ack || st->last_hash != sio->ev_hash)
        return 0;
    char key[32];
    snprintf(key, sizeof(key), "%lld", (long long)st->last_mid);
    ag_frame_t *f = ag_conn_reply_of(sio->conn, key);
    ag__sio_pending_t *p = ag__sio_pending_find(st, st->last_mid);
    if (p != NULL) {
        /* still to be answered, or answered under an ack id an earlier emit again had (its ACK was lost in a drop, and
         * the client forgot that id): one entry per request, under the newest ack id, or the stale one would take the
         * answer and this emit wait forever */
        p->ack = ack;
        if (f != NULL)
            ag_conn_send_unnumbered(sio->conn, f);
    } else if (f != NULL) {
        if (ag__sio_pending_add(st, st->last_mid, ack, 0, NULL, 0) == NULL)
            return 0;
        ag_conn_send_unnumbered(sio->conn, f);
    } else {
        return 0;
    }
    st->last_ack = ack;
    return 1;
}
