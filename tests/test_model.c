// The forward pass against Hugging Face transformers v4.47.1 (../shared/fixtures/hf-tiny and
// real/stories260K). Tolerance, per tensor: max|ibc - golden| <= 1e-4 * max(1, max|golden|).
// The fixtures README measures an independent float64 implementation at <= 1.6e-6 of scale;
// f32 sgemm summation order differs from PyTorch's, so 1e-4 leaves a 10x margin for f32
// rounding, while any convention error (RoPE pairing, window, norm) is >= 1e-2.
#include "testutil.h"

#include <cblas.h>
#include <jansson.h>
#include <omp.h>

#include "ibc/ckpt.h"
#include "ibc/model.h"
#include "ibc/npy.h"
#include "ibc/safetensors.h"

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

// ---------------------------------------------------------------------------------------------
// model_forward_docs: the batched, layer-major entry. Its contract is exact, so these tests
// compare with memcmp (tolerance 0): a document's hidden states may not depend on the batch,
// its order, or the thread count, and equal model_forward's on one thread.

// Fixture REL (under the fixtures folder) loaded into m; the test is skipped, with a line,
// when the folder is absent.
static void load_fx(model *m, const char *rel) {
    char dir[1024];
    FX_PATH(dir, rel);
    ibc_err e = {0};
    if (model_load(dir, m, &e)) fail_msg("%s", e.msg);
}

