/*
 * Rooms: membership (store + local index), chat fan-out through the store's pub/sub, push to rooms and connections.
 * See rooms.h for the shape of the channel payloads; the hook chain is rooms_hooks.c, a room's history (missed lines,
 * resume replay) rooms_history.c.
 */
#include "rooms_internal.h"
#include "json.h"
#include "push.h"

#include <stdlib.h>
#include <string.h>

/* Room names here are at most AG_CONFIG_ROOM_NAME_MAX bytes (the configuration refuses a larger bound). */
#define CHANNEL_MAX (sizeof("room:") + AG_CONFIG_ROOM_NAME_MAX)
#define MEMBER_KEY_MAX (sizeof(((ag_conn_t *)0)->id) + 1 + AG_CONFIG_ROOM_NAME_MAX + 1)

size_t ag_conn_rooms(const ag_conn_t *c, int (*cb)(const char *room, void *data), void *data)
{
    size_t calls = 0;
    for (const ag_room_member_t *m = c->rooms_first; m != NULL; m = ag__room_next(m)) {
        calls++;
        if (cb(ag__room_name(m), data) != 0)
            break;
    }
    return calls;
}

int ag__room_name_check(const ag_server_t *s, const char *room)
{
    size_t max = (size_t)s->config->general.maxRoomNameLength;
    if (room == NULL || room[0] == '\0' || strnlen(room, max + 1) > max)
        return AG_EINVAL;
    return AG_OK;
}

/* The store channel of a room whose name passed ag__room_name_check. */
static void channel_of(const char *room, char buf[CHANNEL_MAX])
{
    snprintf(buf, CHANNEL_MAX, "room:%s", room);
}

/* Writes an error with the configured bound: "<what> (at most N)". */
static const char *bound_error(char *buf, size_t len, const char *what, long bound)
{
    snprintf(buf, len, "%s (at most %ld)", what, bound);
    return buf;
}

/* --- the local index --- */

/* The membership map's key; 0 when room cannot be a room here (too long), so c is not in it. */
static int member_key(const ag_conn_t *c, const char *room, char key[MEMBER_KEY_MAX])
{
    size_t len = strnlen(room, AG_CONFIG_ROOM_NAME_MAX + 1);
    if (len > AG_CONFIG_ROOM_NAME_MAX)
        return 0;
    size_t idlen = strlen(c->id);
    memcpy(key, c->id, idlen);
    key[idlen] = ' ';
    memcpy(key + idlen + 1, room, len + 1);
    return 1;
}

ag_room_member_t *ag__rooms_member_find(const ag_conn_t *c, const char *room)
{
    char key[MEMBER_KEY_MAX];
    if (room == NULL || !member_key(c, room, key))
        return NULL;
    return ag_map_get(&c->server->rooms->memberships, key);
}

int ag__conn_in_room(const ag_conn_t *c, const char *room)
{
    return ag__rooms_member_find(c, room) != NULL;
}

const ag_room_member_t *ag__room_next(const ag_room_member_t *m)
{
    return m->next;
}

const char *ag__room_name(const ag_room_member_t *m)
{
    return m->room->name;
}

void ag__room_resume_point(const ag_room_member_t *m, uint64_t *epoch, uint64_t *since)
{
    *epoch = m->epoch;
    *since = m->since;
}

const char *ag__conn_first_room(const ag_conn_t *c)
{
    return c->rooms_first != NULL ? c->rooms_first->room->name : NULL;
}

size_t ag__room_local_members(ag_server_t *s, const char *room)
{
    ag__lroom_t *lr = ag_map_get(&s->rooms->local, room);
    return lr != NULL ? lr->n : 0;
}

static void lroom_free(ag_server_t *s, ag__lroom_t *lr)
{
    char ch[CHANNEL_MAX];
    channel_of(lr->name, ch);
    s->store->ops->unsubscribe(s->store, ch);
    ag_map_del(&s->rooms->local, lr->name);
    ag_line_order_dispose(&lr->order);
    free(lr->members);
    free(lr);
}

