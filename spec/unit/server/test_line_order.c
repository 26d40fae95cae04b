/* The order of a room's lines on a node (server/line_order.h): a gap holds later lines until the fetch settles, then the
 * fetched and held lines come out once each, in offset order; what the history no longer has is counted as missed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "line_order.h"

static ag_line_verdict_t take(ag_line_order_t *o, uint64_t off)
{
    char p[32];
    int n = snprintf(p, sizeof(p), "c%llu", (unsigned long long)off);
    return ag_line_order_take(o, off, p, (size_t)n);
}

/* The history's answer: [[offset, "c<offset>"], ...] for from..to. */
static json_t *history(uint64_t from, uint64_t to)
{
    json_t *a = json_array();
    for (uint64_t i = from; i <= to; i++) {
        char p[32];
        snprintf(p, sizeof(p), "c%llu", (unsigned long long)i);
        json_array_append_new(a, json_pack("[I,s]", (json_int_t)i, p));
    }
    return a;
}

/* Checks that lines are exactly from..to, each payload its own, and frees them. */
static void expect(ag_line_t *lines, uint64_t from, uint64_t to)
{
    uint64_t want = from;
    for (ag_line_t *l = lines; l != NULL; l = l->next, want++) {
        char p[32];
        int n = snprintf(p, sizeof(p), "c%llu", (unsigned long long)want);
        assert_int_equal(l->offset, want);
        assert_int_equal(l->len, (size_t)n);
        assert_memory_equal(l->payload, p, (size_t)n);
    }
    assert_int_equal(want, to + 1);
    ag_line_list_free(lines);
}

static void test_in_order(void **state)
{
    (void)state;
    ag_line_order_t o = {0};
    assert_int_equal(take(&o, 7), AG_LINE_NOW); /* the first seen: wherever the room stands */
    assert_int_equal(take(&o, 8), AG_LINE_NOW);
    assert_int_equal(o.last, 8);
    assert_int_equal(ag_line_order_begin(&o), 1); /* subscribed again: look for what followed 8 */
    assert_int_equal(ag_line_order_begin(&o), 0); /* one fetch at a time */
    uint64_t missed = 99;
    expect(ag_line_order_settle(&o, NULL, &missed), 1, 0);
    assert_int_equal(missed, 0);
    ag_line_order_t fresh = {0};
    assert_int_equal(ag_line_order_begin(&fresh), 0); /* no line seen: nothing to look for */
    ag_line_order_dispose(&o);
}

static void test_gap_filled(void **state)
{
    (void)state;
    ag_line_order_t o = {0};
    take(&o, 1);
    take(&o, 2);
    assert_int_equal(take(&o, 6), AG_LINE_FETCH); /* 3..5 never came */
    uint64_t fetch = o.fetch;
    assert_int_not_equal(fetch, 0);
    assert_int_equal(take(&o, 7), AG_LINE_HELD);
    assert_int_equal(take(&o, 8), AG_LINE_HELD);
    /* the history was read after 7 was published: it has 3..7; 6 and 7 came twice and go out once */
    json_t *h = history(3, 7);
    uint64_t missed = 99;
    expect(ag_line_order_settle(&o, h, &missed), 3, 8);
    json_decref(h);
    assert_int_equal(missed, 0);
    assert_int_equal(o.last, 8);
    assert_int_equal(o.fetch, 0);
    assert_int_equal(take(&o, 9), AG_LINE_NOW);
    ag_line_order_dispose(&o);
}

static void test_late_echo(void **state)
{
    (void)state;
    ag_line_order_t o = {0};
    take(&o, 1);
    assert_int_equal(take(&o, 4), AG_LINE_FETCH);
    /* the history was read after 6 was published, but pub/sub hands 5 and 6 over after the answer was read */
    json_t *h = history(2, 6);
    uint64_t missed = 0;
    expect(ag_line_order_settle(&o, h, &missed), 2, 6);
    json_decref(h);
    assert_int_equal(take(&o, 5), AG_LINE_DUP);
    assert_int_equal(take(&o, 6), AG_LINE_DUP);
    assert_int_equal(take(&o, 7), AG_LINE_NOW);
    /* past the fetched lines, an offset that goes back is the history beginning again, not an echo */
    assert_int_equal(take(&o, 5), AG_LINE_NOW);
    assert_int_equal(o.last, 5);
    ag_line_order_dispose(&o);
}

