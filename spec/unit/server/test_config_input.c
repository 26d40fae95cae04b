/* The config loader against hostile or broken files: odd YAML shapes, numbers no integer can hold, NUL bytes, duplicate
 * keys, aliases, deep nesting and huge files. Every case gets one "FILE:LINE: what is wrong" line and no crash. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "config.h"

static void expect_error_len(const char *yaml, size_t len, const char *prefix, const char *mention)
{
    char err[256] = "";
    ag_config_t *c = ag_config_load_buffer(yaml, len, "bad.yaml", err, sizeof(err));
    if (c != NULL) {
        ag_config_destroy(c);
        fail_msg("accepted: %.200s", yaml);
    }
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("error '%s' does not start with '%s'", err, prefix);
    if (mention != NULL && strstr(err, mention) == NULL)
        fail_msg("error '%s' does not mention '%s'", err, mention);
}

static void expect_error(const char *yaml, const char *prefix, const char *mention)
{
    expect_error_len(yaml, strlen(yaml), prefix, mention);
}

static ag_config_t *expect_ok(const char *yaml)
{
    char err[256] = "";
    ag_config_t *c = ag_config_load_buffer(yaml, strlen(yaml), "ok.yaml", err, sizeof(err));
    if (c == NULL)
        fail_msg("refused: %s\n%s", err, yaml);
    return c;
}

/* The reproducer of the heap overflow: a mapping used as a key of the startingChatRooms mapping form. */
static void test_nonscalar_keys(void **state)
{
    expect_error("general:\n startingChatRooms: {{}}\n", "bad.yaml:2: ", "startingChatRooms");
    expect_error("general:\n  trustedProxies: {[a, b]: 1}\n", "bad.yaml:2: ", "trustedProxies");
    expect_error("general:\n  startingChatRooms:\n    ? {a: 1}\n    : x\n", "bad.yaml:3: ", "startingChatRooms");
    expect_error("general:\n  ? [welcomeMessage]\n  : hi\n", "bad.yaml:2: ", "keys must be strings");
    expect_error("? {general: 1}\n: 2\n", "bad.yaml:1: ", "keys must be strings");
    /* the mapping form still works with plain keys */
    ag_config_t *c = expect_ok("general:\n  startingChatRooms: {a: {}, b: ~}\n");
    assert_int_equal(ag_config_list_len(c->general.startingChatRooms), 2);
    assert_string_equal(c->general.startingChatRooms[1], "b");
    ag_config_destroy(c);
}

/* Numbers are range-checked as doubles before any conversion: 1e300 or nan converted to int or long is undefined. */
static void test_number_ranges(void **state)
{
    static const char *const bad_ints[] = {"1e300", "nan", "NAN", "inf", "-inf", "2147483648", "1e10", "-1", "1.5", "0x1p40", ""};
    char yaml[128];
    for (size_t i = 0; i < sizeof(bad_ints) / sizeof(bad_ints[0]); i++) {
        snprintf(yaml, sizeof(yaml), "servers:\n  web:\n    port: \"%s\"\n", bad_ints[i]);
        expect_error(yaml, "bad.yaml:3: ", "servers.web.port");
        snprintf(yaml, sizeof(yaml), "general:\n  shutdownTimeout: \"%s\"\n", bad_ints[i]);
        expect_error(yaml, "bad.yaml:2: ", "shutdownTimeout");
    }
    static const char *const bad_longs[] = {"1e300", "nan", "inf", "9223372036854775808", "9223372036854775807", "1e19", "-5"};
    for (size_t i = 0; i < sizeof(bad_longs) / sizeof(bad_longs[0]); i++) {
        snprintf(yaml, sizeof(yaml), "servers:\n  web:\n    maxRequestBody: %s\n", bad_longs[i]);
        expect_error(yaml, "bad.yaml:3: ", "maxRequestBody");
    }
    expect_error("servers:\n  web:\n    port: .nan\n", "bad.yaml:3: ", "port");
    expect_error("servers:\n  websocket:\n    client:\n      reconnectFactor: nan\n", "bad.yaml:4: ", "reconnectFactor");
    expect_error("servers:\n  websocket:\n    client:\n      reconnectFactor: -inf\n", "bad.yaml:4: ", "reconnectFactor");
    expect_error("servers:\n  websocket:\n    client:\n      reconnectFactor: 1e999\n", "bad.yaml:4: ", "reconnectFactor");

    /* the largest values each type holds still load */
    ag_config_t *c = expect_ok("general:\n  shutdownTimeout: 2147483647\nservers:\n  web:\n    maxRequestBody: 9.2e18\n"
                               "    cookieExpires: 1e6\n");
    assert_int_equal(c->general.shutdownTimeout, 2147483647);
    assert_true(c->servers.web.maxRequestBody == 9200000000000000000L);
    assert_int_equal(c->servers.web.cookieExpires, 1000000);
    ag_config_destroy(c);
}

