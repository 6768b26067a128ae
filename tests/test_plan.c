// plan: the deal of units to ranks round by round (plan_deal). Its contract, checked on
// hand-made cases and on random ones: every unit dealt once, in order, consecutive per rank,
// never more than a rank's cap, always progress; and shares that follow the rates. And the
// rates it reads (plan_rates): decayed over rounds, a band around the fastest, idle ranks
// lifted. (The label
// counts of `ibc plan` are checked against measured runs in tests/plan.sh.)
#include "testutil.h"

#include "ibc/plan.h"

// tok [n + 1] from unit lengths len [n].
static void prefix(const int64_t *len, int64_t n, int64_t *tok) {
    tok[0] = 0;
    for (int64_t k = 0; k < n; k++) tok[k + 1] = tok[k] + len[k];
}

// Equal rates and room for everything: one round, the tokens split evenly.
static void test_even(void **state) {
    (void)state;
    int64_t len[8] = {10, 10, 10, 10, 10, 10, 10, 10}, tok[9], take[3];
    int cap[2] = {8, 8};
    double rate[2] = {1, 1};
    prefix(len, 8, tok);
    assert_int_equal(plan_deal(tok, 8, 0, 2, cap, rate, take), 8);
    assert_int_equal(take[0], 0);
    assert_int_equal(take[1], 4);
    assert_int_equal(take[2], 8);
}

// The cap bounds a round; a rank four times slower gets a quarter of the fast one's tokens.
static void test_rates(void **state) {
    (void)state;
    int64_t len[40], tok[41], take[3];
    for (int k = 0; k < 40; k++) len[k] = 100;
    prefix(len, 40, tok);
    int cap[2] = {4, 4};
    double rate[2] = {4, 1};
    int64_t g = plan_deal(tok, 40, 0, 2, cap, rate, take);
    assert_int_equal(take[1] - take[0], 4); // the fast rank fills its cap
    assert_int_equal(take[2] - take[1], 1); // the slow one: a quarter of that
    assert_int_equal(g, 5);
    double flip[2] = {1, 4};
    plan_deal(tok, 40, g, 2, cap, flip, take);
    assert_int_equal(take[0], 5);
    assert_int_equal(take[1] - take[0], 1);
    assert_int_equal(take[2] - take[1], 4);
}

// One short unit left and three ranks: someone takes it (no endless empty rounds).
static void test_progress(void **state) {
    (void)state;
    int64_t len[3] = {50, 40, 1}, tok[4], take[4];
    int cap[3] = {1, 1, 1};
    double rate[3] = {1, 3, 2};
    prefix(len, 3, tok);
    assert_int_equal(plan_deal(tok, 3, 2, 3, cap, rate, take), 3);
    assert_int_equal(take[0], 2);
    assert_int_equal(take[3], 3);
    int64_t zero[4] = {0, 0, 0, 0}; // units of skipped documents only: no tokens
    assert_int_equal(plan_deal(zero, 3, 0, 3, cap, rate, take), 3);
}

// Random lengths (longest first, as plan_order gives them), caps and rates changing every
// round: the rounds cover every unit once, in order, within the caps, each round past the last.
static void test_random(void **state) {
    (void)state;
    srand(11);
    for (int trial = 0; trial < 300; trial++) {
        int64_t n = 1 + rand() % 60, len[60], tok[61], take[9], g = 0;
        int P = 1 + rand() % 8, cap[8], rounds = 0;
        double rate[8];
        for (int64_t k = 0; k < n; k++) len[k] = rand() % 4 ? 1 + rand() % 500 : 0;
        for (int64_t a = 0; a < n; a++) // longest first
            for (int64_t b = a + 1; b < n; b++)
                if (len[b] > len[a]) { int64_t t = len[a]; len[a] = len[b]; len[b] = t; }
        prefix(len, n, tok);
        while (g < n) {
            for (int p = 0; p < P; p++) cap[p] = 1 + rand() % 5, rate[p] = 0.05 + (double)(rand() % 1000) / 100;
            int64_t next = plan_deal(tok, n, g, P, cap, rate, take);
            assert_true(next > g && next <= n);
            assert_int_equal(take[0], g);
            assert_int_equal(take[P], next);
            for (int p = 0; p < P; p++) {
                assert_true(take[p + 1] >= take[p]);
                assert_true(take[p + 1] - take[p] <= cap[p]);
            }
            g = next;
            assert_true(++rounds <= n);
        }
    }
}

// The first round probes (one unit per thread) only with ranks, and only when the units need
// more than one full round: a corpus that fits in one is dealt as one round.
static void test_first_cap(void **state) {
    (void)state;
    int cap[3] = {4, 8, 4}, threads[3] = {1, 2, 1};
    assert_ptr_equal(plan_first_cap(17, 3, cap, threads), threads); // 17 > 16: a probe
    assert_ptr_equal(plan_first_cap(16, 3, cap, threads), cap);     // one full round
    assert_ptr_equal(plan_first_cap(4, 3, cap, threads), cap);
    assert_ptr_equal(plan_first_cap(100, 1, cap, threads), cap);    // one rank: nothing to measure for
}

// Rates: unknown (all 1) until a round is measured; within the band, dealt as the fastest;
// a slower rank keeps its own; a round's weight decays by PLAN_RATE_DECAY; a rank dealt
// nothing moves halfway up (here into the band), one never measured is the fastest.
static void test_rates_update(void **state) {
    (void)state;
    int64_t tok[7] = {0, 1000, 2000, 3000, 4000, 5000, 6000};
    plan_rates r;
    plan_rates_init(&r, 2);
    assert_true(r.rate[0] == 1.0 && r.rate[1] == 1.0);
    int64_t t1[3] = {0, 1, 2}, b1[2] = {1000000000, 1100000000}; // 1000 and 909 tokens/s
    plan_rates_update(&r, tok, t1, b1);
    assert_true(r.rate[0] == 1000.0 && r.rate[1] == 1000.0);
    int64_t t2[3] = {2, 3, 4}, b2[2] = {1000000000, 2000000000}; // rank 1 at 500 this round
    plan_rates_update(&r, tok, t2, b2);
    double s1 = 1000 * PLAN_RATE_DECAY + 1000, d1 = 1.1 * PLAN_RATE_DECAY + 2.0; // decayed sums
    assert_true(fabs(r.rate[1] - s1 / d1) < 1e-9);
    assert_true(r.rate[1] < (1 - PLAN_RATE_BAND) * r.rate[0]);
    int64_t t3[3] = {4, 5, 5}, b3[2] = {1000000000, 0}; // rank 1 dealt nothing
    double before = r.rate[1];
    plan_rates_update(&r, tok, t3, b3);
    assert_true(r.rate[1] > before);
    assert_true(r.rate[1] == r.rate[0]); // halfway up lands inside the band here
    plan_rates_free(&r);

    plan_rates_init(&r, 3);
    int64_t t4[4] = {0, 1, 2, 2}, b4[3] = {1000000000, 1000000000, 0}; // rank 2 never ran
    plan_rates_update(&r, tok, t4, b4);
    assert_true(r.rate[2] == r.rate[0]);
    plan_rates_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_even),
        cmocka_unit_test(test_rates),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_rates_update),
        cmocka_unit_test(test_first_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
