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
 * transports/socketio_recovery.c): carrier, a connection just made, becomes the resumable connection `id` again if
 * token is its token, from last_seq and offsets (room -> last offset its client got; borrowed for the call), exactly as the verb
 * does. When no connection here is `id`, the node or worker holding it as an away connection is asked to hand it over
 * (AG_RESUME_OP_HANDOVER), and on a store that keeps records (Redis) the record of a dead node's connection is claimed;
 * then position reads the client's position against what came (rec: the record, store.h rconn_claim's shape, with
 * "carrier" the transport's own state when it was handed over live; borrowed) into *last_seq and offsets (an empty
 * object to fill): 0, or -1 to refuse. done runs once, maybe before this returns, unless carrier closed meanwhile (then
 * it never runs): with resumed the connection that carries on (carrier's transport now carries it: carrier ended,
 * reason "resumed", or carrier itself became it, taken over) and reason NULL, or with resumed NULL and the reason it
 * was refused (carrier is left as it was, the away connection ends when it can never be resumed). carried: the record's
 * "carrier" member when the connection came from elsewhere with it (an object, conn.h carrier_state_save, when it was
 * handed over live; a string, carrier_state_brief, from a dead node's record), else NULL (borrowed for the call).
 */
typedef void (*ag__resume_done_cb)(ag_conn_t *carrier, ag_conn_t *resumed, const char *reason, const json_t *carried, void *ud);
typedef int (*ag__resume_position_cb)(void *ud, const json_t *rec, uint64_t *last_seq, json_t *offsets);
void ag__resume_take_over(ag_conn_t *carrier, const char *id, const char *token, uint64_t last_seq, const json_t *offsets,
                          ag__resume_position_cb position, ag__resume_done_cb done, void *ud);
/* The cluster call that asks every node for an away connection: {"op":"handover","id",
 * "th": the SHA-256 of its token, hex, "state": whether the asker's transport keeps state of its own (only a connection of
 * the same kind is handed over)}. The node holding `id` as an away connection whose token has that hash, with
 * nothing in flight, ends it here without telling anyone (no leave, no disconnect hook: it lives on elsewhere; its
 * store memberships stay) and answers {"record": {...}} (the rconn_claim shape, plus "carrier"); one that holds it
 * otherwise (on a carrier, requests running) answers {"busy":true}; any other answers {}. call borrowed. */
#define AG_RESUME_OP_HANDOVER "handover"
/* Answers that call on this node: registers the node's cluster call receiver, which hands every other call to
 * server/push.c's (call after ag__push_init). */
void ag__resume_init(ag_server_t *s);
/* Frees the node's resume state (ag_server_destroy). */
void ag__resume_dispose(ag_server_t *s);
/* The key a messageId (a string or an integer) is kept under with its answer: malloc'ed, or NULL for any other. */
char *ag__resume_key(const json_t *message_id);

#endif
