/*
 * The Redis store and its hiredis adapter against a real redis-server (started here on a free port): URL parsing, the store's
 * semantics (store.h), pub/sub across two stores, dead-node cleanup, Redis going away and coming back, and the command timeout.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "redis_helper.h"
#include "store/store.h"
#include "store/redis_adapter.h"

static test_redis_t redis;
static h2o_evloop_t *loop;
static int prefix_seq;

typedef struct {
    int done;
    char err[128];
    json_t *result;
} answer_t;

static void on_answer(void *d, const char *err, json_t *result)
{
    answer_t *a = d;
    a->done = 1;
    a->err[0] = '\0';
    if (err != NULL)
        snprintf(a->err, sizeof(a->err), "%s", err);
    a->result = result != NULL ? json_incref(result) : NULL;
}

static answer_t *wait_answer(answer_t *a)
{
    assert_true(test_run_until(loop, &a->done, 3000));
    return a;
}

static void answer_reset(answer_t *a)
{
    json_decref(a->result);
    memset(a, 0, sizeof(*a));
}

/* a store with its own key prefix, so tests do not see each other's keys */
static ag_store_t *new_store(const char *node, uint64_t ttl_ms, const char *prefix)
{
    char pfx[64], err[256];
    if (prefix == NULL) {
        snprintf(pfx, sizeof(pfx), "t%d:", ++prefix_seq);
        prefix = pfx;
    }
    ag_store_redis_options_t o = {.url = redis.url,
                                  .prefix = prefix,
                                  .node_id = node,
                                  .node_ttl_ms = ttl_ms,
                                  .command_timeout_ms = 1000,
                                  .connect_timeout_ms = 1000};
    ag_store_t *s = ag_store_redis_create(loop, &o, err, sizeof(err));
    assert_non_null(s);
    ag_redis_t *cmd = ag__store_redis_cmd(s);
    for (int i = 0; i < 300 && !ag_redis_is_up(cmd); i++)
        h2o_evloop_run(loop, 10);
    assert_true(ag_redis_is_up(cmd));
    return s;
}

static int setup(void **state)
{
    loop = h2o_evloop_create();
    return test_redis_setup(&redis);
}

static int teardown(void **state)
{
    test_redis_teardown(&redis);
    return 0;
}

/* --- URL --- */

static void test_url(void **state)
{
    ag_redis_url_t u;
    assert_int_equal(ag_redis_url_parse("redis://127.0.0.1:6380", &u), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6380);
    assert_string_equal(u.password, "");
    assert_int_equal(u.db, 0);
    assert_int_equal(ag_redis_url_parse("redis://:s3cret@db.example:7000/3", &u), 0);
    assert_string_equal(u.host, "db.example");
    assert_int_equal(u.port, 7000);
    assert_string_equal(u.password, "s3cret");
    assert_int_equal(u.db, 3);
    assert_int_equal(ag_redis_url_parse("redis://user:pw@h", &u), 0);
    assert_string_equal(u.password, "pw");
    assert_int_equal(u.port, 6379);
    assert_int_equal(ag_redis_url_parse("redis://[::1]:6390/2", &u), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 2);
    assert_int_not_equal(ag_redis_url_parse("http://h:1", &u), 0);
    assert_int_not_equal(ag_redis_url_parse("redis://h:0", &u), 0);
    assert_int_not_equal(ag_redis_url_parse("redis://h:99999", &u), 0);
    assert_int_not_equal(ag_redis_url_parse("redis://h:12x", &u), 0);
    assert_int_not_equal(ag_redis_url_parse("redis://h/x", &u), 0);
}

/* --- rooms and members --- */

