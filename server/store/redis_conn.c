/*
 * The Redis store's records of resumable connections (store.h rconn_*), so that a connection whose node died can be
 * taken over by another node (README "Resume").
 *
 * Key (P = redis.prefix): P rconn:<conn id>, a HASH
 *   th            the SHA-256 of the connection's token, hex (never the token: a reader of Redis cannot resume it)
 *   node, tag     the node that owns it (only the owner writes it) and that node's sid tag (its route)
 *   fp            the connection's fingerprint
 *   who           who the connection is: JSON {"user", "claims", "data"} (a token's verified claims, the connect hook's
 *                 data), written with th; the node that takes it over gives the connection that identity again
 *   seq, floor    the outbox's last number and the newest number no longer kept
 *   f:<n>         numbered frame n as sent: "<length of its messageId>:<messageId><frame>", "-1:<frame>" without one
 *   r:<room>      "<epoch>:<offset>": the room's history stood there when the connection joined
 *   cs            what the connection's transport keeps of its own (socket.io: how a request emitted again is matched),
 *                 written with each numbered answer
 * It expires general.resumeWindow after its last write or touch: the owner touches its live connections' records in
 * batches (server/conn.c), so a record outlives a dead owner by the window, and no longer.
 *
 * Every write is one script run (a numbered frame: the frame, seq, floor, the fields that fell out of the outbox, and
 * the expiry in one command), sent without waiting: hiredis pipelines them on the command connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include "redis_store.h"

/* KEYS record; ARGV ttl, node, tag, token hash ("" none), fingerprint, seq ("" none), floor, frame field, room ("" none),
 * room value ("" left), carrier state ("" unchanged), who (with the token hash; "" none). 1 written, 0 not this node's
 * record. */
static ag__redis_script_t put_script = {
    "local k = KEYS[1] local owner = redis.call('HGET', k, 'node') "
    "if ARGV[4] ~= '' then if owner and owner ~= ARGV[2] then return 0 end "
    "redis.call('HSET', k, 'th', ARGV[4], 'node', ARGV[2], 'tag', ARGV[3], 'fp', ARGV[5]) "
    "if ARGV[12] ~= '' then redis.call('HSET', k, 'who', ARGV[12]) else redis.call('HDEL', k, 'who') end "
    "if not owner then redis.call('HSET', k, 'seq', 0, 'floor', 0) end "
    "elseif owner ~= ARGV[2] then return 0 end "
    "if ARGV[6] ~= '' then local old = tonumber(redis.call('HGET', k, 'floor') or '0') local fl = tonumber(ARGV[7]) "
    "for i = old + 1, fl do redis.call('HDEL', k, 'f:' .. i) end "
    "redis.call('HSET', k, 'seq', ARGV[6], 'floor', ARGV[7], 'f:' .. ARGV[6], ARGV[8]) end "
    "if ARGV[9] ~= '' then if ARGV[10] == '' then redis.call('HDEL', k, 'r:' .. ARGV[9]) "
    "else redis.call('HSET', k, 'r:' .. ARGV[9], ARGV[10]) end end "
    "if ARGV[11] ~= '' then redis.call('HSET', k, 'cs', ARGV[11]) end "
    "redis.call('PEXPIRE', k, ARGV[1]) return 1",
    ""};

static ag__redis_script_t del_script = {"if redis.call('HGET', KEYS[1], 'node') == ARGV[1] then redis.call('DEL', KEYS[1]) end "
                                        "return 1",
                                        ""};

/* KEYS record; ARGV token hash, node, tag, prefix. The record (HGETALL), false, or {"alive", tag, 1 when its route is
 * registered}. */
static ag__redis_script_t claim_script = {
    "local h = redis.call('HGETALL', KEYS[1]) if #h == 0 then return false end local t = {} "
    "for i = 1, #h, 2 do t[h[i]] = h[i + 1] end "
    "if t.th ~= ARGV[1] then return false end "
    "if t.node ~= ARGV[2] and redis.call('EXISTS', ARGV[4] .. 'node:' .. t.node) == 1 then "
    "return {'alive', t.tag or '', redis.call('EXISTS', ARGV[4] .. 'route:' .. (t.tag or ''))} end "
    "redis.call('HSET', KEYS[1], 'node', ARGV[2], 'tag', ARGV[3]) return h",
    ""};

static void ignore(void *data, const char *err, redisReply *reply)
{
    (void)data;
    (void)err;
    (void)reply;
}

