// The transformer kernels (include/ibc/kernels.h): forward and backward side by side.
#include "ibc/kernels.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "lanes.h"

// ---------------------------------------------------------------------------------------------
// Linear: y = x W^T + b

// y[T, n] = T copies of b[n]: vector stores (memcpy's string copy of rows of a few KB was ~4% of
// a Pythia-160M forward pass).
LANES_WIDE static void bias_rows(float *y, const float *b, int T, int n) {
    for (int t = 0; t < T; t++, y += n)
#pragma omp simd
        for (int j = 0; j < n; j++) y[j] = b[j];
}

// y[T, out] = x W^T + beta y.
static void linear(float *y, const float *x, int ldx, const float *W, kern_wlayout wl, int T, int in, int out,
                   float beta) {
    if (wl == KERN_W_OUT_IN) // W [out, in]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, out, in, 1.0f, x, ldx, W, in, beta, y, out);
    else // W [in, out] (GPT-2 Conv1D)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, out, in, 1.0f, x, ldx, W, out, beta, y, out);
}

void kern_linear_forward(float *y, const float *x, int ldx, const float *W, kern_wlayout wl,
                         const float *b, int T, int in, int out) {
    if (b) bias_rows(y, b, T, out); // y starts as the bias rows, then sgemm adds x W^T (beta 1)
    linear(y, x, ldx, W, wl, T, in, out, b ? 1.0f : 0.0f);
}

// The bias first, row by row (each element alone: exact), then sgemm adds x W^T (beta 1).
LANES_WIDE static void add_bias_rows(float *y, const float *b, int T, int n) {
    for (int t = 0; t < T; t++, y += n)
#pragma omp simd
        for (int j = 0; j < n; j++) y[j] += b[j];
}

void kern_linear_add(float *y, const float *x, int ldx, const float *W, kern_wlayout wl, const float *b, int T,
                     int in, int out) {
    if (b) add_bias_rows(y, b, T, out);
    linear(y, x, ldx, W, wl, T, in, out, 1.0f);
}

void kern_linear_backward(float *dx, float *dW, const float *x, const float *W, const float *dy, int T,
                          int in, int out) {
    // dx[T, in] += dy[T, out] W[out, in]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, in, out, 1.0f, dy, out, W, in, 1.0f, dx, in);
    // dW[out, in] += dy^T x
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, T, 1.0f, dy, out, x, in, 1.0f, dW, in);
}

// ---------------------------------------------------------------------------------------------
// Norms

// One row of kern_norm_forward; returns r.
LANES_WIDE static float norm_row(float *yr, const float *xr, const float *w, const float *b, int n, float eps,
                                model_norm kind) {
    double mu = kind == NORM_LAYER ? lanes_dsum(xr, n, 0.0, 1) / n : 0.0;
    double ss = lanes_dsum(xr, n, mu, 2);
    float r = (float)(1.0 / sqrt(ss / n + eps));
    if (kind == NORM_RMS && !b) { // x - 0.0 in double is x: the same value, without the casts
#pragma omp simd
        for (int i = 0; i < n; i++) yr[i] = xr[i] * r * w[i];
    } else {
#pragma omp simd
        for (int i = 0; i < n; i++) yr[i] = (float)(xr[i] - mu) * r * w[i] + (b ? b[i] : 0.0f);
    }
    return r;
}

void kern_norm_forward(float *y, float *rstd, const float *x, const float *w, const float *b, int T, int n,
                       float eps, model_norm kind) {
#pragma omp parallel for if (T > 1) schedule(static)
    for (int t = 0; t < T; t++) {
        float r = norm_row(y + (size_t)t * n, x + (size_t)t * n, w, b, n, eps, kind);
        if (rstd) rstd[t] = r;
    }
}

