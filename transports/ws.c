#include "ws.h"

#include "batch_send.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLOSE_DEADLINE_MS 2000
#define IDLE_CHECK_MS 1000

/* The node's timer lists (h2o keeps one list per duration; entries are per socket, no OS timer each), s->ws. */
/* Frame buffers of the base size freed by written sockets, kept for the next writes: a fan-out writes one per
 * recipient, then frees them all when the writes complete, so without these every delivery cost a malloc and a free. */
#define FRAME_BUF 1024
#define SPARE_MAX 2048 /* 2 MiB at most per node */

/* Sends per io_uring submit: a room of 1,000 takes four submits instead of 1,000 writes; the ring then holds ~24 KiB. */
#define BATCH_MAX 256

struct st_ag_ws_node_t {
    ag_server_t *server;
    h2o_timeout_t close_timeout, idle_timeout;
    h2o_timeout_entry_t trim_entry; /* one per node: a burst of hibernations trims the heap once */
    void *spare;                    /* free frame buffers, each holding the next one's address */
    size_t spares;
    /* general.ioUring: sockets with something to write this loop iteration wait here (ag_ws_t._batch) for one zero
     * timeout that writes them together */
    int batching; /* 1: yes (the ring is made at the first batch), -1: off, or the kernel refused io_uring */
    h2o_linklist_t batch;
    h2o_timeout_entry_t batch_entry;
    ag_batch_send_t *ring;
    ag_ws_t **picked; /* BATCH_MAX each, with the ring */
    ssize_t *results;
};

static char *buf_take(ag_server_t *s)
{
    struct st_ag_ws_node_t *n = s->ws;
    if (n == NULL || n->spare == NULL)
        return malloc(FRAME_BUF);
    char *b = n->spare;
    memcpy(&n->spare, b, sizeof(void *));
    n->spares--;
    return b;
}

static void buf_give(ag_server_t *s, char *b, size_t cap)
{
    struct st_ag_ws_node_t *n = s->ws;
    if (b == NULL)
        return;
    if (n == NULL || cap != FRAME_BUF || n->spares >= SPARE_MAX) {
        free(b);
        return;
    }
    memcpy(b, &n->spare, sizeof(void *));
    n->spare = b;
    n->spares++;
}

static void schedule_flush(ag_ws_t *ws);
static void schedule_idle_check(ag_ws_t *ws);
static void trim_heap_soon(ag_server_t *s);

static void unlink_entry(h2o_timeout_entry_t *e)
{
    if (h2o_timeout_is_linked(e))
        h2o_timeout_unlink(e);
}

/* What ended the socket, as far as it can tell. */
static const ag_disconnect_t *closed_why(ag_ws_t *ws)
{
    if (ws->conn->ws_ctx != NULL && wslay_event_get_status_code_sent(ws->conn->ws_ctx) == WSLAY_CODE_MESSAGE_TOO_BIG)
        return &AG_DISCONNECT_TOO_BIG;
    return ws->_write_failed ? &AG_DISCONNECT_TRANSPORT_ERROR : &AG_DISCONNECT_PEER_CLOSED;
}

static void destroy(ag_ws_t *ws)
{
    unlink_entry(&ws->_flush);
    if (h2o_linklist_is_linked(&ws->_batch))
        h2o_linklist_unlink(&ws->_batch);
    unlink_entry(&ws->_close_deadline);
    unlink_entry(&ws->_idle);
    h2o_websocket_conn_t *conn = ws->conn;
    ws->cb->on_closed(ws, closed_why(ws));
    h2o_websocket_close(conn); /* a hibernating socket has no wslay context: wslay_event_context_free(NULL) is a no-op */
    buf_give(ws->server, ws->_acc.base, ws->_acc_cap);
    buf_give(ws->server, ws->_wr.base, ws->_wr_cap);
    free(ws);
}

/* --- hibernation --- */