static void set_threads(int n) {
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

// All hidden states of docs[i] at out[i] + l * T_i * d; calls for different docs may come from
// different threads (each writes its own buffer).
typedef struct {
    float **out;
    int *seen;   // [n] callbacks per doc
    int stop_doc, stop_at; // doc stop_doc's callback returns 1 at l == stop_at (-1: never)
    int out_of_order;      // set when a doc's layers do not come as 0, 1, 2, ...
} batch_cap;

static int batch_cb(void *ctx, int doc, int l, const float *h, int T, int d) {
    batch_cap *c = ctx;
    if (l != c->seen[doc]) c->out_of_order = 1;
    memcpy(c->out[doc] + (size_t)l * T * d, h, sizeof(float) * (size_t)T * d);
    c->seen[doc]++;
    return doc == c->stop_doc && l == c->stop_at;
}

// Hidden states of docs[0..n) through model_forward_docs on `threads` threads: out[i] is
// [L+1, T_i, d], malloc'd. The idle time it reports lies between 0 and the threads' whole time;
// one thread is never idle, up to the clock's resolution and the untimed bookkeeping between
// its steps (< 1 ms). A thread preempted between two steps shows that gap as idle (4 ms was
// seen under ASan with both cores loaded), so one thread's check takes the least idle of up
// to three runs: a real miscount shows in every run.
static float **run_batch(const model *m, const model_doc *docs, int n, int threads, int *seen) {
    float **out = calloc((size_t)n, sizeof(float *));
    for (int i = 0; i < n; i++) out[i] = calloc((size_t)(m->c.n_layers + 1) * docs[i].T * m->c.d, sizeof(float));
    batch_cap c = {out, seen, -1, -1, 0};
    ibc_err e = {0};
    set_threads(threads);
    double idle = 0, t0 = omp_get_wtime();
    if (model_forward_docs(m, docs, n, m->c.n_layers, batch_cb, &c, &idle, &e)) fail_msg("%s", e.msg);
    double wall = omp_get_wtime() - t0;
    if (!(idle >= -1e-6 && idle <= wall * threads)) fail_msg("idle %.6f s on %d threads, wall %.6f s", idle, threads, wall);
    int *again = calloc((size_t)n, sizeof(int));
    for (int k = 0; threads == 1 && idle > 1e-3 && k < 2; k++) { // the same batch again: its least idle
        batch_cap c2 = {out, again, -1, -1, 0};
        double i2 = 0;
        memset(again, 0, sizeof(int) * (size_t)n);
        if (model_forward_docs(m, docs, n, m->c.n_layers, batch_cb, &c2, &i2, &e)) fail_msg("%s", e.msg);
        idle = i2 < idle ? i2 : idle;
    }
    free(again);
    set_threads(2);
    if (threads == 1 && idle > 1e-3) fail_msg("idle %.6f s on one thread in each of three runs", idle);
    if (c.out_of_order) fail_msg("a document's layers came out of order");
    return out;
}

// model_forward on one thread, every hidden state: [L+1, T, d].
static float *run_one(const model *m, const int32_t *ids, int T) {
    capture cap = {calloc((size_t)(m->c.n_layers + 1) * T * m->c.d, sizeof(float)), 0};
    ibc_err e = {0};
    set_threads(1);
    if (model_forward(m, ids, T, cap_cb, &cap, NULL, &e)) fail_msg("%s", e.msg);
    set_threads(2);
    return cap.h;
}

static void check_close(const char *what, const float *got, const float *want, size_t n) {
    float scale = fmaxf(1.0f, max_abs(want, n)), diff = max_diff(got, want, n);
    if (getenv("IBC_TEST_VERBOSE")) print_message("%s: max diff %g, tolerance 1e-4 * %g\n", what, diff, scale);
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
    // The same two rows as one batch through model_forward_docs (2 threads): bit for bit
    // model_forward's on one thread, hence within the goldens' tolerance too.
    model_doc docs[2] = {{ids, T, 0}, {ids + T, T, 0}};
    int seen[2] = {0, 0};
    float **bh = run_batch(&m, docs, 2, 2, seen);
    for (int b = 0; b < 2; b++) {
        float *one = run_one(&m, ids + b * T, T);
        if (memcmp(one, bh[b], sizeof(float) * (size_t)(L + 1) * T * d)) fail_msg("%s row %d: batch differs from model_forward", name, b);
        for (int l = 0; l <= L; l++) {
            char what[128];
            snprintf(what, sizeof what, "%s row %d hidden %d (batched)", name, b, l);
            check_close(what, bh[b] + (size_t)l * T * d, gh[l] + (size_t)b * T * d, (size_t)T * d);
        }
        free(one);
        free(bh[b]);
    }
    free(bh);
    // The two rows as one unit (stacked in every product; RoPE and attention per row):
    // within the goldens' tolerance, as Hugging Face runs them, a batch of two.
    model_doc unit2[2] = {{ids, T, 0}, {ids + T, T, 1}};
    seen[0] = seen[1] = 0;
    bh = run_batch(&m, unit2, 2, 1, seen);
    for (int b = 0; b < 2; b++) {
        for (int l = 0; l <= L; l++) {
            char what[128];
            snprintf(what, sizeof what, "%s row %d hidden %d (one unit)", name, b, l);
            check_close(what, bh[b] + (size_t)l * T * d, gh[l] + (size_t)b * T * d, (size_t)T * d);
        }
        free(bh[b]);
    }
    free(bh);
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
    model m;
    load_fx(&m, "hf-tiny/gpt2");
    ibc_err e = {0};
    int32_t ids[3] = {1, 512, 2};
    assert_int_equal(model_forward(&m, ids, 3, NULL, NULL, NULL, &e), IBC_EINPUT);
    assert_non_null(strstr(e.msg, "512"));
    int32_t *many = calloc(200, sizeof(int32_t)); // GPT-2 has 128 learned positions here
    assert_int_equal(model_forward(&m, many, 200, NULL, NULL, NULL, &e), IBC_EINPUT);
    free(many);
    model_free(&m);
}


// A document alone, and as the middle of a batch of 3 of other lengths, on 1 and 2 threads,
// equals model_forward on one thread bit for bit. Three families: llama (F32: weights used from
// the map), gpt_neox_bf16 (BF16, de-interleaved QKV: converted per layer) and mistral_swa
// (sliding window), T = 150 past one attention block; and the three as one unit.
static void batch_independent(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "hf-tiny/%s", name);
    model m;
    load_fx(&m, rel);
    int lens[3] = {37, 150, 5};
    if (!m.c.rot_dim && lens[1] > m.c.max_pos) lens[1] = m.c.max_pos; // GPT-2: learned positions
    int32_t *ids[3];
    for (int k = 0; k < 3; k++) {
        ids[k] = malloc(sizeof(int32_t) * (size_t)lens[k]);
        for (int t = 0; t < lens[k]; t++) ids[k][t] = (int32_t)((t * 7919 + 31 * k + 1) % m.c.vocab);
    }
    size_t n1 = (size_t)(m.c.n_layers + 1) * lens[1] * m.c.d;
    float *want = run_one(&m, ids[1], lens[1]);
    model_doc alone = {ids[1], lens[1], 0}, three[3] = {{ids[0], lens[0], 0}, {ids[1], lens[1], 0}, {ids[2], lens[2], 0}};
    for (int threads = 1; threads <= 2; threads++) {
        int seen1[1] = {0}, seen[3] = {0, 0, 0};
        float **a = run_batch(&m, &alone, 1, threads, seen1);
        float **b = run_batch(&m, three, 3, threads, seen);
        if (memcmp(a[0], want, sizeof(float) * n1)) fail_msg("%s: alone, %d threads, differs from model_forward", name, threads);
        if (memcmp(b[1], want, sizeof(float) * n1)) fail_msg("%s: in a batch of 3, %d threads, differs", name, threads);
        assert_int_equal(seen[0], m.c.n_layers + 1);
        assert_int_equal(seen[2], m.c.n_layers + 1);
        for (int k = 0; k < 3; k++) free(b[k]);
        free(a[0]); free(a); free(b);
    }
    // The three as one unit (stacked in every product): bitwise the same alone, after another
    // document, on 1 and 2 threads; each document within the goldens' tolerance of its own run.
    model_doc u3[3] = {{ids[0], lens[0], 0}, {ids[1], lens[1], 1}, {ids[2], lens[2], 1}};
    model_doc u4[4] = {{ids[2], lens[2], 0}, {ids[0], lens[0], 0}, {ids[1], lens[1], 1}, {ids[2], lens[2], 1}};
    int seen3[3] = {0}, seen4[4] = {0};
    float **ua = run_batch(&m, u3, 3, 1, seen3), **ub = run_batch(&m, u4, 4, 2, seen4);
    for (int k = 0; k < 3; k++) {
        size_t nk = (size_t)(m.c.n_layers + 1) * lens[k] * m.c.d;
        if (memcmp(ua[k], ub[k + 1], sizeof(float) * nk)) fail_msg("%s: unit document %d differs after another, 2 threads", name, k);
        float *own = run_one(&m, ids[k], lens[k]);
        char what[128];
        snprintf(what, sizeof what, "%s unit document %d against its own run", name, k);
        check_close(what, ua[k], own, nk);
        free(own);
        free(ua[k]);
    }
    for (int k = 0; k < 4; k++) free(ub[k]);
    free(ua); free(ub); free(want);
    for (int k = 0; k < 3; k++) free(ids[k]);
    model_free(&m);
}

