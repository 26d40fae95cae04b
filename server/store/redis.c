/*
 * The Redis store: rooms, membership, cache and pub/sub shared by every node of a cluster.
 *
 * Keys (P = redis.prefix, "actiongate:" by default):
 *   P rooms                  SET   room names (compat mode: actionhero:chatRoom:rooms)
 *   P members:<room>         HASH  conn id -> member details JSON ({id, joinedAt, node}) (compat mode:
 *                                  actionhero:chatRoom:members:<room>, details {id, joinedAt, host})
 *   P nodemembers:<node>     SET   "<conn id> <room>": what to remove when <node> dies
 *   P cache:<key>            HASH  value (JSON text), createdAt, expireTimestamp, readAt; PEXPIREAT when it expires
 *   P cachekeys              ZSET  cache key -> expireTimestamp (+inf: never): what cache_size counts (never KEYS)
 *   P nodes                  SET   node ids that registered
 *   P node:<id>              STRING "<sid tag> <host:port>", PX redis.nodeTtl: the node's heartbeat
 *   P route:<sid tag>        HASH  address ("host:port"), token; PEXPIRE redis.nodeTtl: the registry (node_register)
 *   P hist:<room>, P histlines:<room>   the room's history, for resume (redis_history.c)
 * Channels: P<channel> for the session layer's channels; P_ctl for the stores themselves (room deletions);
 * P_<name> (reserved, e.g. P_cluster) for the node layer (on_node_event).
 *
 * Compat mode (options actionhero_channel): the rooms and members are actionhero's, so its nodes and ours see one set of
 * rooms and count each other's members; chat ('c' frames on "room:<name>") travels as actionhero's chat envelope on its
 * channel, which every node subscribes, and is delivered to the rooms this node subscribed; the app's cluster RPC
 * (`do`) goes to the node layer as "_rpc" (server/ahrpc.c answers it). What actionhero has no notion of (pushes to a
 * room, room deletions among our nodes, the registry, the cache) stays on our prefix.
 *
 * The heartbeat, the dead-node reaper and the resync live in redis_nodes.c. What this node added (its members, the
 * rooms it created or asked for) is mirrored locally so that it can be written again after Redis lost it.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "redis_adapter.h"
#include "redis_store.h"

/* --- scripts --- */

/* 1 added, 0 exists, -1 the set holds ARGV[2] rooms already (0: no bound) */
static const char LUA_ROOM_ADD[] = "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 0 end "
                                   "local max = tonumber(ARGV[2]) "
                                   "if max > 0 and redis.call('SCARD', KEYS[1]) >= max then return -1 end "
                                   "redis.call('SADD', KEYS[1], ARGV[1]) return 1";

static const char LUA_MEMBER_ADD[] = "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end "
                                     "redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) "
                                     "redis.call('SADD', KEYS[3], ARGV[2] .. ' ' .. ARGV[1]) return 1";

/* the node a member is indexed under: details.node (details.host in compat mode), else the node that removes it */
#define LUA_NODE_OF                                                                                                                \
    "local function node_of(d, dflt) local ok, t = pcall(cjson.decode, d) if ok and type(t) == 'table' then "                      \
    "if type(t.node) == 'string' then return t.node end if type(t.host) == 'string' then return t.host end end return dflt end "

static const char LUA_MEMBER_DEL[] = LUA_NODE_OF "local d = redis.call('HGET', KEYS[1], ARGV[1]) if not d then return 0 end "
                                                 "redis.call('HDEL', KEYS[1], ARGV[1]) "
                                                 "redis.call('SREM', ARGV[3] .. 'nodemembers:' .. node_of(d, ARGV[4]), "
                                                 "ARGV[1] .. ' ' .. ARGV[2]) return 1";

static const char LUA_ROOM_DEL[] =
    LUA_NODE_OF "if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end "
                "local m = redis.call('HGETALL', KEYS[2]) for i = 1, #m, 2 do "
                "redis.call('SREM', ARGV[2] .. 'nodemembers:' .. node_of(m[i + 1], ARGV[3]), "
                "m[i] .. ' ' .. ARGV[1]) end redis.call('DEL', KEYS[2], ARGV[2] .. 'hist:' .. ARGV[1], "
                "ARGV[2] .. 'histlines:' .. ARGV[1]) return 1";

static const char LUA_MEMBERS[] = "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return false end "
                                  "return redis.call('HGETALL', KEYS[2])";

/* The cache index (P cachekeys, ZSET key -> expiry ms, +inf for never) is what cache_size counts, so no command ever
 * walks the keyspace. Expired entries leave it on every save and size (each one once: the cost is amortised). */
static const char LUA_CACHE_SAVE[] = "redis.call('DEL', KEYS[1]) "
                                     "redis.call('HSET', KEYS[1], 'value', ARGV[1], 'createdAt', ARGV[2], "
                                     "'expireTimestamp', ARGV[3]) local score = '+inf' "
                                     "if ARGV[3] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) score = ARGV[3] end "
                                     "redis.call('ZADD', KEYS[2], score, ARGV[4]) "
                                     "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2]) return 1";

