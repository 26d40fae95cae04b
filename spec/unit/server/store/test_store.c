/*
 * The store suite: every operation of ag_store_ops_t, written against the interface only, so each store runs the same
 * tests. It runs on the memory store always, and on Redis when AG_TEST_REDIS_URL is set and a Redis backend is linked
 * (see store_suite.h: the weak hook ag__store_redis_test_backend). The callbacks of an asynchronous store arrive
 * later, so the suite calls the backend's pump() until the answer came.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <h2o.h>
#include "common.h"
#include "store_suite.h"

/* The memory store as a node runs it: on a loop, which delivers what is published. */
static ag_store_t *memory_create(void *ctx)
{
    return ag_store_memory_create(ctx);
}

static void memory_pump(void *ctx)
{
    h2o_evloop_run(ctx, 10);
}

static store_backend_t memory_backend = {"memory", memory_create, memory_pump, NULL};

/* The shared memory store (general.workers > 1) through one worker's handle: the handle holds the data's only
 * reference, so each test starts empty. */
static ag_store_t *shared_create(void *ctx)
{
    ag_store_shared_t *sh = ag_store_shared_create();
    ag_store_t *h = sh != NULL ? ag_store_shared_attach(sh, ctx, "worker-0") : NULL;
    ag_store_shared_release(sh);
    return h;
}

static store_backend_t shared_backend = {"shared", shared_create, memory_pump, NULL};
static const store_backend_t *backend;

/* One answer, kept until the next call. */
typedef struct {
    int done;
    char err[128];
    int has_err;
    json_t *result;
} answer_t;

static void on_answer(void *data, const char *err, json_t *result)
{
    answer_t *a = data;
    a->done++;
    a->has_err = err != NULL;
    snprintf(a->err, sizeof(a->err), "%s", err != NULL ? err : "");
    json_decref(a->result);
    a->result = result != NULL ? json_incref(result) : NULL;
}

static void wait_answer(answer_t *a)
{
    for (int i = 0; !a->done && i < 500; i++) {
        if (backend->pump == NULL)
            break;
        backend->pump(backend->ctx);
    }
    assert_int_equal(a->done, 1);
}

#define CALL(a, expr)                                                                                                              \
    do {                                                                                                                           \
        json_decref((a)->result);                                                                                                  \
        memset((a), 0, sizeof(*(a)));                                                                                              \
        expr;                                                                                                                      \
        wait_answer(a);                                                                                                            \
    } while (0)

static ag_store_t *st;
static char prefix[64]; /* unique names, so a shared Redis may hold other tests' data */

static const char *name(const char *base)
{
    static char buf[4][128];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s%s", prefix, base);
    return buf[i];
}

static int setup(void **state)
{
    st = backend->create(backend->ctx);
    assert_non_null(st);
    unsigned char r[4];
    ag_random_bytes(r, sizeof(r));
    snprintf(prefix, sizeof(prefix), "t%02x%02x%02x%02x:", r[0], r[1], r[2], r[3]);
    return 0;
}

static int teardown(void **state)
{
    st->ops->destroy(st);
    return 0;
}

static void test_rooms(void **state)
{
    answer_t a = {0};
    CALL(&a, st->ops->room_exists(st, name("room"), on_answer, &a));
    assert_true(json_is_false(a.result));
    CALL(&a, st->ops->room_add(st, name("room"), on_answer, &a));
    assert_false(a.has_err);
    assert_true(json_is_true(a.result));
    CALL(&a, st->ops->room_add(st, name("room"), on_answer, &a));
    assert_string_equal(a.err, "room exists");
    CALL(&a, st->ops->room_exists(st, name("room"), on_answer, &a));
    assert_true(json_is_true(a.result));
    CALL(&a, st->ops->room_list(st, on_answer, &a));
    int found = 0;
    for (size_t i = 0; i < json_array_size(a.result); i++)
        found += strcmp(json_string_value(json_array_get(a.result, i)), name("room")) == 0;
    assert_int_equal(found, 1);
    CALL(&a, st->ops->room_del(st, name("room"), on_answer, &a));
    assert_true(json_is_true(a.result));
    CALL(&a, st->ops->room_del(st, name("room"), on_answer, &a));
    assert_string_equal(a.err, "room does not exist");
    CALL(&a, st->ops->room_exists(st, name("room"), on_answer, &a));
    assert_true(json_is_false(a.result));
    json_decref(a.result);
}