// Units at different paces: threads take a unit at layer l + 1 while others are still at l,
// and convert layer l + 2 into the scratch that layer l used once l is done (model.c's
// batch_run). Nine documents of 3..150 ids, each its own unit, on 3 threads, three times over,
// BF16 (every layer converted, so both scratches are in use): each equals model_forward on one
// thread bit for bit, its layers in order.
static void test_batch_overlap(void **s) {
    (void)s;
    model m;
    load_fx(&m, "hf-tiny/gpt_neox_bf16");
    assert_true(m.scratch_floats > 0);
    enum { N = 9 };
    int lens[N] = {150, 5, 37, 90, 12, 150, 64, 3, 120};
    int32_t *ids[N];
    float *want[N];
    model_doc docs[N];
    for (int k = 0; k < N; k++) {
        if (!m.c.rot_dim && lens[k] > m.c.max_pos) lens[k] = m.c.max_pos; // learned positions only
        ids[k] = malloc(sizeof(int32_t) * (size_t)lens[k]);
        for (int t = 0; t < lens[k]; t++) ids[k][t] = (int32_t)((t * 7919 + 131 * k + 3) % m.c.vocab);
        want[k] = run_one(&m, ids[k], lens[k]);
        docs[k] = (model_doc){ids[k], lens[k], 0};
    }
    for (int rep = 0; rep < 3; rep++) {
        int seen[N] = {0};
        float **got = run_batch(&m, docs, N, 3, seen);
        for (int k = 0; k < N; k++) {
            assert_int_equal(seen[k], m.c.n_layers + 1);
            if (memcmp(got[k], want[k], sizeof(float) * (size_t)(m.c.n_layers + 1) * lens[k] * m.c.d))
                fail_msg("document %d differs from model_forward (repetition %d)", k, rep);
            free(got[k]);
        }
        free(got);
    }
    for (int k = 0; k < N; k++) free(ids[k]), free(want[k]);
    model_free(&m);
}

