#include "ibc/model.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ibc/kernels.h"
#include "ibc/mem.h"
#include "ibc/safetensors.h"

// ---------------------------------------------------------------------------------------------
// Where each weight comes from

// Elements [first, first + count) of tensor t become elements [dst, dst + count) of a weight.
typedef struct {
    const st_tensor *t;
    int64_t first, count, dst;
} piece;

// A weight as the kernels see it (numel f32 elements), built from pieces of the mapping.
typedef struct {
    piece *p;
    int np;
    int64_t numel;
    const float *direct; // the map already holds it (F32, aligned, pieces in place), else NULL
    int64_t off;         // else: where it is built in the layer scratch
} wsrc;

// A table read by rows (embeddings, positions, lm_head).
typedef struct {
    const st_tensor *t;
    const float *direct;
} wtable;

typedef struct {
    wsrc qkv, o, up, down; // matrices: mapped, or built per call into the layer scratch
    float *ln1_w, *ln1_b, *ln2_w, *ln2_b, *bqkv, *q_norm, *k_norm, *bo, *bup, *bdown; // f32 copies
} mlayer;

struct model_weights {
    st_set st;
    wtable embed, pos, lm_head;
    float *lnf_w, *lnf_b; // [d]
    mlayer *layers;       // [L]
    kern_wlayout wl;      // GPT-2 Conv1D: [in, out]
};

// Tensor names of a family (NULL: the family has no such tensor). The loader reads them in this
// order, so that the first missing or malformed tensor is the one reported.
typedef struct {
    const char *prefix, *layer;  // "model.", "layers.%d."
    const char *embed, *pos, *lnf_w, *lnf_b;
    const char *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    const char *qkv[3], *bqkv[3]; // [1], [2] NULL: one fused tensor
    const char *o, *bo, *up[2], *bup[2], *down, *bdown, *q_norm, *k_norm;
    int neox_qkv;                 // per-head interleaved [q_h | k_h | v_h] rows
    int conv1d;                   // matrices stored [in, out]
} family;

#define LLAMA_ATTN {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"}, \
    {"self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"}, \
    "self_attn.o_proj.weight", "self_attn.o_proj.bias", {"mlp.gate_proj.weight", "mlp.up_proj.weight"}, \
    {"mlp.gate_proj.bias", "mlp.up_proj.bias"}, "mlp.down_proj.weight", "mlp.down_proj.bias"

static const family LLAMA = {"model.", "layers.%d.", "embed_tokens.weight", NULL, "norm.weight", NULL,
    "input_layernorm.weight", NULL, "post_attention_layernorm.weight", NULL, LLAMA_ATTN, NULL, NULL, 0, 0};
// OLMo2: the norms come after attention and MLP, plus RMSNorms of the whole q and k.
static const family OLMO2 = {"model.", "layers.%d.", "embed_tokens.weight", NULL, "norm.weight", NULL,
    "post_attention_layernorm.weight", NULL, "post_feedforward_layernorm.weight", NULL, LLAMA_ATTN,
    "self_attn.q_norm.weight", "self_attn.k_norm.weight", 0, 0};
static const family NEOX = {"gpt_neox.", "layers.%d.", "embed_in.weight", NULL, "final_layer_norm.weight",
    "final_layer_norm.bias", "input_layernorm.weight", "input_layernorm.bias", "post_attention_layernorm.weight",
    "post_attention_layernorm.bias", {"attention.query_key_value.weight"}, {"attention.query_key_value.bias"},
    "attention.dense.weight", "attention.dense.bias", {"mlp.dense_h_to_4h.weight"}, {"mlp.dense_h_to_4h.bias"},
    "mlp.dense_4h_to_h.weight", "mlp.dense_4h_to_h.bias", NULL, NULL, 1, 0};
static const family GPT2 = {"transformer.", "h.%d.", "wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias",
    "ln_1.weight", "ln_1.bias", "ln_2.weight", "ln_2.bias", {"attn.c_attn.weight"}, {"attn.c_attn.bias"},
    "attn.c_proj.weight", "attn.c_proj.bias", {"mlp.c_fc.weight"}, {"mlp.c_fc.bias"}, "mlp.c_proj.weight",
    "mlp.c_proj.bias", NULL, NULL, 0, 1};

// ---------------------------------------------------------------------------------------------
// Loading: validate every tensor, convert only the vectors

typedef struct {
    model *m;
    const char *prefix;
    ibc_err *err;
    const char *dtype; // first dtype seen; "mixed" once two differ
    int layout_only;   // validate and lay out every tensor, convert nothing (model_scratch_floats)
} loader;

// Finds prefix+name, or name alone (checkpoints saved from a base model have no prefix).
static const st_tensor *find(loader *ld, const char *name) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", ld->prefix, name);
    const st_tensor *t = st_find(&ld->m->w->st, full);
    return t ? t : st_find(&ld->m->w->st, name);
}