static void test_rooms(void **state)
{
    ag_store_t *s = new_store("n1", 5000, NULL);
    answer_t a = {0};
    s->ops->room_add(s, "r1", on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, "");
    assert_true(json_is_true(a.result));
    answer_reset(&a);
    s->ops->room_add(s, "r1", on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, "room exists");
    answer_reset(&a);
    s->ops->room_exists(s, "r1", on_answer, &a);
    assert_true(json_is_true(wait_answer(&a)->result));
    answer_reset(&a);
    s->ops->room_exists(s, "nope", on_answer, &a);
    assert_true(json_is_false(wait_answer(&a)->result));
    answer_reset(&a);
    s->ops->room_add(s, "r 2", on_answer, &a);
    wait_answer(&a);
    answer_reset(&a);
    s->ops->room_list(s, on_answer, &a);
    assert_int_equal(json_array_size(wait_answer(&a)->result), 2);
    answer_reset(&a);

    json_t *d = json_pack("{s:s,s:I,s:s}", "id", "c1", "joinedAt", (json_int_t)1234, "node", "n1");
    s->ops->member_add(s, "r 2", "c1", d, on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, "");
    answer_reset(&a);
    s->ops->member_add(s, "missing", "c1", d, on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, "room does not exist");
    answer_reset(&a);
    s->ops->members(s, "r 2", on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, "");
    assert_int_equal(json_object_size(a.result), 1);
    assert_true(json_equal(json_object_get(a.result, "c1"), d));
    answer_reset(&a);
    s->ops->members(s, "missing", on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, "room does not exist");
    answer_reset(&a);
    s->ops->members(s, "r1", on_answer, &a);
    assert_int_equal(json_object_size(wait_answer(&a)->result), 0);
    answer_reset(&a);
    s->ops->member_del(s, "r 2", "c1", on_answer, &a);
    assert_true(json_is_true(wait_answer(&a)->result));
    answer_reset(&a);
    s->ops->member_del(s, "r 2", "c1", on_answer, &a);
    assert_true(json_is_false(wait_answer(&a)->result));
    answer_reset(&a);

    /* deleting a room removes its members */
    s->ops->member_add(s, "r1", "c2", d, on_answer, &a);
    wait_answer(&a);
    answer_reset(&a);
    s->ops->room_del(s, "r1", on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, "");
    answer_reset(&a);
    s->ops->room_del(s, "r1", on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, "room does not exist");
    answer_reset(&a);
    s->ops->room_add(s, "r1", on_answer, &a);
    wait_answer(&a);
    answer_reset(&a);
    s->ops->members(s, "r1", on_answer, &a);
    assert_int_equal(json_object_size(wait_answer(&a)->result), 0);
    answer_reset(&a);
    json_decref(d);
    s->ops->destroy(s);
}

/* --- cache --- */

static void test_cache(void **state)
{
    ag_store_t *s = new_store("n1", 5000, NULL);
    answer_t a = {0};
    json_t *v = json_pack("{s:[i,s,f],s:n}", "list", 1, "two", 3.5, "nothing");
    uint64_t before = ag_now_ms();
    s->ops->cache_save(s, "k1", v, 0, on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, "");
    assert_true(json_is_true(a.result));
    answer_reset(&a);
    s->ops->cache_load(s, "k1", on_answer, &a);
    json_t *r = wait_answer(&a)->result;
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "key")), "k1");
    assert_true(json_equal(json_object_get(r, "value"), v));
    assert_true(json_is_null(json_object_get(r, "expireTimestamp")));
    assert_true((uint64_t)json_integer_value(json_object_get(r, "createdAt")) >= before);
    assert_true(json_integer_value(json_object_get(r, "readAt")) >= json_integer_value(json_object_get(r, "createdAt")));
    answer_reset(&a);

    /* expiry: absolute ms */
    uint64_t exp = ag_now_ms() + 150;
    s->ops->cache_save(s, "k2", v, exp, on_answer, &a);
    wait_answer(&a);
    answer_reset(&a);
    s->ops->cache_load(s, "k2", on_answer, &a);
    assert_int_equal(json_integer_value(json_object_get(wait_answer(&a)->result, "expireTimestamp")), (json_int_t)exp);
    answer_reset(&a);
    s->ops->cache_size(s, on_answer, &a);
    assert_int_equal(json_integer_value(wait_answer(&a)->result), 2);
    answer_reset(&a);
    test_run_for(loop, 250);
    s->ops->cache_load(s, "k2", on_answer, &a);
    assert_true(json_is_null(wait_answer(&a)->result));
    answer_reset(&a);
    s->ops->cache_size(s, on_answer, &a);
    assert_int_equal(json_integer_value(wait_answer(&a)->result), 1);
    answer_reset(&a);

    s->ops->cache_del(s, "k1", on_answer, &a);
    assert_true(json_is_true(wait_answer(&a)->result));
    answer_reset(&a);
    s->ops->cache_del(s, "k1", on_answer, &a);
    assert_true(json_is_false(wait_answer(&a)->result));
    answer_reset(&a);
    s->ops->cache_load(s, "k1", on_answer, &a);
    assert_true(json_is_null(wait_answer(&a)->result));
    answer_reset(&a);
    json_decref(v);
    s->ops->destroy(s);
}

