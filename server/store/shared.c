/*
 * The shared memory store: the memory store of a process running several workers (general.workers), each worker a
 * node on its own thread and loop, all holding a handle on one set of rooms, members, cache and node registry.
 *
 * The data sit under one mutex, taken for the length of one operation and never while a callback runs: every answer is
 * made under the lock as a copy the caller owns, then given to the caller on its own thread, before the call returns
 * (as memory.c answers). Nothing a handle hands out points into the shared data, so no jansson value is ever seen by
 * two threads at once.
 *
 * Publishing puts the message, under the same lock, in the inbox of every worker subscribed to the channel and wakes
 * that worker's loop through its eventfd; the worker delivers its inbox on its own loop, on a later pass (never inside
 * publish, as Redis can only do). Since every inbox is appended to under the one lock, all workers see the messages of
 * every channel in one global order: a `say` reaches the members on every loop in the same order. One copy of a message
 * is shared by the inboxes (reference counted). An inbox holds what the other workers published since its loop last
 * ran, so it is bounded by what the workers accept in that time.
 *
 * Room history (resume) lives with the rooms, under the same lock: history_publish appends the line and puts the
 * published message in the inboxes in one step, so a line's offset is its place in the one global order every worker
 * delivers, whichever worker published it. history_since answers a copy (the lines' bytes copied under the lock, the
 * jansson values built after it) on the caller's thread.
 *
 * The node registry is what the cluster layer (server/cluster.c) needs to carry a request that reached the wrong
 * worker to the one owning its session: each worker registers its sid tag, private address and token.
 */
#include "store.h"
#include "history.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <h2o.h>
#include "common.h"
#include "config.h"

typedef struct {
    json_t *value;
    uint64_t expire_ms, created_at, read_at;
} centry_t;

/* One published message, shared by the inboxes it was put in. */
typedef struct {
    atomic_size_t refs;
    size_t len;
    char *payload; /* points into data: after the room kept for a history line's "#<offset>:", if any */
    char *channel; /* points into data, after the payload */
    char data[];
} smsg_t;

/* the longest "#<offset>:" a history line's message starts with */
#define HEAD_MAX 24

typedef struct {
    char *id, *address, *token; /* the node id, "host:port", its forwarding secret */
} regentry_t;

typedef struct st_shared_handle_t shandle_t;

struct st_ag_store_shared_t {
    pthread_mutex_t lock;
    size_t refs;       /* the creator's and each handle's */
    ag_map_t rooms;    /* name -> json object conn_id -> details */
    ag_map_t cache;    /* key -> centry_t* */
    ag_map_t channels; /* channel -> (uintptr_t) bit mask of the subscribed handles' slots */
    ag_map_t registry; /* sid tag -> regentry_t* */
    ag_map_t hist;     /* room -> ag_store_hist_t*: made with the room's first line, dropped with the room */
    shandle_t *slots[AG_CONFIG_WORKERS_MAX];
};

struct st_shared_handle_t {
    ag_store_t super;
    ag_store_shared_t *sh;
    unsigned slot;
    char node_id[64];
    char tag[64]; /* what this handle registered, "" before */
    h2o_evloop_t *loop;
    h2o_socket_t *wake; /* the eventfd other workers write to when they filled an empty inbox */
    ag_map_t subs;      /* this worker's channels: read and written on its own thread only */
    /* under sh->lock */
    smsg_t **inbox;
    size_t inbox_len, inbox_cap;
};

#define H(s) ((shandle_t *)(s))

static void reply(ag_store_cb cb, void *data, const char *err, json_t *result)
{
    if (cb != NULL)
        cb(data, err, result);
    json_decref(result);
}

static void centry_free(centry_t *e)
{
    json_decref(e->value);
    free(e);
}

static void smsg_release(smsg_t *m)
{
    if (atomic_fetch_sub(&m->refs, 1) == 1)
        free(m);
}

