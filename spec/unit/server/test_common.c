/* server/common.c: ids, number and date formatting, the string map. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include "common.h"

static void test_uuid4_shape(void **state)
{
    char a[37], b[37];
    ag_uuid4(a);
    ag_uuid4(b);
    assert_int_equal(strlen(a), 36);
    assert_true(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));
    assert_string_not_equal(a, b);
}

static void test_format_double_like_javascript(void **state)
{
    char buf[32];
    ag_format_double(0.1, buf);
    assert_string_equal(buf, "0.1");
    ag_format_double(0.4440898438058718, buf);
    assert_string_equal(buf, "0.4440898438058718");
    ag_format_double(42, buf);
    assert_string_equal(buf, "42");
    ag_format_double(-1.5, buf);
    assert_string_equal(buf, "-1.5");
}

static void test_iso8601(void **state)
{
    char buf[32];
    ag_iso8601(1795318591111ull, buf);
    assert_string_equal(buf, "2026-11-22T03:36:31.111Z");
    ag_iso8601(0, buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
}

static void test_random_double_range(void **state)
{
    for (int i = 0; i < 1000; i++) {
        double d = ag_random_double();
        assert_true(d >= 0 && d < 1);
    }
}

static void test_map_set_get_del(void **state)
{
    ag_map_t m;
    ag_map_init(&m);
    assert_null(ag_map_get(&m, "missing"));
    int values[2000];
    char key[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(ag_map_set(&m, key, &values[i]), AG_OK);
    }
    assert_int_equal(m.size, 2000);
    for (int i = 0; i < 2000; i += 2) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_ptr_equal(ag_map_del(&m, key), &values[i]);
    }
    assert_int_equal(m.size, 1000);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_ptr_equal(ag_map_get(&m, key), i % 2 ? &values[i] : NULL);
    }
    /* replacing keeps the size */
    assert_int_equal(ag_map_set(&m, "k1", &values[0]), AG_OK);
    assert_int_equal(m.size, 1000);
    assert_ptr_equal(ag_map_get(&m, "k1"), &values[0]);
    /* iteration sees every live entry once, and may delete as it goes */
    size_t seen = 0;
    const char *k;
    void *v;
    for (size_t it = 0; ag_map_next(&m, &it, &k, &v);) {
        seen++;
        ag_map_del(&m, k);
    }
    assert_int_equal(seen, 1000);
    assert_int_equal(m.size, 0);
    ag_map_dispose(&m);
}

static void test_map_reuses_tombstones(void **state)
{
    ag_map_t m;
    ag_map_init(&m);
    int v;
    for (int round = 0; round < 10000; round++) {
        assert_int_equal(ag_map_set(&m, "churn", &v), AG_OK);
        assert_ptr_equal(ag_map_del(&m, "churn"), &v);
    }
    assert_true(m.capacity <= 64);
    ag_map_dispose(&m);
}

/* Reference vectors: key 00 01 .. 0f; SipHash-2-4 from the SipHash paper, SipHash-1-3 computed with OpenSSL's
 * SIPHASH MAC (c-rounds 1, d-rounds 3). */
static void test_siphash_vectors(void **state)
{
    uint8_t key[16];
    unsigned char msg[15];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 15; i++)
        msg[i] = (unsigned char)i;
    assert_true(ag_siphash(key, "", 0, 2, 4) == 0x726fdb47dd0e0e31ull);
    assert_true(ag_siphash(key, msg, 15, 2, 4) == 0xa129ca6149be45e5ull);
    assert_true(ag_siphash(key, "abcdefgh", 8, 2, 4) == 0xc329dda391d44470ull);
    assert_true(ag_siphash(key, "", 0, 1, 3) == 0xabac0158050fc4dcull);
    assert_true(ag_siphash(key, "a", 1, 1, 3) == 0x1c2697ab786a6237ull);
    assert_true(ag_siphash(key, "abcdefg", 7, 1, 3) == 0x639b490caba831bbull);
    assert_true(ag_siphash(key, "abcdefgh", 8, 1, 3) == 0x12d8c08c2ee9e620ull);
    assert_true(ag_siphash(key, "defaultRoom", 11, 1, 3) == 0xd85f9d330e40cda6ull);
    const char *fox = "The quick brown fox jumps over the lazy dog";
    assert_true(ag_siphash(key, fox, strlen(fox), 1, 3) == 0x9bd930430f05b1ceull);
}

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* Keys chosen to collide under an unkeyed hash (here FNV-1a, low 12 bits equal, enough for every table size this map
 * reaches) must not pile up in one probe run: the map's hash is keyed, so the attacker cannot predict its bits. */
