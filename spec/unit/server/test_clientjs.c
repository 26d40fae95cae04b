/* server/clientjs.c: placeholder substitution and rendering of the browser client at boot. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "clientjs.h"

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static const char *template_dir(void)
{
    const char *src = getenv("AG_SOURCE_DIR");
    static char dir[4096];
    snprintf(dir, sizeof(dir), "%s/client", src != NULL ? src : AG_SOURCE_DIR);
    return dir;
}

static char *subst(const ag_config_t *cfg, const char *tmpl)
{
    char err[256] = "";
    size_t len;
    char *out = ag_clientjs_substitute(cfg, tmpl, strlen(tmpl), &len, err, sizeof(err));
    if (out != NULL)
        assert_int_equal(strlen(out), len);
    return out;
}

static void test_defaults(void **state)
{
    ag_config_t *cfg = ag_config_create_default();
    char *out = subst(cfg, "u=__AG_CLIENT_URL__;a=__AG_API_PATH__;k=__AG_COOKIE_KEY__;p=__AG_PATHNAME__;t=__AG_TRANSPORTS__;"
                           "w=__AG_WEBSOCKET_FIRST__;r=__AG_REMEMBER_UPGRADE__;o=__AG_TIMEOUT__;i=__AG_PING_INTERVAL__;"
                           "j=__AG_PING_TIMEOUT__;m=__AG_RECONNECT_MIN__;x=__AG_RECONNECT_MAX__;f=__AG_RECONNECT_FACTOR__;"
                           "n=__AG_RECONNECT_RETRIES__;q=__AG_QUEUE_SIZE__;");
    assert_non_null(out);
    assert_string_equal(out, "u=window.location.origin;a=\"/api\";k=\"sessionID\";p=\"/primus\";"
                             "t=[\"polling\",\"websocket\",\"sse\"];w=false;r=true;o=10000;i=25000;j=20000;m=500;x=30000;"
                             "f=2.0;n=0;q=100;");
    free(out);
    /* engine.io packet types and the polling separator, from the server's codec */
    out = subst(cfg, "P=__AG_PACKET_TYPES__;S=__AG_SEPARATOR__;");
    assert_string_equal(out, "P={\"open\":\"0\",\"close\":\"1\",\"ping\":\"2\",\"pong\":\"3\",\"message\":\"4\",\"upgrade\":\"5\","
                             "\"noop\":\"6\"};S=\"\\u001E\";");
    free(out);
    ag_config_destroy(cfg);
}

static void test_configured_values(void **state)
{
    char err[256];
    ag_config_t *cfg = ag_config_load_string("servers:\n"
                                             "  websocket:\n"
                                             "    clientUrl: \"https://chat.example.com\"\n"
                                             "    server: {pathname: \"/rt\", pingInterval: 1000, pingTimeout: 500}\n"
                                             "    client:\n"
                                             "      apiPath: \"/v1/api\"\n"
                                             "      cookieKey: \"sid\\u2028\\\"x\"\n"
                                             "      transports: [websocket, polling]\n"
                                             "      websocketFirst: true\n"
                                             "      rememberUpgrade: false\n"
                                             "      reconnectMin: 50\n"
                                             "      reconnectMax: 700\n"
                                             "      reconnectFactor: 1.5\n"
                                             "      reconnectRetries: 4\n"
                                             "      queueSize: 3\n",
                                             "t.yaml", err, sizeof(err));
    assert_non_null(cfg);
    char *out = subst(cfg, "__AG_CLIENT_URL__ __AG_API_PATH__ __AG_COOKIE_KEY__ __AG_PATHNAME__ __AG_TRANSPORTS__ "
                           "__AG_WEBSOCKET_FIRST__ __AG_REMEMBER_UPGRADE__ __AG_PING_INTERVAL__ __AG_PING_TIMEOUT__ "
                           "__AG_RECONNECT_MIN__ __AG_RECONNECT_MAX__ __AG_RECONNECT_FACTOR__ __AG_RECONNECT_RETRIES__ "
                           "__AG_QUEUE_SIZE__");
    assert_non_null(out);
    /* a URL other than the bare default is a JSON string; strings are ASCII-escaped (U+2028 ends an ES5 literal) */
    assert_string_equal(out, "\"https://chat.example.com\" \"/v1/api\" \"sid\\u2028\\\"x\" \"/rt\" [\"websocket\",\"polling\"] "
                             "true false 1000 500 50 700 1.5 4 3");
    free(out);
    ag_config_destroy(cfg);
}

