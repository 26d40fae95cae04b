/*
 * One worker process: connects its clients, then runs the mode's load (idle steps, actions at a window, or paced
 * publishes into a room) and checks every receipt by its marker: latency, loss, duplicates and order.
 */
#include "net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

enum { P_CONNECT, P_WAIT_GO, P_WARMUP, P_MEASURE, P_DRAIN, P_DONE };

static struct {
    const lg_opts_t *o;
    int proc, up, down;
    lg_client_t *cl;
    uint32_t ncl, npub, target, started, ready, failed;
    int phase, step, signalled;
    uint64_t t_phase, t_progress, t_end, t_pub0;
    uint64_t inflight, members_got, total_pub;
    lg_result_t r;
    uint64_t *lastdel;
    uint32_t ok_by_t[LG_NTRANSPORTS];
    int logged;
} W;

uint64_t lg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int lg_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int lg_read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int is_fanout(void)
{
    return W.o->mode == LG_M_FANOUT;
}

static void set_ready(lg_client_t *c)
{
    c->state = LG_C_READY;
    W.ready++;
    if (!c->is_pub)
        W.ok_by_t[c->transport]++;
    W.t_progress = lg_now();
}

static int ag_session(const lg_client_t *c)
{
    return !W.o->peer &&
           (c->transport == LG_T_PRIMUS || c->transport == LG_T_EIO_WS || c->transport == LG_T_POLLING || c->transport == LG_T_SSE);
}

void worker_client_failed(lg_client_t *c, const char *why)
{
    if (c->state == LG_C_DEAD)
        return;
    if (c->state == LG_C_READY)
        W.r.errors++;
    else
        W.failed++;
    if (W.logged++ < 5)
        fprintf(stderr, "loadgen[%d]: client %u (%s): %s\n", W.proc, c->idx, c->is_pub ? "publisher" : "member", why);
    c->state = LG_C_DEAD;
    net_client_shut(c);
}

void worker_on_open(lg_client_t *c)
{
    if (c->state != LG_C_CONNECTING)
        return;
    if (ag_session(c)) {
        c->state = LG_C_WELCOME;
        return;
    }
    set_ready(c);
}

void worker_on_upgraded(lg_client_t *c)
{
    if (c->transport != LG_T_EIO_WS) /* engine.io waits for its open packet */
        worker_on_open(c);
}

void worker_on_stream(lg_client_t *c)
{
    if (c->transport != LG_T_SSE)
        worker_on_open(c);
}

/* ---- actions ---- */

static int can_send(const lg_client_t *c, uint64_t now)
{
    if (c->state != LG_C_READY || c->in_flight >= (uint32_t)W.o->window)
        return 0;
    if (W.phase == P_WARMUP)
        return 1;
    if (W.phase != P_MEASURE)
        return 0;
    return W.o->duration > 0 ? now < W.t_end : W.r.sent < W.o->count;
}

static void send_action(lg_client_t *c, uint64_t now)
{
    const lg_opts_t *o = W.o;
    uint32_t seq = ++c->next_seq;
    lg_slot_t *s = &c->slots[seq % LG_MAX_WINDOW];
    if (s->busy) { /* a reply LG_MAX_WINDOW requests old never came */
        if (s->measured)
            W.r.lost++;
        c->in_flight--;
        W.inflight--;
    }
    char marker[64], msg[512 + 4096];
    lg_marker_t m = {c->idx, seq, now};
    lg_marker_write(marker, sizeof(marker), &m);
    int n;
    if (!o->peer && strcmp(o->action, "echo") != 0)
        n = snprintf(msg, sizeof(msg), "{\"event\":\"action\",\"params\":{\"action\":\"%s\"},\"messageId\":%u}", o->action, seq);
    else
        n = snprintf(msg, sizeof(msg),
                     "{\"event\":\"action\",\"params\":{\"action\":\"echo\",\"payload\":\"%s\"},\"messageId\":%u}", marker, seq);
    if (o->pad > 0 && n + o->pad < (int)sizeof(msg) && strstr(msg, "~\"") != NULL) {
        /* padding goes inside the payload string, before its closing quote */
        char *q = strstr(msg, "~\"");
        memmove(q + 1 + o->pad, q + 1, strlen(q + 1) + 1);
        memset(q + 1, 'x', (size_t)o->pad);
        n += o->pad;
    }
    s->seq = seq;
    s->busy = 1;
    s->measured = W.phase == P_MEASURE;
    s->ns = now;
    c->in_flight++;
    W.inflight++;
    if (s->measured)
        W.r.sent++;
    net_send_message(c, msg, (size_t)n);
}

