/*
 * The Redis store's node registry: the heartbeat key every node refreshes, the route other nodes forward to (store.h
 * node_register / node_lookup), the reaper that removes a dead node's members, the resync that writes this node's rooms
 * and members again after Redis lost them, and the clean leave.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <hiredis/hiredis.h>
#include "redis_store.h"

/* the route is written only once the node has an address; it expires with the heartbeat */
static const char LUA_BEAT[] = "local existed = redis.call('EXISTS', KEYS[1]) "
                               "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
                               "redis.call('SADD', KEYS[2], ARGV[3]) "
                               "if ARGV[4] ~= '' then redis.call('DEL', KEYS[3]) "
                               "redis.call('HSET', KEYS[3], 'address', ARGV[4], 'token', ARGV[5]) "
                               "redis.call('PEXPIRE', KEYS[3], ARGV[2]) end return existed";

/* A member is removed only while its details still name the dead node: a connection another node took over (resume)
 * is a member again under the same id, with its new node, and stays. */
static const char LUA_REAP[] = "local dead = {} for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
                               "if redis.call('EXISTS', ARGV[1] .. 'node:' .. id) == 0 then "
                               "local idx = ARGV[1] .. 'nodemembers:' .. id "
                               "for _, e in ipairs(redis.call('SMEMBERS', idx)) do "
                               "local sp = string.find(e, ' ', 1, true) if sp then "
                               "local mk = ARGV[2] .. string.sub(e, sp + 1) local cid = string.sub(e, 1, sp - 1) "
                               "local d = redis.call('HGET', mk, cid) "
                               "if d and (string.find(d, '\"node\":\"' .. id .. '\"', 1, true) or "
                               "string.find(d, '\"host\":\"' .. id .. '\"', 1, true)) then redis.call('HDEL', mk, cid) end "
                               "end end redis.call('DEL', idx) redis.call('SREM', KEYS[1], id) dead[#dead + 1] = id end end "
                               "return dead";

/* As the reaper: a member whose details name another node now (handed over or taken over) is that node's, and stays. */
static const char LUA_LEAVE[] = "for _, e in ipairs(redis.call('SMEMBERS', KEYS[3])) do "
                                "local sp = string.find(e, ' ', 1, true) if sp then "
                                "local mk = ARGV[1] .. string.sub(e, sp + 1) local cid = string.sub(e, 1, sp - 1) "
                                "local d = redis.call('HGET', mk, cid) "
                                "if d and (string.find(d, '\"node\":\"' .. ARGV[2] .. '\"', 1, true) or "
                                "string.find(d, '\"host\":\"' .. ARGV[2] .. '\"', 1, true)) then redis.call('HDEL', mk, cid) end "
                                "end end redis.call('DEL', KEYS[3], KEYS[1], KEYS[4]) redis.call('SREM', KEYS[2], ARGV[2]) "
                                "return 1";

/* the live nodes: registered, heartbeat key present (a dead one stays in the set until a reaper runs) */
static const char LUA_LIST[] = "local out = {} for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
                               "local v = redis.call('GET', ARGV[1] .. 'node:' .. id) "
                               "if v then out[#out + 1] = id out[#out + 1] = v end end return out";

static const char LUA_RESYNC[] = "redis.call('SADD', KEYS[1], ARGV[1]) redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) "
                                 "redis.call('SADD', KEYS[3], ARGV[2] .. ' ' .. ARGV[1]) return 1";

/* --- heartbeat, reaper, resync --- */

static void resync(ag__redis_store_t *s)
{
    const char *k;
    void *v;
    char *rooms = ag__redis_rooms_key(s), *idx = ag__redis_pkey(s, "nodemembers:", s->node_id);
    if (rooms == NULL || idx == NULL)
        goto out;
    for (size_t it = 0; ag_map_next(&s->local_rooms, &it, &k, &v);)
        ag_redis_commandv(s->cmd, NULL, NULL, "SADD", rooms, k, NULL);
    for (size_t it = 0; ag_map_next(&s->local_members, &it, &k, &v);) {
        const char *sp = strchr(k, ' ');
        char conn[128];
        if (sp == NULL || (size_t)(sp - k) >= sizeof(conn))
            continue;
        memcpy(conn, k, (size_t)(sp - k));
        conn[sp - k] = '\0';
        char *mk = ag__redis_members_key(s, sp + 1);
        if (mk == NULL)
            continue;
        const char *keys[] = {rooms, mk, idx}, *args[] = {sp + 1, conn, v};
        ag__redis_eval(s, NULL, NULL, LUA_RESYNC, 3, keys, 3, args);
        free(mk);
    }
    ag_log(AG_LOG_INFO, "redis", NULL, "node %s registered (%zu rooms, %zu members written)", s->node_id, s->local_rooms.size,
           s->local_members.size);
out:
    free(rooms);
    free(idx);
}