static void test_room_bound(void **state)
{
    answer_t a = {0};
    CALL(&a, st->ops->room_list(st, on_answer, &a));
    size_t before = json_array_size(a.result); /* a shared Redis may hold other rooms: the bound counts them all */
    st->max_rooms = before + 2;
    CALL(&a, st->ops->room_add(st, name("b1"), on_answer, &a));
    assert_false(a.has_err);
    CALL(&a, st->ops->room_add(st, name("b2"), on_answer, &a));
    assert_false(a.has_err);
    CALL(&a, st->ops->room_add(st, name("b3"), on_answer, &a));
    assert_string_equal(a.err, AG_STORE_ERR_TOO_MANY_ROOMS);
    CALL(&a, st->ops->room_exists(st, name("b3"), on_answer, &a));
    assert_true(json_is_false(a.result));
    CALL(&a, st->ops->room_add(st, name("b1"), on_answer, &a));
    assert_string_equal(a.err, "room exists"); /* an existing room is not a new one */
    CALL(&a, st->ops->room_del(st, name("b2"), on_answer, &a));
    CALL(&a, st->ops->room_add(st, name("b3"), on_answer, &a));
    assert_false(a.has_err);
    st->max_rooms = 0;
    CALL(&a, st->ops->room_add(st, name("b4"), on_answer, &a));
    assert_false(a.has_err);
    for (const char *const *r = (const char *const[]){"b1", "b3", "b4", NULL}; *r != NULL; r++)
        CALL(&a, st->ops->room_del(st, name(*r), on_answer, &a));
    json_decref(a.result);
}

static void test_members(void **state)
{
    answer_t a = {0};
    json_t *d1 = json_pack("{s:s,s:i,s:s}", "id", "c1", "joinedAt", 1000, "node", "n1");
    json_t *d2 = json_pack("{s:s,s:i,s:s}", "id", "c2", "joinedAt", 2000, "node", "n2");
    CALL(&a, st->ops->member_add(st, name("m"), "c1", d1, on_answer, &a));
    assert_string_equal(a.err, "room does not exist");
    CALL(&a, st->ops->members(st, name("m"), on_answer, &a));
    assert_string_equal(a.err, "room does not exist");
    CALL(&a, st->ops->room_add(st, name("m"), on_answer, &a));
    CALL(&a, st->ops->members(st, name("m"), on_answer, &a));
    assert_int_equal(json_object_size(a.result), 0);
    CALL(&a, st->ops->member_add(st, name("m"), "c1", d1, on_answer, &a));
    assert_true(json_is_true(a.result));
    CALL(&a, st->ops->member_add(st, name("m"), "c2", d2, on_answer, &a));
    CALL(&a, st->ops->members(st, name("m"), on_answer, &a));
    assert_int_equal(json_object_size(a.result), 2);
    assert_true(json_equal(json_object_get(a.result, "c1"), d1));
    assert_true(json_equal(json_object_get(a.result, "c2"), d2));
    CALL(&a, st->ops->member_del(st, name("m"), "c1", on_answer, &a));
    assert_true(json_is_true(a.result));
    CALL(&a, st->ops->member_del(st, name("m"), "c1", on_answer, &a));
    assert_true(json_is_false(a.result));
    CALL(&a, st->ops->members(st, name("m"), on_answer, &a));
    assert_int_equal(json_object_size(a.result), 1);
    /* deleting the room removes its members */
    CALL(&a, st->ops->room_del(st, name("m"), on_answer, &a));
    CALL(&a, st->ops->room_add(st, name("m"), on_answer, &a));
    CALL(&a, st->ops->members(st, name("m"), on_answer, &a));
    assert_int_equal(json_object_size(a.result), 0);
    CALL(&a, st->ops->room_del(st, name("m"), on_answer, &a));
    json_decref(d1);
    json_decref(d2);
    json_decref(a.result);
}