/* a key gone by other means (eviction, a hand-made DEL) leaves the index when it is missed */
static const char LUA_CACHE_LOAD[] = "local v = redis.call('HMGET', KEYS[1], 'value', 'createdAt', 'expireTimestamp') "
                                     "if not v[1] then redis.call('ZREM', KEYS[2], ARGV[2]) return false end "
                                     "redis.call('HSET', KEYS[1], 'readAt', ARGV[1]) return v";

static const char LUA_CACHE_DEL[] = "redis.call('ZREM', KEYS[2], ARGV[1]) return redis.call('DEL', KEYS[1])";

static const char LUA_CACHE_SIZE[] = "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1]) return redis.call('ZCARD', KEYS[1])";

/* --- helpers --- */

/* A key or channel: prefix + parts, heap-allocated. */
char *ag__redis_pkey(ag__redis_store_t *s, const char *a, const char *b)
{
    size_t n = strlen(s->prefix) + strlen(a) + (b != NULL ? strlen(b) : 0) + 1;
    char *k = malloc(n);
    if (k != NULL)
        snprintf(k, n, "%s%s%s", s->prefix, a, b != NULL ? b : "");
    return k;
}

char *ag__redis_rooms_key(ag__redis_store_t *s)
{
    return strdup(s->rooms_key);
}

char *ag__redis_members_key(ag__redis_store_t *s, const char *room)
{
    size_t n = strlen(s->members_prefix) + strlen(room) + 1;
    char *k = malloc(n);
    if (k != NULL)
        snprintf(k, n, "%s%s", s->members_prefix, room);
    return k;
}

typedef struct st_req_t {
    ag__redis_store_t *s;
    ag_store_cb cb;
    void *data;
    char *a, *b; /* op-specific copies (room, key, member entry) */
    char *details;
} req_t;

static req_t *req_new(ag__redis_store_t *s, ag_store_cb cb, void *data)
{
    req_t *r = calloc(1, sizeof(*r));
    if (r != NULL) {
        r->s = s;
        r->cb = cb;
        r->data = data;
    }
    return r;
}

static void req_free(req_t *r)
{
    free(r->a);
    free(r->b);
    free(r->details);
    free(r);
}

static void answer(ag_store_cb cb, void *data, const char *err, json_t *result)
{
    if (cb != NULL)
        cb(data, err, err != NULL ? NULL : result);
    json_decref(result);
}

/* EVAL with a script, keys and args (all NUL-terminated; args may be NULL-terminated lists). */
void ag__redis_eval(ag__redis_store_t *s, ag_redis_reply_cb cb, void *data, const char *script, int nkeys, const char **keys,
                    int nargs, const char **args)
{
    const char *argv[16];
    size_t lens[16];
    char nk[8];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    int argc = 0;
    argv[argc++] = "EVAL";
    argv[argc++] = script;
    argv[argc++] = nk;
    for (int i = 0; i < nkeys; i++)
        argv[argc++] = keys[i];
    for (int i = 0; i < nargs; i++)
        argv[argc++] = args[i];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    ag_redis_command(s->cmd, cb, data, argc, argv, lens);
}

int ag__redis_reply_int(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
}

static void note_error(ag__redis_store_t *s, const char *err)
{
    if (err != NULL && !ag_redis_is_up(s->cmd) && !s->down_logged) {
        s->down_logged = 1;
        ag_log(AG_LOG_WARN, "redis", NULL, "store unavailable (%s): serving local connections, retrying", err);
    }
}

/* --- rooms --- */

static void on_room_add(void *_r, const char *err, redisReply *reply)
{
    req_t *r = _r;
    note_error(r->s, err);
    int added = err == NULL && reply != NULL && reply->type == REDIS_REPLY_INTEGER ? (int)reply->integer : -2;
    if (added == 0 || added == 1) /* this node asked for it: written again if Redis loses it */
        ag_map_set(&r->s->local_rooms, r->a, (void *)1);
    if (added == 0)
        err = "room exists";
    else if (added == -1)
        err = AG_STORE_ERR_TOO_MANY_ROOMS;
    else if (added != 1 && err == NULL)
        err = "unexpected reply from redis";
    answer(r->cb, r->data, err, json_true());
    req_free(r);
}

static void room_add(ag_store_t *store, const char *room, ag_store_cb cb, void *data)
{
    ag__redis_store_t *s = (void *)store;
    req_t *r = req_new(s, cb, data);
    char *k = ag__redis_rooms_key(s);
    if (r == NULL || k == NULL || (r->a = strdup(room)) == NULL) {
        free(k);
        if (r != NULL)
            req_free(r);
        answer(cb, data, "out of memory", NULL);
        return;
    }
    /* the bound is checked and the room added in one script: nodes creating rooms at once cannot overshoot it */
    char max[24];
    snprintf(max, sizeof(max), "%zu", store->max_rooms);
    const char *keys[] = {k}, *args[] = {room, max};
    ag__redis_eval(s, on_room_add, r, LUA_ROOM_ADD, 1, keys, 2, args);
    free(k);
}

