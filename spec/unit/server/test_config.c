/* The config loader: defaults, values over them, and "FILE:LINE: what is wrong" for unknown keys and wrong types. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "config.h"

static void test_defaults(void **state)
{
    ag_config_t *c = ag_config_create_default();
    assert_non_null(c);
    assert_string_equal(c->general.welcomeMessage, "Welcome to the actiongate api");
    assert_int_equal(c->general.simultaneousActions, 5);
    assert_int_equal(ag_config_list_len(c->general.startingChatRooms), 2);
    assert_true(ag_config_list_has(c->general.startingChatRooms, "defaultRoom"));
    assert_false(c->general.announceRoomJoins);
    assert_int_equal(c->servers.web.port, 8080);
    assert_string_equal(c->servers.web.urlPathForActions, "api");
    assert_true(c->servers.web.queryRouting);
    assert_string_equal(c->servers.web.cookieKey, "sessionID");
    assert_int_equal(c->servers.web.cookieExpires, 3600000);
    assert_string_equal(c->servers.websocket.server.pathname, "/primus");
    assert_int_equal(c->servers.websocket.server.queueMaxBytes, 4194304);
    assert_string_equal(c->servers.engineio.path, "/engine.io");
    assert_int_equal(c->servers.socketio.connectTimeout, 45000);
    assert_false(c->servers.socketio.conformance);
    assert_true(c->servers.websocket.server.allowEIO3);
    assert_null(c->path);
    ag_config_destroy(c);
}

static void test_values(void **state)
{
    char err[256] = "";
    const char *yaml = "general:\n"
                       "  welcomeMessage: \"hello\"\n"
                       "  simultaneousActions: 9\n"
                       "  startingChatRooms: [a, b, c]\n"
                       "  announceRoomJoins: true\n"
                       "servers:\n"
                       "  web:\n"
                       "    maxRequestBody: 123456789012\n"
                       "  websocket:\n"
                       "    client:\n"
                       "      reconnectFactor: 1.5\n";
    ag_config_t *c = ag_config_load_string(yaml, "v.yaml", err, sizeof(err));
    assert_non_null(c);
    assert_string_equal(c->general.welcomeMessage, "hello");
    assert_int_equal(c->general.simultaneousActions, 9);
    assert_int_equal(ag_config_list_len(c->general.startingChatRooms), 3);
    assert_string_equal(c->general.startingChatRooms[2], "c");
    assert_true(c->general.announceRoomJoins);
    assert_true(c->servers.web.maxRequestBody == 123456789012L);
    assert_true(c->servers.websocket.client.reconnectFactor == 1.5);
    assert_int_equal(c->servers.web.port, 8080); /* untouched keys keep their defaults */
    ag_config_destroy(c);
}