void kern_rmsnorm_backward(float *dx, float *dw, const float *x, const float *w, const float *rstd,
                           const float *dy, int T, int n) {
    // y_i = x_i r w_i with r = (mean(x^2) + eps)^-1/2, dr/dx_i = -x_i r^3 / n
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * n, *dr = dy + (size_t)t * n;
        float r = rstd[t];
        double s = 0;
        for (int i = 0; i < n; i++) s += (double)w[i] * dr[i] * xr[i];
        float k = (float)(s * r * r * r / n);
        for (int i = 0; i < n; i++) {
            dx[(size_t)t * n + i] += r * w[i] * dr[i] - xr[i] * k;
            dw[i] += dr[i] * xr[i] * r;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RoPE

void kern_rope_table(float *cos_t, float *sin_t, const float *inv_freq, int half, int T) {
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            float a = (float)t * inv_freq[i];
            cos_t[(size_t)t * half + i] = cosf(a);
            sin_t[(size_t)t * half + i] = sinf(a);
        }
}

// (a, b) -> (a cos - b sin, b cos + a sin) with sin negated for the backward pass: the heads of
// one position p[heads x D] (head h at p + h D), angles cos_t/sin_t [rot/2].
LANES_WIDE static void rope_row(float *p, int heads, int D, int half, const float *co, const float *si, float sign) {
    for (int h = 0; h < heads; h++, p += D)
#pragma omp simd
        for (int i = 0; i < half; i++) {
            float a = p[i], b = p[i + half], s = sign * si[i];
            p[i] = a * co[i] - b * s;
            p[i + half] = b * co[i] + a * s;
        }
}

static void rope_rotate(float *v, int T, int ld, int heads, int D, int rot, const float *cos_t,
                        const float *sin_t, float sign) {
    int half = rot / 2;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++)
        rope_row(v + (size_t)t * ld, heads, D, half, cos_t + (size_t)t * half, sin_t + (size_t)t * half, sign);
}

void kern_rope_forward(float *v, int T, int ld, int heads, int D, int rot, const float *cos_t,
                       const float *sin_t) {
    rope_rotate(v, T, ld, heads, D, rot, cos_t, sin_t, 1.0f);
}

void kern_rope_backward(float *dv, int T, int ld, int heads, int D, int rot, const float *cos_t,
                        const float *sin_t) {
    rope_rotate(dv, T, ld, heads, D, rot, cos_t, sin_t, -1.0f);
}

// ---------------------------------------------------------------------------------------------
// Causal attention

// exp(row[j] - max) of one score row over its visible keys lo..i (row[j]: key j); keys k0..lo-1
// and i+1..r1-1 become 0. Returns 1 / the sum of the exps: the caller scales by it, the trainer
// each probability, the forward pass each output row (softmax(s) v = (exp(s - max) v) / sum).
// In f32: the maximum subtracted first (exact in any order); the sum in lanes_sum's fixed
// grouping (lane l: elements lo + l, lo + l + LANES_F, ...), taken in the same pass as the
// exps; a reciprocal to multiply by (a vector divide is ~20x a multiply).
LANES_WIDE static float softmax_exp_row(float *row, int k0, int lo, int i, int r1) {
    int n = i - lo + 1, j = 0;
    float mx = lanes_max(row + lo, n), acc[LANES_F] = {0}, *x = row + lo;
    for (int t = k0; t < lo; t++) row[t] = 0.0f;
    for (; j + LANES_F <= n; j += LANES_F) {
#pragma omp simd
        for (int l = 0; l < LANES_F; l++) x[j + l] = expf(x[j + l] - mx);
        for (int l = 0; l < LANES_F; l++) acc[l] += x[j + l];
    }
#pragma omp simd
    for (int t = j; t < n; t++) x[t] = expf(x[t] - mx);
    for (int l = 0; j + l < n; l++) acc[l] += x[j + l];
    for (int w = LANES_F / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++) acc[l] += acc[l + w];
    for (int t = i + 1; t < r1; t++) row[t] = 0.0f;
    return 1.0f / acc[0];
}

// y[i, 0..n) = x[i, 0..n) * s[i] for rows i < rows (ldy, ldx: row strides; y may be x). One call
// per block: a call per 64-float row cost as much as the multiplies.
LANES_WIDE static void scale_rows(float *y, int ldy, const float *x, int ldx, const float *s, int rows, int n) {
    for (int i = 0; i < rows; i++, y += ldy, x += ldx) {
        float si = s[i];
#pragma omp simd
        for (int j = 0; j < n; j++) y[j] = x[j] * si;
    }
}