void ag__redis_rconn_put(ag_store_t *store, const char *id, const ag_store_rconn_write_t *w)
{
    ag__redis_store_t *s = (void *)store;
    char *key = ag__redis_pkey(s, "rconn:", id);
    char ttl[24], seq[24] = "", floor[24] = "", head[48] = "", roomval[64] = "";
    char *field = NULL;
    size_t field_len = 0;
    if (key == NULL)
        return;
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)w->ttl_ms);
    if (w->frame != NULL) {
        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)w->seq);
        snprintf(floor, sizeof(floor), "%llu", (unsigned long long)w->floor);
        size_t ml = w->message_id != NULL ? strlen(w->message_id) : 0;
        int hl = w->message_id != NULL ? snprintf(head, sizeof(head), "%zu:", ml) : snprintf(head, sizeof(head), "-1:");
        field_len = (size_t)hl + ml + w->frame_len;
        if ((field = malloc(field_len + 1)) == NULL) {
            free(key);
            return;
        }
        memcpy(field, head, (size_t)hl);
        if (ml != 0)
            memcpy(field + hl, w->message_id, ml);
        memcpy(field + hl + ml, w->frame, w->frame_len);
    }
    if (w->room != NULL && w->epoch != NULL)
        snprintf(roomval, sizeof(roomval), "%.20s:%llu", w->epoch, (unsigned long long)w->since);
    const char *all[] = {key,
                         ttl,
                         s->node_id,
                         s->tag,
                         w->token_hash != NULL ? w->token_hash : "",
                         w->fingerprint != NULL ? w->fingerprint : "",
                         seq,
                         floor,
                         field != NULL ? field : "",
                         w->room != NULL ? w->room : "",
                         roomval,
                         w->carrier != NULL ? w->carrier : "",
                         w->token_hash != NULL && w->who != NULL ? w->who : ""};
    size_t lens[sizeof(all) / sizeof(all[0])];
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        lens[i] = all[i] == field ? field_len : strlen(all[i]);
    ag__redis_evalsha(s, &put_script, ignore, NULL, 1, (int)(sizeof(all) / sizeof(all[0])), all, lens);
    free(field);
    free(key);
}

void ag__redis_rconn_touch(ag_store_t *store, const char *id, uint64_t ttl_ms)
{
    ag__redis_store_t *s = (void *)store;
    char *key = ag__redis_pkey(s, "rconn:", id);
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)ttl_ms);
    if (key != NULL)
        ag_redis_commandv(s->cmd, NULL, NULL, "PEXPIRE", key, ttl, NULL);
    free(key);
}

void ag__redis_rconn_del(ag_store_t *store, const char *id)
{
    ag__redis_store_t *s = (void *)store;
    char *key = ag__redis_pkey(s, "rconn:", id);
    if (key == NULL)
        return;
    const char *all[] = {key, s->node_id};
    size_t lens[] = {strlen(key), strlen(s->node_id)};
    ag__redis_evalsha(s, &del_script, ignore, NULL, 1, 2, all, lens);
    free(key);
}

typedef struct {
    ag_store_cb cb;
    void *data;
} claim_t;

static int is_str(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_STRING;
}

/* "<n>:<messageId><frame>" or "-1:<frame>" into [seq, messageId or null, frame] */
static json_t *frame_entry(uint64_t seq, const char *v, size_t len)
{
    const char *colon = memchr(v, ':', len < 24 ? len : 24);
    if (colon == NULL)
        return NULL;
    const char *rest = colon + 1;
    size_t left = len - (size_t)(rest - v);
    if (v[0] == '-')
        return json_pack("[I,n,s%]", (json_int_t)seq, rest, left);
    size_t ml = strtoull(v, NULL, 10);
    if (ml > left)
        return NULL;
    return json_pack("[I,s%,s%]", (json_int_t)seq, rest, ml, rest + ml, left - ml);
}

static int by_seq(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_array_get(*(json_t *const *)a, 0));
    json_int_t y = json_integer_value(json_array_get(*(json_t *const *)b, 0));
    return x < y ? -1 : x > y;
}

