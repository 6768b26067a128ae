// kernels: the forward pass's attention, ibc's own products against OpenBLAS's and against a
// double-precision reference, at shapes that reach every tile edge (the model goldens check
// the whole forward pass against transformers; these reach head sizes and lengths they lack).
#include "testutil.h"

#include <omp.h>

#include "ibc/kernels.h"

typedef struct {
    int T, H, KV, D, window;
} shape;

// out[T, H D] by the definition in double: softmax over visible keys of q.k / sqrt(D), times v.
static void reference(double *out, const float *qkv, const shape *s) {
    int ld = (s->H + 2 * s->KV) * s->D, G = s->H / s->KV;
    double *p = malloc(sizeof(double) * (size_t)s->T);
    for (int h = 0; h < s->H; h++)
        for (int i = 0; i < s->T; i++) {
            const float *q = qkv + (size_t)i * ld + (size_t)h * s->D;
            int lo = s->window && i - s->window + 1 > 0 ? i - s->window + 1 : 0;
            double mx = -INFINITY, sum = 0;
            for (int j = lo; j <= i; j++) {
                const float *k = qkv + (size_t)j * ld + (size_t)(s->H + h / G) * s->D;
                double dot = 0;
                for (int d = 0; d < s->D; d++) dot += (double)q[d] * k[d];
                p[j] = dot / sqrt((double)s->D);
                mx = fmax(mx, p[j]);
            }
            for (int j = lo; j <= i; j++) sum += p[j] = exp(p[j] - mx);
            for (int d = 0; d < s->D; d++) {
                double o = 0;
                for (int j = lo; j <= i; j++) o += p[j] * qkv[(size_t)j * ld + (size_t)(s->H + s->KV + h / G) * s->D + d];
                out[(size_t)i * s->H * s->D + (size_t)h * s->D + d] = o / sum;
            }
        }
    free(p);
}

// kern_attention_forward without P on `threads` threads, the own products or OpenBLAS's.
static float *forward(const float *qkv, const shape *s, int blas, int threads) {
    int ld = (s->H + 2 * s->KV) * s->D;
    kern_att_shape as = {s->T, s->H, s->KV, s->D, s->window};
    float *out = malloc(sizeof(float) * (size_t)s->T * s->H * s->D);
    float *scratch = malloc(sizeof(float) * (size_t)threads * kern_attention_scratch(&as));
    kern_attention_use_blas(blas);
    omp_set_num_threads(threads);
    kern_attention_forward(out, s->H * s->D, qkv, ld, qkv + (size_t)s->H * s->D, ld, qkv + (size_t)(s->H + s->KV) * s->D,
                           ld, &as, NULL, scratch);
    kern_attention_use_blas(0);
    free(scratch);
    return out;
}

// Lengths around the 64-row blocks, the 8-row tiles and the 32-key score tiles; head sizes of
// one, two and four 16-column chunks and 64 + 16 (one of each output chunk); GQA and MHA; a
// sliding window that starts keys mid-block.
static void test_attention_own(void **st) {
    (void)st;
    const shape shapes[] = {{1, 2, 1, 16, 0},  {7, 3, 1, 32, 0},   {33, 4, 2, 64, 0}, {100, 2, 2, 80, 0},
                            {129, 6, 2, 64, 0}, {300, 2, 1, 128, 0}, {200, 4, 4, 48, 37}, {512, 9, 3, 64, 0}};
    int own = kern_attention_own(64);
    if (!own) print_message("NOTE: this CPU has no AVX-512: both runs below are OpenBLAS's products\n");
    for (size_t c = 0; c < sizeof shapes / sizeof *shapes; c++) {
        const shape *s = &shapes[c];
        size_t n = (size_t)s->T * (s->H + 2 * s->KV) * s->D, no = (size_t)s->T * s->H * s->D;
        float *qkv = malloc(sizeof(float) * n);
        uint64_t x = 88172645463325252ull + c;
        for (size_t i = 0; i < n; i++) { // xorshift: values in [-1.5, 1.5], scores up to a few units
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            qkv[i] = (float)((double)(x >> 11) / 9007199254740992.0 * 3.0 - 1.5);
        }
        double *ref = malloc(sizeof(double) * no);
        reference(ref, qkv, s);
        float *mine = forward(qkv, s, 0, 1), *two = forward(qkv, s, 0, 2), *blas = forward(qkv, s, 1, 1);
        double em = 0, eb = 0;
        for (size_t i = 0; i < no; i++) {
            em = fmax(em, fabs(mine[i] - ref[i]));
            eb = fmax(eb, fabs(blas[i] - ref[i]));
        }
        // f32 against double: a score sums D products (|q k| <= 2.25), an output is a weighted
        // mean of values <= 1.5 over up to T keys. Both paths round to within 5e-7 here; 2e-6
        // leaves 4x room and still catches a wrong key, mask or scale (errors of 1e-2 or more).
        if (getenv("IBC_TEST_VERBOSE"))
            print_message("T %d H %d KV %d D %d window %d: own max diff %.3g, OpenBLAS %.3g\n", s->T, s->H, s->KV, s->D,
                          s->window, em, eb);
        assert_true(em < 2e-6);
        assert_true(eb < 2e-6);
        assert_memory_equal(mine, two, sizeof(float) * no); // threads take other blocks: the same bits
        free(qkv), free(ref), free(mine), free(two), free(blas);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_own),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
