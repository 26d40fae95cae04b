/*
 * The memory store: rooms, membership, cache and pub/sub inside one process (the embedded default).
 *
 * Every operation answers before it returns, except delivery: publish answers at once but hands the message to this
 * node's on_message (on_node_event for reserved channels) on the loop's next pass, as the Redis store can only do. A
 * caller that publishes and then replies (the say verb) thus sends its reply before the published line on both stores.
 * A message is queued only when the channel is subscribed at publish time, and dropped when it is no longer subscribed
 * at delivery. The queue holds what one loop pass published, so it is bounded by what the node accepts in one pass.
 * There are no other nodes, hence no node registry. A room's history (resume) is a ring of its last lines, made with its
 * first line and dropped with the room.
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>
#include <h2o.h>
#include "common.h"
#include "history.h"

typedef struct {
    json_t *value;
    uint64_t expire_ms, created_at, read_at;
} centry_t;

typedef struct st_pending_t {
    struct st_pending_t *next;
    size_t len;
    char *channel; /* points into data, after the payload */
    char data[];
} pending_t;

typedef struct {
    ag_store_t super;
    h2o_evloop_t *loop; /* NULL: deliver synchronously */
    h2o_timeout_t zero;
    h2o_timeout_entry_t deliver;
    pending_t *head, **tail;
    ag_map_t rooms; /* name -> json object conn_id -> details */
    ag_map_t cache; /* key -> centry_t* */
    ag_map_t subs;  /* channel -> (void *)1 */
    ag_map_t hist;  /* room -> ag_store_hist_t* */
} memstore_t;

#define M(s) ((memstore_t *)(s))

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

static void pending_free(pending_t *p)
{
    while (p != NULL) {
        pending_t *next = p->next;
        free(p);
        p = next;
    }
}

static void destroy(ag_store_t *s)
{
    memstore_t *m = M(s);
    if (m->loop != NULL) {
        if (h2o_timeout_is_linked(&m->deliver))
            h2o_timeout_unlink(&m->deliver);
        h2o_timeout_dispose(m->loop, &m->zero);
    }
    pending_free(m->head);
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&M(s)->rooms, &it, &k, &v);)
        json_decref(v);
    for (size_t it = 0; ag_map_next(&M(s)->cache, &it, &k, &v);)
        centry_free(v);
    for (size_t it = 0; ag_map_next(&M(s)->hist, &it, &k, &v);)
        ag_store_hist_free(v);
    ag_map_dispose(&M(s)->hist);
    ag_map_dispose(&M(s)->rooms);
    ag_map_dispose(&M(s)->cache);
    ag_map_dispose(&M(s)->subs);
    free(s);
}

static void room_add(ag_store_t *s, const char *room, ag_store_cb cb, void *data)
{
    if (ag_map_get(&M(s)->rooms, room) != NULL) {
        reply(cb, data, "room exists", NULL);
        return;
    }
    if (s->max_rooms != 0 && M(s)->rooms.size >= s->max_rooms) {
        reply(cb, data, AG_STORE_ERR_TOO_MANY_ROOMS, NULL);
        return;
    }
    json_t *members = json_object();
    if (members == NULL || ag_map_set(&M(s)->rooms, room, members) != AG_OK) {
        json_decref(members);
        reply(cb, data, "out of memory", NULL);
        return;
    }
    reply(cb, data, NULL, json_true());
}

static void room_del(ag_store_t *s, const char *room, ag_store_cb cb, void *data)
{
    json_t *members = ag_map_del(&M(s)->rooms, room);
    if (members == NULL) {
        reply(cb, data, "room does not exist", NULL);
        return;
    }
    json_decref(members);
    ag_store_hist_free(ag_map_del(&M(s)->hist, room)); /* a room made again starts a new epoch */
    reply(cb, data, NULL, json_true());
}

static void room_exists(ag_store_t *s, const char *room, ag_store_cb cb, void *data)
{
    reply(cb, data, NULL, json_boolean(ag_map_get(&M(s)->rooms, room) != NULL));
}