// The exps of rows r0..r1-1 of scores sc (ld T; column j holds key k0 + j), causal and within
// the sliding window W (0: none); inv[r1 - r0] receives each row's 1 / sum.
static void causal_exp(float *sc, int r0, int r1, int k0, int W, int T, float *inv) {
    for (int i = r0; i < r1; i++) {
        int lo = W && i - W + 1 > k0 ? i - W + 1 : k0; // keys lo..i are visible
        inv[i - r0] = softmax_exp_row(sc + (size_t)(i - r0) * T - k0, k0, lo, i, r1);
    }
}

// The forward pass's own products (AVX-512 CPUs, D a multiple of 16). A thread keeps one kv
// group's keys transposed, K^T [D, keys], filled as its blocks reach further keys; then per
// tile of ATT_MR query rows of one head: their scores against the keys up to the tile's last
// row, their exps, and the exps times V, in L1 and in registers. OpenBLAS packs K, the exps
// and V again for every 64-row block and zeroes each score block first: a fifth of attention's
// time (docs/performance.md, twelfth section). Each score is one chain of fmaf over d = 0..D-1
// and each output element one chain over the keys in order, so a row's bits depend on its
// document only, never on the tiling, the block or the thread.
#define ATT_MR 8  // query rows per tile: 8 x 32 scores or outputs in 16 registers
#define ATT_NK 32 // keys per score tile

// Columns of K^T and of a score row: T and a tile's overhang past it.
static size_t att_cols(int T) { return ((size_t)T + 2 * ATT_NK - 1) / ATT_NK * ATT_NK; }

// Per thread: K^T [D, cols], scores [ATT_MR, cols], a dump row [D] (a missing row's output),
// and the group K^T holds and how many of its keys (2 floats, as ints).
static size_t att_own_floats(const kern_att_shape *s) {
    return ((size_t)s->D + ATT_MR) * att_cols(s->T) + (size_t)s->D + 2;
}

size_t kern_attention_scratch(const kern_att_shape *s) {
    size_t rows = (size_t)(s->H / s->KV) * KERN_ATT_BLOCK; // one kv group's query rows of a block
    size_t blas = rows * (size_t)s->T + 2 * rows * (size_t)s->D + rows, own = att_own_floats(s);
    return blas > own ? blas : own;
}

// The own products are built for AVX-512 (16 accumulators of 16 lanes; a clone for AVX2's 16
// registers would spill them), where fmaf is an instruction. Elsewhere, and in a build without
// clones, the BLAS path runs.
static int att_blas_forced;

void kern_attention_use_blas(int on) { att_blas_forced = on; }

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(IBC_NO_CLONES)
#define ATT_FMA __attribute__((target_clones("default", "avx512f"), noinline))
int kern_attention_own(int D) {
    static int avx512 = -1;
    if (avx512 < 0) {
        __builtin_cpu_init();
        avx512 = __builtin_cpu_supports("avx512f");
    }
    return avx512 && D % 16 == 0 && !att_blas_forced;
}
#else
#define ATT_FMA
int kern_attention_own(int D) {
    (void)D;
    return 0;
}
#endif

