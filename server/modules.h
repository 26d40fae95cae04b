/*
 * The modules a node is made of, in the order their HTTP paths are registered (first registered prefix wins; static
 * files last). Each module keeps its own state; ag_modules_* call them all.
 */
#ifndef AG_MODULES_H
#define AG_MODULES_H

#include "server.h"

/* After the store exists, before the listener accepts: registries, rooms, HTTP paths. Returns 0 or an AG_E* code
 * (errbuf gets one line). */
int ag_modules_init(ag_server_t *s, char *errbuf, size_t errlen);
/* Graceful stop, first phase: stop taking work, answer what is pending. */
void ag_modules_stop(ag_server_t *s);
/* Last: free module state (connections are gone). */
void ag_modules_dispose(ag_server_t *s);

#endif
