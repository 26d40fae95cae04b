/*
 * loadgen command line and coordinator: forks --procs workers (by default as many as the descriptor limit needs), steps
 * them through connect / go, reads the servers' CPU and RSS from /proc/<--server-pid ...> around the measured phase,
 * merges the workers' histograms and prints one report (text, or one JSON object with --json).
 */
#include "engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fputs("usage: loadgen --mode idle|action|fanout|longpoll|sse [options]\n"
          "  --transport primus|eio-ws|raw-ws|polling|sse|nchan-lp|nchan-sse   client protocol (default primus)\n"
          "  --host ADDR --port N --path P      server (127.0.0.1:8080, path from the transport)\n"
          "  --targets H:P,H:P,...              several servers (one per node): clients spread over them by index\n"
          "  --sources N [--source-base ADDR]   bind each socket to one of N source addresses (127.0.0.2, .3, ...), so\n"
          "                                     ephemeral ports do not cap the run; default: as many as the count needs\n"
          "  --mix T:W,T:W,...                  members' transports by weight, e.g. primus:8,polling:1,sse:1\n"
          "  --peer                             server is a peer: no welcome/roomAdd, raw echo, \"B<msg>\" broadcasts\n"
          "  --conns N [--conns2 N2]            connections (idle: RSS slope between N and N2)\n"
          "  --procs P                          worker processes sharing the run (default: what the descriptor limit\n"
          "                                     needs, ~19,000 sockets per process under a limit of 20,000)\n"
          "  --hold                             idle: once connected, print the report and hold the connections until\n"
          "                                     stdin closes or SIGTERM, then print the final report\n"
          "  --count K | --duration S           fixed work (actions, or publishes per publisher) or a time box\n"
          "  --warmup S                         action: seconds of discarded load first (default 0)\n"
          "  --warmup-msgs K                    fan-out: discarded publishes per publisher first (default 0)\n"
          "  --window W --action echo|randomNumber   action mode (default 1, echo)\n"
          "  --room R --publishers P --rate R   fan-out: room, publishers, publishes/s per publisher\n"
          "  --pub-transport T --pub-path P     fan-out publisher (default: primus, or http for nchan)\n"
          "  --pad N                            extra payload bytes\n"
          "  --server-pid PID[,PID...]          read server CPU and RSS from /proc (summed; CPU also per process)\n"
          "  --settle MS                        wait after connecting, before measuring (default 300)\n"
          "  --timeout S                        give up after S seconds without progress (default 10)\n"
          "  --json                             one JSON object on stdout\n",
          f);
}

