/*
 * The action registry and the life of one action request, whatever asked for it (a socket's "action" event or
 * /api). Owned by server/actions.c; the public side of it is in include/actiongate.h.
 *
 * A request is created by ag__action_start(), which scrubs and validates the params and runs the handler. The handler
 * completes it once (ag_action_succeed/fail), now or later; the origin's done callback then sends the answer. On
 * shutdown every pending request is answered "the server is shutting down" at once and freed when its handler
 * completes (or when the node is disposed).
 */
#ifndef AG_ACTIONS_H
#define AG_ACTIONS_H

#include "actiongate.h"
#include "conn.h"
#include "node.h"

#define AG_ERR_UNKNOWN_ACTION "unknown action or invalid apiVersion"
#define AG_ERR_SHUTTING_DOWN "the server is shutting down"
#define AG_ERR_TOO_MANY_PENDING "you have too many pending requests"
#define AG_ERR_BLOCKED_WEBSOCKET "this action does not support the websocket connection type"

typedef struct st_ag__action_t {
    ag_action_def_t def; /* strings and inputs owned */
    json_t **defaults;   /* parsed default_json per input, or NULL entries */
} ag__action_t;

/* How the answer goes back. result is borrowed (an object, possibly empty); error is NULL on success. status is the
 * HTTP status (200, 404, 422, 500, 503, or the action's own). */
typedef void (*ag__action_done_fn)(ag_action_req_t *r, json_t *result, int status, const char *error);

struct st_ag_upstream_call_t;

struct st_ag_action_req_t {
    ag_server_t *server;
    const ag__action_t *action;                  /* NULL for a request served upstream */
    struct st_ag_upstream_call_t *upstream_call; /* while the upstream works on it */
    json_t *params;                              /* owned */
    ag_conn_t *conn;                             /* a reference, for socket requests */
    json_t *message_id;                          /* owned */
    ag__action_done_fn done;
    void *origin; /* the origin's own state (e.g. the web request) */
    h2o_linklist_t link;
    ag_action_req_t *conn_prev, *conn_next; /* in conn->requests */
    uint64_t started_ms;
    uint64_t timer_at; /* monotonic ns */
    void (*timer_cb)(ag_action_req_t *r);
    size_t heap_index; /* SIZE_MAX when no timer */
    int answered;
    int upstream; /* sent to the app behind the node */
};

/* The registry and the pending requests of a node (server->actions). */
int ag__actions_init(ag_server_t *s);
void ag__actions_stop(ag_server_t *s);
void ag__actions_dispose(ag_server_t *s);
/* The connection closed: its requests that wait on a timer (ag_action_after) or on the upstream are dropped now, with
 * their timers and calls (their done sees the closed connection); a handler still running keeps its request until it
 * completes it. Without this, a client could leave behind any number of long sleeps and slow upstream calls. */
void ag__actions_conn_closed(ag_conn_t *c);
/* The catalogue: {name: {"1": {name, version, description, inputs: {key: {required, default?}}}}}. New reference. */
json_t *ag__actions_documentation(ag_server_t *s);

/* Starts a request: params (stolen) must hold "action"; message_id (stolen) is echoed by the origin. done is called
 * exactly once, possibly before this returns. conn (may be NULL) gets a reference held until the request is freed.
 * An action that goes upstream (server/upstream.h) is sent to the app as the client sent it; its answer comes back
 * through done like a local action's. */
void ag__action_start(ag_server_t *s, json_t *params, json_t *message_id, ag_conn_t *conn, ag__action_done_fn done, void *origin);
/* Who asked, for requests without a connection (/api): what the upstream app is told. Borrowed for the call. */
typedef struct st_ag__requester_t {
    const char *fingerprint;
    const char *remote_ip;
} ag__requester_t;
void ag__action_start_as(ag_server_t *s, json_t *params, json_t *message_id, ag_conn_t *conn, const ag__requester_t *who,
                         ag__action_done_fn done, void *origin);
/* The documentation verb: answers c with the catalogue (the app's upstream actions and the local ones), now or once the
 * upstream answered. Counts as a pending action of c while it waits. message_id is borrowed. */
void ag__documentation_verb(ag_conn_t *c, const json_t *message_id);

/* Param handling, exposed for the unit tests: keeps only declared inputs plus action, apiVersion, messageId, file and
 * callback; then defaults, formatters, required checks and validators in actionhero's order. Returns 0, or 422 with the
 * protocol's text in err. */
void ag__params_scrub(const ag__action_t *a, json_t *params);
int ag__params_validate(const ag__action_t *a, json_t *params, char *err, size_t errlen);
/* Registers the built-in actions (server/builtin_actions.c). */
int ag__builtin_actions_register(ag_server_t *s);

/* A verb reply: {status:"OK"|"Error: <err>", error?, context, data?, messageId}. data borrowed. New reference. */
json_t *ag__verb_reply(const char *err, json_t *data, const json_t *message_id);

#endif
