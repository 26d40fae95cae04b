/*
 * socket.io connection state recovery (transports/socketio_recovery.c): the offset string a recovering client presents
 * in its CONNECT is untrusted. On arbitrary bytes the parser must either refuse or give back only what the connection
 * it names could have sent: a seq within int64, each room at most once, only rooms of that connection, offsets above
 * zero; and what the node writes (ag__sio_offset_text) must always read back as the same position.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "socketio.h"

static const char *const ROOMS[] = {"defaultRoom", "otherRoom", "a", "\xe2\x98\x83 snow", "b"};
#define NROOMS (sizeof(ROOMS) / sizeof(ROOMS[0]))

static void state_of(ag__sio_state_t *st, uint64_t seq, const uint64_t *offsets, size_t n)
{
    memset(st, 0, sizeof(*st));
    st->seq = seq;
    for (size_t i = 0; i < n; i++)
        st->rooms[st->num_rooms++] = (ag__sio_tracked_t){ag__sio_room_hash(ROOMS[i]), offsets[i], (char *)ROOMS[i]};
}

/* What the node writes reads back as the same position. */
static void check_roundtrip(const ag__sio_state_t *st)
{
    char text[AG__SIO_OFFSET_MAX + 1];
    ag__sio_offset_text(st, text);
    uint64_t seq;
    size_t n;
    ag__sio_tracked_t out[AG__SIO_TRACKED_ROOMS];
    json_t *offsets = json_object();
    if (offsets == NULL)
        return;
    if (ag__sio_offset_parse(st, text, &seq, offsets, out, &n) != 0 || seq != st->seq || n != st->num_rooms)
        abort();
    for (size_t i = 0; i < n; i++)
        if (json_integer_value(json_object_get(offsets, st->rooms[i].name)) != (json_int_t)st->rooms[i].offset)
            abort();
    ag__sio_tracked_clear(out, &n);
    json_decref(offsets);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    /* the connection being recovered: its rooms, positions taken from the input's first bytes */
    uint64_t offs[NROOMS];
    for (size_t i = 0; i < NROOMS; i++)
        offs[i] = 1 + (size > i ? data[i] : 0);
    ag__sio_state_t st;
    state_of(&st, size > 0 ? (uint64_t)data[0] * 1000003u : 0, offs, NROOMS);
    check_roundtrip(&st);

    uint64_t seq = 0;
    size_t n = 0;
    ag__sio_tracked_t out[AG__SIO_TRACKED_ROOMS];
    json_t *offsets = json_object();
    if (offsets != NULL && ag__sio_offset_parse(&st, text, &seq, offsets, out, &n) == 0) {
        if (seq > (uint64_t)INT64_MAX || n > NROOMS || json_object_size(offsets) != n)
            abort();
        for (size_t i = 0; i < n; i++) {
            int known = 0;
            for (size_t k = 0; k < NROOMS; k++)
                known |= strcmp(out[i].name, ROOMS[k]) == 0;
            json_int_t o = json_integer_value(json_object_get(offsets, out[i].name));
            if (!known || o <= 0 || (uint64_t)o != out[i].offset)
                abort();
        }
        /* the accepted position is one the node can write: it reads back the same */
        ag__sio_state_t back;
        memset(&back, 0, sizeof(back));
        back.seq = seq;
        for (size_t i = 0; i < n; i++)
            back.rooms[back.num_rooms++] = (ag__sio_tracked_t){out[i].hash, out[i].offset, out[i].name};
        check_roundtrip(&back);
    }
    ag__sio_tracked_clear(out, &n);
    json_decref(offsets);
    free(text);
    return 0;
}
