/* server/addr.c: forwarded addresses and trusted-proxy ranges. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include "addr.h"
#include "common.h"

static void expect_addr(const char *in, const char *text, int port)
{
    char out[64] = "";
    int p = -1;
    ag_addr_t a;
    if (ag_addr_parse(in, strlen(in), &a, out, &p) != 0)
        fail_msg("refused: \"%s\"", in);
    assert_string_equal(out, text);
    assert_int_equal(p, port);
}

static void test_parse(void **state)
{
    expect_addr("203.0.113.7", "203.0.113.7", 0);
    expect_addr(" \t203.0.113.7\t ", "203.0.113.7", 0);
    expect_addr("203.0.113.7:5555", "203.0.113.7", 5555);
    expect_addr("2001:DB8:0:0::1", "2001:db8::1", 0);
    expect_addr("[2001:db8::1]", "2001:db8::1", 0);
    expect_addr("[2001:db8::1]:443", "2001:db8::1", 443);
    expect_addr("::ffff:203.0.113.7", "203.0.113.7", 0);
    expect_addr("[::ffff:10.1.2.3]:80", "10.1.2.3", 80);
    expect_addr("::1", "::1", 0);
    const char *bad[] = {
        "",           "  ",         "unknown",        "1.2.3.4.5", "999.1.1.1",     "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536",
        "1.2.3.4:8x", "[::1",       "[::1]x",         "[::1]:",    "fe80::1%eth0",  "1.2.3",    "a.b.c.d",   "1.2.3.4 5",
        "[1.2.3.4]x", "::1:99999:", "1.2.3.4:123456", "_",         "2001:db8::1::2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ag_addr_parse(bad[i], strlen(bad[i]), NULL, NULL, NULL) != AG_EINVAL)
            fail_msg("accepted: \"%s\"", bad[i]);
    /* a long value is refused, never copied past its buffer */
    char longv[300];
    memset(longv, '1', sizeof(longv));
    assert_int_equal(ag_addr_parse(longv, sizeof(longv), NULL, NULL, NULL), AG_EINVAL);
}

static int in(const char *spec, const char *addr)
{
    ag_addr_t a;
    assert_int_equal(ag_addr_parse(addr, strlen(addr), &a, NULL, NULL), 0);
    return ag_addr_match(spec, &a);
}

static void test_match(void **state)
{
    assert_int_equal(in("127.0.0.1", "127.0.0.1"), 1);
    assert_int_equal(in("127.0.0.1", "127.0.0.2"), 0);
    assert_int_equal(in("10.0.0.0/8", "10.255.1.2"), 1);
    assert_int_equal(in("10.0.0.0/8", "11.0.0.1"), 0);
    assert_int_equal(in("192.168.1.128/25", "192.168.1.200"), 1);
    assert_int_equal(in("192.168.1.128/25", "192.168.1.100"), 0);
    assert_int_equal(in("0.0.0.0/0", "8.8.8.8"), 1);
    assert_int_equal(in("2001:db8::/32", "2001:db8:ffff::1"), 1);
    assert_int_equal(in("2001:db8::/32", "2001:db9::1"), 0);
    assert_int_equal(in("::1", "::1"), 1);
    /* families never match each other; a mapped address is its IPv4 */
    assert_int_equal(in("::/0", "10.0.0.1"), 0);
    assert_int_equal(in("10.0.0.0/8", "::ffff:10.0.0.1"), 1);
    const char *bad[] = {"",           "localhost",   "10.0.0.0/33", "::/129", "10.0.0.0/",
                         "10.0.0.0/x", "10.0.0.0/8x", "10.0.0.1:80", "[::1]",  "10.0.0.0/-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ag_addr_match(bad[i], NULL) != AG_EINVAL)
            fail_msg("accepted spec: \"%s\"", bad[i]);
    assert_int_equal(ag_addr_match("10.0.0.0/8", NULL), 1);
    assert_int_equal(ag_addr_match("fd00::/8", NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_parse), cmocka_unit_test(test_match)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