/* Follows the frames in the bytes wslay reads, to know when the stream sits between two messages. */
static void track_inbound(ag_ws_t *ws, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (ws->_payload_left > 0) {
            size_t take = n < ws->_payload_left ? n : (size_t)ws->_payload_left;
            ws->_payload_left -= take;
            p += take;
            n -= take;
        } else {
            ws->_hdr[ws->_hdr_len++] = *p++;
            n--;
            if (ws->_hdr_len == 2) {
                uint8_t len7 = ws->_hdr[1] & 0x7f;
                ws->_hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((ws->_hdr[1] & 0x80) ? 4 : 0);
            }
            if (ws->_hdr_len < 2 || ws->_hdr_len < ws->_hdr_need)
                continue;
            uint8_t len7 = ws->_hdr[1] & 0x7f;
            uint64_t len = len7;
            if (len7 == 126) {
                len = ((uint64_t)ws->_hdr[2] << 8) | ws->_hdr[3];
            } else if (len7 == 127) {
                len = 0;
                for (int i = 2; i < 10; i++)
                    len = (len << 8) | ws->_hdr[i];
            }
            ws->_fin_opcode = ws->_hdr[0];
            ws->_payload_left = len;
            ws->_hdr_len = 0;
        }
        if (ws->_payload_left == 0 && ws->_hdr_len == 0 && (ws->_fin_opcode & 0x0f) < 8)
            ws->_in_msg = (ws->_fin_opcode & 0x80) == 0; /* data frames only: control frames interleave */
    }
}

static ssize_t on_wslay_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user_data)
{
    h2o_websocket_conn_t *conn = user_data;
    ag_ws_t *ws = conn->data;
    ssize_t n = ws->_h2o_recv(ctx, buf, len, flags, user_data);
    if (n > 0) {
        ws->_fresh = 0;
        track_inbound(ws, buf, (size_t)n);
    }
    return n;
}

/* wslay hands over a frame in two calls, header then payload, and h2o 2.2.5 writes each call on its own (the payload
 * only after the header's write completed): two writev per frame, each ~5 us of kernel time here. The header (flagged
 * WSLAY_MSG_MORE) is held back and given to h2o together with its payload, so a frame leaves in one write. */
static ssize_t on_wslay_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user_data)
{
    h2o_websocket_conn_t *conn = user_data;
    ag_ws_t *ws = conn->data;
    if ((flags & WSLAY_MSG_MORE) && ws->_out_hdr_len == 0 && len <= sizeof(ws->_out_hdr) && !h2o_socket_is_writing(conn->sock)) {
        memcpy(ws->_out_hdr, data, len);
        ws->_out_hdr_len = (uint8_t)len;
        return (ssize_t)len;
    }
    if (ws->_out_hdr_len == 0)
        return ws->_h2o_send(ctx, data, len, flags, user_data);
    uint8_t stack[1024];
    size_t total = ws->_out_hdr_len + len;
    uint8_t *buf = total <= sizeof(stack) ? stack : malloc(total);
    if (buf == NULL) {
        wslay_event_set_error(ctx, WSLAY_ERR_NOMEM);
        return -1;
    }
    memcpy(buf, ws->_out_hdr, ws->_out_hdr_len);
    memcpy(buf + ws->_out_hdr_len, data, len);
    ssize_t r = ws->_h2o_send(ctx, buf, total, flags, user_data); /* h2o copies what it writes */
    if (buf != stack)
        free(buf);
    if (r < 0)
        return r;
    ws->_out_hdr_len = 0;
    return (ssize_t)len;
}

static void wake(ag_ws_t *ws)
{
    ws->_fresh = 0;
    if (ws->conn->ws_ctx != NULL)
        return;
    wslay_event_context_server_init(&ws->conn->ws_ctx, &ws->_wslay_cb, ws->conn);
    wslay_event_config_set_max_recv_msg_length(ws->conn->ws_ctx, ws->_max_message);
}

