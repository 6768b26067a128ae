#include "ibc/model.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibc/io.h"
#include "ibc/safetensors.h"

// ---------------------------------------------------------------------------------------------
// Loading

typedef struct {
    model *m;
    st_set st;
    const char *prefix; // "model.", "gpt_neox.", "transformer."
    ibc_err *err;
    const char *dtype;  // first dtype seen; "mixed" once two differ
} loader;

// Finds prefix+name, or name alone (checkpoints saved from a base model have no prefix).
static const st_tensor *find(loader *ld, const char *name) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", ld->prefix, name);
    const st_tensor *t = st_find(&ld->st, full);
    return t ? t : st_find(&ld->st, name);
}

// Loads tensor `name` of shape [rows, cols] (cols == 0: 1-D [rows]) as f32 into a new buffer.
static float *load(loader *ld, const char *name, int64_t rows, int64_t cols) {
    const st_tensor *t = find(ld, name);
    if (!t) {
        ibc_fail(ld->err, IBC_EINPUT, "%s%s: missing tensor %s%s", ld->m->dir,
                 ld->st.nfiles == 1 ? "/model.safetensors" : "/model.safetensors.index.json",
                 ld->prefix, name);
        return NULL;
    }
    int ok = cols ? (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols)
                  : (t->ndim == 1 && t->shape[0] == rows);
    if (!ok) {
        ibc_fail(ld->err, IBC_EINPUT, "%s: tensor %s has shape [%lld%s%lld], expected [%lld%s%lld]",
                 t->path, t->name, (long long)t->shape[0], t->ndim > 1 ? ", " : "",
                 t->ndim > 1 ? (long long)t->shape[1] : 0LL, (long long)rows, cols ? ", " : "",
                 (long long)cols);
        if (!cols) { char *p = strrchr(ld->err->msg, ','); if (p) *p = 0; } // tidy 1-D message
        return NULL;
    }
    float *buf = malloc(sizeof(float) * (size_t)t->numel);
    if (!buf) { ibc_fail(ld->err, IBC_ESYS, "%s: out of memory", t->name); return NULL; }
    if (st_to_f32(t, buf, ld->err) != 0) { free(buf); return NULL; }
    const char *dn = st_dtype_name(t->dtype);
    if (!ld->dtype) ld->dtype = dn;
    else if (strcmp(ld->dtype, dn) != 0) ld->dtype = "mixed";
    ld->m->n_params += t->numel;
    return buf;
}

// dst[c, r] = src[r, c]: Conv1D [in, out] -> Linear [out, in]. Frees src.
static float *transpose(float *src, int64_t rows, int64_t cols) {
    if (!src) return NULL;
    float *dst = malloc(sizeof(float) * (size_t)(rows * cols));
    if (dst)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
    free(src);
    return dst;
}

// Concatenates row blocks a [ra, n], b [rb, n], c [rc, n] (c may be NULL). Frees the parts.
static float *concat_rows(float *a, int64_t ra, float *b, int64_t rb, float *c, int64_t rc, int64_t n) {
    float *out = (a && b && (c || !rc)) ? malloc(sizeof(float) * (size_t)((ra + rb + rc) * n)) : NULL;
    if (out) {
        memcpy(out, a, sizeof(float) * (size_t)(ra * n));
        memcpy(out + ra * n, b, sizeof(float) * (size_t)(rb * n));
        if (rc) memcpy(out + (ra + rb) * n, c, sizeof(float) * (size_t)(rc * n));
    }
    free(a); free(b); free(c);
    return out;
}

// GPT-NeoX's fused QKV rows are per head [q_h | k_h | v_h] (each D rows of width n):
// rearrange to [q_0..q_H | k_0..k_H | v_0..v_H]. Frees src.
static float *deinterleave_qkv(float *src, int H, int D, int64_t n) {
    if (!src) return NULL;
    float *dst = malloc(sizeof(float) * (size_t)(3 * H * D * n));
    if (dst)
        for (int h = 0; h < H; h++)
            for (int part = 0; part < 3; part++)
                memcpy(dst + ((int64_t)part * H * D + (int64_t)h * D) * n,
                       src + ((int64_t)h * 3 * D + (int64_t)part * D) * n, sizeof(float) * (size_t)(D * n));
    free(src);
    return dst;
}

