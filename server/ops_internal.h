/*
 * What the files of the ops module share, and nothing outside it includes: ops.c (metrics, probes, the module's
 * lifecycle) and ops_service.c (the access log, systemd notification, the drain).
 */
#ifndef AG_OPS_INTERNAL_H
#define AG_OPS_INTERNAL_H

#include "ops.h"

typedef struct st_ag_ops_t {
    ag_map_t actions; /* label -> action_stats_t* */
    FILE *access;     /* general.accessLog's file, NULL for none or "-" */
    int access_on;
    uint64_t drain_from; /* loop ms the first connection may be told to go */
    size_t drain_total, drain_told;
    int drain_counted; /* drain_total is taken when the delay is over: connections made during it are told too */
    int draining;
} ag_ops_t;

/* Opens general.accessLog for appending (nothing for none or "-"), in place of the file open before: at init and on
 * SIGHUP. AG_EIO when it cannot be opened, the old file kept. */
int ag__ops_access_open(ag_server_t *s);

#endif
