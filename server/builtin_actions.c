/*
 * The built-in actions, with actionhero's result shapes: status, randomNumber, cacheTest, sleepTest, createChatRoom,
 * documentation, and echo (a no-op for benchmarks).
 */
#include "actions.h"
#include "rooms.h"
#include "limit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* --- status --- */

static void run_status(ag_action_req_t *r, void *data)
{
    (void)data;
    ag_server_t *s = ag_action_server(r);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    json_t *res = json_object();
    json_object_set_new(res, "id", json_string(s->node_id));
    json_object_set_new(res, "actiongateVersion", json_string(AG_VERSION));
    json_object_set_new(res, "name", json_string(s->config->general.serverName));
    json_object_set_new(res, "description", json_string("actiongate: an actionhero-compatible realtime gateway"));
    json_object_set_new(res, "version", json_string(s->config->general.apiVersion));
    json_object_set_new(res, "uptime", json_integer((json_int_t)(ag_now_ms() - s->started_ms)));
    json_object_set_new(res, "consumedMemoryMB", json_real((double)((ru.ru_maxrss * 100) / 1024) / 100.0));
    json_object_set_new(res, "connections", json_integer((json_int_t)s->num_conns));
    /* README "Limits": what the node turned away, and the memory its bounds watch */
    json_object_set_new(res, "limits",
                        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "tcpConnections",
                                  (json_int_t)(s->limits != NULL ? s->limits->tcp_conns : 0), "maxConnections",
                                  (json_int_t)(s->limits != NULL ? s->limits->max_tcp : 0), "connectionsRefused",
                                  (json_int_t)s->stats.tcp_refused, "handshakesRefused", (json_int_t)s->stats.handshakes_refused,
                                  "messagesRefused", (json_int_t)s->stats.messages_refused, "rateDisconnects",
                                  (json_int_t)s->stats.rate_disconnects, "sseReplayBytes", (json_int_t)s->stats.sse_replay_bytes));
    json_object_set_new(res, "nodeStatus", json_string("Node Healthy"));
    json_object_set_new(res, "problems", json_array());
    ag_action_succeed(r, res);
}

/* --- randomNumber --- */

static void run_random(ag_action_req_t *r, void *data)
{
    (void)data;
    char num[32], text[64];
    double n = ag_random_double();
    ag_format_double(n, num);
    snprintf(text, sizeof(text), "Your random number is %s", num);
    /* The number is sent as the double that num denotes, so JSON readers print it back as num. */
    ag_action_succeed(r, json_pack("{s:f,s:s}", "randomNumber", strtod(num, NULL), "stringRandomNumber", text));
}

/* --- cacheTest --- */

static int three_letters(const json_t *v, const char **msg)
{
    if (json_is_string(v) && json_string_length(v) < 3) {
        *msg = "inputs should be at least 3 letters long";
        return 1;
    }
    return 0;
}

/* actionhero formats both inputs with String(s). */
static json_t *to_string(const json_t *v)
{
    if (json_is_string(v))
        return NULL;
    if (json_is_integer(v)) {
        char b[32];
        snprintf(b, sizeof(b), "%lld", (long long)json_integer_value(v));
        return json_string(b);
    }
    if (json_is_real(v)) {
        char b[32];
        ag_format_double(json_real_value(v), b);
        return json_string(b);
    }
    if (json_is_boolean(v))
        return json_string(json_is_true(v) ? "true" : "false");
    return NULL;
}

typedef struct {
    ag_action_req_t *req;
    char key[512];
    json_t *results;
} cachetest_t;

static void cachetest_finish(cachetest_t *ct, const char *err)
{
    if (err != NULL)
        ag_action_fail(ct->req, 500, err);
    else
        ag_action_succeed(ct->req, json_pack("{s:O}", "cacheTestResults", ct->results));
    json_decref(ct->results);
    free(ct);
}

static void ct_deleted(void *data, const char *err, json_t *res)
{
    cachetest_t *ct = data;
    json_object_set(ct->results, "deleteResp", res != NULL ? res : json_null());
    cachetest_finish(ct, err);
}

static void ct_loaded(void *data, const char *err, json_t *res)
{
    cachetest_t *ct = data;
    if (err != NULL)
        return cachetest_finish(ct, err);
    json_object_set(ct->results, "loadResp", res);
    ag_store_t *st = ag_action_server(ct->req)->store;
    st->ops->cache_del(st, ct->key, ct_deleted, ct);
}

static void ct_sized(void *data, const char *err, json_t *res)
{
    cachetest_t *ct = data;
    if (err != NULL)
        return cachetest_finish(ct, err);
    json_object_set(ct->results, "sizeResp", res);
    ag_store_t *st = ag_action_server(ct->req)->store;
    st->ops->cache_load(st, ct->key, ct_loaded, ct);
}

static void ct_saved(void *data, const char *err, json_t *res)
{
    cachetest_t *ct = data;
    if (err != NULL)
        return cachetest_finish(ct, err);
    json_object_set(ct->results, "saveResp", res);
    ag_store_t *st = ag_action_server(ct->req)->store;
    st->ops->cache_size(st, ct_sized, ct);
}