static void test_list_forms(void **state)
{
    char err[256];
    /* a scalar is a one-item list; a mapping gives its keys (actionhero's startingChatRooms: {defaultRoom: {}}) */
    ag_config_t *c = ag_config_load_string("general:\n  startingChatRooms: solo\n  trustedProxies: {10.0.0.1: {}, \"::1\": {}}\n",
                                           "l.yaml", err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(ag_config_list_len(c->general.startingChatRooms), 1);
    assert_string_equal(c->general.startingChatRooms[0], "solo");
    assert_int_equal(ag_config_list_len(c->general.trustedProxies), 2);
    assert_true(ag_config_list_has(c->general.trustedProxies, "::1"));
    ag_config_destroy(c);
}

static void expect_error(const char *yaml, const char *prefix, const char *mention)
{
    char err[256] = "";
    ag_config_t *c = ag_config_load_string(yaml, "bad.yaml", err, sizeof(err));
    if (c != NULL)
        fail_msg("accepted: %s", yaml);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("error '%s' does not start with '%s'", err, prefix);
    if (mention != NULL && strstr(err, mention) == NULL)
        fail_msg("error '%s' does not mention '%s'", err, mention);
    for (const char *p = err; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            fail_msg("error '%s' is not one printable line", err);
}

static void test_errors(void **state)
{
    expect_error("general:\n  welcomeMessage: hi\n  bogus: 1\n", "bad.yaml:3: ", "bogus");
    expect_error("nope: 1\n", "bad.yaml:1: ", "nope");
    expect_error("general:\n  simultaneousActions: many\n", "bad.yaml:2: ", "simultaneousActions");
    expect_error("general:\n  announceRoomJoins: 3\n", "bad.yaml:2: ", "announceRoomJoins");
    expect_error("general:\n  startingChatRooms:\n    - a\n    - {b: 1}\n", "bad.yaml:4: ", "startingChatRooms");
    expect_error("general:\n  welcomeMessage: [a]\n", "bad.yaml:2: ", "welcomeMessage");
    expect_error("servers:\n  web:\n    port: 1\n    extra:\n      deep: 1\n", "bad.yaml:4: ", "extra");
    expect_error("general: [1, 2\n", "bad.yaml:", NULL);
    char err[256];
    assert_null(ag_config_load("/nonexistent/actiongate.yaml", err, sizeof(err)));
    assert_true(strncmp(err, "/nonexistent/actiongate.yaml:0: ", 32) == 0);
}

static void test_room_bounds(void **state)
{
    ag_config_t *d = ag_config_create_default();
    assert_int_equal(d->general.maxRoomsPerConnection, 100);
    assert_int_equal(d->general.maxRooms, 10000);
    assert_int_equal(d->general.maxRoomNameLength, 256);
    ag_config_destroy(d);
    expect_error("general:\n  maxRoomsPerConnection: 0\n", "bad.yaml:1: ", "maxRoomsPerConnection must be at least 1");
    expect_error("general:\n  maxRoomNameLength: 0\n", "bad.yaml:1: ", "maxRoomNameLength must be between 1 and 1024");
    expect_error("general:\n  maxRoomNameLength: 1025\n", "bad.yaml:1: ", "maxRoomNameLength must be between 1 and 1024");
    expect_error("general:\n  maxRooms: 1\n", "bad.yaml:1: ", "maxRooms (1) must be at least 1 and hold the 2 startingChatRooms");
    expect_error("general:\n  maxRoomNameLength: 5\n", "bad.yaml:1: ", "\"defaultRoom\" must have 1 to");
    char err[256] = "";
    ag_config_t *c = ag_config_load_string("general:\n  maxRoomNameLength: 11\n  maxRooms: 2\n  maxRoomsPerConnection: 1\n",
                                           "ok.yaml", err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    assert_int_equal(c->general.maxRoomNameLength, 11);
    ag_config_destroy(c);
}

/* One inbound message must fit an outbound queue: the limits on what comes in are at most half the queue bound. */
static void test_message_bounds(void **state)
{
    ag_config_t *d = ag_config_create_default();
    assert_int_equal(d->servers.websocket.server.maxLength, 1048576);
    assert_int_equal(d->servers.websocket.server.maxHttpBufferSize, 1000000);
    assert_int_equal(d->servers.websocket.server.queueMaxBytes, 4194304);
    ag_config_destroy(d);
    const char *ws = "servers:\n  websocket:\n    server:\n";
    char yaml[256];
    snprintf(yaml, sizeof(yaml), "%s      maxLength: 10485760\n", ws);
    expect_error(yaml, "bad.yaml:1: ", "maxLength (10485760) must be at most half of queueMaxBytes (4194304)");
    snprintf(yaml, sizeof(yaml), "%s      maxHttpBufferSize: 2097153\n", ws);
    expect_error(yaml, "bad.yaml:1: ", "maxHttpBufferSize (2097153) must be at most half of queueMaxBytes");
    snprintf(yaml, sizeof(yaml), "%s      queueMaxBytes: 1048576\n", ws); /* the default inbound limits no longer fit */
    expect_error(yaml, "bad.yaml:1: ", "maxLength (1048576) must be at most half of queueMaxBytes (1048576)");
    snprintf(yaml, sizeof(yaml), "%s      queueMaxBytes: 4095\n      maxLength: 1000\n      maxHttpBufferSize: 1000\n", ws);
    expect_error(yaml, "bad.yaml:1: ", "queueMaxBytes must be at least 4096");
    char err[256] = "";
    snprintf(yaml, sizeof(yaml), "%s      queueMaxBytes: 262144\n      maxLength: 131072\n      maxHttpBufferSize: 100000\n", ws);
    ag_config_t *c = ag_config_load_string(yaml, "ok.yaml", err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    ag_config_destroy(c);
}

/* Origins and trusted proxies: combinations and entries that could never do what they seem to say. */
static void test_policy_errors(void **state)
{
    expect_error("servers:\n  websocket:\n    server:\n      credentials: true\n", "bad.yaml:1: ", "needs a list of origins");
    expect_error("servers:\n  websocket:\n    server:\n      origins: [\"https://a.example\", \"*\"]\n      credentials: true\n",
                 "bad.yaml:1: ", "needs a list of origins");
    for (const char *o =
             "https://a.example/\0a.example\0https://\0https://a\\n.example\0https://a.example/path\0://a.example\0htt p://a\0";
         *o != '\0'; o += strlen(o) + 1) {
        char yaml[256];
        snprintf(yaml, sizeof(yaml), "servers:\n  websocket:\n    server:\n      origins: [\"%s\"]\n", o);
        expect_error(yaml, "bad.yaml:1: ", "is not an origin");
    }
    for (const char *p = "localhost\0"
                         "10.0.0.0/33\0"
                         "10.0.0.1:80\0"
                         "[::1]\0"
                         "::1/129\0"
                         "10.0.0.0/\0"
                         "10.0.0.0/x\0"
                         "a\\nb\\e[31m\0";
         *p != '\0'; p += strlen(p) + 1) {
        char yaml[256];
        snprintf(yaml, sizeof(yaml), "general:\n  trustedProxies: [\"%s\"]\n", p);
        expect_error(yaml, "bad.yaml:1: ", "trustedProxies");
    }
    char err[256] = "";
    ag_config_t *c =
        ag_config_load_string("general:\n  trustedProxies: [\"10.0.0.0/8\", \"fd00::/8\", \"127.0.0.1\"]\n"
                              "servers:\n  websocket:\n    server:\n      origins: [\"https://a.example:8443\", \"null\"]\n"
                              "      credentials: true\n",
                              "ok.yaml", err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    ag_config_destroy(c);
}

/* the engine.io path is engine.io's alone, and the socket.io connect timeout has bounds */
static void test_endpoint_paths(void **state)
{
    for (const char *p = "/primus\0/socket.io\0/\0engine.io\0/a?b\0/a b\0"; *p != '\0'; p += strlen(p) + 1) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "servers:\n  engineio:\n    path: \"%s\"\n", p);
        expect_error(yaml, "bad.yaml:1: ", "servers.engineio.path must be");
    }
    expect_error("servers:\n  websocket:\n    server:\n      pathname: /rt\n  engineio:\n    path: /rt\n",
                 "bad.yaml:1: ", "servers.engineio.path must be");
    expect_error("servers:\n  socketio:\n    connectTimeout: 0\n", "bad.yaml:1: ", "connectTimeout must be between");
    expect_error("servers:\n  socketio:\n    connectTimeout: 3600001\n", "bad.yaml:1: ", "connectTimeout must be between");
    char err[256] = "";
    ag_config_t *c = ag_config_load_string("servers:\n  engineio:\n    path: \"\"\n  socketio:\n    connectTimeout: 300\n",
                                           "ok.yaml", err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    assert_string_equal(c->servers.engineio.path, "");
    assert_int_equal(c->servers.socketio.connectTimeout, 300);
    ag_config_destroy(c);
}

static void test_shipped_file(void **state)
{
    char err[256] = "", path[1024];
    const char *root = getenv("AG_SOURCE_DIR");
    snprintf(path, sizeof(path), "%s/config/actiongate.yaml", root != NULL ? root : AG_SOURCE_DIR);
    ag_config_t *c = ag_config_load(path, err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    ag_config_t *d = ag_config_create_default();
    /* the documented values are the defaults */
    assert_string_equal(c->general.welcomeMessage, d->general.welcomeMessage);
    assert_int_equal(c->general.simultaneousActions, d->general.simultaneousActions);
    assert_int_equal(c->servers.websocket.server.queueMaxFrames, d->servers.websocket.server.queueMaxFrames);
    assert_int_equal(c->servers.websocket.server.sse.keepaliveMs, d->servers.websocket.server.sse.keepaliveMs);
    assert_string_equal(c->redis.prefix, d->redis.prefix);
    assert_string_equal(c->redis.compat, d->redis.compat);
    assert_string_equal(c->general.serverToken, d->general.serverToken);
    assert_string_equal(c->general.channel, d->general.channel);
    assert_int_equal(c->general.maxRoomsPerConnection, d->general.maxRoomsPerConnection);
    assert_int_equal(c->general.maxRooms, d->general.maxRooms);
    assert_int_equal(c->general.maxRoomNameLength, d->general.maxRoomNameLength);
    assert_int_equal(c->servers.websocket.server.maxLength, d->servers.websocket.server.maxLength);
    assert_int_equal(c->servers.websocket.server.maxHttpBufferSize, d->servers.websocket.server.maxHttpBufferSize);
    assert_int_equal(c->servers.websocket.server.queueMaxBytes, d->servers.websocket.server.queueMaxBytes);
    assert_string_equal(c->servers.engineio.path, d->servers.engineio.path);
    assert_int_equal(c->servers.socketio.connectTimeout, d->servers.socketio.connectTimeout);
    assert_int_equal(c->servers.socketio.conformance, d->servers.socketio.conformance);
    assert_int_equal(c->servers.websocket.server.allowEIO3, d->servers.websocket.server.allowEIO3);
    assert_int_equal(c->servers.websocket.server.pollSleepMs, d->servers.websocket.server.pollSleepMs);
    ag_config_destroy(c);
    ag_config_destroy(d);
}

/* redis.compat and the actionhero keys it reads */
static void test_actionhero_compat(void **state)
{
    char err[256] = "";
    ag_config_t *d = ag_config_create_default();
    assert_string_equal(d->redis.compat, "");
    assert_string_equal(d->general.serverToken, "change-me");
    assert_string_equal(d->general.channel, "actionhero");
    ag_config_destroy(d);
    ag_config_t *c = ag_config_load_string("general:\n  serverToken: tok\n  channel: ch\nredis:\n  compat: actionhero\n", "ok.yaml",
                                           err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    assert_string_equal(c->redis.compat, "actionhero");
    assert_string_equal(c->general.serverToken, "tok");
    assert_string_equal(c->general.channel, "ch");
    ag_config_destroy(c);
    expect_error("redis:\n  compat: faye\n", "bad.yaml:1: ", "redis.compat must be");
    expect_error("general:\n  serverToken: \"\"\nredis:\n  compat: actionhero\n", "bad.yaml:1: ", "needs general.serverToken");
    expect_error("general:\n  channel: \"\"\nredis:\n  compat: actionhero\n", "bad.yaml:1: ", "needs general.serverToken");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),          cmocka_unit_test(test_endpoint_paths), cmocka_unit_test(test_values),
        cmocka_unit_test(test_list_forms),        cmocka_unit_test(test_errors),         cmocka_unit_test(test_shipped_file),
        cmocka_unit_test(test_room_bounds),       cmocka_unit_test(test_message_bounds), cmocka_unit_test(test_policy_errors),
        cmocka_unit_test(test_actionhero_compat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
