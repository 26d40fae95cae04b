/*
 * socket.io v5 over our engine.io v4 sessions (default path /socket.io/, servers.socketio.*), so that the stock
 * socket.io-client 4.x and the socket.io-era pages (client/socket.io.js, served at <path>/socket.io.js) reach the
 * session layer.
 *
 * ag_sio_t is the socket.io layer of one engine.io session (packets: socketio_packet.h). From the logical connection's
 * point of view it is the transport (an ag_transport_t): it turns each emitted event (action, say, roomView,
 * roomChange, detailsView, quit, and any other verb by name) into a session frame with a messageId it tracks, and each
 * outbound session frame into an EVENT ("welcome", "response", "say", or the frame's context for pushes) or, when the
 * client passed an ack callback with the request, an ACK carrying the reply. The session frames are embedded byte for
 * byte.
 *
 * The engine.io session under it (transports/eio*.c) stays in charge of transports, heartbeats and upgrades; it talks
 * to the layer through the ag_sio_* calls below instead of the ag_conn_* ones, and the layer talks back through an
 * ag_sio_lower_t. Outbound packets are pulled (ag_sio_shift) when the engine.io session can write, so the logical
 * connection's outbound queue keeps bounding a slow consumer.
 */
#ifndef AG_SOCKETIO_H
#define AG_SOCKETIO_H

#include "conn.h"
#include "node.h"
#include "socketio_packet.h"
#include "resume.h"

/* --- the layer over one engine.io session --- */

typedef struct st_ag_sio_t ag_sio_t;

/* What the engine.io session under the layer provides. */
typedef struct st_ag_sio_lower_t {
    /* Packets are ready: pull them with ag_sio_shift() now if the session can write, else when it can. May be called
     * from inside any ag_sio_* call; must not destroy anything synchronously. */
    void (*on_pending)(void *lower);
    /* Close the engine.io session once it has written what ag_sio_shift() still returns (on polling that may wait for
     * the client's next GET); ag_sio_closing() tells it the close was asked for. The session then calls
     * ag_sio_on_gone(), later, never from inside close(). */
    void (*close)(void *lower);
} ag_sio_lower_t;

/* A new engine.io session on the socket.io path. info (copied) describes the peer; the logical connection is created
 * when the client CONNECTs to "/". NULL on ENOMEM. */
ag_sio_t *ag_sio_create(ag_server_t *s, const ag_sio_lower_t *lower, void *lower_self, const ag_conn_info_t *info);
/* One engine.io message packet's data (borrowed for the call). A packet that does not decode closes the session
 * ("parse error"), as socket.io does. */
void ag_sio_on_message(ag_sio_t *sio, const char *data, size_t len, int binary);
/* The session speaks socket.io protocol 4 (socket.io-client 2.x, over engine.io protocol 3): "/" is connected at once
 * as socket.io 2 did (the client never sends that CONNECT), and CONNECT replies carry no payload. */
void ag_sio_start_legacy(ag_sio_t *sio);
/* The engine.io session now runs over another transport ("polling", "websocket", "sse"; static string). */
void ag_sio_set_transport_name(ag_sio_t *sio, const char *name);
/* The next socket.io packet to send as one engine.io message (the caller owns the reference and adds the "4"), or
 * NULL when nothing is ready. */
ag_frame_t *ag_sio_shift(ag_sio_t *sio);
/* At least as many packets as ag_sio_shift() would return now (frames the client never sees are counted too). */
size_t ag_sio_queued(ag_sio_t *sio);
/* Whether the layer asked its engine.io session to close (see ag_sio_lower_t.close). */
int ag_sio_closing(const ag_sio_t *sio);
/* The engine.io session is gone for why: the logical connection (if any) learns its transport is gone, for the layer's
 * own reason if it closed the session itself (a client that broke the protocol), else for why; sio is freed. */
void ag_sio_on_gone(ag_sio_t *sio, const ag_disconnect_t *why);

/* --- the conformance mode (socketio_conformance.c) --- */

/* Puts the conformance upper on a fresh engine.io session of the socket.io path (servers.socketio.conformance: the
 * answers of socket.io-protocol's reference server, no connection). */
struct st_ag__eio_session_t;
void ag__sio_attach_conformance(struct st_ag__eio_session_t *s, const ag_conn_info_t *info);
/* Links a session's connect timer to the node's connectTimeout list (servers.socketio.connectTimeout). */
void ag__sio_connect_timer_link(ag_server_t *s, h2o_timeout_entry_t *entry);

/* --- connection state recovery (socketio_recovery.c; README "Resume", socket.io): internal to the layer --- */

/* What to do with the session layer's reply to a request the layer made for the client. */
typedef struct st_ag__sio_pending_t {
    int64_t mid; /* the messageId the layer gave the request */
    int64_t ack; /* the client's ack id, or -1: the reply is emitted as "response" */
    int swallow; /* the request was the layer's own (roomChange's leave): nobody sees the reply */
    char *room;  /* the room a join (roomAdd, roomChange) names */
    int current; /* roomChange: room becomes the current room when the join succeeds */
} ag__sio_pending_t;