static void fill(lg_client_t *c, uint64_t now)
{
    while (can_send(c, now))
        send_action(c, now);
}

static void on_reply(lg_client_t *c, const char *d, size_t n)
{
    lg_marker_t m;
    uint64_t seq;
    if (lg_marker_find(d, n, &m) && m.src == c->idx)
        seq = m.seq;
    else if (!lg_find_message_id(d, n, &seq))
        return;
    uint64_t now = lg_now();
    lg_slot_t *s = &c->slots[seq % LG_MAX_WINDOW];
    if (!s->busy || s->seq != seq) {
        W.r.dup++;
        return;
    }
    s->busy = 0;
    c->in_flight--;
    W.inflight--;
    W.t_progress = now;
    if (s->measured) {
        lg_hist_add(&W.r.lat, now - s->ns);
        W.r.received++;
        W.r.t_last = now;
        if (seq < c->last_reply)
            W.r.reorder++;
        c->last_reply = (uint32_t)seq;
    }
    fill(c, now);
}

/* ---- fan-out ---- */

static void publish(lg_client_t *c, uint64_t now)
{
    const lg_opts_t *o = W.o;
    uint32_t seq = (uint32_t)c->next_pub++;
    char marker[64], msg[512 + 4096];
    lg_marker_t m = {c->idx, seq, now};
    lg_marker_write(marker, sizeof(marker), &m);
    int pad = o->pad < 4096 ? o->pad : 4096;
    int n;
    if (c->transport == LG_T_HTTP_PUB)
        n = snprintf(msg, sizeof(msg), "%s", marker);
    else if (o->peer)
        n = snprintf(msg, sizeof(msg), "B%s", marker);
    else
        n = snprintf(msg, sizeof(msg), "{\"event\":\"say\",\"room\":\"%s\",\"message\":\"%s\"}", o->room, marker);
    if (pad > 0) {
        char *q = strrchr(msg, '~');
        memmove(q + 1 + pad, q + 1, strlen(q + 1) + 1);
        memset(q + 1, 'x', (size_t)pad);
        n += pad;
    }
    if (seq == o->warmup_msgs && !W.signalled) {
        W.signalled = 1;
        W.r.t_start = now;
        char t = 'W';
        lg_write_all(W.up, &t, 1);
    }
    if (seq >= o->warmup_msgs)
        W.r.sent++;
    net_send_message(c, msg, (size_t)n);
}

void worker_on_published(lg_client_t *c)
{
    (void)c;
    W.t_progress = lg_now();
}

