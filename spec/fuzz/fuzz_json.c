/*
 * The hot-path JSON parser and encoder (server/json.c) against jansson, on arbitrary bytes. Parsing: whatever the fast
 * parser takes, jansson takes too and gives the same value with its keys in the same order (compared through
 * jansson's own encoding); whatever jansson refuses, ag_json_loadb refuses with jansson's error. Encoding: for every
 * value jansson parses, ag_json_dumpb writes exactly jansson's bytes (or fails where jansson fails), whether or not
 * the buffer is large enough, and says the same length.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "frame.h"
#include "json.h"

static char *dump_jansson(const json_t *v, size_t *n)
{
    *n = json_dumpb(v, NULL, 0, AG_JSON_FLAGS);
    char *b = malloc(*n + 1);
    if (b == NULL)
        abort();
    if (*n != 0 && json_dumpb(v, b, *n, AG_JSON_FLAGS) != *n)
        abort();
    return b;
}

static void check_encoder(const json_t *v)
{
    size_t want_len;
    char *want = dump_jansson(v, &want_len);
    /* with no room at all, then with exactly the room needed, then with one byte too few */
    size_t n0 = ag_json_dumpb(v, NULL, 0);
    if (n0 != want_len)
        abort();
    if (want_len != 0) {
        char *got = malloc(want_len);
        if (got == NULL)
            abort();
        if (ag_json_dumpb(v, got, want_len) != want_len || memcmp(got, want, want_len) != 0)
            abort();
        if (ag_json_dumpb(v, got, want_len - 1) != want_len || memcmp(got, want, want_len - 1) != 0)
            abort();
        free(got);
    }
    free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
    json_error_t err;
    json_t *ref = json_loadb(s, size, flags, &err);
    json_t *fast = ag_json_parse_fast(s, size);
    if (fast != NULL) {
        if (ref == NULL || !json_equal(fast, ref))
            abort();
        size_t a, b;
        char *da = dump_jansson(fast, &a), *db = dump_jansson(ref, &b);
        if (a != b || memcmp(da, db, a) != 0) /* the same key order */
            abort();
        free(da);
        free(db);
    }
    json_t *via = ag_json_loadb(s, size, flags, &err);
    if ((via == NULL) != (ref == NULL) || (via != NULL && !json_equal(via, ref)))
        abort();
    /* the other flag sets the code uses */
    json_t *strict = ag_json_loadb(s, size, 0, &err), *strict_ref = json_loadb(s, size, 0, &err);
    if ((strict == NULL) != (strict_ref == NULL) || (strict != NULL && !json_equal(strict, strict_ref)))
        abort();
    json_t *dup = ag_json_loadb(s, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err),
           *dup_ref = json_loadb(s, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if ((dup == NULL) != (dup_ref == NULL) || (dup != NULL && !json_equal(dup, dup_ref)))
        abort();
    if (ref != NULL)
        check_encoder(ref);
    json_decref(ref);
    json_decref(fast);
    json_decref(via);
    json_decref(strict);
    json_decref(strict_ref);
    json_decref(dup);
    json_decref(dup_ref);
    return 0;
}
