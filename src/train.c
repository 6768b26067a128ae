#include "ibc/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ibc/kernels.h"
#include "ibc/mem.h"
#include "ibc/model.h"
#include "ibc/rng.h"

#define G(t, ptr) ((t)->g + ((ptr) - (t)->p)) // the gradient of a parameter view

// The activation block: every buffer's size for sequences of up to Tm tokens, one allocation.
static void tr_alloc_acts(trainer *t, int Tm) {
    const model_config *c = &t->c;
    size_t T = (size_t)Tm, d = (size_t)c->d, HD = (size_t)c->n_heads * c->head_dim,
           KD = (size_t)c->n_kv_heads * c->head_dim, F = (size_t)c->d_ff, H = (size_t)c->n_heads;
    size_t half = (size_t)c->head_dim / 2, NL = (size_t)c->n_layers;
    size_t blk = T < KERN_ATT_BLOCK ? T : KERN_ATT_BLOCK;
    t->A = xcalloc(NL, sizeof(tr_acts));
    size_t per_layer[14] = {T * d, T * d, T, T * HD, T * KD, T * KD, H * T * T, T * HD, T * d, T * d, T, T * F, T * F, T * F};
    size_t tail[18] = {T * d, T * d, T, T * (size_t)c->vocab, T * d, T * half, T * half,                   // forward
                       T * d, T * d, T * d, T * HD, T * HD, T * KD, T * KD, T * F, T * F, T * F, blk * T}; // backward
    float **tail_p[18] = {&t->xL, &t->xnf, &t->rf, &t->logits, &t->tmp, &t->cos_t, &t->sin_t, &t->dx, &t->dxn,
                          &t->dmid, &t->dq, &t->dao, &t->dk, &t->dv, &t->dh, &t->dg, &t->du, &t->dP};
    size_t total = 0;
    for (int i = 0; i < 14; i++) total += per_layer[i] * NL;
    for (int i = 0; i < 18; i++) total += tail[i];
    float *a = t->block = xcalloc(total, sizeof(float));
    for (size_t l = 0; l < NL; l++) {
        tr_acts *s = &t->A[l];
        float **slot[14] = {&s->xin, &s->xn1, &s->r1, &s->q, &s->k, &s->v, &s->P, &s->ao, &s->xmid, &s->xn2,
                            &s->r2, &s->gg, &s->uu, &s->hh};
        for (int i = 0; i < 14; i++) *slot[i] = a, a += per_layer[i];
    }
    for (int i = 0; i < 18; i++) *tail_p[i] = a, a += tail[i];
    kern_rope_table(t->cos_t, t->sin_t, t->inv_freq, (int)half, Tm); // rows do not depend on T
    t->max_T = Tm;
}

int tr_init(trainer *t, const model_config *c, int max_T, uint64_t seed, ibc_err *err) {
    memset(t, 0, sizeof *t);
    if (c->arch != ARCH_LLAMA || !c->tied || c->n_heads % c->n_kv_heads || c->rot_dim != c->head_dim)
        return ibc_fail(err, IBC_EINPUT, "train: a tied llama with full-width RoPE and whole GQA groups is expected");
    if (max_T < 2) return ibc_fail(err, IBC_EINPUT, "train: sequences of at least 2 tokens are needed");
    t->c = *c;
    int rc = ckpt_layout(c, &t->e, &t->ne, err);
    if (rc) return rc;
    for (int i = 0; i < t->ne; i++) t->n += t->e[i].numel;
    t->p = xcalloc((size_t)t->n, sizeof(float));
    t->g = xcalloc((size_t)t->n, sizeof(float));
    t->m = xcalloc((size_t)t->n, sizeof(float));
    t->v = xcalloc((size_t)t->n, sizeof(float));
    t->L = xcalloc((size_t)c->n_layers, sizeof(tr_layer));
    t->inv_freq = xmalloc(sizeof(float) * (size_t)c->head_dim);
    model_rope_inv_freq(c, t->inv_freq);
    tr_alloc_acts(t, max_T);
    rng r;
    rng_seed(&r, seed);
    float *p = t->p;
    // ckpt_layout's order: embed, then per layer ln1 q k v o ln2 gate up down, then norm.
    for (int i = 0; i < t->ne; i++) {
        const ckpt_entry *e = &t->e[i];
        int is_out = strstr(e->name, "o_proj") || strstr(e->name, "down_proj");
        double sd = 0.02 / (is_out ? sqrt(2.0 * c->n_layers) : 1.0);
        for (int64_t k = 0; k < e->numel; k++) p[k] = e->kind == CKPT_NORM ? 1.0f : (float)(sd * rng_normal(&r));
        if (i == 0) t->embed = p;
        else if (i == t->ne - 1) t->norm = p;
        else {
            tr_layer *L = &t->L[(i - 1) / 9];
            float **slot[9] = {&L->ln1, &L->wq, &L->wk, &L->wv, &L->wo, &L->ln2, &L->wg, &L->wu, &L->wd};
            *slot[(i - 1) % 9] = p;
        }
        p += e->numel;
    }
    return 0;
}

