/*
 * ag_conn_t: one logical realtime connection, whatever carries it.
 *
 * The connection owns the outbound queue; a transport owns the bytes. A transport is anything that implements
 * ag_transport_t: the plain WebSocket at /primus (transports/primus_ws.c), or an engine.io session
 * (transports/eio.c), which itself switches between polling, websocket and sse underneath without the connection
 * noticing. What the connection carries is consumed by whoever registered an ag_conn_handler_t on the node: the
 * session layer (server/session.c). The connection knows neither by name: both talk to it through the calls below,
 * and it talks back to them through their vtables.
 *
 * Flow:
 *   transport --ag_conn_on_frame()--> connection --handler->on_frame()--> consumer (verbs, actions, rooms)
 *   consumer --ag_conn_send()--> outbound queue --transport->on_pending()--> transport pulls with ag_conn_shift()
 *   transport dies --ag_conn_on_transport_gone()--> connection --handler->on_close()--> consumer leaves rooms, ...
 *
 * Lifetime: refcounted. The transport holds one reference until it calls ag_conn_on_transport_gone(); every piece of
 * async work (a pending action, a store callback) holds its own reference with ag_conn_addref()/ag_conn_release(), and
 * must check ag_conn_is_closed() before writing. Nothing frees a connection inside a callback it is dispatching.
 */
#ifndef AG_CONN_H
#define AG_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "actiongate.h"
#include "bucket.h"
#include "common.h"
#include "frame.h"

typedef struct st_ag_server_t ag_server_t;
typedef struct st_ag_conn_t ag_conn_t;

/* The error a message over servers.websocket.server.messageRate gets (as an action's error, or a verb's "Error: …"). */
#define AG_ERR_MESSAGE_RATE "you are sending messages too fast"

typedef struct st_ag_transport_t {
    const char *name;
    /* The queue went from empty to non-empty. If the transport can write
     * now, it drains with ag_conn_shift(); otherwise it does so when it becomes writable. May be called from inside
     * ag_conn_send(); must not release the connection synchronously. */
    void (*on_pending)(ag_conn_t *conn, void *self);
    /* Close on purpose. The transport writes what it needs (close frame, engine.io close packet), then tears itself
     * down and calls ag_conn_on_transport_gone() — possibly later, never before returning from close(). */
    void (*close)(ag_conn_t *conn, void *self, const ag_disconnect_t *why);
    const char *protocol; /* "primus", "engine.io", "socket.io": the metrics' protocol label */
    /* Optional (NULL: its connections cannot resume). From now on the transport carries `to` instead of the
     * connection it was made for: what it called with that one it calls with `to` (README "Resume"). */
    void (*rebind)(ag_conn_t *to, void *self);
} ag_transport_t;

/* The index of why among the reasons counted apart (stats.disconnects), and that index's name for metrics. */
size_t ag_disconnect_kind(const ag_disconnect_t *why);
const char *ag_disconnect_kind_name(size_t kind);

/* The consumer of what connections carry (the session layer). Every call runs on the loop; the connection holds a
 * reference for its duration. */
typedef struct st_ag_conn_handler_t {
    /* The connection was created and registered (the consumer queues its welcome here). */
    void (*on_open)(ag_conn_t *c, void *data);
    /* One inbound message (text or binary), borrowed for the call. */
    void (*on_frame)(ag_conn_t *c, const char *msg, size_t len, int binary, void *data);
    /* One inbound message the connection refused (error: AG_ERR_MESSAGE_RATE), borrowed for the call: the consumer
     * answers it as it answers a request that fails with that error, instead of handling it. */
    void (*on_refused)(ag_conn_t *c, const char *msg, size_t len, int binary, const char *error, void *data);
    /* The connection ended for why (the first reason it got: see ag_conn_close, ag_conn_on_transport_gone); runs
     * once. The queue is dropped afterwards. */
    void (*on_close)(ag_conn_t *c, const ag_disconnect_t *why, void *data);
} ag_conn_handler_t;

/* Makes handler (borrowed for the node's life) the consumer of every connection of s; data is passed back to it.
 * Without a consumer, inbound messages are dropped. */
void ag_conn_set_handler(ag_server_t *s, const ag_conn_handler_t *handler, void *data);

