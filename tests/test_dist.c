// dist start-up's pure parts: how many threads a rank runs and which block of a node's cores
// it takes when ibc replaces Open MPI's default binding (dist.h "Start-up"). Exact integers.
#include "testutil.h"

#include "ibc/dist.h"

static void threads_from_the_mask(void **state) {
    (void)state;
    int capped;
    // OMP_NUM_THREADS unset: the mask's cores shared fairly by the ranks that share them.
    assert_int_equal(dist_plan_threads(2, 1, 0, 0, 0, &capped), 2);
    assert_int_equal(capped, 0);
    assert_int_equal(dist_plan_threads(1, 1, 0, 0, 0, &capped), 1);
    assert_int_equal(dist_plan_threads(8, 2, 0, 0, 0, &capped), 4);
    assert_int_equal(dist_plan_threads(5, 2, 0, 0, 0, &capped), 3); // the remainder to the first
    assert_int_equal(dist_plan_threads(5, 2, 1, 0, 0, &capped), 2);
    assert_int_equal(dist_plan_threads(2, 3, 2, 0, 0, &capped), 1); // oversubscribed: at least 1
    assert_int_equal(dist_plan_threads(0, 0, 0, 0, 0, &capped), 1); // no mask read: 1
}

static void omp_num_threads_capped_to_the_mask(void **state) {
    (void)state;
    int capped;
    assert_int_equal(dist_plan_threads(4, 1, 0, 2, 0, &capped), 2); // fewer than cores: as asked
    assert_int_equal(capped, 0);
    assert_int_equal(dist_plan_threads(1, 1, 0, 2, 0, &capped), 1); // a lone rank on one core
    assert_int_equal(capped, 1);
    assert_int_equal(dist_plan_threads(1, 1, 0, 2, 1, &capped), 2); // IBC_FORCE_THREADS=1
    assert_int_equal(capped, 0);
}

static void even_blocks_cover_the_node(void **state) {
    (void)state;
    int lo, hi;
    dist_split_block(2, 1, 0, &lo, &hi); // mpirun -np 1 on 2 cores: both
    assert_int_equal(lo, 0);
    assert_int_equal(hi, 2);
    for (int n = 1; n <= 17; n++)
        for (int parts = 1; parts <= n; parts++) {
            int next = 0;
            for (int i = 0; i < parts; i++) {
                dist_split_block(n, parts, i, &lo, &hi);
                assert_int_equal(lo, next); // contiguous, disjoint, in order
                assert_true(hi - lo == n / parts || hi - lo == n / parts + 1); // even
                next = hi;
            }
            assert_int_equal(next, n); // every core given
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(threads_from_the_mask),
        cmocka_unit_test(omp_num_threads_capped_to_the_mask),
        cmocka_unit_test(even_blocks_cover_the_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
