/*
 * The session layer: actionhero 29's verbs, actions, rooms and chat over an ag_conn_t (PROTOCOL.md §2).
 * Transports never call this directly; server/conn.c does.
 */
#ifndef AG_SESSION_H
#define AG_SESSION_H

#include "conn.h"

/* A reply over the per-message bound (ag_conn_max_frame) is replaced by this error, followed by " (at most N bytes)":
 * {"error":…} for an action or a file, the verb error for a verb. */
#define AG_ERR_RESPONSE_TOO_BIG "response too big"

/* The connection opened: sends the welcome frame and runs the create hook. */
void ag_session_on_open(ag_conn_t *c);
/* One inbound message: JSON text, or binary (answered with the verb error). Borrowed for the call. */
void ag_session_on_frame(ag_conn_t *c, const char *data, size_t len, int binary);
/* The connection is going away: leave rooms (store + local index), run the destroy hook. Pending actions keep their own
 * references and find the connection closed when they finish. */
void ag_session_on_close(ag_conn_t *c);

/* What detailsView answers about c (id, fingerprint, remoteIP, remotePort, params, connectedAt, rooms, totalActions,
 * pendingActions). New reference. */
json_t *ag__conn_details(ag_conn_t *c);

/* Message codec helpers (server/session.c), exposed for the unit tests. */
/* JavaScript truthiness of a JSON value (NULL = undefined). */
int ag__js_truthy(const json_t *v);
/* String(v) as JavaScript's Array#join renders it (null -> "", object -> "[object Object]"). malloc'ed. */
char *ag__js_string(const json_t *v);
/* The request's messageId (new reference) when truthy, else a fresh UUIDv4 string. msg may be NULL. */
json_t *ag__message_id(const json_t *msg);
/* A verb's argument list: room (when truthy) first, then the values of the other keys in order. New reference. */
json_t *ag__verb_words(const json_t *rest);
/* words[from..] rendered and joined by single spaces, as say does. malloc'ed. */
char *ag__join_words(const json_t *words, size_t from);
/* Appends context "response" and messageId to payload (stolen) and returns it. */
json_t *ag__reply(json_t *payload, const json_t *message_id);
/* A verb reply: {status:"OK"|"Error: <err>", error?, context, data?, messageId}. data borrowed. New reference. */
json_t *ag__verb_reply(const char *err, json_t *data, const json_t *message_id);

#endif

#ifndef AG_SESSION_LIFECYCLE
#define AG_SESSION_LIFECYCLE
/* Node lifecycle of the session layer (registries, built-in actions, starting rooms, /api). */
int ag_session_init(ag_server_t *s, char *errbuf, size_t errlen);
/* Shutdown begins: new actions fail and pending ones are answered with "the server is shutting down". */
void ag_session_stop(ag_server_t *s);
void ag_session_dispose(ag_server_t *s);
#endif
