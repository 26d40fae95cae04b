/*
 * Signed tokens (JWT, RFC 7519) that a client presents when it connects (README "Tokens"). Two parts:
 *
 * - The verifier: a token's text in, its claims or an error out. Nothing is trusted before the header's "alg" has been
 *   read here and found in tokens.algorithms: libjwt 1.10 takes the algorithm from the token itself, so the key a
 *   token is checked with is chosen by this code (the secret for HS*, the public key for RS* / ES*), never by the
 *   token. "none" can never be allowed (the configuration refuses it). The text is bounded (tokens.maxBytes) before
 *   anything parses it. Pure: no logging, no node.
 * - The node's part: where a handshake carries its token (the query parameter tokens.queryParam, or
 *   "Authorization: Bearer"), the refusal log (rate-limited, never the token's text), the expiry of connections
 *   whose token has "exp" (one min-heap driven by a small ladder of h2o timeouts: no timer per connection), and the
 *   refreshToken verb.
 */
#ifndef AG_TOKEN_H
#define AG_TOKEN_H

#include <stdint.h>
#include <jansson.h>
#include "conn.h"
#include "node.h"

/* Why a token was refused. The detail is for logs; a client is told less (ag_token_client_error). */
typedef enum {
    AG_TOKEN_OK = 0,
    AG_TOKEN_MISSING,     /* none presented, and tokens.require is on */
    AG_TOKEN_TOO_LARGE,   /* over tokens.maxBytes */
    AG_TOKEN_MALFORMED,   /* not three base64url parts with a JSON object header and payload, or claims of the wrong type */
    AG_TOKEN_ALG,         /* the header's alg is not in tokens.algorithms (alg "none" included) */
    AG_TOKEN_CRIT,        /* a "crit" header: extensions this verifier does not understand must be refused (RFC 7515) */
    AG_TOKEN_SIGNATURE,   /* the signature does not match (forged, tampered, or another key) */
    AG_TOKEN_EXPIRED,     /* exp (plus leeway) is past */
    AG_TOKEN_NOT_YET,     /* nbf (minus leeway) is still ahead */
    AG_TOKEN_AUDIENCE,    /* tokens.audience is set and aud does not name it */
    AG_TOKEN_ISSUER,      /* tokens.issuer is set and iss differs */
    AG_TOKEN_SUBJECT,     /* refreshToken: sub is not the connection's user */
    AG_TOKEN_SERVER_ERROR /* out of memory */
} ag_token_err_t;

/* What the log says (static). */
const char *ag_token_strerror(ag_token_err_t err);
/* What the client is told (static): "invalid token" for a malformed, forged or wrongly signed token (no oracle on
 * which check failed), else "a token is required", "token expired", "token not yet valid", "token audience not
 * accepted", "token issuer not accepted", "token subject does not match the connection's user", "token too large". */
const char *ag_token_client_error(ag_token_err_t err);

typedef struct st_ag_token_verifier_t ag_token_verifier_t;

/* Whether the configuration turns tokens on (a secret or a public key file). */
int ag_token_configured(const ag_config_t *cfg);
/* Builds the verifier from tokens.*: reads and checks publicKeyFile (a PEM public key, RSA or EC), fixes the allowed
 * algorithms. NULL with one line in errbuf when the configuration cannot work (also when tokens are not configured). */
ag_token_verifier_t *ag_token_verifier_create(const ag_config_t *cfg, char *errbuf, size_t errlen);
void ag_token_verifier_destroy(ag_token_verifier_t *v);
/* Checks len bytes of text (borrowed; need not be NUL-terminated) at now (seconds since the epoch). On AG_TOKEN_OK,
 * *claims is a new reference to the payload object; otherwise it is NULL. */
ag_token_err_t ag_token_verify(const ag_token_verifier_t *v, const char *text, size_t len, int64_t now, json_t **claims);

/* --- the node's part --- */

int ag_token_init(ag_server_t *s, char *errbuf, size_t errlen);
void ag_token_dispose(ag_server_t *s);
/* Whether the node checks tokens. */
int ag_token_enabled(ag_server_t *s);
/* Whether a connection may be made without a token (tokens off, or tokens.require off). */
int ag_token_optional(ag_server_t *s);

/* Checks what a handshake request presents: the query parameter tokens.queryParam, else "Authorization: Bearer".
 * AG_TOKEN_OK with *claims a new reference (NULL when there is no token and none is required, or tokens are off).
 * With allow_missing, a request without a token is not refused even when one is required (socket.io: its CONNECT may
 * still bring one). A refusal is logged (rate-limited) with the peer's address. */
ag_token_err_t ag_token_check_request(ag_server_t *s, h2o_req_t *req, int allow_missing, json_t **claims);
/* The same for a token found elsewhere (socket.io's auth.token); text NULL = none presented. who names the peer in
 * the log (an address or a connection id). */
ag_token_err_t ag_token_check_text(ag_server_t *s, const char *text, size_t len, const char *who, json_t **claims);

/* Starts watching c's token expiry (c->claims' exp), if it has one; the watch holds a reference on c. Called when the
 * connection is welcomed. */
void ag_token_watch(ag_conn_t *c);
/* Stops it (the connection closed). Idempotent. */
void ag_token_unwatch(ag_conn_t *c);
/* The refreshToken verb: checks text, requires its sub to be c's user, then keeps its claims and moves the
 * connection's deadline to the new exp (no exp: no deadline). On a refusal nothing changes. */
ag_token_err_t ag_token_refresh(ag_conn_t *c, const char *text, size_t len);

#endif