static void on_reaped(void *data, const char *err, redisReply *reply)
{
    ag__redis_store_t *s = data;
    if (err != NULL || reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING)
            continue;
        ag_log(AG_LOG_WARN, "redis", NULL, "node %s missed its heartbeat: its members left their rooms", reply->element[i]->str);
        ag__redis_node_event(s, "_dead", reply->element[i]->str, reply->element[i]->len);
    }
}

static void on_beat(void *data, const char *err, redisReply *reply)
{
    ag__redis_store_t *s = data;
    if (err != NULL)
        return;
    /* our key was missing: Redis restarted empty, or the others took us for dead and removed our members */
    if (ag__redis_reply_int(reply) == 0)
        resync(s);
    char *nodes = ag__redis_pkey(s, "nodes", NULL);
    if (nodes != NULL) {
        const char *keys[] = {nodes}, *args[] = {s->prefix, s->members_prefix};
        ag__redis_eval(s, on_reaped, s, LUA_REAP, 1, keys, 2, args);
    }
    free(nodes);
}

void ag__redis_store_beat(ag__redis_store_t *s)
{
    if (!ag_redis_is_up(s->cmd))
        return;
    char *k1 = ag__redis_pkey(s, "node:", s->node_id), *k2 = ag__redis_pkey(s, "nodes", NULL),
         *k3 = ag__redis_pkey(s, "route:", s->tag);
    char ttl[24], info[sizeof(s->tag) + sizeof(s->address) + 1];
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)s->node_ttl_ms);
    snprintf(info, sizeof(info), "%s%s%s", s->tag, s->tag[0] != '\0' && s->address[0] != '\0' ? " " : "", s->address);
    /* no route before both the tag and the address are known */
    const char *address = s->tag[0] != '\0' ? s->address : "";
    if (k1 != NULL && k2 != NULL && k3 != NULL) {
        const char *keys[] = {k1, k2, k3}, *args[] = {info, ttl, s->node_id, address, s->token};
        ag__redis_eval(s, on_beat, s, LUA_BEAT, 3, keys, 5, args);
    }
    free(k1);
    free(k2);
    free(k3);
}

/* --- the store operations of the registry --- */

int ag__redis_node_register(ag_store_t *store, const ag_store_node_t *self)
{
    ag__redis_store_t *s = (void *)store;
    if (self->tag == NULL || self->address == NULL || self->token == NULL || strlen(self->tag) >= sizeof(s->tag) ||
        strlen(self->address) >= sizeof(s->address) || strlen(self->token) >= sizeof(s->token))
        return AG_EINVAL;
    snprintf(s->tag, sizeof(s->tag), "%s", self->tag);
    snprintf(s->address, sizeof(s->address), "%s", self->address);
    snprintf(s->token, sizeof(s->token), "%s", self->token);
    if (s->address[0] != '\0')
        ag__redis_store_beat(s);
    return 0;
}

typedef struct st_lookup_t {
    ag_store_cb cb;
    void *data;
} lookup_t;

static int is_string(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_STRING && r->len > 0;
}

static void on_lookup(void *data, const char *err, redisReply *reply)
{
    lookup_t *lk = data;
    json_t *result = NULL;
    if (err == NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && is_string(reply->element[0]) &&
        is_string(reply->element[1]))
        result = json_pack("{s:s%,s:s%}", "address", reply->element[0]->str, reply->element[0]->len, "token",
                           reply->element[1]->str, reply->element[1]->len);
    if (err == NULL && result == NULL)
        result = json_null();
    if (lk->cb != NULL)
        lk->cb(lk->data, err, err != NULL ? NULL : result);
    json_decref(result);
    free(lk);
}

void ag__redis_node_lookup(ag_store_t *store, const char *tag, ag_store_cb cb, void *data)
{
    ag__redis_store_t *s = (void *)store;
    lookup_t *lk = malloc(sizeof(*lk));
    char *key = ag__redis_pkey(s, "route:", tag);
    if (lk == NULL || key == NULL) {
        free(lk);
        free(key);
        if (cb != NULL)
            cb(data, "out of memory", NULL);
        return;
    }
    lk->cb = cb;
    lk->data = data;
    ag_redis_commandv(s->cmd, on_lookup, lk, "HMGET", key, "address", "token", NULL);
    free(key);
}

