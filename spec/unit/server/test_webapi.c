/* The web API's helpers (server/webapi.c): form decoding into params, HTTP dates. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "frame.h"
#include "webapi.h"

static void assert_dump(json_t *j, const char *want)
{
    char *s = json_dumps(j, AG_JSON_FLAGS);
    assert_string_equal(s, want);
    free(s);
}

static void test_form_and_date(void **state)
{
    json_t *o = json_object();
    const char *q = "a=1&b=x+y%21&a=2&empty=&flag&%E2%82%AC=%E2%82%AC&bad=%ff";
    ag__parse_form(o, q, strlen(q));
    assert_dump(o, "{\"a\":\"2\",\"b\":\"x y!\",\"empty\":\"\",\"flag\":\"\",\"\xe2\x82\xac\":\"\xe2\x82\xac\"}");
    json_decref(o);
    char buf[32];
    ag__http_date(1795321088941ULL, buf);
    assert_string_equal(buf, "Sun, 22 Nov 2026 04:18:08 GMT");
    ag__http_date(0, buf);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_and_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
