/* One room's history ring (server/store/history.h), shared by the memory and shared stores: offsets, the three bounds,
 * a line not kept, and the dump / load of a graceful restart (a round trip, and every malformed value refused). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "common.h"
#include "store/history.h"

static uint64_t add(ag_store_hist_t *h, const char *text, size_t max_bytes, uint64_t age, uint64_t now)
{
    return ag_store_hist_append(h, strdup(text), strlen(text), max_bytes, age, now);
}

static void test_bounds(void **state)
{
    ag_store_hist_t *h = ag_store_hist_create(3);
    assert_non_null(h);
    assert_int_equal(strlen(h->epoch), 16);
    assert_int_equal(add(h, "a", 100, 0, 1000), 1);
    assert_int_equal(add(h, "b", 100, 0, 1001), 2);
    assert_int_equal(add(h, "c", 100, 0, 1002), 3);
    assert_int_equal(add(h, "d", 100, 0, 1003), 4); /* the line bound: "a" goes */
    assert_int_equal(h->n, 3);
    assert_int_equal(h->floor, 1);
    assert_string_equal(ag_store_hist_line(h, 0)->data, "b");
    assert_true(ag_store_hist_has_after(h, 1));
    assert_false(ag_store_hist_has_after(h, 0));
    assert_false(ag_store_hist_has_after(h, 5));
    assert_int_equal(add(h, "eeee", 4, 0, 1004), 5); /* the byte bound: the oldest go until 4 more fit in 4 */
    assert_int_equal(h->n, 1);
    assert_int_equal(h->bytes, 4);
    ag_store_hist_expire(h, 10, 1015); /* the age bound */
    assert_int_equal(h->n, 0);
    assert_int_equal(h->floor, 5);
    /* a line not kept still moves the offset, and nothing before it can be replayed */
    add(h, "f", 100, 0, 2000);
    assert_int_equal(ag_store_hist_append(h, NULL, 3, 100, 0, 2001), 7);
    assert_int_equal(h->n, 0);
    assert_int_equal(h->floor, 7);
    assert_int_equal(add(h, "too long", 4, 0, 2002), 8);
    assert_int_equal(h->floor, 8);
    ag_store_hist_free(h);
    ag_store_hist_free(NULL);
}

static void test_round_trip(void **state)
{
    ag_store_hist_t *h = ag_store_hist_create(4);
    for (int i = 0; i < 6; i++) {
        char t[16];
        snprintf(t, sizeof(t), "line %d", i);
        add(h, t, 1000, 0, 5000 + (uint64_t)i);
    }
    json_t *d = ag_store_hist_dump(h);
    assert_non_null(d);
    const char *err = "unset";
    ag_store_hist_t *g = ag_store_hist_load(d, 4, 1000, &err);
    assert_non_null(g);
    assert_null(err);
    assert_string_equal(g->epoch, h->epoch);
    assert_int_equal(g->last, 6);
    assert_int_equal(g->floor, 2);
    assert_int_equal(g->n, 4);
    assert_int_equal(g->bytes, h->bytes);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(ag_store_hist_line(g, i)->offset, ag_store_hist_line(h, i)->offset);
        assert_int_equal(ag_store_hist_line(g, i)->at_ms, ag_store_hist_line(h, i)->at_ms);
        assert_string_equal(ag_store_hist_line(g, i)->data, ag_store_hist_line(h, i)->data);
    }
    /* it carries on where it was */
    assert_int_equal(add(g, "next", 1000, 0, 6000), 7);
    json_t *again = ag_store_hist_dump(g);
    assert_int_equal(json_array_size(json_object_get(again, "lines")), 4);
    json_decref(again);
    /* a smaller bound than the one it was kept under: refused, not cut */
    assert_null(ag_store_hist_load(d, 3, 1000, &err));
    assert_null(ag_store_hist_load(d, 4, 10, &err));
    json_decref(d);
    ag_store_hist_free(g);
    ag_store_hist_free(h);
}

static void test_load_refuses(void **state)
{
    const char *bad[] = {
        "[]",
        "{}",
        "{\"epoch\":\"0011\",\"last\":0,\"floor\":0,\"lines\":[]}",
        "{\"epoch\":\"00112233445566GG\",\"last\":0,\"floor\":0,\"lines\":[]}",
        "{\"epoch\":\"0011223344556677\",\"last\":1,\"floor\":2,\"lines\":[]}",
        "{\"epoch\":\"0011223344556677\",\"last\":-1,\"floor\":0,\"lines\":[]}",
        "{\"epoch\":\"0011223344556677\",\"last\":2,\"floor\":0,\"lines\":[[1,0,\"a\"]]}",
        "{\"epoch\":\"0011223344556677\",\"last\":2,\"floor\":0,\"lines\":[[2,0,\"a\"],[1,0,\"b\"]]}",
        "{\"epoch\":\"0011223344556677\",\"last\":2,\"floor\":0,\"lines\":[[1,0,\"a\"],[1,0,\"b\"]]}",
        "{\"epoch\":\"0011223344556677\",\"last\":1,\"floor\":0,\"lines\":[[1,-5,\"a\"]]}",
        "{\"epoch\":\"0011223344556677\",\"last\":1,\"floor\":0,\"lines\":[[1,0,7]]}",
        "{\"epoch\":\"0011223344556677\",\"last\":1,\"floor\":0,\"lines\":[[1,0,\"a\",1]]}",
        "{\"epoch\":\"0011223344556677\",\"last\":1,\"floor\":0,\"lines\":[{\"offset\":1}]}",
        "{\"epoch\":\"0011223344556677\",\"last\":1,\"floor\":0,\"lines\":{}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_error_t je;
        json_t *v = json_loads(bad[i], 0, &je);
        assert_non_null(v);
        const char *err = NULL;
        if (ag_store_hist_load(v, 4, 1000, &err) != NULL)
            fail_msg("loaded %s", bad[i]);
        assert_non_null(err);
        json_decref(v);
    }
    /* a line with a NUL in it */
    json_t *v = json_pack("{s:s,s:i,s:i,s:[[i,i,s%]]}", "epoch", "0011223344556677", "last", 1, "floor", 0, "lines", 1, 0, "a\0b",
                          (size_t)3);
    const char *err = NULL;
    assert_null(ag_store_hist_load(v, 4, 1000, &err));
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_load_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