static void publish_ctl(ag__redis_store_t *s, const char *type, const char *room)
{
    json_t *msg = json_pack("{s:s,s:s,s:s}", "type", type, "room", room, "node", s->node_id);
    char *text = msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;
    char *ch = ag__redis_pkey(s, "_ctl", NULL);
    if (text != NULL && ch != NULL)
        ag_redis_commandv(s->cmd, NULL, NULL, "PUBLISH", ch, text, NULL);
    free(ch);
    free(text);
    json_decref(msg);
}

static void forget_room(ag__redis_store_t *s, const char *room)
{
    ag_map_del(&s->local_rooms, room);
    const char *k;
    void *v;
    size_t rlen = strlen(room);
    for (size_t it = 0; ag_map_next(&s->local_members, &it, &k, &v);) {
        const char *sp = strchr(k, ' ');
        if (sp != NULL && strlen(sp + 1) == rlen && memcmp(sp + 1, room, rlen) == 0)
            free(ag_map_del(&s->local_members, k));
    }
}

static void on_room_del(void *_r, const char *err, redisReply *reply)
{
    req_t *r = _r;
    note_error(r->s, err);
    if (err == NULL && ag__redis_reply_int(reply) == 0)
        err = "room does not exist";
    if (err == NULL) {
        forget_room(r->s, r->a);
        publish_ctl(r->s, "roomDeleted", r->a);
    }
    answer(r->cb, r->data, err, json_true());
    req_free(r);
}

static void room_del(ag_store_t *store, const char *room, ag_store_cb cb, void *data)
{
    ag__redis_store_t *s = (void *)store;
    req_t *r = req_new(s, cb, data);
    char *k1 = ag__redis_rooms_key(s), *k2 = ag__redis_members_key(s, room);
    if (r == NULL || k1 == NULL || k2 == NULL || (r->a = strdup(room)) == NULL) {
        if (r != NULL)
            req_free(r);
        answer(cb, data, "out of memory", NULL);
    } else {
        const char *keys[] = {k1, k2}, *args[] = {room, s->prefix, s->node_id};
        ag__redis_eval(s, on_room_del, r, LUA_ROOM_DEL, 2, keys, 3, args);
    }
    free(k1);
    free(k2);
}

/* One command on the rooms key, with an optional argument after it: the shape of the simple operations. */
static void rooms_command(ag__redis_store_t *s, ag_store_cb cb, void *data, ag_redis_reply_cb on_reply, const char *cmd,
                          const char *arg)
{
    req_t *r = req_new(s, cb, data);
    char *k = ag__redis_rooms_key(s);
    if (r == NULL || k == NULL) {
        free(r);
        answer(cb, data, "out of memory", NULL);
    } else {
        ag_redis_commandv(s->cmd, on_reply, r, cmd, k, arg, NULL);
    }
    free(k);
}

static void on_bool(void *_r, const char *err, redisReply *reply)
{
    req_t *r = _r;
    note_error(r->s, err);
    answer(r->cb, r->data, err, json_boolean(ag__redis_reply_int(reply) > 0));
    req_free(r);
}

static void room_exists(ag_store_t *store, const char *room, ag_store_cb cb, void *data)
{
    rooms_command((void *)store, cb, data, on_bool, "SISMEMBER", room);
}

static void on_room_list(void *_r, const char *err, redisReply *reply)
{
    req_t *r = _r;
    note_error(r->s, err);
    json_t *list = json_array();
    if (err == NULL && reply->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < reply->elements; i++)
            if (reply->element[i]->type == REDIS_REPLY_STRING)
                json_array_append_new(list, json_stringn(reply->element[i]->str, reply->element[i]->len));
    answer(r->cb, r->data, err, list);
    req_free(r);
}

static void room_list(ag_store_t *store, ag_store_cb cb, void *data)
{
    rooms_command((void *)store, cb, data, on_room_list, "SMEMBERS", NULL);
}

/* --- membership --- */

static const char *node_of(ag__redis_store_t *s, const json_t *details)
{
    const char *n = json_string_value(json_object_get(details, "node"));
    return n != NULL ? n : s->node_id;
}

static void on_member_add(void *_r, const char *err, redisReply *reply)
{
    req_t *r = _r;
    note_error(r->s, err);
    if (err == NULL && ag__redis_reply_int(reply) == 0)
        err = "room does not exist";
    if (err == NULL && r->details != NULL) {
        free(ag_map_del(&r->s->local_members, r->a));
        if (ag_map_set(&r->s->local_members, r->a, r->details) == 0)
            r->details = NULL;
    }
    answer(r->cb, r->data, err, json_true());
    req_free(r);
}