/* What the transport knows about the peer when the connection opens. All strings are copied. */
typedef struct st_ag_conn_info_t {
    const char *fingerprint; /* ?sessionID= of the socket URL; NULL or "" = use the connection id */
    const char *remote_ip;   /* already resolved through trusted proxies (see ag_http_peer_info) */
    int remote_port;
    const char *transport_name; /* "websocket", "polling", "sse": shown by detailsView */
    /* the connect hook (server/backend.h): accepted 1 when it already answered (the engine.io handshake, a socket.io
     * CONNECT waited for it) with hook_data; else handshake is what the session layer tells it. Both borrowed. */
    int accepted;
    json_t *hook_data;
    json_t *handshake;
    /* a token's claims, already verified (server/token.h; borrowed): its string sub becomes the user */
    json_t *claims;
    /* the transport refuses the connection (a bad token): the session layer sends this text and closes it (borrowed) */
    const char *refused;
} ag_conn_info_t;

typedef enum { AG_CONN_OPEN = 0, AG_CONN_CLOSING, AG_CONN_CLOSED } ag_conn_state_t;

struct st_ag_conn_t {
    char id[37];
    char *fingerprint;
    char remote_ip[64];
    int remote_port;
    uint64_t connected_at;
    const char *transport_name; /* static string */
    ag_server_t *server;

    /* session layer state, owned by server/session.c and server/rooms.c */
    struct st_ag_room_member_t *rooms_first, *rooms_last; /* the rooms this connection is in, in join order */
    size_t num_rooms;
    uint32_t joining; /* roomAdd requests in flight: they count against general.maxRoomsPerConnection */
    uint32_t total_actions;
    uint32_t pending_actions;
    struct st_ag_action_req_t *requests; /* its action requests in progress, linked by server/actions.c */
    void *user_data;                     /* for the embedding application's hooks */
    /* What a transport keeps with the connection rather than with itself, so that it follows the connection to the
     * carrier that resumes it (socket.io's ack table and offsets); freed with the connection by carrier_state_free. */
    void *carrier_state;
    void (*carrier_state_free)(void *state);
    /* that state as JSON, for the node or worker it is handed over to (server/resume.c); NULL: nothing goes with it */
    json_t *(*carrier_state_save)(const void *state);
    /* the part of it a node that takes the connection over from a dead one needs, written to its store record with each
     * answer (at most AG_STORE_RCONN_CARRIER_MAX bytes into buf): its length, 0 for nothing; NULL: none */
    size_t (*carrier_state_brief)(const void *state, char *buf, size_t cap);
    int handed_over;   /* it ends here because it lives on elsewhere: nothing of it leaves its rooms or is announced */
    json_t *hook_data; /* what the connect hook answered as "data" (an object), or NULL; shown by detailsView; read it
                        * through ag__conn_hook_data (an empty answer is made on demand) */
    char *user;        /* who the connection is: a token's sub, or the connect hook's data.user; owned, NULL if unknown */
    json_t *handshake; /* for the connect hook, until it answered (server/session.c) */
    int accepted;      /* the connect hook allowed it (or there is none): its welcome went, the disconnect hook is due */
    struct st_ag_backend_call_t *hook_call; /* the connect hook in flight, for the session layer */
    json_t *claims;          /* the verified token's claims (an object), or NULL; shown by detailsView, sent to hooks */
    char *refused;           /* the transport's refusal text, until the session layer sent it (ag_conn_info_t) */
    uint64_t token_deadline; /* wall-clock ms its token expires at (server/token.c) */
    size_t token_slot;       /* 1 + its index in the token expiry heap, 0 when not watched */

    /* private */
    uint32_t _refcnt;
    ag_conn_state_t _state;
    const ag_disconnect_t *_why; /* the first reason it ended for, NULL while open */
    const ag_transport_t *_transport;
    void *_transport_self;
    ag_frame_t **_queue; /* ring buffer of frames */
    size_t _q_cap, _q_head, _q_len;
    size_t _q_bytes;
    int _in_dispatch;
    ag_bucket_t _in_rate;                /* inbound messages (servers.websocket.server.messageRate) */
    int _rate_exempt;                    /* the peer is a trusted proxy (README "Limits") */
    uint8_t _data_empty;                 /* the hook's data is {} and hook_data is not made yet */
    struct st_ag_conn_resume_t *_resume; /* NULL unless its client made it resumable (ag_conn_resumable) */
};