static void on_delivery(lg_client_t *c, const char *d, size_t n)
{
    const lg_opts_t *o = W.o;
    lg_marker_t m;
    if (!lg_marker_find(d, n, &m) || m.src >= (uint32_t)o->publishers || m.seq >= W.total_pub)
        return;
    uint64_t now = lg_now();
    W.t_progress = now;
    if (m.seq < o->warmup_msgs)
        return;
    uint64_t k = m.seq - o->warmup_msgs;
    W.r.deliveries_all++;
    if (c->is_pub)
        return; /* the publisher's own copy costs the server a delivery, but is not a member's receipt */
    uint64_t bit = m.src * o->count + k;
    if (c->seen == NULL && (c->seen = calloc((o->count * (uint64_t)o->publishers + 7) / 8, 1)) == NULL)
        abort();
    if (c->seen[bit / 8] & (1u << (bit % 8))) {
        W.r.dup++;
        return;
    }
    c->seen[bit / 8] |= (uint8_t)(1u << (bit % 8));
    c->got++;
    W.members_got++;
    W.r.received++;
    W.r.t_last = now;
    /* every member's copy carries the same send stamp, so the largest latency is the one of the last delivery */
    uint64_t lat = now - m.ns;
    lg_hist_add(&W.r.lat, lat);
    if (lat > W.lastdel[bit])
        W.lastdel[bit] = lat;
    if ((int64_t)k < c->last_seq[m.src])
        W.r.reorder++;
    else
        c->last_seq[m.src] = (int64_t)k;
}

/* ---- messages ---- */

/* counted from this worker's first measured delivery, as the deliveries are (the warm-up's GETs are not) */
void worker_on_poll_answer(void)
{
    if (W.phase == P_MEASURE && W.r.deliveries_all > 0)
        W.r.polls++;
}

void worker_on_message(lg_client_t *c, const char *d, size_t n)
{
    if (c->state == LG_C_DEAD)
        return;
    if (c->transport == LG_T_PRIMUS && n > 15 && memcmp(d, "\"primus::ping::", 15) == 0) {
        char pong[64];
        int l = snprintf(pong, sizeof(pong), "\"primus::pong::%.*s", (int)(n - 15 < 40 ? n - 15 : 40), d + 15);
        net_send_message(c, pong, (size_t)l);
        return;
    }
    if (c->state == LG_C_WELCOME) {
        if (memmem(d, n, "\"welcome\"", 9) == NULL)
            return;
        if (is_fanout()) {
            char msg[256];
            int l = snprintf(msg, sizeof(msg), "{\"event\":\"roomAdd\",\"room\":\"%s\",\"messageId\":1}", W.o->room);
            c->state = LG_C_JOIN;
            net_send_message(c, msg, (size_t)l);
        } else {
            set_ready(c);
        }
        return;
    }
    if (c->state == LG_C_JOIN) {
        if (memmem(d, n, "\"context\":\"response\"", 20) == NULL)
            return;
        if (memmem(d, n, "\"status\":\"OK\"", 13) != NULL)
            set_ready(c);
        else
            worker_client_failed(c, "roomAdd refused");
        return;
    }
    if (c->state != LG_C_READY)
        return;
    if (W.o->mode == LG_M_ACTION)
        on_reply(c, d, n);
    else if (W.o->mode == LG_M_FANOUT)
        on_delivery(c, d, n);
}

/* ---- phases ---- */

static uint32_t share(uint32_t total)
{
    uint32_t per = total / (uint32_t)W.o->procs, extra = total % (uint32_t)W.o->procs;
    return per + ((uint32_t)W.proc < extra ? 1 : 0);
}

static void report_ready(uint64_t now)
{
    lg_ready_msg_t m = {'R', W.ready, W.failed, (double)(now - W.t_phase) / 1e9, {0}};
    memcpy(m.ok_by_t, W.ok_by_t, sizeof(m.ok_by_t));
    lg_write_all(W.up, &m, sizeof(m));
    W.phase = P_WAIT_GO;
}

static void start_measure(uint64_t now)
{
    W.phase = P_MEASURE;
    W.t_progress = now;
    if (W.o->mode == LG_M_ACTION) {
        W.r.t_start = now;
        W.t_end = now + (uint64_t)(W.o->duration * 1e9);
        if (W.proc == 0) {
            char t = 'W';
            lg_write_all(W.up, &t, 1);
        }
        for (uint32_t i = 0; i < W.ncl; i++)
            fill(&W.cl[i], now);
    } else {
        W.t_pub0 = now;
        for (uint32_t i = W.npub; i < W.ncl; i++)
            if (W.cl[i].state == LG_C_READY)
                W.r.expected += W.o->count * (uint64_t)W.o->publishers;
    }
}