// sc[r, 0..ATT_NK) = scale * q_r . kt[:, 0..ATT_NK) for the ATT_MR rows q_r (kt: [D, ldk]).
ATT_FMA static void att_scores(float *sc, int ldsc, const float *const *qr, const float *kt, int ldk, int D,
                               float scale) {
    float a[ATT_MR][ATT_NK];
#pragma GCC unroll 8
    for (int r = 0; r < ATT_MR; r++)
#pragma omp simd
        for (int l = 0; l < ATT_NK; l++) a[r][l] = 0.0f;
    for (int d = 0; d < D; d++, kt += ldk) {
#pragma GCC unroll 8
        for (int r = 0; r < ATT_MR; r++) {
            float x = qr[r][d];
#pragma omp simd
            for (int l = 0; l < ATT_NK; l++) a[r][l] = fmaf(x, kt[l], a[r][l]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < ATT_MR; r++)
#pragma omp simd
        for (int l = 0; l < ATT_NK; l++) sc[(size_t)r * ldsc + l] = a[r][l] * scale;
}

// o_r[0..16 C) = inv[r] * the sum over keys j = 0..n-1, in order, of p[r, j] v[j, 0..16 C)
// (v: ld ldv); C chunks of 16 outputs a row, C constant after inlining: registers, not memory.
__attribute__((always_inline)) static inline void att_pv(float *const *o, const float *p, int ldp, const float *v,
                                                         int ldv, int n, const float *inv, const int C) {
    float a[ATT_MR][2][16];
#pragma GCC unroll 8
    for (int r = 0; r < ATT_MR; r++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++)
#pragma omp simd
            for (int l = 0; l < 16; l++) a[r][c][l] = 0.0f;
    for (int j = 0; j < n; j++, v += ldv) {
#pragma GCC unroll 8
        for (int r = 0; r < ATT_MR; r++) {
            float x = p[(size_t)r * ldp + j];
#pragma GCC unroll 4
            for (int c = 0; c < C; c++)
#pragma omp simd
                for (int l = 0; l < 16; l++) a[r][c][l] = fmaf(x, v[16 * c + l], a[r][c][l]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < ATT_MR; r++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++)
#pragma omp simd
            for (int l = 0; l < 16; l++) o[r][16 * c + l] = a[r][c][l] * inv[r];
}

// Output columns in chunks of 32, then of 16.
ATT_FMA static void att_values(float *const *o, const float *p, int ldp, const float *v, int ldv, int n,
                               const float *inv, int D) {
    float *oc[ATT_MR];
    for (int c = 0; c < D;) {
        int w = D - c >= 32 ? 32 : 16;
        for (int r = 0; r < ATT_MR; r++) oc[r] = o[r] + c;
        if (w == 32) att_pv(oc, p, ldp, v + c, ldv, n, inv, 2);
        else att_pv(oc, p, ldp, v + c, ldv, n, inv, 1);
        c += w;
    }
}

// The group and key count K^T holds: 2 floats, as ints, at the end of the thread's scratch.
static float *att_tag(float *scr, const kern_att_shape *s) { return scr + att_own_floats(s) - 2; }
static void att_tag_get(const float *tag, int *g, int *n) { memcpy(g, tag, sizeof *g), memcpy(n, tag + 1, sizeof *n); }
static void att_tag_set(float *tag, int g, int n) { memcpy(tag, &g, sizeof g), memcpy(tag + 1, &n, sizeof n); }

// att_group on the own products: kv group g, query rows r0..r1-1 of each of its heads.
static void att_group_own(float *out, int ldo, const float *q, int ldq, const float *k, int ldk, const float *v,
                          int ldv, const kern_att_shape *s, int g, int r0, int r1, float *scr) {
    int G = s->H / s->KV, D = s->D, W = s->window, T = s->T, ldt = (int)att_cols(T);
    int k0 = W && r0 - W + 1 > 0 ? r0 - W + 1 : 0; // keys k0..r1-1
    float *kt = scr, *sc = kt + (size_t)D * ldt, *dump = sc + (size_t)ATT_MR * ldt, *tag = att_tag(scr, s);
    float inv[ATT_MR], scale = 1.0f / sqrtf((float)D);
    int have, tg, want = k0 + (r1 - k0 + ATT_NK - 1) / ATT_NK * ATT_NK; // the last score tile's end
    att_tag_get(tag, &tg, &have);
    if (tg != g) have = 0;
    for (int j = have; j < want; j++) { // key j in column j; zero past the last key
        const float *kr = k + (size_t)j * ldk + (size_t)g * D;
        for (int d = 0; d < D; d++) kt[(size_t)d * ldt + j] = j < T ? kr[d] : 0.0f;
    }
    if (want > have || tg != g) att_tag_set(tag, g, want > have ? want : have);
    for (int h = g * G; h < (g + 1) * G; h++)
        for (int i0 = r0; i0 < r1; i0 += ATT_MR) {
            int mr = r1 - i0 < ATT_MR ? r1 - i0 : ATT_MR, e = i0 + mr; // rows i0..e-1 see keys up to e-1
            const float *qr[ATT_MR];
            float *orow[ATT_MR];
            for (int r = 0; r < ATT_MR; r++) // a missing row repeats the last, its output dumped
                qr[r] = q + (size_t)(i0 + (r < mr ? r : mr - 1)) * ldq + (size_t)h * D;
            for (int j = k0; j < e; j += ATT_NK) att_scores(sc + (j - k0), ldt, qr, kt + j, ldt, D, scale);
            for (int r = 0; r < ATT_MR; r++) {
                int i = i0 + r, lo = W && i - W + 1 > k0 ? i - W + 1 : k0;
                inv[r] = r < mr ? softmax_exp_row(sc + (size_t)r * ldt - k0, k0, lo, i, e) : 0.0f;
                orow[r] = r < mr ? out + (size_t)i * ldo + (size_t)h * D : dump;
            }
            att_values(orow, sc, ldt, v + (size_t)k0 * ldv + (size_t)g * D, ldv, e - k0, inv, D);
        }
}

// Attention of the G = H / KV query heads of kv group g over query rows r0..r1-1, stacked: their
// rows are copied into qs [G m, D] so that one sgemm scores them all against the keys the block
// sees, and one more multiplies by V (K = D is small, so a G-times taller product packs the keys
// and values once instead of G times). sc [G m, T] (ld T) scores, os [G m, D] the output rows.
static void att_group(float *out, int ldo, const float *q, int ldq, const float *k, int ldk, const float *v,
                      int ldv, const kern_att_shape *s, int g, int r0, int r1, float *sc) {
    if (kern_attention_own(s->D)) {
        att_group_own(out, ldo, q, ldq, k, ldk, v, ldv, s, g, r0, r1, sc);
        return;
    }
    int G = s->H / s->KV, D = s->D, T = s->T, W = s->window, m = r1 - r0;
    int k0 = W && r0 - W + 1 > 0 ? r0 - W + 1 : 0, nk = r1 - k0; // keys k0..r1-1
    // One head per group (no GQA): its rows are already a matrix in q and out, read and written
    // in place (the same products, only the row stride differs).
    const float *qs = q + (size_t)r0 * ldq + (size_t)g * D;
    float *os = out + (size_t)r0 * ldo + (size_t)g * D;
    int ldqs = ldq, ldos = ldo;
    if (G > 1) {
        float *buf = sc + (size_t)G * KERN_ATT_BLOCK * T;
        for (int hh = 0; hh < G; hh++) // head g G + hh: rows hh m .. hh m + m - 1
            for (int i = 0; i < m; i++)
                memcpy(buf + ((size_t)hh * m + i) * D, q + (size_t)(r0 + i) * ldq + (size_t)(g * G + hh) * D, sizeof(float) * D);
        qs = buf, os = buf + (size_t)G * KERN_ATT_BLOCK * D, ldqs = ldos = D;
    }
    float *inv = sc + (size_t)G * KERN_ATT_BLOCK * ((size_t)T + 2 * (size_t)D); // [G m]: each row's 1 / sum
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, G * m, nk, D, 1.0f / sqrtf((float)D), qs, ldqs,
                k + (size_t)k0 * ldk + (size_t)g * D, ldk, 0.0f, sc, T);
    for (int hh = 0; hh < G; hh++) causal_exp(sc + (size_t)hh * m * T, r0, r1, k0, W, T, inv + (size_t)hh * m);
    // The exps times V, then each output row times its 1 / sum: D multiplies a row instead of nk.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, G * m, D, nk, 1.0f, sc, T, v + (size_t)k0 * ldv + (size_t)g * D,
                ldv, 0.0f, os, ldos);
    for (int hh = 0; hh < G; hh++) // G > 1: scaled on the way back to out's rows
        scale_rows(out + (size_t)r0 * ldo + (size_t)(g * G + hh) * D, ldo, os + (size_t)hh * m * ldos, ldos, inv + hh * m, m, D);
}

// The trainer's path (P given): one (head, block) at a time, P keeping every probability.
static void att_head(float *out, int ldo, const float *q, int ldq, const float *k, int ldk, const float *v,
                     int ldv, const kern_att_shape *s, int h, int r0, int r1, float *P) {
    int T = s->T, D = s->D, W = s->window, g = h / (s->H / s->KV); // GQA: repeat_interleave of kv heads
    int k0 = W && r0 - W + 1 > 0 ? r0 - W + 1 : 0, nk = r1 - k0;     // first key any row of the block sees
    float *sc = P + (size_t)h * T * T + (size_t)r0 * T + k0;          // [r1 - r0, nk] ld T
    float inv[KERN_ATT_BLOCK];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, nk, D, 1.0f / sqrtf((float)D),
                q + (size_t)r0 * ldq + (size_t)h * D, ldq, k + (size_t)k0 * ldk + (size_t)g * D, ldk, 0.0f, sc, T);
    causal_exp(sc, r0, r1, k0, W, T, inv);
    scale_rows(sc, T, sc, T, inv, r1 - r0, nk); // P itself: normalised
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, D, nk, 1.0f, sc, T, v + (size_t)k0 * ldv + (size_t)g * D,
                ldv, 0.0f, out + (size_t)r0 * ldo + (size_t)h * D, ldo);
    for (int i = r0; i < r1; i++) { // keys no row of the block sees: probability 0
        float *row = P + (size_t)h * T * T + (size_t)i * T;
        memset(row, 0, sizeof(float) * (size_t)k0);
        memset(row + r1, 0, sizeof(float) * (size_t)(T - r1));
    }
}