static void test_map_colliding_keys_stay_spread(void **state)
{
    enum { N = 1500 };
    ag_map_t m;
    ag_map_init(&m);
    static char keys[N][24];
    uint32_t target = fnv1a("room-0") & 0xfff;
    size_t found = 0;
    for (unsigned long i = 0; found < N && i < 100000000ul; i++) {
        snprintf(keys[found], sizeof(keys[found]), "room-%lu", i);
        if ((fnv1a(keys[found]) & 0xfff) == target)
            found++;
    }
    assert_int_equal(found, N);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(ag_map_set(&m, keys[i], keys[i]), AG_OK);
    size_t mask = m.capacity - 1, worst = 0, total = 0;
    for (size_t i = 0; i < m.capacity; i++) {
        const ag_map_entry_t *e = &m.entries[i];
        if (e->key == NULL || e->key == (char *)1)
            continue;
        size_t displacement = (i - (e->hash & mask)) & mask;
        total += displacement;
        if (displacement > worst)
            worst = displacement;
    }
    /* Random hashes at this load displace a key by a few slots on average and the longest run stays far under N
     * (it varies from run to run, so only the mean is bounded tightly); keys that collide would average ~N/2. */
    assert_true(total / N < 20);
    assert_true(worst < N / 4);
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(ag_map_get(&m, keys[i]), keys[i]);
    ag_map_dispose(&m);
}

/* Random inserts and deletes against a plain array: backward-shift deletion must keep every key reachable. */
static void test_ptrmap_against_array(void **state)
{
    (void)state;
    enum { N = 2000 };
    static char objs[N];
    static void *present[N];
    ag_ptrmap_t m;
    ag_ptrmap_init(&m);
    unsigned seed = 12345;
    for (int step = 0; step < 200000; step++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)((seed >> 8) % N);
        if ((seed >> 4) & 1) {
            assert_int_equal(ag_ptrmap_set(&m, &objs[i], &present[i]), AG_OK);
            present[i] = &present[i];
        } else {
            assert_ptr_equal(ag_ptrmap_del(&m, &objs[i]), present[i]);
            present[i] = NULL;
        }
        if (step % 5000 == 0) {
            size_t n = 0;
            for (int k = 0; k < N; k++) {
                assert_ptr_equal(ag_ptrmap_get(&m, &objs[k]), present[k]);
                n += present[k] != NULL;
            }
            assert_int_equal(m.size, n);
        }
    }
    assert_true(m.capacity >= 16 && m.size * 4 <= m.capacity * 3);
    ag_ptrmap_dispose(&m);
    assert_null(ag_ptrmap_get(&m, &objs[0]));
    assert_null(ag_ptrmap_del(&m, &objs[0]));
}

static void test_read_file_bounds(void **state)
{
    char path[] = "/tmp/ag-read-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char data[10000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)('a' + i % 26);
    assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
    close(fd);
    size_t len = 1;
    char *b = ag_read_file(path, sizeof(data), &len); /* exactly at the bound, past the first buffer */
    assert_non_null(b);
    assert_int_equal(len, sizeof(data));
    assert_memory_equal(b, data, sizeof(data));
    assert_int_equal(b[len], '\0');
    free(b);
    errno = 0;
    assert_null(ag_read_file(path, sizeof(data) - 1, &len)); /* one byte over */
    assert_int_equal(errno, EFBIG);
    assert_null(ag_read_file("/dev/zero", 1 << 16, &len)); /* never ends */
    assert_int_equal(errno, EFBIG);
    assert_int_equal(truncate(path, 0), 0);
    b = ag_read_file(path, 10, &len);
    assert_non_null(b);
    assert_int_equal(len, 0);
    assert_string_equal(b, "");
    free(b);
    unlink(path);
    assert_null(ag_read_file(path, 10, &len));
    assert_int_equal(errno, ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid4_shape),      cmocka_unit_test(test_format_double_like_javascript),
        cmocka_unit_test(test_iso8601),          cmocka_unit_test(test_random_double_range),
        cmocka_unit_test(test_map_set_get_del),  cmocka_unit_test(test_map_reuses_tombstones),
        cmocka_unit_test(test_siphash_vectors),  cmocka_unit_test(test_map_colliding_keys_stay_spread),
        cmocka_unit_test(test_read_file_bounds), cmocka_unit_test(test_ptrmap_against_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