/* cache_size must not run KEYS (nor a whole SCAN in one go): either walks the entire keyspace while Redis serves
 * nobody else; with 2 M keys one call took 1.1 s. Redis counts the commands scripts run in its commandstats. */
static long command_calls(redisContext *c, const char *name)
{
    redisReply *r = redisCommand(c, "INFO commandstats");
    assert_non_null(r);
    char needle[64];
    snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", name);
    const char *p = strstr(r->str, needle);
    long n = p != NULL ? strtol(p + strlen(needle), NULL, 10) : 0;
    freeReplyObject(r);
    return n;
}

static void test_cache_size_without_keys(void **state)
{
    ag_store_t *s = new_store("ck", 5000, "ck:");
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis.port, tv);
    assert_true(c != NULL && c->err == 0);
    /* other data in the same Redis, some of it under the cache's own prefix */
    for (int i = 0; i < 500; i++)
        redisAppendCommand(c, "SET other:%d x", i);
    for (int i = 0; i < 20; i++)
        redisAppendCommand(c, "SET ck:cachex%d x", i);
    for (int i = 0; i < 520; i++) {
        redisReply *r;
        assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
    freeReplyObject(redisCommand(c, "CONFIG RESETSTAT"));

    answer_t a = {0};
    json_t *v = json_string("v");
    const char *keys[] = {"a", "b", "c*", "d"};
    for (size_t i = 0; i < 4; i++) {
        s->ops->cache_save(s, keys[i], v, i == 3 ? ag_now_ms() + 100 : 0, on_answer, &a);
        assert_string_equal(wait_answer(&a)->err, "");
        answer_reset(&a);
    }
    s->ops->cache_size(s, on_answer, &a);
    assert_int_equal(json_integer_value(wait_answer(&a)->result), 4);
    answer_reset(&a);
    /* an expired entry and a deleted one are not counted */
    test_run_for(loop, 200);
    s->ops->cache_del(s, "c*", on_answer, &a);
    assert_true(json_is_true(wait_answer(&a)->result));
    answer_reset(&a);
    s->ops->cache_size(s, on_answer, &a);
    assert_int_equal(json_integer_value(wait_answer(&a)->result), 2);
    answer_reset(&a);
    /* saved again: counted once */
    s->ops->cache_save(s, "a", v, ag_now_ms() + 60000, on_answer, &a);
    wait_answer(&a);
    answer_reset(&a);
    s->ops->cache_size(s, on_answer, &a);
    assert_int_equal(json_integer_value(wait_answer(&a)->result), 2);
    answer_reset(&a);

    assert_int_equal(command_calls(c, "keys"), 0);
    assert_int_equal(command_calls(c, "scan"), 0);
    redisFree(c);
    json_decref(v);
    s->ops->destroy(s);
}

/* --- pub/sub across two stores (two nodes) --- */

typedef struct {
    int count;
    char channel[64];
    char payload[256];
} inbox_t;

static void on_msg(void *d, const char *channel, const char *payload, size_t len)
{
    inbox_t *in = d;
    in->count++;
    snprintf(in->channel, sizeof(in->channel), "%s", channel);
    snprintf(in->payload, sizeof(in->payload), "%.*s", (int)len, payload);
}

/* Subscriptions are confirmed asynchronously: publish probes until every inbox heard one, then start counting. */
static void wait_subscribed(ag_store_t *pub, const char *channel, inbox_t *in1, inbox_t *in2)
{
    for (int i = 0; i < 50 && (in1->count == 0 || (in2 != NULL && in2->count == 0)); i++) {
        pub->ops->publish(pub, channel, "probe", 5, NULL, NULL);
        test_run_for(loop, 40);
    }
    assert_true(in1->count > 0 && (in2 == NULL || in2->count > 0));
    test_run_for(loop, 50);
    in1->count = 0;
    if (in2 != NULL)
        in2->count = 0;
}