static void member_add(ag_store_t *store, const char *room, const char *conn_id, const json_t *details, ag_store_cb cb, void *data)
{
    ag__redis_store_t *s = (void *)store;
    req_t *r = req_new(s, cb, data);
    const char *node = node_of(s, details);
    json_t *written = NULL;
    if (s->ah_channel != NULL && json_object_get(details, "node") != NULL) {
        /* actionhero's own member details say "host" for the node: its sanitizers and ours read the same fields */
        written = json_deep_copy(details);
        if (written != NULL) {
            json_object_set(written, "host", json_object_get(written, "node"));
            json_object_del(written, "node");
        }
    }
    char *text = json_dumps(written != NULL ? written : details, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(written);
    char *k1 = ag__redis_rooms_key(s), *k2 = ag__redis_members_key(s, room), *k3 = ag__redis_pkey(s, "nodemembers:", node);
    size_t elen = strlen(conn_id) + strlen(room) + 2;
    if (r == NULL || text == NULL || k1 == NULL || k2 == NULL || k3 == NULL || (r->a = malloc(elen)) == NULL) {
        if (r != NULL)
            req_free(r);
        answer(cb, data, "out of memory", NULL);
    } else {
        snprintf(r->a, elen, "%s %s", conn_id, room);
        const char *keys[] = {k1, k2, k3}, *args[] = {room, conn_id, text};
        /* only this node's own members are written again after Redis lost them */
        if (strcmp(node, s->node_id) == 0)
            r->details = strdup(text);
        ag__redis_eval(s, on_member_add, r, LUA_MEMBER_ADD, 3, keys, 3, args);
    }
    free(text);
    free(k1);
    free(k2);
    free(k3);
}

static void member_del(ag_store_t *store, const char *room, const char *conn_id, ag_store_cb cb, void *data)
{
    ag__redis_store_t *s = (void *)store;
    req_t *r = req_new(s, cb, data);
    char *k = ag__redis_members_key(s, room);
    size_t elen = strlen(conn_id) + strlen(room) + 2;
    char *entry = malloc(elen);
    if (r == NULL || k == NULL || entry == NULL) {
        free(r);
        answer(cb, data, "out of memory", NULL);
    } else {
        snprintf(entry, elen, "%s %s", conn_id, room);
        /* forgotten locally whatever Redis says: a connection that left must not come back on a resync */
        free(ag_map_del(&s->local_members, entry));
        const char *keys[] = {k}, *args[] = {conn_id, room, s->prefix, s->node_id};
        ag__redis_eval(s, on_bool, r, LUA_MEMBER_DEL, 1, keys, 4, args);
    }
    free(entry);
    free(k);
}

static void member_forget(ag_store_t *store, const char *room, const char *conn_id)
{
    ag__redis_store_t *s = (void *)store;
    size_t elen = strlen(conn_id) + strlen(room) + 2;
    char *entry = malloc(elen), *idx = ag__redis_pkey(s, "nodemembers:", s->node_id);
    if (entry != NULL && idx != NULL) {
        snprintf(entry, elen, "%s %s", conn_id, room);
        free(ag_map_del(&s->local_members, entry));
        ag_redis_commandv(s->cmd, NULL, NULL, "SREM", idx, entry, NULL);
    }
    free(entry);
    free(idx);
}

static void on_members(void *_r, const char *err, redisReply *reply)
{
    req_t *r = _r;
    note_error(r->s, err);
    json_t *obj = json_object();
    if (err == NULL && reply->type != REDIS_REPLY_ARRAY)
        err = "room does not exist";
    if (err == NULL)
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            redisReply *k = reply->element[i], *v = reply->element[i + 1];
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            json_t *d = json_loadb(v->str, v->len, JSON_DECODE_ANY, NULL);
            if (d != NULL)
                json_object_setn_new(obj, k->str, k->len, d);
        }
    answer(r->cb, r->data, err, obj);
    req_free(r);
}

static void members(ag_store_t *store, const char *room, ag_store_cb cb, void *data)
{
    ag__redis_store_t *s = (void *)store;
    req_t *r = req_new(s, cb, data);
    char *k1 = ag__redis_rooms_key(s), *k2 = ag__redis_members_key(s, room);
    if (r == NULL || k1 == NULL || k2 == NULL) {
        free(r);
        answer(cb, data, "out of memory", NULL);
    } else {
        const char *keys[] = {k1, k2}, *args[] = {room};
        ag__redis_eval(s, on_members, r, LUA_MEMBERS, 2, keys, 1, args);
    }
    free(k1);
    free(k2);
}

/* --- cache --- */

static void cache_save(ag_store_t *store, const char *key, const json_t *value, uint64_t expire_ms, ag_store_cb cb, void *data)
{
    ag__redis_store_t *s = (void *)store;
    req_t *r = req_new(s, cb, data);
    char *k = ag__redis_pkey(s, "cache:", key), *idx = ag__redis_pkey(s, "cachekeys", NULL);
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (r == NULL || k == NULL || idx == NULL || text == NULL) {
        free(r);
        answer(cb, data, "out of memory", NULL);
    } else {
        char now[24], exp[24] = "";
        snprintf(now, sizeof(now), "%llu", (unsigned long long)ag_now_ms());
        if (expire_ms != 0)
            snprintf(exp, sizeof(exp), "%llu", (unsigned long long)expire_ms);
        const char *keys[] = {k, idx}, *args[] = {text, now, exp, key};
        ag__redis_eval(s, on_bool, r, LUA_CACHE_SAVE, 2, keys, 4, args);
    }
    free(text);
    free(k);
    free(idx);
}