static void test_cache(void **state)
{
    answer_t a = {0};
    CALL(&a, st->ops->cache_size(st, on_answer, &a));
    json_int_t size0 = json_integer_value(a.result);
    json_t *v = json_pack("{s:[i,s]}", "x", 1, "two");
    uint64_t now = ag_now_ms();
    CALL(&a, st->ops->cache_save(st, name("k"), v, now + 60000, on_answer, &a));
    assert_true(json_is_true(a.result));
    CALL(&a, st->ops->cache_save(st, name("forever"), v, 0, on_answer, &a));
    CALL(&a, st->ops->cache_size(st, on_answer, &a));
    assert_int_equal(json_integer_value(a.result), size0 + 2);
    CALL(&a, st->ops->cache_load(st, name("k"), on_answer, &a));
    assert_string_equal(json_string_value(json_object_get(a.result, "key")), name("k"));
    assert_true(json_equal(json_object_get(a.result, "value"), v));
    assert_int_equal(json_integer_value(json_object_get(a.result, "expireTimestamp")), (json_int_t)(now + 60000));
    json_int_t created = json_integer_value(json_object_get(a.result, "createdAt"));
    assert_true(created >= (json_int_t)now - 1000 && created <= (json_int_t)now + 5000);
    assert_true(json_integer_value(json_object_get(a.result, "readAt")) >= created);
    CALL(&a, st->ops->cache_load(st, name("forever"), on_answer, &a));
    assert_true(json_is_null(json_object_get(a.result, "expireTimestamp")));
    CALL(&a, st->ops->cache_load(st, name("missing"), on_answer, &a));
    assert_true(json_is_null(a.result));
    CALL(&a, st->ops->cache_del(st, name("k"), on_answer, &a));
    assert_true(json_is_true(a.result));
    CALL(&a, st->ops->cache_del(st, name("k"), on_answer, &a));
    assert_true(json_is_false(a.result));
    CALL(&a, st->ops->cache_load(st, name("k"), on_answer, &a));
    assert_true(json_is_null(a.result));
    CALL(&a, st->ops->cache_del(st, name("forever"), on_answer, &a));
    /* expiry */
    /* long enough that a loaded machine still reads it before it expires */
    CALL(&a, st->ops->cache_save(st, name("short"), v, ag_now_ms() + 1000, on_answer, &a));
    CALL(&a, st->ops->cache_load(st, name("short"), on_answer, &a));
    assert_false(json_is_null(a.result));
    struct timespec ts = {1, 200 * 1000000};
    nanosleep(&ts, NULL);
    CALL(&a, st->ops->cache_load(st, name("short"), on_answer, &a));
    assert_true(json_is_null(a.result));
    CALL(&a, st->ops->cache_size(st, on_answer, &a));
    assert_int_equal(json_integer_value(a.result), size0);
    json_decref(v);
    json_decref(a.result);
}

typedef struct {
    int count;
    char channel[128];
    char payload[128];
} inbox_t;

static void on_message(void *data, const char *channel, const char *payload, size_t len)
{
    inbox_t *in = data;
    in->count++;
    snprintf(in->channel, sizeof(in->channel), "%s", channel);
    snprintf(in->payload, sizeof(in->payload), "%.*s", (int)len, payload);
}

static void wait_messages(inbox_t *in, int n)
{
    for (int i = 0; in->count < n && i < 300 && backend->pump != NULL; i++)
        backend->pump(backend->ctx);
}

static void test_pubsub(void **state)
{
    inbox_t in = {0};
    st->on_message = on_message;
    st->on_message_data = &in;
    answer_t a = {0};
    char ch[128];
    snprintf(ch, sizeof(ch), "%s", name("chan"));
    CALL(&a, st->ops->publish(st, ch, "before", 6, on_answer, &a));
    assert_false(a.has_err);
    st->ops->subscribe(st, ch);
    wait_messages(&in, 1); /* a subscription may take a round trip */
    CALL(&a, st->ops->publish(st, ch, "c\0hello", 7, on_answer, &a));
    wait_messages(&in, 1);
    assert_int_equal(in.count, 1);
    assert_string_equal(in.channel, ch);
    assert_int_equal(in.payload[0], 'c');
    st->ops->publish(st, ch, "second", 6, NULL, NULL); /* cb may be NULL */
    wait_messages(&in, 2);
    assert_int_equal(in.count, 2);
    assert_string_equal(in.payload, "second");
    st->ops->unsubscribe(st, ch);
    CALL(&a, st->ops->publish(st, ch, "after", 5, on_answer, &a));
    wait_messages(&in, 3);
    assert_int_equal(in.count, 2);
    json_decref(a.result);
    st->on_message = NULL;
}