void kern_attention_forward(float *out, int ldo, const float *q, int ldq, const float *k, int ldk,
                            const float *v, int ldv, const kern_att_shape *s, float *P, float *scratch) {
    int nblk = (s->T + KERN_ATT_BLOCK - 1) / KERN_ATT_BLOCK, units = P ? s->H : s->KV;
    size_t per_thread = P ? 0 : kern_attention_scratch(s);
    // (head or kv group, row block) pairs in parallel; sgemm runs on the calling thread inside.
    // A thread's K^T starts empty in each call (k is another layer's).
#pragma omp parallel
    {
        float *mine = P ? NULL : scratch + (size_t)omp_get_thread_num() * per_thread;
        if (mine) att_tag_set(att_tag(mine, s), -1, 0);
#pragma omp for collapse(2) schedule(dynamic)
        for (int u = 0; u < units; u++)
            for (int b = 0; b < nblk; b++) {
                int r0 = b * KERN_ATT_BLOCK, r1 = r0 + KERN_ATT_BLOCK < s->T ? r0 + KERN_ATT_BLOCK : s->T;
                if (P) att_head(out, ldo, q, ldq, k, ldk, v, ldv, s, u, r0, r1, P);
                else att_group(out, ldo, q, ldq, k, ldk, v, ldv, s, u, r0, r1, mine);
            }
    }
}