/* C strings would cut a value at its NUL byte and load something else than the file says. */
static void test_nul_bytes(void **state)
{
    expect_error("general:\n  serverName: \"a\\0b\"\n", "bad.yaml:2: ", "serverName");
    expect_error("general:\n  announceRoomJoins: \"true\\0x\"\n", "bad.yaml:2: ", "announceRoomJoins");
    expect_error("general:\n  simultaneousActions: \"7\\0 junk\"\n", "bad.yaml:2: ", "simultaneousActions");
    expect_error("general:\n  startingChatRooms: [\"a\\0b\"]\n", "bad.yaml:2: ", "startingChatRooms");
    expect_error("general:\n  startingChatRooms: {\"a\\0b\": 1}\n", "bad.yaml:2: ", "startingChatRooms");
    expect_error("\"general\\0x\":\n  serverName: a\n", "bad.yaml:1: ", NULL);
    /* a raw NUL in the text is not YAML */
    expect_error_len("general:\n  serverName: a\0b\n", 26, "bad.yaml:", NULL);
}

/* The error stays one line whatever the value holds. */
static void test_error_is_one_line(void **state)
{
    char err[256] = "";
    assert_null(ag_config_load_string("general:\n  simultaneousActions: \"1\\n2\\e[31m\"\n", "bad.yaml", err, sizeof(err)));
    assert_string_equal(err,
                        "bad.yaml:2: general.simultaneousActions: expected a whole number from 0 to 2147483647, got \"1?2?[31m\"");
}

/* A value set twice is an error (the second would silently win); a section that appears twice merges its keys. */
static void test_duplicate_keys(void **state)
{
    expect_error("general:\n  serverName: a\n  serverName: b\n", "bad.yaml:3: ", "duplicate key \"general.serverName\"");
    expect_error("servers:\n  web: {port: 1}\n  web: {port: 2}\n", "bad.yaml:3: ", "duplicate key \"servers.web.port\"");
    expect_error("general:\n  serverName: a\nservers: {}\ngeneral:\n  serverName: b\n",
                 "bad.yaml:5: ", "duplicate key \"general.serverName\"");
    ag_config_t *c = expect_ok("general:\n  serverName: a\nservers: {}\ngeneral:\n  welcomeMessage: b\n");
    assert_string_equal(c->general.serverName, "a");
    assert_string_equal(c->general.welcomeMessage, "b");
    ag_config_destroy(c);
}