static void room_list(ag_store_t *s, ag_store_cb cb, void *data)
{
    json_t *list = json_array();
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&M(s)->rooms, &it, &k, &v);)
        json_array_append_new(list, json_string(k));
    reply(cb, data, NULL, list);
}

static void member_add(ag_store_t *s, const char *room, const char *conn_id, const json_t *details, ag_store_cb cb, void *data)
{
    json_t *members = ag_map_get(&M(s)->rooms, room);
    if (members == NULL) {
        reply(cb, data, "room does not exist", NULL);
        return;
    }
    json_object_set_new(members, conn_id, json_deep_copy(details));
    reply(cb, data, NULL, json_true());
}

static void member_del(ag_store_t *s, const char *room, const char *conn_id, ag_store_cb cb, void *data)
{
    json_t *members = ag_map_get(&M(s)->rooms, room);
    int removed = members != NULL && json_object_del(members, conn_id) == 0;
    reply(cb, data, NULL, json_boolean(removed));
}

static void members(ag_store_t *s, const char *room, ag_store_cb cb, void *data)
{
    json_t *m = ag_map_get(&M(s)->rooms, room);
    if (m == NULL) {
        reply(cb, data, "room does not exist", NULL);
        return;
    }
    reply(cb, data, NULL, json_incref(m));
}

/* An expired entry is removed when seen, so size counts live keys only. */
static centry_t *cache_get(memstore_t *m, const char *key, uint64_t now)
{
    centry_t *e = ag_map_get(&m->cache, key);
    if (e != NULL && e->expire_ms != 0 && e->expire_ms <= now) {
        ag_map_del(&m->cache, key);
        centry_free(e);
        return NULL;
    }
    return e;
}

static void cache_save(ag_store_t *s, const char *key, const json_t *value, uint64_t expire_ms, ag_store_cb cb, void *data)
{
    uint64_t now = ag_now_ms();
    centry_t *e = cache_get(M(s), key, now);
    if (e == NULL) {
        if ((e = calloc(1, sizeof(*e))) == NULL || ag_map_set(&M(s)->cache, key, e) != AG_OK) {
            free(e);
            reply(cb, data, "out of memory", NULL);
            return;
        }
    } else {
        json_decref(e->value);
    }
    e->value = json_deep_copy(value);
    e->expire_ms = expire_ms;
    e->created_at = now;
    e->read_at = 0;
    reply(cb, data, NULL, json_true());
}

static void cache_load(ag_store_t *s, const char *key, ag_store_cb cb, void *data)
{
    uint64_t now = ag_now_ms();
    centry_t *e = cache_get(M(s), key, now);
    if (e == NULL) {
        reply(cb, data, NULL, json_null());
        return;
    }
    e->read_at = now;
    json_t *r = json_object();
    json_object_set_new(r, "key", json_string(key));
    json_object_set(r, "value", e->value);
    json_object_set_new(r, "expireTimestamp", e->expire_ms != 0 ? json_integer((json_int_t)e->expire_ms) : json_null());
    json_object_set_new(r, "createdAt", json_integer((json_int_t)e->created_at));
    json_object_set_new(r, "readAt", json_integer((json_int_t)e->read_at));
    reply(cb, data, NULL, r);
}

static void cache_del(ag_store_t *s, const char *key, ag_store_cb cb, void *data)
{
    centry_t *e = cache_get(M(s), key, ag_now_ms());
    if (e != NULL) {
        ag_map_del(&M(s)->cache, key);
        centry_free(e);
    }
    reply(cb, data, NULL, json_boolean(e != NULL));
}

static void cache_size(ag_store_t *s, ag_store_cb cb, void *data)
{
    uint64_t now = ag_now_ms();
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&M(s)->cache, &it, &k, &v);)
        cache_get(M(s), k, now);
    reply(cb, data, NULL, json_integer((json_int_t)M(s)->cache.size));
}

static void deliver_one(ag_store_t *s, const char *channel, const char *payload, size_t len)
{
    /* reserved channels belong to the node layer, as on the Redis store */
    if (channel[0] == '_' && s->on_node_event != NULL)
        s->on_node_event(s->on_node_event_data, channel, payload, len);
    else if (channel[0] != '_' && s->on_message != NULL)
        s->on_message(s->on_message_data, channel, payload, len);
}

