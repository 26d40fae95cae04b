/*
 * Operations: what an operator sees and probes. /metrics in the Prometheus text format (counters from the node's stats
 * and the modules' own, gauges read at scrape time), /healthz and /readyz, the HTTP access log, the drain that spreads
 * a stopping node's reconnects over ops.drainWindow, and readiness notification to systemd (sd_notify, written here
 * over the NOTIFY_SOCKET datagram socket). State lives in the node's ops slot; everything runs on the loop.
 */
#ifndef AG_OPS_H
#define AG_OPS_H

#include "node.h"

/* Configures logging (general.logFormat, logFile) and registers the probe and metrics paths; call before the static
 * files are registered. 0, or an AG_E* code with one line in errbuf. */
int ag_ops_init(ag_server_t *s, char *errbuf, size_t errlen);
void ag_ops_dispose(ag_server_t *s);

/* Adds the access logger (general.accessLog) to every path registered so far: call after the last one, before the
 * HTTP context is initialised. */
void ag_ops_access_register(ag_server_t *s);
/* One request's access line, as the access logger writes it (general.accessLog; the caller checks it is set). Every
 * pointer is borrowed for the call; ua may be NULL; ip is the client's address text; ms count from began. */
typedef struct st_ag_ops_access_t {
    const char *method, *path, *ua, *ip;
    size_t method_len, path_len, ua_len;
    int version, status;
    size_t bytes;
    struct timeval began;
} ag_ops_access_t;
void ag_ops_access_write(ag_server_t *s, const ag_ops_access_t *a);

/* SIGHUP: the log files are opened again. */
void ag_ops_reopen(ag_server_t *s);

/* The node stops: /readyz answers 503 from now on, systemd hears STOPPING=1, and the drain begins. */
void ag_ops_drain_start(ag_server_t *s);
/* One step of the drain, from the stopping loop: closes the connections whose turn has come (uniformly over
 * ops.drainWindow after ops.drainDelay). Returns 1 while the drain goes on, 0 once every connection was told. */
int ag_ops_drain_step(ag_server_t *s);

/* 1 during ops.drainDelay: the node still listens, /readyz says 503, no connection was told to go yet. */
int ag_ops_drain_waiting(ag_server_t *s);

/* Tells systemd (when NOTIFY_SOCKET is set) state, e.g. "READY=1"; does nothing otherwise. */
void ag_ops_notify(const char *state);

#endif