/* The connect hook's data (borrowed), or NULL when there is none: an empty answer is made on the first call. */
json_t *ag__conn_hook_data(ag_conn_t *c);

/* Creates the connection, registers it with the node and tells the consumer (on_open). The transport's reference is
 * the initial one. NULL when out of memory. */
ag_conn_t *ag_conn_create(ag_server_t *server, const ag_transport_t *transport, void *self, const ag_conn_info_t *info);
static inline ag_conn_t *ag_conn_addref(ag_conn_t *c)
{
    ++c->_refcnt;
    return c;
}
void ag_conn_release(ag_conn_t *c);
static inline int ag_conn_is_closed(const ag_conn_t *c)
{
    return c->_state != AG_CONN_OPEN;
}
/* ag_conn_find, ag_conn_close and the accessors (ag_conn_id, ag_conn_user, ...) are public: include/actiongate.h. */
/* Keeps data (an object, borrowed: the connection takes its own reference) as what the connect hook answered; a
 * string data.user becomes the connection's user. AG_OK or AG_ENOMEM. */
int ag_conn_set_data(ag_conn_t *c, json_t *data);
/* Sets the connection's user (copied; NULL clears it). AG_OK or AG_ENOMEM. */
int ag_conn_set_user(ag_conn_t *c, const char *user);

/* --- called by transports --- */
/* One inbound message (text or binary). Borrowed for the call. Counts against the message rate: over it, the consumer
 * answers it with the AG_ERR_MESSAGE_RATE error instead of handling it (on_refused), and after messageBurst such
 * refusals without the rate recovering the connection is closed with AG_DISCONNECT_RATE. */
void ag_conn_on_frame(ag_conn_t *c, const char *data, size_t len, int binary);
/* A message the transport handles itself (a heartbeat, a protocol control frame) counts against the same rate.
 * Returns 1 when the transport may handle it, 0 when it is to be dropped (the connection may be closing). */
int ag_conn_inbound_control(ag_conn_t *c);
/* The transport is gone, for why (peer closed, an error, or after close()). The connection keeps the reason it was
 * closed with if it was; otherwise why becomes its reason. Drops the transport's reference. */
void ag_conn_on_transport_gone(ag_conn_t *c, const ag_disconnect_t *why);
/* The same connection moved to another carrier (engine.io upgrade); name is a static string. */
void ag_conn_set_transport_name(ag_conn_t *c, const char *name);
/* Takes the oldest queued frame; the caller owns the returned reference. NULL when empty. */
ag_frame_t *ag_conn_shift(ag_conn_t *c);
static inline size_t ag_conn_queued(const ag_conn_t *c)
{
    return c->_q_len;
}
/* Puts a frame back at the head (the transport could not write it after all). Takes the caller's reference. */
void ag_conn_unshift(ag_conn_t *c, ag_frame_t *f);

/*
 * The slow-consumer rule, the one place it lives: what waits for one consumer (the frames in its queue plus what its
 * transport holds unsent) may not pass servers.websocket.server.queueMaxBytes or queueMaxFrames. A consumer over the
 * bound is counted (stats.slow_consumers), logged and closed with AG_DISCONNECT_SLOW, whichever transport carries it.
 */
/* A transport reports what it holds unsent (handed to its socket or response, not yet taken by the client); with the
 * queue it counts against the bound. 0, AG_EBUSY when that closed the connection as a slow consumer, or AG_ECLOSED. */
int ag_conn_note_backlog(ag_conn_t *c, size_t bytes, size_t frames);
/* The rule itself, for a consumer that has no connection (an engine.io echo session): 1 when bytes / frames pass the
 * bound, counted and logged under id (the caller then closes it with AG_DISCONNECT_SLOW), else 0. */
int ag_conn_bound_exceeded(ag_server_t *s, const char *id, size_t bytes, size_t frames);