/* A section walked again for every alias of it: without a bound, a 1 MiB file costs time quadratic in its size. */
static void test_alias_expansion(void **state)
{
    size_t k = 2000, n = 2000, cap = 64 + k * 8 + n * 16, len = 0;
    char *yaml = malloc(cap);
    assert_non_null(yaml);
    len += (size_t)snprintf(yaml + len, cap - len, "servers: &s {");
    for (size_t i = 0; i < k; i++)
        len += (size_t)snprintf(yaml + len, cap - len, "%sweb: {}", i != 0 ? ", " : "");
    len += (size_t)snprintf(yaml + len, cap - len, "}\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(yaml + len, cap - len, "servers: *s\n");
    expect_error(yaml, "bad.yaml:", "more than 100000 keys");
    free(yaml);
}

static void test_aliases(void **state)
{
    ag_config_t *c = expect_ok("general:\n  startingChatRooms: &rooms [10.0.0.1, 10.0.0.2]\n  trustedProxies: *rooms\n"
                               "  welcomeMessage: &w hello\n  serverName: *w\n");
    assert_int_equal(ag_config_list_len(c->general.trustedProxies), 2);
    assert_string_equal(c->general.trustedProxies[1], "10.0.0.2");
    assert_string_equal(c->general.serverName, "hello");
    ag_config_destroy(c);
    /* an alias of the mapping that contains it: libyaml builds a cycle; the walk stops at the first unknown key */
    expect_error("servers: &s\n  web: *s\n", "bad.yaml:", "unknown key");
    expect_error("general: &g\n  welcomeMessage: *g\n", "bad.yaml:", "welcomeMessage");
    expect_error("general:\n  serverName: *nowhere\n", "bad.yaml:", NULL);
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * n + tl + 1);
    assert_non_null(s);
    memcpy(s, head, hl);
    for (size_t i = 0; i < n; i++)
        memcpy(s + hl + i * ul, unit, ul);
    memcpy(s + hl + n * ul, tail, tl + 1);
    return s;
}

/* libyaml's scanner spends time quadratic in the nesting depth: a depth bound refuses such files early. */
static void test_deep_nesting(void **state)
{
    char *flow = repeat("general: ", "[", 10000, "");
    expect_error(flow, "bad.yaml:1: ", "nested deeper than");
    free(flow);
    char *maps = repeat("general: ", "{a: ", 10000, "");
    expect_error(maps, "bad.yaml:1: ", "nested deeper than");
    free(maps);
    /* block style: every line one level deeper */
    size_t n = 200, cap = n * (n + 4) + 1, len = 0;
    char *block = malloc(cap);
    assert_non_null(block);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(block + len, cap - len, "%*sa:\n", (int)i, "");
    expect_error(block, "bad.yaml:", "nested deeper than");
    free(block);
}

static void test_long_keys(void **state)
{
    char *key = repeat("general:\n  ", "k", 300, ": 1\n");
    expect_error(key, "bad.yaml:2: ", "unknown key");
    free(key);
    char *section = repeat("servers:\n  ", "w", 1000, ":\n    port: 1\n");
    expect_error(section, "bad.yaml:2: ", "unknown key");
    free(section);
}

static void write_file(const char *path, const char *head, size_t filler, const char *tail)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(head, fp);
    for (size_t i = 0; i < filler; i++)
        fputs("# a comment line to make the file large\n", fp);
    fputs(tail, fp);
    assert_int_equal(fclose(fp), 0);
}

static void test_huge_file(void **state)
{
    char path[] = "/tmp/ag-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char err[256] = "";
    /* 2 MiB of comments around a valid file: over the size bound */
    write_file(path, "general:\n", (2u << 20) / 40, "  serverName: big\n");
    ag_config_t *c = ag_config_load(path, err, sizeof(err));
    if (c != NULL)
        fail_msg("a 2 MiB file was accepted");
    assert_non_null(strstr(err, "larger than"));
    assert_true(strncmp(err, path, strlen(path)) == 0);
    /* the same text under the bound loads */
    write_file(path, "general:\n", 1000, "  serverName: big\n");
    c = ag_config_load(path, err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    assert_string_equal(c->general.serverName, "big");
    ag_config_destroy(c);
    unlink(path);
    /* a device that never ends and a directory are refused, not read forever */
    assert_null(ag_config_load("/dev/zero", err, sizeof(err)));
    assert_true(strncmp(err, "/dev/zero:", 10) == 0);
    assert_null(ag_config_load("/tmp", err, sizeof(err)));
    assert_true(strncmp(err, "/tmp:0: ", 8) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nonscalar_keys), cmocka_unit_test(test_number_ranges),   cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_duplicate_keys), cmocka_unit_test(test_alias_expansion), cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_deep_nesting),   cmocka_unit_test(test_long_keys),       cmocka_unit_test(test_error_is_one_line),
        cmocka_unit_test(test_huge_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
