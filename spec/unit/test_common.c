/* server/common.c: ids, number and date formatting, the string map. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

static void test_uuid4_shape(void **state)
{
    char a[37], b[37];
    ag_uuid4(a);
    ag_uuid4(b);
    assert_int_equal(strlen(a), 36);
    assert_true(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));
    assert_string_not_equal(a, b);
}

static void test_format_double_like_javascript(void **state)
{
    char buf[32];
    ag_format_double(0.1, buf);
    assert_string_equal(buf, "0.1");
    ag_format_double(0.4440898438058718, buf);
    assert_string_equal(buf, "0.4440898438058718");
    ag_format_double(42, buf);
    assert_string_equal(buf, "42");
    ag_format_double(-1.5, buf);
    assert_string_equal(buf, "-1.5");
}

static void test_iso8601(void **state)
{
    char buf[32];
    ag_iso8601(1795318591111ull, buf);
    assert_string_equal(buf, "2026-11-22T03:36:31.111Z");
    ag_iso8601(0, buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
}

static void test_random_double_range(void **state)
{
    for (int i = 0; i < 1000; i++) {
        double d = ag_random_double();
        assert_true(d >= 0 && d < 1);
    }
}

static void test_map_set_get_del(void **state)
{
    ag_map_t m;
    ag_map_init(&m);
    assert_null(ag_map_get(&m, "missing"));
    int values[2000];
    char key[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(ag_map_set(&m, key, &values[i]), AG_OK);
    }
    assert_int_equal(m.size, 2000);
    for (int i = 0; i < 2000; i += 2) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_ptr_equal(ag_map_del(&m, key), &values[i]);
    }
    assert_int_equal(m.size, 1000);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_ptr_equal(ag_map_get(&m, key), i % 2 ? &values[i] : NULL);
    }
    /* replacing keeps the size */
    assert_int_equal(ag_map_set(&m, "k1", &values[0]), AG_OK);
    assert_int_equal(m.size, 1000);
    assert_ptr_equal(ag_map_get(&m, "k1"), &values[0]);
    /* iteration sees every live entry once, and may delete as it goes */
    size_t seen = 0;
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&m, &it, &k, &v);) {
        seen++;
        ag_map_del(&m, k);
    }
    assert_int_equal(seen, 1000);
    assert_int_equal(m.size, 0);
    ag_map_dispose(&m);
}

static void test_map_reuses_tombstones(void **state)
{
    ag_map_t m;
    ag_map_init(&m);
    int v;
    for (int round = 0; round < 10000; round++) {
        assert_int_equal(ag_map_set(&m, "churn", &v), AG_OK);
        assert_ptr_equal(ag_map_del(&m, "churn"), &v);
    }
    assert_true(m.capacity <= 64);
    ag_map_dispose(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid4_shape),     cmocka_unit_test(test_format_double_like_javascript),
        cmocka_unit_test(test_iso8601),         cmocka_unit_test(test_random_double_range),
        cmocka_unit_test(test_map_set_get_del), cmocka_unit_test(test_map_reuses_tombstones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
