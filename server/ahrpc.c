#include "ahrpc.h"
#include "cluster.h"
#include "rooms.h"
#include "session.h"

#include <stdlib.h>
#include <string.h>

/* The doResponse for message_id; response is stolen. */
static void respond(ag_server_t *s, const json_t *message_id, json_t *response)
{
    json_t *msg = json_pack("{s:O,s:o}", "messageId", message_id, "response", response != NULL ? response : json_null());
    char *text = msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;
    if (text != NULL)
        s->store->ops->publish(s->store, "_rpc", text, strlen(text), NULL, NULL);
    else
        ag_log(AG_LOG_WARN, "ahrpc", NULL, "out of memory: an RPC is left unanswered");
    free(text);
    json_decref(msg);
}

static json_t *error_response(const char *err)
{
    return json_pack("{s:s}", "error", err);
}

/* A join or leave finished (possibly before ag_room_join/leave returned). data: the messageId, a reference. */
static void on_membership(ag_conn_t *c, const char *err, void *data)
{
    json_t *message_id = data;
    respond(c->server, message_id, err != NULL ? error_response(err) : json_true());
    json_decref(message_id);
}

static void apply(ag_server_t *s, ag_conn_t *c, const json_t *args, const json_t *message_id)
{
    const char *method = json_string_value(json_array_get(args, 1));
    const json_t *margs = json_array_get(args, 2);
    int close = 0;
    /* as actionhero's applyResponder: a method without arguments only describes the connection */
    if (method != NULL && margs != NULL && !json_is_null(margs)) {
        if (strcmp(method, "sendMessage") == 0) {
            int ret = ag_push_conn(s, c->id, (json_t *)margs);
            if (ret != AG_OK)
                return respond(s, message_id, error_response(ret == AG_ETOOBIG ? "message too big" : "not a message object"));
        } else if (strcmp(method, "destroy") == 0) {
            close = 1;
        } else {
            char err[200];
            snprintf(err, sizeof(err), "connection method `%.100s` is not served by actiongate", method);
            return respond(s, message_id, error_response(err));
        }
    }
    json_t *details = ag__conn_details(c);
    if (details != NULL)
        json_object_set_new(details, "type", json_string("websocket"));
    respond(s, message_id, details);
    if (close)
        ag_conn_close(c, &AG_DISCONNECT_SERVER);
}

void ag_ahrpc_on_do(ag_server_t *s, const char *payload, size_t len)
{
    json_t *msg = json_loadb(payload, len, 0, NULL);
    const char *method = json_string_value(json_object_get(msg, "method"));
    const char *conn_id = json_string_value(json_object_get(msg, "connectionId"));
    const json_t *message_id = json_object_get(msg, "messageId");
    json_t *args = json_object_get(msg, "args");
    if (method == NULL || message_id == NULL)
        goto out;
    if (conn_id == NULL) {
        /* every node runs it; the app's nodes answer */
        const char *line = json_string_value(json_array_get(args, 0));
        if (strcmp(method, "api.log") == 0 && line != NULL)
            ag_log_limited(AG_LOG_INFO, "ahrpc", NULL, "%.300s", line);
        goto out;
    }
    ag_conn_t *c = ag_conn_find(s, conn_id);
    if (c == NULL)
        goto out; /* held by another node, or by none */
    const char *room = json_string_value(json_array_get(args, 1));
    if (strcmp(method, "api.chatRoom.addMember") == 0 || strcmp(method, "api.chatRoom.removeMember") == 0) {
        json_t *ref = json_incref((json_t *)message_id);
        if (method[13] == 'a')
            ag_room_join(c, room, on_membership, ref);
        else
            ag_room_leave(c, room, on_membership, ref);
    } else if (strcmp(method, "api.connections.applyResponder") == 0) {
        apply(s, c, args, message_id);
    } else {
        char err[200];
        snprintf(err, sizeof(err), "RPC method `%.100s` is not served by actiongate", method);
        respond(s, message_id, error_response(err));
    }
out:
    json_decref(msg);
}

void ag_ahrpc_init(ag_server_t *s)
{
    ag_cluster_set_rpc_receiver(s, ag_ahrpc_on_do);
}