static json_t *record_of(const redisReply *reply)
{
    json_t *rec = json_object(), *frames = json_array(), *rooms = json_object();
    size_t nf = 0;
    json_t **list = calloc(reply->elements / 2 + 1, sizeof(*list));
    if (rec == NULL || frames == NULL || rooms == NULL || list == NULL) {
        json_decref(rec);
        json_decref(frames);
        json_decref(rooms);
        free(list);
        return NULL;
    }
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *k = reply->element[i], *v = reply->element[i + 1];
        if (!is_str(k) || !is_str(v))
            continue;
        if (k->len > 2 && memcmp(k->str, "f:", 2) == 0) {
            json_t *e = frame_entry(strtoull(k->str + 2, NULL, 10), v->str, v->len);
            if (e != NULL)
                list[nf++] = e;
        } else if (k->len > 2 && memcmp(k->str, "r:", 2) == 0) {
            const char *colon = memchr(v->str, ':', v->len);
            if (colon != NULL)
                json_object_setn_new(
                    rooms, k->str + 2, k->len - 2,
                    json_pack("[s%,I]", v->str, (size_t)(colon - v->str), (json_int_t)strtoull(colon + 1, NULL, 10)));
        } else if (k->len == 3 && memcmp(k->str, "seq", 3) == 0) {
            json_object_set_new(rec, "seq", json_integer((json_int_t)strtoull(v->str, NULL, 10)));
        } else if (k->len == 5 && memcmp(k->str, "floor", 5) == 0) {
            json_object_set_new(rec, "floor", json_integer((json_int_t)strtoull(v->str, NULL, 10)));
        } else if ((k->len == 4 && memcmp(k->str, "node", 4) == 0) || (k->len == 3 && memcmp(k->str, "tag", 3) == 0)) {
            json_object_setn_new(rec, k->str, k->len, json_stringn(v->str, v->len));
        } else if (k->len == 2 && memcmp(k->str, "fp", 2) == 0) {
            json_object_set_new(rec, "fingerprint", json_stringn(v->str, v->len));
        } else if (k->len == 2 && memcmp(k->str, "cs", 2) == 0 && v->len <= AG_STORE_RCONN_CARRIER_MAX) {
            json_object_set_new(rec, "carrier", json_stringn(v->str, v->len));
        } else if (k->len == 3 && memcmp(k->str, "who", 3) == 0 && v->len <= AG_STORE_RCONN_WHO_MAX) {
            json_t *who = json_loadb(v->str, v->len, JSON_REJECT_DUPLICATES, NULL);
            if (json_is_object(who))
                json_object_set_new(rec, "who", who);
            else
                json_decref(who);
        }
    }
    qsort(list, nf, sizeof(*list), by_seq);
    for (size_t i = 0; i < nf; i++)
        json_array_append_new(frames, list[i]);
    free(list);
    json_object_set_new(rec, "frames", frames);
    json_object_set_new(rec, "rooms", rooms);
    return rec;
}

static void on_claim(void *_c, const char *err, redisReply *reply)
{
    claim_t *c = _c;
    json_t *result = NULL;
    if (err == NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 && is_str(reply->element[0]) &&
        reply->element[0]->len == 5 && memcmp(reply->element[0]->str, "alive", 5) == 0) {
        err = AG_STORE_RCONN_ALIVE;
        result = json_pack("{s:s%,s:b}", "tag", is_str(reply->element[1]) ? reply->element[1]->str : "",
                           is_str(reply->element[1]) ? reply->element[1]->len : 0, "routed",
                           reply->element[2]->type == REDIS_REPLY_INTEGER && reply->element[2]->integer == 1);
    } else if (err == NULL) {
        result = reply->type == REDIS_REPLY_ARRAY ? record_of(reply) : json_null();
        if (result == NULL)
            err = "out of memory";
    }
    if (c->cb != NULL)
        c->cb(c->data, err, result);
    json_decref(result);
    free(c);
}

void ag__redis_rconn_claim(ag_store_t *store, const char *id, const char *token_hash, ag_store_cb cb, void *data)
{
    ag__redis_store_t *s = (void *)store;
    claim_t *c = malloc(sizeof(*c));
    char *key = ag__redis_pkey(s, "rconn:", id);
    if (c == NULL || key == NULL) {
        free(c);
        free(key);
        cb(data, "out of memory", NULL);
        return;
    }
    c->cb = cb;
    c->data = data;
    const char *all[] = {key, token_hash, s->node_id, s->tag, s->prefix};
    size_t lens[sizeof(all) / sizeof(all[0])];
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        lens[i] = strlen(all[i]);
    ag__redis_evalsha(s, &claim_script, on_claim, c, 1, (int)(sizeof(all) / sizeof(all[0])), all, lens);
    free(key);
}

void ag__redis_conn_up(ag__redis_store_t *s)
{
    ag__redis_script_load(s, &put_script);
    ag__redis_script_load(s, &del_script);
    ag__redis_script_load(s, &claim_script);
}
