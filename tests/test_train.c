// The trainer: analytic gradients against central finite differences, checkpoints that ibc's
// HF loader reads back to the same loss, and a loss that falls.
#include "testutil.h"

#include "ibc/model.h"
#include "ibc/rng.h"
#include "ibc/train.h"

static model_config tiny(void) {
    model_config c = {.arch = ARCH_LLAMA, .d = 8, .n_layers = 2, .n_heads = 2, .n_kv_heads = 1, .head_dim = 4,
                      .d_ff = 12, .vocab = 20, .norm_eps = 1e-5f, .rope_theta = 10000, .rot_dim = 4, .tied = 1,
                      .gated_mlp = 1, .norm = NORM_RMS, .act = ACT_SILU, .max_pos = 64};
    return c;
}

// Tolerance: f32 forward, central differences with h = 1e-2 on a loss of order 3: rounding is
// ~1e-5 and the O(h^2) truncation ~1e-4, so |analytic - numeric| <= 3e-4 + 3e-2 |numeric|;
// a wrong formula (a missing term, a transposed product) is off by 100% or more.
// Gradients of a sequence of T ids, `per` random entries of every tensor.
static void gradcheck(int T, int per) {
    model_config c = tiny();
    trainer t;
    ibc_err e = {0};
    assert_int_equal(tr_init(&t, &c, T, 3, &e), 0);
    for (int64_t i = 0; i < t.n; i++) t.p[i] *= 20.0f; // O(1) activations: every path matters
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)T);
    int32_t first[7] = {3, 17, 5, 5, 0, 19, 8};
    for (int i = 0; i < T; i++) ids[i] = i < 7 ? first[i] : (int32_t)((i * 7 + i / 3) % c.vocab);
    tr_zero_grad(&t);
    tr_step_seq(&t, ids, T, 1, 1.0f);
    float *g = malloc(sizeof(float) * (size_t)t.n);
    memcpy(g, t.g, sizeof(float) * (size_t)t.n);
    rng r;
    rng_seed(&r, 9);
    int checked = 0, bad = 0;
    int64_t off = 0;
    for (int te = 0; te < t.ne; te++) { // a few entries of every tensor
        for (int k = 0; k < per; k++) {
            int64_t i = off + (int64_t)rng_below(&r, (uint64_t)t.e[te].numel);
            float keep = t.p[i], h = 1e-2f;
            t.p[i] = keep + h;
            double lp = tr_step_seq(&t, ids, T, 0, 1.0f);
            t.p[i] = keep - h;
            double lm = tr_step_seq(&t, ids, T, 0, 1.0f);
            t.p[i] = keep;
            double num = (lp - lm) / (2 * h);
            if (fabs(num - g[i]) > 3e-4 + 3e-2 * fabs(num)) {
                if (bad++ < 8) print_message("  %s[%lld]: analytic %g numeric %g\n", t.e[te].name, (long long)(i - off), g[i], num);
            }
            checked++;
        }
        off += t.e[te].numel;
    }
    print_message("  T = %d: %d gradient entries checked over %d tensors\n", T, checked, t.ne);
    assert_int_equal(bad, 0);
    free(g);
    free(ids);
    tr_free(&t);
}

static void test_gradcheck(void **s) { (void)s; gradcheck(7, 4); }

// Past one attention block (KERN_ATT_BLOCK = 64 query rows): the blocked backward pass.
static void test_gradcheck_long(void **s) { (void)s; gradcheck(2 * 128 + 9, 2); }

// Saved as an HF folder, the model reads back through model.c to the same loss.
static void test_save_load(void **s) {
    (void)s;
    model_config c = tiny();
    trainer t;
    ibc_err e = {0};
    assert_int_equal(tr_init(&t, &c, 64, 4, &e), 0);
    for (int64_t i = 0; i < t.n; i++) t.p[i] *= 20.0f;
    int32_t ids[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    double loss = tr_step_seq(&t, ids, 9, 0, 1.0f);
    char dir[256];
    tmp_dir(dir, sizeof dir, "train");
    assert_int_equal(tr_save(&t, dir, &e), 0);
    model m;
    if (model_load(dir, &m, &e)) fail_msg("%s", e.msg);
    float logits[9 * 20];
    assert_int_equal(model_forward(&m, ids, 9, NULL, NULL, logits, &e), 0);
    double l2 = 0;
    for (int p = 0; p < 8; p++) {
        double mx = logits[p * 20], sum = 0;
        for (int v = 0; v < 20; v++) mx = fmax(mx, logits[p * 20 + v]);
        for (int v = 0; v < 20; v++) sum += exp(logits[p * 20 + v] - mx);
        l2 -= logits[p * 20 + ids[p + 1]] - mx - log(sum);
    }
    l2 /= 8;
    print_message("  trainer loss %.7f, model.c loss %.7f\n", loss, l2);
    assert_true(fabs(loss - l2) <= 1e-5 * fmax(1, fabs(l2)));
    model_free(&m);
    tr_free(&t);
}

// AdamW on a periodic sequence: the loss falls by more than half in 60 steps.
static void test_loss_falls(void **s) {
    (void)s;
    model_config c = tiny();
    trainer t;
    ibc_err e = {0};
    assert_int_equal(tr_init(&t, &c, 64, 5, &e), 0);
    int32_t ids[24];
    for (int i = 0; i < 24; i++) ids[i] = (i * 7) % 11;
    double first = 0, last = 0;
    for (int step = 1; step <= 60; step++) {
        tr_zero_grad(&t);
        double l = tr_step_seq(&t, ids, 24, 1, 1.0f);
        if (step == 1) first = l;
        last = l;
        tr_adamw(&t, 1e-2f, 0.9f, 0.99f, 1e-8f, 0.0f, step);
    }
    print_message("  loss %.3f -> %.3f\n", first, last);
    assert_true(last < 0.5 * first);
    tr_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_gradcheck_long),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_loss_falls),
    };
    return cmocka_run_group_tests_name("train", tests, NULL, NULL);
}
