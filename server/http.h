/*
 * Small HTTP helpers shared by every handler and transport (h2o 2.2.5 request API).
 */
#ifndef AG_HTTP_H
#define AG_HTTP_H

#include "node.h"

/* The server a request belongs to. */
ag_server_t *ag_http_server(h2o_req_t *req);

/* Peer address, resolved through X-Forwarded-For (first entry) / X-Real-IP / X-Forwarded-Port only when the socket
 * peer is one of general.trustedProxies. ip must hold 64 bytes. */
void ag_http_peer_info(h2o_req_t *req, char ip[64], int *port);

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
