/*
 * Actions over plain HTTP: /api/<action>, and /api?action=… or a body "action" when servers.web.queryRouting is on
 * (PROTOCOL.md §6). Owned by server/webapi.c.
 */
#ifndef AG_WEBAPI_H
#define AG_WEBAPI_H

#include "node.h"

/* Registers the handler on "/" + servers.web.urlPathForActions. */
int ag__webapi_register(ag_server_t *s, char *errbuf, size_t errlen);
/* Parses an application/x-www-form-urlencoded (or query) string into obj (string values; later keys win). */
void ag__parse_form(json_t *obj, const char *s, size_t len);
/* "Sun, 22 Nov 2026 05:11:53 GMT" (JavaScript's Date#toUTCString) for ms since the epoch; buf >= 32 bytes. */
void ag__http_date(uint64_t ms, char buf[32]);

#endif
