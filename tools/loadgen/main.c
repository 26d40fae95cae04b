/*
 * loadgen command line and coordinator: forks --procs workers (each holds at most ~19.9k sockets here), steps them
 * through connect / go, reads the server's CPU and RSS from /proc/<--server-pid> around the measured phase, merges the
 * workers' histograms and prints one report (text, or one JSON object with --json).
 */
#include "engine.h"

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
          "  --peer                             server is a peer: no welcome/roomAdd, raw echo, \"B<msg>\" broadcasts\n"
          "  --conns N [--conns2 N2]            connections (idle: RSS slope between N and N2)\n"
          "  --procs P                          worker processes sharing the run (default 1)\n"
          "  --count K | --duration S           fixed work (actions, or publishes per publisher) or a time box\n"
          "  --warmup S                         action: seconds of discarded load first (default 0)\n"
          "  --warmup-msgs K                    fan-out: discarded publishes per publisher first (default 0)\n"
          "  --window W --action echo|randomNumber   action mode (default 1, echo)\n"
          "  --room R --publishers P --rate R   fan-out: room, publishers, publishes/s per publisher\n"
          "  --pub-transport T --pub-path P     fan-out publisher (default: primus, or http for nchan)\n"
          "  --pad N                            extra payload bytes\n"
          "  --server-pid PID                   read server CPU and RSS from /proc\n"
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

int main(int argc, char **argv)
{
    lg_opts_t o = {.mode = -1,
                   .transport = LG_T_PRIMUS,
                   .pub_transport = -1,
                   .host = "127.0.0.1",
                   .port = 8080,
                   .conns = 1,
                   .procs = 1,
                   .connect_parallel = 256,
                   .window = 1,
                   .action = "echo",
                   .room = "defaultRoom",
                   .publishers = 1,
                   .rate = 100,
                   .timeout = 10};
    pid_t server_pid = 0;
    int settle_ms = 300, json = 0, count_set = 0;
    const char *mode = NULL;
    enum { O_TRANSPORT = 256, O_PATH, O_CONNS2, O_PROCS, O_WARMUP_MSGS, O_PUB_T, O_PUB_PATH, O_SERVER_PID, O_SETTLE, O_JSON };
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
            o.host = optarg;
            break;
        case 'p':
            o.port = atoi(optarg);
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
            server_pid = (pid_t)atoi(optarg);
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
    if (o.mode < 0 || o.transport < 0 || o.transport == LG_T_HTTP_PUB || o.procs < 1 || o.conns < 0 || o.window < 1 ||
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
        /* descriptors are capped per process (20,000 here): a worker needs one per socket, two for HTTP transports */
        int per_client = o.transport == LG_T_POLLING || o.transport == LG_T_SSE ? 2 : 1;
        long most = (long)(o.conns2 > o.conns ? o.conns2 : o.conns);
        long need = (most + o.procs - 1) / o.procs * per_client + o.publishers * 2 + 16;
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (rlim_t)need > rl.rlim_cur) {
            fprintf(stderr, "loadgen: %ld descriptors per worker exceed the limit of %llu: use more --procs\n", need,
                    (unsigned long long)rl.rlim_cur);
            return 64;
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
    double connect_s = 0, cpu0 = -1;
    for (int step = 0; step < steps; step++) {
        for (int i = 0; i < n; i++) {
            lg_ready_msg_t m;
            if (lg_read_all(up[i], &m, sizeof(m)) != 0 || m.tag != 'R') {
                fprintf(stderr, "loadgen: worker %d failed while connecting\n", i);
                return 1;
            }
            have[step] += m.ok;
            if (m.secs > connect_s)
                connect_s = m.secs;
        }
        usleep((useconds_t)settle_ms * 1000);
        rss[step] = server_rss_kb(server_pid);
        cpu0 = server_cpu(server_pid);
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
            cpu0 = server_cpu(server_pid);
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
        lg_hist_merge(&total.lat, &r.lat);
    }
    double cpu1 = server_cpu(server_pid);
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
               "\"worker_failures\":%d}\n",
               modes[o.mode], tnames[o.transport], n, (unsigned long long)total.conns_ok, (unsigned long long)total.conns_failed,
               connect_s, (unsigned long long)total.sent, (unsigned long long)total.received,
               (unsigned long long)total.deliveries_all, (unsigned long long)total.expected, (unsigned long long)total.lost,
               (unsigned long long)total.dup, (unsigned long long)total.reorder, (unsigned long long)total.errors, wall,
               wall > 0 ? (double)work / wall : 0, cpu, per_cpu, client_cpu, us(lg_hist_quantile(&total.lat, 0.5)),
               us(lg_hist_quantile(&total.lat, 0.99)), us(lg_hist_quantile(&total.lat, 0.999)), us(total.lat.max),
               us(lg_hist_quantile(&lh, 0.5)), us(lg_hist_quantile(&lh, 0.95)), us(lg_hist_quantile(&lh, 0.99)), us(lh.max),
               (unsigned long long)missing_last, (unsigned long long)have[0], (unsigned long long)have[1], rss[0], rss[1], slope,
               failed_workers);
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
    int bad = failed_workers || total.conns_failed || total.lost || total.dup || total.errors;
    return bad ? 3 : 0;
}