static void test_batch_llama(void **s) { (void)s; batch_independent("llama"); }
static void test_batch_neox_bf16(void **s) { (void)s; batch_independent("gpt_neox_bf16"); }
static void test_batch_swa(void **s) { (void)s; batch_independent("mistral_swa"); }
static void test_batch_gpt2(void **s) { (void)s; batch_independent("gpt2"); }

// A callback's nonzero return stops only its document; last_layer bounds the pass; bad input
// names the document and runs nothing.
static void test_batch_stop_and_errors(void **s) {
    (void)s;
    model m;
    load_fx(&m, "hf-tiny/llama");
    ibc_err e = {0};
    int32_t a[4] = {1, 2, 3, 4}, b[3] = {5, 6, 7};
    model_doc docs[2] = {{a, 4, 0}, {b, 3, 0}};
    float *out[2] = {calloc((size_t)(m.c.n_layers + 1) * 4 * m.c.d, sizeof(float)),
                     calloc((size_t)(m.c.n_layers + 1) * 3 * m.c.d, sizeof(float))};
    int seen[2] = {0, 0};
    batch_cap c = {out, seen, 0, 1, 0};
    assert_int_equal(model_forward_docs(&m, docs, 2, m.c.n_layers, batch_cb, &c, NULL, &e), 0);
    assert_int_equal(seen[0], 2);                // l = 0, 1, then stopped
    assert_int_equal(seen[1], m.c.n_layers + 1); // the other runs to the end
    seen[0] = seen[1] = 0;
    c.stop_doc = -1;
    assert_int_equal(model_forward_docs(&m, docs, 2, 1, batch_cb, &c, NULL, &e), 0);
    assert_int_equal(seen[0], 2);
    assert_int_equal(seen[1], 2);
    int32_t bad[2] = {3, 100000};
    model_doc baddocs[2] = {{a, 4, 0}, {bad, 2, 0}};
    seen[0] = seen[1] = 0;
    assert_int_equal(model_forward_docs(&m, baddocs, 2, m.c.n_layers, batch_cb, &c, NULL, &e), IBC_EINPUT);
    assert_non_null(strstr(e.msg, "document 1"));
    assert_non_null(strstr(e.msg, "100000"));
    assert_int_equal(seen[0], 0);
    assert_int_equal(model_forward_docs(&m, docs, 2, m.c.n_layers + 1, batch_cb, &c, NULL, &e), IBC_EINPUT);
    free(out[0]); free(out[1]);
    model_free(&m);
}

// A unit handed over at a layer boundary (model_forward_docs_opts): in a batch of three units on
// two threads, the unit of documents 1-2 leaves after index `at` (its residual stream copied);
// a second batch resumes it from there. Every hidden state of it, those before `at` from the
// first batch and those after from the second, is bitwise the whole batch's; the others run
// on. BF16 (layers converted into scratches), so the resumed batch converts its own layers.
typedef struct {
    batch_cap cap;
    int at, left, d;
    float *x;     // [R, d] the leaving unit's residual stream
    int others;   // `others` when it left
} leave_cap;

