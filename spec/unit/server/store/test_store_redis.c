/*
 * The shared store suite (test_store.c) on the Redis store, against a redis-server this executable starts itself on
 * a free port (so ctest needs no setup). test_store.c is compiled here again with the Redis backend its weak hook
 * looks for; it runs its memory pass too, which is cheap.
 */
#include "test_store.c"
#include "redis_helper.h"
#include "store/redis_adapter.h"

static test_redis_t suite_redis;
static h2o_evloop_t *suite_loop;
static char suite_url[128];
static int suite_seq;

static ag_store_t *redis_create(void *ctx)
{
    /* a fresh key prefix per test: the suite expects an empty store each time */
    char prefix[32], node[32], err[256];
    snprintf(prefix, sizeof(prefix), "suite%d:", ++suite_seq);
    snprintf(node, sizeof(node), "suite-node-%d", suite_seq);
    ag_store_redis_options_t o = {.url = suite_url, .prefix = prefix, .node_id = node};
    ag_store_t *s = ag_store_redis_create(suite_loop, &o, err, sizeof(err));
    if (s == NULL)
        return NULL;
    for (int i = 0; i < 300 && !ag_redis_is_up(ag__store_redis_cmd(s)); i++)
        h2o_evloop_run(suite_loop, 10);
    return s;
}

static void redis_pump(void *ctx)
{
    h2o_evloop_run(suite_loop, 10);
}

static const store_backend_t redis_backend = {"redis", redis_create, redis_pump, NULL};

const store_backend_t *ag__store_redis_test_backend(const char *url)
{
    snprintf(suite_url, sizeof(suite_url), "%s", url);
    if (suite_loop == NULL)
        suite_loop = h2o_evloop_create();
    return &redis_backend;
}

/* before test_store's main reads AG_TEST_REDIS_URL */
__attribute__((constructor)) static void start_redis(void)
{
    if (getenv("AG_TEST_REDIS_URL") != NULL)
        return;
    if (test_redis_start(&suite_redis) == 0)
        setenv("AG_TEST_REDIS_URL", suite_redis.url, 1);
}

__attribute__((destructor)) static void stop_redis(void)
{
    test_redis_teardown(&suite_redis);
}
