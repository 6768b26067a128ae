// The forward pass against Hugging Face transformers v4.47.1 (../shared/fixtures/hf-tiny and
// real/stories260K). Tolerance, per tensor: max|ibc - golden| <= 1e-4 * max(1, max|golden|).
// The fixtures README measures an independent float64 implementation at <= 1.6e-6 of scale;
// f32 sgemm summation order differs from PyTorch's, so 1e-4 leaves a 10x margin for f32
// rounding, while any convention error (RoPE pairing, window, norm) is >= 1e-2.
#include "testutil.h"

#include <jansson.h>

#include "ibc/model.h"
#include "ibc/npy.h"

typedef struct {
    float *h; // [L+1, T, d]
    int layers_seen;
} capture;

static int cap_cb(void *ctx, int l, const float *h, int T, int d) {
    capture *c = ctx;
    memcpy(c->h + (size_t)l * T * d, h, sizeof(float) * (size_t)T * d);
    c->layers_seen++;
    return 0;
}

static void check_close(const char *what, const float *got, const float *want, size_t n) {
    float scale = fmaxf(1.0f, max_abs(want, n)), diff = max_diff(got, want, n);
    if (!(diff <= 1e-4f * scale)) fail_msg("%s: max diff %g > 1e-4 * %g", what, diff, scale);
}

static void golden_model(const char *name) {
    char dir[1024], path[1200];
    char rel[256];
    snprintf(rel, sizeof rel, "hf-tiny/%s", name);
    FX_PATH(dir, rel);
    model m;
    ibc_err e = {0};
    if (model_load(dir, &m, &e)) fail_msg("%s", e.msg);
    int L = m.c.n_layers, d = m.c.d, V = m.c.vocab, T = 32;
    snprintf(path, sizeof path, "%s/input_ids.bin", dir);
    int32_t *ids = read_file(path, NULL); // [2, 32]
    snprintf(path, sizeof path, "%s/logits.bin", dir);
    float *glog = read_file(path, NULL); // [2, 32, V]
    float **gh = calloc((size_t)L + 1, sizeof(float *));
    for (int l = 0; l <= L; l++) {
        snprintf(path, sizeof path, "%s/hidden_state_%02d.bin", dir, l);
        gh[l] = read_file(path, NULL); // [2, 32, d]
    }
    capture cap = {malloc(sizeof(float) * (size_t)(L + 1) * T * d), 0};
    float *logits = malloc(sizeof(float) * (size_t)T * V);
    float worst = 0;
    for (int b = 0; b < 2; b++) {
        cap.layers_seen = 0;
        if (model_forward(&m, ids + b * T, T, cap_cb, &cap, logits, &e)) fail_msg("%s", e.msg);
        assert_int_equal(cap.layers_seen, L + 1);
        for (int l = 0; l <= L; l++) {
            char what[128];
            snprintf(what, sizeof what, "%s row %d hidden %d", name, b, l);
            const float *want = gh[l] + (size_t)b * T * d;
            check_close(what, cap.h + (size_t)l * T * d, want, (size_t)T * d);
            worst = fmaxf(worst, max_diff(cap.h + (size_t)l * T * d, want, (size_t)T * d) /
                                     fmaxf(1.0f, max_abs(want, (size_t)T * d)));
        }
        char what[128];
        snprintf(what, sizeof what, "%s row %d logits", name, b);
        check_close(what, logits, glog + (size_t)b * T * V, (size_t)T * V);
    }
    print_message("  %-14s worst hidden-state error %.2e of scale\n", name, worst);
    if (m.c.rot_dim) { // HF's exact inv_freq, llama3 scaling included: f32 rounding only
        snprintf(path, sizeof path, "%s/rope_inv_freq.bin", dir);
        float *inv = read_file(path, NULL);
        for (int i = 0; i < m.c.rot_dim / 2; i++)
            if (fabsf(inv[i] - m.inv_freq[i]) > 1e-6f * inv[i]) fail_msg("%s inv_freq[%d] %g != %g", name, i, m.inv_freq[i], inv[i]);
        free(inv);
    }
    for (int l = 0; l <= L; l++) free(gh[l]);
    free(gh); free(cap.h); free(logits); free(glog); free(ids);
    model_free(&m);
}

#define GOLDEN(n) static void test_##n(void **s) { (void)s; golden_model(#n); }
GOLDEN(gpt2) GOLDEN(gpt_neox) GOLDEN(gpt_neox_bf16) GOLDEN(llama) GOLDEN(llama_bf16) GOLDEN(llama3)
GOLDEN(qwen2) GOLDEN(mistral) GOLDEN(mistral_swa) GOLDEN(gemma) GOLDEN(olmo2)