static void regentry_free(regentry_t *r)
{
    if (r == NULL)
        return;
    free(r->id);
    free(r->address);
    free(r->token);
    free(r);
}

ag_store_shared_t *ag_store_shared_create(void)
{
    ag_store_shared_t *sh = calloc(1, sizeof(*sh));
    if (sh == NULL)
        return NULL;
    if (pthread_mutex_init(&sh->lock, NULL) != 0) {
        free(sh);
        return NULL;
    }
    sh->refs = 1;
    ag_map_init(&sh->rooms);
    ag_map_init(&sh->cache);
    ag_map_init(&sh->channels);
    ag_map_init(&sh->registry);
    ag_map_init(&sh->hist);
    return sh;
}

void ag_store_shared_release(ag_store_shared_t *sh)
{
    if (sh == NULL)
        return;
    pthread_mutex_lock(&sh->lock);
    size_t left = --sh->refs;
    pthread_mutex_unlock(&sh->lock);
    if (left != 0)
        return;
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&sh->rooms, &it, &k, &v);)
        json_decref(v);
    for (size_t it = 0; ag_map_next(&sh->cache, &it, &k, &v);)
        centry_free(v);
    for (size_t it = 0; ag_map_next(&sh->registry, &it, &k, &v);)
        regentry_free(v);
    for (size_t it = 0; ag_map_next(&sh->hist, &it, &k, &v);)
        ag_store_hist_free(v);
    ag_map_dispose(&sh->hist);
    ag_map_dispose(&sh->rooms);
    ag_map_dispose(&sh->cache);
    ag_map_dispose(&sh->channels);
    ag_map_dispose(&sh->registry);
    pthread_mutex_destroy(&sh->lock);
    free(sh);
}

/* --- rooms and members --- */

static void room_add(ag_store_t *s, const char *room, ag_store_cb cb, void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    const char *err = NULL;
    json_t *members = json_object();
    pthread_mutex_lock(&sh->lock);
    if (ag_map_get(&sh->rooms, room) != NULL)
        err = "room exists";
    else if (s->max_rooms != 0 && sh->rooms.size >= s->max_rooms)
        err = AG_STORE_ERR_TOO_MANY_ROOMS;
    else if (members == NULL || ag_map_set(&sh->rooms, room, members) != AG_OK)
        err = "out of memory";
    else
        members = NULL; /* the map's now */
    pthread_mutex_unlock(&sh->lock);
    json_decref(members);
    reply(cb, data, err, err == NULL ? json_true() : NULL);
}

static void room_del(ag_store_t *s, const char *room, ag_store_cb cb, void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    pthread_mutex_lock(&sh->lock);
    json_t *members = ag_map_del(&sh->rooms, room);
    ag_store_hist_t *h = members != NULL ? ag_map_del(&sh->hist, room) : NULL; /* a room made again starts a new epoch */
    pthread_mutex_unlock(&sh->lock);
    json_decref(members);
    ag_store_hist_free(h);
    reply(cb, data, members == NULL ? "room does not exist" : NULL, members != NULL ? json_true() : NULL);
}

static void room_exists(ag_store_t *s, const char *room, ag_store_cb cb, void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    pthread_mutex_lock(&sh->lock);
    int found = ag_map_get(&sh->rooms, room) != NULL;
    pthread_mutex_unlock(&sh->lock);
    reply(cb, data, NULL, json_boolean(found));
}

static void room_list(ag_store_t *s, ag_store_cb cb, void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    json_t *list = json_array();
    const char *k;
    void *v;
    pthread_mutex_lock(&sh->lock);
    for (size_t it = 0; ag_map_next(&sh->rooms, &it, &k, &v);)
        json_array_append_new(list, json_string(k));
    pthread_mutex_unlock(&sh->lock);
    reply(cb, data, NULL, list);
}