static int leave_cb(void *ctx, int first, int n, int l, const float *x, int R, int others) {
    leave_cap *c = ctx;
    if (first != 1 || l != c->at) return 0;
    assert_int_equal(n, 2);
    c->x = malloc(sizeof(float) * (size_t)R * c->d);
    memcpy(c->x, x, sizeof(float) * (size_t)R * c->d);
    c->others = others;
    c->left = 1;
    return 1;
}

static int leave_doc_cb(void *ctx, int doc, int l, const float *h, int T, int d) {
    leave_cap *c = ctx;
    return batch_cb(&c->cap, doc, l, h, T, d);
}

static void test_batch_leave(void **s) {
    (void)s;
    model m;
    load_fx(&m, "hf-tiny/llama_bf16");
    int L = m.c.n_layers, d = m.c.d, at = 1;
    int32_t a[5] = {1, 2, 3, 4, 5}, b[3] = {6, 7, 8}, c3[4] = {9, 10, 11, 12}, e4[6] = {2, 4, 6, 8, 10, 12};
    model_doc docs[4] = {{a, 5, 0}, {b, 3, 0}, {c3, 4, 1}, {e4, 6, 0}}; // units {0}, {1, 2}, {3}
    int seen[4] = {0};
    float **whole = run_batch(&m, docs, 4, 2, seen);
    float *out[4];
    for (int i = 0; i < 4; i++) out[i] = calloc((size_t)(L + 1) * docs[i].T * d, sizeof(float));
    int seen2[4] = {0};
    leave_cap lc = {{out, seen2, -1, -1, 0}, at, 0, d, NULL, -1};
    model_batch_opts o = {0, NULL, leave_cb};
    ibc_err e = {0};
    set_threads(2);
    if (model_forward_docs_opts(&m, docs, 4, L, &o, leave_doc_cb, &lc, NULL, &e)) fail_msg("%s", e.msg);
    assert_true(lc.left);
    assert_true(lc.others >= 0 && lc.others <= 2);
    assert_int_equal(seen2[1], at + 1); // indices 0 .. at here
    assert_int_equal(seen2[2], at + 1);
    assert_int_equal(seen2[0], L + 1);
    assert_int_equal(seen2[3], L + 1);
    // The unit alone, from index `at`: documents 1 and 2, their stream stacked as it left.
    float *rest[2] = {out[1], out[2]};
    int seen3[2] = {at + 1, at + 1};
    batch_cap rc = {rest, seen3, -1, -1, 0};
    model_batch_opts from = {at, lc.x, NULL};
    model_doc unit[2] = {docs[1], {c3, 4, 1}};
    unit[0].join = 0;
    if (model_forward_docs_opts(&m, unit, 2, L, &from, batch_cb, &rc, NULL, &e)) fail_msg("%s", e.msg);
    assert_int_equal(seen3[0], L + 1);
    assert_int_equal(rc.out_of_order, 0);
    for (int i = 0; i < 4; i++)
        assert_memory_equal(out[i], whole[i], sizeof(float) * (size_t)(L + 1) * docs[i].T * d);
    // A batch cannot start at or past its last index, nor without a stream.
    model_batch_opts bad = {L, lc.x, NULL};
    assert_int_equal(model_forward_docs_opts(&m, unit, 2, L, &bad, batch_cb, &rc, NULL, &e), IBC_EINPUT);
    bad = (model_batch_opts){1, NULL, NULL};
    assert_int_equal(model_forward_docs_opts(&m, unit, 2, L, &bad, batch_cb, &rc, NULL, &e), IBC_EINPUT);
    for (int i = 0; i < 4; i++) free(out[i]), free(whole[i]);
    free(whole);
    free(lc.x);
    model_free(&m);
}