#define NEED(p) do { if (!(p)) goto fail; } while (0)

static int load_llama_like(loader *ld, model *m) {
    const model_config *c = &m->c;
    int64_t d = c->d, qd = (int64_t)c->n_heads * c->head_dim, kd = (int64_t)c->n_kv_heads * c->head_dim;
    char n[256];
    NEED(m->embed = load(ld, "embed_tokens.weight", c->vocab, d));
    NEED(m->lnf_w = load(ld, "norm.weight", d, 0));
    for (int i = 0; i < c->n_layers; i++) {
        model_layer *L = &m->layers[i];
#define NM(s) (snprintf(n, sizeof n, "layers.%d.%s", i, s), n)
        float *q = load(ld, NM("self_attn.q_proj.weight"), qd, d);
        float *k = q ? load(ld, NM("self_attn.k_proj.weight"), kd, d) : NULL;
        float *v = k ? load(ld, NM("self_attn.v_proj.weight"), kd, d) : NULL;
        NEED(L->wqkv = concat_rows(q, qd, k, kd, v, kd, d));
        if (c->qkv_bias) {
            q = load(ld, NM("self_attn.q_proj.bias"), qd, 0);
            k = q ? load(ld, NM("self_attn.k_proj.bias"), kd, 0) : NULL;
            v = k ? load(ld, NM("self_attn.v_proj.bias"), kd, 0) : NULL;
            NEED(L->bqkv = concat_rows(q, qd, k, kd, v, kd, 1));
        }
        NEED(L->wo = load(ld, NM("self_attn.o_proj.weight"), d, qd));
        if (c->o_bias) NEED(L->bo = load(ld, NM("self_attn.o_proj.bias"), d, 0));
        float *g = load(ld, NM("mlp.gate_proj.weight"), c->d_ff, d);
        float *u = g ? load(ld, NM("mlp.up_proj.weight"), c->d_ff, d) : NULL;
        NEED(L->wup = concat_rows(g, c->d_ff, u, c->d_ff, NULL, 0, d));
        NEED(L->wdown = load(ld, NM("mlp.down_proj.weight"), d, c->d_ff));
        if (c->mlp_bias) {
            g = load(ld, NM("mlp.gate_proj.bias"), c->d_ff, 0);
            u = g ? load(ld, NM("mlp.up_proj.bias"), c->d_ff, 0) : NULL;
            NEED(L->bup = concat_rows(g, c->d_ff, u, c->d_ff, NULL, 0, 1));
            NEED(L->bdown = load(ld, NM("mlp.down_proj.bias"), d, 0));
        }
        if (c->post_norm) {
            NEED(L->ln1_w = load(ld, NM("post_attention_layernorm.weight"), d, 0));
            NEED(L->ln2_w = load(ld, NM("post_feedforward_layernorm.weight"), d, 0));
            NEED(L->q_norm = load(ld, NM("self_attn.q_norm.weight"), qd, 0));
            NEED(L->k_norm = load(ld, NM("self_attn.k_norm.weight"), kd, 0));
        } else {
            NEED(L->ln1_w = load(ld, NM("input_layernorm.weight"), d, 0));
            NEED(L->ln2_w = load(ld, NM("post_attention_layernorm.weight"), d, 0));
        }
#undef NM
    }
    return 0;
fail:
    return ld->err->code ? ld->err->code : ibc_fail(ld->err, IBC_ESYS, "%s: out of memory", m->dir);
}