static void member_add(ag_store_t *s, const char *room, const char *conn_id, const json_t *details, ag_store_cb cb, void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    json_t *copy = json_deep_copy(details);
    pthread_mutex_lock(&sh->lock);
    json_t *members = ag_map_get(&sh->rooms, room);
    if (members != NULL)
        json_object_set_new(members, conn_id, copy);
    pthread_mutex_unlock(&sh->lock);
    if (members == NULL) {
        json_decref(copy);
        reply(cb, data, "room does not exist", NULL);
        return;
    }
    reply(cb, data, NULL, json_true());
}

static void member_del(ag_store_t *s, const char *room, const char *conn_id, ag_store_cb cb, void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    pthread_mutex_lock(&sh->lock);
    json_t *members = ag_map_get(&sh->rooms, room);
    int removed = members != NULL && json_object_del(members, conn_id) == 0;
    pthread_mutex_unlock(&sh->lock);
    reply(cb, data, NULL, json_boolean(removed));
}

static void members(ag_store_t *s, const char *room, ag_store_cb cb, void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    pthread_mutex_lock(&sh->lock);
    json_t *m = ag_map_get(&sh->rooms, room);
    json_t *copy = m != NULL ? json_deep_copy(m) : NULL;
    pthread_mutex_unlock(&sh->lock);
    if (m == NULL)
        reply(cb, data, "room does not exist", NULL);
    else if (copy == NULL)
        reply(cb, data, "out of memory", NULL);
    else
        reply(cb, data, NULL, copy);
}

/* --- cache (under the lock) --- */

/* An expired entry is removed when seen, so size counts live keys only. */
static centry_t *cache_get(ag_store_shared_t *sh, const char *key, uint64_t now)
{
    centry_t *e = ag_map_get(&sh->cache, key);
    if (e != NULL && e->expire_ms != 0 && e->expire_ms <= now) {
        ag_map_del(&sh->cache, key);
        centry_free(e);
        return NULL;
    }
    return e;
}

static void cache_save(ag_store_t *s, const char *key, const json_t *value, uint64_t expire_ms, ag_store_cb cb, void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    uint64_t now = ag_now_ms();
    json_t *copy = json_deep_copy(value), *old = NULL;
    const char *err = NULL;
    pthread_mutex_lock(&sh->lock);
    centry_t *e = cache_get(sh, key, now);
    if (e == NULL && ((e = calloc(1, sizeof(*e))) == NULL || ag_map_set(&sh->cache, key, e) != AG_OK)) {
        free(e);
        err = "out of memory";
    } else {
        old = e->value;
        e->value = copy;
        copy = NULL;
        e->expire_ms = expire_ms;
        e->created_at = now;
        e->read_at = 0;
    }
    pthread_mutex_unlock(&sh->lock);
    json_decref(old);
    json_decref(copy);
    reply(cb, data, err, err == NULL ? json_true() : NULL);
}

static void cache_load(ag_store_t *s, const char *key, ag_store_cb cb, void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    uint64_t now = ag_now_ms();
    json_t *r = NULL;
    pthread_mutex_lock(&sh->lock);
    centry_t *e = cache_get(sh, key, now);
    if (e != NULL) {
        e->read_at = now;
        r = json_object();
        json_object_set_new(r, "key", json_string(key));
        json_object_set_new(r, "value", json_deep_copy(e->value));
        json_object_set_new(r, "expireTimestamp", e->expire_ms != 0 ? json_integer((json_int_t)e->expire_ms) : json_null());
        json_object_set_new(r, "createdAt", json_integer((json_int_t)e->created_at));
        json_object_set_new(r, "readAt", json_integer((json_int_t)e->read_at));
    }
    pthread_mutex_unlock(&sh->lock);
    reply(cb, data, NULL, r != NULL ? r : json_null());
}

static void cache_del(ag_store_t *s, const char *key, ag_store_cb cb, void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    pthread_mutex_lock(&sh->lock);
    centry_t *e = cache_get(sh, key, ag_now_ms());
    if (e != NULL)
        ag_map_del(&sh->cache, key);
    pthread_mutex_unlock(&sh->lock);
    if (e != NULL)
        centry_free(e);
    reply(cb, data, NULL, json_boolean(e != NULL));
}

