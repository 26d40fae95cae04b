/*
 * C modules (README "C modules"): the shared objects the configuration's `modules` list names, loaded at boot and
 * unloaded last at ag_destroy. The contract a module meets is in include/actiongate.h (AG_MODULE_INIT_SYMBOL).
 */
#ifndef AG_MODULES_H
#define AG_MODULES_H

#include "node.h"

/* Loads every module of s->config->modules in order and calls its init. 0, or AG_ECONFIG with one line in errbuf
 * naming the file (it cannot be loaded, it has no init symbol, or its init failed) and AG_ENOMEM. The modules loaded
 * before a failure stay loaded until ag_modules_unload. */
int ag_modules_load(ag_server_t *s, char *errbuf, size_t errlen);
/* Takes the loaded modules from s (NULL when none): they are unloaded by ag_modules_unload once nothing can call into
 * them any more, i.e. after the node's state is freed. */
struct st_ag_modules_t *ag_modules_detach(ag_server_t *s);
/* Unloads and frees what ag_modules_detach returned (NULL is fine). */
void ag_modules_unload(struct st_ag_modules_t *m);

#endif