static void test_pubsub(void **state)
{
    ag_store_t *a = new_store("na", 5000, "ps:"), *b = new_store("nb", 5000, "ps:");
    inbox_t ia = {0}, ib = {0};
    a->on_message = on_msg;
    a->on_message_data = &ia;
    b->on_message = on_msg;
    b->on_message_data = &ib;
    a->ops->subscribe(a, "room:x");
    b->ops->subscribe(b, "room:x");
    wait_subscribed(a, "room:x", &ia, &ib);
    answer_t r = {0};
    a->ops->publish(a, "room:x", "hello\0world", 11, on_answer, &r);
    wait_answer(&r);
    answer_reset(&r);
    assert_true(test_run_until(loop, &ib.count, 2000));
    test_run_until(loop, &ia.count, 2000);
    assert_int_equal(ia.count, 1);
    assert_int_equal(ib.count, 1);
    assert_string_equal(ib.channel, "room:x");
    assert_string_equal(ib.payload, "hello");
    /* unsubscribe, then again subscribe at once: the adapter must not lose the channel */
    b->ops->unsubscribe(b, "room:x");
    b->ops->subscribe(b, "room:x");
    b->ops->unsubscribe(b, "room:x");
    b->ops->subscribe(b, "room:x");
    wait_subscribed(a, "room:x", &ib, NULL);
    a->ops->publish(a, "room:x", "again", 5, NULL, NULL);
    assert_true(test_run_until(loop, &ib.count, 2000));
    assert_string_equal(ib.payload, "again");
    /* only the subscribed node hears it */
    b->ops->unsubscribe(b, "room:x");
    test_run_for(loop, 100);
    ia.count = ib.count = 0;
    a->ops->publish(a, "room:x", "third", 5, NULL, NULL);
    assert_true(test_run_until(loop, &ia.count, 2000));
    test_run_for(loop, 100);
    assert_int_equal(ib.count, 0);
    a->ops->destroy(a);
    b->ops->destroy(b);
}

/* subscribed(): once it answered, a message published by another node reaches this one, without retries */
static void test_subscribed(void **state)
{
    ag_store_t *a = new_store("sa", 5000, "sb:"), *b = new_store("sb", 5000, "sb:");
    inbox_t ib = {0};
    b->on_message = on_msg;
    b->on_message_data = &ib;
    for (int round = 0; round < 20; round++) {
        char ch[32], text[32];
        snprintf(ch, sizeof(ch), "room:r%d", round);
        snprintf(text, sizeof(text), "first %d", round);
        b->ops->subscribe(b, ch);
        answer_t r = {0};
        b->ops->subscribed(b, on_answer, &r);
        assert_true(json_is_true(wait_answer(&r)->result));
        answer_reset(&r);
        ib.count = 0;
        a->ops->publish(a, ch, text, strlen(text), NULL, NULL);
        assert_true(test_run_until(loop, &ib.count, 2000));
        assert_string_equal(ib.payload, text);
        b->ops->unsubscribe(b, ch);
    }
    a->ops->destroy(a);
    b->ops->destroy(b);
}

/* --- a node that stops heartbeating loses its members --- */

static void test_dead_node(void **state)
{
    ag_store_t *live = new_store("live", 600, "dn:"), *doomed = new_store("doomed", 600, "dn:");
    answer_t a = {0};
    live->ops->room_add(live, "lobby", on_answer, &a);
    wait_answer(&a);
    answer_reset(&a);
    json_t *d1 = json_pack("{s:s,s:I,s:s}", "id", "c-live", "joinedAt", (json_int_t)1, "node", "live");
    json_t *d2 = json_pack("{s:s,s:I,s:s}", "id", "c-doomed", "joinedAt", (json_int_t)2, "node", "doomed");
    live->ops->member_add(live, "lobby", "c-live", d1, on_answer, &a);
    wait_answer(&a);
    answer_reset(&a);
    doomed->ops->member_add(doomed, "lobby", "c-doomed", d2, on_answer, &a);
    wait_answer(&a);
    answer_reset(&a);
    live->ops->members(live, "lobby", on_answer, &a);
    assert_int_equal(json_object_size(wait_answer(&a)->result), 2);
    answer_reset(&a);
    test_run_for(loop, 300); /* both heartbeats written */
    /* the process "dies": its connections stop, nothing is cleaned by it */
    doomed->ops->destroy(doomed);
    int gone = 0;
    for (int i = 0; i < 40 && !gone; i++) {
        test_run_for(loop, 100);
        live->ops->members(live, "lobby", on_answer, &a);
        gone = json_object_size(wait_answer(&a)->result) == 1;
        if (gone)
            assert_non_null(json_object_get(a.result, "c-live"));
        answer_reset(&a);
    }
    assert_true(gone);
    json_decref(d1);
    json_decref(d2);
    live->ops->destroy(live);
}

