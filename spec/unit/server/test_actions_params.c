/* Params: scrubbing, defaults, formatters, required checks and validators, in actionhero's order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "actions.h"

static int min3(const json_t *v, const char **msg)
{
    if (json_is_string(v) && json_string_length(v) < 3) {
        *msg = "inputs should be at least 3 letters long";
        return 1;
    }
    return 0;
}

static int positive(const json_t *v, const char **msg)
{
    return !(json_is_integer(v) && json_integer_value(v) > 0);
}

static json_t *upper(const json_t *v)
{
    if (!json_is_string(v))
        return NULL;
    char *s = strdup(json_string_value(v));
    for (char *p = s; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 32);
    json_t *r = json_string(s);
    free(s);
    return r;
}

static const ag_input_t inputs[] = {
    {"name", 1, NULL, min3, upper},
    {"count", 0, "5", positive, NULL},
    {"note", 0, NULL, NULL, NULL},
};

static ag__action_t action;

static int setup(void **state)
{
    action.def = (ag_action_def_t){"t", "test", inputs, 3, NULL, NULL, 0};
    action.defaults = calloc(3, sizeof(json_t *));
    action.defaults[1] = json_integer(5);
    return 0;
}

static int teardown(void **state)
{
    json_decref(action.defaults[1]);
    free(action.defaults);
    return 0;
}

static int validate(const char *params_json, char *err, json_t **out)
{
    json_t *p = json_loads(params_json, 0, NULL);
    assert_non_null(p);
    ag__params_scrub(&action, p);
    int ret = ag__params_validate(&action, p, err, 256);
    if (out != NULL)
        *out = p;
    else
        json_decref(p);
    return ret;
}

static void test_scrub(void **state)
{
    char err[256];
    json_t *p;
    assert_int_equal(validate("{\"action\":\"t\",\"name\":\"abc\",\"junk\":1,\"apiVersion\":1,\"messageId\":2,\"file\":\"f\","
                              "\"callback\":\"c\",\"params\":{}}",
                              err, &p),
                     0);
    char *s = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(
        s, "{\"action\":\"t\",\"apiVersion\":1,\"callback\":\"c\",\"count\":5,\"file\":\"f\",\"messageId\":2,\"name\":\"ABC\"}");
    free(s);
    json_decref(p);
}

static void test_required(void **state)
{
    char err[256];
    assert_int_equal(validate("{}", err, NULL), 422);
    assert_string_equal(err, "name is a required parameter for this action");
    assert_int_equal(validate("{\"name\":\"\"}", err, NULL), 422);
    assert_string_equal(err, "name is a required parameter for this action");
    assert_int_equal(validate("{\"name\":null}", err, NULL), 422);
    assert_int_equal(validate("{\"name\":0}", err, NULL), 0); /* 0 is not missing */
}

static void test_validators(void **state)
{
    char err[256];
    assert_int_equal(validate("{\"name\":\"ab\"}", err, NULL), 422);
    assert_string_equal(err, "inputs should be at least 3 letters long");
    assert_int_equal(validate("{\"name\":\"abc\",\"count\":-1}", err, NULL), 422);
    assert_string_equal(err, "Input for parameter \"count\" failed validation!");
    /* an empty optional param takes the default, which is valid */
    json_t *p;
    assert_int_equal(validate("{\"name\":\"abc\",\"count\":\"\"}", err, &p), 0);
    assert_int_equal(json_integer_value(json_object_get(p, "count")), 5);
    json_decref(p);
    /* the formatter runs before the validator */
    assert_int_equal(validate("{\"name\":\"abcd\",\"note\":null}", err, &p), 0);
    assert_string_equal(json_string_value(json_object_get(p, "name")), "ABCD");
    json_decref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scrub),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_validators),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
