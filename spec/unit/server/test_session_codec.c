/* The session layer's message codec (server/session.c): JavaScript-compatible rendering, messageId, verb words, reply
 * shapes (with the verb reply of server/actions.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "actions.h"
#include "session.h"

static char *dump(const json_t *j)
{
    return json_dumps(j, AG_JSON_FLAGS);
}

static void assert_dump(json_t *j, const char *want)
{
    char *s = dump(j);
    assert_string_equal(s, want);
    free(s);
}

static void test_truthy(void **state)
{
    const char *falsy[] = {"null", "false", "0", "0.0", "\"\""};
    const char *truthy[] = {"true", "1", "-1", "0.5", "\"0\"", "\" \"", "{}", "[]"};
    assert_false(ag__js_truthy(NULL));
    for (size_t i = 0; i < sizeof(falsy) / sizeof(*falsy); i++) {
        json_t *v = json_loads(falsy[i], JSON_DECODE_ANY, NULL);
        assert_false(ag__js_truthy(v));
        json_decref(v);
    }
    for (size_t i = 0; i < sizeof(truthy) / sizeof(*truthy); i++) {
        json_t *v = json_loads(truthy[i], JSON_DECODE_ANY, NULL);
        assert_true(ag__js_truthy(v));
        json_decref(v);
    }
}

static void test_js_string(void **state)
{
    const char *cases[][2] = {
        {"\"abc\"", "abc"},
        {"12", "12"},
        {"0.1", "0.1"},
        {"1e21", "1e+21"},
        {"true", "true"},
        {"false", "false"},
        {"null", ""},
        {"{\"a\":1}", "[object Object]"},
        {"[1,[2,null],\"x\"]", "1,2,,x"},
        {"-0.5", "-0.5"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        json_t *v = json_loads(cases[i][0], JSON_DECODE_ANY, NULL);
        char *s = ag__js_string(v);
        assert_string_equal(s, cases[i][1]);
        free(s);
        json_decref(v);
    }
}

static void test_message_id(void **state)
{
    json_t *msg = json_loads("{\"messageId\":7}", 0, NULL);
    json_t *id = ag__message_id(msg);
    assert_true(json_is_integer(id) && json_integer_value(id) == 7);
    json_decref(id);
    json_decref(msg);
    const char *generated[] = {"{}", "{\"messageId\":0}", "{\"messageId\":\"\"}", "{\"messageId\":null}", "{\"messageId\":false}"};
    for (size_t i = 0; i < 5; i++) {
        msg = json_loads(generated[i], 0, NULL);
        id = ag__message_id(msg);
        const char *s = json_string_value(id);
        assert_non_null(s);
        assert_int_equal(strlen(s), 36);
        assert_int_equal(s[14], '4');
        json_decref(id);
        json_decref(msg);
    }
    id = ag__message_id(NULL);
    assert_int_equal(json_string_length(id), 36);
    json_decref(id);
}

static void test_verb_words(void **state)
{
    json_t *rest = json_loads("{\"message\":\"two\",\"room\":\"r\",\"extra\":\"words\",\"n\":3}", 0, NULL);
    json_t *w = ag__verb_words(rest);
    assert_dump(w, "[\"r\",\"two\",\"words\",3]");
    char *joined = ag__join_words(w, 1);
    assert_string_equal(joined, "two words 3");
    free(joined);
    json_decref(w);
    json_decref(rest);
    rest = json_loads("{\"room\":\"\",\"message\":\"m\"}", 0, NULL);
    w = ag__verb_words(rest);
    assert_dump(w, "[\"m\"]"); /* a falsy room is not an argument */
    json_decref(w);
    json_decref(rest);
}

static void test_reply_shapes(void **state)
{
    json_t *id = json_integer(5);
    json_t *r = ag__reply(json_pack("{s:i,s:s}", "b", 1, "a", "x"), id);
    assert_dump(r, "{\"b\":1,\"a\":\"x\",\"context\":\"response\",\"messageId\":5}");
    json_decref(r);
    json_t *data = json_object();
    r = ag__verb_reply("room exists", data, id);
    assert_dump(r, "{\"status\":\"Error: room exists\",\"error\":\"Error: room "
                   "exists\",\"context\":\"response\",\"data\":{},\"messageId\":5}");
    json_decref(r);
    r = ag__verb_reply(NULL, NULL, id);
    assert_dump(r, "{\"status\":\"OK\",\"context\":\"response\",\"messageId\":5}");
    json_decref(r);
    r = ag__verb_reply(NULL, json_true(), id);
    assert_dump(r, "{\"status\":\"OK\",\"context\":\"response\",\"data\":true,\"messageId\":5}");
    json_decref(r);
    json_decref(data);
    json_decref(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truthy),     cmocka_unit_test(test_js_string),    cmocka_unit_test(test_message_id),
        cmocka_unit_test(test_verb_words), cmocka_unit_test(test_reply_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