/* --- the node registry across nodes: a route is read from another node, and expires with its node's heartbeat --- */

static void test_node_registry_expiry(void **state)
{
    ag_store_t *reader = new_store("reader", 600, "nr:"), *owner = new_store("owner", 600, "nr:");
    ag_store_node_t self = {.tag = "Own3rTag", .address = "127.0.0.1:5555", .token = "secret-token-of-owner"};
    assert_int_equal(owner->ops->node_register(owner, &self), 0);
    answer_t a = {0};
    int seen = 0;
    for (int i = 0; i < 30 && !seen; i++) {
        reader->ops->node_lookup(reader, "Own3rTag", on_answer, &a);
        seen = json_is_object(wait_answer(&a)->result);
        if (seen) {
            assert_string_equal(json_string_value(json_object_get(a.result, "address")), "127.0.0.1:5555");
            assert_string_equal(json_string_value(json_object_get(a.result, "token")), "secret-token-of-owner");
        }
        answer_reset(&a);
        test_run_for(loop, 20);
    }
    assert_true(seen);
    /* the owner dies without leaving: its route lives on its heartbeat only */
    owner->ops->destroy(owner);
    int gone = 0;
    for (int i = 0; i < 40 && !gone; i++) {
        test_run_for(loop, 100);
        reader->ops->node_lookup(reader, "Own3rTag", on_answer, &a);
        gone = wait_answer(&a)->err[0] == '\0' && json_is_null(a.result);
        answer_reset(&a);
    }
    assert_true(gone);
    reader->ops->destroy(reader);
}

/* --- Redis restarts empty: the store reconnects, resubscribes and writes its rooms and members again --- */

static void test_redis_restart(void **state)
{
    ag_store_t *s = new_store("rs", 900, "rs:"), *peer = new_store("rp", 900, "rs:");
    inbox_t in = {0};
    s->on_message = on_msg;
    s->on_message_data = &in;
    s->ops->subscribe(s, "ch");
    answer_t a = {0};
    s->ops->room_add(s, "kept", on_answer, &a);
    wait_answer(&a);
    answer_reset(&a);
    json_t *d = json_pack("{s:s,s:I,s:s}", "id", "c9", "joinedAt", (json_int_t)9, "node", "rs");
    s->ops->member_add(s, "kept", "c9", d, on_answer, &a);
    wait_answer(&a);
    answer_reset(&a);

    test_redis_kill(&redis);
    test_run_for(loop, 300);
    /* while Redis is away: operations fail fast, local delivery still works */
    s->ops->room_exists(s, "kept", on_answer, &a);
    assert_string_not_equal(wait_answer(&a)->err, "");
    answer_reset(&a);
    s->ops->publish(s, "ch", "local", 5, on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, "");
    answer_reset(&a);
    assert_int_equal(in.count, 1);
    assert_string_equal(in.payload, "local");

    assert_int_equal(test_redis_start(&redis), 0);
    int back = 0;
    for (int i = 0; i < 60 && !back; i++) {
        test_run_for(loop, 100);
        peer->ops->members(peer, "kept", on_answer, &a);
        back = wait_answer(&a)->err[0] == '\0' && json_object_size(a.result) == 1;
        answer_reset(&a);
    }
    assert_true(back);
    in.count = 0;
    for (int i = 0; i < 30 && in.count == 0; i++) {
        peer->ops->publish(peer, "ch", "remote", 6, NULL, NULL);
        test_run_for(loop, 100);
    }
    assert_true(in.count > 0);
    assert_string_equal(in.payload, "remote");
    json_decref(d);
    s->ops->destroy(s);
    peer->ops->destroy(peer);
}

/* --- a Redis that stops answering: commands fail by the command timeout, the connection comes back --- */

static void test_command_timeout(void **state)
{
    ag_store_t *s = new_store("to", 5000, "to:");
    answer_t a = {0};
    kill(redis.pid, SIGSTOP);
    s->ops->room_exists(s, "x", on_answer, &a);
    assert_true(test_run_until(loop, &a.done, 3000));
    assert_string_equal(a.err, "redis timeout");
    answer_reset(&a);
    kill(redis.pid, SIGCONT);
    ag_redis_t *cmd = ag__store_redis_cmd(s);
    for (int i = 0; i < 100 && !ag_redis_is_up(cmd); i++)
        test_run_for(loop, 50);
    assert_true(ag_redis_is_up(cmd));
    s->ops->room_exists(s, "x", on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, "");
    answer_reset(&a);
    s->ops->destroy(s);
}