// The ids of document `doc` of the soft_h corpus.
static int32_t *doc_ids(const char *jsonl, int doc, int *T) {
    FILE *f = fopen(jsonl, "r");
    if (!f) fail_msg("cannot open %s", jsonl);
    char *line = NULL;
    size_t cap = 0;
    int32_t *ids = NULL;
    for (int i = 0; getline(&line, &cap, f) > 0; i++) {
        if (i != doc) continue;
        json_t *j = json_loads(line, 0, NULL), *a = json_object_get(j, "ids");
        *T = (int)json_array_size(a);
        ids = malloc(sizeof(int32_t) * (size_t)*T);
        for (int t = 0; t < *T; t++) ids[t] = (int32_t)json_integer_value(json_array_get(a, (size_t)t));
        json_decref(j);
        break;
    }
    free(line);
    fclose(f);
    return ids;
}

static void test_stories260K_hidden(void **s) {
    (void)s;
    char dir[1024], jsonl[1024], path[1200];
    FX_PATH(dir, "real/stories260K");
    FX_PATH(jsonl, "softh/fortunes300_stories260K.jsonl");
    model m;
    ibc_err e = {0};
    if (model_load(dir, &m, &e)) fail_msg("%s", e.msg);
    for (int doc = 0; doc < 3; doc++) {
        int T = 0;
        int32_t *ids = doc_ids(jsonl, doc, &T);
        snprintf(path, sizeof path, "%s/golden/stories260K_doc%d_hidden_states.npy", dir, doc);
        npy_array g;
        if (npy_read(path, &g, &e)) fail_msg("%s", e.msg);
        assert_int_equal(g.ndim, 3);
        assert_int_equal(g.shape[0], m.c.n_layers + 1);
        assert_int_equal(g.shape[1], T);
        capture cap = {malloc(sizeof(float) * (size_t)g.numel), 0};
        if (model_forward(&m, ids, T, cap_cb, &cap, NULL, &e)) fail_msg("%s", e.msg);
        for (int l = 0; l <= m.c.n_layers; l++) {
            char what[64];
            snprintf(what, sizeof what, "doc %d hidden %d", doc, l);
            size_t n = (size_t)T * m.c.d;
            check_close(what, cap.h + l * n, g.data + l * n, n);
        }
        free(cap.h);
        npy_free(&g);
        free(ids);
    }
    model_free(&m);
}

// 200 greedy steps from BOS, full recompute each step: exactly the ids HF produced.
static void test_stories260K_greedy(void **s) {
    (void)s;
    char dir[1024], path[1200];
    FX_PATH(dir, "real/stories260K");
    snprintf(path, sizeof path, "%s/golden/greedy.json", dir);
    json_t *g = json_load_file(path, 0, NULL), *want = json_object_get(g, "greedy_ids");
    assert_non_null(want);
    model m;
    ibc_err e = {0};
    if (model_load(dir, &m, &e)) fail_msg("%s", e.msg);
    int n = (int)json_array_size(want), V = m.c.vocab;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
    float *logits = malloc(sizeof(float) * (size_t)n * V);
    ids[0] = 1; // BOS
    for (int T = 1; T < n; T++) {
        if (model_forward(&m, ids, T, NULL, NULL, logits, &e)) fail_msg("%s", e.msg);
        const float *last = logits + (size_t)(T - 1) * V;
        int best = 0;
        for (int v = 1; v < V; v++) if (last[v] > last[best]) best = v;
        ids[T] = best;
    }
    for (int t = 0; t < n; t++) assert_int_equal(ids[t], json_integer_value(json_array_get(want, (size_t)t)));
    free(ids); free(logits);
    json_decref(g);
    model_free(&m);
}

// Ids outside the vocabulary are bad input, not a crash.
static void test_bad_ids(void **s) {
    (void)s;
    char dir[1024];
    FX_PATH(dir, "hf-tiny/gpt2");
    model m;
    ibc_err e = {0};
    if (model_load(dir, &m, &e)) fail_msg("%s", e.msg);
    int32_t ids[3] = {1, 512, 2};
    assert_int_equal(model_forward(&m, ids, 3, NULL, NULL, NULL, &e), IBC_EINPUT);
    assert_non_null(strstr(e.msg, "512"));
    int32_t *many = calloc(200, sizeof(int32_t)); // GPT-2 has 128 learned positions here
    assert_int_equal(model_forward(&m, many, 200, NULL, NULL, NULL, &e), IBC_EINPUT);
    free(many);
    model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2), cmocka_unit_test(test_gpt_neox), cmocka_unit_test(test_gpt_neox_bf16),
        cmocka_unit_test(test_llama), cmocka_unit_test(test_llama_bf16), cmocka_unit_test(test_llama3),
        cmocka_unit_test(test_qwen2), cmocka_unit_test(test_mistral), cmocka_unit_test(test_mistral_swa),
        cmocka_unit_test(test_gemma), cmocka_unit_test(test_olmo2),
        cmocka_unit_test(test_stories260K_hidden), cmocka_unit_test(test_stories260K_greedy),
        cmocka_unit_test(test_bad_ids),
    };
    return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
