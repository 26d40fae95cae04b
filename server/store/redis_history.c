/*
 * The Redis store's room history (store.h history_publish / history_since), for resume.
 *
 * Keys (P = redis.prefix), per room with history:
 *   P hist:<room>       HASH  epoch (16 hex digits), last (newest offset), floor (newest offset no longer kept), bytes
 *                             (the kept lines' payload bytes). Lives as long as the room (room_del removes it): an
 *                             offset a client holds must keep meaning what it meant while the room lasts, even when
 *                             the room stayed quiet for longer than the window.
 *   P histlines:<room>  LIST  the kept lines "<offset>:<ms>:<payload>", oldest first, offsets floor+1 .. last without
 *                             gaps; PEXPIRE history_ms after each line, so the lines of a quiet room cost nothing once
 *                             the window is over (an empty or expired list means floor = last).
 *
 * Each operation is one script run, so a publish is one round trip whatever the room's size, and a line's offset is its
 * place in the channel's publish order on every node (the script INCRs, appends and PUBLISHes at once). The epoch is
 * drawn by the node and written by the script only when the hash is missing: Redis that lost its data (a restart
 * without persistence, FLUSHALL) gets a new epoch with the next touch, so offsets from before are refused, never
 * replayed wrong. Scripts go as EVALSHA: they are loaded (SCRIPT LOAD) first thing on every connection to Redis, so no
 * command overtakes another; a NOSCRIPT answer all the same (someone ran SCRIPT FLUSH) sends the command again once as
 * EVAL, which loads it (that command then comes after those sent meanwhile).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>
#include <hiredis/hiredis.h>
#include "redis_store.h"

/* The common part: load (or create) the room's state, expire lines older than the window, drop the oldest. */
#define LUA_HIST_LIB                                                                                                               \
    "local function load(mk, lk, epoch) "                                                                                          \
    "local m = redis.call('HMGET', mk, 'epoch', 'last', 'floor', 'bytes') "                                                        \
    "local h = {mk = mk, lk = lk} "                                                                                                \
    "if not m[1] then redis.call('DEL', lk) h.epoch = epoch h.last = 0 h.floor = 0 h.bytes = 0 "                                   \
    "else h.epoch = m[1] h.last = tonumber(m[2]) h.floor = tonumber(m[3]) h.bytes = tonumber(m[4]) end "                           \
    "h.n = redis.call('LLEN', lk) if h.n == 0 then h.floor = h.last h.bytes = 0 end return h end "                                 \
    "local function drop(h) local l = redis.call('LPOP', h.lk) if not l then h.n = 0 return end "                                  \
    "local a = string.find(l, ':', 1, true) local b = string.find(l, ':', a + 1, true) "                                           \
    "h.floor = tonumber(string.sub(l, 1, a - 1)) h.bytes = h.bytes - (#l - b) h.n = h.n - 1 "                                      \
    "if h.n == 0 then h.floor = h.last h.bytes = 0 end end "                                                                       \
    "local function expire(h, now, ms) while ms > 0 and h.n > 0 do local l = redis.call('LINDEX', h.lk, 0) "                       \
    "local a = string.find(l, ':', 1, true) local b = string.find(l, ':', a + 1, true) "                                           \
    "if tonumber(string.sub(l, a + 1, b - 1)) + ms >= now then return end drop(h) end end "                                        \
    "local function save(h) redis.call('HSET', h.mk, 'epoch', h.epoch, 'last', h.last, 'floor', h.floor, 'bytes', h.bytes) end "

/* KEYS rooms, hist, histlines; ARGV room, channel, payload, now, lines, bytes, ms, epoch if new.
 * {epoch, offset}, or false when the room keeps no history (no such room, or a line over the byte bound). */