/* --- AUTH and SELECT from the URL --- */

static void test_auth_select(void **state)
{
    test_redis_t secured = {0};
    secured.port = test_free_port();
    char port[16];
    snprintf(port, sizeof(port), "%d", secured.port);
    snprintf(secured.dir, sizeof(secured.dir), "/tmp/ag-unit-redis-XXXXXX");
    assert_non_null(mkdtemp(secured.dir));
    secured.pid = fork();
    if (secured.pid == 0) {
        int devnull = open("/dev/null", 1);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--requirepass", "pw", "--dir",
               secured.dir, (char *)NULL);
        _exit(127);
    }
    usleep(300000);
    char url[128], err[256];
    snprintf(url, sizeof(url), "redis://:pw@127.0.0.1:%d/5", secured.port);
    ag_store_redis_options_t o = {.url = url, .prefix = "a:", .node_id = "x"};
    ag_store_t *s = ag_store_redis_create(loop, &o, err, sizeof(err));
    assert_non_null(s);
    answer_t a = {0};
    for (int i = 0; i < 100 && !ag_redis_is_up(ag__store_redis_cmd(s)); i++)
        test_run_for(loop, 20);
    s->ops->room_add(s, "authroom", on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, "");
    answer_reset(&a);
    /* the room landed in database 5 */
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", secured.port, tv);
    redisReply *r = redisCommand(c, "AUTH pw");
    freeReplyObject(r);
    r = redisCommand(c, "SELECT 5");
    freeReplyObject(r);
    r = redisCommand(c, "SISMEMBER a:rooms authroom");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    redisFree(c);
    s->ops->destroy(s);

    /* a wrong password never becomes ready */
    snprintf(url, sizeof(url), "redis://:wrong@127.0.0.1:%d", secured.port);
    o.url = url;
    s = ag_store_redis_create(loop, &o, err, sizeof(err));
    test_run_for(loop, 300);
    assert_false(ag_redis_is_up(ag__store_redis_cmd(s)));
    s->ops->room_exists(s, "x", on_answer, &a);
    assert_string_not_equal(wait_answer(&a)->err, "");
    answer_reset(&a);
    s->ops->destroy(s);
    test_redis_teardown(&secured);

    o.url = "mysql://nope";
    assert_null(ag_store_redis_create(loop, &o, err, sizeof(err)));
    assert_non_null(strstr(err, "redis.url"));
}

/* --- room history (resume): one script run per publish, lines expiring with the window, a new epoch when Redis lost
 * its data, and offsets in one publish order whichever node published --- */

static redisContext *raw_connect(void)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis.port, tv);
    assert_true(c != NULL && c->err == 0);
    return c;
}

static long long raw_int(redisContext *c, const char *cmd, const char *arg)
{
    redisReply *r = redisCommand(c, "%s %s", cmd, arg);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -999;
    freeReplyObject(r);
    return v;
}

static void hist_publish(ag_store_t *s, const char *room, const char *line, answer_t *a)
{
    char ch[64];
    snprintf(ch, sizeof(ch), "room:%s", room);
    s->ops->history_publish(s, room, ch, line, strlen(line), on_answer, a);
    wait_answer(a);
}

static void hist_bounds(ag_store_t *s, size_t lines, uint64_t ms)
{
    s->history_lines = lines;
    s->history_bytes = 4096;
    s->history_ms = ms;
}

