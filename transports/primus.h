/*
 * The plain WebSocket endpoint with Primus framing (PROTOCOL.md §3), at the configured pathname (default /primus):
 * upgrades without an EIO query, GET <pathname>/spec, and 426 for a plain GET.
 */
#ifndef AG_PRIMUS_H
#define AG_PRIMUS_H

#include "conn.h"
#include "node.h"

/* Registers the endpoint on the pathname; the node's Primus state goes to s->primus. 0 or AG_ENOMEM. */
int ag_primus_register(ag_server_t *s);
/* After the last loop run. */
void ag_primus_dispose(ag_server_t *s);

#endif