static json_t *reply_number(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_STRING || r->len == 0)
        return json_null();
    return json_integer(strtoll(r->str, NULL, 10));
}

static void on_cache_load(void *_r, const char *err, redisReply *reply)
{
    req_t *r = _r;
    note_error(r->s, err);
    json_t *result = json_null();
    if (err == NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 && reply->element[0]->type == REDIS_REPLY_STRING) {
        json_t *value = json_loadb(reply->element[0]->str, reply->element[0]->len, JSON_DECODE_ANY, NULL);
        json_t *expire = reply_number(reply->element[2]);
        uint64_t now = strtoull(r->b, NULL, 10);
        /* Redis expires the key on its own clock; this node's clock has the last word */
        if (value != NULL && !(json_is_integer(expire) && (uint64_t)json_integer_value(expire) <= now)) {
            json_decref(result);
            result = json_pack("{s:s,s:o,s:o,s:o,s:I}", "key", r->a, "value", value, "expireTimestamp", expire, "createdAt",
                               reply_number(reply->element[1]), "readAt", (json_int_t)now);
        } else {
            json_decref(value);
            json_decref(expire);
        }
    }
    answer(r->cb, r->data, err, result);
    req_free(r);
}

static void cache_load(ag_store_t *store, const char *key, ag_store_cb cb, void *data)
{
    ag__redis_store_t *s = (void *)store;
    req_t *r = req_new(s, cb, data);
    char *k = ag__redis_pkey(s, "cache:", key), *idx = ag__redis_pkey(s, "cachekeys", NULL);
    char now[24];
    snprintf(now, sizeof(now), "%llu", (unsigned long long)ag_now_ms());
    if (r == NULL || k == NULL || idx == NULL || (r->a = strdup(key)) == NULL || (r->b = strdup(now)) == NULL) {
        if (r != NULL)
            req_free(r);
        answer(cb, data, "out of memory", NULL);
    } else {
        const char *keys[] = {k, idx}, *args[] = {now, key};
        ag__redis_eval(s, on_cache_load, r, LUA_CACHE_LOAD, 2, keys, 2, args);
    }
    free(k);
    free(idx);
}

static void cache_del(ag_store_t *store, const char *key, ag_store_cb cb, void *data)
{
    ag__redis_store_t *s = (void *)store;
    req_t *r = req_new(s, cb, data);
    char *k = ag__redis_pkey(s, "cache:", key), *idx = ag__redis_pkey(s, "cachekeys", NULL);
    if (r == NULL || k == NULL || idx == NULL) {
        free(r);
        answer(cb, data, "out of memory", NULL);
    } else {
        const char *keys[] = {k, idx}, *args[] = {key};
        ag__redis_eval(s, on_bool, r, LUA_CACHE_DEL, 2, keys, 1, args);
    }
    free(k);
    free(idx);
}

static void on_int(void *_r, const char *err, redisReply *reply)
{
    req_t *r = _r;
    note_error(r->s, err);
    answer(r->cb, r->data, err, json_integer(ag__redis_reply_int(reply)));
    req_free(r);
}

static void cache_size(ag_store_t *store, ag_store_cb cb, void *data)
{
    ag__redis_store_t *s = (void *)store;
    req_t *r = req_new(s, cb, data);
    char *idx = ag__redis_pkey(s, "cachekeys", NULL);
    if (r == NULL || idx == NULL) {
        free(r);
        answer(cb, data, "out of memory", NULL);
    } else {
        char now[24];
        snprintf(now, sizeof(now), "%llu", (unsigned long long)ag_now_ms());
        const char *keys[] = {idx}, *args[] = {now};
        ag__redis_eval(s, on_int, r, LUA_CACHE_SIZE, 1, keys, 1, args);
    }
    free(idx);
}

/* --- pub/sub --- */

static void dispatch(ag__redis_store_t *s, const char *name, const char *payload, size_t len);

/* JSON flags of what goes to actionhero: compact, keys in the order actionhero writes them. */
#define AH_JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))

/* Compat mode: what a publish on one of our channels becomes on actionhero's channel, or NULL when it stays ours. A chat
 * frame {message, room, from, context, sentAt} becomes the envelope actionhero's broadcast() publishes (its nodes turn
 * it back into the same frame); {messageId, response} on "_rpc" becomes a doResponse. Keys a say hook added to the chat
 * frame do not travel, as actionhero's own onSayReceive additions do not. */