static void test_history_redis(void **state)
{
    ag_store_t *s = new_store("hs", 5000, "hs:");
    hist_bounds(s, 10, 60000);
    redisContext *c = raw_connect();
    answer_t a = {0};
    s->ops->room_add(s, "hr", on_answer, &a);
    wait_answer(&a);
    answer_reset(&a);

    /* a Redis without the script (never seen, or flushed) answers NOSCRIPT once: the line still goes, under offset 1 */
    freeReplyObject(redisCommand(c, "SCRIPT FLUSH"));
    hist_publish(s, "hr", "cfirst", &a);
    assert_string_equal(a.err, "");
    assert_int_equal(json_integer_value(json_object_get(a.result, "offset")), 1);
    char epoch[32];
    snprintf(epoch, sizeof(epoch), "%s", json_string_value(json_object_get(a.result, "epoch")));
    assert_int_equal(strlen(epoch), 16);
    answer_reset(&a);

    /* one command per publish whatever happens inside */
    freeReplyObject(redisCommand(c, "CONFIG RESETSTAT"));
    for (int i = 2; i <= 6; i++) {
        hist_publish(s, "hr", "cline", &a);
        assert_int_equal(json_integer_value(json_object_get(a.result, "offset")), i);
        answer_reset(&a);
    }
    assert_int_equal(command_calls(c, "evalsha"), 5);
    assert_int_equal(command_calls(c, "eval"), 0);
    assert_int_equal(command_calls(c, "publish"), 5); /* inside the script: one PUBLISH per line */

    /* the lines expire with the window; the room's offsets and epoch live with the room */
    long long ttl = raw_int(c, "PTTL", "hs:histlines:hr");
    assert_true(ttl > 0 && ttl <= 60000);
    assert_int_equal(raw_int(c, "PTTL", "hs:hist:hr"), -1);

    /* Redis loses its data: the room comes back (a node writes its rooms again), its history is another epoch, and an
     * offset from before is refused */
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    s->ops->room_add(s, "hr", on_answer, &a);
    wait_answer(&a);
    answer_reset(&a);
    s->ops->history_since(s, "hr", 3, on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, AG_STORE_HISTORY_GONE);
    answer_reset(&a);
    s->ops->history_since(s, "hr", AG_STORE_HISTORY_TAIL, on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, "");
    assert_string_not_equal(json_string_value(json_object_get(a.result, "epoch")), epoch);
    assert_int_equal(json_integer_value(json_object_get(a.result, "last")), 0);
    answer_reset(&a);

    /* the age bound: lines older than history_ms are gone, the offset after them still answers */
    hist_bounds(s, 10, 100);
    hist_publish(s, "hr", "cold1", &a);
    answer_reset(&a);
    hist_publish(s, "hr", "cold2", &a);
    answer_reset(&a);
    test_run_for(loop, 250);
    s->ops->history_since(s, "hr", 1, on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, AG_STORE_HISTORY_GONE);
    answer_reset(&a);
    s->ops->history_since(s, "hr", 2, on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, "");
    assert_int_equal(json_array_size(json_object_get(a.result, "items")), 0);
    answer_reset(&a);
    /* a deleted room takes its history keys with it */
    s->ops->room_del(s, "hr", on_answer, &a);
    wait_answer(&a);
    answer_reset(&a);
    assert_int_equal(raw_int(c, "EXISTS", "hs:hist:hr"), 0);
    redisFree(c);
    s->ops->destroy(s);
}

typedef struct {
    int n;
    unsigned long long offsets[64];
} order_t;

static void on_order(void *d, const char *channel, const char *payload, size_t len)
{
    order_t *o = d;
    if (len > 1 && payload[0] == '#' && o->n < 64)
        o->offsets[o->n++] = strtoull(payload + 1, NULL, 10);
}

/* Two nodes publishing at once: every line has its own offset, and a third node receives them in offset order. */
static void test_history_two_nodes(void **state)
{
    ag_store_t *a1 = new_store("ha", 5000, "ho:"), *a2 = new_store("hb", 5000, "ho:"), *rx = new_store("hc", 5000, "ho:");
    hist_bounds(a1, 100, 60000);
    hist_bounds(a2, 100, 60000);
    answer_t a = {0};
    a1->ops->room_add(a1, "two", on_answer, &a);
    wait_answer(&a);
    answer_reset(&a);
    order_t got = {0};
    rx->on_message = on_order;
    rx->on_message_data = &got;
    rx->ops->subscribe(rx, "room:two");
    int ok = 0;
    rx->ops->subscribed(rx, on_answer, &a);
    wait_answer(&a);
    answer_reset(&a);
    for (int i = 0; i < 20; i++) {
        ag_store_t *from = i % 2 == 0 ? a1 : a2;
        from->ops->history_publish(from, "two", "room:two", "cx", 2, NULL, NULL);
    }
    for (int i = 0; i < 300 && got.n < 20; i++)
        h2o_evloop_run(loop, 10);
    assert_int_equal(got.n, 20);
    for (int i = 0; i < 20; i++)
        ok += got.offsets[i] == (unsigned long long)i + 1;
    assert_int_equal(ok, 20);
    a2->ops->history_since(a2, "two", 15, on_answer, &a);
    assert_int_equal(json_array_size(json_object_get(wait_answer(&a)->result, "items")), 5);
    answer_reset(&a);
    rx->on_message = NULL;
    a1->ops->destroy(a1);
    a2->ops->destroy(a2);
    rx->ops->destroy(rx);
}

