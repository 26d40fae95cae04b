/*
 * The server API: HTTP endpoints the backend calls to push (README "Server API"). Off unless serverApi.key is set; every
 * request carries the key ("Authorization: Bearer <key>" or "X-Api-Key: <key>"), checked in constant time. POST with
 * a JSON object body; answers are JSON: 200 {...}, 401 {"error"} for a missing or wrong key, 400 {"error": reason} for a
 * body or field that is wrong, 404 {"error"} for an unknown room or connection. Modules add calls of their own
 * (ag_api_register, include/actiongate.h), behind the same key check.
 */
#ifndef AG_SERVERAPI_H
#define AG_SERVERAPI_H

#include "node.h"

int ag_serverapi_register(ag_server_t *s, char *errbuf, size_t errlen);
/* Frees the calls added with ag_api_register. */
void ag_serverapi_dispose(ag_server_t *s);

#endif