static void cache_size(ag_store_t *s, ag_store_cb cb, void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    uint64_t now = ag_now_ms();
    const char *k;
    void *v;
    pthread_mutex_lock(&sh->lock);
    for (size_t it = 0; ag_map_next(&sh->cache, &it, &k, &v);)
        cache_get(sh, k, now);
    size_t n = sh->cache.size;
    pthread_mutex_unlock(&sh->lock);
    reply(cb, data, NULL, json_integer((json_int_t)n));
}

/* --- pub/sub --- */

static void deliver_one(ag_store_t *s, const char *channel, const char *payload, size_t len)
{
    /* reserved channels belong to the node layer, as on the Redis store */
    if (channel[0] == '_' && s->on_node_event != NULL)
        s->on_node_event(s->on_node_event_data, channel, payload, len);
    else if (channel[0] != '_' && s->on_message != NULL)
        s->on_message(s->on_message_data, channel, payload, len);
}

/* This worker's inbox, on its own loop: what was subscribed at publish time and still is now. Only this batch: what
 * its receivers publish waits for the next wake-up, so a chain of publishes cannot hold the loop. */
static void on_wake(h2o_socket_t *sock, const char *err)
{
    shandle_t *h = sock->data;
    h2o_buffer_consume(&sock->input, sock->input->size);
    if (err != NULL)
        return;
    pthread_mutex_lock(&h->sh->lock);
    smsg_t **batch = h->inbox;
    size_t n = h->inbox_len;
    h->inbox = NULL;
    h->inbox_len = h->inbox_cap = 0;
    pthread_mutex_unlock(&h->sh->lock);
    for (size_t i = 0; i < n; i++) {
        if (ag_map_get(&h->subs, batch[i]->channel) != NULL)
            deliver_one(&h->super, batch[i]->channel, batch[i]->payload, batch[i]->len);
        smsg_release(batch[i]);
    }
    free(batch);
}

static void wake(shandle_t *h)
{
    uint64_t one = 1;
    /* a full counter (never, at 2^64 - 2) or an interrupted write still leaves the eventfd readable */
    if (write(h2o_socket_get_fd(h->wake), &one, sizeof(one)) < 0)
        return;
}

/* Under the lock: appends m to h's inbox; 1 when the inbox was empty (h's loop must be woken). */
static int inbox_push(shandle_t *h, smsg_t *m)
{
    if (h->inbox_len == h->inbox_cap) {
        size_t ncap = h->inbox_cap == 0 ? 16 : h->inbox_cap * 2;
        smsg_t **n = realloc(h->inbox, ncap * sizeof(*n));
        if (n == NULL)
            return 0; /* that worker misses this message, as a subscriber whose connection dropped it would */
        h->inbox = n;
        h->inbox_cap = ncap;
    }
    atomic_fetch_add(&m->refs, 1);
    h->inbox[h->inbox_len++] = m;
    return h->inbox_len == 1;
}

/* A message of len bytes on channel, with head bytes free before its payload; the payload is not written. */
static smsg_t *smsg_new(const char *channel, size_t head, size_t len)
{
    size_t clen = strlen(channel);
    smsg_t *m = malloc(offsetof(smsg_t, data) + head + len + clen + 1);
    if (m == NULL)
        return NULL;
    atomic_init(&m->refs, 1); /* the publisher's */
    m->len = len;
    m->payload = m->data + head;
    m->channel = m->payload + len;
    memcpy(m->channel, channel, clen + 1);
    return m;
}

/* Under the lock: m goes to every worker subscribed to its channel; those whose loop must be woken are added to
 * to_wake. */
