/*
 * The session layer: actionhero 29's verbs, actions, rooms and chat over an ag_conn_t (PROTOCOL.md §2).
 * Nothing calls it by name but the wiring: it registers itself as the consumer of every connection (ag_conn_handler_t).
 */
#ifndef AG_SESSION_H
#define AG_SESSION_H

#include "conn.h"

/* Makes the session layer the consumer of the node's connections (ag_conn_handler_t): the welcome and the connect hook
 * when one opens, verbs and actions for each message, leaving rooms and the disconnect hook when it ends. */
void ag_session_init(ag_server_t *s);

/* A reply over the per-message bound (ag_conn_max_frame) is replaced by this error, followed by " (at most N bytes)":
 * {"error":…} for an action or a file, the verb error for a verb. */
#define AG_ERR_RESPONSE_TOO_BIG "response too big"

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

/* What detailsView answers about c (id, fingerprint, remoteIP, remotePort, params, connectedAt, rooms, totalActions,
 * pendingActions). New reference. */
json_t *ag__conn_details(ag_conn_t *c);

#endif
