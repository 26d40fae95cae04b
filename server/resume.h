/*
 * The resume verb and the exactly-once rule for re-sent requests (README "Resume"), for the session layer.
 *
 *   {"event":"resume"}                                         makes this connection resumable: data {id, token, seq}
 *   {"event":"resume","id":I,"token":T,"seq":N,"offsets":{room:offset}}
 *                                                              this connection becomes the away connection I again
 *
 * Both are answered unnumbered. A resume that succeeds sends, first, what the client missed (the numbered frames after
 * N, then each room's lines after its offset), then {"status":"OK","data":{"resumed":true,"id":I,"seq":S}}; one that
 * fails answers "Error: not resumed: <reason>" with data {"resumed":false,"reason":…,"id":…,"token":…,"seq":0}: the
 * new connection, already made resumable.
 */
#ifndef AG_RESUME_H
#define AG_RESUME_H

#include "conn.h"

/* The resume verb; rest is the request minus event and messageId (borrowed). */
void ag__resume_verb(ag_conn_t *c, json_t *rest, const json_t *message_id);
/* A request c's client sent again: 1 when it was answered already (the answer is sent again) or is still running
 * (its answer will come), so it must not run; else 0. msg is the request (borrowed). */
int ag__resume_seen(ag_conn_t *c, const json_t *msg);
/*
 * The same take-over for a transport that resumes on its own handshake (socket.io's connection state recovery,
 * transports/socketio.c): carrier, a connection just made, becomes the resumable connection `id` again if token is
 * its token, from last_seq and offsets (room -> last offset its client got; borrowed for the call), exactly as the verb
 * does. done runs once, maybe before this returns, unless carrier closed meanwhile (then it never runs): with resumed
 * the connection that carries on (carrier's transport now carries it; carrier ended, reason "resumed") and reason NULL,
 * or with resumed NULL and the reason it was refused (carrier is left as it was, the away connection ends when it can
 * never be resumed).
 */
typedef void (*ag__resume_done_cb)(ag_conn_t *carrier, ag_conn_t *resumed, const char *reason, void *ud);
void ag__resume_take_over(ag_conn_t *carrier, const char *id, const char *token, uint64_t last_seq, const json_t *offsets,
                          ag__resume_done_cb done, void *ud);
/* The key a messageId (a string or an integer) is kept under with its answer: malloc'ed, or NULL for any other. */
char *ag__resume_key(const json_t *message_id);

#endif
