// stats: the resampling plans and the closed-form cases of the bootstrap and permutation test.
// (The general case is checked against scipy on the same resamples in tests/correlate.sh.)
#include "testutil.h"

#include "ibc/stats.h"

// Plans: deterministic per seed, indices in range, permutations are permutations, and the
// exact mode exactly when n! <= B (scipy's rule).
static void test_plan(void **state) {
    (void)state;
    st_plan a, b, c;
    st_plan_init(&a, 9, 1000, 3);
    st_plan_init(&b, 9, 1000, 3);
    st_plan_init(&c, 9, 1000, 4);
    assert_false(a.exact);
    assert_memory_equal(a.boot, b.boot, sizeof(int) * 9000);
    assert_memory_equal(a.perm, b.perm, sizeof(int) * 9000);
    assert_true(memcmp(a.boot, c.boot, sizeof(int) * 9000) != 0);
    for (int r = 0; r < 1000; r++) {
        int seen[9] = {0};
        for (int i = 0; i < 9; i++) {
            assert_in_range(a.boot[r * 9 + i], 0, 8);
            seen[a.perm[r * 9 + i]]++;
        }
        for (int i = 0; i < 9; i++) assert_int_equal(seen[i], 1);
    }
    st_plan_free(&a); st_plan_free(&b); st_plan_free(&c);
    st_plan_init(&a, 6, 720, 0); // 6! = 720: exact
    assert_true(a.exact);
    assert_null(a.perm);
    st_plan_free(&a);
    st_plan_init(&a, 6, 719, 0);
    assert_false(a.exact);
    st_plan_free(&a);
}

// Perfectly ordered data: the exact permutation p is 2 / n! (only the identity reaches r = 1;
// two-sided doubles it), the sampled one 2 / (B + 1) (+1 correction), and every bootstrap
// resample with variance has r = 1, so both intervals are [1, 1] (to 1e-12: rounding in r).
static void test_perfect(void **state) {
    (void)state;
    double x[20], y[20];
    for (int i = 0; i < 20; i++) x[i] = i, y[i] = 3 * i + 1;
    st_plan p;
    st_resampled r;
    st_plan_init(&p, 5, 10000, 0);
    st_corr_resample(x, y, 5, ST_PEARSON, &p, 0.95, &r);
    assert_true(fabs(r.p_perm - 2.0 / 120) < 1e-15);
    st_corr_resample(x, y, 5, ST_SPEARMAN, &p, 0.95, &r);
    assert_true(fabs(r.p_perm - 2.0 / 120) < 1e-15);
    st_plan_free(&p);
    st_plan_init(&p, 20, 10000, 0);
    for (int k = 0; k < 2; k++) {
        st_corr_resample(x, y, 20, k ? ST_SPEARMAN : ST_PEARSON, &p, 0.95, &r);
        assert_true(fabs(r.p_perm - 2.0 / 10001) < 1e-15);
        assert_true(fabs(r.pct_lo - 1) < 1e-12 && fabs(r.pct_hi - 1) < 1e-12);
        assert_true(fabs(r.stat - 1) < 1e-12);
    }
    st_plan_free(&p);
}

// No variance: the statistic and everything resampled are NaN, never a number.
static void test_degenerate(void **state) {
    (void)state;
    double x[6] = {1, 2, 3, 4, 5, 6}, y[6] = {2, 2, 2, 2, 2, 2};
    st_plan p;
    st_resampled r;
    st_plan_init(&p, 6, 2000, 0);
    st_corr_resample(x, y, 6, ST_PEARSON, &p, 0.95, &r);
    assert_true(isnan(r.stat) && isnan(r.pct_lo) && isnan(r.bca_hi) && isnan(r.p_perm));
    st_plan_free(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_perfect),
        cmocka_unit_test(test_degenerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
