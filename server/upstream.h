/*
 * The upstream: an application behind actiongate that speaks actionhero's web API. Every call is
 * `POST <base>/<action>` with the params as a JSON body, the caller's fingerprint as the fingerprint cookie and its
 * address as X-Forwarded-For; the answer is the app's JSON object, whatever its HTTP status (actionhero puts a failed
 * action's text in its "error" key). Actions go through it today; connection hooks can use the same call later.
 *
 * An async HTTP/1.1 client on the node's h2o loop (h2o 2.2.5's http1client), one keep-alive socket pool per base URL.
 * Bounded: calls in flight per node (over the bound ag_upstream_call refuses at once), response body size, one
 * deadline per call. Several base URLs are used round robin; a base that refuses connections is skipped for a second
 * (the call fails over to the next base, which is safe: the request never left), and each base's state changes
 * (down, failing, back up) are logged once per change, not once per request.
 */
#ifndef AG_UPSTREAM_H
#define AG_UPSTREAM_H

#include <jansson.h>
#include "addr.h"
#include "node.h"

/* What a client sees when the upstream itself failed (its own errors come back as the app wrote them). */
#define AG_UPSTREAM_ERR_UNAVAILABLE "the upstream server is unavailable"
#define AG_UPSTREAM_ERR_TIMEOUT "the upstream server did not answer in time"
#define AG_UPSTREAM_ERR_BAD_REPLY "the upstream server sent an invalid response"
#define AG_UPSTREAM_ERR_BUSY "the upstream server is busy, try again later"
#define AG_UPSTREAM_ERR_TOO_LARGE "the request is too large for the upstream server"

typedef struct st_ag_upstream_t ag_upstream_t;
typedef struct st_ag_upstream_call_t ag_upstream_call_t;

/* Who is asking, as the app should see it. Both strings are borrowed for the ag_upstream_call() only. */
typedef struct st_ag_upstream_who_t {
    const char *fingerprint; /* sent as the cookie servers.web.cookieKey; NULL or "" = no cookie */
    const char *remote_ip;   /* sent as X-Forwarded-For; NULL or not an address = not sent */
} ag_upstream_who_t;

/* The end of a call, on the loop, never from inside ag_upstream_call(). err NULL: the app answered a JSON object
 * (reply, borrowed for the callback) with HTTP status. Otherwise err is one of AG_UPSTREAM_ERR_* and status the HTTP
 * status a web client should get for it (502, 504); reply is NULL. */
typedef void (*ag_upstream_cb)(void *data, const char *err, int status, json_t *reply);

/* Node lifecycle (server/modules.c). init does nothing without upstream.urls. Calls in flight at shutdown run to their
 * end (each is bounded by upstream.timeout); dispose cancels what is left, so their owners must have dropped their
 * handles first (the session layer is disposed before). */
int ag_upstream_init(ag_server_t *s, char *errbuf, size_t errlen);
void ag_upstream_dispose(ag_server_t *s);

/* Whether an action goes upstream: upstream.urls is set, the name matches upstream.actions, and it is not a local action
 * kept local (upstream.keepLocalActions). */
int ag_upstream_routes(ag_server_t *s, const char *action, int is_local);
/* Whether name can be put in a URL path as it is (what actionhero action names are made of). */
int ag_upstream_valid_name(const char *name);

/* Calls action with params (borrowed; serialised before this returns). 0: cb will be called exactly once, unless the
 * call is cancelled first; *handle (may be NULL) gets a handle valid until then. AG_EBUSY: upstream.maxInFlight calls are
 * in flight on this node; AG_ETOOBIG: the params are over upstream.maxRequestBytes; AG_ENOENT: no upstream; AG_EINVAL:
 * the name cannot go in a URL; AG_ENOMEM. cb is not called
 * when this returns an error. */
int ag_upstream_call(ag_server_t *s, const char *action, const json_t *params, const ag_upstream_who_t *who, ag_upstream_cb cb,
                     void *data, ag_upstream_call_t **handle);
/* Abandons a call: its callback will not be called. */
void ag_upstream_cancel(ag_upstream_call_t *call);

/* The app's action catalogue in actionhero's documentation shape ({name: {"1": {name, version, description, inputs}}}),
 * from the reply of its documentation action: either that shape under "documentation", or an OpenAPI 2 document (the
 * swagger action of generated projects: one path "/<action>" per action). New reference; an empty object when the
 * reply has neither. */
json_t *ag_upstream_documentation_from(const json_t *reply);

typedef struct st_ag_upstream_stats_t {
    uint64_t calls, failovers, refused_busy, failed;
    size_t in_flight;
} ag_upstream_stats_t;
const ag_upstream_stats_t *ag_upstream_stats(ag_server_t *s);

#endif