static int load_neox(loader *ld, model *m) {
    const model_config *c = &m->c;
    int64_t d = c->d;
    char n[256];
    NEED(m->embed = load(ld, "embed_in.weight", c->vocab, d));
    NEED(m->lnf_w = load(ld, "final_layer_norm.weight", d, 0));
    NEED(m->lnf_b = load(ld, "final_layer_norm.bias", d, 0));
    for (int i = 0; i < c->n_layers; i++) {
        model_layer *L = &m->layers[i];
#define NM(s) (snprintf(n, sizeof n, "layers.%d.%s", i, s), n)
        NEED(L->ln1_w = load(ld, NM("input_layernorm.weight"), d, 0));
        NEED(L->ln1_b = load(ld, NM("input_layernorm.bias"), d, 0));
        NEED(L->ln2_w = load(ld, NM("post_attention_layernorm.weight"), d, 0));
        NEED(L->ln2_b = load(ld, NM("post_attention_layernorm.bias"), d, 0));
        NEED(L->wqkv = deinterleave_qkv(load(ld, NM("attention.query_key_value.weight"), 3 * d, d),
                                        c->n_heads, c->head_dim, d));
        if (c->qkv_bias)
            NEED(L->bqkv = deinterleave_qkv(load(ld, NM("attention.query_key_value.bias"), 3 * d, 0),
                                            c->n_heads, c->head_dim, 1));
        NEED(L->wo = load(ld, NM("attention.dense.weight"), d, d));
        if (c->o_bias) NEED(L->bo = load(ld, NM("attention.dense.bias"), d, 0));
        NEED(L->wup = load(ld, NM("mlp.dense_h_to_4h.weight"), c->d_ff, d));
        NEED(L->bup = load(ld, NM("mlp.dense_h_to_4h.bias"), c->d_ff, 0));
        NEED(L->wdown = load(ld, NM("mlp.dense_4h_to_h.weight"), d, c->d_ff));
        NEED(L->bdown = load(ld, NM("mlp.dense_4h_to_h.bias"), d, 0));
#undef NM
    }
    return 0;
fail:
    return ld->err->code ? ld->err->code : ibc_fail(ld->err, IBC_ESYS, "%s: out of memory", m->dir);
}

static int load_gpt2(loader *ld, model *m) {
    const model_config *c = &m->c;
    int64_t d = c->d;
    char n[256];
    NEED(m->embed = load(ld, "wte.weight", c->vocab, d));
    NEED(m->pos = load(ld, "wpe.weight", c->max_pos, d));
    NEED(m->lnf_w = load(ld, "ln_f.weight", d, 0));
    NEED(m->lnf_b = load(ld, "ln_f.bias", d, 0));
    for (int i = 0; i < c->n_layers; i++) {
        model_layer *L = &m->layers[i];
#define NM(s) (snprintf(n, sizeof n, "h.%d.%s", i, s), n)
        NEED(L->ln1_w = load(ld, NM("ln_1.weight"), d, 0));
        NEED(L->ln1_b = load(ld, NM("ln_1.bias"), d, 0));
        NEED(L->ln2_w = load(ld, NM("ln_2.weight"), d, 0));
        NEED(L->ln2_b = load(ld, NM("ln_2.bias"), d, 0));
        // Conv1D stores [in, out]: transpose to [out, in]. c_attn's output is [q | k | v].
        NEED(L->wqkv = transpose(load(ld, NM("attn.c_attn.weight"), d, 3 * d), d, 3 * d));
        NEED(L->bqkv = load(ld, NM("attn.c_attn.bias"), 3 * d, 0));
        NEED(L->wo = transpose(load(ld, NM("attn.c_proj.weight"), d, d), d, d));
        NEED(L->bo = load(ld, NM("attn.c_proj.bias"), d, 0));
        NEED(L->wup = transpose(load(ld, NM("mlp.c_fc.weight"), d, c->d_ff), d, c->d_ff));
        NEED(L->bup = load(ld, NM("mlp.c_fc.bias"), c->d_ff, 0));
        NEED(L->wdown = transpose(load(ld, NM("mlp.c_proj.weight"), c->d_ff, d), c->d_ff, d));
        NEED(L->bdown = load(ld, NM("mlp.c_proj.bias"), d, 0));
#undef NM
    }
    return 0;
fail:
    return ld->err->code ? ld->err->code : ibc_fail(ld->err, IBC_ESYS, "%s: out of memory", m->dir);
}