// Writes dir/model.safetensors again with every tensor in `dtype` (values rounded by st_write),
// and dir_f32/ the same rounded values as F32; config.json copied to both.
static void requantize(const char *src, const char *dst, const char *dst_f32, st_dtype dtype) {
    char path[1200];
    snprintf(path, sizeof path, "%s/model.safetensors", src);
    st_file f;
    ibc_err e = {0};
    if (st_open(path, &f, &e)) fail_msg("%s", e.msg);
    st_wtensor *w = calloc((size_t)f.n, sizeof *w);
    float **vals = calloc((size_t)f.n, sizeof(float *));
    for (int i = 0; i < f.n; i++) {
        const st_tensor *t = &f.tensors[i];
        w[i].name = t->name;
        w[i].ndim = t->ndim;
        for (int k = 0; k < t->ndim; k++) w[i].shape[k] = t->shape[k];
        vals[i] = malloc(sizeof(float) * (size_t)t->numel);
        assert_int_equal(st_to_f32(t, vals[i], &e), 0);
        w[i].data = vals[i];
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dst);
    if (st_write(path, w, f.n, dtype, &e)) fail_msg("%s", e.msg);
    st_file q; // read the rounded values back, write them as F32
    if (st_open(path, &q, &e)) fail_msg("%s", e.msg);
    for (int i = 0; i < f.n; i++) {
        const st_tensor *t = st_file_find(&q, w[i].name);
        assert_int_equal(t->dtype, dtype);
        assert_int_equal(st_to_f32(t, vals[i], &e), 0);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dst_f32);
    if (st_write_f32(path, w, f.n, &e)) fail_msg("%s", e.msg);
    char cmd[4000];
    snprintf(cmd, sizeof cmd, "cp '%s/config.json' '%s/' && cp '%s/config.json' '%s/'", src, dst, src, dst_f32);
    if (system(cmd) != 0) fail_msg("cannot copy config.json");
    for (int i = 0; i < f.n; i++) free(vals[i]);
    free(vals); free(w);
    st_close(&q);
    st_close(&f);
}

// BF16 and F16 checkpoints, converted layer by layer just in time, give bit for bit the hidden
// states and logits of an F32 checkpoint holding the same (rounded) values, used from the map:
// the conversion is exact. A random llama (ibc's writer) and GPT-NeoX (interleaved QKV).
static void test_half_dtypes_exact(void **s) {
    (void)s;
    const char *arch[2] = {"llama", "gpt_neox"};
    for (int a = 0; a < 2; a++)
        for (int q = 0; q < 2; q++) {
            model_config c = {.arch = ARCH_LLAMA, .d = 32, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 8,
                              .d_ff = 48, .vocab = 64, .norm_eps = 1e-5f, .rope_theta = 10000, .rot_dim = 8, .tied = 1,
                              .gated_mlp = 1, .max_pos = 2048};
            if (a == 1)
                c.arch = ARCH_GPT_NEOX, c.n_kv_heads = 4, c.rot_dim = 2, c.tied = 0, c.gated_mlp = 0, c.parallel_residual = 1;
            char base[512], half[600], f32[600];
            tmp_dir(base, sizeof base, "dtypes");
            snprintf(half, sizeof half, "%s/half", base);
            snprintf(f32, sizeof f32, "%s/f32", base);
            ibc_err e = {0};
            if (ckpt_write_random(base, &c, 7, &e)) fail_msg("%s", e.msg);
            char cmd[1400];
            snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s'", half, f32);
            if (system(cmd) != 0) fail_msg("mkdir");
            requantize(base, half, f32, q ? ST_F16 : ST_BF16);
            model mh, mf;
            if (model_load(half, &mh, &e) || model_load(f32, &mf, &e)) fail_msg("%s", e.msg);
            assert_string_equal(mh.file_dtype, q ? "F16" : "BF16");
            assert_true(mh.scratch_floats > 0);  // converted per layer
            assert_int_equal(mf.n_params, mh.n_params);
            int T = 140;
            int32_t ids[140];
            for (int t = 0; t < T; t++) ids[t] = (t * 13 + 5) % c.vocab;
            float *hh = run_one(&mh, ids, T), *hf = run_one(&mf, ids, T);
            if (memcmp(hh, hf, sizeof(float) * (size_t)(c.n_layers + 1) * T * c.d))
                fail_msg("%s %s: hidden states differ from the F32 copy", arch[a], q ? "F16" : "BF16");
            float *lh = malloc(sizeof(float) * (size_t)T * c.vocab), *lf = malloc(sizeof(float) * (size_t)T * c.vocab);
            set_threads(1);
            assert_int_equal(model_forward(&mh, ids, T, NULL, NULL, lh, &e), 0);
            assert_int_equal(model_forward(&mf, ids, T, NULL, NULL, lf, &e), 0);
            set_threads(2);
            assert_memory_equal(lh, lf, sizeof(float) * (size_t)T * c.vocab);
            free(hh); free(hf); free(lh); free(lf);
            model_free(&mh);
            model_free(&mf);
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
            if (system(cmd) != 0) fail_msg("rm");
        }
}