static void fan_out(ag_store_shared_t *sh, smsg_t *m, shandle_t **to_wake, size_t *nwake)
{
    uint64_t mask = (uint64_t)(uintptr_t)ag_map_get(&sh->channels, m->channel);
    for (unsigned i = 0; mask != 0 && i < AG_CONFIG_WORKERS_MAX; i++, mask >>= 1)
        if ((mask & 1) != 0 && sh->slots[i] != NULL && inbox_push(sh->slots[i], m))
            to_wake[(*nwake)++] = sh->slots[i];
}

/* After the lock: a handle is destroyed only after every worker's loop stopped, so the ones to wake are still there. */
static void wake_all(shandle_t **to_wake, size_t nwake, smsg_t *m)
{
    for (size_t i = 0; i < nwake; i++)
        wake(to_wake[i]);
    smsg_release(m);
}

static void publish(ag_store_t *s, const char *channel, const char *payload, size_t len, ag_store_cb cb, void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    smsg_t *m = smsg_new(channel, 0, len);
    if (m == NULL) {
        reply(cb, data, "out of memory", NULL);
        return;
    }
    memcpy(m->payload, payload, len);
    shandle_t *to_wake[AG_CONFIG_WORKERS_MAX];
    size_t nwake = 0;
    pthread_mutex_lock(&sh->lock);
    fan_out(sh, m, to_wake, &nwake);
    pthread_mutex_unlock(&sh->lock);
    wake_all(to_wake, nwake, m);
    reply(cb, data, NULL, json_true());
}

/* --- room history (under the lock) --- */

/* room's history, made (with a new epoch) when the room exists and has none yet; NULL without history. */
static ag_store_hist_t *hist_of(ag_store_t *s, const char *room)
{
    ag_store_shared_t *sh = H(s)->sh;
    ag_store_hist_t *h = ag_map_get(&sh->hist, room);
    if (h != NULL || s->history_lines == 0 || ag_map_get(&sh->rooms, room) == NULL)
        return h;
    if ((h = ag_store_hist_create(s->history_lines)) != NULL && ag_map_set(&sh->hist, room, h) != AG_OK) {
        ag_store_hist_free(h);
        h = NULL;
    }
    return h;
}

static void history_publish(ag_store_t *s, const char *room, const char *channel, const char *payload, size_t len, ag_store_cb cb,
                            void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    /* both copies are made before the lock; the offset is only known under it, so the message keeps room for it */
    smsg_t *m = smsg_new(channel, HEAD_MAX, len);
    char *line = len <= s->history_bytes ? malloc(len + 1) : NULL;
    if (m == NULL) {
        free(line);
        reply(cb, data, "out of memory", NULL);
        return;
    }
    memcpy(m->payload, payload, len);
    if (line != NULL) {
        memcpy(line, payload, len);
        line[len] = '\0';
    }
    shandle_t *to_wake[AG_CONFIG_WORKERS_MAX];
    size_t nwake = 0;
    uint64_t offset = 0;
    char epoch[sizeof(((ag_store_hist_t *)NULL)->epoch)] = "";
    pthread_mutex_lock(&sh->lock);
    ag_store_hist_t *h = hist_of(s, room);
    if (h != NULL) {
        /* a line not kept (over the whole bound, or no memory for it) still moves the offset: a resume across it fails */
        int kept = line != NULL;
        uint64_t o = ag_store_hist_append(h, line, len, s->history_bytes, s->history_ms, ag_now_ms());
        line = NULL;
        if (kept) {
            offset = o;
            memcpy(epoch, h->epoch, sizeof(epoch));
            char head[HEAD_MAX + 1];
            int hl = snprintf(head, sizeof(head), "#%llu:", (unsigned long long)offset);
            m->payload -= hl;
            memcpy(m->payload, head, (size_t)hl);
            m->len += (size_t)hl;
        }
    }
    fan_out(sh, m, to_wake, &nwake);
    pthread_mutex_unlock(&sh->lock);
    free(line);
    wake_all(to_wake, nwake, m);
    reply(cb, data, NULL, offset != 0 ? json_pack("{s:I,s:s}", "offset", (json_int_t)offset, "epoch", epoch) : json_null());
}