void model_rope_inv_freq(const model_config *c, float *out) {
    int half = c->rot_dim / 2;
    for (int i = 0; i < half; i++) {
        // HF: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in f32.
        float e = (float)(2 * i) / (float)c->rot_dim;
        out[i] = 1.0f / powf((float)c->rope_theta, e);
    }
    if (!c->rope_llama3) return;
    // llama3 scaling (HF _compute_llama3_parameters): long wavelengths are divided by factor,
    // short ones kept, the band between interpolated.
    float factor = (float)c->rs_factor, lo = (float)c->rs_low, hi = (float)c->rs_high,
          orig = (float)c->rs_orig;
    float lo_wl = orig / lo, hi_wl = orig / hi;
    for (int i = 0; i < half; i++) {
        float f = out[i], wl = 2.0f * (float)M_PI / f;
        float scaled = wl > lo_wl ? f / factor : f;
        if (!(wl < hi_wl) && !(wl > lo_wl)) {
            float s = (orig / wl - lo) / (hi - lo);
            scaled = (1.0f - s) * scaled / factor + s * scaled;
        }
        out[i] = scaled;
    }
}

void model_free(model *m) {
    if (!m) return;
    if (m->lm_head != m->embed) free(m->lm_head);
    free(m->embed); free(m->pos); free(m->lnf_w); free(m->lnf_b); free(m->inv_freq);
    for (int i = 0; m->layers && i < m->c.n_layers; i++) {
        model_layer *L = &m->layers[i];
        float *p[] = {L->ln1_w, L->ln1_b, L->ln2_w, L->ln2_b, L->wqkv, L->bqkv, L->q_norm,
                      L->k_norm, L->wo, L->bo, L->wup, L->bup, L->wdown, L->bdown};
        for (size_t k = 0; k < sizeof p / sizeof *p; k++) free(p[k]);
    }
    free(m->layers);
    memset(m, 0, sizeof *m);
}

static void add_one(float *w, int n) {
    for (int i = 0; w && i < n; i++) w[i] = 1.0f + w[i];
}