/* The local side of a join whose store side succeeded. */
static int local_add(ag_conn_t *c, const char *room)
{
    ag_server_t *s = c->server;
    char key[MEMBER_KEY_MAX];
    if (!member_key(c, room, key))
        return AG_EINVAL;
    ag__lroom_t *lr = ag_map_get(&s->rooms->local, room);
    if (lr == NULL) {
        size_t len = strlen(room);
        if ((lr = calloc(1, sizeof(*lr) + len + 1)) == NULL)
            return AG_ENOMEM;
        memcpy(lr->name, room, len + 1);
        if (ag_map_set(&s->rooms->local, room, lr) != AG_OK) {
            free(lr);
            return AG_ENOMEM;
        }
        char ch[CHANNEL_MAX];
        channel_of(room, ch);
        s->store->ops->subscribe(s->store, ch);
    }
    ag_room_member_t *m = NULL;
    if (lr->n == lr->cap) {
        size_t ncap = lr->cap == 0 ? 4 : lr->cap * 2;
        ag_room_member_t **n = realloc(lr->members, ncap * sizeof(*n));
        if (n != NULL) {
            lr->members = n;
            lr->cap = ncap;
        }
    }
    if (lr->n == lr->cap || (m = calloc(1, sizeof(*m))) == NULL || ag_map_set(&s->rooms->memberships, key, m) != AG_OK) {
        free(m);
        if (lr->n == 0)
            lroom_free(s, lr);
        return AG_ENOMEM;
    }
    m->conn = c;
    m->room = lr;
    m->slot = lr->n;
    lr->members[lr->n++] = m;
    m->prev = c->rooms_last;
    if (c->rooms_last != NULL)
        c->rooms_last->next = m;
    else
        c->rooms_first = m;
    c->rooms_last = m;
    c->num_rooms++;
    return AG_OK;
}

/* Forgets the membership locally (the caller updates the store). m is freed; its name is gone with the last member. */
static void local_remove(ag_room_member_t *m)
{
    ag_conn_t *c = m->conn;
    ag_server_t *s = c->server;
    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        c->rooms_first = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    else
        c->rooms_last = m->prev;
    c->num_rooms--;
    ag__lroom_t *lr = m->room;
    ag_room_member_t *last = lr->members[--lr->n];
    lr->members[m->slot] = last;
    last->slot = m->slot;
    char key[MEMBER_KEY_MAX];
    if (member_key(c, lr->name, key))
        ag_map_del(&s->rooms->memberships, key);
    ag_conn_record_room(c, lr->name, NULL, 0); /* nothing while it closes: its record goes whole */
    free(m);
    if (lr->n == 0)
        lroom_free(s, lr);
}

/* --- publishing --- */

static int publish(ag_server_t *s, const char *room, char type, const json_t *frame)
{
    if (ag__room_name_check(s, room) != AG_OK)
        return AG_EINVAL; /* no such room can exist here */
    size_t len = ag_json_dumpb(frame, NULL, 0);
    if (len > ag_conn_max_frame(s))
        return AG_ETOOBIG; /* no member could queue it: refused here, once, rather than dropped by every member */
    char *buf = malloc(len + 1);
    if (len == 0 || buf == NULL) {
        free(buf);
        return AG_ENOMEM;
    }
    buf[0] = type;
    ag_json_dumpb(frame, buf + 1, len);
    char ch[CHANNEL_MAX];
    channel_of(room, ch);
    /* chat lines and room pushes are kept once per room for resumes (the recipients keep nothing of them) */
    if (type != 'd' && s->store->history_lines != 0 && s->store->ops->history_publish != NULL)
        s->store->ops->history_publish(s->store, room, ch, buf, len + 1, NULL, NULL);
    else
        s->store->ops->publish(s->store, ch, buf, len + 1, NULL, NULL);
    free(buf);
    return AG_OK;
}

static json_t *chat_payload(const char *room, const char *from, const char *message)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:I}", "message", message, "room", room, "from", from, "context", "user", "sentAt",
                     (json_int_t)ag_now_ms());
}

