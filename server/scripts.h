/*
 * The browser scripts served from memory: the socket.io-era client (client/socket.io.js at
 * <servers.socketio.path>/socket.io.js, with the configured path baked in), the faye era's /faye/client.js, and the
 * rendered ActionheroWebsocketClient followed by the wrappers of those eras under the names their pages load
 * (<public>/<clientJsPath>actionHeroWebSocket.js and actionheroClient.js). Each answers GET and HEAD at its exact path
 * with an ETag and the files' cache duration. The files come from the client directory (ag_server_t's client_dir).
 */
#ifndef AG_SCRIPTS_H
#define AG_SCRIPTS_H

#include "node.h"

/* Module hooks (server/server.c): read and register every script at boot (an unreadable file is a boot error); free
 * them at exit. */
int ag_scripts_register(ag_server_t *s, char *errbuf, size_t errlen);
void ag_scripts_dispose(ag_server_t *s);

#endif
