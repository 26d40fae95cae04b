/*
 * The socket.io v5 packet codec: "<type>[<attachments>-][<nsp>,][<ack id>][<JSON>]", types CONNECT 0, DISCONNECT 1,
 * EVENT 2, ACK 3, CONNECT_ERROR 4, BINARY_EVENT 5, BINARY_ACK 6 (the binary ones are served in the conformance mode
 * only). A packet is the text of one engine.io message packet, without its "4". Leaf code: returns errors, does not log.
 */
#ifndef AG_SOCKETIO_PACKET_H
#define AG_SOCKETIO_PACKET_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "common.h"
#include "frame.h"

/* The most attachments one binary packet may announce. socket.io-parser sets no bound; each attachment is a frame a
 * stranger makes us read (and, in the conformance mode, keep), so a packet announcing more closes its session. */
#define AG_SIO_MAX_ATTACHMENTS 16
/* What a binary event gets outside the conformance mode (the "error" of a "response" event, or of the ACK). */
#define AG_SIO_ERR_BINARY "binary events are not served"

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
/* Event names socket.io-parser refuses in an EVENT (they mean something to the emitters on either side). */
int ag_sio_is_reserved_event(const char *name);

#endif
