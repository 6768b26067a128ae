#include "ibc/train.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ibc/model.h"
#include "ibc/rng.h"

#define G(t, ptr) ((t)->g + ((ptr) - (t)->p)) // the gradient of a parameter view

int tr_init(trainer *t, const model_config *c, uint64_t seed, ibc_err *err) {
    memset(t, 0, sizeof *t);
    if (c->arch != ARCH_LLAMA || !c->tied || c->n_heads % c->n_kv_heads || c->rot_dim != c->head_dim)
        return ibc_fail(err, IBC_EINPUT, "train: a tied llama with full-width RoPE and whole GQA groups is expected");
    t->c = *c;
    int rc = ckpt_layout(c, &t->e, &t->ne, err);
    if (rc) return rc;
    for (int i = 0; i < t->ne; i++) t->n += t->e[i].numel;
    t->p = calloc((size_t)t->n, sizeof(float));
    t->g = calloc((size_t)t->n, sizeof(float));
    t->m = calloc((size_t)t->n, sizeof(float));
    t->v = calloc((size_t)t->n, sizeof(float));
    t->L = calloc((size_t)c->n_layers, sizeof(tr_layer));
    t->inv_freq = malloc(sizeof(float) * (size_t)c->head_dim);
    if (!t->p || !t->g || !t->m || !t->v || !t->L || !t->inv_freq) { tr_free(t); return ibc_fail(err, IBC_ESYS, "out of memory"); }
    model_rope_inv_freq(c, t->inv_freq);
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
    memset(t, 0, sizeof *t);
}

void tr_zero_grad(trainer *t) { memset(t->g, 0, sizeof(float) * (size_t)t->n); }

// y[T, out] = x[T, in] W[out, in]^T
static void mm(const float *x, const float *W, int T, int in, int out, float *y) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, out, in, 1.0f, x, in, W, in, 0.0f, y, out);
}

// dx[T, in] += dy[T, out] W ; dW[out, in] += dy^T x
static void mm_back(const float *x, const float *W, const float *dy, int T, int in, int out, float *dx, float *dW) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, in, out, 1.0f, dy, out, W, in, 1.0f, dx, in);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, T, 1.0f, dy, out, x, in, 1.0f, dW, in);
}

// RMSNorm: y = x r w with r = 1 / sqrt(mean(x^2) + eps); keeps r [T].
static void rms(const float *x, const float *w, int T, int d, float eps, float *y, float *r) {
    for (int t = 0; t < T; t++) {
        double ss = 0;
        for (int i = 0; i < d; i++) ss += (double)x[t * d + i] * x[t * d + i];
        r[t] = (float)(1.0 / sqrt(ss / d + eps));
        for (int i = 0; i < d; i++) y[t * d + i] = x[t * d + i] * r[t] * w[i];
    }
}

// dx += r w dy - x r^3 / d * sum_j w_j dy_j x_j ; dw += sum_t dy x r
static void rms_back(const float *x, const float *w, const float *r, const float *dy, int T, int d, float *dx, float *dw) {
    for (int t = 0; t < T; t++) {
        const float *xr = x + t * d, *dr = dy + t * d;
        double s = 0;
        for (int i = 0; i < d; i++) s += (double)w[i] * dr[i] * xr[i];
        float k = (float)(s * r[t] * r[t] * r[t] / d);
        for (int i = 0; i < d; i++) {
            dx[t * d + i] += r[t] * w[i] * dr[i] - xr[i] * k;
            dw[i] += dr[i] * xr[i] * r[t];
        }
    }
}

// RoPE (rotate_half pairs i, i + D/2) on heads of D dims in rows of width ld; sign -1 undoes it
// (the backward pass of a rotation is the rotation by the opposite angle).
static void rope(float *v, int T, int ld, int heads, int D, const float *cs, const float *sn, float sign) {
    int half = D / 2;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < heads; h++) {
            float *p = v + (size_t)t * ld + (size_t)h * D;
            for (int i = 0; i < half; i++) {
                float c = cs[t * half + i], s = sign * sn[t * half + i], a = p[i], b = p[i + half];
                p[i] = a * c - b * s;
                p[i + half] = b * c + a * s;
            }
        }
}

static float silu(float x) { return x / (1.0f + expf(-x)); }

typedef struct {
    float *xin, *xn1, *r1, *q, *k, *v, *P, *ao, *xmid, *xn2, *r2, *gg, *uu, *hh;
} acts;