/* Connection state recovery (README "Resume", socket.io): the rooms an offset string can name, and the longest pid and
 * offset a client may present. */
#define AG__SIO_TRACKED_ROOMS 16
#define AG__SIO_ID_MAX 36
#define AG__SIO_PID_MAX (AG__SIO_ID_MAX + 1 + AG_RESUME_TOKEN_LEN)
#define AG__SIO_OFFSET_MAX (20 + AG__SIO_TRACKED_ROOMS * (1 + 8 + 1 + 20))

typedef struct st_ag__sio_tracked_t {
    uint32_t hash; /* of the name: what an offset string carries */
    uint64_t offset;
    char *name;
} ag__sio_tracked_t;

/* What the layer keeps with the connection (its carrier_state) rather than with the engine.io session, so that a
 * connection recovered on another session keeps numbering its requests and routing their answers. */
typedef struct st_ag__sio_state_t {
    char *room; /* the current room of the socket.io era's single-room model */
    int64_t next_mid;
    ag__sio_pending_t *pend;
    size_t num_pend, cap_pend;
    /* recovery: "<connection id>.<token>", empty while the connection is not resumable (no offsets are sent then) */
    char pid[AG__SIO_PID_MAX + 1];
    uint64_t seq; /* the newest numbered frame translated for the client */
    ag__sio_tracked_t rooms[AG__SIO_TRACKED_ROOMS];
    size_t num_rooms;
    int overflow; /* a room line could not be tracked: offsets say so from then on, and nothing recovers from them */
    /* the newest request with an ack the client sent: its ack id, the hash of its text after that id, its messageId */
    int64_t last_ack, last_mid;
    uint64_t last_hash;
    int matching; /* recovered: the first event may be that request again (see reemitted) */
} ag__sio_state_t;

/* Frees an ag__sio_state_t (a connection's carrier_state_free). */
void ag__sio_state_free(void *state);
void ag__sio_tracked_clear(ag__sio_tracked_t *t, size_t *n);
/* The hash of a room's name an offset string names it by, and the hash of an EVENT's text. */
uint32_t ag__sio_room_hash(const char *name);
uint64_t ag__sio_text_hash(const char *s, size_t len);
/* What a session frame translated for conn's client (obj, borrowed) tells about where the client stands: a numbered
 * frame's seq, a room line's offset. 1 when it is a room line the client has already (a line delivered to a connection
 * while it recovered, which the recovery replayed too): it is not sent again. */
int ag__sio_track(ag_conn_t *conn, ag__sio_state_t *st, json_t *obj);
/* The connection joined room anew (its offsets may start again, in a room made anew): what st knew of it goes. */
void ag__sio_forget_room(ag__sio_state_t *st, const char *room);
/* st's position as the offset string every event carries last: "<seq>" then ".<room hash, 8 hex digits>-<offset>" per
 * tracked room; "x" when the rooms cannot be told apart (nothing recovers from it). */
void ag__sio_offset_text(const ag__sio_state_t *st, char buf[AG__SIO_OFFSET_MAX + 1]);
/* Reads an offset a client presents (untrusted): its seq and, for each room it names, {room: offset} into offsets,
 * the rooms' names taken from st (the connection it recovers) into out (AG__SIO_TRACKED_ROOMS entries; the caller
 * frees them with ag__sio_tracked_clear). 0, or -1 when any of it is wrong (then out may hold entries too). */
int ag__sio_offset_parse(const ag__sio_state_t *st, const char *text, uint64_t *seq, json_t *offsets, ag__sio_tracked_t *out,
                         size_t *nout);
/* A recoverable connection's frame as it was before the resume core numbered it ({"seq":n, first) or gave it its room
 * offset (,"offset":n} last): lead + data + trail, data borrowed from the frame. */
typedef struct st_ag__sio_body_t {
    const char *lead, *data, *trail;
    size_t len;
} ag__sio_body_t;
ag__sio_body_t ag__sio_bare_body(const ag_frame_t *f);
/* "<opening><lead>" + data + "<trail><closing>" as one packet of type (id < 0: none). NULL on ENOMEM. */
ag_frame_t *ag__sio_encode_body(ag_sio_type_t type, int64_t id, const char *opening, const ag__sio_body_t *b, const char *closing);
/* EVENT ["<name>",<body>,"<st's offset>"]. NULL on ENOMEM. */
ag_frame_t *ag__sio_encode_event_offset(const ag__sio_state_t *st, const char *name, const ag__sio_body_t *b);

/* --- module --- */
/* Serves, from memory: /faye/client.js (a script that defines nothing, for the faye era's pages), the rendered
 * ActionheroWebsocketClient followed by client/legacy/actionHeroWebSocket.js as
 * /<urlPathForFiles>/<clientJsPath>actionHeroWebSocket.js and actionheroClient.js, and, when servers.socketio.enabled,
 * <servers.socketio.path>/socket.io.js with the path baked in (the engine.io endpoint on that path is the engine.io
 * module's). Returns 0 or an AG_E* code (errbuf gets one line). */
int ag_socketio_register(ag_server_t *s, char *errbuf, size_t errlen);
void ag_socketio_dispose(ag_server_t *s);

#endif
