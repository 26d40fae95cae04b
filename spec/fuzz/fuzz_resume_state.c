/*
 * The resume state file's parser (server/resume_state.c, ag_resume_state_parse) on arbitrary bytes: what a node reads
 * at boot from a file it may not have written whole. Besides what the sanitizers see: an accepted file holds at most
 * the connections, frames, rooms and lines the expectations allow, and every accepted room history loads.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "resume_state.h"
#include "store/history.h"

#define MAX_IN 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_IN)
        return 0;
    ag_resume_state_expect_t e = {
        .node = "",
        .now_ms = 1800000000000ULL,
        .window_ms = 120000,
        .workers = 2,
        .max_conns = 4,
        .max_rooms = 4,
        .max_rooms_per_conn = 3,
        .room_name_max = 16,
        .outbox_frames = 4,
        .outbox_bytes = 1024,
        .history_lines = 4,
        .history_bytes = 1024,
    };
    snprintf(e.config, sizeof(e.config), "cfg");
    char err[320];
    json_t *v = ag_resume_state_parse((const char *)data, size, &e, err, sizeof(err));
    if (v == NULL)
        return 0;
    const json_t *conns = json_object_get(v, "conns"), *rooms = json_object_get(v, "rooms");
    if (json_array_size(conns) > e.max_conns * e.workers || json_object_size(rooms) > e.max_rooms)
        abort();
    for (size_t i = 0; i < json_array_size(conns); i++) {
        const json_t *c = json_array_get(conns, i);
        if (json_array_size(json_object_get(c, "outbox")) > e.outbox_frames ||
            json_array_size(json_object_get(c, "rooms")) > e.max_rooms_per_conn ||
            json_integer_value(json_object_get(c, "worker")) >= (json_int_t)e.workers)
            abort();
    }
    const char *name;
    json_t *h;
    json_object_foreach((json_t *)rooms, name, h)
    {
        const char *why;
        ag_store_hist_t *hist = ag_store_hist_load(h, e.history_lines, e.history_bytes, &why);
        if (hist == NULL || hist->n > e.history_lines || hist->bytes > e.history_bytes)
            abort();
        ag_store_hist_free(hist);
    }
    json_decref(v);
    return 0;
}