/* --- resumable connections' records: written by their owner only, claimed with the token's hash from a dead owner --- */

static void test_rconn_claim(void **state)
{
    ag_store_t *owner = new_store("rown", 300, "rc:"), *other = new_store("roth", 300, "rc:");
    redisContext *c = raw_connect();
    answer_t a = {0};
    ag_store_rconn_write_t open = {.ttl_ms = 60000, .token_hash = "aaaa", .fingerprint = "fp1"};
    owner->ops->rconn_put(owner, "conn1", &open);
    for (uint64_t n = 1; n <= 4; n++) {
        char frame[32];
        snprintf(frame, sizeof(frame), "{\"seq\":%llu}", (unsigned long long)n);
        ag_store_rconn_write_t w = {.ttl_ms = 60000,
                                    .seq = n,
                                    .floor = n > 2 ? n - 2 : 0, /* two kept */
                                    .frame = frame,
                                    .frame_len = strlen(frame),
                                    .message_id = n == 4 ? "m:4" : NULL};
        owner->ops->rconn_put(owner, "conn1", &w);
    }
    ag_store_rconn_write_t room = {.ttl_ms = 60000, .room = "r1", .epoch = "00000000000000ab", .since = 7};
    owner->ops->rconn_put(owner, "conn1", &room);
    /* another node cannot write it */
    ag_store_rconn_write_t foreign = {.ttl_ms = 60000, .room = "r2", .epoch = "01", .since = 1};
    other->ops->rconn_put(other, "conn1", &foreign);
    /* a wrong token hash, and a live owner, refuse */
    other->ops->rconn_claim(other, "conn1", "bbbb", on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, "");
    assert_true(json_is_null(a.result));
    answer_reset(&a);
    other->ops->rconn_claim(other, "conn1", "aaaa", on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, AG_STORE_RCONN_ALIVE);
    answer_reset(&a);
    long long ttl = raw_int(c, "PTTL", "rc:rconn:conn1");
    assert_true(ttl > 0 && ttl <= 60000);
    /* the owner dies: once its heartbeat expired, the record is the claimer's, as it was */
    owner->ops->destroy(owner);
    test_run_for(loop, 600);
    other->ops->rconn_claim(other, "conn1", "aaaa", on_answer, &a);
    assert_string_equal(wait_answer(&a)->err, "");
    json_t *r = a.result;
    assert_int_equal(json_integer_value(json_object_get(r, "seq")), 4);
    assert_int_equal(json_integer_value(json_object_get(r, "floor")), 2);
    assert_string_equal(json_string_value(json_object_get(r, "fingerprint")), "fp1");
    assert_string_equal(json_string_value(json_object_get(r, "node")), "rown");
    json_t *frames = json_object_get(r, "frames");
    assert_int_equal(json_array_size(frames), 2);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(frames, 0), 0)), 3);
    assert_true(json_is_null(json_array_get(json_array_get(frames, 0), 1)));
    assert_string_equal(json_string_value(json_array_get(json_array_get(frames, 1), 1)), "m:4");
    assert_string_equal(json_string_value(json_array_get(json_array_get(frames, 1), 2)), "{\"seq\":4}");
    json_t *rooms = json_object_get(r, "rooms");
    assert_int_equal(json_object_size(rooms), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(rooms, "r1"), 0)), "00000000000000ab");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(rooms, "r1"), 1)), 7);
    answer_reset(&a);
    /* the claimer owns it now: it deletes it when the connection ends */
    other->ops->rconn_del(other, "conn1");
    other->ops->rconn_claim(other, "conn1", "aaaa", on_answer, &a);
    assert_true(json_is_null(wait_answer(&a)->result));
    answer_reset(&a);
    redisFree(c);
    other->ops->destroy(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_rooms),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_pubsub),
        cmocka_unit_test(test_subscribed),
        cmocka_unit_test(test_dead_node),
        cmocka_unit_test(test_auth_select),
        cmocka_unit_test(test_command_timeout),
        cmocka_unit_test(test_redis_restart),
        cmocka_unit_test(test_node_registry_expiry),
        cmocka_unit_test(test_cache_size_without_keys),
        cmocka_unit_test(test_history_redis),
        cmocka_unit_test(test_history_two_nodes),
        cmocka_unit_test(test_rconn_claim),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