/* --- called by the consumer and the push API --- */
/* The largest frame a connection queues: half of queueMaxBytes, so that one message never turns a consumer with a
 * little backlog into a slow one. Producers refuse larger messages at their source with an error to whoever sent
 * them (a say, an action's reply, a push); the configuration keeps every inbound limit at or under it. */
size_t ag_conn_max_frame(const ag_server_t *s);
/* Queues the frame (adds a reference). A frame over ag_conn_max_frame() is not queued: AG_ETOOBIG, and the connection
 * stays. Over the bound (the slow-consumer rule above) the connection is closed as a slow consumer and AG_EBUSY
 * returned; on a closed connection AG_ECLOSED. */
int ag_conn_send(ag_conn_t *c, ag_frame_t *f);
/* Encodes obj once and sends it; obj is borrowed. */
int ag_conn_send_json(ag_conn_t *c, const json_t *obj);

/*
 * Resume (README "Resume"). A resumable connection numbers what it is sent (ag_outbox_t: every frame that goes through
 * ag_conn_send) and, when its carrier drops, stays "away" for general.resumeWindow instead of ending: still in the
 * connection table, its rooms kept, what it is sent kept in its outbox. Its client comes back on a new connection and
 * presents the connection's id, its secret token and the last number it got (ag_conn_resume); the new connection's
 * transport then carries the old one, and the new one ends (reason "resumed").
 */
#define AG_RESUME_TOKEN_LEN 64
/* Makes c resumable and writes its token (AG_RESUME_TOKEN_LEN hex digits and a NUL) into token: the same one when
 * called again. AG_OK; AG_EINVAL when resume is off (general.resumeWindow 0), the store keeps no room history or the
 * transport cannot be handed over; AG_ENOMEM. */
int ag_conn_resumable(ag_conn_t *c, char token[AG_RESUME_TOKEN_LEN + 1]);
/* 1 when s is one of several workers and token, by the worker index its first byte carries, was issued by another
 * worker: the connection it resumes lives on that worker's loop, out of s's reach. */
int ag_conn_token_elsewhere(const ag_server_t *s, const char *token);
static inline int ag_conn_is_resumable(const ag_conn_t *c)
{
    return c->_resume != NULL;
}
/* c (a fresh connection: no rooms, nothing in flight, not resumable) becomes resumable connection id, taken over from a
 * node that died (README "Resume"): rec is its record in the store (store.h rconn_claim), token its client's (the
 * caller checked it against the record's hash). Its numbered frames after last_seq are queued. AG_OK; AG_ENOENT when
 * a frame after last_seq is no longer kept (c is id now, resumable: the caller ends it); AG_EINVAL when c cannot (id
 * in use here, c not fresh, resume off). */
int ag_conn_adopt(ag_conn_t *c, const char *id, const char *token, const json_t *rec, uint64_t last_seq);
/* Who c is, for its resume record: {"user", "claims", "data"} (a new reference; NULL when it has none of them). */
json_t *ag_conn_who(const ag_conn_t *c);
/* c's user, claims or connect-hook data changed: its resume record (when the store keeps them) is written again. */
void ag_conn_record_who(ag_conn_t *c);
/* Gives c the identity a record kept (who borrowed; not an object: c keeps its own). AG_OK or AG_ENOMEM. */
int ag_conn_take_who(ag_conn_t *c, const json_t *who);
/* Resumable c holds what it is sent unnumbered (its rooms' live lines), even while away, until ag_conn_hold_end: a
 * resume reading its rooms' history must not lose a line published after the store answered and delivered before. */
void ag_conn_hold_begin(ag_conn_t *c);
/* A connection taken over holds what it is sent unnumbered (the live lines of the rooms it joined again) from
 * ag_conn_adopt on (one being resumed here, from ag_conn_hold_begin), until this: first[0..n) (the lines it missed), then `then`
 * (the resume's answer; may be NULL), then what it held, in order. Frames borrowed. */
void ag_conn_hold_end(ag_conn_t *c, ag_frame_t **first, size_t n, ag_frame_t *then);
/* The SHA-256 of token, in hex: what the store keeps of it. */
void ag_conn_token_hash(const char *token, char out[2 * 32 + 1]);
/* Notes in the store's record of resumable c (when the store keeps records) that c joined room where its history stood at
 * (epoch, since); epoch NULL: it left. */
