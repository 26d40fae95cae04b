/*
 * The server object's lifecycle, and the one place that knows every module (server/server.c; listening and
 * accepting are server_accept.c, the workers' wake-ups and gathers server_workers.c, the public API server_public.c):
 * it builds a node with its modules in order, binds the listener, runs the loop, stops gracefully and destroys. Modules
 * see the node through server/node.h only and never call each other's lifecycle.
 *
 *     ag_server_t *s = ag_server_create(cfg, err, sizeof(err));   // modules, HTTP paths, store: no socket yet
 *     ag_server_listen(s, err, sizeof(err));                      // binds servers.web.bindIP:port
 *     int status = ag_server_run(s);                               // until SIGTERM/SIGINT or ag_server_stop()
 *     ag_server_destroy(s);
 *
 * The public ag_create/ag_run/ag_stop/ag_destroy (include/actiongate.h) are these, with the configuration loaded and the
 * listener bound by ag_create. With several workers (general.workers, ag_options_t.workers) ag_create_ex builds one
 * node per worker, each from its own copy of the configuration, sharing the listening socket and the shared memory
 * store; worker 0 is the node handed out: ag_server_run runs the others on threads of their own and joins them,
 * ag_server_stop on any worker stops them all, ag_server_destroy of worker 0 frees them all.
 */
#ifndef AG_SERVER_H
#define AG_SERVER_H

#include "node.h"

/* Builds a node from cfg (ownership of cfg passes to the server): store, modules and their HTTP paths, the HTTP
 * context. Binds nothing, so a node can be built and driven without a socket (the session unit tests do). NULL on
 * failure with one line in errbuf. */
ag_server_t *ag_server_create(ag_config_t *cfg, char *errbuf, size_t errlen);
/* Binds the listener (servers.web.bindIP and port; port 0 picks a free one, see ag_server_port) and publishes the
 * node's address to the cluster. 0, or an AG_E* code with one line in errbuf. */
int ag_server_listen(ag_server_t *s, char *errbuf, size_t errlen);
/* Runs the loop until ag_server_stop() finished the graceful shutdown; accepts connections when listening. Returns the
 * exit status. */
int ag_server_run(ag_server_t *s);
/* Begins the graceful shutdown (from the loop thread only; ag_server_run turns SIGTERM/SIGINT into this call). */
void ag_server_stop(ag_server_t *s);
/* Frees the node and every module's state. Call after ag_server_run returned, or instead of running it; the loop must
 * not run again afterwards. */
void ag_server_destroy(ag_server_t *s);

#endif
