/*
 * An example actiongate module (README "C modules"): an action, a hook and a server-API call, built against an
 * installed actiongate with pkg-config alone.
 *
 *   hello            action: {"greeting": "hello, <name>"} (name defaults to "world"); a socket connection's own
 *                    user, when its connect hook named one, is greeted instead of the param
 *   on_join          refuses the room "private" to everyone
 *   POST /server/echo  (the server API's prefix and key) answers {"echo": <the body>, "node": <node id>}
 */
#include <stdio.h>
#include <string.h>
#include <actiongate.h>

static void hello_run(ag_action_req_t *req, void *data)
{
    (void)data;
    const char *name = ag_action_param_str(req, "name", "world");
    ag_conn_t *c = ag_action_conn(req);
    if (c != NULL && ag_conn_user(c) != NULL)
        name = ag_conn_user(c);
    char greeting[300];
    snprintf(greeting, sizeof(greeting), "hello, %.256s", name);
    ag_action_succeed(req, json_pack("{s:s}", "greeting", greeting));
}

static const ag_input_t hello_inputs[] = {{.name = "name", .required = 0, .default_json = "\"world\""}};

static const ag_action_def_t hello = {
    .name = "hello",
    .description = "greets (an example module)",
    .inputs = hello_inputs,
    .num_inputs = sizeof(hello_inputs) / sizeof(hello_inputs[0]),
    .run = hello_run,
};

static int on_join(ag_conn_t *c, const char *room, const char **reject, void *data)
{
    (void)c;
    (void)data;
    if (strcmp(room, "private") == 0) {
        *reject = "the room private is closed (example module)";
        return 1;
    }
    return 0;
}

static const ag_hooks_t hooks = {.on_join = on_join};

static int echo(ag_server_t *s, json_t *body, json_t **reply, void *data)
{
    (void)data;
    *reply = json_pack("{s:O,s:s}", "echo", body, "node", ag_node_id(s));
    return 200;
}

int actiongate_module_init(ag_server_t *server, const char *path, char *errbuf, size_t errlen)
{
    int ret;
    if ((ret = ag_action_register(server, &hello)) != 0 || (ret = ag_hooks_add(server, &hooks)) != 0 ||
        (ret = ag_api_register(server, "echo", echo, NULL)) != 0) {
        snprintf(errbuf, errlen, "%s: %s", path, ag_strerror(ret));
        return 1;
    }
    return 0;
}
