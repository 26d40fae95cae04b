/* The resume outbox (server/outbox.h): numbering, what is kept within both bounds, "since" refusing a gap, answers by
 * messageId. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "common.h"
#include "outbox.h"

static ag_frame_t *text(const char *s)
{
    return ag_frame_create(s, strlen(s), 0);
}

/* Pushes s and checks the numbered frame. */
static void push(ag_outbox_t *o, const char *s, const char *mid, const char *want)
{
    ag_frame_t *f = text(s);
    ag_frame_t *n = ag_outbox_push(o, f, mid);
    assert_non_null(n);
    assert_string_equal(n->data, want);
    assert_int_equal(n->len, strlen(want));
    ag_frame_release(n);
    ag_frame_release(f);
}

typedef struct {
    char got[8][64];
    int n;
} seen_t;

static void collect(ag_frame_t *f, void *data)
{
    seen_t *s = data;
    snprintf(s->got[s->n++ % 8], sizeof(s->got[0]), "%s", f->data);
}

static void test_numbering(void **state)
{
    ag_outbox_t o;
    ag_outbox_init(&o, 8, 4096);
    push(&o, "{\"a\":1}", NULL, "{\"seq\":1,\"a\":1}");
    push(&o, "{}", NULL, "{\"seq\":2}");
    /* not an object (binary, a bare string): as it is, unnumbered, not kept */
    ag_frame_t *b = ag_frame_create("\x01\x02", 2, 1), *nb = ag_outbox_push(&o, b, NULL);
    assert_ptr_equal(nb, b);
    ag_frame_release(nb);
    ag_frame_release(b);
    push(&o, "\"primus::x\"", NULL, "\"primus::x\"");
    assert_int_equal(o.seq, 2);
    assert_int_equal(o.n, 2);
    seen_t s = {0};
    assert_int_equal(ag_outbox_since(&o, 0, collect, &s), AG_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.got[1], "{\"seq\":2}");
    s.n = 0;
    assert_int_equal(ag_outbox_since(&o, 2, collect, &s), AG_OK);
    assert_int_equal(s.n, 0);
    assert_int_equal(ag_outbox_since(&o, 3, collect, &s), AG_ENOENT); /* never given */
    ag_outbox_dispose(&o);
}

static void test_bounds(void **state)
{
    ag_outbox_t o;
    ag_outbox_init(&o, 3, 4096);
    for (int i = 1; i <= 5; i++) {
        char in[32], want[48];
        snprintf(in, sizeof(in), "{\"i\":%d}", i);
        snprintf(want, sizeof(want), "{\"seq\":%d,\"i\":%d}", i, i);
        push(&o, in, NULL, want);
    }
    assert_int_equal(o.n, 3);
    assert_int_equal(o.floor, 2);
    seen_t s = {0};
    assert_int_equal(ag_outbox_since(&o, 1, collect, &s), AG_ENOENT); /* 2 is gone: a gap, refused */
    assert_int_equal(s.n, 0);
    assert_int_equal(ag_outbox_since(&o, 2, collect, &s), AG_OK);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.got[0], "{\"seq\":3,\"i\":3}");
    assert_string_equal(s.got[2], "{\"seq\":5,\"i\":5}");
    ag_outbox_dispose(&o);

    /* bytes: each numbered frame here is 15 bytes; 40 bytes keep two */
    ag_outbox_init(&o, 100, 40);
    push(&o, "{\"i\":1}", NULL, "{\"seq\":1,\"i\":1}");
    push(&o, "{\"i\":2}", NULL, "{\"seq\":2,\"i\":2}");
    push(&o, "{\"i\":3}", NULL, "{\"seq\":3,\"i\":3}");
    assert_int_equal(o.n, 2);
    assert_int_equal(o.bytes, 30);
    assert_int_equal(o.floor, 1);
    /* one frame over the whole bound is still kept alone: the newest is always there */
    char big[128];
    memset(big, 0, sizeof(big));
    snprintf(big, sizeof(big), "{\"x\":\"%060d\"}", 0);
    ag_frame_t *f = text(big), *n = ag_outbox_push(&o, f, NULL);
    ag_frame_release(n);
    ag_frame_release(f);
    assert_int_equal(o.n, 1);
    assert_int_equal(o.floor, 3);
    ag_outbox_dispose(&o);
}

static void test_replies(void **state)
{
    ag_outbox_t o;
    ag_outbox_init(&o, 2, 4096);
    push(&o, "{\"r\":1,\"messageId\":7}", "7", "{\"seq\":1,\"r\":1,\"messageId\":7}");
    push(&o, "{\"push\":1}", NULL, "{\"seq\":2,\"push\":1}");
    ag_frame_t *r = ag_outbox_reply_of(&o, "7");
    assert_non_null(r);
    assert_string_equal(r->data, "{\"seq\":1,\"r\":1,\"messageId\":7}");
    assert_null(ag_outbox_reply_of(&o, "8"));
    push(&o, "{\"push\":2}", NULL, "{\"seq\":3,\"push\":2}");
    assert_null(ag_outbox_reply_of(&o, "7")); /* dropped with its frame */
    ag_outbox_dispose(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbering),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