void tr_free(trainer *t) {
    free(t->e); free(t->p); free(t->g); free(t->m); free(t->v); free(t->L); free(t->inv_freq);
    free(t->A); free(t->block);
    memset(t, 0, sizeof *t);
}

void tr_zero_grad(trainer *t) { memset(t->g, 0, sizeof(float) * (size_t)t->n); }

// Layer l forward on its saved input A[l].xin [T, d]; the block output goes to next [T, d].
static void tr_layer_forward(trainer *t, int l, int T, float *next) {
    const model_config *c = &t->c;
    int d = c->d, H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim, F = c->d_ff, HD = H * D, KD = KV * D;
    tr_acts *s = &t->A[l];
    const tr_layer *W = &t->L[l];
    // attention: x_mid = x_in + o(attn(rope(q), rope(k), v)), q k v of xn1 = rms(x_in)
    kern_norm_forward(s->xn1, s->r1, s->xin, W->ln1, NULL, T, d, c->norm_eps, NORM_RMS);
    kern_linear_forward(s->q, s->xn1, d, W->wq, KERN_W_OUT_IN, NULL, T, d, HD);
    kern_linear_forward(s->k, s->xn1, d, W->wk, KERN_W_OUT_IN, NULL, T, d, KD);
    kern_linear_forward(s->v, s->xn1, d, W->wv, KERN_W_OUT_IN, NULL, T, d, KD);
    kern_rope_forward(s->q, T, HD, H, D, D, t->cos_t, t->sin_t);
    kern_rope_forward(s->k, T, KD, KV, D, D, t->cos_t, t->sin_t);
    kern_att_shape as = {T, H, KV, D, 0};
    kern_attention_forward(s->ao, HD, s->q, HD, s->k, KD, s->v, KD, &as, s->P, NULL);
    kern_linear_forward(t->tmp, s->ao, HD, W->wo, KERN_W_OUT_IN, NULL, T, HD, d);
    kern_add(s->xmid, s->xin, t->tmp, (int64_t)T * d);
    // MLP: x_out = x_mid + down(silu(gate(xn2)) * up(xn2)), xn2 = rms(x_mid)
    kern_norm_forward(s->xn2, s->r2, s->xmid, W->ln2, NULL, T, d, c->norm_eps, NORM_RMS);
    kern_linear_forward(s->gg, s->xn2, d, W->wg, KERN_W_OUT_IN, NULL, T, d, F);
    kern_linear_forward(s->uu, s->xn2, d, W->wu, KERN_W_OUT_IN, NULL, T, d, F);
    kern_glu_forward(s->hh, F, s->gg, s->uu, F, T, F, ACT_SILU);
    kern_linear_forward(t->tmp, s->hh, F, W->wd, KERN_W_OUT_IN, NULL, T, F, d);
    kern_add(next, s->xmid, t->tmp, (int64_t)T * d);
}

// Layer l backward: t->dx [T, d] holds d(loss)/d(x_out) and leaves holding d(loss)/d(x_in).
static void tr_layer_backward(trainer *t, int l, int T) {
    const model_config *c = &t->c;
    int d = c->d, H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim, F = c->d_ff, HD = H * D, KD = KV * D;
    const tr_acts *s = &t->A[l];
    const tr_layer *W = &t->L[l];
    size_t Td = (size_t)T * d;
    // MLP: the residual passes dx through to dmid; the MLP adds its part
    memcpy(t->dmid, t->dx, sizeof(float) * Td);
    memset(t->dh, 0, sizeof(float) * (size_t)T * F);
    kern_linear_backward(t->dh, G(t, W->wd), s->hh, W->wd, t->dx, T, F, d);
    kern_swiglu_backward(t->dg, t->du, t->dh, s->gg, s->uu, T, F);
    memset(t->dxn, 0, sizeof(float) * Td);
    kern_linear_backward(t->dxn, G(t, W->wg), s->xn2, W->wg, t->dg, T, d, F);
    kern_linear_backward(t->dxn, G(t, W->wu), s->xn2, W->wu, t->du, T, d, F);
    kern_rmsnorm_backward(t->dmid, G(t, W->ln2), s->xmid, W->ln2, s->r2, t->dxn, T, d);
    // attention: likewise from dmid to dx
    memcpy(t->dx, t->dmid, sizeof(float) * Td);
    memset(t->dao, 0, sizeof(float) * (size_t)T * HD);
    kern_linear_backward(t->dao, G(t, W->wo), s->ao, W->wo, t->dmid, T, HD, d);
    memset(t->dq, 0, sizeof(float) * (size_t)T * HD);
    memset(t->dk, 0, sizeof(float) * (size_t)T * KD);
    memset(t->dv, 0, sizeof(float) * (size_t)T * KD);
    kern_att_shape as = {T, H, KV, D, 0};
    kern_attention_backward(t->dq, t->dk, t->dv, t->dao, HD, s->q, HD, s->k, KD, s->v, KD, s->P, &as, t->dP);
    kern_rope_backward(t->dq, T, HD, H, D, D, t->cos_t, t->sin_t);
    kern_rope_backward(t->dk, T, KD, KV, D, D, t->cos_t, t->sin_t);
    memset(t->dxn, 0, sizeof(float) * Td);
    kern_linear_backward(t->dxn, G(t, W->wq), s->xn1, W->wq, t->dq, T, d, HD);
    kern_linear_backward(t->dxn, G(t, W->wk), s->xn1, W->wk, t->dk, T, d, KD);
    kern_linear_backward(t->dxn, G(t, W->wv), s->xn1, W->wv, t->dv, T, d, KD);
    kern_rmsnorm_backward(t->dx, G(t, W->ln1), s->xin, W->ln1, s->r1, t->dxn, T, d);
}