int ag_room_broadcast(ag_server_t *s, const char *room, const char *message)
{
    json_t *p = chat_payload(room, "0", message);
    int ret = p != NULL ? publish(s, room, 'c', p) : AG_ENOMEM;
    json_decref(p);
    return ret;
}

int ag_push_room(ag_server_t *s, const char *room, json_t *obj)
{
    if (!json_is_object(obj))
        return AG_EINVAL;
    json_t *o = ag__push_payload(obj);
    int ret = o != NULL ? publish(s, room, 'p', o) : AG_ENOMEM;
    json_decref(o);
    return ret;
}

/* --- delivery (store -> this node) --- */

static void deliver(ag_server_t *s, const char *room, char type, const char *frame, size_t len, uint64_t offset)
{
    ag__lroom_t *lr = ag_map_get(&s->rooms->local, room);
    if (lr == NULL || lr->n == 0)
        return;
    if (len > ag_conn_max_frame(s)) {
        /* published by a node with a larger bound: every member would refuse it */
        ag_log(AG_LOG_WARN, "rooms", NULL, "a frame of %zu bytes for %.100s is over the limit of %zu: not delivered", len, room,
               ag_conn_max_frame(s));
        return;
    }
    /* A snapshot with references: a hook or a slow-consumer close may change the membership while we deliver. */
    size_t n = lr->n;
    ag_conn_t **snap = malloc(n * sizeof(*snap));
    if (snap == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        snap[i] = ag_conn_addref(lr->members[i]->conn);
    if (type == 'c' && ag__hooks_have_recipient(s)) {
        json_t *payload = json_loadb(frame, len, 0, NULL);
        for (size_t i = 0; payload != NULL && i < n; i++) {
            if (ag_conn_is_closed(snap[i]))
                continue;
            json_t *out = ag__hooks_say_recipient(snap[i], room, payload);
            if (out != NULL && ag_conn_is_resumable(snap[i])) {
                if (offset != 0)
                    json_object_set_new(out, "offset", json_integer((json_int_t)offset));
                ag_frame_t *f = ag_frame_from_json(out);
                if (f != NULL)
                    ag_conn_send_unnumbered(snap[i], f);
                if (f != NULL)
                    ag_frame_release(f);
            } else if (out != NULL) {
                ag_conn_send_json(snap[i], out);
            }
            json_decref(out);
        }
        json_decref(payload);
    } else {
        /* encoded at most twice: as it is, and with its offset for the resumable members */
        ag_frame_t *f = ag_frame_create(frame, len, 0), *fo = NULL;
        for (size_t i = 0; f != NULL && i < n; i++) {
            if (ag_conn_is_closed(snap[i]))
                continue;
            if (!ag_conn_is_resumable(snap[i])) {
                ag_conn_send(snap[i], f);
                continue;
            }
            if (fo == NULL && offset != 0)
                fo = ag__rooms_with_offset(frame, len, offset);
            ag_conn_send_unnumbered(snap[i], fo != NULL ? fo : f);
        }
        if (fo != NULL)
            ag_frame_release(fo);
        if (f != NULL)
            ag_frame_release(f);
    }
    for (size_t i = 0; i < n; i++)
        ag_conn_release(snap[i]);
    free(snap);
}

static void on_room_deleted(ag_server_t *s, const char *room)
{
    ag__lroom_t *lr;
    /* the room's entry goes with its last member */
    while ((lr = ag_map_get(&s->rooms->local, room)) != NULL)
        local_remove(lr->members[lr->n - 1]);
}

void ag__rooms_dispatch(ag_server_t *s, const char *room, const char *payload, size_t len, uint64_t offset)
{
    switch (payload[0]) {
    case 'c':
    case 'p':
        deliver(s, room, payload[0], payload + 1, len - 1, offset);
        break;
    case 'd':
        on_room_deleted(s, room);
        break;
    }
}

/* --- room lifecycle --- */

static void log_err(void *data, const char *err, json_t *res)
{
    (void)res;
    if (err != NULL)
        ag_log(AG_LOG_WARN, "rooms", NULL, "%s: %s", (const char *)data, err);
}

int ag_room_create(ag_server_t *s, const char *room)
{
    if (ag__room_name_check(s, room) != AG_OK)
        return AG_EINVAL;
    s->store->ops->room_add(s->store, room, log_err, "room_add");
    return AG_OK;
}

int ag_room_delete(ag_server_t *s, const char *room)
{
    if (ag__room_name_check(s, room) != AG_OK)
        return AG_EINVAL;
    ag_room_broadcast(s, room, AG_MSG_ROOM_DELETED);
    json_t *d = json_pack("{s:s}", "room", room);
    publish(s, room, 'd', d);
    json_decref(d);
    s->store->ops->room_del(s->store, room, log_err, "room_del");
    return AG_OK;
}

/* --- join / leave --- */

typedef struct {
    ag_conn_t *c;
    void (*cb)(ag_conn_t *c, const char *err, void *data);
    void *data;
    int in_flight; /* counted in c->joining: until the membership is local (then num_rooms counts it) or the join ends */
    int adopt;     /* a membership of a connection taken over (ag__rooms_adopt): where its history stood, no announce */
    uint64_t epoch, since;
    char room[];
} op_t;

static op_t *op_new(ag_conn_t *c, const char *room, void (*cb)(ag_conn_t *, const char *, void *), void *data)
{
    size_t len = strlen(room);
    op_t *op = malloc(sizeof(*op) + len + 1);
    if (op == NULL)
        return NULL;
    op->c = ag_conn_addref(c);
    op->cb = cb;
    op->data = data;
    op->in_flight = 0;
    op->adopt = 0;
    memcpy(op->room, room, len + 1);
    return op;
}

static void op_finish(op_t *op, const char *err)
{
    if (op->in_flight)
        op->c->joining--;
    if (op->cb != NULL)
        op->cb(op->c, err, op->data);
    ag_conn_release(op->c);
    free(op);
}

static void announce(ag_conn_t *c, const char *room, const char *what)
{
    if (!c->server->config->general.announceRoomJoins)
        return;
    char msg[128];
    snprintf(msg, sizeof(msg), "I have %s the room: %s", what, c->id);
    ag_room_broadcast(c->server, room, msg);
}

/* The store's answer, kept by the caller (the memory stores answer before returning). */
static void on_restore_step(void *data, const char *err, json_t *res)
{
    (void)res;
    *(int *)data = err == NULL || strcmp(err, "room exists") == 0 ? AG_OK : AG_ENOENT;
}

int ag__rooms_restore(ag_conn_t *c, const char *room, uint64_t epoch, uint64_t since)
{
    ag_store_t *st = c->server->store;
    if (ag__room_name_check(c->server, room) != AG_OK || ag__conn_in_room(c, room))
        return AG_EINVAL;
    int ret = AG_EBUSY;
    st->ops->room_add(st, room, on_restore_step, &ret);
    if (ret != AG_OK)
        return ret == AG_EBUSY ? AG_EINVAL : ret;
    json_t *details = json_pack("{s:s,s:I,s:s}", "id", c->id, "joinedAt", (json_int_t)ag_now_ms(), "node", c->server->node_id);
    ret = AG_EBUSY;
    if (details != NULL)
        st->ops->member_add(st, room, c->id, details, on_restore_step, &ret);
    json_decref(details);
    if (ret != AG_OK)
        return details == NULL ? AG_ENOMEM : ret == AG_EBUSY ? AG_EINVAL : ret;
    if ((ret = local_add(c, room)) != AG_OK) {
        st->ops->member_del(st, room, c->id, NULL, NULL);
        return ret;
    }
    ag_room_member_t *m = ag__rooms_member_find(c, room);
    m->epoch = epoch;
    m->since = since;
    return AG_OK;
}

static void join_subscribed(void *data, const char *err, json_t *res)
{
    (void)err;
    (void)res;
    op_t *op = data;
    ag_conn_t *c = ag_conn_addref(op->c);
    char room[AG_CONFIG_ROOM_NAME_MAX + 1];
    snprintf(room, sizeof(room), "%s", op->room);
    int adopt = op->adopt;
    op_finish(op, NULL);
    if (!ag_conn_is_closed(c) && !adopt)
        announce(c, room, "entered");
    ag_conn_release(c);
}

static void join_added(void *data, const char *err, json_t *res)
{
    (void)res;
    op_t *op = data;
    ag_conn_t *c = op->c;
    if (err == NULL && (ag_conn_is_closed(c) || ag__conn_in_room(c, op->room))) {
        /* closed or joined twice meanwhile: the store entry is this connection's either way */
        if (ag_conn_is_closed(c))
            c->server->store->ops->member_del(c->server->store, op->room, c->id, NULL, NULL);
        err = ag_conn_is_closed(c) ? "connection closed" : NULL;
        return op_finish(op, err);
    }
    if (err == NULL && local_add(c, op->room) != AG_OK)
        err = "out of memory";
    if (err == NULL) {
        /* the membership is local now and num_rooms counts it: waiting for the subscription must not count it twice */
        c->joining--;
        op->in_flight = 0;
        ag_room_member_t *m = op->adopt ? ag__rooms_member_find(c, op->room) : NULL;
        if (m != NULL) {
            char e[17];
            m->epoch = op->epoch;
            m->since = op->since;
            snprintf(e, sizeof(e), "%016llx", (unsigned long long)op->epoch);
            ag_conn_record_room(c, op->room, e, op->since);
        } else {
            ag__rooms_note_since(c, op->room);
        }
    }
    if (err == NULL && c->server->store->ops->subscribed != NULL) {
        /* answered once this node hears the room (Redis): a say right after the reply must reach the new member */
        c->server->store->ops->subscribed(c->server->store, join_subscribed, op);
        return;
    }
    char room[AG_CONFIG_ROOM_NAME_MAX + 1];
    snprintf(room, sizeof(room), "%s", op->room);
    int adopt = op->adopt;
    op_finish(op, err);
    if (err == NULL && !adopt)
        announce(c, room, "entered");
}

void ag__rooms_adopt(ag_conn_t *c, const char *room, uint64_t epoch, uint64_t since,
                     void (*cb)(ag_conn_t *c, const char *err, void *data), void *data)
{
    op_t *op = ag__room_name_check(c->server, room) == AG_OK && !ag__conn_in_room(c, room) ? op_new(c, room, cb, data) : NULL;
    json_t *details = op != NULL
                          ? json_pack("{s:s,s:I,s:s}", "id", c->id, "joinedAt", (json_int_t)ag_now_ms(), "node", c->server->node_id)
                          : NULL;
    if (details == NULL) {
        if (op != NULL)
            op_finish(op, "out of memory");
        else if (cb != NULL)
            cb(c, "bad room", data);
        return;
    }
    op->adopt = 1;
    op->epoch = epoch;
    op->since = since;
    c->joining++;
    op->in_flight = 1;
    c->server->store->ops->member_add(c->server->store, op->room, c->id, details, join_added, op);
    json_decref(details);
}

static void join_exists(void *data, const char *err, json_t *res)
{
    op_t *op = data;
    ag_conn_t *c = op->c;
    if (err != NULL || !json_is_true(res))
        return op_finish(op, err != NULL ? err : AG_ERR_ROOM_MISSING);
    if (ag_conn_is_closed(c))
        return op_finish(op, "connection closed");
    const char *reject = NULL;
    if (ag__hooks_join(c, op->room, &reject) != 0)
        return op_finish(op, reject != NULL ? reject : "joining this room is not allowed");
    json_t *details = json_pack("{s:s,s:I,s:s}", "id", c->id, "joinedAt", (json_int_t)ag_now_ms(), "node", c->server->node_id);
    c->server->store->ops->member_add(c->server->store, op->room, c->id, details, join_added, op);
    json_decref(details);
}

void ag_room_join(ag_conn_t *c, const char *room, void (*cb)(ag_conn_t *c, const char *err, void *data), void *data)
{
    const ag_config_t *cfg = c->server->config;
    char err[AG_CONFIG_ROOM_NAME_MAX + 100];
    const char *e = NULL;
    if (room == NULL || room[0] == '\0')
        e = AG_ERR_ROOM_REQUIRED;
    else if (ag__room_name_check(c->server, room) != AG_OK)
        e = bound_error(err, sizeof(err), AG_ERR_ROOM_NAME_TOO_LONG, cfg->general.maxRoomNameLength);
    else if (ag__conn_in_room(c, room))
        e = (snprintf(err, sizeof(err), "connection already in this room (%s)", room), err);
    else if (c->num_rooms + c->joining >= (size_t)cfg->general.maxRoomsPerConnection)
        e = bound_error(err, sizeof(err), AG_ERR_CONN_TOO_MANY_ROOMS, cfg->general.maxRoomsPerConnection);
    op_t *op = e == NULL ? op_new(c, room, cb, data) : NULL;
    if (e == NULL && op == NULL)
        e = "out of memory";
    if (e != NULL) {
        if (cb != NULL)
            cb(c, e, data);
        return;
    }
    c->joining++; /* until the membership is local: joins in flight count against the bound */
    op->in_flight = 1;
    c->server->store->ops->room_exists(c->server->store, room, join_exists, op);
}

void ag_room_leave(ag_conn_t *c, const char *room, void (*cb)(ag_conn_t *c, const char *err, void *data), void *data)
{
    if (room == NULL || room[0] == '\0') {
        if (cb != NULL)
            cb(c, AG_ERR_ROOM_REQUIRED, data);
        return;
    }
    if (!ag__conn_in_room(c, room)) {
        char err[600];
        snprintf(err, sizeof(err), "connection not in this room (%.500s)", room);
        if (cb != NULL)
            cb(c, err, data);
        return;
    }
    const char *reject = NULL;
    if (ag__hooks_leave(c, room, &reject) != 0) {
        if (cb != NULL)
            cb(c, reject != NULL ? reject : "leaving this room is not allowed", data);
        return;
    }
    char copy[AG_CONFIG_ROOM_NAME_MAX + 1];
    snprintf(copy, sizeof(copy), "%s", room);
    ag_room_member_t *m = ag__rooms_member_find(c, copy); /* again: the hook may have moved the connection */
    if (m != NULL) {
        local_remove(m);
        c->server->store->ops->member_del(c->server->store, copy, c->id, NULL, NULL);
    }
    if (cb != NULL)
        cb(c, NULL, data);
    if (m != NULL)
        announce(c, copy, "left");
}

/* Linear in the connection's rooms: each step unlinks one membership in O(1). */
void ag__rooms_conn_closed(ag_conn_t *c)
{
    while (c->rooms_last != NULL) {
        char room[AG_CONFIG_ROOM_NAME_MAX + 1];
        snprintf(room, sizeof(room), "%s", c->rooms_last->room->name);
        /* told, not asked: every set hears of it */
        AG__EACH_HOOK(c->server, h)
        {
            const char *ignored = NULL;
            if (h->on_leave != NULL)
                h->on_leave(c, room, &ignored, h->data);
        }
        ag_room_member_t *m = ag__rooms_member_find(c, room);
        if (m == NULL)
            continue;
        local_remove(m);
        c->server->store->ops->member_del(c->server->store, room, c->id, NULL, NULL);
        announce(c, room, "left");
    }
}

void ag__rooms_conn_handed_over(ag_conn_t *c)
{
    ag_store_t *st = c->server->store;
    while (c->rooms_last != NULL) {
        if (st->ops->member_forget != NULL)
            st->ops->member_forget(st, c->rooms_last->room->name, c->id);
        local_remove(c->rooms_last);
    }
}

/* --- view / say --- */

typedef struct {
    ag_conn_t *c;
    ag__room_cb cb;
    void *ud;
    char room[];
} vop_t;

static void view_members(void *data, const char *err, json_t *res)
{
    vop_t *op = data;
    if (err != NULL) {
        op->cb(op->c, err, NULL, op->ud);
    } else {
        json_t *members = json_object();
        const char *id;
        json_t *d;
        json_object_foreach(res, id, d)
        {
            json_t *m = json_object();
            json_object_set(m, "id", json_object_get(d, "id"));
            json_object_set(m, "joinedAt", json_object_get(d, "joinedAt"));
            json_object_set_new(members, id, m);
        }
        json_t *view =
            json_pack("{s:s,s:o,s:I}", "room", op->room, "members", members, "membersCount", (json_int_t)json_object_size(res));
        op->cb(op->c, NULL, view, op->ud);
        json_decref(view);
    }
    ag_conn_release(op->c);
    free(op);
}

void ag__room_view(ag_conn_t *c, const char *room, ag__room_cb cb, void *ud)
{
    if (room == NULL || !ag__conn_in_room(c, room)) {
        char err[600];
        snprintf(err, sizeof(err), "connection not in this room (%.500s)", room != NULL ? room : "undefined");
        cb(c, err, NULL, ud);
        return;
    }
    size_t len = strlen(room);
    vop_t *op = malloc(sizeof(*op) + len + 1);
    if (op == NULL) {
        cb(c, "out of memory", NULL, ud);
        return;
    }
    op->c = ag_conn_addref(c);
    op->cb = cb;
    op->ud = ud;
    memcpy(op->room, room, len + 1);
    c->server->store->ops->members(c->server->store, room, view_members, op);
}

void ag__room_say(ag_conn_t *c, const char *room, const char *message, ag__room_cb cb, void *ud)
{
    if (room == NULL || room[0] == '\0' || message == NULL || message[0] == '\0') {
        cb(c, AG_ERR_ROOM_AND_MESSAGE, NULL, ud);
        return;
    }
    if (!ag__conn_in_room(c, room)) {
        char err[600];
        snprintf(err, sizeof(err), "connection not in this room (%.500s)", room);
        cb(c, err, NULL, ud);
        return;
    }
    /* the whole chat frame (message, room, ids) must fit; the message alone is checked first to build nothing */
    size_t max = ag_conn_max_frame(c->server);
    int ret = AG_ETOOBIG;
    if (strlen(message) <= max) {
        json_t *payload = chat_payload(room, c->id, message);
        payload = ag__hooks_say(c, room, payload);
        ret = payload != NULL ? publish(c->server, room, 'c', payload) : AG_OK;
        json_decref(payload);
    }
    char err[80];
    snprintf(err, sizeof(err), "%s (at most %zu bytes)", AG_ERR_MESSAGE_TOO_BIG, max);
    cb(c, ret == AG_OK ? NULL : ret == AG_ETOOBIG ? err : "out of memory", NULL, ud);
}

/* --- node lifecycle --- */

int ag__rooms_init(ag_server_t *s, char *errbuf, size_t errlen)
{
    if ((s->rooms = calloc(1, sizeof(*s->rooms))) == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return AG_ENOMEM;
    }
    ag_map_init(&s->rooms->local);
    ag_map_init(&s->rooms->memberships);
    s->store->max_rooms = (size_t)s->config->general.maxRooms;
    ag__rooms_history_init(s);
    for (char **r = s->config->general.startingChatRooms; r != NULL && *r != NULL; r++)
        s->store->ops->room_add(s->store, *r, NULL, NULL);
    return AG_OK;
}

void ag__rooms_dispose(ag_server_t *s)
{
    if (s->rooms == NULL)
        return;
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&s->rooms->local, &it, &k, &v);) {
        ag__lroom_t *lr = v;
        for (size_t i = 0; i < lr->n; i++)
            free(lr->members[i]);
        free(lr->members);
        free(lr);
    }
    ag_map_dispose(&s->rooms->local);
    ag_map_dispose(&s->rooms->memberships);
    free(s->rooms);
    s->rooms = NULL;
    free(s->hooks);
    s->hooks = NULL;
}
