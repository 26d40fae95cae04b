/*
 * The load generator's engine: one single-threaded epoll loop per process holding many client connections, and the
 * pipe protocol between a worker process and the coordinating parent (main.c).
 *
 * A worker connects its share of the clients, reports 'R' (ready) and waits for 'G' (go) from the parent; in idle
 * mode that repeats per step, in the other modes the worker then runs the load and ends with 'D' and its result.
 * Worker 0 owns the publishers (fan-out modes) and reports 'W' when its measured phase starts, which is when the
 * parent takes the first server CPU reading.
 */
#ifndef LG_ENGINE_H
#define LG_ENGINE_H

#include <stdint.h>
#include <sys/types.h>
#include "lg.h"

enum { LG_T_PRIMUS, LG_T_EIO_WS, LG_T_RAW_WS, LG_T_POLLING, LG_T_SSE, LG_T_NCHAN_LP, LG_T_NCHAN_SSE, LG_T_HTTP_PUB };
enum { LG_M_IDLE, LG_M_ACTION, LG_M_FANOUT };

#define LG_MAX_WINDOW 64
#define LG_MAX_PUBLISHERS 64
#define LG_NTRANSPORTS 8
#define LG_MAX_TARGETS 64
#define LG_MAX_SOURCES 250

/* One server to connect to; clients are spread over the targets by their index. */
typedef struct {
    char host[64];
    int port;
    uint32_t addr; /* network order */
} lg_target_t;

typedef struct {
    int mode, transport, pub_transport;
    const char *path, *pub_path;       /* request paths (defaults from the transport) */
    const char *paths[LG_NTRANSPORTS]; /* the member path of each transport (--path for --transport, else its default) */
    lg_target_t targets[LG_MAX_TARGETS];
    int ntargets;
    /* source addresses bound before connect (source_base, +1, ...; network order); 0 sources = the kernel's choice */
    uint32_t source_base;
    int nsources;
    /* members' transports by weight (--mix), reduced by their common divisor; member g of the run (over all workers)
     * uses mix_seq[g % mix_total], a smooth weighted round-robin, so any prefix of the members is close to the weights */
    uint8_t mix[LG_NTRANSPORTS];
    int mix_total;
    uint8_t mix_seq[LG_NTRANSPORTS * 100];
    int conns, conns2, procs, connect_parallel;
    uint64_t count;       /* fixed work: actions (action) or measured publishes per publisher (fan-out) */
    double duration;      /* action: time-boxed measured phase instead of count, seconds */
    double warmup;        /* action: seconds of load before measuring */
    uint32_t warmup_msgs; /* fan-out: publishes per publisher before measuring */
    int window;
    const char *action; /* echo | randomNumber */
    const char *room;
    int publishers;
    double rate;    /* fan-out: publishes per second per publisher */
    int peer;       /* the server is a peer: no welcome, no roomAdd, "B<payload>" broadcasts, raw echo */
    int pad;        /* extra payload bytes */
    double timeout; /* seconds without progress before a phase gives up */
} lg_opts_t;

typedef struct {
    char tag; /* 'R' */
    uint32_t ok, failed;
    double secs;
    uint32_t ok_by_t[LG_NTRANSPORTS]; /* members ready per transport */
} lg_ready_msg_t;

typedef struct {
    uint64_t conns_ok, conns_failed;
    uint64_t sent, received, deliveries_all, expected, lost, dup, reorder, errors;
    uint64_t polls;           /* long-poll: GETs answered with messages during the measured phase */
    uint64_t t_start, t_last; /* CLOCK_MONOTONIC ns: measured phase start (worker 0), last measured receipt */
    lg_hist_t lat;
    uint64_t ok_by_t[LG_NTRANSPORTS];
    uint64_t nlast; /* fan-out: number of uint64 "last delivery" stamps that follow, publishers * count */
} lg_result_t;

uint64_t lg_now(void);
/* Runs one worker; writes its reports to up_fd and reads the parent's commands from down_fd. Returns the exit code. */
int lg_worker_run(const lg_opts_t *o, int proc, int up_fd, int down_fd);
int lg_write_all(int fd, const void *buf, size_t n);
int lg_read_all(int fd, void *buf, size_t n);

#endif