static char *ah_envelope(ag__redis_store_t *s, const char *channel, const char *payload, size_t len)
{
    int chat = strncmp(channel, "room:", 5) == 0 && len > 1 && payload[0] == 'c';
    if (!chat && strcmp(channel, "_rpc") != 0)
        return NULL;
    json_t *in = chat ? json_loadb(payload + 1, len - 1, 0, NULL) : json_loadb(payload, len, 0, NULL), *env = NULL;
    if (chat) {
        json_t *room = json_object_get(in, "room"), *from = json_object_get(in, "from");
        if (json_is_string(room) && from != NULL)
            env = json_pack("{s:s,s:s,s:s,s:O*,s:O*,s:{s:O,s:O}}", "messageType", "chat", "serverToken", s->ah_token, "serverId",
                            s->node_id, "message", json_object_get(in, "message"), "sentAt", json_object_get(in, "sentAt"),
                            "connection", "id", from, "room", room);
    } else if (json_object_get(in, "messageId") != NULL) {
        json_t *response = json_object_get(in, "response");
        env = json_pack("{s:s,s:s,s:s,s:O,s:O}", "messageType", "doResponse", "serverId", s->node_id, "serverToken", s->ah_token,
                        "messageId", json_object_get(in, "messageId"), "response", response != NULL ? response : json_null());
    }
    char *text = env != NULL ? json_dumps(env, AH_JSON_FLAGS) : NULL;
    json_decref(env);
    json_decref(in);
    return text;
}

/* Compat mode: a chat envelope from actionhero's channel (any node's, ours included) to the members of its room here,
 * as the frame actionhero's generateMessagePayload makes. */
static void ah_chat_in(ag__redis_store_t *s, const json_t *msg)
{
    const json_t *conn = json_object_get(msg, "connection");
    const char *room = json_string_value(json_object_get(conn, "room"));
    json_t *message = json_object_get(msg, "message");
    if (room == NULL || message == NULL || s->super.on_message == NULL)
        return;
    size_t chlen = sizeof("room:") + strlen(room);
    char *ch = malloc(chlen);
    if (ch == NULL)
        return;
    snprintf(ch, chlen, "room:%s", room);
    if (ag_map_get(&s->subs, ch) != NULL) {
        json_t *frame = json_pack("{s:O,s:s,s:O*,s:s,s:O*}", "message", message, "room", room, "from", json_object_get(conn, "id"),
                                  "context", "user", "sentAt", json_object_get(msg, "sentAt"));
        size_t n = frame != NULL ? json_dumpb(frame, NULL, 0, AH_JSON_FLAGS) : 0;
        char *buf = n > 0 ? malloc(n + 1) : NULL;
        if (buf != NULL) {
            buf[0] = 'c';
            json_dumpb(frame, buf + 1, n, AH_JSON_FLAGS);
            s->super.on_message(s->super.on_message_data, ch, buf, n + 1);
        }
        free(buf);
        json_decref(frame);
    }
    free(ch);
}

/* Compat mode: a message on actionhero's channel. Only those carrying the app's serverToken count, as on its nodes. */
static void on_ah_message(ag__redis_store_t *s, const char *payload, size_t len)
{
    json_t *msg = json_loadb(payload, len, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "messageType"));
    const char *token = json_string_value(json_object_get(msg, "serverToken"));
    if (type != NULL && token != NULL && strcmp(token, s->ah_token) == 0) {
        if (strcmp(type, "chat") == 0)
            ah_chat_in(s, msg);
        else if (strcmp(type, "do") == 0)
            ag__redis_node_event(s, "_rpc", payload, len);
    }
    json_decref(msg);
}

static void on_published(void *_r, const char *err, redisReply *reply)
{
    (void)reply;
    req_t *r = _r;
    note_error(r->s, err);
    answer(r->cb, r->data, err, json_true());
    req_free(r);
}

static void publish(ag_store_t *store, const char *channel, const char *payload, size_t len, ag_store_cb cb, void *data)
{
    ag__redis_store_t *s = (void *)store;
    if (!ag_redis_is_up(s->cmd)) {
        /* Redis is away: this node's own members still hear each other */
        note_error(s, "redis unavailable");
        if (ag_map_get(&s->subs, channel) != NULL)
            dispatch(s, channel, payload, len);
        answer(cb, data, NULL, json_true());
        return;
    }
    req_t *r = req_new(s, cb, data);
    char *ah = s->ah_channel != NULL ? ah_envelope(s, channel, payload, len) : NULL;
    char *ch = ah != NULL ? strdup(s->ah_channel) : ag__redis_pkey(s, channel, NULL);
    if (r == NULL || ch == NULL) {
        free(r);
        answer(cb, data, "out of memory", NULL);
    } else {
        const char *argv[] = {"PUBLISH", ch, ah != NULL ? ah : payload};
        size_t lens[] = {7, strlen(ch), ah != NULL ? strlen(ah) : len};
        ag_redis_command(s->cmd, on_published, r, 3, argv, lens);
    }
    free(ah);
    free(ch);
}

static void subscribe(ag_store_t *store, const char *channel)
{
    ag__redis_store_t *s = (void *)store;
    char *ch = ag__redis_pkey(s, channel, NULL);
    if (ch == NULL)
        return;
    ag_map_set(&s->subs, channel, (void *)1);
    ag_redis_subscribe(s->sub, ch);
    free(ch);
}

