// hmap: the one hash table. Exact tests (integers and bytes): no tolerance.
#include "testutil.h"

#include "ibc/hmap.h"

// Strings: insert, find, dense indices in insertion order, overwrite-free re-insertion.
static void test_strings(void **s) {
    (void)s;
    hmap m;
    hmap_init(&m, 0, 0);
    assert_int_equal(hmap_find(&m, "a", 1), -1); // empty map
    int added;
    assert_int_equal(hmap_put(&m, "hello", 5, &added), 0);
    assert_int_equal(added, 1);
    assert_int_equal(hmap_put(&m, "world", 5, &added), 1);
    assert_int_equal(hmap_put(&m, "hello", 5, &added), 0);
    assert_int_equal(added, 0);
    m.val[1] = 42;
    assert_int_equal(hmap_find(&m, "world", 5), 1);
    assert_int_equal(m.val[hmap_find(&m, "world", 5)], 42);
    assert_int_equal(hmap_find(&m, "hell", 4), -1);  // a prefix is another key
    assert_int_equal(hmap_find(&m, "hello!", 6), -1);
    size_t len;
    const char *k = hmap_key(&m, 0, &len);
    assert_int_equal(len, 5);
    assert_string_equal(k, "hello"); // NUL-terminated
    hmap_free(&m);
}

// The empty key and keys holding NUL bytes are keys like any other.
static void test_empty_and_nul(void **s) {
    (void)s;
    hmap m;
    hmap_init(&m, 0, 0);
    assert_int_equal(hmap_put(&m, "", 0, NULL), 0);
    assert_int_equal(hmap_put(&m, "\0", 1, NULL), 1);
    assert_int_equal(hmap_put(&m, "\0\0", 2, NULL), 2);
    assert_int_equal(hmap_find(&m, "", 0), 0);
    assert_int_equal(hmap_find(&m, "\0", 1), 1);
    assert_int_equal(hmap_find(&m, "\0\0", 2), 2);
    assert_int_equal(hmap_find(&m, "\0\0\0", 3), -1);
    size_t len;
    hmap_key(&m, 0, &len);
    assert_int_equal(len, 0);
    hmap_free(&m);
}

// Many keys through many doublings (16 slots at first): every key keeps its index.
static void test_many_and_grow(void **s) {
    (void)s;
    hmap m;
    hmap_init(&m, 0, 0);
    enum { N = 200000 };
    char buf[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(buf, sizeof buf, "key-%d", i);
        assert_int_equal(hmap_put(&m, buf, (size_t)n, NULL), i);
        m.val[i] = (int64_t)i * 3;
    }
    assert_int_equal(m.n, N);
    assert_true(m.cap >= (size_t)N * 10 / 7); // load factor <= 0.7
    assert_true(m.cap < (size_t)N * 4);       // and doubling, not more
    for (int i = 0; i < N; i++) {
        int n = snprintf(buf, sizeof buf, "key-%d", i);
        int64_t k = hmap_find(&m, buf, (size_t)n);
        assert_int_equal(k, i);
        assert_int_equal(m.val[k], (int64_t)i * 3);
    }
    assert_int_equal(hmap_find(&m, "key-200000", 10), -1);
    hmap_clear(&m); // empty again, memory kept
    assert_int_equal(m.n, 0);
    assert_int_equal(hmap_find(&m, "key-1", 5), -1);
    assert_int_equal(hmap_put(&m, "key-1", 5, NULL), 0);
    hmap_free(&m);
}

// Fixed-size keys: tuples of int32 (a merge pair, a label of four ids).
static void test_int_tuples(void **s) {
    (void)s;
    hmap m;
    hmap_init(&m, 4 * sizeof(int32_t), 1000);
    assert_int_equal(m.min_cap, 1024);
    int64_t k = 0;
    for (int32_t a = -1; a < 60; a++)
        for (int32_t b = -1; b < 60; b++) {
            int32_t key[4] = {a, b, -1, a ^ b};
            assert_int_equal(hmap_put(&m, key, sizeof key, NULL), k++);
        }
    k = 0;
    for (int32_t a = -1; a < 60; a++)
        for (int32_t b = -1; b < 60; b++) {
            int32_t key[4] = {a, b, -1, a ^ b};
            assert_int_equal(hmap_find(&m, key, sizeof key), k);
            assert_memory_equal(hmap_key(&m, k, NULL), key, sizeof key);
            k++;
        }
    int32_t absent[4] = {60, 0, -1, 60};
    assert_int_equal(hmap_find(&m, absent, sizeof absent), -1);
    hmap_free(&m);
}

// Collisions: keys chosen so that all hash to the last slot of a 16-slot map, so each
// insertion and lookup walks one chain that wraps around past the end of the slot array.
static void test_collisions(void **s) {
    (void)s;
    hmap m;
    hmap_init(&m, sizeof(uint64_t), 16);
    uint64_t keys[11];
    int nk = 0;
    for (uint64_t x = 0; nk < 11; x++)
        if ((hmap_hash(&x, 8) & 15) == 15) keys[nk++] = x;
    for (int i = 0; i < 11; i++) assert_int_equal(hmap_put(&m, &keys[i], 8, NULL), i);
    assert_int_equal(m.cap, 16); // 11 keys in 16 slots: load 0.69, no growth yet
    for (int i = 0; i < 11; i++) assert_int_equal(hmap_find(&m, &keys[i], 8), i);
    uint64_t other = keys[10] + 1;
    while ((hmap_hash(&other, 8) & 15) != 15) other++;
    assert_int_equal(hmap_find(&m, &other, 8), -1); // walks the whole chain to the empty slot
    assert_int_equal(hmap_put(&m, &other, 8, NULL), 11); // passes 0.7: the slots double
    assert_int_equal(m.cap, 32);
    for (int i = 0; i < 11; i++) assert_int_equal(hmap_find(&m, &keys[i], 8), i);
    // The hash separates keys one bit apart, and the length counts.
    uint64_t seen[64];
    for (int b = 0; b < 64; b++) {
        uint64_t x = 1ULL << b;
        seen[b] = hmap_hash(&x, 8);
    }
    for (int i = 0; i < 64; i++)
        for (int j = i + 1; j < 64; j++) assert_true(seen[i] != seen[j]);
    assert_true(hmap_hash("", 0) != hmap_hash("\0", 1));
    hmap_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_empty_and_nul),
        cmocka_unit_test(test_many_and_grow),
        cmocka_unit_test(test_int_tuples),
        cmocka_unit_test(test_collisions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
