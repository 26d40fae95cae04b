/*
 * What the harnesses that drive a real node share (fuzz_session.c, fuzz_ahrpc.c): a node on the memory store built by
 * ag_server_create (it never listens), a transport that only records that its connection closed, a check that every
 * frame queued for a client is JSON, and the clean-up of rooms an input created.
 */
#ifndef AG_FUZZ_NODE_H
#define AG_FUZZ_NODE_H

#include <stdlib.h>
#include <string.h>
#include "actiongate.h"
#include "conn.h"
#include "server.h"

static void fuzz_pending(ag_conn_t *c, void *self)
{
    (void)c;
    (void)self;
}

/* self: an int set to 1 when the node closes the connection */
static void fuzz_close(ag_conn_t *c, void *self, const ag_disconnect_t *why)
{
    (void)c;
    (void)why;
    *(int *)self = 1;
}

static const ag_transport_t fuzz_transport = {"fuzz", fuzz_pending, fuzz_close, "fuzz", NULL};

/* A node from yaml, or abort. */
static ag_server_t *fuzz_node(const char *yaml)
{
    char err[512];
    ag_log_threshold = AG_LOG_NONE;
    ag_server_t *node;
    ag_config_t *cfg = ag_config_load_string(yaml, "fuzz.yaml", err, sizeof(err));
    if (cfg == NULL || (node = ag_server_create(cfg, err, sizeof(err))) == NULL)
        abort();
    return node;
}

/* Takes every queued frame; one that is not JSON aborts. */
static void fuzz_drain(ag_conn_t *c)
{
    ag_frame_t *f;
    while ((f = ag_conn_shift(c)) != NULL) {
        json_t *j = json_loadb(f->data, f->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (j == NULL)
            abort();
        json_decref(j);
        ag_frame_release(f);
    }
}

/* room_list callback: deletes every room but the starting ones (data: a NULL-terminated list of names to keep). */
static void fuzz_delete_rooms(void *data, const char *err, json_t *rooms)
{
    (void)err;
    ag_server_t **node = data;
    size_t i;
    json_t *r;
    json_array_foreach(rooms, i, r)
    {
        const char *name = json_string_value(r);
        int keep = name == NULL;
        for (char *const *k = (*node)->config->general.startingChatRooms; !keep && k != NULL && *k != NULL; k++)
            keep = strcmp(name, *k) == 0;
        if (!keep)
            ag_room_delete(*node, name);
    }
}

#endif