static void unsubscribe(ag_store_t *store, const char *channel)
{
    ag__redis_store_t *s = (void *)store;
    char *ch = ag__redis_pkey(s, channel, NULL);
    if (ch == NULL)
        return;
    ag_map_del(&s->subs, channel);
    ag_redis_unsubscribe(s->sub, ch);
    free(ch);
}

typedef struct st_sub_wait_t {
    ag_store_cb cb;
    void *data;
} sub_wait_t;

static void on_subscribed(void *data)
{
    sub_wait_t *w = data;
    answer(w->cb, w->data, NULL, json_true());
    free(w);
}

static void subscribed(ag_store_t *store, ag_store_cb cb, void *data)
{
    ag__redis_store_t *s = (void *)store;
    sub_wait_t *w = malloc(sizeof(*w));
    if (w == NULL) {
        answer(cb, data, NULL, json_true());
        return;
    }
    w->cb = cb;
    w->data = data;
    ag_redis_when_subscribed(s->sub, on_subscribed, w);
}

static void on_ctl(ag__redis_store_t *s, const char *payload, size_t len)
{
    json_t *msg = json_loadb(payload, len, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    const char *room = json_string_value(json_object_get(msg, "room"));
    if (type != NULL && room != NULL && strcmp(type, "roomDeleted") == 0)
        forget_room(s, room);
    json_decref(msg);
}

void ag__redis_node_event(ag__redis_store_t *s, const char *name, const char *payload, size_t len)
{
    if (s->super.on_node_event != NULL)
        s->super.on_node_event(s->super.on_node_event_data, name, payload, len);
}

static void dispatch(ag__redis_store_t *s, const char *name, const char *payload, size_t len)
{
    if (strcmp(name, "_ctl") == 0)
        on_ctl(s, payload, len);
    else if (name[0] == '_')
        ag__redis_node_event(s, name, payload, len);
    else if (s->super.on_message != NULL)
        s->super.on_message(s->super.on_message_data, name, payload, len);
}

static void on_message(void *data, const char *channel, size_t chlen, const char *payload, size_t len)
{
    ag__redis_store_t *s = data;
    size_t plen = strlen(s->prefix);
    if (s->ah_channel != NULL && chlen == strlen(s->ah_channel) && memcmp(channel, s->ah_channel, chlen) == 0)
        on_ah_message(s, payload, len);
    else if (chlen > plen && memcmp(channel, s->prefix, plen) == 0)
        dispatch(s, channel + plen, payload, len);
}

static void on_beat_timer(h2o_timeout_entry_t *entry)
{
    ag__redis_store_t *s = H2O_STRUCT_FROM_MEMBER(ag__redis_store_t, beat_entry, entry);
    ag__redis_store_beat(s);
    h2o_timeout_link(s->loop, &s->beat, &s->beat_entry);
}

static void on_cmd_state(void *data, int up)
{
    ag__redis_store_t *s = data;
    if (up) {
        if (s->down_logged)
            ag_log(AG_LOG_WARN, "redis", NULL, "store available again");
        s->down_logged = 0;
        if (s->super.ops->history_publish != NULL) {
            ag__redis_history_up(s);
            ag__redis_conn_up(s);
        }
        ag__redis_store_beat(s);
        ag__redis_node_event(s, "_up", "", 0);
    } else if (!s->down_logged) {
        s->down_logged = 1;
        ag_log(AG_LOG_WARN, "redis", NULL, "connection to redis lost: serving local connections, reconnecting");
    }
}

static void on_resubscribed(void *data)
{
    ag__redis_store_t *s = data;
    if (!s->sub_lost || !ag_redis_is_up(s->sub))
        return; /* lost again meanwhile: the next reconnect tells */
    s->sub_lost = 0;
    if (s->super.on_resubscribed != NULL)
        s->super.on_resubscribed(s->super.on_message_data);
}

/* The pub/sub connection: once it is back and every channel is subscribed again, the session layer hears that what was
 * published meanwhile never came (rooms_history.c fetches it from the rooms' history). */
static void on_sub_state(void *data, int up)
{
    ag__redis_store_t *s = data;
    if (!up)
        s->sub_lost = 1;
    else if (s->sub_lost)
        ag_redis_when_subscribed(s->sub, on_resubscribed, s);
}

/* --- lifecycle --- */

static void destroy(ag_store_t *store)
{
    ag__redis_store_t *s = (void *)store;
    if (h2o_timeout_is_linked(&s->beat_entry))
        h2o_timeout_unlink(&s->beat_entry);
    h2o_timeout_dispose(s->loop, &s->beat);
    ag_redis_destroy(s->sub);
    ag_redis_destroy(s->cmd);
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&s->local_members, &it, &k, &v);)
        free(v);
    ag_map_dispose(&s->local_members);
    ag_map_dispose(&s->local_rooms);
    ag_map_dispose(&s->subs);
    free(s->prefix);
    free(s->rooms_key);
    free(s->members_prefix);
    free(s->ah_channel);
    free(s->ah_token);
    free(s);
}