static void test_unknown_placeholder_and_plain_text(void **state)
{
    ag_config_t *cfg = ag_config_create_default();
    char err[256] = "";
    size_t len;
    const char *bad = "var x = __AG_NOPE__;";
    assert_null(ag_clientjs_substitute(cfg, bad, strlen(bad), &len, err, sizeof(err)));
    assert_non_null(strstr(err, "__AG_NOPE__"));
    /* things that only look like placeholders are left alone */
    char *out = subst(cfg, "__AG_<NAME>__ __AG_ __AG_x__ __AG___ end");
    assert_string_equal(out, "__AG_<NAME>__ __AG_ __AG_x__ __AG___ end");
    free(out);
    ag_config_destroy(cfg);
}

static void rm_rf(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_render_both_files(void **state)
{
    char pub[] = "/tmp/ag-clientjs-XXXXXX", err[256] = "", fallback[4096];
    assert_non_null(mkdtemp(pub));
    ag_config_t *cfg = ag_config_create_default();
    assert_int_equal(ag_clientjs_render(cfg, template_dir(), pub, "/tmp", fallback, sizeof(fallback), err, sizeof(err)), 0);
    assert_string_equal(fallback, "");
    const char *names[] = {"ActionheroWebsocketClient.js", "ActionheroWebsocketClient.min.js"};
    size_t sizes[2];
    for (int k = 0; k < 2; k++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/javascript/%s", pub, names[k]);
        char *js = slurp(path);
        assert_non_null(js);
        assert_null(strstr(js, "__AG_"));
        assert_non_null(strstr(js, "window.location.origin"));
        assert_non_null(strstr(js, "\"/primus\""));
        assert_non_null(strstr(js, "[\"polling\",\"websocket\",\"sse\"]"));
        sizes[k] = strlen(js);
        free(js);
    }
    assert_true(sizes[1] < sizes[0]);
    ag_config_destroy(cfg);
    rm_rf(pub);
}

static void test_custom_name_and_none(void **state)
{
    char pub[] = "/tmp/ag-clientjs-XXXXXX", err[256] = "", fallback[4096], path[4200];
    assert_non_null(mkdtemp(pub));
    ag_config_t *cfg = ag_config_load_string("servers: {websocket: {clientJsName: \"rt\", clientJsPath: \"js/lib/\"}}\n", "t.yaml",
                                             err, sizeof(err));
    assert_non_null(cfg);
    assert_int_equal(ag_clientjs_render(cfg, template_dir(), pub, "/tmp", fallback, sizeof(fallback), err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/js/lib/rt.min.js", pub);
    assert_int_equal(access(path, R_OK), 0);
    ag_config_destroy(cfg);
    rm_rf(pub);

    assert_non_null(mkdtemp(strcpy(pub, "/tmp/ag-clientjs-XXXXXX")));
    cfg = ag_config_load_string("servers: {websocket: {clientJsName: \"\"}}\n", "t.yaml", err, sizeof(err));
    assert_int_equal(ag_clientjs_render(cfg, template_dir(), pub, "/tmp", fallback, sizeof(fallback), err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/javascript", pub);
    assert_int_not_equal(access(path, F_OK), 0);
    ag_config_destroy(cfg);
    rm_rf(pub);
}

/* A public directory that cannot take the files (here "javascript" is a regular file; read-only mounts behave the same)
 * sends them to a fallback directory instead of failing the boot. */
static void test_unwritable_public_dir_falls_back(void **state)
{
    char pub[] = "/tmp/ag-clientjs-XXXXXX", root[] = "/tmp/ag-clientjs-run-XXXXXX", err[256] = "", fallback[4096], path[4200];
    assert_non_null(mkdtemp(pub));
    assert_non_null(mkdtemp(root));
    snprintf(path, sizeof(path), "%s/javascript", pub);
    FILE *fp = fopen(path, "w");
    fclose(fp);
    ag_config_t *cfg = ag_config_create_default();
    assert_int_equal(ag_clientjs_render(cfg, template_dir(), pub, root, fallback, sizeof(fallback), err, sizeof(err)), 0);
    assert_int_equal(strncmp(fallback, root, strlen(root)), 0);
    snprintf(path, sizeof(path), "%s/ActionheroWebsocketClient.js", fallback);
    char *js = slurp(path);
    assert_non_null(js);
    assert_null(strstr(js, "__AG_"));
    free(js);
    ag_config_destroy(cfg);
    rm_rf(pub);
    rm_rf(root);
}

static int dir_is_empty(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", dir);
    return system(cmd) == 0;
}

/* Where the files go is never decided by a link someone planted: not the fallback name this process would have used in
 * a shared /tmp (it is fresh, from mkdtemp), not a "javascript" link in the public directory. */
static void test_planted_links_are_not_followed(void **state)
{
    char pub[] = "/tmp/ag-clientjs-XXXXXX", root[] = "/tmp/ag-clientjs-run-XXXXXX", trap[] = "/tmp/ag-clientjs-trap-XXXXXX";
    char err[256] = "", fallback[4096], path[4200];
    assert_non_null(mkdtemp(pub));
    assert_non_null(mkdtemp(root));
    assert_non_null(mkdtemp(trap));
    snprintf(path, sizeof(path), "%s/javascript", pub);
    assert_int_equal(symlink(trap, path), 0);
    snprintf(path, sizeof(path), "%s/actiongate-client-%d", root, (int)getpid());
    assert_int_equal(symlink(trap, path), 0);
    ag_config_t *cfg = ag_config_create_default();
    assert_int_equal(ag_clientjs_render(cfg, template_dir(), pub, root, fallback, sizeof(fallback), err, sizeof(err)), 0);
    assert_true(dir_is_empty(trap));
    assert_int_equal(strncmp(fallback, root, strlen(root)), 0);
    assert_string_not_equal(fallback, path);
    struct stat st;
    assert_int_equal(lstat(fallback, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 077, 0); /* nobody else may add to it */
    snprintf(path, sizeof(path), "%s/ActionheroWebsocketClient.min.js", fallback);
    assert_int_equal(access(path, R_OK), 0);
    ag_config_destroy(cfg);

    /* ".." in clientJsPath does not climb out of the public directory either */
    cfg = ag_config_load_string("servers: {websocket: {clientJsPath: \"../escape/\"}}\n", "t.yaml", err, sizeof(err));
    assert_non_null(cfg);
    assert_int_equal(ag_clientjs_render(cfg, template_dir(), pub, root, fallback, sizeof(fallback), err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/../escape", pub);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(strncmp(fallback, root, strlen(root)), 0);
    ag_config_destroy(cfg);
    rm_rf(pub);
    rm_rf(root);
    rm_rf(trap);
}

static void test_missing_templates_fail(void **state)
{
    char pub[] = "/tmp/ag-clientjs-XXXXXX", err[256] = "", fallback[4096];
    assert_non_null(mkdtemp(pub));
    ag_config_t *cfg = ag_config_create_default();
    assert_int_not_equal(ag_clientjs_render(cfg, "/nonexistent", pub, "/tmp", fallback, sizeof(fallback), err, sizeof(err)), 0);
    assert_non_null(strstr(err, "/nonexistent/ActionheroWebsocketClient.js.tmpl"));
    ag_config_destroy(cfg);
    rm_rf(pub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_configured_values),
        cmocka_unit_test(test_unknown_placeholder_and_plain_text),
        cmocka_unit_test(test_render_both_files),
        cmocka_unit_test(test_custom_name_and_none),
        cmocka_unit_test(test_unwritable_public_dir_falls_back),
        cmocka_unit_test(test_missing_templates_fail),
        cmocka_unit_test(test_planted_links_are_not_followed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
