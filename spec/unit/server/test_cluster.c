/*
 * The cluster's sid helpers (server/cluster.h): the owner tag of a sid, and that a node without Redis treats every sid
 * as its own and leaves sids untouched: the memory store has no node registry, so the cluster stays inert on it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "cluster.h"
#include "store/store.h"

static void test_owner_of_sid(void **state)
{
    char tag[AG_CLUSTER_TAG_LEN + 1];
    assert_int_equal(ag_cluster_owner_of_sid("AbCdEf-_rest0fThe5idxx", tag), 0);
    assert_string_equal(tag, "AbCdEf-_");
    assert_int_equal(ag_cluster_owner_of_sid("12345678", tag), 0);
    assert_string_equal(tag, "12345678");
    assert_int_equal(ag_cluster_owner_of_sid("1234567", tag), AG_EINVAL);
    assert_int_equal(ag_cluster_owner_of_sid("", tag), AG_EINVAL);
    assert_int_equal(ag_cluster_owner_of_sid(NULL, tag), AG_EINVAL);
}

static void test_without_cluster(void **state)
{
    ag_server_t s;
    memset(&s, 0, sizeof(s));
    char sid[] = "abcdefghijklmnopqrstuv";
    ag_cluster_sid_stamp(&s, sid);
    assert_string_equal(sid, "abcdefghijklmnopqrstuv");
    assert_true(ag_cluster_is_local_sid(&s, sid));
    assert_int_equal(ag_cluster_stats(&s)->forwarded_http, 0);
}

static void test_memory_store_is_no_cluster(void **state)
{
    ag_server_t s;
    memset(&s, 0, sizeof(s));
    s.store = ag_store_memory_create(NULL);
    assert_non_null(s.store);
    char err[128] = "";
    assert_int_equal(ag_cluster_init(&s, err, sizeof(err)), 0);
    assert_non_null(s.cluster);
    char sid[] = "abcdefghijklmnopqrstuv";
    ag_cluster_sid_stamp(&s, sid);
    assert_string_equal(sid, "abcdefghijklmnopqrstuv");
    assert_true(ag_cluster_is_local_sid(&s, "ZZZZZZZZqqqqqqqqqqqqqq"));
    assert_null(s.store->on_node_event);
    ag_cluster_dispose(&s);
    assert_null(s.cluster);
    s.store->ops->destroy(s.store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_owner_of_sid),
        cmocka_unit_test(test_without_cluster),
        cmocka_unit_test(test_memory_store_is_no_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