static int is_up(ag_store_t *store)
{
    return ag_redis_is_up(((ag__redis_store_t *)store)->cmd);
}

static const ag_store_stats_t *stats(ag_store_t *store)
{
    return ag_redis_stats(((ag__redis_store_t *)store)->cmd);
}

#define REDIS_OPS                                                                                                                  \
    .name = "redis", .is_up = is_up, .stats = stats, .destroy = destroy, .room_add = room_add, .room_del = room_del,               \
    .room_exists = room_exists, .room_list = room_list, .member_add = member_add, .member_del = member_del,                        \
    .member_forget = member_forget, .members = members, .cache_save = cache_save, .cache_load = cache_load,                        \
    .cache_del = cache_del, .cache_size = cache_size, .publish = publish, .subscribe = subscribe, .unsubscribe = unsubscribe,      \
    .subscribed = subscribed, .node_register = ag__redis_node_register, .node_lookup = ag__redis_node_lookup,                      \
    .node_leave = ag__redis_node_leave, .node_list = ag__redis_node_list

static const ag_store_ops_t ops = {REDIS_OPS,
                                   .history_publish = ag__redis_history_publish,
                                   .history_since = ag__redis_history_since,
                                   .rconn_put = ag__redis_rconn_put,
                                   .rconn_touch = ag__redis_rconn_touch,
                                   .rconn_del = ag__redis_rconn_del,
                                   .rconn_claim = ag__redis_rconn_claim};
/* Compat mode keeps no history: chat goes out as actionhero's envelope, which has no room for an offset, so connections
 * there are not resumable (the verb answers "resume is off"). */
static const ag_store_ops_t ops_compat = {REDIS_OPS};

ag_store_t *ag_store_redis_create(h2o_evloop_t *loop, const ag_store_redis_options_t *o, char *errbuf, size_t errlen)
{
    ag_redis_url_t url;
    if (ag_redis_url_parse(o->url, &url) != 0) {
        snprintf(errbuf, errlen, "redis.url: not redis://[:password@]host[:port][/db]: %s", o->url);
        return NULL;
    }
    ag__redis_store_t *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->prefix = strdup(o->prefix != NULL ? o->prefix : "actiongate:")) == NULL) {
        free(s);
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    int ah = o->actionhero_channel != NULL && o->actionhero_channel[0] != '\0';
    s->super.ops = ah ? &ops_compat : &ops;
    s->loop = loop;
    /* actionhero's key names are fixed in its chatRoom initializer */
    s->rooms_key = ah ? strdup("actionhero:chatRoom:rooms") : ag__redis_pkey(s, "rooms", NULL);
    s->members_prefix = ah ? strdup("actionhero:chatRoom:members:") : ag__redis_pkey(s, "members:", NULL);
    if (ah) {
        s->ah_channel = strdup(o->actionhero_channel);
        s->ah_token = strdup(o->actionhero_token != NULL ? o->actionhero_token : "");
    }
    if (s->rooms_key == NULL || s->members_prefix == NULL || (ah && (s->ah_channel == NULL || s->ah_token == NULL))) {
        free(s->rooms_key);
        free(s->members_prefix);
        free(s->ah_channel);
        free(s->ah_token);
        free(s->prefix);
        free(s);
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->node_id, sizeof(s->node_id), "%s", o->node_id);
    s->node_ttl_ms = o->node_ttl_ms != 0 ? o->node_ttl_ms : 5000;
    ag_map_init(&s->local_members);
    ag_map_init(&s->local_rooms);
    ag_map_init(&s->subs);
    ag_redis_options_t ro = {.loop = loop,
                             .url = url,
                             .connect_timeout_ms = o->connect_timeout_ms,
                             .command_timeout_ms = o->command_timeout_ms,
                             .on_state = on_cmd_state,
                             .data = s};
    s->cmd = ag_redis_create(&ro);
    ro.on_state = on_sub_state;
    ro.on_message = on_message;
    s->sub = ag_redis_create(&ro);
    char *ctl = ag__redis_pkey(s, "_ctl", NULL);
    if (s->cmd == NULL || s->sub == NULL || ctl == NULL || ag_redis_subscribe(s->sub, ctl) != 0 ||
        (s->ah_channel != NULL && ag_redis_subscribe(s->sub, s->ah_channel) != 0)) {
        free(ctl);
        destroy(&s->super);
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    free(ctl);
    uint64_t period = s->node_ttl_ms / 3;
    h2o_timeout_init(loop, &s->beat, period < 100 ? 100 : period);
    s->beat_entry.cb = on_beat_timer;
    h2o_timeout_link(loop, &s->beat, &s->beat_entry);
    return &s->super;
}

/* --- for the unit tests --- */

ag_redis_t *ag__store_redis_cmd(ag_store_t *store)
{
    return store != NULL && (store->ops == &ops || store->ops == &ops_compat) ? ((ag__redis_store_t *)store)->cmd : NULL;
}
