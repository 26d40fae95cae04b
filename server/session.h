/*
 * The session layer: actionhero 29's verbs, actions, rooms and chat over an ag_conn_t (PROTOCOL.md §2).
 * Transports never call this directly; server/conn.c does.
 */
#ifndef AG_SESSION_H
#define AG_SESSION_H

#include "conn.h"

/* The connection opened: sends the welcome frame and runs the create hook. */
void ag_session_on_open(ag_conn_t *c);
/* One inbound message: JSON text, or binary (answered with the verb error). Borrowed for the call. */
void ag_session_on_frame(ag_conn_t *c, const char *data, size_t len, int binary);
/* The connection is going away: leave rooms (store + local index), run the destroy hook. Pending actions keep their own
 * references and find the connection closed when they finish. */
void ag_session_on_close(ag_conn_t *c);

#endif

#ifndef AG_SESSION_LIFECYCLE
#define AG_SESSION_LIFECYCLE
/* Node lifecycle of the session layer (registries, built-in actions, starting rooms, /api). */
int ag_session_init(ag_server_t *s, char *errbuf, size_t errlen);
/* Shutdown begins: new actions fail and pending ones are answered with "the server is shutting down". */
void ag_session_stop(ag_server_t *s);
void ag_session_dispose(ag_server_t *s);
#endif
