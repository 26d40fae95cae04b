/*
 * Connection hooks answered by the backend: the upstream app (server/upstream.h) is asked about connections, room
 * changes and chat, through the same `POST <upstream>/<action>` as actions. Each hook is optional (hooks.* in the
 * configuration names the action that answers it). An answer with a non-empty "error" refuses with that text; any other
 * JSON object allows, and its keys may say more (connect: "data", kept on the connection; say: "message", the text
 * said instead). A backend that does not answer within hooks.timeout, or cannot be reached, refuses with the upstream's
 * error text, or allows when hooks.allowOnFailure is set.
 *
 * The callers (the session layer for Primus, roomAdd/roomLeave, say and disconnect; transports/eio_router.c for an engine.io
 * handshake; transports/socketio_connect.c for a socket.io CONNECT) hold what the answer needs until it comes, and
 * cancel the call when that goes first.
 */
#ifndef AG_BACKEND_H
#define AG_BACKEND_H

#include <jansson.h>
#include "node.h"

/* The longest refusal text passed on to a client, bytes (a longer one is cut). */
#define AG_BACKEND_MAX_REFUSAL 512

typedef enum {
    AG_HOOK_CONNECT = 0,
    AG_HOOK_DISCONNECT,
    AG_HOOK_ROOM_ADD,
    AG_HOOK_ROOM_LEAVE,
    AG_HOOK_SAY,
    AG_HOOK__COUNT
} ag_hook_t;

typedef struct st_ag_backend_call_t ag_backend_call_t;

/* The answer, on the loop and never from inside ag_backend_ask(). refusal NULL: allowed, with the backend's reply
 * (borrowed for the call; NULL when the failure policy allowed it). Otherwise refusal is the text the client gets. */
typedef void (*ag_backend_cb)(void *data, const char *refusal, json_t *reply);

int ag_backend_init(ag_server_t *s, char *errbuf, size_t errlen);
/* Answers every call still waiting with AG_ERR_SHUTTING_DOWN (their owners clean up in their callbacks). */
void ag_backend_stop(ag_server_t *s);
void ag_backend_dispose(ag_server_t *s);

/* Whether hook is configured. */
int ag_backend_has(ag_server_t *s, ag_hook_t hook);
/* Asks the backend. params are stolen. cb may be NULL (the disconnect hook: told, not asked). *handle (may be NULL)
 * is valid until cb runs or ag_backend_cancel(). Always 0: a call the upstream refuses at once is answered (by the
 * failure policy) on the next loop turn. */
int ag_backend_ask(ag_server_t *s, ag_hook_t hook, json_t *params, const char *fingerprint, const char *remote_ip, ag_backend_cb cb,
                   void *data, ag_backend_call_t **handle);
/* Abandons a call: cb will not run. */
void ag_backend_cancel(ag_backend_call_t *call);

/* What a handshake request tells the connect hook: {"query": {name: value}, "cookies": "<Cookie header>"}. New
 * reference, or NULL when no connect hook is configured (nothing is collected then). */
json_t *ag_backend_handshake_of(ag_server_t *s, h2o_req_t *req);

/* Who a connection is, for every hook: {connectionId, fingerprint, remoteIP, transport, data?}. New reference. */
struct st_ag_conn_t;
json_t *ag_backend_conn_params(const struct st_ag_conn_t *c);

#endif
