/*
 * A room's history, the rooms' side (rooms_internal.h): a room line carries its offset in the history; the lines a node
 * missed while its subscription was down are fetched from there and given out in offset order (line_order.h); a
 * resumable connection's memberships note where the history stood, and a resume gathers what its client missed.
 */
#include "rooms_internal.h"

#include <stdlib.h>
#include <string.h>

ag_frame_t *ag__rooms_with_offset(const char *frame, size_t len, uint64_t offset)
{
    if (len < 2 || frame[len - 1] != '}')
        return NULL;
    char tail[40];
    int tl = snprintf(tail, sizeof(tail), "%s\"offset\":%llu}", len > 2 ? "," : "", (unsigned long long)offset);
    char *buf = malloc(len - 1 + (size_t)tl);
    if (buf == NULL)
        return NULL;
    memcpy(buf, frame, len - 1);
    memcpy(buf + len - 1, tail, (size_t)tl);
    ag_frame_t *f = ag_frame_create(buf, len - 1 + (size_t)tl, 0);
    free(buf);
    return f;
}

/* --- lines this node missed (line_order.h): fetched from the room's history, given out in offset order --- */

typedef struct {
    ag_server_t *s;
    uint64_t fetch;
    char room[];
} fetch_t;

static void give_out(ag_server_t *s, const char *room, ag_line_t *lines, uint64_t missed, uint64_t after)
{
    if (missed != 0) {
        s->stats.room_lines_missed += missed;
        ag_log_limited(AG_LOG_WARN, "rooms", NULL,
                       "%llu line(s) of %.100s after offset %llu never reached this node and are no longer kept",
                       (unsigned long long)missed, room, (unsigned long long)after);
    }
    for (ag_line_t *l = lines; l != NULL; l = l->next)
        ag__rooms_dispatch(s, room, l->payload, l->len, l->offset);
    ag_line_list_free(lines);
}

/* Settles lr's fetch with what was found (items borrowed; NULL: nothing) and gives the lines out. */
static void settle(ag_server_t *s, ag__lroom_t *lr, const json_t *items)
{
    char room[AG_CONFIG_ROOM_NAME_MAX + 1];
    snprintf(room, sizeof(room), "%s", lr->name);
    uint64_t after = lr->order.last, missed = 0;
    size_t before = json_array_size(items);
    ag_line_t *lines = ag_line_order_settle(&lr->order, items, &missed);
    s->stats.room_lines_fetched += before;
    /* giving out may end the room here (a slow consumer closed): lr is not used again */
    give_out(s, room, lines, missed, after);
}

static void on_fetched(void *data, const char *err, json_t *res)
{
    fetch_t *f = data;
    ag__lroom_t *lr = ag_map_get(&f->s->rooms->local, f->room);
    /* the room went meanwhile (what it held went with it), or this fetch was given up */
    if (lr != NULL && lr->order.fetch == f->fetch) {
        if (err != NULL && strcmp(err, AG_STORE_HISTORY_GONE) != 0)
            ag_log_limited(AG_LOG_WARN, "rooms", NULL, "lines of %.100s missed here could not be read: %s", f->room, err);
        settle(f->s, lr, err == NULL ? json_object_get(res, "items") : NULL);
    }
    free(f);
}

static void fetch_missed(ag_server_t *s, ag__lroom_t *lr)
{
    size_t len = strlen(lr->name);
    fetch_t *f = malloc(sizeof(*f) + len + 1);
    if (f == NULL) {
        settle(s, lr, NULL);
        return;
    }
    f->s = s;
    f->fetch = lr->order.fetch;
    memcpy(f->room, lr->name, len + 1);
    s->store->ops->history_since(s->store, lr->name, lr->order.last, on_fetched, f);
}

/* The store's subscription was made again: lines published meanwhile never came. Each room that saw a line asks its
 * history for what followed (one command per room with members here). */
static void on_resubscribed(void *data)
{
    ag_server_t *s = data;
    if (s->store->ops->history_since == NULL)
        return;
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&s->rooms->local, &it, &k, &v);) {
        ag__lroom_t *lr = v;
        if (ag_line_order_begin(&lr->order))
            fetch_missed(s, lr);
    }
}

static void on_message(void *data, const char *channel, const char *payload, size_t len)
{
    ag_server_t *s = data;
    if (strncmp(channel, "room:", 5) != 0 || len < 2)
        return;
    const char *room = channel + 5;
    uint64_t offset = 0;
    if (payload[0] == '#') {
        /* "#<offset>:" from history_publish */
        const char *colon = memchr(payload, ':', len < 24 ? len : 24);
        if (colon == NULL || (size_t)(colon - payload) + 2 > len)
            return;
        offset = strtoull(payload + 1, NULL, 10);
        len -= (size_t)(colon + 1 - payload);
        payload = colon + 1;
    }
    ag__lroom_t *lr = offset != 0 && s->store->ops->history_since != NULL ? ag_map_get(&s->rooms->local, room) : NULL;
    if (lr != NULL) {
        ag_line_verdict_t v = ag_line_order_take(&lr->order, offset, payload, len);
        if (v == AG_LINE_FULL) {
            /* too much waits for the fetch: it is given up (the gap stays), what waits goes out, then this line */
            settle(s, lr, NULL);
            lr = ag_map_get(&s->rooms->local, room);
            v = lr != NULL ? ag_line_order_take(&lr->order, offset, payload, len) : AG_LINE_NOW;
        }
        if (v == AG_LINE_HELD || v == AG_LINE_DUP)
            return;
        if (v == AG_LINE_FETCH) {
            fetch_missed(s, lr);
            return;
        }
    }
    ag__rooms_dispatch(s, room, payload, len, offset);
}