// Tensor `name` of shape [rows, cols] (cols == 0: 1-D [rows]) in a dtype ibc converts, or NULL
// with the error set.
static const st_tensor *need(loader *ld, const char *name, int64_t rows, int64_t cols) {
    const st_tensor *t = find(ld, name);
    if (!t) {
        ibc_fail(ld->err, IBC_EINPUT, "%s%s: missing tensor %s%s", ld->m->dir,
                 ld->m->w->st.nfiles == 1 ? "/model.safetensors" : "/model.safetensors.index.json",
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
    if (st_float_ok(t, ld->err) != 0) return NULL;
    const char *dn = st_dtype_name(t->dtype);
    if (!ld->dtype) ld->dtype = dn;
    else if (strcmp(ld->dtype, dn) != 0) ld->dtype = "mixed";
    ld->m->n_params += t->numel;
    return t;
}

// Appends t[first, first + count) at the end of w, in pieces of at most 2^18 elements so that
// building a layer splits evenly over threads.
static void add_piece(wsrc *w, const st_tensor *t, int64_t first, int64_t count, int64_t dst) {
    for (int64_t k = 0; k < count; k += (int64_t)1 << 18) {
        w->p = xrealloc(w->p, sizeof(piece) * (size_t)(w->np + 1));
        int64_t c = count - k < ((int64_t)1 << 18) ? count - k : (int64_t)1 << 18;
        w->p[w->np++] = (piece){t, first + k, c, dst + k};
    }
}

// Appends the rows of tensor `name` [rows, cols] (cols == 0: [rows]) to w. GPT-NeoX's fused QKV
// (neox_heads > 0) is de-interleaved: its rows per head are [q_h | k_h | v_h] (D rows each,
// D = rows / 3 / heads); w gets [q_0..q_H | k_0..k_H | v_0..v_H].
static int wsrc_add(loader *ld, wsrc *w, const char *name, int64_t rows, int64_t cols, int neox_heads) {
    const st_tensor *t = need(ld, name, rows, cols);
    if (!t) return ld->err->code;
    int64_t n = cols ? cols : 1;
    if (!neox_heads) add_piece(w, t, 0, t->numel, w->numel);
    else {
        int64_t H = neox_heads, D = rows / 3 / H;
        for (int64_t h = 0; h < H; h++)
            for (int64_t part = 0; part < 3; part++)
                add_piece(w, t, (h * 3 * D + part * D) * n, D * n, w->numel + (part * H * D + h * D) * n);
    }
    w->numel += t->numel;
    return 0;
}

// w->direct = the map itself when every piece is F32 and sits where w's layout puts it.
static void wsrc_finish(wsrc *w) {
    if (!w->np || w->p[0].t->dtype != ST_F32) return;
    const uint8_t *base = w->p[0].t->data + 4 * w->p[0].first;
    if ((uintptr_t)base % sizeof(float)) return;
    for (int i = 0; i < w->np; i++) {
        const piece *p = &w->p[i];
        if (p->t->dtype != ST_F32 || p->t->path != w->p[0].t->path ||
            p->t->data + 4 * p->first != base + 4 * p->dst)
            return;
    }
    w->direct = (const float *)base;
}

// Builds w into dst[numel], pieces in parallel (each conversion is exact: any split is the same).
static void wsrc_build(const wsrc *w, float *dst) {
#pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < w->np; i++) st_convert(w->p[i].t, w->p[i].first, w->p[i].count, dst + w->p[i].dst);
}

// A vector made of up to three tensors (names[k] NULL: absent), converted now; NULL when the
// family or config has none, or on error (ld->err->code set).
static float *vec_load(loader *ld, const char *const *names, const int64_t *rows, int neox_heads) {
    wsrc w = {0};
    for (int k = 0; k < 3 && names[k] && ld->err->code == 0; k++) wsrc_add(ld, &w, names[k], rows[k], 0, neox_heads);
    float *v = NULL;
    if (ld->err->code == 0 && w.np && !ld->layout_only) {
        v = xmalloc(sizeof(float) * (size_t)w.numel);
        wsrc_build(&w, v);
    }
    free(w.p);
    return v;
}

static float *vec1(loader *ld, const char *name, int64_t n) {
    const char *names[3] = {name, NULL, NULL};
    int64_t rows[3] = {n, 0, 0};
    return name ? vec_load(ld, names, rows, 0) : NULL;
}

static int table_load(loader *ld, wtable *tb, const char *name, int64_t rows, int64_t cols) {
    if (!name) return 0;
    if (!(tb->t = need(ld, name, rows, cols))) return ld->err->code;
    if (tb->t->dtype == ST_F32 && (uintptr_t)tb->t->data % sizeof(float) == 0) tb->direct = (const float *)tb->t->data;
    return 0;
}

static int load_layer(loader *ld, const family *f, int i) {
    model *m = ld->m;
    const model_config *c = &m->c;
    mlayer *L = &m->w->layers[i];
    int64_t d = c->d, F = c->d_ff, qd = (int64_t)c->n_heads * c->head_dim, kd = (int64_t)c->n_kv_heads * c->head_dim;
    char n[256], pre[64];
    snprintf(pre, sizeof pre, f->layer, i);
#define NM(s) (s ? (snprintf(n, sizeof n, "%s%s", pre, s), n) : NULL)
    float **vecs[4] = {&L->ln1_w, &L->ln1_b, &L->ln2_w, &L->ln2_b};
    const char *vnames[4] = {f->ln1_w, f->ln1_b, f->ln2_w, f->ln2_b};
    for (int k = 0; k < 4 && ld->err->code == 0; k++) *vecs[k] = vec1(ld, NM(vnames[k]), d);
    int64_t in_qkv[3] = {qd, kd, kd}, fused[3] = {qd + 2 * kd, 0, 0}, ff[2] = {F, F};
    const int64_t *qrows = f->qkv[1] ? in_qkv : fused;
    for (int k = 0; k < 3 && f->qkv[k] && ld->err->code == 0; k++) // Conv1D: [in, out]
        wsrc_add(ld, &L->qkv, NM(f->qkv[k]), f->conv1d ? d : qrows[k], f->conv1d ? qrows[k] : d, f->neox_qkv * c->n_heads);
    if (c->qkv_bias && ld->err->code == 0) {
        const char *bn[3];
        char buf[3][256];
        for (int k = 0; k < 3; k++) bn[k] = f->bqkv[k] ? (snprintf(buf[k], sizeof buf[k], "%s%s", pre, f->bqkv[k]), buf[k]) : NULL;
        L->bqkv = vec_load(ld, bn, qrows, f->neox_qkv * c->n_heads);
    }
    if (ld->err->code == 0) wsrc_add(ld, &L->o, NM(f->o), f->conv1d ? qd : d, f->conv1d ? d : qd, 0);
    if (c->o_bias && ld->err->code == 0) L->bo = vec1(ld, NM(f->bo), d);
    int nup = f->up[1] ? 2 : 1;
    for (int k = 0; k < nup && ld->err->code == 0; k++)
        wsrc_add(ld, &L->up, NM(f->up[k]), f->conv1d ? d : F, f->conv1d ? F : d, 0);
    if (c->mlp_bias && ld->err->code == 0) {
        const char *bn[3] = {NULL, NULL, NULL};
        char buf[2][256];
        for (int k = 0; k < nup; k++) bn[k] = (snprintf(buf[k], sizeof buf[k], "%s%s", pre, f->bup[k]), buf[k]);
        L->bup = vec_load(ld, bn, ff, 0);
    }
    if (ld->err->code == 0) wsrc_add(ld, &L->down, NM(f->down), f->conv1d ? F : d, f->conv1d ? d : F, 0);
    if (c->mlp_bias && ld->err->code == 0) L->bdown = vec1(ld, NM(f->bdown), d);
    if (f->q_norm && ld->err->code == 0) L->q_norm = vec1(ld, NM(f->q_norm), qd);
    if (f->k_norm && ld->err->code == 0) L->k_norm = vec1(ld, NM(f->k_norm), kd);
#undef NM
    wsrc *mats[4] = {&L->qkv, &L->o, &L->up, &L->down};
    int64_t off = 0;
    for (int k = 0; k < 4 && ld->err->code == 0; k++) {
        wsrc_finish(mats[k]);
        if (!mats[k]->direct) mats[k]->off = off, off += mats[k]->numel;
    }
    if (off > m->scratch_floats) m->scratch_floats = off;
    return ld->err->code;
}

static void add_one(float *w, int n) {
    for (int i = 0; w && i < n; i++) w[i] = 1.0f + w[i];
}

static int load_weights(loader *ld) {
    model *m = ld->m;
    const model_config *c = &m->c;
    const family *f = c->arch == ARCH_GPT2 ? &GPT2 : c->arch == ARCH_GPT_NEOX ? &NEOX
                    : c->post_norm ? &OLMO2 : &LLAMA;
    struct model_weights *w = m->w;
    w->wl = f->conv1d ? KERN_W_IN_OUT : KERN_W_OUT_IN;
    ld->prefix = f->prefix;
    int rc = table_load(ld, &w->embed, f->embed, c->vocab, c->d);
    if (rc == 0) rc = table_load(ld, &w->pos, f->pos, c->max_pos, c->d);
    if (rc == 0 && !(w->lnf_w = vec1(ld, f->lnf_w, c->d))) rc = ld->err->code;
    if (rc == 0 && f->lnf_b && !(w->lnf_b = vec1(ld, f->lnf_b, c->d))) rc = ld->err->code;
    w->layers = xcalloc((size_t)c->n_layers, sizeof(mlayer));
    for (int i = 0; i < c->n_layers && rc == 0; i++) rc = load_layer(ld, f, i);
    if (rc) return rc;
    ld->prefix = "";
    if (!c->tied) rc = table_load(ld, &w->lm_head, c->arch == ARCH_GPT_NEOX ? "embed_out.weight" : "lm_head.weight", c->vocab, c->d);
    else w->lm_head = w->embed;
    if (c->norm_plus_one) { // Gemma: (1 + w), the same f32 sum HF computes
        add_one(w->lnf_w, c->d);
        for (int i = 0; i < c->n_layers; i++) {
            add_one(w->layers[i].ln1_w, c->d);
            add_one(w->layers[i].ln2_w, c->d);
        }
    }
    return rc;
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
    struct model_weights *w = m->w;
    if (w) {
        free(w->lnf_w); free(w->lnf_b);
        for (int i = 0; w->layers && i < m->c.n_layers; i++) {
            mlayer *L = &w->layers[i];
            float *p[] = {L->ln1_w, L->ln1_b, L->ln2_w, L->ln2_b, L->bqkv, L->q_norm, L->k_norm, L->bo, L->bup, L->bdown};
            for (size_t k = 0; k < sizeof p / sizeof *p; k++) free(p[k]);
            free(L->qkv.p); free(L->o.p); free(L->up.p); free(L->down.p);
        }
        free(w->layers);
        st_set_free(&w->st);
        free(w);
    }
    free(m->inv_freq);
    memset(m, 0, sizeof *m);
}

// model_load, or with layout_only the tensors validated and laid out but no vector converted.
static int load(const char *dir, model *m, int layout_only, ibc_err *err) {
    memset(m, 0, sizeof *m);
    if (strlen(dir) >= sizeof m->dir) return ibc_fail(err, IBC_EINPUT, "%s: path too long", dir);
    strcpy(m->dir, dir);
    char path[IBC_PATH_NAME_MAX];
    snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = config_load(path, &m->c, err);
    if (rc) return rc;
    m->w = xcalloc(1, sizeof *m->w);
    loader ld = {.m = m, .err = err, .layout_only = layout_only};
    if ((rc = st_set_open(dir, &m->w->st, err)) != 0) goto done;
    for (int i = 0; i < m->w->st.nfiles; i++) m->file_bytes += (int64_t)m->w->st.files[i].map_len;
    err->code = 0;
    if ((rc = load_weights(&ld)) != 0) goto done;
    if (m->c.rot_dim) {
        m->inv_freq = xmalloc(sizeof(float) * (size_t)(m->c.rot_dim / 2 + 1));
        model_rope_inv_freq(&m->c, m->inv_freq);
    }
    snprintf(m->file_dtype, sizeof m->file_dtype, "%s", ld.dtype ? ld.dtype : "?");
done:
    if (rc) model_free(m);
    return rc;
}

int model_load(const char *dir, model *m, ibc_err *err) { return load(dir, m, 0, err); }

int model_scratch_floats(const char *dir, int64_t *floats, ibc_err *err) {
    model m;
    int rc = load(dir, &m, 1, err);
    if (rc == 0) *floats = m.scratch_floats;
    model_free(&m);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// One layer's weights, ready for the kernels

typedef struct {
    const float *qkv, *o, *up, *down;
} lweights;

// Mapped matrices as they are; the others built into scratch (threads split the pieces).
static void layer_ready(const model *m, int l, float *scratch, lweights *out) {
    const mlayer *L = &m->w->layers[l];
    const wsrc *src[4] = {&L->qkv, &L->o, &L->up, &L->down};
    const float **dst[4] = {&out->qkv, &out->o, &out->up, &out->down};
    for (int k = 0; k < 4; k++) {
        if (src[k]->direct) { *dst[k] = src[k]->direct; continue; }
        wsrc_build(src[k], scratch + src[k]->off);
        *dst[k] = scratch + src[k]->off;
    }
}

// Asks the kernel to read layer l's bytes ahead (they are read next; a no-op when cached).
static void layer_prefetch(const model *m, int l) {
    const mlayer *L = &m->w->layers[l];
    const wsrc *src[4] = {&L->qkv, &L->o, &L->up, &L->down};
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < src[k]->np; i++) {
            const piece *p = &src[k]->p[i];
            uintptr_t a = (uintptr_t)(p->t->data + (size_t)p->first * st_dtype_size(p->t->dtype));
            uintptr_t b = a + (size_t)p->count * st_dtype_size(p->t->dtype);
            a &= ~(page - 1);
            madvise((void *)a, b - a, MADV_WILLNEED);
        }
}

// Row r of a table into out[d].
static void table_row(const wtable *tb, int64_t r, int d, float *out) {
    if (tb->direct) memcpy(out, tb->direct + r * d, sizeof(float) * (size_t)d);
    else st_convert(tb->t, r * d, d, out);
}

// ---------------------------------------------------------------------------------------------
// Forward pass of one document through one block

typedef struct {
    float *xn;   // [R, d] normed input to a sub-block (R: the unit's stacked rows)
    float *o;    // [R, d] sub-block output
    float *o2;   // [R, d] second sub-block output (parallel residual)
    float *qkv;  // [R, (H+2KV)*D]
    float *att;  // [R, H*D]
    float *s;    // [threads, kern_attention_scratch] attention scores and stacked rows, per thread
    float *up;   // [R, F or 2F]
} work;

// The documents of one unit: their rows are stacked in every product; RoPE and attention
// see each document alone (positions from 0, keys of its own rows only).
typedef struct {
    const model_doc *docs; // [n]
    int n;
} unit;

// Buffers for R stacked rows (a unit) whose longest document has Tmax tokens.
static work *work_new(const model_config *c, int R, int Tmax) {
    int H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim, F = c->d_ff;
    size_t Rd = (size_t)R * c->d;
    kern_att_shape as = {Tmax, H, KV, D, c->sliding_window};
    size_t sizes[] = {Rd, Rd, Rd, (size_t)R * (H + 2 * KV) * D, (size_t)R * H * D,
                      (size_t)omp_get_max_threads() * kern_attention_scratch(&as),
                      (size_t)R * (c->gated_mlp ? 2 : 1) * F};
    work *w = xmalloc(sizeof *w);
    float **bufs[] = {&w->xn, &w->o, &w->o2, &w->qkv, &w->att, &w->s, &w->up};
    size_t total = 0;
    for (int i = 0; i < 7; i++) total += sizes[i];
    float *arena = xmalloc(sizeof(float) * total); // w->xn owns it
    for (size_t i = 0, off = 0; i < 7; off += sizes[i], i++) *bufs[i] = arena + off;
    return w;
}

static void work_free(work *w) {
    if (w) free(w->xn);
    free(w);
}

// y[T, out] = x W^T + b, or with add y += x W^T + b (a sub-block's last product into the
// residual stream, kernels.h).
static void project(int add, float *y, const float *x, int ldx, const float *W, kern_wlayout wl, const float *b,
                    int T, int in, int out) {
    if (add) kern_linear_add(y, x, ldx, W, wl, b, T, in, out);
    else kern_linear_forward(y, x, ldx, W, wl, b, T, in, out);
}

// out[R, d] = (add: +=) attention sub-block applied to in[R, d], the R rows of unit u; cos/sin
// [Tmax, rot/2] RoPE tables.
static void attn_block(const model *m, const mlayer *L, const lweights *w, work *s, const float *in, float *out,
                       int add, int R, const unit *u, const float *cos_t, const float *sin_t) {
    const model_config *c = &m->c;
    int H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim, ld = (H + 2 * KV) * D;
    kern_linear_forward(s->qkv, in, c->d, w->qkv, m->w->wl, L->bqkv, R, c->d, ld);
    if (L->q_norm) // OLMo2: RMSNorm over the whole q and k projections, before RoPE
        for (int t = 0; t < R; t++) {
            float *r = s->qkv + (size_t)t * ld;
            kern_norm_forward(r, NULL, r, L->q_norm, NULL, 1, H * D, c->norm_eps, NORM_RMS);
            kern_norm_forward(r + H * D, NULL, r + H * D, L->k_norm, NULL, 1, KV * D, c->norm_eps, NORM_RMS);
        }
    for (int i = 0, t0 = 0; i < u->n; t0 += u->docs[i++].T) { // each document from position 0
        int T = u->docs[i].T;
        float *qkv = s->qkv + (size_t)t0 * ld; // [T, ld]
        if (c->rot_dim) {
            kern_rope_forward(qkv, T, ld, H, D, c->rot_dim, cos_t, sin_t);
            kern_rope_forward(qkv + H * D, T, ld, KV, D, c->rot_dim, cos_t, sin_t);
        }
        kern_att_shape as = {T, H, KV, D, c->sliding_window};
        kern_attention_forward(s->att + (size_t)t0 * H * D, H * D, qkv, ld, qkv + H * D, ld, qkv + (H + KV) * D, ld,
                               &as, NULL, s->s);
    }
    project(add, out, s->att, H * D, w->o, m->w->wl, L->bo, R, H * D, c->d);
}

// out[T, d] = (add: +=) MLP applied to in[T, d] (rows are independent: T may be a unit's R).
static void mlp_block(const model *m, const mlayer *L, const lweights *w, work *s, const float *in, float *out,
                      int add, int T) {
    const model_config *c = &m->c;
    int F = c->d_ff, d = c->d;
    if (c->gated_mlp) { // up holds [gate | up] per row; act(gate) * up goes into the gate half
        kern_linear_forward(s->up, in, d, w->up, m->w->wl, L->bup, T, d, 2 * F);
        kern_glu_forward(s->up, 2 * F, s->up, s->up + F, 2 * F, T, F, c->act);
        project(add, out, s->up, 2 * F, w->down, m->w->wl, L->bdown, T, F, d);
    } else {
        kern_linear_forward(s->up, in, d, w->up, m->w->wl, L->bup, T, d, F);
        kern_act_forward(s->up, (int64_t)T * F, c->act);
        project(add, out, s->up, F, w->down, m->w->wl, L->bdown, T, F, d);
    }
}

// Block l on the residual streams x[T, d] of unit u (T: its R stacked rows), in place.
static void block(const model *m, int l, const lweights *w, work *s, float *x, int T, const unit *u,
                  const float *cos_t, const float *sin_t) {
    const model_config *c = &m->c;
    const mlayer *L = &m->w->layers[l];
    int64_t n = (int64_t)T * c->d;
    float eps = c->norm_eps;
    if (c->post_norm) { // OLMo2: h += norm(attn(h)); h += norm(mlp(h))
        attn_block(m, L, w, s, x, s->o, 0, T, u, cos_t, sin_t);
        kern_norm_forward(s->xn, NULL, s->o, L->ln1_w, NULL, T, c->d, eps, c->norm);
        kern_add(x, x, s->xn, n);
        mlp_block(m, L, w, s, x, s->o, 0, T);
        kern_norm_forward(s->xn, NULL, s->o, L->ln2_w, NULL, T, c->d, eps, c->norm);
        kern_add(x, x, s->xn, n);
    } else if (c->parallel_residual) { // GPT-NeoX: h += mlp(ln2(h)) + attn(ln1(h)), the sum first as in HF
        kern_norm_forward(s->xn, NULL, x, L->ln2_w, L->ln2_b, T, c->d, eps, c->norm);
        mlp_block(m, L, w, s, s->xn, s->o2, 0, T);
        kern_norm_forward(s->xn, NULL, x, L->ln1_w, L->ln1_b, T, c->d, eps, c->norm);
        attn_block(m, L, w, s, s->xn, s->o2, 1, T, u, cos_t, sin_t); // mlp + attn, in place
        kern_add(x, x, s->o2, n);
    } else { // pre-norm: h += attn(ln1(h)); h += mlp(ln2(h)), each added by its last product
        kern_norm_forward(s->xn, NULL, x, L->ln1_w, L->ln1_b, T, c->d, eps, c->norm);
        attn_block(m, L, w, s, s->xn, x, 1, T, u, cos_t, sin_t);
        kern_norm_forward(s->xn, NULL, x, L->ln2_w, L->ln2_b, T, c->d, eps, c->norm);
        mlp_block(m, L, w, s, s->xn, x, 1, T);
    }
}

// Hidden state 0: x[T, d] = embedding rows (+ learned positions; Gemma: * sqrt(d)); tmp[d].
static void embed(const model *m, const int32_t *ids, int T, float *x, float *tmp) {
    const model_config *c = &m->c;
    int d = c->d;
    for (int t = 0; t < T; t++) {
        float *r = x + (size_t)t * d;
        table_row(&m->w->embed, ids[t], d, r);
        if (m->w->pos.t) {
            table_row(&m->w->pos, t, d, tmp);
            kern_add(r, r, tmp, d);
        }
        if (c->embed_scale) {
            float k = sqrtf((float)d); // HF: a tensor of sqrt(d) in the compute dtype
            for (int i = 0; i < d; i++) r[i] *= k;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A batch, in units, layer by layer

typedef struct {
    const model *m;
    const model_doc *docs;
    int n, last, Tmax;
    int nu, Rmax;     // units; the most rows of one
    int *first;       // [nu + 1] first document of each unit (docs first[u] .. first[u+1]-1)
    model_doc_cb cb;
    void *ctx;
    int from;         // the index the residual streams start at (0: the ids)
    model_leave_cb leave;
    char *gone;       // [nu] units that left the batch
    int running;      // units still running (atomic)
    int par;          // units in parallel, each single-threaded; else one doc, kernels in parallel
    float *X;         // residual streams, doc i at xoff[i]: [T_i, d]; a unit's docs are adjacent
    const float *x0;  // from > 0: X's first contents
    int64_t *xoff;
    int *stop;        // [n] the callback's nonzero value
    work **wk;        // [nwk] per thread, made on first use
    int nwk;
    float *cos_t, *sin_t; // [Tmax, rot/2]
    float *scratch[2]; // [m->scratch_floats] each: one layer's converted matrices
    int nscratch;     // 2 when threads overlap layers (batch_run), else 1; 0: every layer mapped
    lweights *lw;     // [L + 1] layer l's weights, once made ready (index l: block l - 1)
    char *tok;        // task-dependence tokens: [2] the scratches, [L + 1] mapped layers, [nu] units
    double *busy;     // [nwk] seconds each thread spent in unit steps and conversions
    double region;    // wall seconds inside the parallel region over the tasks
} batch;

static int check_doc(const model *m, const int32_t *ids, int T, int doc, ibc_err *err) {
    const model_config *c = &m->c;
    char where[32] = "";
    if (doc >= 0) snprintf(where, sizeof where, " document %d:", doc);
    if (T < 1) return ibc_fail(err, IBC_EINPUT, "%s:%s empty sequence", m->dir, where);
    if (m->w->pos.t && T > c->max_pos)
        return ibc_fail(err, IBC_EINPUT, "%s:%s %d tokens exceed the %d learned positions", m->dir, where, T, c->max_pos);
    for (int t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= c->vocab)
            return ibc_fail(err, IBC_EINPUT, "%s:%s token id %d at position %d is outside the vocabulary of %d",
                            m->dir, where, ids[t], t, c->vocab);
    return 0;
}

static void batch_init(batch *b) {
    const model_config *c = &b->m->c;
    int64_t total = 0;
    b->xoff = xmalloc(sizeof(int64_t) * (size_t)b->n);
    b->first = xmalloc(sizeof(int) * (size_t)(b->n + 1));
    for (int i = 0, rows = 0; i < b->n; i++) {
        if (i == 0 || !b->docs[i].join) { // a new unit
            b->first[b->nu++] = i;
            rows = 0;
        }
        rows += b->docs[i].T;
        if (rows > b->Rmax) b->Rmax = rows;
        b->xoff[i] = total;
        total += (int64_t)b->docs[i].T * c->d;
        if (b->docs[i].T > b->Tmax) b->Tmax = b->docs[i].T;
    }
    b->first[b->nu] = b->n;
    b->X = xmalloc(sizeof(float) * (size_t)total);
    if (b->from > 0) memcpy(b->X, b->x0, sizeof(float) * (size_t)total);
    b->gone = xcalloc((size_t)b->nu, 1);
    b->running = b->nu;
    b->stop = xcalloc((size_t)b->n, sizeof(int));
    b->nwk = b->par ? omp_get_max_threads() : 1;
    b->wk = xcalloc((size_t)b->nwk, sizeof(work *));
    b->busy = xcalloc((size_t)b->nwk, sizeof(double));
    if (c->rot_dim) { // cos/sin of pos * inv_freq, the angle rounded to f32 as in HF
        int half = c->rot_dim / 2;
        b->cos_t = xmalloc(sizeof(float) * (size_t)b->Tmax * half * 2);
        b->sin_t = b->cos_t + (size_t)b->Tmax * half;
        kern_rope_table(b->cos_t, b->sin_t, b->m->inv_freq, half, b->Tmax);
    }
    b->nscratch = b->m->scratch_floats ? 1 + (b->nwk > 1) : 0; // two when layers overlap (batch_run)
    for (int k = 0; k < b->nscratch; k++) b->scratch[k] = xmalloc(sizeof(float) * (size_t)b->m->scratch_floats);
    b->lw = xcalloc((size_t)c->n_layers + 1, sizeof(lweights));
    b->tok = xcalloc((size_t)c->n_layers + 3 + (size_t)b->nu, 1);
}

static void batch_free(batch *b) {
    for (int i = 0; i < b->nwk; i++) work_free(b->wk[i]);
    free(b->wk); free(b->busy); free(b->X); free(b->xoff); free(b->first); free(b->stop); free(b->gone); free(b->cos_t);
    free(b->scratch[0]); free(b->scratch[1]); free(b->lw); free(b->tok);
}

// A unit runs while it is in the batch and any of its documents does.
static int unit_live(const batch *b, int k) {
    if (b->gone[k]) return 0;
    for (int i = b->first[k]; i < b->first[k + 1]; i++)
        if (!b->stop[i]) return 1;
    return 0;
}

// Unit k to hidden-state index l (0: embeddings; 1..L: block l - 1, then at L the final norm),
// then the callback of each of its documents still running.
static void unit_step(batch *b, int k, int l, const lweights *w) {
    const model *m = b->m;
    const model_config *c = &m->c;
    int tid = b->par ? omp_get_thread_num() : 0, i0 = b->first[k], i1 = b->first[k + 1];
    double t0 = omp_get_wtime();
    if (!b->wk[tid]) b->wk[tid] = work_new(c, b->Rmax, b->Tmax);
    work *s = b->wk[tid];
    unit u = {b->docs + i0, i1 - i0};
    float *x = b->X + b->xoff[i0]; // [R, d]: the unit's documents, stacked
    int R = (int)((b->xoff[i1 - 1] - b->xoff[i0]) / c->d) + b->docs[i1 - 1].T;
    const float *h = x;
    if (l == 0)
        for (int i = i0; i < i1; i++) embed(m, b->docs[i].ids, b->docs[i].T, b->X + b->xoff[i], s->o);
    else {
        block(m, l - 1, w, s, x, R, &u, b->cos_t, b->sin_t);
        if (l == c->n_layers) { // index L: after the final norm
            kern_norm_forward(s->xn, NULL, x, m->w->lnf_w, m->w->lnf_b, R, c->d, c->norm_eps, c->norm);
            h = s->xn;
        }
    }
    for (int i = i0; b->cb && i < i1; i++)
        if (!b->stop[i]) b->stop[i] = b->cb(b->ctx, i, l, h + (b->xoff[i] - b->xoff[i0]), b->docs[i].T, c->d);
    int live = unit_live(b, k), others;
#pragma omp atomic read
    others = b->running;
    others -= live;
    if (b->leave && live && l < b->last && b->leave(b->ctx, i0, i1 - i0, l, x, R, others)) b->gone[k] = 1, live = 0;
    if (!live) {
#pragma omp atomic
        b->running--;
    }
    b->busy[tid] += omp_get_wtime() - t0;
}

// Layer l's weights (l >= 1: block l - 1) made ready into a scratch (of two, by parity; or
// the only one), and the next block's bytes asked for. Work, counted in busy.
static void layer_step(batch *b, int l) {
    const model *m = b->m;
    int tid = b->par ? omp_get_thread_num() : 0;
    double t0 = omp_get_wtime();
    layer_ready(m, l - 1, b->scratch[(l - 1) % (b->nscratch ? b->nscratch : 1)], &b->lw[l]);
    if (l < m->c.n_layers) layer_prefetch(m, l);
    b->busy[tid] += omp_get_wtime() - t0;
}

// Every unit through hidden states 0..last, each layer's weights made ready once.
// One thread (model_forward): layer by layer, the conversion split over the threads.
// Threads (model_forward_docs): OpenMP tasks, (unit k, layer l) after (k, l - 1) and after
// layer l's weights are ready; with two scratches, layer l's conversion into scratch
// (l - 1) % 2 waits only for every task of layer l - 2, the scratch's previous user. So a
// thread that finds no unit left at layer l goes on with a unit at l + 1 instead of waiting at
// a barrier, and one converts the next layer while the others compute. Mapped layers wait for
// nothing. Layers after every unit stopped still run their (empty) tasks and conversions. A
// unit's steps, and so its bits, are the same in any order.
static void batch_run(batch *b) {
    const model *m = b->m;
    if (m->c.n_layers > b->from) layer_prefetch(m, b->from);
    if (!b->par) {
        for (int l = b->from ? b->from + 1 : 0, live = b->nu; l <= b->last && live > 0; l++) {
            if (l > 0) layer_step(b, l);
            live = 0;
            for (int k = 0; k < b->nu; k++) {
                if (!unit_live(b, k)) continue;
                unit_step(b, k, l, &b->lw[l]);
                live += unit_live(b, k);
            }
        }
        return;
    }
    int units_at = m->c.n_layers + 3;
    double t0 = omp_get_wtime();
#pragma omp parallel
#pragma omp single
    for (int l = b->from ? b->from + 1 : 0; l <= b->last; l++) {
        int wt = b->nscratch && l > 0 ? (l - 1) % b->nscratch : 2 + l; // layer l's weights' token
        if (l > 0) {
#pragma omp task depend(inout : b->tok[wt]) firstprivate(l)
            layer_step(b, l);
        }
        for (int k = 0; k < b->nu; k++) {
#pragma omp task depend(in : b->tok[wt]) depend(inout : b->tok[units_at + k]) firstprivate(k, l)
            if (unit_live(b, k)) unit_step(b, k, l, &b->lw[l]);
        }
    }
    b->region += omp_get_wtime() - t0;
}

int model_forward_docs(const model *m, const model_doc *docs, int n, int last_layer,
                       model_doc_cb cb, void *ctx, double *idle, ibc_err *err) {
    return model_forward_docs_opts(m, docs, n, last_layer, NULL, cb, ctx, idle, err);
}

int model_forward_docs_opts(const model *m, const model_doc *docs, int n, int last_layer, const model_batch_opts *o,
                            model_doc_cb cb, void *ctx, double *idle, ibc_err *err) {
    static const model_batch_opts none = {0, NULL, NULL};
    o = o ? o : &none;
    if (last_layer < 0 || last_layer > m->c.n_layers)
        return ibc_fail(err, IBC_EINPUT, "%s: hidden state %d requested; this model has 0..%d", m->dir, last_layer,
                        m->c.n_layers);
    if (o->from < 0 || (o->from > 0 && (o->from >= last_layer || !o->x)))
        return ibc_fail(err, IBC_EINPUT, "%s: a batch from hidden state %d to %d", m->dir, o->from, last_layer);
    for (int i = 0; i < n; i++) {
        int rc = check_doc(m, docs[i].ids, docs[i].T, i, err);
        if (rc) return rc;
    }
    if (n < 1) return 0;
    batch b = {.m = m, .docs = docs, .n = n, .last = last_layer, .cb = cb, .ctx = ctx, .from = o->from, .x0 = o->x,
               .leave = o->leave, .par = 1};
    batch_init(&b);
    batch_run(&b);
    double busy = 0; // the region of wall w held nwk threads for w each: what they did not use, they waited
    for (int t = 0; t < b.nwk; t++) busy += b.busy[t];
    if (idle) *idle += b.region * b.nwk - busy;
    batch_free(&b);
    return 0;
}

// model_forward's callback, adapted to the batch's.
typedef struct {
    model_layer_cb cb;
    void *ctx;
} one_cb;

static int one_adapt(void *ctx, int doc, int l, const float *h, int T, int d) {
    (void)doc;
    one_cb *o = ctx;
    return o->cb ? o->cb(o->ctx, l, h, T, d) : 0;
}

int model_forward(const model *m, const int32_t *ids, int T, model_layer_cb cb, void *ctx,
                  float *logits, ibc_err *err) {
    int rc = check_doc(m, ids, T, -1, err);
    if (rc) return rc;
    const model_config *c = &m->c;
    model_doc doc = {ids, T, 0};
    one_cb o = {cb, ctx};
    batch b = {.m = m, .docs = &doc, .n = 1, .last = c->n_layers, .cb = one_adapt, .ctx = &o, .par = 0};
    batch_init(&b);
    batch_run(&b);
    rc = b.stop[0];
    if (rc == 0 && logits) { // the final norm's output is still in the work buffer
        const wtable *lm = &m->w->lm_head;
        float *W = lm->direct ? NULL : xmalloc(sizeof(float) * (size_t)c->vocab * c->d);
        if (W) st_convert(lm->t, 0, (int64_t)c->vocab * c->d, W);
        kern_linear_forward(logits, b.wk[0]->xn, c->d, W ? W : lm->direct, KERN_W_OUT_IN, NULL, T, c->d, c->vocab);
        free(W);
    }
    batch_free(&b);
    return rc;
}