static const char LUA_HIST_PUBLISH[] =
    LUA_HIST_LIB "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then redis.call('PUBLISH', ARGV[2], ARGV[3]) return false end "
                 "local h = load(KEYS[2], KEYS[3], ARGV[8]) local now = tonumber(ARGV[4]) local len = #ARGV[3] "
                 "h.last = h.last + 1 "
                 "if len > tonumber(ARGV[6]) then redis.call('DEL', KEYS[3]) h.n = 0 h.floor = h.last h.bytes = 0 save(h) "
                 "redis.call('PUBLISH', ARGV[2], ARGV[3]) return false end "
                 "expire(h, now, tonumber(ARGV[7])) "
                 "while h.n > 0 and (h.n >= tonumber(ARGV[5]) or h.bytes + len > tonumber(ARGV[6])) do drop(h) end "
                 "redis.call('RPUSH', KEYS[3], h.last .. ':' .. ARGV[4] .. ':' .. ARGV[3]) h.n = h.n + 1 h.bytes = h.bytes + len "
                 "if tonumber(ARGV[7]) > 0 then redis.call('PEXPIRE', KEYS[3], ARGV[7]) end save(h) "
                 "redis.call('PUBLISH', ARGV[2], '#' .. h.last .. ':' .. ARGV[3]) return {h.epoch, h.last}";

/* KEYS rooms, hist, histlines; ARGV room, after ("" for the tail), now, ms, epoch if new.
 * {epoch, last, 1 (gone) | 0, lines after `after`...}, or false when there is no such room. */
static const char LUA_HIST_SINCE[] =
    LUA_HIST_LIB "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return false end "
                 "local h = load(KEYS[2], KEYS[3], ARGV[5]) expire(h, tonumber(ARGV[3]), tonumber(ARGV[4])) save(h) "
                 "if ARGV[2] == '' then return {h.epoch, h.last, 0} end local after = tonumber(ARGV[2]) "
                 "if after < h.floor or after > h.last then return {h.epoch, h.last, 1} end "
                 "local out = {h.epoch, h.last, 0} "
                 "for _, l in ipairs(redis.call('LRANGE', KEYS[3], after - h.floor, -1)) do out[#out + 1] = l end return out";

/* --- EVALSHA, with EVAL when Redis does not have the script --- */

static ag__redis_script_t publish_script = {LUA_HIST_PUBLISH, ""}, since_script = {LUA_HIST_SINCE, ""};

#define EVAL_ARGS_MAX 16

typedef struct {
    ag__redis_store_t *s;
    ag_redis_reply_cb cb;
    void *data;
    const ag__redis_script_t *script;
    int argc;
    const char *argv[EVAL_ARGS_MAX];
    size_t lens[EVAL_ARGS_MAX];
    char *copy; /* argv[3...] point into it */
} eval_t;