void ag_conn_record_room(ag_conn_t *c, const char *room, const char *epoch, uint64_t since);
/* 1 while c is away (resumable, without a carrier). */
int ag_conn_is_away(const ag_conn_t *c);
/* The resumable connection id whose token is token (compared in constant time), or NULL: an unknown id and a wrong
 * token are one answer. It may still have a carrier its client gave up on (a long-poll not known dead yet). */
ag_conn_t *ag_conn_find_resumable(ag_server_t *s, const char *id, const char *token);
/* 1 when every numbered frame of c after last_seq is still kept (a resume from last_seq loses nothing), else 0. */
int ag_conn_can_replay(const ag_conn_t *c, uint64_t last_seq);
/* Hands carrier's transport to the resumable connection c and ends carrier (reason "resumed"; carrier must have no
 * rooms and no requests; c's own carrier, if it still has one, goes with carrier); then queues c's numbered frames
 * after last_seq again. The caller holds references to both. AG_OK, or AG_ENOENT when something after last_seq was
 * dropped (nothing changed: check with ag_conn_can_replay first). */
int ag_conn_resume(ag_conn_t *c, ag_conn_t *carrier, uint64_t last_seq);
/* Ends an away connection now (its resume failed for good, or the node stops); why is what the consumer sees (NULL:
 * why its carrier dropped). */
void ag_conn_away_end(ag_conn_t *c, const ag_disconnect_t *why);
/* Ends away connection c here because another node or worker took it over (server/resume.c): handed_over is set, the
 * consumer drops what it holds of it without leaving its rooms in the store or telling anyone, and its store record
 * goes (the new owner writes its own). */
void ag_conn_hand_over_end(ag_conn_t *c);
/* Ends every away connection of s (the node stops). */
void ag_conn_away_end_all(ag_server_t *s);
/* The same, then frees the node's away state (ag_server_destroy). */
void ag_conn_away_dispose(ag_server_t *s);
/*
 * A graceful restart (README "Resume"; server/resume_state.c saves and loads the file). ag_conn_resume_info reads what
 * a resumable connection c holds: its token (borrowed), its outbox (borrowed while c is not sent anything) and the
 * ms left of its window (the whole window while it has a carrier). AG_ENOENT when c is not resumable.
 */
struct st_ag_outbox_t;
int ag_conn_resume_info(const ag_conn_t *c, const char **token, const struct st_ag_outbox_t **outbox, uint64_t *left_ms);
typedef struct st_ag_conn_saved_t {
    const char *id, *fingerprint, *user, *remote_ip, *token; /* copied; user may be NULL */
    const char *transport_name;                              /* as it was: "websocket", "polling" or "sse" */
    uint64_t connected_at, left_ms;                          /* left_ms: of its window, at most general.resumeWindow */
    json_t *claims, *hook_data; /* objects or NULL, borrowed: the connection takes its own references */
} ag_conn_saved_t;
/* An away connection made again from what a stopped node saved: in the connection table under its id, resumable with
 * its token, its outbox the one given (whose frames it takes: *outbox is left empty), away for left_ms, after which
 * it ends with "going away" as it would have. The consumer is not told it opened (its welcome went long ago); the
 * caller joins its rooms again. Call before the loop runs, the shortest left_ms first (the window's list stays in
 * order). NULL when resume is off, the id is taken or out of memory. */
ag_conn_t *ag_conn_restore(ag_server_t *s, const ag_conn_saved_t *saved, struct st_ag_outbox_t *outbox);
/* ag_conn_send for a reply to the request message_id (may be NULL): a resumable connection keeps the number it got
 * with the messageId, for ag_conn_reply_of. */
int ag_conn_send_reply(ag_conn_t *c, ag_frame_t *f, const char *message_id);
/* The numbered reply c was sent for message_id (borrowed), or NULL. */
ag_frame_t *ag_conn_reply_of(const ag_conn_t *c, const char *message_id);
/* Queues f as it is, neither numbered nor kept (a chat line with its room offset, a frame sent again); dropped while c
 * is away. Otherwise as ag_conn_send. */
int ag_conn_send_unnumbered(ag_conn_t *c, ag_frame_t *f);

#endif