static int can_hibernate(ag_ws_t *ws)
{
    h2o_socket_t *sock = ws->conn->sock;
    wslay_event_context_ptr ctx = ws->conn->ws_ctx;
    return sock != NULL && ctx != NULL && !ws->_closing && ws->_hdr_len == 0 && ws->_payload_left == 0 && !ws->_in_msg &&
           !h2o_socket_is_writing(sock) && ws->_acc.len == 0 && sock->input->size == 0 &&
           wslay_event_get_queued_msg_count(ctx) == 0 && !wslay_event_want_write(ctx) && !h2o_timeout_is_linked(&ws->_flush) &&
           !h2o_linklist_is_linked(&ws->_batch);
}

static void on_hibernating_read(h2o_socket_t *sock, const char *err);

static void hibernate(ag_ws_t *ws)
{
    h2o_socket_t *sock = ws->conn->sock;
    wslay_event_context_free(ws->conn->ws_ctx);
    ws->conn->ws_ctx = NULL;
    if (sock->input->bytes != NULL) {
        h2o_buffer_dispose(&sock->input);
        h2o_buffer_init(&sock->input, &h2o_socket_buffer_prototype);
    }
    h2o_socket_read_start(sock, on_hibernating_read);
}

static void on_h2o_msg(h2o_websocket_conn_t *conn, const struct wslay_event_on_msg_recv_arg *arg);

static void on_hibernating_read(h2o_socket_t *sock, const char *err)
{
    h2o_websocket_conn_t *conn = sock->data;
    ag_ws_t *ws = conn->data;
    wake(ws);
    if (err != NULL) {
        on_h2o_msg(conn, NULL);
        return;
    }
    schedule_idle_check(ws);
    h2o_websocket_proceed(conn); /* may free ws */
}

/* --- outbound data: framed here, gathered per loop iteration, one write for all of them --- */