static const char *sha_of(ag__redis_script_t *sc)
{
    /* the digest is the script's, the same in every thread: writing it twice writes the same bytes, read once written */
    if (__atomic_load_n(&sc->sha[0], __ATOMIC_ACQUIRE) == '\0') {
        unsigned char md[SHA_DIGEST_LENGTH];
        char hex[41];
        SHA1((const unsigned char *)sc->src, strlen(sc->src), md);
        for (size_t i = 0; i < sizeof(md); i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        for (size_t i = 1; i < 41; i++)
            __atomic_store_n(&sc->sha[i], hex[i], __ATOMIC_RELAXED);
        __atomic_store_n(&sc->sha[0], hex[0], __ATOMIC_RELEASE);
    }
    return sc->sha;
}

static void on_eval(void *_e, const char *err, redisReply *reply)
{
    eval_t *e = _e;
    if (err != NULL && strncmp(err, "NOSCRIPT", 8) == 0 && strcmp(e->argv[0], "EVALSHA") == 0) {
        e->argv[0] = "EVAL";
        e->lens[0] = 4;
        e->argv[1] = e->script->src;
        e->lens[1] = strlen(e->script->src);
        ag_redis_command(e->s->cmd, on_eval, e, e->argc, e->argv, e->lens);
        return;
    }
    e->cb(e->data, err, reply);
    free(e->copy);
    free(e);
}

void ag__redis_evalsha(ag__redis_store_t *s, ag__redis_script_t *script, ag_redis_reply_cb cb, void *data, int nkeys, int nall,
                       const char **all, const size_t *lens)
{
    eval_t *e = calloc(1, sizeof(*e));
    size_t total = 0;
    for (int i = 0; i < nall; i++)
        total += lens[i];
    if (e == NULL || nall + 3 > EVAL_ARGS_MAX || (e->copy = malloc(total + 1)) == NULL) {
        free(e);
        cb(data, "out of memory", NULL);
        return;
    }
    e->s = s;
    e->cb = cb;
    e->data = data;
    e->script = script;
    e->argv[0] = "EVALSHA";
    e->argv[1] = sha_of(script);
    static const char *nk[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8"};
    e->argv[2] = nk[nkeys];
    char *p = e->copy;
    for (int i = 0; i < nall; i++) {
        memcpy(p, all[i], lens[i]);
        e->argv[3 + i] = p;
        e->lens[3 + i] = lens[i];
        p += lens[i];
    }
    e->argc = 3 + nall;
    for (int i = 0; i < 3; i++)
        e->lens[i] = strlen(e->argv[i]);
    ag_redis_command(s->cmd, on_eval, e, e->argc, e->argv, e->lens);
}

void ag__redis_script_load(ag__redis_store_t *s, ag__redis_script_t *script)
{
    sha_of(script);
    ag_redis_commandv(s->cmd, NULL, NULL, "SCRIPT", "LOAD", script->src, NULL);
}

void ag__redis_history_up(ag__redis_store_t *s)
{
    ag__redis_script_load(s, &publish_script);
    ag__redis_script_load(s, &since_script);
}

/* --- the operations --- */

typedef struct {
    ag__redis_store_t *s;
    ag_store_cb cb;
    void *data;
} hreq_t;

static void answer(ag_store_cb cb, void *data, const char *err, json_t *result)
{
    if (cb != NULL)
        cb(data, err, err != NULL ? NULL : result);
    json_decref(result);
}

/* The room's two keys, heap-allocated (NULL on ENOMEM). */
static int hist_keys(ag__redis_store_t *s, const char *room, char **rooms, char **meta, char **lines)
{
    *rooms = ag__redis_rooms_key(s);
    *meta = ag__redis_pkey(s, "hist:", room);
    *lines = ag__redis_pkey(s, "histlines:", room);
    if (*rooms != NULL && *meta != NULL && *lines != NULL)
        return 0;
    free(*rooms);
    free(*meta);
    free(*lines);
    return -1;
}

/* The epoch offered with a script run, taken only when the room's history is missing. An epoch must only differ from
 * every other life of the same room (it is no secret: members see it), so one random start per store and a counter
 * serve: no two offers of a node repeat, and two nodes' ranges meet with a chance of about 1e-10 after a billion
 * offers each. */
static void new_epoch(ag__redis_store_t *s, char out[17])
{
    if (s->epoch_next == 0)
        ag_random_bytes(&s->epoch_next, sizeof(s->epoch_next));
    uint64_t e = s->epoch_next++;
    if (e == 0) /* 0 is "no epoch known" to the rooms layer */
        e = s->epoch_next++;
    snprintf(out, 17, "%016llx", (unsigned long long)e);
}

static int is_str(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_STRING;
}

static void on_published(void *_r, const char *err, redisReply *reply)
{
    hreq_t *r = _r;
    json_t *result = json_null();
    if (err == NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && is_str(reply->element[0]) &&
        reply->element[1]->type == REDIS_REPLY_INTEGER) {
        json_decref(result);
        result = json_pack("{s:I,s:s%}", "offset", (json_int_t)reply->element[1]->integer, "epoch", reply->element[0]->str,
                           reply->element[0]->len);
    }
    answer(r->cb, r->data, err, result);
    free(r);
}

void ag__redis_history_publish(ag_store_t *store, const char *room, const char *channel, const char *payload, size_t len,
                               ag_store_cb cb, void *data)
{
    ag__redis_store_t *s = (void *)store;
    if (!ag_redis_is_up(s->cmd)) {
        /* Redis is away: this node's own members still hear the line (publish does that), without an offset */
        store->ops->publish(store, channel, payload, len, NULL, NULL);
        answer(cb, data, "redis unavailable", NULL);
        return;
    }
    hreq_t *r = calloc(1, sizeof(*r));
    char *rooms, *meta, *lines, *ch = ag__redis_pkey(s, channel, NULL);
    if (r == NULL || ch == NULL || hist_keys(s, room, &rooms, &meta, &lines) != 0) {
        free(r);
        free(ch);
        answer(cb, data, "out of memory", NULL);
        return;
    }
    r->s = s;
    r->cb = cb;
    r->data = data;
    char now[24], nlines[24], nbytes[24], ms[24], epoch[17];
    snprintf(now, sizeof(now), "%llu", (unsigned long long)ag_now_ms());
    snprintf(nlines, sizeof(nlines), "%zu", store->history_lines);
    snprintf(nbytes, sizeof(nbytes), "%zu", store->history_bytes);
    snprintf(ms, sizeof(ms), "%llu", (unsigned long long)store->history_ms);
    new_epoch(s, epoch);
    const char *all[] = {rooms, meta, lines, room, ch, payload, now, nlines, nbytes, ms, epoch};
    size_t lens[sizeof(all) / sizeof(all[0])];
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        lens[i] = all[i] == payload ? len : strlen(all[i]);
    ag__redis_evalsha(s, &publish_script, on_published, r, 3, (int)(sizeof(all) / sizeof(all[0])), all, lens);
    free(rooms);
    free(meta);
    free(lines);
    free(ch);
}

static void on_since(void *_r, const char *err, redisReply *reply)
{
    hreq_t *r = _r;
    json_t *result = NULL;
    if (err == NULL) {
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 || !is_str(reply->element[0]) ||
            reply->element[1]->type != REDIS_REPLY_INTEGER || reply->element[2]->type != REDIS_REPLY_INTEGER ||
            reply->element[2]->integer != 0)
            err = AG_STORE_HISTORY_GONE; /* no such room (false), or a line after `after` is no longer kept */
    }
    if (err == NULL) {
        json_t *items = json_array();
        for (size_t i = 3; i < reply->elements && items != NULL; i++) {
            const redisReply *l = reply->element[i];
            const char *a = is_str(l) ? memchr(l->str, ':', l->len) : NULL;
            const char *b = a != NULL ? memchr(a + 1, ':', l->len - (size_t)(a + 1 - l->str)) : NULL;
            if (b == NULL)
                continue;
            size_t plen = l->len - (size_t)(b + 1 - l->str);
            json_array_append_new(items, json_pack("[I,s%]", (json_int_t)strtoull(l->str, NULL, 10), b + 1, plen));
        }
        result = json_pack("{s:s%,s:I,s:o*}", "epoch", reply->element[0]->str, reply->element[0]->len, "last",
                           (json_int_t)reply->element[1]->integer, "items", items);
        if (result == NULL)
            err = "out of memory";
    }
    answer(r->cb, r->data, err, result);
    free(r);
}

void ag__redis_history_since(ag_store_t *store, const char *room, uint64_t after, ag_store_cb cb, void *data)
{
    ag__redis_store_t *s = (void *)store;
    hreq_t *r = calloc(1, sizeof(*r));
    char *rooms, *meta, *lines;
    if (r == NULL || hist_keys(s, room, &rooms, &meta, &lines) != 0) {
        free(r);
        answer(cb, data, "out of memory", NULL);
        return;
    }
    r->s = s;
    r->cb = cb;
    r->data = data;
    char now[24], from[24] = "", ms[24], epoch[17];
    snprintf(now, sizeof(now), "%llu", (unsigned long long)ag_now_ms());
    if (after != AG_STORE_HISTORY_TAIL)
        snprintf(from, sizeof(from), "%llu", (unsigned long long)after);
    snprintf(ms, sizeof(ms), "%llu", (unsigned long long)store->history_ms);
    new_epoch(s, epoch);
    const char *all[] = {rooms, meta, lines, room, from, now, ms, epoch};
    size_t lens[sizeof(all) / sizeof(all[0])];
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        lens[i] = strlen(all[i]);
    ag__redis_evalsha(s, &since_script, on_since, r, 3, (int)(sizeof(all) / sizeof(all[0])), all, lens);
    free(rooms);
    free(meta);
    free(lines);
}