/* The heartbeat's value is "<sid tag> <host:port>", or either part alone while the other is unknown: the address is
 * the part with a colon (a tag has none). */
static json_t *node_entry(const redisReply *id, const redisReply *info)
{
    const char *v = info->str, *end = info->str + info->len, *sp = memchr(v, ' ', info->len);
    const char *addr = sp != NULL ? sp + 1 : memchr(v, ':', info->len) != NULL ? v : end;
    return json_pack("{s:s%,s:s%}", "id", id->str, id->len, "address", addr, (size_t)(end - addr));
}

static void on_list(void *data, const char *err, redisReply *reply)
{
    lookup_t *lk = data;
    json_t *result = NULL;
    if (err == NULL && reply->type == REDIS_REPLY_ARRAY) {
        result = json_array();
        for (size_t i = 0; result != NULL && i + 1 < reply->elements; i += 2)
            if (is_string(reply->element[i]) && reply->element[i + 1]->type == REDIS_REPLY_STRING)
                json_array_append_new(result, node_entry(reply->element[i], reply->element[i + 1]));
    } else if (err == NULL) {
        err = "unexpected reply";
    }
    if (err == NULL && result == NULL)
        err = "out of memory";
    if (lk->cb != NULL)
        lk->cb(lk->data, err, err != NULL ? NULL : result);
    json_decref(result);
    free(lk);
}

void ag__redis_node_list(ag_store_t *store, ag_store_cb cb, void *data)
{
    ag__redis_store_t *s = (void *)store;
    lookup_t *lk = malloc(sizeof(*lk));
    char *nodes = ag__redis_pkey(s, "nodes", NULL);
    if (lk == NULL || nodes == NULL) {
        free(lk);
        free(nodes);
        if (cb != NULL)
            cb(data, "out of memory", NULL);
        return;
    }
    lk->cb = cb;
    lk->data = data;
    const char *keys[] = {nodes}, *args[] = {s->prefix};
    ag__redis_eval(s, on_list, lk, LUA_LIST, 1, keys, 1, args);
    free(nodes);
}

/* Removes this node's members, heartbeat and route over a short blocking connection. */
static void store_leave(ag__redis_store_t *s);

void ag__redis_node_leave(ag_store_t *store)
{
    ag__redis_store_t *s = (void *)store;
    store_leave(s);
    /* gone for good: a later heartbeat must not publish the node again */
    if (h2o_timeout_is_linked(&s->beat_entry))
        h2o_timeout_unlink(&s->beat_entry);
    s->tag[0] = '\0';
    s->address[0] = '\0';
}

static void store_leave(ag__redis_store_t *s)
{
    if (!ag_redis_is_up(s->cmd))
        return;
    const ag_redis_url_t *u = ag__redis_url(s->cmd);
    struct timeval tv = {0, 500000};
    redisContext *rc = redisConnectWithTimeout(u->host, u->port, tv);
    if (rc == NULL || rc->err != 0 || redisSetTimeout(rc, tv) != REDIS_OK)
        goto out;
    redisReply *r;
    if (u->password[0] != '\0' && (r = redisCommand(rc, "AUTH %s", u->password)) != NULL)
        freeReplyObject(r);
    if (u->db != 0 && (r = redisCommand(rc, "SELECT %d", u->db)) != NULL)
        freeReplyObject(r);
    char *k1 = ag__redis_pkey(s, "node:", s->node_id), *k2 = ag__redis_pkey(s, "nodes", NULL),
         *k3 = ag__redis_pkey(s, "nodemembers:", s->node_id), *k4 = ag__redis_pkey(s, "route:", s->tag);
    /* without a tag k4 is "<prefix>route:", which no node writes */
    if (k1 != NULL && k2 != NULL && k3 != NULL && k4 != NULL &&
        (r = redisCommand(rc, "EVAL %s 4 %s %s %s %s %s %s", LUA_LEAVE, k1, k2, k3, k4, s->members_prefix, s->node_id)) != NULL)
        freeReplyObject(r);
    free(k1);
    free(k2);
    free(k3);
    free(k4);
out:
    if (rc != NULL)
        redisFree(rc);
}
