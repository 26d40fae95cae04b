/*
 * engine.io v4 packet codec (PROTOCOL.md §4, §5): packet types, U+001E-joined polling payloads, "b<base64>" binary,
 * session ids, the error bodies, and SSE event framing. A leaf module: it allocates only through ag_eio_buf_t and
 * returns errors without logging.
 */
#ifndef AG_EIO_PACKET_H
#define AG_EIO_PACKET_H

#include <stddef.h>
#include <stdint.h>

enum {
    AG_EIO_OPEN = 0,
    AG_EIO_CLOSE = 1,
    AG_EIO_PING = 2,
    AG_EIO_PONG = 3,
    AG_EIO_MESSAGE = 4,
    AG_EIO_UPGRADE = 5,
    AG_EIO_NOOP = 6,
};
#define AG_EIO_SEPARATOR '\x1e'

/* The six error codes of the HTTP side, with their exact messages. */
enum {
    AG_EIO_ERR_TRANSPORT_UNKNOWN = 0,
    AG_EIO_ERR_UNKNOWN_SID = 1,
    AG_EIO_ERR_BAD_HANDSHAKE_METHOD = 2,
    AG_EIO_ERR_BAD_REQUEST = 3,
    AG_EIO_ERR_FORBIDDEN = 4,
    AG_EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION = 5,
};
/* "Transport unknown", ... */
const char *ag_eio_error_message(int code);
/* {"code":N,"message":"..."} into out (>= 64 bytes); returns its length. */
size_t ag_eio_error_body(int code, char *out, size_t cap);

/* A growable byte buffer (heap). */
typedef struct st_ag_eio_buf_t {
    char *base;
    size_t len, cap;
} ag_eio_buf_t;
int ag_eio_buf_reserve(ag_eio_buf_t *b, size_t extra);
int ag_eio_buf_append(ag_eio_buf_t *b, const void *data, size_t len);
void ag_eio_buf_dispose(ag_eio_buf_t *b);

/* Standard base64 with padding. Returns the encoded length ((len + 2) / 3 * 4); out needs that many bytes. */
size_t ag_eio_base64_encode(const uint8_t *in, size_t len, char *out);
/* Decodes standard base64 (padding optional). out needs len * 3 / 4 + 3 bytes. Returns the length or -1. */
long ag_eio_base64_decode(const char *in, size_t len, uint8_t *out);

/* A session id: 128 random bits, URL-safe base64 without padding (22 characters plus NUL). */
#define AG_EIO_SID_LEN 22
void ag_eio_sid_generate(char out[AG_EIO_SID_LEN + 1]);

/* One decoded packet. For binary messages data points into the caller's scratch buffer. */
typedef struct st_ag_eio_packet_t {
    int type;
    const char *data;
    size_t len;
    int binary;
} ag_eio_packet_t;

/* Decodes one packet as it appears in a polling payload or a WebSocket text frame ("4hi", "2probe", "bAQID").
 * scratch must hold len bytes (binary). Returns 0 or AG_EINVAL. */
int ag_eio_packet_decode(const char *s, size_t len, char *scratch, ag_eio_packet_t *out);
/* Splits a polling payload: returns the next piece (between separators) or 0 at the end. *pos starts at 0. */
int ag_eio_payload_next(const char *payload, size_t len, size_t *pos, const char **piece, size_t *piece_len);

/* Appends one packet in polling encoding (binary messages as "b<base64>"), with a separator first unless the
 * buffer is empty. */
int ag_eio_payload_append(ag_eio_buf_t *b, int type, const char *data, size_t len, int binary);

/* Appends one SSE event carrying payload: "id: <id>\n", then one "data: " line per LF-separated piece, or
 * "event: j" and the payload as a JSON string literal when it contains a CR; then the blank line. */
int ag_eio_sse_event_append(ag_eio_buf_t *b, uint64_t id, const char *payload, size_t len);

/* --- engine.io protocol 3 (EIO=3: engine.io-client 3.x, socket.io-client 2.x) --- */

/* Appends one packet as "<length>:<packet>", the length in UTF-16 code units of the packet as JavaScript counts them;
 * a binary message is "b4<base64>". */
int ag_eio3_payload_append(ag_eio_buf_t *b, int type, const char *data, size_t len, int binary);
/* The next packet of a protocol 3 payload: 1 (piece set, *pos advanced), 0 at the end, AG_EINVAL when the payload is
 * malformed (a bad or zero length, one that runs past the end or splits a character). *pos starts at 0. */
int ag_eio3_payload_next(const char *payload, size_t len, size_t *pos, const char **piece, size_t *piece_len);
/* Decodes one protocol 3 packet: "b4<base64>" is a binary message, the rest as ag_eio_packet_decode. scratch as there. */
int ag_eio3_packet_decode(const char *s, size_t len, char *scratch, ag_eio_packet_t *out);
/* Protocol 3's binary polling payload (application/octet-stream bodies, both ways, unless the client asked for b64):
 * for each packet a 0 (text) or 1 (binary) byte, the packet's length in bytes as decimal digits one byte each (0-9),
 * 0xFF, then the packet: a text packet as "<type digit><data>", a binary one as the type byte (4) and the data. */
int ag_eio3_binary_payload_append(ag_eio_buf_t *b, int type, const char *data, size_t len, int binary);
/* The next packet of a binary payload: 1 (piece, borrowed from payload, and *binary set; *pos advanced), 0 at the end,
 * AG_EINVAL when malformed (a kind byte other than 0 or 1, a digit byte above 9, more than ten digits, a zero length or
 * one that runs past the end). *pos starts at 0. */
int ag_eio3_binary_payload_next(const char *payload, size_t len, size_t *pos, const char **piece, size_t *piece_len, int *binary);
/* Decodes one piece of a binary payload: a text piece as ag_eio3_packet_decode (scratch as there), a binary one must
 * be a message (its data borrowed from s). Returns 0 or AG_EINVAL. */
int ag_eio3_binary_packet_decode(const char *s, size_t len, int binary, char *scratch, ag_eio_packet_t *out);
/* Appends a JSONP polling answer: ___eio[<the digits of index>]("<payload as a JS string literal>"); */
int ag_eio_jsonp_append(ag_eio_buf_t *b, const char *index, const char *payload, size_t len);
/* Decodes a JSONP polling POST (application/x-www-form-urlencoded, the payload in field "d", its newlines escaped by
 * the client) into out, which needs len bytes. Returns the payload's length, or -1 without a "d" field or with a bad
 * percent escape. */
long ag_eio_jsonp_form_decode(const char *body, size_t len, char *out);

#endif
