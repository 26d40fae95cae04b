#include "ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLOSE_DEADLINE_MS 2000

static h2o_timeout_t close_timeout;
static h2o_evloop_t *close_timeout_loop;

static void destroy(ag_ws_t *ws)
{
    if (h2o_timeout_is_linked(&ws->_flush))
        h2o_timeout_unlink(&ws->_flush);
    if (h2o_timeout_is_linked(&ws->_close_deadline))
        h2o_timeout_unlink(&ws->_close_deadline);
    h2o_websocket_conn_t *conn = ws->conn;
    ws->cb->on_closed(ws);
    h2o_websocket_close(conn);
    free(ws);
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
    ag_ws_t *ws = H2O_STRUCT_FROM_MEMBER(ag_ws_t, _flush, entry);
    if (ws->_close_code >= 0) {
        /* wslay sends control frames ahead of queued data, so the close frame waits until the data is out. */
        if (wslay_event_get_queued_msg_count(ws->conn->ws_ctx) == 0) {
            wslay_event_queue_close(ws->conn->ws_ctx, (uint16_t)ws->_close_code, (const uint8_t *)ws->_close_reason,
                                    ws->_close_code != 0 ? strlen(ws->_close_reason) : 0);
            ws->_close_code = -1;
        } else {
            h2o_timeout_link(ws->server->loop, &ws->server->ctx.hundred_ms_timeout, &ws->_flush);
        }
    }
    if (ws->conn->sock != NULL)
        h2o_websocket_proceed(ws->conn); /* may call on_h2o_msg(NULL) and free ws */
}

static void schedule_flush(ag_ws_t *ws)
{
    if (!h2o_timeout_is_linked(&ws->_flush))
        h2o_timeout_link(ws->server->loop, &ws->server->ctx.zero_timeout, &ws->_flush);
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
    ws->conn = h2o_upgrade_to_websocket(req, client_key, ws, on_h2o_msg);
    ws->_wslay_cb = ws->conn->ws_callbacks;
    ws->_h2o_on_msg = ws->_wslay_cb.on_msg_recv_callback;
    ws->_wslay_cb.on_msg_recv_callback = on_wslay_msg;
    wslay_event_config_set_callbacks(ws->conn->ws_ctx, &ws->_wslay_cb);
    wslay_event_config_set_max_recv_msg_length(ws->conn->ws_ctx, max_message);
    return ws;
}

int ag_ws_send(ag_ws_t *ws, const void *data, size_t len, int binary)
{
    if (ws->_closing)
        return AG_ECLOSED;
    struct wslay_event_msg msg = {binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME, data, len};
    if (wslay_event_queue_msg(ws->conn->ws_ctx, &msg) != 0)
        return AG_ECLOSED;
    schedule_flush(ws);
    return 0;
}

void ag_ws_close(ag_ws_t *ws, uint16_t code, const char *reason)
{
    if (ws->_closing)
        return;
    ws->_closing = 1;
    ws->_close_code = code;
    snprintf(ws->_close_reason, sizeof(ws->_close_reason), "%s", reason != NULL ? reason : "");
    schedule_flush(ws);
    if (close_timeout_loop != ws->server->loop) {
        h2o_timeout_init(ws->server->loop, &close_timeout, CLOSE_DEADLINE_MS);
        close_timeout_loop = ws->server->loop;
    }
    h2o_timeout_link(ws->server->loop, &close_timeout, &ws->_close_deadline);
}

size_t ag_ws_queued_bytes(ag_ws_t *ws)
{
    return wslay_event_get_queued_msg_length(ws->conn->ws_ctx);
}

size_t ag_ws_queued_count(ag_ws_t *ws)
{
    return wslay_event_get_queued_msg_count(ws->conn->ws_ctx);
}

int ag_ws_is_closing(ag_ws_t *ws)
{
    return ws->_closing;
}