void kern_attention_backward(float *dq, float *dk, float *dv, const float *dout, int ldo, const float *q,
                             int ldq, const float *k, int ldk, const float *v, int ldv, const float *P,
                             const kern_att_shape *s, float *dP) {
    int T = s->T, H = s->H, KV = s->KV, D = s->D;
    float scale = 1.0f / sqrtf((float)D);
    // Serial: query heads of one kv group add into the same dk, dv rows.
    for (int h = 0; h < H; h++) {
        int g = h / (H / KV);
        const float *doh = dout + (size_t)h * D, *qh = q + (size_t)h * D, *kg = k + (size_t)g * D,
                    *vg = v + (size_t)g * D;
        for (int r0 = 0; r0 < T; r0 += KERN_ATT_BLOCK) {
            int r1 = r0 + KERN_ATT_BLOCK < T ? r0 + KERN_ATT_BLOCK : T, m = r1 - r0, nk = r1; // keys 0..r1-1
            const float *Pb = P + (size_t)h * T * T + (size_t)r0 * T; // [m, nk] ld T
            // dP[m, nk] = dout_h V_g^T ; dV_g += P^T dout_h
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nk, D, 1.0f, doh + (size_t)r0 * ldo, ldo,
                        vg, ldv, 0.0f, dP, T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, D, m, 1.0f, Pb, T, doh + (size_t)r0 * ldo,
                        ldo, 1.0f, dv + (size_t)g * D, ldv);
            for (int i = r0; i < r1; i++) { // softmax: dS = P (dP - sum_j P dP), times the score scale
                float *row = dP + (size_t)(i - r0) * T;
                const float *pr = Pb + (size_t)(i - r0) * T;
                double dot = 0;
                for (int j = 0; j <= i; j++) dot += (double)pr[j] * row[j];
                for (int j = 0; j < nk; j++) row[j] = j <= i ? scale * pr[j] * (row[j] - (float)dot) : 0.0f;
            }
            // dQ_h += dS K_g ; dK_g += dS^T Q_h
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, nk, 1.0f, dP, T, kg, ldk, 1.0f,
                        dq + (size_t)r0 * ldq + (size_t)h * D, ldq);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, D, m, 1.0f, dP, T, qh + (size_t)r0 * ldq,
                        ldq, 1.0f, dk + (size_t)g * D, ldk);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MLP activations

