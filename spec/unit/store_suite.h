/*
 * How another store joins the shared store suite (spec/unit/server/store/test_store.c).
 *
 * Define ag__store_redis_test_backend() in any file linked into test_store (e.g. the Redis store's module, or a
 * spec/unit helper): return a backend whose create() makes a store connected to url and whose pump() runs that store's
 * event loop for up to ~10 ms. test_store then runs every test against it too when AG_TEST_REDIS_URL is set.
 */
#ifndef AG_STORE_SUITE_H
#define AG_STORE_SUITE_H

#include "store/store.h"

typedef struct st_store_backend_t {
    const char *name;
    ag_store_t *(*create)(void *ctx);
    /* Runs the backend's I/O for a while (at most ~10 ms); NULL for stores that answer at once. */
    void (*pump)(void *ctx);
    void *ctx;
} store_backend_t;

/* Weak: absent until a Redis store provides it. */
const store_backend_t *ag__store_redis_test_backend(const char *url) __attribute__((weak));

#endif