static void on_go(uint64_t now)
{
    if (W.o->mode == LG_M_IDLE) {
        if (W.step == 0 && W.o->conns2 > W.o->conns) {
            W.step = 1;
            W.target = share((uint32_t)W.o->conns2);
            W.phase = P_CONNECT;
            W.t_phase = W.t_progress = now;
        } else {
            W.phase = P_DONE;
        }
        return;
    }
    if (W.o->mode == LG_M_ACTION && W.o->warmup > 0) {
        W.phase = P_WARMUP;
        W.t_end = now + (uint64_t)(W.o->warmup * 1e9);
        for (uint32_t i = 0; i < W.ncl; i++)
            fill(&W.cl[i], now);
        return;
    }
    start_measure(now);
}

/* progress stamps may be newer than the `now` a tick was called with */
static int stalled(uint64_t now, double limit_ns)
{
    return now > W.t_progress && (double)(now - W.t_progress) > limit_ns;
}

static void tick(uint64_t now)
{
    const lg_opts_t *o = W.o;
    double to = o->timeout * 1e9;
    switch (W.phase) {
    case P_CONNECT:
        while (W.started < W.target && W.started - W.ready - W.failed < (uint32_t)o->connect_parallel) {
            lg_client_t *c = &W.cl[W.started++];
            if (net_client_start(c) != 0)
                worker_client_failed(c, "socket/connect");
        }
        if (W.ready + W.failed >= W.target)
            report_ready(now);
        else if (stalled(now, to)) {
            for (uint32_t i = 0; i < W.started; i++)
                if (W.cl[i].state != LG_C_READY)
                    worker_client_failed(&W.cl[i], "no progress while connecting");
            report_ready(now);
        }
        break;
    case P_WARMUP:
        if (now >= W.t_end)
            start_measure(now);
        break;
    case P_MEASURE:
        if (o->mode == LG_M_ACTION) {
            if (o->duration > 0 ? now >= W.t_end : W.r.sent >= o->count)
                W.phase = P_DRAIN;
            else if (stalled(now, to))
                W.phase = P_DRAIN;
            break;
        }
        for (uint32_t i = 0; i < W.npub; i++) {
            lg_client_t *c = &W.cl[i];
            while (c->state == LG_C_READY && c->next_pub < W.total_pub &&
                   (double)(now - W.t_pub0) >= (double)c->next_pub * 1e9 / o->rate) {
                if (c->transport == LG_T_HTTP_PUB && (c->post_inflight || c->post_pending_len))
                    break;
                publish(c, now);
            }
        }
        {
            int published = 1;
            for (uint32_t i = 0; i < W.npub; i++)
                if (W.cl[i].state == LG_C_READY && W.cl[i].next_pub < W.total_pub)
                    published = 0;
            if (published && W.members_got >= W.r.expected)
                W.phase = P_DONE;
            else if (stalled(now, to))
                W.phase = P_DONE;
        }
        break;
    case P_DRAIN:
        if (W.inflight == 0 || stalled(now, to))
            W.phase = P_DONE;
        break;
    }
}

static void finish(void)
{
    if (W.o->mode == LG_M_ACTION) {
        for (uint32_t i = 0; i < W.ncl; i++)
            for (int k = 0; k < LG_MAX_WINDOW; k++)
                if (W.cl[i].slots[k].busy && W.cl[i].slots[k].measured)
                    W.r.lost++;
        W.r.expected = W.r.sent;
    } else if (W.o->mode == LG_M_FANOUT) {
        W.r.lost = W.r.expected > W.members_got ? W.r.expected - W.members_got : 0;
    }
    W.r.conns_ok = W.ready;
    W.r.conns_failed = W.failed;
    for (int t = 0; t < LG_NTRANSPORTS; t++)
        W.r.ok_by_t[t] = W.ok_by_t[t];
    W.r.errors += lg_net.errors;
    W.r.nlast = W.lastdel ? W.total_pub - W.o->warmup_msgs : 0;
    W.r.nlast *= W.lastdel ? (uint64_t)W.o->publishers : 0;
    char t = 'D';
    lg_write_all(W.up, &t, 1);
    lg_write_all(W.up, &W.r, sizeof(W.r));
    if (W.r.nlast)
        lg_write_all(W.up, W.lastdel, W.r.nlast * sizeof(uint64_t));
}