// y[0..n) = act(x[0..n)): SiLU x sigmoid(x), GELU with erf, GELU's tanh approximation; four
// lanes at a time (libmvec, lanes.h).
LANES_WIDE static void act_vec(float *y, const float *x, int64_t n, model_act a) {
    if (a == ACT_SILU) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) y[j] = x[j] / (1.0f + expf(-x[j]));
    } else if (a == ACT_GELU) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) y[j] = 0.5f * x[j] * (1.0f + erff(x[j] * (float)M_SQRT1_2));
    } else {
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            y[j] = 0.5f * x[j] * (1.0f + tanhf(0.7978845608028654f * (x[j] + 0.044715f * x[j] * x[j] * x[j])));
    }
}

// One row of kern_glu_forward: h = act(g) * u, the product of the same two floats as one
// expression (h may be g: elementwise). SwiGLU, the common case, in one pass.
LANES_WIDE static void glu_row(float *h, const float *g, const float *u, int F, model_act a) {
    if (a == ACT_SILU) {
#pragma omp simd
        for (int j = 0; j < F; j++) h[j] = g[j] / (1.0f + expf(-g[j])) * u[j];
        return;
    }
    act_vec(h, g, F, a);
    for (int j = 0; j < F; j++) h[j] *= u[j];
}

void kern_glu_forward(float *h, int ldh, const float *g, const float *u, int ldg, int T, int F, model_act a) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) glu_row(h + (size_t)t * ldh, g + (size_t)t * ldg, u + (size_t)t * ldg, F, a);
}

void kern_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, int T, int F) {
    for (size_t i = 0; i < (size_t)T * F; i++) {
        float sg = 1.0f / (1.0f + expf(-g[i])); // silu(g) = g sg, silu'(g) = sg (1 + g (1 - sg))
        du[i] = dh[i] * g[i] * sg;
        dg[i] = dh[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
    }
}

void kern_act_forward(float *x, int64_t n, model_act a) {
    int64_t chunk = 4096; // independent pieces for the threads (each element alone: exact)
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < n; j += chunk) act_vec(x + j, x + j, n - j < chunk ? n - j : chunk, a);
}

// ---------------------------------------------------------------------------------------------
// Embeddings and the residual

void kern_embedding_forward(float *out, const float *table, const int32_t *ids, int T, int d) {
    for (int t = 0; t < T; t++) memcpy(out + (size_t)t * d, table + (size_t)ids[t] * d, sizeof(float) * (size_t)d);
}

void kern_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int T, int d) {
    for (int t = 0; t < T; t++) {
        float *row = dtable + (size_t)ids[t] * d;
        for (int i = 0; i < d; i++) row[i] += dout[(size_t)t * d + i];
    }
}

LANES_WIDE static void add_span(float *out, const float *a, const float *b, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void kern_add(float *out, const float *a, const float *b, int64_t n) {
    int64_t chunk = 4096; // independent pieces for the threads (each element alone: exact)
#pragma omp parallel for if (n > chunk) schedule(static)
    for (int64_t i = 0; i < n; i += chunk) add_span(out + i, a + i, b + i, n - i < chunk ? n - i : chunk);
}