static void history_since(ag_store_t *s, const char *room, uint64_t after, ag_store_cb cb, void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    const char *err = NULL;
    char epoch[sizeof(((ag_store_hist_t *)NULL)->epoch)] = "";
    uint64_t last = 0;
    ag_store_hline_t *copy = NULL; /* the lines after `after`, each data its own copy */
    size_t n = 0;
    pthread_mutex_lock(&sh->lock);
    ag_store_hist_t *h = hist_of(s, room);
    if (h != NULL)
        ag_store_hist_expire(h, s->history_ms, ag_now_ms());
    if (h == NULL || (after != AG_STORE_HISTORY_TAIL && !ag_store_hist_has_after(h, after))) {
        err = AG_STORE_HISTORY_GONE;
    } else {
        memcpy(epoch, h->epoch, sizeof(epoch));
        last = h->last;
        size_t want = after == AG_STORE_HISTORY_TAIL ? 0 : (size_t)(h->last - after);
        if (want != 0 && (copy = calloc(want, sizeof(*copy))) == NULL)
            err = "out of memory";
        for (size_t i = 0; err == NULL && want != 0 && i < h->n; i++) {
            const ag_store_hline_t *l = ag_store_hist_line(h, i);
            if (l->offset <= after)
                continue;
            copy[n] = *l;
            if ((copy[n].data = malloc(l->len + 1)) == NULL) {
                err = "out of memory";
                break;
            }
            memcpy(copy[n].data, l->data, l->len + 1);
            n++;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    json_t *items = err == NULL ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        if (items != NULL)
            json_array_append_new(items, json_pack("[I,s%]", (json_int_t)copy[i].offset, copy[i].data, copy[i].len));
        free(copy[i].data);
    }
    free(copy);
    if (err != NULL)
        reply(cb, data, err, NULL);
    else
        reply(cb, data, NULL, json_pack("{s:s,s:I,s:o}", "epoch", epoch, "last", (json_int_t)last, "items", items));
}

/* Both run at a stop and a boot, when no line is published (the values made under the lock are the caller's alone). */
static void history_dump(ag_store_t *s, ag_store_cb cb, void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    json_t *rooms = json_object();
    const char *k;
    void *v;
    pthread_mutex_lock(&sh->lock);
    for (size_t it = 0; rooms != NULL && ag_map_next(&sh->hist, &it, &k, &v);) {
        ag_store_hist_expire(v, s->history_ms, ag_now_ms());
        json_t *d = ag_store_hist_dump(v);
        if (d == NULL || json_object_set_new(rooms, k, d) != 0) {
            json_decref(rooms);
            rooms = NULL;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    reply(cb, data, rooms != NULL ? NULL : "out of memory", rooms);
}

static void history_load(ag_store_t *s, const char *room, const json_t *hist, ag_store_cb cb, void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    const char *err = NULL;
    ag_store_hist_t *h = s->history_lines != 0 ? ag_store_hist_load(hist, s->history_lines, s->history_bytes, &err) : NULL;
    json_t *fresh = json_object();
    if (h == NULL || fresh == NULL) {
        ag_store_hist_free(h);
        json_decref(fresh);
        reply(cb, data, err != NULL ? err : h == NULL ? "no room history kept" : "out of memory", NULL);
        return;
    }
    pthread_mutex_lock(&sh->lock);
    if (ag_map_get(&sh->hist, room) != NULL) {
        err = "room exists";
    } else if (ag_map_get(&sh->rooms, room) == NULL) {
        if (ag_map_set(&sh->rooms, room, fresh) != AG_OK)
            err = "out of memory";
        else
            fresh = NULL;
    }
    if (err == NULL && ag_map_set(&sh->hist, room, h) != AG_OK)
        err = "out of memory";
    if (err == NULL)
        h = NULL;
    pthread_mutex_unlock(&sh->lock);
    ag_store_hist_free(h);
    json_decref(fresh);
    reply(cb, data, err, err == NULL ? json_true() : NULL);
}

static void subscribe(ag_store_t *s, const char *channel)
{
    shandle_t *h = H(s);
    if (ag_map_set(&h->subs, channel, (void *)1) != AG_OK)
        return;
    pthread_mutex_lock(&h->sh->lock);
    uintptr_t mask = (uintptr_t)ag_map_get(&h->sh->channels, channel) | ((uintptr_t)1 << h->slot);
    if (ag_map_set(&h->sh->channels, channel, (void *)mask) != AG_OK)
        ag_map_del(&h->subs, channel); /* out of memory: not subscribed anywhere */
    pthread_mutex_unlock(&h->sh->lock);
}

/* Under the lock. */
static void channel_drop(ag_store_shared_t *sh, const char *channel, unsigned slot)
{
    uintptr_t mask = (uintptr_t)ag_map_get(&sh->channels, channel) & ~((uintptr_t)1 << slot);
    if (mask == 0)
        ag_map_del(&sh->channels, channel);
    else
        ag_map_set(&sh->channels, channel, (void *)mask); /* the key is there: no allocation */
}

static void unsubscribe(ag_store_t *s, const char *channel)
{
    shandle_t *h = H(s);
    if (ag_map_del(&h->subs, channel) == NULL)
        return;
    pthread_mutex_lock(&h->sh->lock);
    channel_drop(h->sh, channel, h->slot);
    pthread_mutex_unlock(&h->sh->lock);
}

/* --- the workers' registry --- */

static char *dup_or_null(const char *s, int *failed)
{
    char *d = strdup(s != NULL ? s : "");
    if (d == NULL)
        *failed = 1;
    return d;
}

static int node_register(ag_store_t *s, const ag_store_node_t *self)
{
    shandle_t *h = H(s);
    if (self->tag == NULL || self->tag[0] == '\0' || strlen(self->tag) >= sizeof(h->tag))
        return AG_EINVAL;
    if (self->address == NULL || self->address[0] == '\0')
        return 0; /* published once the address is known */
    int failed = 0;
    regentry_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return AG_ENOMEM;
    r->id = dup_or_null(h->node_id, &failed);
    r->address = dup_or_null(self->address, &failed);
    r->token = dup_or_null(self->token, &failed);
    if (failed) {
        regentry_free(r);
        return AG_ENOMEM;
    }
    pthread_mutex_lock(&h->sh->lock);
    regentry_t *old = ag_map_get(&h->sh->registry, self->tag);
    int ret = ag_map_set(&h->sh->registry, self->tag, r);
    if (ret == AG_OK)
        snprintf(h->tag, sizeof(h->tag), "%s", self->tag);
    pthread_mutex_unlock(&h->sh->lock);
    regentry_free(ret == AG_OK ? old : r);
    return ret;
}

static void node_lookup(ag_store_t *s, const char *tag, ag_store_cb cb, void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    pthread_mutex_lock(&sh->lock);
    regentry_t *r = ag_map_get(&sh->registry, tag);
    json_t *result = r != NULL ? json_pack("{s:s,s:s}", "address", r->address, "token", r->token) : json_null();
    pthread_mutex_unlock(&sh->lock);
    reply(cb, data, result == NULL ? "out of memory" : NULL, result);
}

static void node_list(ag_store_t *s, ag_store_cb cb, void *data)
{
    ag_store_shared_t *sh = H(s)->sh;
    json_t *list = json_array();
    const char *k;
    void *v;
    pthread_mutex_lock(&sh->lock);
    for (size_t it = 0; list != NULL && ag_map_next(&sh->registry, &it, &k, &v);)
        json_array_append_new(list, json_pack("{s:s,s:s}", "id", ((regentry_t *)v)->id, "address", ((regentry_t *)v)->address));
    pthread_mutex_unlock(&sh->lock);
    reply(cb, data, list == NULL ? "out of memory" : NULL, list);
}

/* A worker that stops: its registration goes, and the members its connections left behind (they normally leave
 * their rooms as they close). */
static void node_leave(ag_store_t *s)
{
    shandle_t *h = H(s);
    ag_store_shared_t *sh = h->sh;
    regentry_t *r = NULL;
    pthread_mutex_lock(&sh->lock);
    if (h->tag[0] != '\0')
        r = ag_map_del(&sh->registry, h->tag);
    h->tag[0] = '\0';
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&sh->rooms, &it, &k, &v);) {
        const char *id;
        json_t *d, *tmp;
        json_object_foreach_safe((json_t *)v, tmp, id, d)
        {
            const char *node = json_string_value(json_object_get(d, "node"));
            if (node != NULL && strcmp(node, h->node_id) == 0)
                json_object_del(v, id);
        }
    }
    pthread_mutex_unlock(&sh->lock);
    regentry_free(r);
}

static void destroy(ag_store_t *s)
{
    shandle_t *h = H(s);
    ag_store_shared_t *sh = h->sh;
    pthread_mutex_lock(&sh->lock);
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&h->subs, &it, &k, &v);)
        channel_drop(sh, k, h->slot);
    if (h->tag[0] != '\0')
        regentry_free(ag_map_del(&sh->registry, h->tag));
    sh->slots[h->slot] = NULL;
    smsg_t **inbox = h->inbox;
    size_t n = h->inbox_len;
    h->inbox = NULL;
    h->inbox_len = 0;
    pthread_mutex_unlock(&sh->lock);
    for (size_t i = 0; i < n; i++)
        smsg_release(inbox[i]);
    free(inbox);
    if (h->wake != NULL) {
        h2o_socket_read_stop(h->wake);
        h2o_socket_close(h->wake);
    }
    ag_map_dispose(&h->subs);
    free(h);
    ag_store_shared_release(sh);
}