// Mean cross-entropy of ids[p + 1] given logits row p [T, V]; the rows become d(loss)/d(logits)
// times scale (the last row, which predicts nothing, zero).
static double tr_xent(float *logits, const int32_t *ids, int T, int V, float scale) {
    double loss = 0;
    int npred = T - 1;
    for (int p = 0; p < T; p++) { // softmax in place; logits become dlogits
        float *row = logits + (size_t)p * V, mx = row[0];
        double sum = 0;
        for (int j = 1; j < V; j++) mx = row[j] > mx ? row[j] : mx;
        for (int j = 0; j < V; j++) sum += row[j] = expf(row[j] - mx);
        if (p == T - 1) { memset(row, 0, sizeof(float) * (size_t)V); continue; }
        int y = ids[p + 1];
        loss -= log(row[y] / sum);
        float k = scale / (float)npred / (float)sum;
        for (int j = 0; j < V; j++) row[j] *= k;
        row[y] -= scale / (float)npred;
    }
    return loss / npred;
}

double tr_step_seq(trainer *t, const int32_t *ids, int T, int backward, float scale) {
    const model_config *c = &t->c;
    int d = c->d, V = c->vocab, NL = c->n_layers;
    if (T < 2 || T > t->max_T) return NAN;
    kern_embedding_forward(t->A[0].xin, t->embed, ids, T, d);
    for (int l = 0; l < NL; l++) tr_layer_forward(t, l, T, l + 1 < NL ? t->A[l + 1].xin : t->xL);
    kern_norm_forward(t->xnf, t->rf, t->xL, t->norm, NULL, T, d, c->norm_eps, NORM_RMS);
    kern_linear_forward(t->logits, t->xnf, d, t->embed, KERN_W_OUT_IN, NULL, T, d, V); // tied: h E^T
    double loss = tr_xent(t->logits, ids, T, V, scale);
    if (!backward) return loss;
    memset(t->dx, 0, sizeof(float) * (size_t)T * d);
    memset(t->dxn, 0, sizeof(float) * (size_t)T * d);
    kern_linear_backward(t->dxn, G(t, t->embed), t->xnf, t->embed, t->logits, T, d, V);
    kern_rmsnorm_backward(t->dx, G(t, t->norm), t->xL, t->norm, t->rf, t->dxn, T, d);
    for (int l = NL - 1; l >= 0; l--) tr_layer_backward(t, l, T);
    kern_embedding_backward(G(t, t->embed), t->dx, ids, T, d);
    return loss;
}

void tr_adamw(trainer *t, float lr, float b1, float b2, float eps, float wd, int step) {
    float c1 = 1.0f - powf(b1, (float)step), c2 = 1.0f - powf(b2, (float)step);
    float *p = t->p;
    for (int e = 0; e < t->ne; e++) {
        float decay = t->e[e].kind == CKPT_NORM ? 0.0f : wd;
        int64_t n = t->e[e].numel, o = p - t->p;
        for (int64_t i = o; i < o + n; i++) {
            t->m[i] = b1 * t->m[i] + (1 - b1) * t->g[i];
            t->v[i] = b2 * t->v[i] + (1 - b2) * t->g[i] * t->g[i];
            t->p[i] -= lr * ((t->m[i] / c1) / (sqrtf(t->v[i] / c2) + eps) + decay * t->p[i]);
        }
        p += n;
    }
}

int tr_save(const trainer *t, const char *dir, ibc_err *err) {
    float **data = xmalloc(sizeof(float *) * (size_t)t->ne);
    float *p = t->p;
    for (int i = 0; i < t->ne; i++) data[i] = p, p += t->e[i].numel;
    int rc = ckpt_write(dir, &t->c, t->e, t->ne, data, err);
    free(data);
    return rc;
}