/* A published message reaches the subscribed node after publish returned, on every store: a caller that publishes and
 * then replies (the say verb) sends its reply first, as actionhero does. */
static void test_publish_delivers_later(void **state)
{
    inbox_t in = {0};
    st->on_message = on_message;
    st->on_message_data = &in;
    char ch[128];
    snprintf(ch, sizeof(ch), "%s", name("later"));
    st->ops->subscribe(st, ch);
    for (int i = 0; i < 50 && in.count == 0; i++) {
        st->ops->publish(st, ch, "probe", 5, NULL, NULL);
        wait_messages(&in, 1);
    }
    assert_true(in.count > 0);
    for (int i = 0; i < 20; i++) /* the probes still in flight */
        backend->pump(backend->ctx);
    int before = in.count;
    st->ops->publish(st, ch, "one", 3, NULL, NULL);
    st->ops->publish(st, ch, "two", 3, NULL, NULL);
    assert_int_equal(in.count, before);
    wait_messages(&in, before + 2);
    assert_int_equal(in.count, before + 2);
    assert_string_equal(in.payload, "two");
    /* left before delivery: not delivered */
    st->ops->publish(st, ch, "gone", 4, NULL, NULL);
    st->ops->unsubscribe(st, ch);
    wait_messages(&in, before + 3);
    if (strcmp(backend->name, "memory") == 0 || strcmp(backend->name, "shared") == 0)
        assert_int_equal(in.count, before + 2);
    st->on_message = NULL;
}

/* Reserved channels ("_" + name) belong to the node layer: on_node_event hears them, the session layer does not. */
static void test_node_events(void **state)
{
    inbox_t sess = {0}, node = {0};
    st->on_message = on_message;
    st->on_message_data = &sess;
    st->on_node_event = on_message;
    st->on_node_event_data = &node;
    char ch[128];
    snprintf(ch, sizeof(ch), "_%s", name("nodes"));
    st->ops->subscribe(st, ch);
    /* a subscription may take a round trip: publish until it is heard */
    for (int i = 0; i < 50 && node.count == 0; i++) {
        st->ops->publish(st, ch, "probe", 5, NULL, NULL);
        wait_messages(&node, 1);
    }
    assert_true(node.count > 0);
    assert_string_equal(node.channel, ch);
    assert_string_equal(node.payload, "probe");
    assert_int_equal(sess.count, 0);
    st->ops->unsubscribe(st, ch);
    st->on_message = NULL;
    st->on_node_event = NULL;
}

/* How many entries of a node_list answer have this address (each one also has a non-empty id). */
static int count_address(const json_t *list, const char *address)
{
    assert_true(json_is_array(list));
    int n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        assert_true(json_string_length(json_object_get(e, "id")) > 0);
        n += strcmp(json_string_value(json_object_get(e, "address")), address) == 0;
    }
    return n;
}