/* --- resume --- */

typedef struct {
    ag_conn_t *c; /* a reference */
    char room[];
} since_t;

static uint64_t epoch_of(const json_t *res)
{
    const char *e = json_string_value(json_object_get(res, "epoch"));
    return e != NULL ? strtoull(e, NULL, 16) : 0;
}

static void on_join_since(void *data, const char *err, json_t *res)
{
    since_t *st = data;
    ag_room_member_t *m = ag__rooms_member_find(st->c, st->room);
    if (m != NULL && err == NULL) {
        m->epoch = epoch_of(res);
        m->since = (uint64_t)json_integer_value(json_object_get(res, "last"));
        ag_conn_record_room(st->c, st->room, json_string_value(json_object_get(res, "epoch")), m->since);
    }
    ag_conn_release(st->c);
    free(st);
}

void ag__rooms_note_since(ag_conn_t *c, const char *room)
{
    ag_store_t *st = c->server->store;
    if (!ag_conn_is_resumable(c) || st->ops->history_since == NULL)
        return;
    size_t len = strlen(room);
    since_t *d = malloc(sizeof(*d) + len + 1);
    if (d == NULL)
        return; /* epoch 0: a resume will say the room's history is gone */
    d->c = ag_conn_addref(c);
    memcpy(d->room, room, len + 1);
    st->ops->history_since(st, room, AG_STORE_HISTORY_TAIL, on_join_since, d);
}

typedef struct {
    ag_conn_t *c; /* a reference */
    size_t pending;
    const char *reason;
    ag_frame_t **frames;
    size_t n, cap;
    ag__rooms_replay_cb cb;
    void *ud;
} replay_t;

typedef struct {
    replay_t *r;
    uint64_t epoch;
} replay_room_t;

static void replay_done(replay_t *r)
{
    if (--r->pending != 0)
        return;
    r->cb(r->c, r->reason, r->frames, r->n, r->ud);
    for (size_t i = 0; i < r->n; i++)
        ag_frame_release(r->frames[i]);
    free(r->frames);
    ag_conn_release(r->c);
    free(r);
}

static void on_replay_room(void *data, const char *err, json_t *res)
{
    replay_room_t *rr = data;
    replay_t *r = rr->r;
    json_t *items = json_object_get(res, "items");
    if (err != NULL || epoch_of(res) != rr->epoch || rr->epoch == 0) {
        r->reason = AG_RESUME_HISTORY_GONE;
    } else if (r->reason == NULL) {
        for (size_t i = 0; i < json_array_size(items); i++) {
            json_t *it = json_array_get(items, i);
            const char *p = json_string_value(json_array_get(it, 1));
            size_t len = json_string_length(json_array_get(it, 1));
            ag_frame_t *f = p != NULL && len > 1 && (p[0] == 'c' || p[0] == 'p')
                                ? ag__rooms_with_offset(p + 1, len - 1, (uint64_t)json_integer_value(json_array_get(it, 0)))
                                : NULL;
            if (f == NULL)
                continue;
            if (r->n == r->cap) {
                size_t ncap = r->cap == 0 ? 16 : r->cap * 2;
                ag_frame_t **nf = realloc(r->frames, ncap * sizeof(*nf));
                if (nf == NULL) {
                    ag_frame_release(f);
                    r->reason = "server error";
                    break;
                }
                r->frames = nf;
                r->cap = ncap;
            }
            r->frames[r->n++] = f;
        }
    }
    free(rr);
    replay_done(r);
}

void ag__rooms_replay(ag_conn_t *c, const json_t *offsets, ag__rooms_replay_cb cb, void *ud)
{
    ag_store_t *st = c->server->store;
    replay_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        cb(c, "server error", NULL, 0, ud);
        return;
    }
    r->c = ag_conn_addref(c);
    r->cb = cb;
    r->ud = ud;
    r->pending = 1; /* this call's own, so that answers given at once do not finish it early */
    for (ag_room_member_t *m = c->rooms_first; m != NULL; m = m->next) {
        replay_room_t *rr = st->ops->history_since != NULL ? malloc(sizeof(*rr)) : NULL;
        if (rr == NULL) {
            r->reason = AG_RESUME_HISTORY_GONE;
            break;
        }
        json_t *o = json_object_get(offsets, m->room->name);
        uint64_t after = m->since;
        if (json_is_integer(o) && json_integer_value(o) > 0 && (uint64_t)json_integer_value(o) > after)
            after = (uint64_t)json_integer_value(o);
        rr->r = r;
        rr->epoch = m->epoch;
        r->pending++;
        st->ops->history_since(st, m->room->name, after, on_replay_room, rr);
    }
    replay_done(r);
}

void ag__rooms_history_init(ag_server_t *s)
{
    if (s->config->general.resumeWindow > 0) {
        s->store->history_lines = (size_t)s->config->general.resumeHistoryLines;
        s->store->history_bytes = (size_t)s->config->general.resumeHistoryBytes;
        s->store->history_ms = (uint64_t)s->config->general.resumeWindow;
    }
    s->store->on_message = on_message;
    s->store->on_message_data = s;
    s->store->on_resubscribed = on_resubscribed;
}