/* Appends one unmasked server frame to the pending buffer. */
static int append_frame(ag_ws_t *ws, const void *data, size_t len, int binary)
{
    size_t hl = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
    if (ws->_acc.len + hl + len > ws->_acc_cap) {
        size_t cap = ws->_acc_cap < FRAME_BUF ? FRAME_BUF : ws->_acc_cap;
        while (cap < ws->_acc.len + hl + len)
            cap *= 2;
        char *n;
        if (ws->_acc.base == NULL && cap == FRAME_BUF) {
            n = buf_take(ws->server);
        } else if (ws->_acc_cap == FRAME_BUF) { /* outgrows a spare: the spare goes back */
            if ((n = malloc(cap)) != NULL) {
                memcpy(n, ws->_acc.base, ws->_acc.len);
                buf_give(ws->server, ws->_acc.base, ws->_acc_cap);
            }
        } else {
            n = realloc(ws->_acc.base, cap);
        }
        if (n == NULL)
            return AG_ENOMEM;
        ws->_acc.base = n;
        ws->_acc_cap = cap;
    }
    uint8_t *p = (uint8_t *)ws->_acc.base + ws->_acc.len;
    p[0] = 0x80 | (binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME);
    if (hl == 2) {
        p[1] = (uint8_t)len;
    } else if (hl == 4) {
        p[1] = 126;
        p[2] = (uint8_t)(len >> 8);
        p[3] = (uint8_t)len;
    } else {
        p[1] = 127;
        for (int i = 0; i < 8; i++)
            p[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    memcpy(p + hl, data, len);
    ws->_acc.len += hl + len;
    ws->_acc_frames++;
    return 0;
}

static void flush_now(ag_ws_t *ws);

static void on_written(h2o_socket_t *sock, const char *err)
{
    h2o_websocket_conn_t *conn = sock->data;
    ag_ws_t *ws = conn->data;
    buf_give(ws->server, ws->_wr.base, ws->_wr_cap);
    ws->_wr = h2o_iovec_init(NULL, 0);
    ws->_wr_cap = 0;
    ws->_wr_ours = 0;
    if (err != NULL) {
        ws->_write_failed = 1;
        wake(ws);
        on_h2o_msg(conn, NULL);
        return;
    }
    flush_now(ws); /* more data, or wslay's control frames and the close */
}

/* Writes what is pending when the socket is free. Data frames go out in one write per loop iteration, whatever
 * produced them; wslay only writes control frames (pongs, the close), and the close only after the data. */
static void flush_now(ag_ws_t *ws)
{
    h2o_socket_t *sock = ws->conn->sock;
    unlink_entry(&ws->_flush);
    if (h2o_linklist_is_linked(&ws->_batch))
        h2o_linklist_unlink(&ws->_batch);
    if (sock == NULL) { /* the 101 is still being written */
        h2o_timeout_link(ws->server->loop, &ws->server->ctx.zero_timeout, &ws->_flush);
        return;
    }
    if (h2o_socket_is_writing(sock)) {
        /* ours: its completion comes back here; wslay's (a control frame): look again shortly */
        if (!ws->_wr_ours)
            h2o_timeout_link(ws->server->loop, &ws->server->ctx.hundred_ms_timeout, &ws->_flush);
        return;
    }
    if (ws->_acc.len != 0) {
        ws->_wr = ws->_acc;
        ws->_wr_cap = ws->_acc_cap;
        ws->_acc = h2o_iovec_init(NULL, 0);
        ws->_acc_cap = 0;
        ws->_acc_frames = 0;
        ws->_wr_ours = 1;
        schedule_idle_check(ws);
        h2o_socket_write(sock, &ws->_wr, 1, on_written);
        return;
    }
    if (ws->conn->ws_ctx == NULL)
        return; /* hibernating: nothing else to do */
    if (ws->_fresh && can_hibernate(ws)) {
        /* A new socket whose upgrade and greeting are out and which has not spoken yet sleeps at once instead of a
         * second later: in a burst of connections, contexts and input buffers that lived for a second would be freed
         * between the long-lived parts of the connections opened meanwhile, holes the heap cannot hand back. Freed
         * now, the next connection's upgrade reuses them. */
        hibernate(ws);
        trim_heap_soon(ws->server);
        return;
    }
    schedule_idle_check(ws);
    if (ws->_close_code >= 0 && wslay_event_get_queued_msg_count(ws->conn->ws_ctx) == 0) {
        wslay_event_queue_close(ws->conn->ws_ctx, (uint16_t)ws->_close_code, (const uint8_t *)ws->_close_reason,
                                ws->_close_code != 0 ? strlen(ws->_close_reason) : 0);
        ws->_close_code = -1;
    }
    h2o_websocket_proceed(ws->conn); /* may call on_h2o_msg(NULL) and free ws */
}

/* Freed contexts sit between live allocations, so the heap cannot shrink by itself: a second after sockets went to
 * sleep, hand the free pages back. */
static void on_trim(h2o_timeout_entry_t *entry)
{
    (void)entry;
    malloc_trim(0);
}

static void trim_heap_soon(ag_server_t *s)
{
    struct st_ag_ws_node_t *n = s->ws;
    if (!h2o_timeout_is_linked(&n->trim_entry))
        h2o_timeout_link(s->loop, &n->idle_timeout, &n->trim_entry);
}

static void on_idle_check(h2o_timeout_entry_t *entry)
{
    ag_ws_t *ws = H2O_STRUCT_FROM_MEMBER(ag_ws_t, _idle, entry);
    if (can_hibernate(ws)) {
        hibernate(ws);
        trim_heap_soon(ws->server);
    } else if (ws->conn->ws_ctx != NULL && !ws->_closing)
        schedule_idle_check(ws);
}

static void schedule_idle_check(ag_ws_t *ws)
{
    if (!h2o_timeout_is_linked(&ws->_idle))
        h2o_timeout_link(ws->server->loop, &ws->server->ws->idle_timeout, &ws->_idle);
}

static void on_h2o_msg(h2o_websocket_conn_t *conn, const struct wslay_event_on_msg_recv_arg *arg)
{
    ag_ws_t *ws = conn->data;
    if (arg == NULL) {
        destroy(ws);
        return;
    }
    if (ws->_closing)
        return;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
        ws->cb->on_message(ws, arg->msg, arg->msg_length, arg->opcode == WSLAY_BINARY_FRAME);
}

/* Sits in front of h2o's wslay callback to see PINGs, which h2o does not pass on. */
static void on_wslay_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user_data)
{
    h2o_websocket_conn_t *conn = user_data;
    ag_ws_t *ws = conn->data;
    if (arg->opcode == WSLAY_PING && ws->cb->on_ping != NULL && !ws->_closing)
        ws->cb->on_ping(ws);
    ws->_h2o_on_msg(ctx, arg, user_data);
}

static void on_flush(h2o_timeout_entry_t *entry)
{
    flush_now(H2O_STRUCT_FROM_MEMBER(ag_ws_t, _flush, entry));
}

static void schedule_flush(ag_ws_t *ws)
{
    struct st_ag_ws_node_t *n = ws->server->ws;
    if (h2o_timeout_is_linked(&ws->_flush) || h2o_linklist_is_linked(&ws->_batch))
        return;
    if (n != NULL && n->batching > 0) {
        h2o_linklist_insert(&n->batch, &ws->_batch);
        if (!h2o_timeout_is_linked(&n->batch_entry))
            h2o_timeout_link(ws->server->loop, &ws->server->ctx.zero_timeout, &n->batch_entry);
        return;
    }
    h2o_timeout_link(ws->server->loop, &ws->server->ctx.zero_timeout, &ws->_flush);
}

/* --- batched writes (general.ioUring) --- */

/* A socket flush_now would write right now, with nothing of h2o's in the way: not TLS (h2o encrypts in its write), no
 * write in flight (ours or wslay's), something of ours framed. */
static int batchable(ag_ws_t *ws)
{
    h2o_socket_t *sock = ws->conn->sock;
    return sock != NULL && sock->ssl == NULL && !h2o_socket_is_writing(sock) && ws->_acc.len != 0;
}

/* Sends the picked sockets' framed data in one submit and takes what each socket took off its buffer, as if an h2o
 * write had completed; a rest stays framed for flush_now to give to h2o. No callback runs here, so no socket of the
 * batch can go away before every result is in. */
static void batch_send(struct st_ag_ws_node_t *n, size_t count)
{
    ag_server_t *s = n->server;
    size_t queued = 0;
    while (queued < count && ag_batch_send_add(n->ring, h2o_socket_get_fd(n->picked[queued]->conn->sock),
                                               n->picked[queued]->_acc.base, n->picked[queued]->_acc.len) >= 0)
        queued++;
    ag_batch_send_submit(n->ring, n->results);
    s->stats.ws_batch_submits++;
    for (size_t i = 0; i < count; i++) {
        ag_ws_t *ws = n->picked[i];
        ssize_t r = i < queued ? n->results[i] : -EAGAIN; /* (not taken by the ring: sent as before) */
        if (r <= 0) {
            s->stats.ws_batch_rest++; /* a full socket or an error: h2o's write meets it as it would have */
            continue;
        }
        ws->conn->sock->bytes_written += (size_t)r;
        if ((size_t)r < ws->_acc.len) {
            s->stats.ws_batch_rest++;
            memmove(ws->_acc.base, ws->_acc.base + r, ws->_acc.len - (size_t)r);
            ws->_acc.len -= (size_t)r;
            continue;
        }
        s->stats.ws_batch_whole++;
        buf_give(s, ws->_acc.base, ws->_acc_cap);
        ws->_acc = h2o_iovec_init(NULL, 0);
        ws->_acc_cap = 0;
        ws->_acc_frames = 0;
        schedule_idle_check(ws);
    }
}

static int batch_ring(struct st_ag_ws_node_t *n)
{
    if (n->ring != NULL)
        return 1;
    /* made on the loop's own thread: the ring is tied to the thread that submits */
    n->picked = malloc(BATCH_MAX * sizeof(*n->picked));
    n->results = malloc(BATCH_MAX * sizeof(*n->results));
    if (n->picked != NULL && n->results != NULL && (n->ring = ag_batch_send_create(BATCH_MAX)) != NULL) {
        n->server->stats.ws_io_uring = 1;
        return 1;
    }
    ag_log(AG_LOG_INFO, "ws", NULL, "io_uring is not available (%s): each WebSocket write is its own",
           n->picked == NULL || n->results == NULL ? "out of memory" : strerror(errno));
    free(n->picked);
    free(n->results);
    n->picked = NULL;
    n->results = NULL;
    n->batching = -1;
    return 0;
}

/* The node's zero timeout: every socket that was given something to write in this loop iteration. Those h2o would
 * write at once are sent in submits of BATCH_MAX, then each socket is flushed as before: one that went out whole has
 * nothing framed left (wslay's control frames, the close, hibernation follow as after a completed write), one with a
 * rest or behind a write in flight takes h2o's write. A lone socket is not worth a submit. */
static void on_batch(h2o_timeout_entry_t *entry)
{
    struct st_ag_ws_node_t *n = H2O_STRUCT_FROM_MEMBER(struct st_ag_ws_node_t, batch_entry, entry);
    h2o_linklist_t todo;
    h2o_linklist_init_anchor(&todo);
    h2o_linklist_insert_list(&todo, &n->batch);
    if (todo.next->next != &todo && batch_ring(n)) {
        size_t count = 0;
        for (h2o_linklist_t *l = todo.next; l != &todo; l = l->next) {
            ag_ws_t *ws = H2O_STRUCT_FROM_MEMBER(ag_ws_t, _batch, l);
            if (!batchable(ws))
                continue;
            n->picked[count++] = ws;
            if (count == BATCH_MAX) {
                batch_send(n, count);
                count = 0;
            }
        }
        if (count > 1)
            batch_send(n, count);
    }
    /* a flush may end its socket, and an ending socket may end others: each leaves this list as it goes */
    while (!h2o_linklist_is_empty(&todo))
        flush_now(H2O_STRUCT_FROM_MEMBER(ag_ws_t, _batch, todo.next));
}

static void on_close_deadline(h2o_timeout_entry_t *entry)
{
    ag_ws_t *ws = H2O_STRUCT_FROM_MEMBER(ag_ws_t, _close_deadline, entry);
    destroy(ws);
}

ag_ws_t *ag_ws_upgrade(h2o_req_t *req, const char *client_key, size_t max_message, const ag_ws_callbacks_t *cb, void *data)
{
    ag_ws_t *ws = calloc(1, sizeof(*ws));
    if (ws == NULL)
        return NULL;
    ws->server = H2O_STRUCT_FROM_MEMBER(ag_server_t, ctx, req->conn->ctx);
    ws->cb = cb;
    ws->data = data;
    ws->_flush.cb = on_flush;
    ws->_close_deadline.cb = on_close_deadline;
    ws->_close_code = -1;
    ws->_fresh = 1;
    ws->conn = h2o_upgrade_to_websocket(req, client_key, ws, on_h2o_msg);
    ws->_idle.cb = on_idle_check;
    ws->_max_message = max_message;
    ws->_wslay_cb = ws->conn->ws_callbacks;
    ws->_h2o_on_msg = ws->_wslay_cb.on_msg_recv_callback;
    ws->_h2o_recv = ws->_wslay_cb.recv_callback;
    ws->_wslay_cb.on_msg_recv_callback = on_wslay_msg;
    ws->_wslay_cb.recv_callback = on_wslay_recv;
    ws->_h2o_send = ws->_wslay_cb.send_callback;
    ws->_wslay_cb.send_callback = on_wslay_send;
    wslay_event_config_set_callbacks(ws->conn->ws_ctx, &ws->_wslay_cb);
    wslay_event_config_set_max_recv_msg_length(ws->conn->ws_ctx, max_message);
    return ws;
}

int ag_ws_send(ag_ws_t *ws, const void *data, size_t len, int binary)
{
    if (ws->_closing)
        return AG_ECLOSED;
    int ret = append_frame(ws, data, len, binary);
    if (ret == 0)
        schedule_flush(ws);
    return ret;
}

void ag_ws_close(ag_ws_t *ws, uint16_t code, const char *reason)
{
    if (ws->_closing)
        return;
    wake(ws);
    ws->_closing = 1;
    ws->_close_code = code;
    snprintf(ws->_close_reason, sizeof(ws->_close_reason), "%s", reason != NULL ? reason : "");
    schedule_flush(ws);
    h2o_timeout_link(ws->server->loop, &ws->server->ws->close_timeout, &ws->_close_deadline);
}

size_t ag_ws_queued_bytes(ag_ws_t *ws)
{
    return ws->_acc.len + ws->_wr.len + (ws->conn->ws_ctx != NULL ? wslay_event_get_queued_msg_length(ws->conn->ws_ctx) : 0);
}

size_t ag_ws_queued_count(ag_ws_t *ws)
{
    return ws->_acc_frames + (ws->_wr.base != NULL) +
           (ws->conn->ws_ctx != NULL ? wslay_event_get_queued_msg_count(ws->conn->ws_ctx) : 0);
}

int ag_ws_is_closing(ag_ws_t *ws)
{
    return ws->_closing;
}

int ag_ws_init(ag_server_t *s)
{
    struct st_ag_ws_node_t *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return AG_ENOMEM;
    h2o_timeout_init(s->loop, &n->close_timeout, CLOSE_DEADLINE_MS);
    h2o_timeout_init(s->loop, &n->idle_timeout, IDLE_CHECK_MS);
    n->trim_entry.cb = on_trim;
    n->server = s;
    n->batching = strcmp(s->config->general.ioUring, "off") != 0 ? 1 : -1;
    h2o_linklist_init_anchor(&n->batch);
    n->batch_entry.cb = on_batch;
    s->ws = n;
    return 0;
}

void ag_ws_dispose(ag_server_t *s)
{
    struct st_ag_ws_node_t *n = s->ws;
    if (n == NULL)
        return;
    s->ws = NULL; /* sockets that outlive the node free their buffers themselves */
    /* sockets waiting for a batch flush on their own timer */
    while (!h2o_linklist_is_empty(&n->batch)) {
        ag_ws_t *ws = H2O_STRUCT_FROM_MEMBER(ag_ws_t, _batch, n->batch.next);
        h2o_linklist_unlink(&ws->_batch);
        h2o_timeout_link(s->loop, &s->ctx.zero_timeout, &ws->_flush);
    }
    unlink_entry(&n->batch_entry);
    ag_batch_send_destroy(n->ring);
    free(n->picked);
    free(n->results);
    n->ring = NULL;
    s->stats.ws_io_uring = 0;
    while (n->spare != NULL) {
        void *b = n->spare;
        memcpy(&n->spare, b, sizeof(void *));
        free(b);
    }
    n->spares = 0;
    if (h2o_timeout_is_linked(&n->trim_entry))
        h2o_timeout_unlink(&n->trim_entry);
    /* sockets still open link their timers here: then the lists stay with the loop */
    int open = ag_server_timeout_dispose(s, &n->close_timeout) != 0;
    open |= ag_server_timeout_dispose(s, &n->idle_timeout) != 0;
    if (!open)
        free(n);
}
