/*
 * socket.io v5 over our engine.io v4 sessions (default path /socket.io/, servers.socketio.*), so that the stock
 * socket.io-client 4.x and the socket.io-era pages (client/socket.io.js, served at <path>/socket.io.js) reach the
 * session layer.
 *
 * Two parts:
 * - the packet codec: "<type>[<attachments>-][<nsp>,][<ack id>][<JSON>]", types CONNECT 0, DISCONNECT 1, EVENT 2,
 *   ACK 3, CONNECT_ERROR 4 (BINARY_EVENT 5 and BINARY_ACK 6 are decoded but not served). Leaf code: returns errors, does
 *   not log.
 * - ag_sio_t, the socket.io layer of one engine.io session. From the logical connection's point of view it is the
 *   transport (an ag_transport_t): it turns each emitted event (action, say, roomView, roomChange, detailsView, quit,
 *   and any other verb by name) into a session frame with a messageId it tracks, and each outbound session frame into
 *   an EVENT ("welcome", "response", "say", or the frame's context for pushes) or, when the client passed an ack
 *   callback with the request, an ACK carrying the reply. The session frames are embedded byte for byte.
 *
 * The engine.io session under it (transports/eio*.c) stays in charge of transports, heartbeats and upgrades; it talks
 * to the layer through the ag_sio_* calls below instead of the ag_conn_* ones, and the layer talks back through an
 * ag_sio_lower_t. Outbound packets are pulled (ag_sio_shift) when the engine.io session can write, so the logical
 * connection's outbound queue keeps bounding a slow consumer.
 */
#ifndef AG_SOCKETIO_H
#define AG_SOCKETIO_H

#include <stdint.h>
#include <jansson.h>
#include "server.h"

/* --- codec --- */

typedef enum {
    AG_SIO_CONNECT = 0,
    AG_SIO_DISCONNECT = 1,
    AG_SIO_EVENT = 2,
    AG_SIO_ACK = 3,
    AG_SIO_CONNECT_ERROR = 4,
    AG_SIO_BINARY_EVENT = 5,
    AG_SIO_BINARY_ACK = 6,
} ag_sio_type_t;

typedef struct st_ag_sio_packet_t {
    ag_sio_type_t type;
    const char *nsp; /* borrowed from the decoded text (or a static "/"); not NUL-terminated */
    size_t nsp_len;
    int64_t id;           /* ack id, -1 when absent */
    unsigned attachments; /* binary packets only */
    json_t *data;         /* owned; NULL when the packet has no payload */
} ag_sio_packet_t;

/* Decodes one socket.io packet (the text of an engine.io message packet, without its "4"), with the validity rules of
 * socket.io-parser 4: CONNECT carries an object or nothing, DISCONNECT nothing, EVENT a non-empty array whose first
 * element is a number or a string other than a reserved event name, ACK an array, CONNECT_ERROR a string or an
 * object. Returns 0, or AG_EINVAL (nothing to dispose). */
int ag_sio_decode(const char *s, size_t len, ag_sio_packet_t *p);
void ag_sio_packet_dispose(ag_sio_packet_t *p);
/* Whether the decoded namespace is the main one, "/". */
int ag_sio_nsp_is_main(const ag_sio_packet_t *p);

/* Encodes "<type>[<nsp>,][<id>]<prefix><json><suffix>": nsp NULL or "/" is left out, id < 0 is left out, any of
 * prefix/json/suffix may be NULL. json is raw text (a session frame embedded verbatim). Refcount 1; NULL on ENOMEM. */
ag_frame_t *ag_sio_encode(ag_sio_type_t type, const char *nsp, int64_t id, const char *prefix, const char *json, size_t json_len,
                          const char *suffix);
/* EVENT ["<name>",<json>] (name is JSON-escaped). */
ag_frame_t *ag_sio_encode_event(const char *nsp, int64_t id, const char *name, const char *json, size_t json_len);

/* --- the layer over one engine.io session --- */

typedef struct st_ag_sio_t ag_sio_t;

/* What the engine.io session under the layer provides. */
typedef struct st_ag_sio_lower_t {
    /* Packets are ready: pull them with ag_sio_shift() now if the session can write, else when it can. May be called
     * from inside any ag_sio_* call; must not destroy anything synchronously. */
    void (*on_pending)(void *lower);
    /* Close the engine.io session after writing what ag_sio_shift() still returns. The session then calls
     * ag_sio_on_gone(), later, never from inside close(). */
    void (*close)(void *lower);
} ag_sio_lower_t;

/* A new engine.io session on the socket.io path. info (copied) describes the peer; the logical connection is created
 * when the client CONNECTs to "/". NULL on ENOMEM. */
ag_sio_t *ag_sio_create(ag_server_t *s, const ag_sio_lower_t *lower, void *lower_self, const ag_conn_info_t *info);
/* One engine.io message packet's data (borrowed for the call). A packet that does not decode closes the session
 * ("parse error"), as socket.io does. */
void ag_sio_on_message(ag_sio_t *sio, const char *data, size_t len, int binary);
/* The engine.io session now runs over another transport ("polling", "websocket", "sse"; static string). */
void ag_sio_set_transport_name(ag_sio_t *sio, const char *name);
/* The next socket.io packet to send as one engine.io message (the caller owns the reference and adds the "4"), or
 * NULL when nothing is ready. */
ag_frame_t *ag_sio_shift(ag_sio_t *sio);
/* Puts a packet back at the head (the session could not write it after all). Takes the caller's reference. */
void ag_sio_unshift(ag_sio_t *sio, ag_frame_t *f);
/* At least as many packets as ag_sio_shift() would return now (frames the client never sees are counted too). */
size_t ag_sio_queued(ag_sio_t *sio);
/* The engine.io session is gone: the logical connection (if any) learns its transport is gone; sio is freed. */
void ag_sio_on_gone(ag_sio_t *sio);

/* --- module --- */
/* Serves /faye/client.js always, and <servers.socketio.path>/socket.io.js when servers.socketio.enabled (the engine.io
 * endpoint on that path is registered by the engine.io module). Returns 0 or an AG_E* code (errbuf gets one line). */
int ag_socketio_register(ag_server_t *s, char *errbuf, size_t errlen);
void ag_socketio_dispose(ag_server_t *s);

#endif