int model_load(const char *dir, model *m, ibc_err *err) {
    memset(m, 0, sizeof *m);
    if (strlen(dir) >= sizeof m->dir) return ibc_fail(err, IBC_EINPUT, "%s: path too long", dir);
    strcpy(m->dir, dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = config_load(path, &m->c, err);
    if (rc) return rc;
    loader ld = {.m = m, .err = err};
    if ((rc = st_set_open(dir, &ld.st, err)) != 0) return rc;
    for (int i = 0; i < ld.st.nfiles; i++) m->file_bytes += (int64_t)ld.st.files[i].map_len;
    const model_config *c = &m->c;
    m->layers = calloc((size_t)c->n_layers, sizeof(model_layer));
    if (!m->layers) { rc = ibc_fail(err, IBC_ESYS, "out of memory"); goto done; }
    err->code = 0;
    switch (c->arch) {
    case ARCH_GPT2: ld.prefix = "transformer."; rc = load_gpt2(&ld, m); break;
    case ARCH_GPT_NEOX: ld.prefix = "gpt_neox."; rc = load_neox(&ld, m); break;
    default: ld.prefix = "model."; rc = load_llama_like(&ld, m); break;
    }
    if (rc) goto done;
    if (c->tied) {
        m->lm_head = m->embed;
    } else {
        ld.prefix = "";
        m->lm_head = load(&ld, c->arch == ARCH_GPT_NEOX ? "embed_out.weight" : "lm_head.weight", c->vocab, c->d);
        if (!m->lm_head) { rc = err->code ? err->code : IBC_ESYS; goto done; }
    }
    if (c->norm_plus_one) {
        add_one(m->lnf_w, c->d);
        for (int i = 0; i < c->n_layers; i++) {
            add_one(m->layers[i].ln1_w, c->d);
            add_one(m->layers[i].ln2_w, c->d);
        }
    }
    if (c->rot_dim) {
        if (!(m->inv_freq = malloc(sizeof(float) * (size_t)(c->rot_dim / 2 + 1)))) {
            rc = ibc_fail(err, IBC_ESYS, "out of memory");
            goto done;
        }
        model_rope_inv_freq(c, m->inv_freq);
    }
    snprintf(m->file_dtype, sizeof m->file_dtype, "%s", ld.dtype ? ld.dtype : "?");
done:
    st_set_free(&ld.st); // every weight is an f32 copy now: the mappings can go
    if (rc) model_free(m);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Forward pass

typedef struct {
    float *x;    // [T, d] residual stream
    float *xn;   // [T, d] normed input to a sub-block
    float *o;    // [T, d] sub-block output
    float *o2;   // [T, d] second sub-block output (parallel residual)
    float *qkv;  // [T, (H+2KV)*D]
    float *att;  // [T, H*D]
    float *s;    // [threads, ATT_BLOCK, T] attention scores, one block per thread
    float *up;   // [T, F or 2F]
    float *cs;   // [T, rot/2] cos, then [T, rot/2] sin
} scratch;

// y[T, out] = x[T, in] W[out, in]^T (+ b): every projection, one sgemm.
static void linear(const float *x, int T, int in, int ldx, const float *W, const float *b, int out, float *y) {
    if (b)
        for (int t = 0; t < T; t++) memcpy(y + (size_t)t * out, b, sizeof(float) * (size_t)out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, out, in, 1.0f, x, ldx, W, in,
                b ? 1.0f : 0.0f, y, out);
}

// LayerNorm (biased variance) or RMSNorm over rows of length n, statistics in double.
static void norm(const model_config *c, const float *x, int T, int n, const float *w, const float *b, float *y) {
#pragma omp parallel for if (T > 1) schedule(static)
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * n;
        float *yr = y + (size_t)t * n;
        double mu = 0, ss = 0;
        if (c->norm == NORM_LAYER) {
            for (int i = 0; i < n; i++) mu += xr[i];
            mu /= n;
        }
        for (int i = 0; i < n; i++) ss += (xr[i] - mu) * (xr[i] - mu);
        float r = (float)(1.0 / sqrt(ss / n + c->norm_eps));
        for (int i = 0; i < n; i++) yr[i] = (float)(xr[i] - mu) * r * w[i] + (b ? b[i] : 0.0f);
    }
}

static float act(model_act a, float x) {
    switch (a) {
    case ACT_SILU: return x / (1.0f + expf(-x));
    case ACT_GELU: return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
    default: return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    }
}

// Rotates dims (i, i + rot/2) of each head, HF's rotate_half form (not adjacent pairs).
static void rope(float *v, int T, int ld, int heads, int D, int rot, const float *cs) {
    int half = rot / 2;
    const float *sn = cs + (size_t)T * half;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++)
        for (int h = 0; h < heads; h++) {
            float *p = v + (size_t)t * ld + (size_t)h * D;
            for (int i = 0; i < half; i++) {
                float co = cs[t * half + i], si = sn[t * half + i], a = p[i], b = p[i + half];
                p[i] = a * co - b * si;
                p[i + half] = b * co + a * si;
            }
        }
}

#define ATT_BLOCK 128

// Causal (optionally sliding-window) attention of all heads: qkv [T, (H+2KV)D] -> att [T, H*D].
// Query rows go in blocks so that scores are computed only for keys a block can see.
static void attention(const model_config *c, scratch *s, int T) {
    int H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim, ld = (H + 2 * KV) * D;
    int W = c->sliding_window;
    float scale = 1.0f / sqrtf((float)D);
    int nblk = (T + ATT_BLOCK - 1) / ATT_BLOCK;
    // (head, row block) pairs in parallel; sgemm runs on the calling thread inside the region.
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int h = 0; h < H; h++) {
        for (int b = 0; b < nblk; b++) {
            int g = h / (H / KV); // GQA: repeat_interleave of kv heads
            const float *q = s->qkv + (size_t)h * D, *k = s->qkv + (size_t)(H + g) * D,
                        *v = s->qkv + (size_t)(H + KV + g) * D;
            float *sc = s->s + (size_t)omp_get_thread_num() * ATT_BLOCK * T;
            int r0 = b * ATT_BLOCK, r1 = r0 + ATT_BLOCK < T ? r0 + ATT_BLOCK : T;
            int k0 = W && r0 - W + 1 > 0 ? r0 - W + 1 : 0; // first key any row of the block sees
            int nk = r1 - k0;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, nk, D, scale,
                        q + (size_t)r0 * ld, ld, k + (size_t)k0 * ld, ld, 0.0f, sc, nk);
            for (int i = r0; i < r1; i++) {
                float *row = sc + (size_t)(i - r0) * nk;
                int lo = W && i - W + 1 > k0 ? i - W + 1 : k0; // keys lo..i are visible
                float mx = -INFINITY, sum = 0;
                for (int j = lo; j <= i; j++) mx = fmaxf(mx, row[j - k0]);
                for (int j = k0; j < r1; j++) {
                    float e = (j >= lo && j <= i) ? expf(row[j - k0] - mx) : 0.0f;
                    row[j - k0] = e;
                    sum += e;
                }
                for (int j = lo; j <= i; j++) row[j - k0] /= sum;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, D, nk, 1.0f, sc, nk,
                        v + (size_t)k0 * ld, ld, 0.0f, s->att + (size_t)r0 * H * D + (size_t)h * D, H * D);
        }
    }
}