static void run_cachetest(ag_action_req_t *r, void *data)
{
    (void)data;
    cachetest_t *ct = calloc(1, sizeof(*ct));
    if (ct == NULL) {
        ag_action_fail(r, 500, "out of memory");
        return;
    }
    ct->req = r;
    ct->results = json_object();
    snprintf(ct->key, sizeof(ct->key), "cacheTest_%s", ag_action_param_str(r, "key", ""));
    ag_store_t *st = ag_action_server(r)->store;
    st->ops->cache_save(st, ct->key, json_object_get(ag_action_params(r), "value"), ag_now_ms() + 5000, ct_saved, ct);
}

/* --- sleepTest --- */

/* parseInt-like: numbers are truncated, numeric strings parsed, anything else left for the default. A number no
 * integer can hold (1e300) is left as it is, and the validator refuses it. */
static json_t *to_int(const json_t *v)
{
    long long n;
    if (json_is_real(v))
        return ag_double_to_ll(json_real_value(v), &n) == 0 ? json_integer(n) : NULL;
    if (json_is_string(v)) {
        char *end;
        n = strtoll(json_string_value(v), &end, 10);
        if (end != json_string_value(v))
            return json_integer(n);
    }
    return NULL;
}

static int non_negative_int(const json_t *v, const char **msg)
{
    (void)msg;
    return !json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 3600 * 1000;
}

static void sleep_done(ag_action_req_t *r)
{
    json_t *p = ag_action_params(r);
    long long duration = json_integer_value(json_object_get(p, "sleepDuration"));
    long long started = (long long)r->started_ms;
    long long ended = (long long)ag_now_ms();
    ag_action_succeed(r, json_pack("{s:I,s:I,s:I,s:I}", "sleepStarted", (json_int_t)started, "sleepEnded", (json_int_t)ended,
                                   "sleepDelta", (json_int_t)(ended - started), "sleepDuration", (json_int_t)duration));
}

static void run_sleeptest(ag_action_req_t *r, void *data)
{
    (void)data;
    long long duration = ag_action_param_int(r, "sleepDuration", 1000);
    ag_action_after(r, (uint64_t)duration, sleep_done);
}

/* --- createChatRoom --- */

static void room_created(void *data, const char *err, json_t *res)
{
    (void)res;
    ag_action_req_t *r = data;
    if (err != NULL && strcmp(err, AG_STORE_ERR_TOO_MANY_ROOMS) == 0) {
        char msg[80];
        snprintf(msg, sizeof(msg), "%s (at most %d)", AG_ERR_TOO_MANY_ROOMS, ag_action_server(r)->config->general.maxRooms);
        ag_action_fail(r, 409, msg);
        return;
    }
    ag_action_succeed(r, json_pack("{s:s,s:b}", "name", ag_action_param_str(r, "name", ""), "didCreate", err == NULL));
}

/* Anyone may create rooms, as in actionhero; the bounds on names and on the number of rooms keep that cheap. */
static void run_create_room(ag_action_req_t *r, void *data)
{
    (void)data;
    ag_server_t *s = ag_action_server(r);
    const char *name = ag_action_param_str(r, "name", "");
    if (ag__room_name_check(s, name) != AG_OK) {
        char msg[80];
        snprintf(msg, sizeof(msg), "%s (at most %d)", AG_ERR_ROOM_NAME_TOO_LONG, s->config->general.maxRoomNameLength);
        ag_action_fail(r, 422, name[0] == '\0' ? AG_ERR_ROOM_REQUIRED : msg); /* "" when name was not a string */
        return;
    }
    s->store->ops->room_add(s->store, name, room_created, r);
}

/* --- documentation, echo --- */

static void run_documentation(ag_action_req_t *r, void *data)
{
    (void)data;
    ag_action_succeed(r, json_pack("{s:o}", "documentation", ag__actions_documentation(ag_action_server(r))));
}

static void run_echo(ag_action_req_t *r, void *data)
{
    (void)data;
    json_t *payload = json_object_get(ag_action_params(r), "payload");
    ag_action_succeed(r, json_pack("{s:O}", "payload", payload != NULL ? payload : json_null()));
}

int ag__builtin_actions_register(ag_server_t *s)
{
    static const ag_input_t cache_inputs[] = {
        {"key", 1, NULL, three_letters, to_string},
        {"value", 1, NULL, three_letters, to_string},
    };
    static const ag_input_t sleep_inputs[] = {{"sleepDuration", 0, "1000", non_negative_int, to_int}};
    static const ag_input_t room_inputs[] = {{"name", 1, NULL, NULL, to_string}};
    static const ag_input_t echo_inputs[] = {{"payload", 0, NULL, NULL, NULL}};
    const ag_action_def_t defs[] = {
        {"status", "I will return some basic information about the API", NULL, 0, run_status, NULL, 0},
        {"randomNumber", "I am an API method which will generate a random number", NULL, 0, run_random, NULL, 0},
        {"cacheTest", "I will test the internal cache functions of the API", cache_inputs, 2, run_cachetest, NULL, 0},
        {"sleepTest", "I will sleep and then return", sleep_inputs, 1, run_sleeptest, NULL, 0},
        {"createChatRoom", "I will create a chatroom with the given name", room_inputs, 1, run_create_room, NULL, 0},
        {"documentation", "Return API documentation", NULL, 0, run_documentation, NULL, 0},
        {"echo", "I return my payload param (a no-op for benchmarks)", echo_inputs, 1, run_echo, NULL, 0},
    };
    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
        int ret = ag_action_register(s, &defs[i]);
        if (ret != AG_OK)
            return ret;
    }
    return AG_OK;
}
