// blas: the choice of OpenBLAS kernels (pure logic; the re-execution is tests/cli.sh's).
#include "testutil.h"

#include <string.h>

#include "ibc/blas.h"

// A core with vector kernels is kept whatever the CPU; a generic one is replaced by the best
// the CPU supports; nothing to gain: kept.
static void test_better_core(void **s) {
    (void)s;
    assert_null(blas_better_core("Haswell", 1, 1));
    assert_null(blas_better_core("SKYLAKEX", 1, 1)); // names compare without case
    assert_null(blas_better_core("Zen", 0, 1));
    assert_string_equal(blas_better_core("Prescott", 1, 1), "SkylakeX");
    assert_string_equal(blas_better_core("Prescott", 0, 1), "Haswell");
    assert_string_equal(blas_better_core("Sandybridge", 0, 1), "Haswell"); // AVX without FMA kernels
    assert_string_equal(blas_better_core(NULL, 0, 1), "Haswell");
    assert_null(blas_better_core("Prescott", 0, 0)); // an old CPU: its own choice is right
}

// "OpenBLAS <version> <core>[ (set by ibc: ...)]".
static void test_describe(void **s) {
    (void)s;
    char buf[256];
    blas_describe(buf, sizeof buf);
    assert_int_equal(strncmp(buf, "OpenBLAS ", 9), 0);
    assert_true(strlen(buf) > 12);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_better_core),
        cmocka_unit_test(test_describe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