// o[T, d] = attention block applied to in[T, d].
static void attn_block(const model *m, const model_layer *L, scratch *s, const float *in, int T) {
    const model_config *c = &m->c;
    int H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim, ld = (H + 2 * KV) * D;
    linear(in, T, c->d, c->d, L->wqkv, L->bqkv, ld, s->qkv);
    if (L->q_norm) { // OLMo2: RMSNorm over the whole q and k projections, before RoPE
        model_config rms = *c;
        rms.norm = NORM_RMS;
        for (int t = 0; t < T; t++) {
            float *r = s->qkv + (size_t)t * ld;
            norm(&rms, r, 1, H * D, L->q_norm, NULL, r);
            norm(&rms, r + H * D, 1, KV * D, L->k_norm, NULL, r + H * D);
        }
    }
    if (c->rot_dim) {
        rope(s->qkv, T, ld, H, D, c->rot_dim, s->cs);
        rope(s->qkv + H * D, T, ld, KV, D, c->rot_dim, s->cs);
    }
    attention(c, s, T);
    linear(s->att, T, H * D, H * D, L->wo, L->bo, c->d, s->o);
}

// out[T, d] = MLP applied to in[T, d].
static void mlp_block(const model *m, const model_layer *L, scratch *s, const float *in, float *out, int T) {
    const model_config *c = &m->c;
    int F = c->d_ff;
    if (c->gated_mlp) {
        linear(in, T, c->d, c->d, L->wup, L->bup, 2 * F, s->up);
#pragma omp parallel for schedule(static)
        for (int t = 0; t < T; t++) { // act(gate) * up, into the gate half
            float *r = s->up + (size_t)t * 2 * F;
            for (int j = 0; j < F; j++) r[j] = act(c->act, r[j]) * r[F + j];
        }
        linear(s->up, T, F, 2 * F, L->wdown, L->bdown, c->d, out);
    } else {
        linear(in, T, c->d, c->d, L->wup, L->bup, F, s->up);
#pragma omp parallel for schedule(static)
        for (size_t j = 0; j < (size_t)T * F; j++) s->up[j] = act(c->act, s->up[j]);
        linear(s->up, T, F, F, L->wdown, L->bdown, c->d, out);
    }
}

static void add(float *x, const float *y, size_t n) {
#pragma omp parallel for if (n > 4096) schedule(static)
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

static void block(const model *m, const model_layer *L, scratch *s, int T) {
    const model_config *c = &m->c;
    size_t n = (size_t)T * c->d;
    if (c->post_norm) { // OLMo2: h += norm(attn(h)); h += norm(mlp(h))
        attn_block(m, L, s, s->x, T);
        norm(c, s->o, T, c->d, L->ln1_w, NULL, s->xn);
        add(s->x, s->xn, n);
        mlp_block(m, L, s, s->x, s->o, T);
        norm(c, s->o, T, c->d, L->ln2_w, NULL, s->xn);
        add(s->x, s->xn, n);
    } else if (c->parallel_residual) { // GPT-NeoX: h += attn(ln1(h)) + mlp(ln2(h))
        norm(c, s->x, T, c->d, L->ln1_w, L->ln1_b, s->xn);
        attn_block(m, L, s, s->xn, T);
        norm(c, s->x, T, c->d, L->ln2_w, L->ln2_b, s->xn);
        mlp_block(m, L, s, s->xn, s->o2, T);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) s->x[i] += s->o2[i] + s->o[i];
    } else { // pre-norm: h += attn(ln1(h)); h += mlp(ln2(h))
        norm(c, s->x, T, c->d, L->ln1_w, L->ln1_b, s->xn);
        attn_block(m, L, s, s->xn, T);
        add(s->x, s->o, n);
        norm(c, s->x, T, c->d, L->ln2_w, L->ln2_b, s->xn);
        mlp_block(m, L, s, s->xn, s->o, T);
        add(s->x, s->o, n);
    }
}

