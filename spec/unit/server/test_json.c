/* server/json.c: the hot-path parser and encoder give jansson's results (spec/fuzz/fuzz_json.c checks the same on
 * arbitrary bytes; these are the cases each branch decides on). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "frame.h"
#include "json.h"

static char *jansson_dump(const json_t *v)
{
    size_t n = json_dumpb(v, NULL, 0, AG_JSON_FLAGS);
    char *b = calloc(n + 1, 1);
    assert_non_null(b);
    json_dumpb(v, b, n, AG_JSON_FLAGS);
    return b;
}

/* the fast parser takes it, and gives what jansson gives, key order included */
static void taken(const char *text)
{
    json_t *fast = ag_json_parse_fast(text, strlen(text));
    json_t *ref = json_loadb(text, strlen(text), JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    assert_non_null(fast);
    assert_non_null(ref);
    assert_true(json_equal(fast, ref));
    char *a = jansson_dump(fast), *b = jansson_dump(ref);
    assert_string_equal(a, b);
    free(a);
    free(b);
    json_decref(fast);
    json_decref(ref);
}

/* the fast parser leaves it to jansson, and ag_json_loadb then answers exactly as jansson does */
static void left(const char *text, size_t len)
{
    json_t *fast = ag_json_parse_fast(text, len);
    assert_null(fast);
    json_error_t e1, e2;
    json_t *via = ag_json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e1);
    json_t *ref = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e2);
    assert_int_equal(via == NULL, ref == NULL);
    if (ref != NULL)
        assert_true(json_equal(via, ref));
    else
        assert_string_equal(e1.text, e2.text);
    json_decref(via);
    json_decref(ref);
}

static void test_parse_taken(void **state)
{
    taken("{\"event\":\"action\",\"params\":{\"action\":\"echo\",\"payload\":\"~1:2~\"},\"messageId\":17}");
    taken(" \t\r\n{ \"a\" : [ 1 , -2 , 0 , -0 , 123456789012345678 , -123456789012345678 ] } \n");
    taken("{\"b\":1,\"a\":2,\"b\":3}"); /* the last wins, at the first one's place */
    taken("[true,false,null,{},[],\"\"]");
    taken("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"");
    taken("\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \x7f\"");
    taken("{\"k\\ney\":\"v\"}");
    taken("42");
}

static void test_parse_left_to_jansson(void **state)
{
    left("1.5", 3);                   /* reals */
    left("[1e5]", 5);                 /* exponents */
    left("1234567890123456789", 19);  /* 19 digits: jansson checks the range */
    left("99999999999999999999", 20); /* and refuses this one */
    left("\"\\u00e9\"", 8);           /* \u escapes */
    left("\"\\u0000\"", 8);           /* NUL, allowed by the flag */
    left("\"\\ud800\"", 8);           /* a lone surrogate: refused */
    left("\"\xed\xa0\x80\"", 5);      /* a surrogate in UTF-8: refused */
    left("\"\xe0\x80\xaf\"", 5);      /* overlong: refused */
    left("\"\xf4\x90\x80\x80\"", 6);  /* over U+10FFFF: refused */
    left("\"a\tb\"", 5);              /* a raw control byte: refused */
    left("{\"a\":1,}", 8);            /* trailing comma */
    left("[01]", 4);                  /* leading zero */
    left("truex", 5);                 /* a literal run on */
    left("{} {}", 5);                 /* something after the value */
    left("{}\0", 3);                  /* a NUL after the value */
    left("", 0);                      /* nothing */
    left("\"abc", 4);                 /* no closing quote */
    left("\"ab\\", 4);                /* an escape cut short */
    left("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
         "]]]]]]]]]]]]]]]]]",
         141);
}

static void test_loadb_flags(void **state)
{
    json_error_t e;
    json_t *v = ag_json_loadb("7", 1, 0, &e); /* without JSON_DECODE_ANY a bare value is refused, as by jansson */
    assert_null(v);
    v = ag_json_loadb("{\"a\":1,\"a\":2}", 13, JSON_REJECT_DUPLICATES, &e);
    assert_null(v);
    assert_non_null(strstr(e.text, "duplicate"));
    v = ag_json_loadb("{\"a\":1,\"b\":2}", 13, JSON_REJECT_DUPLICATES, &e);
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_object_get(v, "b")), 2);
    json_decref(v);
}

static void same_bytes(const json_t *v)
{
    char *want = jansson_dump(v);
    size_t n = strlen(want);
    assert_int_equal(ag_json_dumpb(v, NULL, 0), n);
    char buf[512];
    assert_true(n < sizeof(buf));
    assert_int_equal(ag_json_dumpb(v, buf, sizeof(buf)), n);
    assert_memory_equal(buf, want, n);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(ag_json_dumpb(v, buf, n / 2), n); /* too small: the length needed, what fits written */
    assert_memory_equal(buf, want, n / 2);
    free(want);
}

static void test_encode_like_jansson(void **state)
{
    json_t *v = json_pack("{s:s,s:i,s:I,s:I,s:b,s:n,s:[f,f,f],s:{}}", "payload", "a\"b\\c/d\x01\x1f\n\r\t\b\f\x7f \xc3\xa9",
                          "messageId", 17, "big", (json_int_t)INT64_MAX, "small", (json_int_t)INT64_MIN, "t", 1, "nil", "reals",
                          0.1, 1e300, -0.0, "empty");
    assert_non_null(v);
    same_bytes(v);
    json_object_set_new(v, "k\xe2\x80\xa8y", json_stringn("nul\0inside", 10)); /* U+2028 in a key, a NUL in a value */
    same_bytes(v);
    json_decref(v);
    v = json_stringn_nocheck("bad \xff utf-8", 11); /* jansson refuses to encode it, and so does the encoder */
    assert_int_equal(json_dumpb(v, NULL, 0, AG_JSON_FLAGS), 0);
    assert_int_equal(ag_json_dumpb(v, NULL, 0), 0);
    json_decref(v);
    assert_int_equal(ag_json_dumpb(NULL, NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_taken),
        cmocka_unit_test(test_parse_left_to_jansson),
        cmocka_unit_test(test_loadb_flags),
        cmocka_unit_test(test_encode_like_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