// ibc's own F32 checkpoints need no scratch: every matrix is used from the map.
static void test_f32_mapped(void **s) {
    (void)s;
    model_config c = {.arch = ARCH_LLAMA, .d = 32, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 8,
                      .d_ff = 48, .vocab = 64, .norm_eps = 1e-5f, .rope_theta = 10000, .rot_dim = 8, .tied = 1,
                      .gated_mlp = 1, .max_pos = 2048};
    char dir[512];
    tmp_dir(dir, sizeof dir, "mapped");
    ibc_err e = {0};
    if (ckpt_write_random(dir, &c, 3, &e)) fail_msg("%s", e.msg);
    model m;
    if (model_load(dir, &m, &e)) fail_msg("%s", e.msg);
    assert_int_equal(m.scratch_floats, 0);
    model_free(&m);
    int64_t f = -1;
    assert_int_equal(model_scratch_floats(dir, &f, &e), 0);
    assert_int_equal(f, 0);
}

// model_scratch_floats (ibc plan's layer scratch, no weight read) equals what model_load sizes,
// on every family of the fixtures: HF files store q, k, v apart, so F32 ones need a qkv scratch.
static void test_scratch_floats(void **s) {
    (void)s;
    const char *names[] = {"gpt2", "gpt_neox", "gpt_neox_bf16", "llama", "llama_bf16", "llama3", "qwen2",
                           "mistral", "mistral_swa", "gemma", "olmo2", NULL};
    for (int i = 0; names[i]; i++) {
        char dir[1024], rel[256];
        snprintf(rel, sizeof rel, "hf-tiny/%s", names[i]);
        FX_PATH(dir, rel);
        model m;
        ibc_err e = {0};
        int64_t f = -1;
        if (model_load(dir, &m, &e)) fail_msg("%s", e.msg);
        if (model_scratch_floats(dir, &f, &e)) fail_msg("%s", e.msg);
        if (f != m.scratch_floats) fail_msg("%s: model_scratch_floats %lld, model_load %lld", names[i], (long long)f, (long long)m.scratch_floats);
        model_free(&m);
    }
    char bad[1024];
    FX_PATH(bad, "hf-tiny");
    ibc_err e = {0};
    int64_t f = 0;
    assert_int_equal(model_scratch_floats(bad, &f, &e), IBC_EINPUT); // no config.json: the same error as model_load
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2), cmocka_unit_test(test_gpt_neox), cmocka_unit_test(test_gpt_neox_bf16),
        cmocka_unit_test(test_llama), cmocka_unit_test(test_llama_bf16), cmocka_unit_test(test_llama3),
        cmocka_unit_test(test_qwen2), cmocka_unit_test(test_mistral), cmocka_unit_test(test_mistral_swa),
        cmocka_unit_test(test_gemma), cmocka_unit_test(test_olmo2),
        cmocka_unit_test(test_stories260K_hidden), cmocka_unit_test(test_stories260K_greedy),
        cmocka_unit_test(test_bad_ids),
        cmocka_unit_test(test_batch_llama), cmocka_unit_test(test_batch_overlap), cmocka_unit_test(test_batch_neox_bf16),
        cmocka_unit_test(test_batch_swa), cmocka_unit_test(test_batch_gpt2),
        cmocka_unit_test(test_batch_stop_and_errors), cmocka_unit_test(test_batch_leave), cmocka_unit_test(test_half_dtypes_exact),
        cmocka_unit_test(test_f32_mapped), cmocka_unit_test(test_scratch_floats),
    };
    return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