static const ag_store_ops_t ops = {
    .name = "memory",
    .destroy = destroy,
    .room_add = room_add,
    .room_del = room_del,
    .room_exists = room_exists,
    .room_list = room_list,
    .member_add = member_add,
    .member_del = member_del,
    .members = members,
    .cache_save = cache_save,
    .cache_load = cache_load,
    .cache_del = cache_del,
    .cache_size = cache_size,
    .publish = publish,
    .subscribe = subscribe,
    .unsubscribe = unsubscribe,
    .history_publish = history_publish,
    .history_since = history_since,
    .history_dump = history_dump,
    .history_load = history_load,
    .node_register = node_register,
    .node_lookup = node_lookup,
    .node_leave = node_leave,
    .node_list = node_list,
};

ag_store_t *ag_store_shared_attach(ag_store_shared_t *sh, h2o_evloop_t *loop, const char *node_id)
{
    shandle_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd == -1) {
        free(h);
        return NULL;
    }
    h->super.ops = &ops;
    h->sh = sh;
    h->loop = loop;
    snprintf(h->node_id, sizeof(h->node_id), "%s", node_id);
    ag_map_init(&h->subs);
    h->wake = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h->wake->data = h;
    h2o_socket_read_start(h->wake, on_wake);
    pthread_mutex_lock(&sh->lock);
    unsigned slot = 0;
    while (slot < AG_CONFIG_WORKERS_MAX && sh->slots[slot] != NULL)
        slot++;
    if (slot < AG_CONFIG_WORKERS_MAX) {
        sh->slots[slot] = h;
        sh->refs++;
    }
    pthread_mutex_unlock(&sh->lock);
    if (slot == AG_CONFIG_WORKERS_MAX) {
        h2o_socket_read_stop(h->wake);
        h2o_socket_close(h->wake);
        free(h);
        return NULL;
    }
    h->slot = slot;
    return &h->super;
}
