/*
 * A module for spec/tools/module.test.js: reads a connection through every public accessor, adds a second set of
 * hooks next to the example's, and a server-API call that finds a connection by id and closes it.
 */
#include <stdio.h>
#include <string.h>
#include <actiongate.h>

static int add_room(const char *room, void *data)
{
    json_array_append_new(data, json_string(room));
    return 0;
}

static int first_room_only(const char *room, void *data)
{
    (void)room;
    (void)data;
    return 1;
}

static void whoami(ag_action_req_t *req, void *data)
{
    (void)data;
    ag_conn_t *c = ag_action_conn(req);
    if (c == NULL) {
        ag_action_fail(req, 400, "a socket connection only");
        return;
    }
    json_t *rooms = json_array();
    size_t calls = ag_conn_rooms(c, add_room, rooms);
    json_t *hook_data = ag_conn_data(c);
    ag_action_succeed(req,
                      json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:o?,s:O?,s:o,s:I,s:I,s:b,s:b,s:b}", "id", ag_conn_id(c), "fingerprint",
                                ag_conn_fingerprint(c), "remoteIp", ag_conn_remote_ip(c), "remotePort", ag_conn_remote_port(c),
                                "transport", ag_conn_transport(c), "protocol", ag_conn_protocol(c), "user",
                                ag_conn_user(c) != NULL ? json_string(ag_conn_user(c)) : NULL, "data", hook_data, "rooms", rooms,
                                "roomCalls", (json_int_t)calls, "stoppedAfter", (json_int_t)ag_conn_rooms(c, first_room_only, NULL),
                                "found", ag_conn_find(ag_conn_server(c), ag_conn_id(c)) == c, "closed", ag_conn_closed(c), "recent",
                                ag_conn_connected_at(c) > 0));
}

static const ag_action_def_t whoami_def = {.name = "whoami", .description = "the asking connection", .run = whoami};

static int on_join(ag_conn_t *c, const char *room, const char **reject, void *data)
{
    (void)c;
    (void)data;
    if (strcmp(room, "secret") == 0) {
        *reject = "secret is refused by the probe";
        return 1;
    }
    return 0;
}

static const ag_hooks_t hooks = {.on_join = on_join};

static int kick(ag_server_t *s, json_t *body, json_t **reply, void *data)
{
    (void)data;
    const char *id = json_string_value(json_object_get(body, "id"));
    ag_conn_t *c = id != NULL ? ag_conn_find(s, id) : NULL;
    if (c == NULL) {
        *reply = json_pack("{s:s}", "error", "no such connection here");
        return 404;
    }
    ag_conn_close(c, &AG_DISCONNECT_SERVER);
    *reply = json_pack("{s:s}", "kicked", id);
    return 200;
}

int actiongate_module_init(ag_server_t *server, const char *path, char *errbuf, size_t errlen)
{
    int ret;
    if ((ret = ag_action_register(server, &whoami_def)) != 0 || (ret = ag_hooks_add(server, &hooks)) != 0 ||
        (ret = ag_api_register(server, "kick", kick, NULL)) != 0) {
        snprintf(errbuf, errlen, "%s: %s", path, ag_strerror(ret));
        return 1;
    }
    /* the built-in calls and a taken name are refused */
    if (ag_api_register(server, "publish", kick, NULL) != AG_EEXIST || ag_api_register(server, "kick", kick, NULL) != AG_EEXIST ||
        ag_api_register(server, "../x", kick, NULL) != AG_EINVAL) {
        snprintf(errbuf, errlen, "ag_api_register accepted a name it must refuse");
        return 1;
    }
    return 0;
}
