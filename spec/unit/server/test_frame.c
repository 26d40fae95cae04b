/* Frames (server/frame.c): bytes copied and NUL-terminated, JSON encoded compactly in insertion order on both sides of
 * the stack buffer, the refcount that lets one broadcast frame sit in many queues. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "frame.h"

static void test_create_copies_and_terminates(void **state)
{
    char src[] = "a\0b";
    ag_frame_t *f = ag_frame_create(src, 3, 7);
    assert_non_null(f);
    src[0] = 'x';
    assert_int_equal(f->len, 3);
    assert_memory_equal(f->data, "a\0b", 3);
    assert_int_equal(f->data[3], '\0');
    assert_int_equal(f->binary, 1); /* any non-zero is binary */
    assert_int_equal(f->refcnt, 1);
    ag_frame_release(f);
    ag_frame_t *e = ag_frame_create(NULL, 0, 0);
    assert_non_null(e);
    assert_int_equal(e->len, 0);
    assert_string_equal(e->data, "");
    assert_int_equal(e->binary, 0);
    ag_frame_release(e);
    ag_frame_release(NULL);
}

static void test_refcount_shares_one_frame(void **state)
{
    ag_frame_t *f = ag_frame_create("x", 1, 0);
    assert_ptr_equal(ag_frame_addref(f), f);
    assert_ptr_equal(ag_frame_addref(f), f);
    assert_int_equal(f->refcnt, 3);
    ag_frame_release(f);
    ag_frame_release(f);
    assert_int_equal(f->refcnt, 1);
    assert_string_equal(f->data, "x");
    ag_frame_release(f); /* the last one frees (the sanitizer build would see a leak or a double free) */
}

static void test_json_is_compact_and_ordered(void **state)
{
    json_t *o = json_pack("{s:s, s:i, s:[b,n], s:f}", "z", "é\n", "a", 1, "m", 1, "r", 0.1);
    ag_frame_t *f = ag_frame_from_json(o);
    assert_non_null(f);
    assert_string_equal(f->data, "{\"z\":\"é\\n\",\"a\":1,\"m\":[true,null],\"r\":0.10000000000000001}");
    assert_int_equal(f->len, strlen(f->data));
    assert_int_equal(f->binary, 0);
    ag_frame_release(f);
    json_decref(o);
    /* any value, not only objects */
    json_t *s = json_string("hi");
    f = ag_frame_from_json(s);
    assert_string_equal(f->data, "\"hi\"");
    ag_frame_release(f);
    json_decref(s);
}

/* Sizes around the 2048-byte stack buffer: the frame is the whole encoding either way. */
static void test_json_around_the_stack_buffer(void **state)
{
    static const size_t sizes[] = {0, 2030, 2035, 2036, 2037, 2038, 4000, 100000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *text = malloc(sizes[i] + 1);
        memset(text, 'q', sizes[i]);
        text[sizes[i]] = '\0';
        json_t *o = json_pack("{s:s}", "m", text);
        ag_frame_t *f = ag_frame_from_json(o);
        assert_non_null(f);
        assert_int_equal(f->len, sizes[i] + 8); /* {"m":"..."} */
        assert_memory_equal(f->data, "{\"m\":\"", 6);
        assert_memory_equal(f->data + 6, text, sizes[i]);
        assert_string_equal(f->data + 6 + sizes[i], "\"}");
        ag_frame_release(f);
        json_decref(o);
        free(text);
    }
}

static void test_frames_shared(void **state)
{
    json_t *o = json_pack("{s:s}", "message", "hi");
    ag_frame_t *f = ag_frame_from_json(o);
    assert_string_equal(f->data, "{\"message\":\"hi\"}");
    assert_int_equal(f->len, strlen(f->data));
    ag_frame_addref(f);
    assert_int_equal(f->refcnt, 2);
    ag_frame_release(f);
    ag_frame_release(f);
    json_decref(o);
}

static void test_json_that_cannot_encode(void **state)
{
    assert_null(ag_frame_from_json(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_copies_and_terminates), cmocka_unit_test(test_refcount_shares_one_frame),
        cmocka_unit_test(test_json_is_compact_and_ordered),  cmocka_unit_test(test_json_around_the_stack_buffer),
        cmocka_unit_test(test_json_that_cannot_encode),      cmocka_unit_test(test_frames_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
