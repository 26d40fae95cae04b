/* server/upstream.c: base URLs, action names in URLs, the app's catalogue, the upstream configuration keys. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "upstream.h"

static void test_url_parse(void **state)
{
    ag_url_t u;
    assert_int_equal(ag_url_parse("http://127.0.0.1:8080/api", &u), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 8080);
    assert_string_equal(u.path, "/api");
    assert_int_equal(ag_url_parse("http://app.internal/", &u), 0);
    assert_string_equal(u.host, "app.internal");
    assert_int_equal(u.port, 80);
    assert_string_equal(u.path, "");
    assert_int_equal(ag_url_parse("http://[::1]:9000/v1/api//", &u), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 9000);
    assert_string_equal(u.path, "/v1/api");

    const char *bad[] = {"",
                         "127.0.0.1:8080",
                         "https://h/api",
                         "http://",
                         "http://h:0",
                         "http://h:65536",
                         "http://h:80x",
                         "http://h/a b",
                         "http://h/a?b=1",
                         "http://[::1/api",
                         "http://h\r\nX: 1/",
                         "ftp://h",
                         NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        if (ag_url_parse(bad[i], &u) != AG_EINVAL)
            fail_msg("accepted %s", bad[i]);
    }
}

static void test_valid_name(void **state)
{
    assert_true(ag_upstream_valid_name("echoParams"));
    assert_true(ag_upstream_valid_name("user:create"));
    assert_true(ag_upstream_valid_name("v1.do-it_now~"));
    assert_false(ag_upstream_valid_name(""));
    assert_false(ag_upstream_valid_name(NULL));
    assert_false(ag_upstream_valid_name(".."));
    assert_false(ag_upstream_valid_name("a/b"));
    assert_false(ag_upstream_valid_name("a b"));
    assert_false(ag_upstream_valid_name("a?b"));
    assert_false(ag_upstream_valid_name("a%2f"));
    char long_name[300];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_false(ag_upstream_valid_name(long_name));
}

static void test_documentation_from_swagger(void **state)
{
    json_t *swagger =
        json_loads("{\"swagger\":\"2.0\",\"paths\":{"
                   "\"/echo\":{\"get\":{\"summary\":\"by get\"},\"post\":{\"summary\":\"I echo\",\"parameters\":["
                   "{\"name\":\"name\",\"required\":true},{\"name\":\"count\",\"required\":false,\"default\":\"1\"}]}},"
                   "\"/users/{id}\":{\"get\":{\"summary\":\"a hand-written route\"}},"
                   "\"/status\":{\"get\":{\"summary\":\"status\",\"parameters\":[]}}}}",
                   0, NULL);
    assert_non_null(swagger);
    json_t *doc = ag_upstream_documentation_from(swagger);
    assert_int_equal(json_object_size(doc), 2);
    json_t *echo = json_object_get(json_object_get(doc, "echo"), "1");
    assert_string_equal(json_string_value(json_object_get(echo, "name")), "echo");
    assert_string_equal(json_string_value(json_object_get(echo, "description")), "I echo");
    json_t *inputs = json_object_get(echo, "inputs");
    assert_true(json_is_true(json_object_get(json_object_get(inputs, "name"), "required")));
    assert_true(json_is_false(json_object_get(json_object_get(inputs, "count"), "required")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(inputs, "count"), "default")), "1");
    assert_non_null(json_object_get(doc, "status"));
    json_decref(doc);
    json_decref(swagger);
}

static void test_documentation_from_catalogue(void **state)
{
    json_t *reply = json_loads("{\"documentation\":{\"a\":{\"1\":{\"name\":\"a\"}}}}", 0, NULL);
    json_t *doc = ag_upstream_documentation_from(reply);
    assert_true(json_equal(doc, json_object_get(reply, "documentation")));
    json_decref(doc);
    json_decref(reply);
    /* neither shape: nothing */
    reply = json_loads("{\"paths\":[1],\"documentation\":\"x\"}", 0, NULL);
    doc = ag_upstream_documentation_from(reply);
    assert_int_equal(json_object_size(doc), 0);
    json_decref(doc);
    json_decref(reply);
}

static void test_config_keys(void **state)
{
    char err[256];
    ag_config_t *c = ag_config_create_default();
    assert_int_equal(ag_config_list_len(c->upstream.urls), 0);
    assert_true(ag_config_list_has(c->upstream.actions, "*"));
    assert_int_equal(c->upstream.keepLocalActions, 1);
    assert_int_equal(c->upstream.timeout, 10000);
    assert_int_equal(c->upstream.maxInFlight, 1024);
    assert_int_equal(c->upstream.keepAlive, 2000);
    assert_int_equal(c->upstream.maxRequestBytes, 1048576);
    assert_int_equal(c->upstream.maxResponseBytes, 1048576);
    assert_string_equal(c->upstream.documentationAction, "swagger");
    ag_config_destroy(c);

    c = ag_config_load_string("upstream:\n  urls: http://127.0.0.1:8080/api\n  actions: [\"user:*\", echo]\n"
                              "  keepLocalActions: false\n  timeout: 250\n",
                              "t.yaml", err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(ag_config_list_len(c->upstream.urls), 1);
    assert_string_equal(c->upstream.urls[0], "http://127.0.0.1:8080/api");
    assert_string_equal(c->upstream.actions[0], "user:*");
    assert_int_equal(c->upstream.keepLocalActions, 0);
    assert_int_equal(c->upstream.timeout, 250);
    ag_config_destroy(c);

    assert_null(ag_config_load_string("upstream:\n  urls: [\"http://ok/\", \"nope\"]\n", "t.yaml", err, sizeof(err)));
    assert_string_equal(err, "t.yaml:1: upstream.urls: not http://host[:port][/path]: nope");
    assert_null(ag_config_load_string("upstream:\n  maxResponseBytes: 0\n", "t.yaml", err, sizeof(err)));
    assert_string_equal(err, "t.yaml:1: upstream.maxRequestBytes and maxResponseBytes must be at least 1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_valid_name),
        cmocka_unit_test(test_documentation_from_swagger),
        cmocka_unit_test(test_documentation_from_catalogue),
        cmocka_unit_test(test_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
