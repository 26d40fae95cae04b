/*
 * ag_frame_t: one session-layer message, encoded once and shared.
 *
 * A frame is immutable after creation and refcounted: a broadcast is encoded once and the same frame sits in every
 * recipient's outbound queue. Transports add only their envelope (Primus: none; engine.io: the "4" packet type;
 * SSE: "id:" and "data:" lines) when they write it.
 */
#ifndef AG_FRAME_H
#define AG_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

typedef struct st_ag_frame_t {
    uint32_t refcnt;
    uint8_t binary; /* 1: raw bytes (engine.io binary message); 0: UTF-8 text (JSON) */
    size_t len;
    char data[]; /* len bytes, then a NUL that is not part of the frame */
} ag_frame_t;

/* Copies len bytes; refcount 1. NULL when out of memory. */
ag_frame_t *ag_frame_create(const void *data, size_t len, int binary);
/* Compact JSON of obj (insertion order kept); refcount 1. NULL on failure. obj is borrowed. */
ag_frame_t *ag_frame_from_json(const json_t *obj);
static inline ag_frame_t *ag_frame_addref(ag_frame_t *f)
{
    ++f->refcnt;
    return f;
}
void ag_frame_release(ag_frame_t *f);

/* The compact encoding every module uses for JSON on the wire. */
#define AG_JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17))

#endif