static void test_gap_gone(void **state)
{
    (void)state;
    ag_line_order_t o = {0};
    take(&o, 10);
    assert_int_equal(take(&o, 15), AG_LINE_FETCH);
    assert_int_equal(take(&o, 16), AG_LINE_HELD);
    uint64_t missed = 0;
    expect(ag_line_order_settle(&o, NULL, &missed), 15, 16); /* the history no longer has 11..14 */
    assert_int_equal(missed, 4);
    /* part of the gap kept: what is there goes out, the rest is counted */
    take(&o, 20);
    json_t *h = history(18, 19);
    expect(ag_line_order_settle(&o, h, &missed), 18, 20);
    json_decref(h);
    assert_int_equal(missed, 1);
    ag_line_order_dispose(&o);
}

static void test_history_began_again(void **state)
{
    (void)state;
    ag_line_order_t o = {0};
    take(&o, 500);
    /* the store lost its data: the room's offsets count from 1 again, and the node follows */
    assert_int_equal(take(&o, 1), AG_LINE_NOW);
    assert_int_equal(take(&o, 2), AG_LINE_NOW);
    /* the same while a fetch is in flight: a held line below the fetched range is not a duplicate */
    take(&o, 5);
    take(&o, 1);
    uint64_t missed = 0;
    json_t *none = json_array();
    ag_line_t *l = ag_line_order_settle(&o, none, &missed);
    json_decref(none);
    assert_non_null(l);
    assert_int_equal(l->offset, 5);
    assert_non_null(l->next);
    assert_int_equal(l->next->offset, 1);
    assert_null(l->next->next);
    ag_line_list_free(l);
    assert_int_equal(missed, 2);
    assert_int_equal(o.last, 1);
    ag_line_order_dispose(&o);
}

static void test_bounded(void **state)
{
    (void)state;
    ag_line_order_t o = {0};
    take(&o, 1);
    assert_int_equal(take(&o, 3), AG_LINE_FETCH);
    uint64_t off = 4;
    while (o.held_n < AG_LINE_ORDER_MAX_HELD)
        assert_int_equal(take(&o, off++), AG_LINE_HELD);
    uint64_t fetch = o.fetch;
    assert_int_equal(take(&o, off), AG_LINE_FULL); /* not kept */
    uint64_t missed = 0;
    expect(ag_line_order_settle(&o, NULL, &missed), 3, off - 1);
    assert_int_equal(missed, 1);
    assert_int_equal(take(&o, off), AG_LINE_NOW); /* taken again: the next one */
    assert_int_equal(ag_line_order_begin(&o), 1);
    assert_int_not_equal(o.fetch, fetch); /* a late answer to the fetch given up is known by its number */
    expect(ag_line_order_settle(&o, NULL, &missed), 1, 0);
    /* bytes bound too */
    ag_line_order_t b = {0};
    static char big[1 << 20];
    memset(big, 'c', sizeof(big));
    ag_line_order_take(&b, 1, big, 1);
    assert_int_equal(ag_line_order_take(&b, 3, big, sizeof(big)), AG_LINE_FETCH);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ag_line_order_take(&b, (uint64_t)(4 + i), big, sizeof(big)), AG_LINE_HELD);
    assert_int_equal(ag_line_order_take(&b, 7, big, sizeof(big)), AG_LINE_FULL);
    ag_line_order_dispose(&b);
    assert_null(b.held);
    ag_line_order_dispose(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order), cmocka_unit_test(test_gap_filled),          cmocka_unit_test(test_late_echo),
        cmocka_unit_test(test_gap_gone), cmocka_unit_test(test_history_began_again), cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
