/*
 * Small HTTP helpers shared by every handler and transport (h2o 2.2.5 request API).
 */
#ifndef AG_HTTP_H
#define AG_HTTP_H

#include "addr.h"
#include "node.h"

/* Registers a handler on the node's (single) host for paths starting with path; call while the node is being built
 * (before its HTTP context exists). Handlers registered first win; static files come last. Every path gets
 * a guard against ambiguous request framing as its first handler, whoever registered it. */
h2o_pathconf_t *ag_server_register_path(ag_server_t *s, const char *path);

/* The server a request belongs to. */
ag_server_t *ag_http_server(h2o_req_t *req);

/* Peer address. When the socket peer is one of general.trustedProxies (addresses or CIDR ranges), X-Forwarded-For is
 * walked from the right (every such header, in order, as one list): trusted proxies are skipped and the first address
 * that is not trusted is the client; an entry that is not an address ends the walk where it is, so nothing left of it
 * is believed; a chain of trusted addresses only gives its leftmost. Without X-Forwarded-For, X-Real-IP is believed.
 * The port is the forwarded entry's own ("[v6]:port", "v4:port"), else a numeric X-Forwarded-Port, else the socket's.
 * ip (64 bytes) gets the canonical text form (IPv4-mapped IPv6 as IPv4). */
void ag_http_peer_info(h2o_req_t *req, char ip[64], int *port);

/* servers.websocket.server.origins applied to the request's Origin header. */
typedef enum {
    AG_HTTP_ORIGIN_NONE,    /* no Origin header: a client that is not a browser (or a same-origin GET): allowed */
    AG_HTTP_ORIGIN_ALLOWED, /* listed, or the list is "*" */
    AG_HTTP_ORIGIN_REFUSED, /* not listed, or several Origin headers */
} ag_http_origin_t;
ag_http_origin_t ag_http_origin_check(h2o_req_t *req);
/* Adds the CORS origin headers for this request: "Access-Control-Allow-Origin: *" when the list is "*" (config
 * refuses "*" with credentials), else the request's Origin when listed (plus "Access-Control-Allow-Credentials: true"
 * with credentials) and "Vary: Origin" either way. */
void ag_http_cors_origin(h2o_req_t *req);

/* Value of query parameter name (URL-decoded, pool-allocated), or NULL. */
const char *ag_http_query_param(h2o_req_t *req, const char *name);
/* First header value by lower-case name, or NULL (not NUL-terminated: *len is set). */
const char *ag_http_header(h2o_req_t *req, const char *name, size_t *len);
/* Value of a cookie (pool-allocated), or NULL; looks at every Cookie header (HTTP/2 may send several). */
const char *ag_http_cookie(h2o_req_t *req, const char *name);

/* Sends a complete response: status, content type, body (copied into the pool). Extra headers may be added to
 * req->res.headers before the call. */
void ag_http_respond(h2o_req_t *req, int status, const char *reason, const char *content_type, const char *body, size_t len);
/* URL-decodes s[0..len) into out (len + 1 bytes, NUL-terminated), '+' as space when form is set; returns the length. */
size_t ag_http_urldecode_into(char *out, const char *s, size_t len, int form);
/* Pool-allocated URL decoding of s[0..len), '+' as space when form is set. */
char *ag_http_urldecode(h2o_mem_pool_t *pool, const char *s, size_t len, int form, size_t *outlen);

#endif