static int transport_of(const char *s)
{
    static const char *names[] = {"primus", "eio-ws", "raw-ws", "polling", "sse", "nchan-lp", "nchan-sse", "http"};
    for (int i = 0; i < 8; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static const char *default_path(int t)
{
    switch (t) {
    case LG_T_PRIMUS:
        return "/primus";
    case LG_T_EIO_WS:
    case LG_T_POLLING:
    case LG_T_SSE:
        return "/primus/";
    case LG_T_NCHAN_LP:
        return "/lp?id=room";
    case LG_T_NCHAN_SSE:
        return "/sse?id=room";
    case LG_T_HTTP_PUB:
        return "/pub?id=room";
    default:
        return "/";
    }
}

/* utime + stime of a process, in seconds; -1 when unreadable */
static double server_cpu(pid_t pid)
{
    if (pid <= 0)
        return -1;
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    unsigned long long ut = 0, st = 0;
    /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long server_rss_kb(pid_t pid)
{
    if (pid <= 0)
        return -1;
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atol(line + 6);
    fclose(f);
    return kb;
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

#define MAX_SERVERS 64

/* the processes named by --server-pid: CPU and RSS are their sums, -1 when one of them is unreadable */
static pid_t servers[MAX_SERVERS];
static int nservers;

static double servers_cpu(double *each)
{
    double sum = nservers > 0 ? 0 : -1;
    for (int i = 0; i < nservers; i++) {
        double c = server_cpu(servers[i]);
        if (each != NULL)
            each[i] = c;
        sum = c < 0 || sum < 0 ? -1 : sum + c;
    }
    return sum;
}

static long servers_rss_kb(void)
{
    long sum = nservers > 0 ? 0 : -1;
    for (int i = 0; i < nservers; i++) {
        long r = server_rss_kb(servers[i]);
        sum = r < 0 || sum < 0 ? -1 : sum + r;
    }
    return sum;
}

static int parse_pids(const char *s)
{
    nservers = 0;
    for (const char *p = s; *p != '\0';) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v <= 0 || nservers == MAX_SERVERS || (*end != ',' && *end != '\0'))
            return -1;
        servers[nservers++] = (pid_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    return nservers > 0 ? 0 : -1;
}

static int add_target(lg_opts_t *o, const char *host, int port)
{
    if (o->ntargets == LG_MAX_TARGETS || strlen(host) >= sizeof(o->targets[0].host) || port <= 0 || port > 65535)
        return -1;
    lg_target_t *t = &o->targets[o->ntargets];
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) != 1)
        return -1;
    snprintf(t->host, sizeof(t->host), "%s", host);
    t->port = port;
    t->addr = a.s_addr;
    o->ntargets++;
    return 0;
}

/* "H:P,H:P,..." */
static int parse_targets(lg_opts_t *o, const char *s)
{
    char buf[4096];
    if (strlen(s) >= sizeof(buf))
        return -1;
    snprintf(buf, sizeof(buf), "%s", s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(tok, ':');
        if (colon == NULL)
            return -1;
        *colon = '\0';
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end != '\0' || add_target(o, tok, (int)port) != 0)
            return -1;
    }
    return o->ntargets > 0 ? 0 : -1;
}

/* "T:W,T:W,...": member transports by weight */
static int parse_mix(lg_opts_t *o, const char *s)
{
    char buf[512];
    if (strlen(s) >= sizeof(buf))
        return -1;
    snprintf(buf, sizeof(buf), "%s", s);
    memset(o->mix, 0, sizeof(o->mix));
    o->mix_total = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        if (colon == NULL)
            return -1;
        *colon = '\0';
        char *end;
        long w = strtol(colon + 1, &end, 10);
        int t = transport_of(tok);
        if (*end != '\0' || t < 0 || t == LG_T_HTTP_PUB || w < 0 || w > 100 || o->mix[t] != 0)
            return -1;
        o->mix[t] = (uint8_t)w;
        o->mix_total += (int)w;
    }
    if (o->mix_total <= 0)
        return -1;
    int g = 0;
    for (int t = 0; t < LG_NTRANSPORTS; t++) {
        for (int a = g, b = o->mix[t]; b != 0;) {
            int r = a % b;
            a = b;
            b = r;
            g = a;
        }
    }
    o->mix_total /= g;
    int cur[LG_NTRANSPORTS] = {0};
    for (int k = 0; k < o->mix_total; k++) {
        int best = -1;
        for (int t = 0; t < LG_NTRANSPORTS; t++) {
            cur[t] += o->mix[t] / g;
            if (o->mix[t] > 0 && (best < 0 || cur[t] > cur[best]))
                best = t;
        }
        cur[best] -= o->mix_total;
        o->mix_seq[k] = (uint8_t)best;
    }
    return 0;
}

/* How many ports one (source, destination) pair can use: the ephemeral range, less a margin for sockets in TIME_WAIT
 * and others' connections. */
static long ports_per_pair(void)
{
    long lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &lo, &hi) != 2)
            lo = 32768, hi = 60999;
        fclose(f);
    }
    return (hi - lo + 1) * 9 / 10;
}

static volatile sig_atomic_t released;

static void on_release(int sig)
{
    (void)sig;
    released = 1;
}