static void on_deliver(h2o_timeout_entry_t *entry)
{
    memstore_t *m = H2O_STRUCT_FROM_MEMBER(memstore_t, deliver, entry);
    /* only this batch: what its receivers publish waits for the next pass, so a chain of publishes cannot hold the loop */
    pending_t *batch = m->head;
    m->head = NULL;
    m->tail = &m->head;
    for (pending_t *p = batch; p != NULL; p = p->next)
        if (ag_map_get(&m->subs, p->channel) != NULL)
            deliver_one(&m->super, p->channel, p->data, p->len);
    pending_free(batch);
    if (m->head != NULL && !h2o_timeout_is_linked(&m->deliver))
        h2o_timeout_link(m->loop, &m->zero, &m->deliver);
}

static void publish(ag_store_t *s, const char *channel, const char *payload, size_t len, ag_store_cb cb, void *data)
{
    memstore_t *m = M(s);
    if (ag_map_get(&m->subs, channel) == NULL) {
        reply(cb, data, NULL, json_true());
        return;
    }
    if (m->loop == NULL) {
        deliver_one(s, channel, payload, len);
        reply(cb, data, NULL, json_true());
        return;
    }
    size_t clen = strlen(channel);
    pending_t *p = malloc(offsetof(pending_t, data) + len + clen + 1);
    if (p == NULL) {
        reply(cb, data, "out of memory", NULL);
        return;
    }
    p->next = NULL;
    p->len = len;
    memcpy(p->data, payload, len);
    p->channel = p->data + len;
    memcpy(p->channel, channel, clen + 1);
    *m->tail = p;
    m->tail = &p->next;
    if (!h2o_timeout_is_linked(&m->deliver))
        h2o_timeout_link(m->loop, &m->zero, &m->deliver);
    reply(cb, data, NULL, json_true());
}

static ag_store_hist_t *hist_of(ag_store_t *s, const char *room)
{
    ag_store_hist_t *h = ag_map_get(&M(s)->hist, room);
    if (h != NULL || s->history_lines == 0 || ag_map_get(&M(s)->rooms, room) == NULL)
        return h;
    if ((h = ag_store_hist_create(s->history_lines)) != NULL && ag_map_set(&M(s)->hist, room, h) != AG_OK) {
        ag_store_hist_free(h);
        h = NULL;
    }
    return h;
}

static void history_publish(ag_store_t *s, const char *room, const char *channel, const char *payload, size_t len, ag_store_cb cb,
                            void *data)
{
    ag_store_hist_t *h = hist_of(s, room);
    if (h == NULL) {
        publish(s, channel, payload, len, NULL, NULL);
        reply(cb, data, NULL, json_null());
        return;
    }
    char *copy = len <= s->history_bytes ? malloc(len + 1) : NULL;
    if (copy != NULL) {
        memcpy(copy, payload, len);
        copy[len] = '\0';
    }
    uint64_t offset = ag_store_hist_append(h, copy, len, s->history_bytes, s->history_ms, ag_now_ms());
    if (copy == NULL) {
        /* not kept: published as it is, and a resume across this offset fails */
        publish(s, channel, payload, len, NULL, NULL);
        reply(cb, data, NULL, json_null());
        return;
    }
    char head[32];
    int hl = snprintf(head, sizeof(head), "#%llu:", (unsigned long long)offset);
    char *msg = malloc((size_t)hl + len);
    if (msg != NULL) {
        memcpy(msg, head, (size_t)hl);
        memcpy(msg + hl, payload, len);
        publish(s, channel, msg, (size_t)hl + len, NULL, NULL);
        free(msg);
    }
    reply(cb, data, NULL, json_pack("{s:I,s:s}", "offset", (json_int_t)offset, "epoch", h->epoch));
}