/* The node registry: a store without one (memory) says so; a store with one answers what nodes registered, only that. */
static void test_node_registry(void **state)
{
    answer_t a = {0};
    char tag[32];
    snprintf(tag, sizeof(tag), "%.8s", name("") + 1); /* unique per run: the prefix's random hex */
    ag_store_node_t self = {.tag = tag, .address = "", .token = "tok0123456789abcdefghij"};
    int ret = st->ops->node_register(st, &self);
    if (ret == AG_ENOENT) {
        CALL(&a, st->ops->node_lookup(st, tag, on_answer, &a));
        assert_string_equal(a.err, AG_STORE_NOT_CLUSTERED);
        assert_null(a.result);
        CALL(&a, st->ops->node_list(st, on_answer, &a));
        assert_string_equal(a.err, AG_STORE_NOT_CLUSTERED);
        assert_null(a.result);
        st->ops->node_leave(st);
        json_decref(a.result);
        return;
    }
    assert_int_equal(ret, 0);
    /* no address yet: nothing to forward to */
    CALL(&a, st->ops->node_lookup(st, tag, on_answer, &a));
    assert_false(a.has_err);
    assert_true(json_is_null(a.result));
    self.address = "127.0.0.1:4242";
    assert_int_equal(st->ops->node_register(st, &self), 0);
    json_t *got = NULL;
    for (int i = 0; i < 50 && (got == NULL || json_is_null(got)); i++) {
        CALL(&a, st->ops->node_lookup(st, tag, on_answer, &a));
        got = a.result;
    }
    assert_string_equal(json_string_value(json_object_get(got, "address")), "127.0.0.1:4242");
    assert_string_equal(json_string_value(json_object_get(got, "token")), "tok0123456789abcdefghij");
    /* the live nodes: this one, with the address it registered */
    CALL(&a, st->ops->node_list(st, on_answer, &a));
    assert_false(a.has_err);
    assert_int_equal(count_address(a.result, "127.0.0.1:4242"), 1);
    /* tags nobody registered, whatever they look like */
    const char *others[] = {"ZZZZZZZZ", "", "*", "a b?[x]", "../../etc"};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        CALL(&a, st->ops->node_lookup(st, others[i], on_answer, &a));
        assert_false(a.has_err);
        assert_true(json_is_null(a.result));
    }
    char long_tag[100];
    memset(long_tag, 'x', sizeof(long_tag) - 1);
    long_tag[sizeof(long_tag) - 1] = '\0';
    ag_store_node_t bad = {.tag = long_tag, .address = "127.0.0.1:1", .token = "t"};
    assert_int_equal(st->ops->node_register(st, &bad), AG_EINVAL);
    /* a clean leave removes the registration at once */
    st->ops->node_leave(st);
    CALL(&a, st->ops->node_lookup(st, tag, on_answer, &a));
    assert_false(a.has_err);
    assert_true(json_is_null(a.result));
    CALL(&a, st->ops->node_list(st, on_answer, &a));
    assert_false(a.has_err);
    assert_int_equal(count_address(a.result, "127.0.0.1:4242"), 0);
    json_decref(a.result);
}

/* Room history (resume): offsets 1, 2, ... per room, the published message carries its offset, what is asked after an
 * offset comes back in order, and what the bounds dropped is "gone", never skipped. */
static void test_history(void **state)
{
    if (st->ops->history_publish == NULL)
        skip(); /* a store without history: its connections are not resumable */
    inbox_t in = {0};
    st->on_message = on_message;
    st->on_message_data = &in;
    st->history_lines = 3;
    st->history_bytes = 1000;
    st->history_ms = 60000;
    answer_t a = {0};
    char room[128], ch[160];
    snprintf(room, sizeof(room), "%s", name("hist"));
    snprintf(ch, sizeof(ch), "room:%s", room);
    CALL(&a, st->ops->history_since(st, room, AG_STORE_HISTORY_TAIL, on_answer, &a));
    assert_string_equal(a.err, AG_STORE_HISTORY_GONE); /* no such room */
    CALL(&a, st->ops->room_add(st, room, on_answer, &a));
    st->ops->subscribe(st, ch);
    CALL(&a, st->ops->history_since(st, room, AG_STORE_HISTORY_TAIL, on_answer, &a));
    assert_false(a.has_err);
    assert_int_equal(json_integer_value(json_object_get(a.result, "last")), 0);
    char epoch[32];
    snprintf(epoch, sizeof(epoch), "%s", json_string_value(json_object_get(a.result, "epoch")));
    assert_true(strlen(epoch) > 0);
    for (int i = 1; i <= 5; i++) {
        char line[16];
        int n = snprintf(line, sizeof(line), "cline%d", i);
        CALL(&a, st->ops->history_publish(st, room, ch, line, (size_t)n, on_answer, &a));
        assert_int_equal(json_integer_value(json_object_get(a.result, "offset")), i);
        assert_string_equal(json_string_value(json_object_get(a.result, "epoch")), epoch);
        wait_messages(&in, i);
        char want[32];
        snprintf(want, sizeof(want), "#%d:cline%d", i, i);
        assert_string_equal(in.payload, want);
    }
    /* three kept: 3, 4, 5 */
    CALL(&a, st->ops->history_since(st, room, 2, on_answer, &a));
    assert_false(a.has_err);
    json_t *items = json_object_get(a.result, "items");
    assert_int_equal(json_array_size(items), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(json_integer_value(json_array_get(json_array_get(items, i), 0)), 3 + (int)i);
        char want[16];
        snprintf(want, sizeof(want), "cline%d", 3 + (int)i);
        assert_string_equal(json_string_value(json_array_get(json_array_get(items, i), 1)), want);
    }
    CALL(&a, st->ops->history_since(st, room, 4, on_answer, &a));
    assert_int_equal(json_array_size(json_object_get(a.result, "items")), 1);
    CALL(&a, st->ops->history_since(st, room, 5, on_answer, &a));
    assert_false(a.has_err);
    assert_int_equal(json_array_size(json_object_get(a.result, "items")), 0);
    CALL(&a, st->ops->history_since(st, room, 1, on_answer, &a)); /* line 2 was dropped */
    assert_string_equal(a.err, AG_STORE_HISTORY_GONE);
    CALL(&a, st->ops->history_since(st, room, 9, on_answer, &a)); /* never given */
    assert_string_equal(a.err, AG_STORE_HISTORY_GONE);
    /* the byte bound: a line over it leaves nothing to replay across it */
    char big[1200];
    memset(big, 'c', sizeof(big));
    CALL(&a, st->ops->history_publish(st, room, ch, big, sizeof(big), on_answer, &a));
    CALL(&a, st->ops->history_since(st, room, 5, on_answer, &a));
    assert_string_equal(a.err, AG_STORE_HISTORY_GONE);
    /* a room made again is another epoch */
    CALL(&a, st->ops->room_del(st, room, on_answer, &a));
    CALL(&a, st->ops->room_add(st, room, on_answer, &a));
    CALL(&a, st->ops->history_since(st, room, AG_STORE_HISTORY_TAIL, on_answer, &a));
    assert_false(a.has_err);
    assert_string_not_equal(json_string_value(json_object_get(a.result, "epoch")), epoch);
    st->ops->unsubscribe(st, ch);
    json_decref(a.result);
    st->on_message = NULL;
}