double tr_step_seq(trainer *t, const int32_t *ids, int T, int backward, float scale) {
    const model_config *c = &t->c;
    int d = c->d, H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim, F = c->d_ff, V = c->vocab, NL = c->n_layers;
    int HD = H * D, KD = KV * D, half = D / 2, grp = H / KV;
    float eps = c->norm_eps, sc = 1.0f / sqrtf((float)D);
    size_t per = (size_t)T * (4 * d + 2 * HD + 2 * KD + 3 * F + 2) + (size_t)H * T * T;
    size_t tail = (size_t)T * (2 * d + 1 + V + d) + (size_t)T * half * 2;
    float *arena = calloc(per * NL + tail, sizeof(float));
    if (!arena) return NAN;
    acts *A = malloc(sizeof(acts) * (size_t)NL);
    float *a = arena;
#define TAKE(n) (a += (n), a - (n))
    for (int l = 0; l < NL; l++) {
        acts *s = &A[l];
        s->xin = TAKE(T * d); s->xn1 = TAKE(T * d); s->r1 = TAKE(T); s->q = TAKE(T * HD); s->k = TAKE(T * KD);
        s->v = TAKE(T * KD); s->P = TAKE(H * T * T); s->ao = TAKE(T * HD); s->xmid = TAKE(T * d);
        s->xn2 = TAKE(T * d); s->r2 = TAKE(T); s->gg = TAKE(T * F); s->uu = TAKE(T * F); s->hh = TAKE(T * F);
    }
    float *xL = TAKE(T * d), *xnf = TAKE(T * d), *rf = TAKE(T), *logits = TAKE(T * V), *tmp = TAKE(T * d);
    float *cs = TAKE(T * half), *sn = TAKE(T * half);
#undef TAKE
    for (int p = 0; p < T; p++)
        for (int i = 0; i < half; i++) {
            float ang = (float)p * t->inv_freq[i];
            cs[p * half + i] = cosf(ang);
            sn[p * half + i] = sinf(ang);
        }
    // ---- forward ----
    for (int p = 0; p < T; p++) memcpy(A[0].xin + p * d, t->embed + (size_t)ids[p] * d, sizeof(float) * (size_t)d);
    for (int l = 0; l < NL; l++) {
        acts *s = &A[l];
        const tr_layer *W = &t->L[l];
        rms(s->xin, W->ln1, T, d, eps, s->xn1, s->r1);
        mm(s->xn1, W->wq, T, d, HD, s->q);
        mm(s->xn1, W->wk, T, d, KD, s->k);
        mm(s->xn1, W->wv, T, d, KD, s->v);
        rope(s->q, T, HD, H, D, cs, sn, 1);
        rope(s->k, T, KD, KV, D, cs, sn, 1);
        for (int h = 0; h < H; h++) {
            int g = h / grp;
            float *P = s->P + (size_t)h * T * T;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, sc, s->q + h * D, HD, s->k + g * D, KD, 0.0f, P, T);
            for (int i = 0; i < T; i++) { // causal softmax
                float *row = P + (size_t)i * T, mx = row[0], sum = 0;
                for (int j = 1; j <= i; j++) mx = row[j] > mx ? row[j] : mx;
                for (int j = 0; j < T; j++) sum += row[j] = j <= i ? expf(row[j] - mx) : 0.0f;
                for (int j = 0; j <= i; j++) row[j] /= sum;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, 1.0f, P, T, s->v + g * D, KD, 0.0f, s->ao + h * D, HD);
        }
        mm(s->ao, W->wo, T, HD, d, tmp);
        for (int i = 0; i < T * d; i++) s->xmid[i] = s->xin[i] + tmp[i];
        rms(s->xmid, W->ln2, T, d, eps, s->xn2, s->r2);
        mm(s->xn2, W->wg, T, d, F, s->gg);
        mm(s->xn2, W->wu, T, d, F, s->uu);
        for (int i = 0; i < T * F; i++) s->hh[i] = silu(s->gg[i]) * s->uu[i];
        mm(s->hh, W->wd, T, F, d, tmp);
        float *next = l + 1 < NL ? A[l + 1].xin : xL;
        for (int i = 0; i < T * d; i++) next[i] = s->xmid[i] + tmp[i];
    }
    rms(xL, t->norm, T, d, eps, xnf, rf);
    mm(xnf, t->embed, T, d, V, logits); // tied: logits = h E^T
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
    loss /= npred;
    if (backward) {
        // ---- backward ----
        size_t nb = (size_t)T * (3 * d + 2 * HD + 2 * KD + 3 * F) + (size_t)T * T;
        float *b = calloc(nb, sizeof(float));
        float *dx = b, *dxn = dx + T * d, *dmid = dxn + T * d, *dq = dmid + T * d, *dao = dq + T * HD,
              *dk = dao + T * HD, *dv = dk + T * KD, *dh = dv + T * KD, *dg = dh + T * F, *du = dg + T * F, *dP = du + T * F;
        mm_back(xnf, t->embed, logits, T, d, V, dxn, G(t, t->embed));
        rms_back(xL, t->norm, rf, dxn, T, d, dx, G(t, t->norm));
        for (int l = NL - 1; l >= 0; l--) {
            acts *s = &A[l];
            const tr_layer *W = &t->L[l];
            // MLP: x_out = x_mid + down(silu(gate(xn2)) * up(xn2))
            memcpy(dmid, dx, sizeof(float) * (size_t)T * d);
            memset(dh, 0, sizeof(float) * (size_t)T * F);
            mm_back(s->hh, W->wd, dx, T, F, d, dh, G(t, W->wd));
            for (int i = 0; i < T * F; i++) {
                float sg = 1.0f / (1.0f + expf(-s->gg[i]));
                du[i] = dh[i] * s->gg[i] * sg;
                dg[i] = dh[i] * s->uu[i] * sg * (1.0f + s->gg[i] * (1.0f - sg));
            }
            memset(dxn, 0, sizeof(float) * (size_t)T * d);
            mm_back(s->xn2, W->wg, dg, T, d, F, dxn, G(t, W->wg));
            mm_back(s->xn2, W->wu, du, T, d, F, dxn, G(t, W->wu));
            rms_back(s->xmid, W->ln2, s->r2, dxn, T, d, dmid, G(t, W->ln2));
            // attention: x_mid = x_in + o(attn(xn1))
            memcpy(dx, dmid, sizeof(float) * (size_t)T * d);
            memset(dao, 0, sizeof(float) * (size_t)T * HD);
            mm_back(s->ao, W->wo, dmid, T, HD, d, dao, G(t, W->wo));
            memset(dq, 0, sizeof(float) * (size_t)T * HD);
            memset(dk, 0, sizeof(float) * (size_t)T * KD);
            memset(dv, 0, sizeof(float) * (size_t)T * KD);
            for (int h = 0; h < H; h++) {
                int g = h / grp;
                const float *P = s->P + (size_t)h * T * T;
                // dP = dao_h V_g^T ; dV_g += P^T dao_h
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, 1.0f, dao + h * D, HD, s->v + g * D, KD, 0.0f, dP, T);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, 1.0f, P, T, dao + h * D, HD, 1.0f, dv + g * D, KD);
                for (int i = 0; i < T; i++) { // softmax: dS = P (dP - sum_j P dP), scaled
                    float *row = dP + (size_t)i * T;
                    double dot = 0;
                    for (int j = 0; j <= i; j++) dot += (double)P[(size_t)i * T + j] * row[j];
                    for (int j = 0; j < T; j++) row[j] = j <= i ? sc * P[(size_t)i * T + j] * (row[j] - (float)dot) : 0.0f;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, 1.0f, dP, T, s->k + g * D, KD, 1.0f, dq + h * D, HD);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, 1.0f, dP, T, s->q + h * D, HD, 1.0f, dk + g * D, KD);
            }
            rope(dq, T, HD, H, D, cs, sn, -1);
            rope(dk, T, KD, KV, D, cs, sn, -1);
            memset(dxn, 0, sizeof(float) * (size_t)T * d);
            mm_back(s->xn1, W->wq, dq, T, d, HD, dxn, G(t, W->wq));
            mm_back(s->xn1, W->wk, dk, T, d, KD, dxn, G(t, W->wk));
            mm_back(s->xn1, W->wv, dv, T, d, KD, dxn, G(t, W->wv));
            rms_back(s->xin, W->ln1, s->r1, dxn, T, d, dx, G(t, W->ln1));
        }
        for (int p = 0; p < T; p++) {
            float *ge = G(t, t->embed) + (size_t)ids[p] * d;
            for (int i = 0; i < d; i++) ge[i] += dx[p * d + i];
        }
        free(b);
    }
    free(A);
    free(arena);
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
    float **data = malloc(sizeof(float *) * (size_t)t->ne);
    if (!data) return ibc_fail(err, IBC_ESYS, "out of memory");
    float *p = t->p;
    for (int i = 0; i < t->ne; i++) data[i] = p, p += t->e[i].numel;
    int rc = ckpt_write(dir, &t->c, t->e, t->ne, data, err);
    free(data);
    return rc;
}