static void history_since(ag_store_t *s, const char *room, uint64_t after, ag_store_cb cb, void *data)
{
    ag_store_hist_t *h = hist_of(s, room);
    if (h != NULL)
        ag_store_hist_expire(h, s->history_ms, ag_now_ms());
    if (h == NULL || (after != AG_STORE_HISTORY_TAIL && !ag_store_hist_has_after(h, after))) {
        reply(cb, data, AG_STORE_HISTORY_GONE, NULL);
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; after != AG_STORE_HISTORY_TAIL && i < h->n; i++) {
        const ag_store_hline_t *l = ag_store_hist_line(h, i);
        if (l->offset > after)
            json_array_append_new(items, json_pack("[I,s%]", (json_int_t)l->offset, l->data, l->len));
    }
    reply(cb, data, NULL, json_pack("{s:s,s:I,s:o}", "epoch", h->epoch, "last", (json_int_t)h->last, "items", items));
}

static void history_dump(ag_store_t *s, ag_store_cb cb, void *data)
{
    json_t *rooms = json_object();
    const char *k;
    void *v;
    for (size_t it = 0; rooms != NULL && ag_map_next(&M(s)->hist, &it, &k, &v);) {
        ag_store_hist_expire(v, s->history_ms, ag_now_ms());
        json_t *d = ag_store_hist_dump(v);
        if (d == NULL || json_object_set_new(rooms, k, d) != 0) {
            json_decref(rooms);
            rooms = NULL;
        }
    }
    reply(cb, data, rooms != NULL ? NULL : "out of memory", rooms);
}

static void history_load(ag_store_t *s, const char *room, const json_t *hist, ag_store_cb cb, void *data)
{
    const char *err = NULL;
    ag_store_hist_t *h = s->history_lines != 0 ? ag_store_hist_load(hist, s->history_lines, s->history_bytes, &err) : NULL;
    if (h == NULL) {
        reply(cb, data, err != NULL ? err : "no room history kept", NULL);
        return;
    }
    if (ag_map_get(&M(s)->hist, room) != NULL) {
        ag_store_hist_free(h);
        reply(cb, data, "room exists", NULL);
        return;
    }
    json_t *members = ag_map_get(&M(s)->rooms, room);
    int made = members == NULL;
    if ((made && ((members = json_object()) == NULL || ag_map_set(&M(s)->rooms, room, members) != AG_OK)) ||
        ag_map_set(&M(s)->hist, room, h) != AG_OK) {
        if (made && members != NULL && ag_map_get(&M(s)->rooms, room) == members)
            ag_map_del(&M(s)->rooms, room);
        if (made)
            json_decref(members);
        ag_store_hist_free(h);
        reply(cb, data, "out of memory", NULL);
        return;
    }
    reply(cb, data, NULL, json_true());
}

static void subscribe(ag_store_t *s, const char *channel)
{
    ag_map_set(&M(s)->subs, channel, (void *)1);
}

static void unsubscribe(ag_store_t *s, const char *channel)
{
    ag_map_del(&M(s)->subs, channel);
}

/* One process is no cluster: there is no registry, every session is this node's. */
static int node_register(ag_store_t *s, const ag_store_node_t *self)
{
    (void)s;
    (void)self;
    return AG_ENOENT;
}

static void node_lookup(ag_store_t *s, const char *tag, ag_store_cb cb, void *data)
{
    (void)s;
    (void)tag;
    reply(cb, data, AG_STORE_NOT_CLUSTERED, NULL);
}

static void node_leave(ag_store_t *s)
{
    (void)s;
}

static void node_list(ag_store_t *s, ag_store_cb cb, void *data)
{
    (void)s;
    reply(cb, data, AG_STORE_NOT_CLUSTERED, NULL);
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

ag_store_t *ag_store_memory_create(h2o_evloop_t *loop)
{
    memstore_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->super.ops = &ops;
    m->loop = loop;
    m->tail = &m->head;
    if (loop != NULL) {
        h2o_timeout_init(loop, &m->zero, 0);
        m->deliver.cb = on_deliver;
    }
    ag_map_init(&m->rooms);
    ag_map_init(&m->cache);
    ag_map_init(&m->subs);
    ag_map_init(&m->hist);
    return &m->super;
}
