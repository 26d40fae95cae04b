#include "frame.h"
#include "json.h"

#include <stdlib.h>
#include <string.h>

ag_frame_t *ag_frame_create(const void *data, size_t len, int binary)
{
    ag_frame_t *f = malloc(sizeof(*f) + len + 1);
    if (f == NULL)
        return NULL;
    f->refcnt = 1;
    f->binary = binary != 0;
    f->len = len;
    if (len != 0)
        memcpy(f->data, data, len);
    f->data[len] = '\0';
    return f;
}

ag_frame_t *ag_frame_from_json(const json_t *obj)
{
    /* Most frames are small: encode once on the stack and copy, encoding twice (size, then bytes) only when larger. */
    char buf[2048];
    size_t len = ag_json_dumpb(obj, buf, sizeof(buf));
    if (len == 0)
        return NULL;
    if (len <= sizeof(buf))
        return ag_frame_create(buf, len, 0);
    ag_frame_t *f = malloc(sizeof(*f) + len + 1);
    if (f == NULL)
        return NULL;
    f->refcnt = 1;
    f->binary = 0;
    f->len = ag_json_dumpb(obj, f->data, len);
    f->data[f->len] = '\0';
    return f;
}

void ag_frame_release(ag_frame_t *f)
{
    if (f != NULL && --f->refcnt == 0)
        free(f);
}