static int run_suite(const store_backend_t *b)
{
    backend = b;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rooms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_room_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pubsub, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_delivers_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_registry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history, setup, teardown),
    };
    return _cmocka_run_group_tests(b->name, tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
}

/* Two workers' handles on one shared store, each on a loop of its own: what one writes the other reads, a message
 * published by either reaches both in one order, the registry lists both and leaving removes one worker's members. */
typedef struct {
    int count;
    char seq[64][8];
} order_t;

static void on_ordered(void *data, const char *channel, const char *payload, size_t len)
{
    order_t *o = data;
    (void)channel;
    if (o->count < 64)
        snprintf(o->seq[o->count++], sizeof(o->seq[0]), "%.*s", (int)len, payload);
}

static void test_shared_two_workers(void **state)
{
    h2o_evloop_t *l0 = h2o_evloop_create(), *l1 = h2o_evloop_create();
    ag_store_shared_t *sh = ag_store_shared_create();
    ag_store_t *a = ag_store_shared_attach(sh, l0, "w0"), *b = ag_store_shared_attach(sh, l1, "w1");
    ag_store_shared_release(sh);
    assert_non_null(a);
    assert_non_null(b);
    answer_t r = {0};
    const store_backend_t *saved = backend;
    backend = &(store_backend_t){"shared", NULL, NULL, NULL}; /* answers come before the calls return */
    /* cache and rooms: one set of data */
    json_t *v = json_pack("{s:s}", "from", "a");
    CALL(&r, a->ops->cache_save(a, "k", v, 0, on_answer, &r));
    CALL(&r, b->ops->cache_load(b, "k", on_answer, &r));
    assert_true(json_equal(json_object_get(r.result, "value"), v));
    CALL(&r, b->ops->cache_size(b, on_answer, &r));
    assert_int_equal(json_integer_value(r.result), 1);
    CALL(&r, a->ops->room_add(a, "room", on_answer, &r));
    CALL(&r, b->ops->room_add(b, "room", on_answer, &r));
    assert_string_equal(r.err, "room exists");
    json_t *d0 = json_pack("{s:s,s:s}", "id", "c0", "node", "w0"), *d1 = json_pack("{s:s,s:s}", "id", "c1", "node", "w1");
    CALL(&r, a->ops->member_add(a, "room", "c0", d0, on_answer, &r));
    CALL(&r, b->ops->member_add(b, "room", "c1", d1, on_answer, &r));
    CALL(&r, a->ops->members(a, "room", on_answer, &r));
    assert_int_equal(json_object_size(r.result), 2);
    /* pub/sub: both publish in turn, both hear everything in the same order */
    order_t o0 = {0}, o1 = {0};
    a->on_message = b->on_message = on_ordered;
    a->on_message_data = &o0;
    b->on_message_data = &o1;
    a->ops->subscribe(a, "room:room");
    b->ops->subscribe(b, "room:room");
    char msg[8];
    for (int i = 0; i < 20; i++) {
        ag_store_t *from = i % 3 == 0 ? b : a;
        snprintf(msg, sizeof(msg), "m%d", i);
        from->ops->publish(from, "room:room", msg, strlen(msg), NULL, NULL);
    }
    assert_int_equal(o0.count + o1.count, 0); /* never inside publish */
    for (int i = 0; i < 100 && (o0.count < 20 || o1.count < 20); i++) {
        h2o_evloop_run(l0, 1);
        h2o_evloop_run(l1, 1);
    }
    assert_int_equal(o0.count, 20);
    assert_int_equal(o1.count, 20);
    for (int i = 0; i < 20; i++) {
        snprintf(msg, sizeof(msg), "m%d", i);
        assert_string_equal(o0.seq[i], msg);
        assert_string_equal(o1.seq[i], msg);
    }
    /* the registry: both workers, each found by its tag */
    ag_store_node_t n0 = {.tag = "TAG0", .address = "127.0.0.1:1000", .token = "t0"};
    ag_store_node_t n1 = {.tag = "TAG1", .address = "127.0.0.1:1001", .token = "t1"};
    assert_int_equal(a->ops->node_register(a, &n0), 0);
    assert_int_equal(b->ops->node_register(b, &n1), 0);
    CALL(&r, a->ops->node_lookup(a, "TAG1", on_answer, &r));
    assert_string_equal(json_string_value(json_object_get(r.result, "address")), "127.0.0.1:1001");
    CALL(&r, b->ops->node_list(b, on_answer, &r));
    assert_int_equal(json_array_size(r.result), 2);
    /* a worker that leaves takes its registration and its members with it */
    b->ops->node_leave(b);
    CALL(&r, a->ops->node_lookup(a, "TAG1", on_answer, &r));
    assert_true(json_is_null(r.result));
    CALL(&r, a->ops->members(a, "room", on_answer, &r));
    assert_int_equal(json_object_size(r.result), 1);
    assert_non_null(json_object_get(r.result, "c0"));
    b->ops->destroy(b);
    /* what is published after a worker went reaches the others */
    a->ops->publish(a, "room:room", "last", 4, NULL, NULL);
    for (int i = 0; i < 100 && o0.count < 21; i++)
        h2o_evloop_run(l0, 1);
    assert_string_equal(o0.seq[20], "last");
    a->ops->destroy(a);
    backend = saved;
    json_decref(v);
    json_decref(d0);
    json_decref(d1);
    json_decref(r.result);
    h2o_evloop_destroy(l0);
    h2o_evloop_destroy(l1);
}