int model_forward(const model *m, const int32_t *ids, int T, model_layer_cb cb, void *ctx,
                  float *logits, ibc_err *err) {
    const model_config *c = &m->c;
    if (T < 1) return ibc_fail(err, IBC_EINPUT, "%s: empty sequence", m->dir);
    if (m->pos && T > c->max_pos)
        return ibc_fail(err, IBC_EINPUT, "%s: %d tokens exceed the %d learned positions", m->dir, T, c->max_pos);
    for (int t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= c->vocab)
            return ibc_fail(err, IBC_EINPUT, "%s: token id %d at position %d is outside the vocabulary of %d",
                            m->dir, ids[t], t, c->vocab);
    int d = c->d, H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim, F = c->d_ff;
    size_t Td = (size_t)T * d, blk = (size_t)omp_get_max_threads() * ATT_BLOCK;
    size_t sizes[] = {Td, Td, Td, Td, (size_t)T * (H + 2 * KV) * D, (size_t)T * H * D, blk * T,
                      (size_t)T * (c->gated_mlp ? 2 : 1) * F, (size_t)T * (c->rot_dim + 1)};
    scratch s;
    float **bufs[] = {&s.x, &s.xn, &s.o, &s.o2, &s.qkv, &s.att, &s.s, &s.up, &s.cs};
    size_t total = 0;
    for (int i = 0; i < 9; i++) total += sizes[i];
    float *arena = malloc(sizeof(float) * total);
    if (!arena) return ibc_fail(err, IBC_ESYS, "%s: out of memory for %d tokens", m->dir, T);
    for (int i = 0, off = 0; i < 9; off += (int)sizes[i], i++) *bufs[i] = arena + off;

    for (int t = 0; t < T; t++) { // embeddings (index 0)
        float *r = s.x + (size_t)t * d;
        memcpy(r, m->embed + (size_t)ids[t] * d, sizeof(float) * (size_t)d);
        if (m->pos) add(r, m->pos + (size_t)t * d, (size_t)d);
        if (c->embed_scale) {
            float k = sqrtf((float)d); // HF: a tensor of sqrt(d) in the compute dtype
            for (int i = 0; i < d; i++) r[i] *= k;
        }
    }
    if (c->rot_dim) { // cos/sin of pos * inv_freq, the angle rounded to f32 as in HF
        int half = c->rot_dim / 2;
        for (int t = 0; t < T; t++)
            for (int i = 0; i < half; i++) {
                float a = (float)t * m->inv_freq[i];
                s.cs[t * half + i] = cosf(a);
                s.cs[(size_t)T * half + t * half + i] = sinf(a);
            }
    }
    int rc = cb ? cb(ctx, 0, s.x, T, d) : 0;
    for (int l = 0; l < c->n_layers && rc == 0; l++) {
        block(m, &m->layers[l], &s, T);
        if (l + 1 < c->n_layers && cb) rc = cb(ctx, l + 1, s.x, T, d);
    }
    if (rc == 0) {
        norm(c, s.x, T, d, m->lnf_w, m->lnf_b, s.xn); // index L: after the final norm
        if (cb) rc = cb(ctx, c->n_layers, s.xn, T, d);
        if (rc == 0 && logits) linear(s.xn, T, d, d, m->lm_head, NULL, c->vocab, logits);
    }
    free(arena);
    return rc;
}
