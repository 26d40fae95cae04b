/*
 * The Redis store's node registry: the heartbeat key every node refreshes, the reaper that removes a dead node's
 * members, the resync that writes this node's rooms and members again after Redis lost them, and the clean leave.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <hiredis/hiredis.h>
#include "redis_store.h"

static const char LUA_BEAT[] = "local existed = redis.call('EXISTS', KEYS[1]) "
                               "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
                               "redis.call('SADD', KEYS[2], ARGV[3]) return existed";

static const char LUA_REAP[] = "local dead = {} for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
                               "if redis.call('EXISTS', ARGV[1] .. 'node:' .. id) == 0 then "
                               "local idx = ARGV[1] .. 'nodemembers:' .. id "
                               "for _, e in ipairs(redis.call('SMEMBERS', idx)) do "
                               "local sp = string.find(e, ' ', 1, true) if sp then "
                               "redis.call('HDEL', ARGV[1] .. 'members:' .. string.sub(e, sp + 1), string.sub(e, 1, sp - 1)) "
                               "end end redis.call('DEL', idx) redis.call('SREM', KEYS[1], id) dead[#dead + 1] = id end end "
                               "return dead";

static const char LUA_LEAVE[] = "for _, e in ipairs(redis.call('SMEMBERS', KEYS[3])) do "
                                "local sp = string.find(e, ' ', 1, true) if sp then "
                                "redis.call('HDEL', ARGV[1] .. 'members:' .. string.sub(e, sp + 1), string.sub(e, 1, sp - 1)) "
                                "end end redis.call('DEL', KEYS[3], KEYS[1]) redis.call('SREM', KEYS[2], ARGV[2]) "
                                "if ARGV[3] ~= '' then redis.call('DEL', ARGV[3]) end return 1";

static const char LUA_RESYNC[] = "redis.call('SADD', KEYS[1], ARGV[1]) redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) "
                                 "redis.call('SADD', KEYS[3], ARGV[2] .. ' ' .. ARGV[1]) return 1";

/* --- heartbeat, reaper, resync --- */

static void resync(ag__redis_store_t *s)
{
    const char *k;
    void *v;
    char *rooms = ag__redis_pkey(s, "rooms", NULL), *idx = ag__redis_pkey(s, "nodemembers:", s->node_id);
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
        char *mk = ag__redis_pkey(s, "members:", sp + 1);
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
        if (s->hook != NULL)
            s->hook(s->hook_data, "_dead", reply->element[i]->str, reply->element[i]->len);
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
        const char *keys[] = {nodes}, *args[] = {s->prefix};
        ag__redis_eval(s, on_reaped, s, LUA_REAP, 1, keys, 1, args);
    }
    free(nodes);
}

void ag__redis_store_beat(ag__redis_store_t *s)
{
    if (!ag_redis_is_up(s->cmd))
        return;
    char *k1 = ag__redis_pkey(s, "node:", s->node_id), *k2 = ag__redis_pkey(s, "nodes", NULL);
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)s->node_ttl_ms);
    if (k1 != NULL && k2 != NULL) {
        const char *keys[] = {k1, k2}, *args[] = {s->address, ttl, s->node_id};
        ag__redis_eval(s, on_beat, s, LUA_BEAT, 2, keys, 3, args);
    }
    free(k1);
    free(k2);
}

void ag__redis_store_leave(ag__redis_store_t *s, const char *extra_key)
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
         *k3 = ag__redis_pkey(s, "nodemembers:", s->node_id);
    if (k1 != NULL && k2 != NULL && k3 != NULL &&
        (r = redisCommand(rc, "EVAL %s 3 %s %s %s %s %s %s", LUA_LEAVE, k1, k2, k3, s->prefix, s->node_id,
                          extra_key != NULL ? extra_key : "")) != NULL)
        freeReplyObject(r);
    free(k1);
    free(k2);
    free(k3);
out:
    if (rc != NULL)
        redisFree(rc);
}