/* --hold: block until stdin reaches its end (or is unreadable) or SIGTERM/SIGINT arrives */
static void hold_until_released(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_release; /* no SA_RESTART: the read returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    char buf[256];
    while (!released) {
        ssize_t r = read(0, buf, sizeof(buf));
        if (r == 0 || (r < 0 && errno != EINTR))
            break;
    }
}

static void print_by_transport(const uint64_t *by_t)
{
    static const char *tnames[] = {"primus", "eio-ws", "raw-ws", "polling", "sse", "nchan-lp", "nchan-sse", "http"};
    printf("{");
    for (int t = 0, first = 1; t < LG_NTRANSPORTS; t++) {
        if (by_t[t] == 0)
            continue;
        printf("%s\"%s\":%llu", first ? "" : ",", tnames[t], (unsigned long long)by_t[t]);
        first = 0;
    }
    printf("}");
}

int main(int argc, char **argv)
{
    lg_opts_t o = {.mode = -1,
                   .transport = LG_T_PRIMUS,
                   .pub_transport = -1,
                   .conns = 1,
                   .connect_parallel = 256,
                   .window = 1,
                   .action = "echo",
                   .room = "defaultRoom",
                   .publishers = 1,
                   .rate = 100,
                   .timeout = 10};
    int settle_ms = 300, json = 0, count_set = 0, hold = 0, bad_list = 0;
    const char *mode = NULL, *host = "127.0.0.1", *targets = NULL, *source_base = "127.0.0.2";
    int port = 8080;
    o.nsources = -1; /* automatic */
    enum {
        O_TRANSPORT = 256,
        O_PATH,
        O_CONNS2,
        O_PROCS,
        O_WARMUP_MSGS,
        O_PUB_T,
        O_PUB_PATH,
        O_SERVER_PID,
        O_SETTLE,
        O_JSON,
        O_TARGETS,
        O_SOURCES,
        O_SOURCE_BASE,
        O_MIX,
        O_HOLD
    };
    static const struct option lo[] = {{"mode", 1, 0, 'm'},
                                       {"transport", 1, 0, O_TRANSPORT},
                                       {"host", 1, 0, 'H'},
                                       {"port", 1, 0, 'p'},
                                       {"path", 1, 0, O_PATH},
                                       {"peer", 0, 0, 'P'},
                                       {"conns", 1, 0, 'c'},
                                       {"conns2", 1, 0, O_CONNS2},
                                       {"procs", 1, 0, O_PROCS},
                                       {"count", 1, 0, 'k'},
                                       {"duration", 1, 0, 'd'},
                                       {"warmup", 1, 0, 'w'},
                                       {"warmup-msgs", 1, 0, O_WARMUP_MSGS},
                                       {"window", 1, 0, 'W'},
                                       {"action", 1, 0, 'a'},
                                       {"room", 1, 0, 'r'},
                                       {"publishers", 1, 0, 'n'},
                                       {"rate", 1, 0, 'R'},
                                       {"pub-transport", 1, 0, O_PUB_T},
                                       {"pub-path", 1, 0, O_PUB_PATH},
                                       {"pad", 1, 0, 'x'},
                                       {"server-pid", 1, 0, O_SERVER_PID},
                                       {"settle", 1, 0, O_SETTLE},
                                       {"timeout", 1, 0, 't'},
                                       {"json", 0, 0, O_JSON},
                                       {"targets", 1, 0, O_TARGETS},
                                       {"sources", 1, 0, O_SOURCES},
                                       {"source-base", 1, 0, O_SOURCE_BASE},
                                       {"mix", 1, 0, O_MIX},
                                       {"hold", 0, 0, O_HOLD},
                                       {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'm':
            mode = optarg;
            break;
        case O_TRANSPORT:
            o.transport = transport_of(optarg);
            break;
        case 'H':
            host = optarg;
            break;
        case 'p':
            port = atoi(optarg);
            break;
        case O_TARGETS:
            targets = optarg;
            break;
        case O_SOURCES:
            o.nsources = atoi(optarg);
            break;
        case O_SOURCE_BASE:
            source_base = optarg;
            break;
        case O_MIX:
            bad_list |= parse_mix(&o, optarg) != 0;
            break;
        case O_HOLD:
            hold = 1;
            break;
        case O_PATH:
            o.path = optarg;
            break;
        case 'P':
            o.peer = 1;
            break;
        case 'c':
            o.conns = atoi(optarg);
            break;
        case O_CONNS2:
            o.conns2 = atoi(optarg);
            break;
        case O_PROCS:
            o.procs = atoi(optarg);
            break;
        case 'k':
            o.count = strtoull(optarg, NULL, 10);
            count_set = 1;
            break;
        case 'd':
            o.duration = atof(optarg);
            break;
        case 'w':
            o.warmup = atof(optarg);
            break;
        case O_WARMUP_MSGS:
            o.warmup_msgs = (uint32_t)atoi(optarg);
            break;
        case 'W':
            o.window = atoi(optarg);
            break;
        case 'a':
            o.action = optarg;
            break;
        case 'r':
            o.room = optarg;
            break;
        case 'n':
            o.publishers = atoi(optarg);
            break;
        case 'R':
            o.rate = atof(optarg);
            break;
        case O_PUB_T:
            o.pub_transport = transport_of(optarg);
            break;
        case O_PUB_PATH:
            o.pub_path = optarg;
            break;
        case 'x':
            o.pad = atoi(optarg);
            break;
        case O_SERVER_PID:
            bad_list |= parse_pids(optarg) != 0;
            break;
        case O_SETTLE:
            settle_ms = atoi(optarg);
            break;
        case 't':
            o.timeout = atof(optarg);
            break;
        case O_JSON:
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 64;
        }
    }
    if (mode == NULL) {
        usage(stderr);
        return 64;
    }
    if (strcmp(mode, "idle") == 0) {
        o.mode = LG_M_IDLE;
    } else if (strcmp(mode, "action") == 0) {
        o.mode = LG_M_ACTION;
    } else if (strcmp(mode, "fanout") == 0) {
        o.mode = LG_M_FANOUT;
    } else if (strcmp(mode, "longpoll") == 0 || strcmp(mode, "sse") == 0) {
        o.mode = LG_M_FANOUT;
        int explicit_t = 0;
        for (int i = 1; i < argc; i++)
            explicit_t |= strcmp(argv[i], "--transport") == 0;
        if (!explicit_t)
            o.transport = mode[0] == 'l' ? LG_T_POLLING : LG_T_SSE;
    }
    if (targets != NULL ? parse_targets(&o, targets) != 0 : add_target(&o, host, port) != 0)
        bad_list = 1;
    {
        struct in_addr a;
        if (inet_pton(AF_INET, source_base, &a) != 1 || o.nsources > LG_MAX_SOURCES || o.nsources < -1)
            bad_list = 1;
        o.source_base = a.s_addr;
    }
    if (bad_list || o.mode < 0 || o.transport < 0 || o.transport == LG_T_HTTP_PUB || o.procs < 0 || o.conns < 0 || o.window < 1 ||
        o.window > LG_MAX_WINDOW || o.publishers < 1 || o.publishers > LG_MAX_PUBLISHERS || o.rate <= 0 || o.pad < 0 ||
        o.pad > 4096) {
        fprintf(stderr, "loadgen: bad arguments\n");
        usage(stderr);
        return 64;
    }
    if (o.pub_transport < 0) {
        if (o.transport == LG_T_NCHAN_LP || o.transport == LG_T_NCHAN_SSE)
            o.pub_transport = LG_T_HTTP_PUB;
        else if (o.transport == LG_T_POLLING || o.transport == LG_T_SSE)
            o.pub_transport = o.peer ? LG_T_EIO_WS : LG_T_PRIMUS;
        else
            o.pub_transport = o.transport;
    }
    if (o.path == NULL)
        o.path = default_path(o.transport);
    for (int t = 0; t < LG_NTRANSPORTS; t++)
        o.paths[t] = t == o.transport ? o.path : default_path(t);
    if (o.pub_path == NULL)
        o.pub_path =
            o.pub_transport == o.transport || (o.peer && o.pub_transport == LG_T_EIO_WS) ? o.path : default_path(o.pub_transport);
    if (!count_set)
        o.count = o.mode == LG_M_ACTION ? (o.duration > 0 ? 0 : 10000) : 100;
    if (o.mode == LG_M_ACTION && o.duration <= 0 && o.count == 0) {
        fprintf(stderr, "loadgen: --count or --duration\n");
        return 64;
    }

    {
        /* descriptors are capped per process (20,000 here): a worker needs one per socket, two for HTTP transports
         * (their POSTs have a socket of their own); a worker keeps a margin for pipes and whatever else it opens */
        int http = o.transport == LG_T_POLLING || o.transport == LG_T_SSE;
        for (int t = 0; t < LG_NTRANSPORTS; t++)
            http |= o.mix_total > 0 && o.mix[t] > 0 && (t == LG_T_POLLING || t == LG_T_SSE);
        int per_client = http ? 2 : 1;
        long most = (long)(o.conns2 > o.conns ? o.conns2 : o.conns);
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = RLIM_INFINITY;
        long fixed = o.publishers * 2 + 16;
        if (o.procs == 0) {
            long budget = rl.rlim_cur == RLIM_INFINITY ? 1L << 30 : (long)rl.rlim_cur;
            budget -= budget / 20 > 64 ? budget / 20 : 64;
            long sockets = most * per_client;
            o.procs = budget > fixed ? (int)((sockets + budget - fixed - 1) / (budget - fixed)) : 1;
            if (o.procs < 1)
                o.procs = 1;
        }
        long need = (most + o.procs - 1) / o.procs * per_client + fixed;
        if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)need > rl.rlim_cur) {
            fprintf(stderr, "loadgen: %ld descriptors per worker exceed the limit of %llu: use more --procs\n", need,
                    (unsigned long long)rl.rlim_cur);
            return 64;
        }
        if (o.nsources < 0) {
            /* one (source, destination) pair has ~28k ports here: past that, more loopback sources (a target
             * elsewhere needs --sources and --source-base naming addresses of this host) */
            long per_target = (most * per_client + o.ntargets - 1) / o.ntargets;
            long ports = ports_per_pair();
            int loopback = (ntohl(o.targets[0].addr) >> 24) == 127;
            o.nsources = per_target > ports && loopback ? (int)((per_target + ports - 1) / ports) : 0;
            if (o.nsources > LG_MAX_SOURCES)
                o.nsources = LG_MAX_SOURCES;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    int n = o.procs;
    int *up = calloc((size_t)n, sizeof(int)), *down = calloc((size_t)n, sizeof(int));
    pid_t *pids = calloc((size_t)n, sizeof(pid_t));
    for (int i = 0; i < n; i++) {
        int u[2], d[2];
        if (pipe(u) != 0 || pipe(d) != 0)
            return 1;
        pid_t pid = fork();
        if (pid == 0) {
            close(u[0]);
            close(d[1]);
            for (int j = 0; j < i; j++) {
                close(up[j]);
                close(down[j]);
            }
            _exit(lg_worker_run(&o, i, u[1], d[0]));
        }
        close(u[1]);
        close(d[0]);
        up[i] = u[0];
        down[i] = d[1];
        pids[i] = pid;
    }

    int steps = o.mode == LG_M_IDLE && o.conns2 > o.conns ? 2 : 1;
    long rss[2] = {-1, -1};
    uint64_t have[2] = {0, 0};
    double connect_s = 0, cpu0 = -1, cpu0_each[MAX_SERVERS], cpu1_each[MAX_SERVERS];
    for (int step = 0; step < steps; step++) {
        uint64_t failed = 0, by_t[LG_NTRANSPORTS] = {0};
        for (int i = 0; i < n; i++) {
            lg_ready_msg_t m;
            if (lg_read_all(up[i], &m, sizeof(m)) != 0 || m.tag != 'R') {
                fprintf(stderr, "loadgen: worker %d failed while connecting\n", i);
                return 1;
            }
            have[step] += m.ok;
            failed += m.failed;
            for (int t = 0; t < LG_NTRANSPORTS; t++)
                by_t[t] += m.ok_by_t[t];
            if (m.secs > connect_s)
                connect_s = m.secs;
        }
        usleep((useconds_t)settle_ms * 1000);
        rss[step] = servers_rss_kb();
        cpu0 = servers_cpu(cpu0_each);
        if (hold && o.mode == LG_M_IDLE && step == steps - 1) {
            /* the connections are up: say so (one JSON line), then keep them until released */
            printf("{\"held\":true,\"procs\":%d,\"sources\":%d,\"conns_ok\":%llu,\"conns_failed\":%llu,\"connect_s\":%.3f,"
                   "\"rss_kb\":%ld,\"by_transport\":",
                   n, o.nsources, (unsigned long long)have[step], (unsigned long long)failed, connect_s, rss[step]);
            print_by_transport(by_t);
            printf("}\n");
            fflush(stdout);
            hold_until_released();
        }
        for (int i = 0; i < n; i++)
            lg_write_all(down[i], "G", 1);
    }

    lg_result_t total;
    memset(&total, 0, sizeof(total));
    lg_hist_init(&total.lat);
    uint64_t *last = NULL, nlast = 0, t_start = 0, t_last = 0;
    for (int i = 0; i < n; i++) {
        char tag;
        if (lg_read_all(up[i], &tag, 1) != 0)
            return 1;
        if (tag == 'W') {
            cpu0 = servers_cpu(cpu0_each);
            if (lg_read_all(up[i], &tag, 1) != 0)
                return 1;
        }
        lg_result_t r;
        if (tag != 'D' || lg_read_all(up[i], &r, sizeof(r)) != 0)
            return 1;
        if (r.nlast) {
            uint64_t *l = malloc(r.nlast * sizeof(uint64_t));
            if (l == NULL || lg_read_all(up[i], l, r.nlast * sizeof(uint64_t)) != 0)
                return 1;
            if (last == NULL) {
                last = l;
                nlast = r.nlast;
            } else {
                for (uint64_t k = 0; k < nlast && k < r.nlast; k++)
                    if (l[k] > last[k])
                        last[k] = l[k];
                free(l);
            }
        }
        if (i == 0 || (r.t_start && r.t_start < t_start))
            t_start = r.t_start ? r.t_start : t_start;
        if (r.t_last > t_last)
            t_last = r.t_last;
        total.conns_ok += r.conns_ok;
        total.conns_failed += r.conns_failed;
        total.sent += r.sent;
        total.received += r.received;
        total.deliveries_all += r.deliveries_all;
        total.expected += r.expected;
        total.lost += r.lost;
        total.dup += r.dup;
        total.reorder += r.reorder;
        total.errors += r.errors;
        total.polls += r.polls;
        for (int t = 0; t < LG_NTRANSPORTS; t++)
            total.ok_by_t[t] += r.ok_by_t[t];
        lg_hist_merge(&total.lat, &r.lat);
    }
    double cpu1 = servers_cpu(cpu1_each);
    int failed_workers = 0;
    for (int i = 0; i < n; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        failed_workers += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    double client_cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;

    lg_hist_t lh;
    lg_hist_init(&lh);
    uint64_t missing_last = 0;
    for (uint64_t k = 0; k < nlast; k++) {
        if (last[k])
            lg_hist_add(&lh, last[k]);
        else
            missing_last++;
    }
    double wall = t_last > t_start ? (double)(t_last - t_start) / 1e9 : 0;
    double cpu = cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;
    uint64_t work = o.mode == LG_M_FANOUT ? total.deliveries_all : total.received;
    double per_cpu = cpu > 0 ? (double)work / cpu : -1;
    double slope =
        steps == 2 && rss[0] >= 0 && have[1] > have[0] ? (double)(rss[1] - rss[0]) * 1024.0 / (double)(have[1] - have[0]) : -1;
    static const char *modes[] = {"idle", "action", "fanout"};
    static const char *tnames[] = {"primus", "eio-ws", "raw-ws", "polling", "sse", "nchan-lp", "nchan-sse", "http"};
    if (json) {
        printf("{\"mode\":\"%s\",\"transport\":\"%s\",\"procs\":%d,\"conns_ok\":%llu,\"conns_failed\":%llu,\"connect_s\":%.3f,"
               "\"sent\":%llu,\"received\":%llu,\"deliveries\":%llu,\"expected\":%llu,\"lost\":%llu,\"dup\":%llu,"
               "\"reorder\":%llu,\"errors\":%llu,\"wall_s\":%.4f,\"rate_wall\":%.1f,\"server_cpu_s\":%.3f,"
               "\"per_server_cpu_s\":%.1f,\"client_cpu_s\":%.3f,\"lat_p50_us\":%.1f,\"lat_p99_us\":%.1f,\"lat_p999_us\":%.1f,"
               "\"lat_max_us\":%.1f,\"last_p50_us\":%.1f,\"last_p95_us\":%.1f,\"last_p99_us\":%.1f,\"last_max_us\":%.1f,"
               "\"last_missing\":%llu,\"n1\":%llu,\"n2\":%llu,\"rss1_kb\":%ld,\"rss2_kb\":%ld,\"rss_per_conn_bytes\":%.1f,"
               "\"worker_failures\":%d,\"sources\":%d,\"targets\":%d,\"polls\":%llu,\"by_transport\":",
               modes[o.mode], tnames[o.transport], n, (unsigned long long)total.conns_ok, (unsigned long long)total.conns_failed,
               connect_s, (unsigned long long)total.sent, (unsigned long long)total.received,
               (unsigned long long)total.deliveries_all, (unsigned long long)total.expected, (unsigned long long)total.lost,
               (unsigned long long)total.dup, (unsigned long long)total.reorder, (unsigned long long)total.errors, wall,
               wall > 0 ? (double)work / wall : 0, cpu, per_cpu, client_cpu, us(lg_hist_quantile(&total.lat, 0.5)),
               us(lg_hist_quantile(&total.lat, 0.99)), us(lg_hist_quantile(&total.lat, 0.999)), us(total.lat.max),
               us(lg_hist_quantile(&lh, 0.5)), us(lg_hist_quantile(&lh, 0.95)), us(lg_hist_quantile(&lh, 0.99)), us(lh.max),
               (unsigned long long)missing_last, (unsigned long long)have[0], (unsigned long long)have[1], rss[0], rss[1], slope,
               failed_workers, o.nsources, o.ntargets, (unsigned long long)total.polls);
        print_by_transport(total.ok_by_t);
        printf(",\"server_cpu_each_s\":[");
        for (int i = 0; i < nservers; i++)
            printf("%s%.3f", i ? "," : "", cpu0 >= 0 && cpu1 >= 0 ? cpu1_each[i] - cpu0_each[i] : -1.0);
        printf("]}\n");
    } else {
        printf("mode %s, transport %s, %d worker(s): %llu connected, %llu failed (%.2f s)\n", modes[o.mode], tnames[o.transport], n,
               (unsigned long long)total.conns_ok, (unsigned long long)total.conns_failed, connect_s);
        if (o.mode == LG_M_IDLE) {
            printf("server RSS: %ld kB at %llu conns, %ld kB at %llu conns; slope %.0f B/conn\n", rss[0],
                   (unsigned long long)have[0], rss[1], (unsigned long long)have[1], slope);
        } else {
            printf("sent %llu, received %llu (all deliveries %llu), expected %llu: lost %llu, dup %llu, reorder %llu, "
                   "errors %llu\n",
                   (unsigned long long)total.sent, (unsigned long long)total.received, (unsigned long long)total.deliveries_all,
                   (unsigned long long)total.expected, (unsigned long long)total.lost, (unsigned long long)total.dup,
                   (unsigned long long)total.reorder, (unsigned long long)total.errors);
            printf("latency us: p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", us(lg_hist_quantile(&total.lat, 0.5)),
                   us(lg_hist_quantile(&total.lat, 0.99)), us(lg_hist_quantile(&total.lat, 0.999)), us(total.lat.max));
            if (nlast)
                printf("publish->last delivery us: p50 %.1f  p95 %.1f  p99 %.1f  max %.1f (%llu never delivered)\n",
                       us(lg_hist_quantile(&lh, 0.5)), us(lg_hist_quantile(&lh, 0.95)), us(lg_hist_quantile(&lh, 0.99)), us(lh.max),
                       (unsigned long long)missing_last);
            printf("wall %.3f s, %.0f/s; server CPU %.3f s, %.0f per server CPU-second; client CPU %.3f s\n", wall,
                   wall > 0 ? (double)work / wall : 0, cpu, per_cpu, client_cpu);
        }
    }
    free(last);
    free(up);
    free(down);
    free(pids);
    int bad = failed_workers || total.conns_failed || total.lost || total.dup || total.errors;
    return bad ? 3 : 0;
}