static int mix_pick(const lg_opts_t *o, uint32_t g)
{
    return o->mix_seq[g % (uint32_t)o->mix_total];
}

int lg_worker_run(const lg_opts_t *o, int proc, int up_fd, int down_fd)
{
    memset(&W, 0, sizeof(W));
    W.o = o;
    W.proc = proc;
    W.up = up_fd;
    W.down = down_fd;
    lg_net.o = o;
    lg_net.ep = epoll_create1(EPOLL_CLOEXEC);
    lg_hist_init(&W.r.lat);
    uint32_t members = share((uint32_t)(o->conns2 > o->conns ? o->conns2 : o->conns));
    W.npub = is_fanout() && proc == 0 ? (uint32_t)o->publishers : 0;
    W.ncl = W.npub + members;
    W.cl = calloc(W.ncl ? W.ncl : 1, sizeof(*W.cl));
    if (W.cl == NULL)
        return 1;
    for (uint32_t i = 0; i < W.ncl; i++) {
        lg_client_t *c = &W.cl[i];
        c->is_pub = i < W.npub;
        c->idx = c->is_pub ? i : i - W.npub + (uint32_t)proc * 1000000u;
        /* members interleave over the workers (worker p holds p, p + procs, ...), so every worker's share spreads
         * over the targets and the transports of --mix in the same proportions as the whole run */
        uint32_t g = c->is_pub ? i : (i - W.npub) * (uint32_t)o->procs + (uint32_t)proc;
        c->target = (uint8_t)(g % (uint32_t)o->ntargets);
        c->transport = (uint8_t)(c->is_pub ? o->pub_transport : o->mix_total > 0 ? mix_pick(o, g) : o->transport);
        c->main.fd = c->post.fd = -1;
        for (int k = 0; k < LG_MAX_PUBLISHERS; k++)
            c->last_seq[k] = -1;
    }
    if (is_fanout()) {
        W.total_pub = o->warmup_msgs + o->count;
        W.lastdel = calloc(o->count * (uint64_t)o->publishers + 1, sizeof(uint64_t));
    }
    W.target = W.npub + share((uint32_t)o->conns);
    W.phase = P_CONNECT;
    W.t_phase = W.t_progress = lg_now();
    struct epoll_event pe = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(lg_net.ep, EPOLL_CTL_ADD, down_fd, &pe);
    struct epoll_event ev[512];
    while (W.phase != P_DONE) {
        int busy = W.phase == P_MEASURE && W.npub > 0;
        int n = epoll_wait(lg_net.ep, ev, 512, busy ? 1 : 20);
        for (int i = 0; i < n; i++) {
            if (ev[i].data.ptr == NULL) {
                char cmd;
                if (lg_read_all(down_fd, &cmd, 1) != 0)
                    return 2; /* the parent is gone */
                if (cmd == 'G' && W.phase == P_WAIT_GO)
                    on_go(lg_now());
                continue;
            }
            net_on_event(ev[i].data.ptr, ev[i].events);
        }
        tick(lg_now());
        net_flush_dirty();
    }
    finish();
    for (uint32_t i = 0; i < W.ncl; i++) {
        net_client_close(&W.cl[i]);
        free(W.cl[i].seen);
    }
    free(W.cl);
    free(W.lastdel);
    close(lg_net.ep);
    return 0;
}
