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
/* The key a messageId (a string or an integer) is kept under with its answer: malloc'ed, or NULL for any other. */
char *ag__resume_key(const json_t *message_id);

#endif