/* Room history with two workers: lines published from both get offsets in the one order both workers deliver, and
 * history_since through either handle gives the same lines under those offsets. */
static void test_shared_two_workers_history(void **state)
{
    h2o_evloop_t *l0 = h2o_evloop_create(), *l1 = h2o_evloop_create();
    ag_store_shared_t *sh = ag_store_shared_create();
    ag_store_t *a = ag_store_shared_attach(sh, l0, "w0"), *b = ag_store_shared_attach(sh, l1, "w1");
    ag_store_shared_release(sh);
    assert_non_null(a);
    assert_non_null(b);
    ag_store_t *both[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        both[i]->history_lines = 16;
        both[i]->history_bytes = 4096;
        both[i]->history_ms = 60000;
    }
    answer_t r = {0};
    const store_backend_t *saved = backend;
    backend = &(store_backend_t){"shared", NULL, NULL, NULL};
    order_t o0 = {0}, o1 = {0};
    a->on_message = b->on_message = on_ordered;
    a->on_message_data = &o0;
    b->on_message_data = &o1;
    CALL(&r, a->ops->room_add(a, "hroom", on_answer, &r));
    a->ops->subscribe(a, "room:hroom");
    b->ops->subscribe(b, "room:hroom");
    char epoch[32] = "";
    for (int i = 0; i < 12; i++) {
        ag_store_t *from = i % 3 == 0 ? b : a;
        char msg[8];
        snprintf(msg, sizeof(msg), "h%d", i);
        CALL(&r, from->ops->history_publish(from, "hroom", "room:hroom", msg, strlen(msg), on_answer, &r));
        assert_int_equal(json_integer_value(json_object_get(r.result, "offset")), i + 1);
        if (i == 0)
            snprintf(epoch, sizeof(epoch), "%s", json_string_value(json_object_get(r.result, "epoch")));
        assert_string_equal(json_string_value(json_object_get(r.result, "epoch")), epoch);
    }
    assert_int_equal(o0.count + o1.count, 0); /* never inside the call */
    for (int i = 0; i < 100 && (o0.count < 12 || o1.count < 12); i++) {
        h2o_evloop_run(l0, 1);
        h2o_evloop_run(l1, 1);
    }
    assert_int_equal(o0.count, 12);
    assert_int_equal(o1.count, 12);
    for (int i = 0; i < 12; i++) {
        char want[16];
        snprintf(want, sizeof(want), "#%d:h%d", i + 1, i);
        assert_string_equal(o0.seq[i], want);
        assert_string_equal(o1.seq[i], want);
    }
    /* either worker reads the same lines under the same offsets */
    for (int w = 0; w < 2; w++) {
        CALL(&r, both[w]->ops->history_since(both[w], "hroom", 4, on_answer, &r));
        assert_false(r.has_err);
        assert_string_equal(json_string_value(json_object_get(r.result, "epoch")), epoch);
        assert_int_equal(json_integer_value(json_object_get(r.result, "last")), 12);
        json_t *items = json_object_get(r.result, "items");
        assert_int_equal(json_array_size(items), 8);
        for (int i = 0; i < 8; i++) {
            char want[8];
            snprintf(want, sizeof(want), "h%d", i + 4);
            assert_int_equal(json_integer_value(json_array_get(json_array_get(items, (size_t)i), 0)), i + 5);
            assert_string_equal(json_string_value(json_array_get(json_array_get(items, (size_t)i), 1)), want);
        }
    }
    /* the room deleted by one worker and made again by the other: a new epoch for both */
    CALL(&r, b->ops->room_del(b, "hroom", on_answer, &r));
    CALL(&r, a->ops->history_since(a, "hroom", 4, on_answer, &r));
    assert_string_equal(r.err, AG_STORE_HISTORY_GONE);
    CALL(&r, b->ops->room_add(b, "hroom", on_answer, &r));
    CALL(&r, a->ops->history_since(a, "hroom", AG_STORE_HISTORY_TAIL, on_answer, &r));
    assert_false(r.has_err);
    assert_int_equal(json_integer_value(json_object_get(r.result, "last")), 0);
    assert_string_not_equal(json_string_value(json_object_get(r.result, "epoch")), epoch);
    a->ops->destroy(a);
    b->ops->destroy(b);
    backend = saved;
    json_decref(r.result);
    h2o_evloop_destroy(l0);
    h2o_evloop_destroy(l1);
}

int main(void)
{
    memory_backend.ctx = h2o_evloop_create();
    int failed = run_suite(&memory_backend);
    shared_backend.ctx = memory_backend.ctx;
    failed += run_suite(&shared_backend);
    const struct CMUnitTest shared_tests[] = {cmocka_unit_test(test_shared_two_workers),
                                              cmocka_unit_test(test_shared_two_workers_history)};
    failed += cmocka_run_group_tests_name("shared, two workers", shared_tests, NULL, NULL);
    const char *url = getenv("AG_TEST_REDIS_URL");
    if (url != NULL && url[0] != '\0' && ag__store_redis_test_backend != NULL) {
        const store_backend_t *redis = ag__store_redis_test_backend(url);
        if (redis == NULL)
            fail_msg("AG_TEST_REDIS_URL=%s: the Redis store did not start", url);
        failed += run_suite(redis);
    }
    h2o_evloop_destroy(memory_backend.ctx);
    return failed;
}
