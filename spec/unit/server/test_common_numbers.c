/* ag_double_to_ll: a JSON number becomes an integer only when it fits (converting one that does not is undefined). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <cmocka.h>
#include "common.h"

static void test_in_range(void **state)
{
    long long n = 7;
    assert_int_equal(ag_double_to_ll(2.9, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ag_double_to_ll(-2.9, &n), 0);
    assert_int_equal(n, -2);
    assert_int_equal(ag_double_to_ll(-0.5, &n), 0);
    assert_int_equal(n, 0);
    /* -2^63 is the smallest long long; the largest double below 2^63 is 2^63 - 1024 */
    assert_int_equal(ag_double_to_ll(-9223372036854775808.0, &n), 0);
    assert_true(n == (-9223372036854775807LL - 1));
    assert_int_equal(ag_double_to_ll(nextafter(9223372036854775808.0, 0), &n), 0);
    assert_true(n == 9223372036854774784LL);
}

static void test_out_of_range(void **state)
{
    const double bad[] = {
        1e300, -1e300, 9223372036854775808.0, nextafter(-9223372036854775808.0, -INFINITY), 1e19, -1e19, INFINITY, -INFINITY,
        NAN,   -NAN};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long long n = 42;
        if (ag_double_to_ll(bad[i], &n) != AG_EINVAL)
            fail_msg("%g was converted", bad[i]);
        assert_int_equal(n, 42);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_in_range), cmocka_unit_test(test_out_of_range)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
