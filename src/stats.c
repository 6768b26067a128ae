#include "ibc/stats.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_multifit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ibc/mem.h"
#include "ibc/rng.h"

// Two-sided p of a correlation r on df degrees of freedom.
static double r_pvalue(double r, double df) {
    if (!(df > 0) || isnan(r)) return NAN;
    if (fabs(r) >= 1) return 0;
    double t = r * sqrt(df / ((1 - r) * (1 + r)));
    return 2 * gsl_cdf_tdist_Q(fabs(t), df);
}

// Pearson r of x, y [n] (NaN when a variance is 0), clamped to [-1, 1].
static double pearson_r(const double *x, const double *y, int n) {
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++) mx += x[i], my += y[i];
    mx /= n;
    my /= n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    if (sxx == 0 || syy == 0) return NAN;
    double r = sxy / sqrt(sxx * syy);
    return r > 1 ? 1 : r < -1 ? -1 : r;
}

void st_pearson(const double *x, const double *y, int n, double *r, double *p) {
    *r = *p = NAN;
    if (n < 3) return;
    *r = pearson_r(x, y, n);
    if (!isnan(*r)) *p = r_pvalue(*r, n - 2);
}

typedef struct { double v; int i; } vi;
static int by_value(const void *a, const void *b) {
    double x = ((const vi *)a)->v, y = ((const vi *)b)->v;
    return (x > y) - (x < y);
}

// Average ranks of x [n] into rk [n], with s [n] as scratch.
static void rank_into(const double *x, int n, double *rk, vi *s) {
    for (int i = 0; i < n; i++) s[i] = (vi){x[i], i};
    qsort(s, (size_t)n, sizeof(vi), by_value);
    for (int a = 0; a < n;) {
        int b = a;
        while (b + 1 < n && s[b + 1].v == s[a].v) b++;
        double mean = (a + b) / 2.0 + 1; // ties share the mean of their 1-based ranks
        for (int k = a; k <= b; k++) rk[s[k].i] = mean;
        a = b + 1;
    }
}

void st_rank(const double *x, int n, double *rk) {
    vi *s = xmalloc(sizeof(vi) * (size_t)(n ? n : 1));
    rank_into(x, n, rk, s);
    free(s);
}

void st_spearman(const double *x, const double *y, int n, double *rho, double *p) {
    *rho = *p = NAN;
    if (n < 3) return;
    double *rx = xmalloc(sizeof(double) * (size_t)n), *ry = xmalloc(sizeof(double) * (size_t)n);
    st_rank(x, n, rx);
    st_rank(y, n, ry);
    st_pearson(rx, ry, n, rho, p);
    free(rx);
    free(ry);
}

int st_ols_fit(const double *y, const double *X, int n, int k, st_ols *o) {
    memset(o, 0, sizeof *o);
    int p = k + 1;
    o->n = n;
    o->p = p;
    if (n <= p || p > 16) return -1;
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    gsl_matrix *A = gsl_matrix_alloc((size_t)n, (size_t)p), *cov = gsl_matrix_alloc((size_t)p, (size_t)p);
    gsl_matrix *xtx = gsl_matrix_calloc((size_t)p, (size_t)p);
    gsl_vector *b = gsl_vector_alloc((size_t)n), *c = gsl_vector_alloc((size_t)p);
    gsl_permutation *perm = gsl_permutation_alloc((size_t)p);
    gsl_matrix *inv = gsl_matrix_alloc((size_t)p, (size_t)p);
    gsl_multifit_linear_workspace *w = gsl_multifit_linear_alloc((size_t)n, (size_t)p);
    int rc = -1;
    for (int i = 0; i < n; i++) {
        gsl_matrix_set(A, (size_t)i, 0, 1.0);
        for (int j = 0; j < k; j++) gsl_matrix_set(A, (size_t)i, (size_t)j + 1, X[(size_t)i * k + j]);
        gsl_vector_set(b, (size_t)i, y[i]);
    }
    double chisq;
    // (X'X)^-1 by LU, to refuse singular designs and for the leverages h_ii = x_i' (X'X)^-1 x_i.
    gsl_blas_dgemm(CblasTrans, CblasNoTrans, 1.0, A, A, 0.0, xtx);
    int sign;
    if (gsl_linalg_LU_decomp(xtx, perm, &sign) == 0 && fabs(gsl_linalg_LU_det(xtx, sign)) > 1e-300 &&
        gsl_linalg_LU_invert(xtx, perm, inv) == 0 && gsl_multifit_linear(A, b, c, cov, &chisq, w) == 0) {
        double my = 0, sst = 0, press = 0, s2 = chisq / (n - p);
        for (int i = 0; i < n; i++) my += y[i];
        my /= n;
        for (int i = 0; i < n; i++) {
            double fit = 0, h = 0;
            for (int j = 0; j < p; j++) {
                fit += gsl_matrix_get(A, (size_t)i, (size_t)j) * gsl_vector_get(c, (size_t)j);
                for (int l = 0; l < p; l++)
                    h += gsl_matrix_get(A, (size_t)i, (size_t)j) * gsl_matrix_get(inv, (size_t)j, (size_t)l) *
                         gsl_matrix_get(A, (size_t)i, (size_t)l);
            }
            double e = y[i] - fit;
            sst += (y[i] - my) * (y[i] - my);
            press += (e / (1 - h)) * (e / (1 - h)); // the leave-one-out residual, without refitting
        }
        for (int j = 0; j < p; j++) {
            o->coef[j] = gsl_vector_get(c, (size_t)j);
            o->se[j] = sqrt(s2 * gsl_matrix_get(inv, (size_t)j, (size_t)j));
            o->t[j] = o->coef[j] / o->se[j];
            o->pval[j] = 2 * gsl_cdf_tdist_Q(fabs(o->t[j]), n - p);
        }
        o->r2 = sst > 0 ? 1 - chisq / sst : NAN;
        o->adj_r2 = 1 - (1 - o->r2) * (n - 1) / (n - p);
        o->loo_r2 = sst > 0 ? 1 - press / sst : NAN;
        rc = 0;
    }
    gsl_multifit_linear_free(w);
    gsl_matrix_free(A); gsl_matrix_free(cov); gsl_matrix_free(xtx); gsl_matrix_free(inv);
    gsl_vector_free(b); gsl_vector_free(c);
    gsl_permutation_free(perm);
    gsl_set_error_handler(old);
    return rc;
}

// Residuals of v on (1, Z) into res; -1 if the fit fails.
static int residuals(const double *v, const double *Z, int n, int k, double *res) {
    st_ols o;
    if (st_ols_fit(v, Z, n, k, &o)) return -1;
    for (int i = 0; i < n; i++) {
        double fit = o.coef[0];
        for (int j = 0; j < k; j++) fit += o.coef[j + 1] * Z[(size_t)i * k + j];
        res[i] = v[i] - fit;
    }
    return 0;
}

void st_partial(const double *x, const double *y, const double *Z, int n, int k, double *r, double *p) {
    *r = *p = NAN;
    double *rx = xmalloc(sizeof(double) * (size_t)n), *ry = xmalloc(sizeof(double) * (size_t)n);
    if (!residuals(x, Z, n, k, rx) && !residuals(y, Z, n, k, ry)) {
        double pp;
        st_pearson(rx, ry, n, r, &pp);
        *p = r_pvalue(*r, n - 2 - k);
    }
    free(rx);
    free(ry);
}

// ---------------------------------------------------------------------------------------------
// Resampling: bootstrap intervals and permutation p-values of a correlation

void st_plan_init(st_plan *p, int n, int B, uint64_t seed) {
    memset(p, 0, sizeof *p);
    p->n = n;
    p->B = B;
    double fact = 1;
    for (int i = 2; i <= n && fact <= B; i++) fact *= i;
    p->exact = fact <= B;
    rng r;
    rng_seed(&r, seed);
    p->boot = xmalloc(sizeof(int) * (size_t)B * (size_t)(n ? n : 1));
    for (size_t i = 0; i < (size_t)B * (size_t)n; i++) p->boot[i] = (int)rng_below(&r, (uint64_t)n);
    if (p->exact) return;
    p->perm = xmalloc(sizeof(int) * (size_t)B * (size_t)n);
    for (int b = 0; b < B; b++) { // Fisher-Yates
        int *q = p->perm + (size_t)b * n;
        for (int i = 0; i < n; i++) q[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = (int)rng_below(&r, (uint64_t)i + 1), t = q[i];
            q[i] = q[j];
            q[j] = t;
        }
    }
}

void st_plan_free(st_plan *p) {
    free(p->boot);
    free(p->perm);
    memset(p, 0, sizeof *p);
}

// Scratch for one resampled correlation of up to n points.
typedef struct {
    double *x, *y, *rx, *ry; // [n] each
    vi *s;                   // [n]
} scratch;

static double corr(const double *x, const double *y, int n, st_corr_kind k, scratch *w) {
    if (k == ST_PEARSON) return pearson_r(x, y, n);
    rank_into(x, n, w->rx, w->s);
    rank_into(y, n, w->ry, w->s);
    return pearson_r(w->rx, w->ry, n);
}

static int by_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// np.percentile(a, 100 q) of sorted a [B], method "linear", with numpy's two-sided lerp.
static double percentile(const double *a, int B, double q) {
    if (!(q >= 0 && q <= 1)) return NAN;
    double pos = q * (B - 1);
    int lo = (int)floor(pos), hi = lo + 1 < B ? lo + 1 : B - 1;
    double t = pos - lo, d = a[hi] - a[lo];
    return t >= 0.5 ? a[hi] - d * (1 - t) : a[lo] + d * t;
}

// The BCa levels (alpha_1, alpha_2) for the estimate th, sorted bootstrap values tb [B] and
// the jackknife acceleration of x, y [n] (Efron & Tibshirani eq. 14.14-14.15).
static void bca_levels(const double *x, const double *y, int n, st_corr_kind k, double th, const double *tb, int B,
                       double alpha, scratch *w, double lv[2]) {
    double below = 0;
    for (int b = 0; b < B; b++) below += (tb[b] < th) + (tb[b] <= th);
    double z0 = gsl_cdf_ugaussian_Pinv(below / (2.0 * B));
    double *ji = xmalloc(sizeof(double) * (size_t)n), mean = 0;
    for (int i = 0; i < n; i++) { // leave observation i out
        for (int j = 0, c = 0; j < n; j++)
            if (j != i) w->x[c] = x[j], w->y[c++] = y[j];
        ji[i] = corr(w->x, w->y, n - 1, k, w);
        mean += ji[i] / n;
    }
    double s2 = 0, s3 = 0;
    for (int i = 0; i < n; i++) {
        double d = mean - ji[i];
        s2 += d * d;
        s3 += d * d * d;
    }
    free(ji);
    double a = s3 / (6 * pow(s2, 1.5)), za[2] = {gsl_cdf_ugaussian_Pinv(alpha), -gsl_cdf_ugaussian_Pinv(alpha)};
    for (int s = 0; s < 2; s++) {
        double num = z0 + za[s], v = z0 + num / (1 - a * num);
        lv[s] = isfinite(v) ? gsl_cdf_ugaussian_P(v) : NAN;
    }
}

// Counts of the null values <= r + g and >= r - g over the permutations of plan p (or all n!).
static void perm_counts(const double *x, const double *y, int n, st_corr_kind k, const st_plan *p, double r,
                        scratch *w, double *le, double *ge, double *total) {
    const double *u = x, *v = y;
    if (k == ST_SPEARMAN) { // ranks are invariant under re-pairing: rank once
        double *rx = xmalloc(sizeof(double) * 2 * (size_t)n);
        rank_into(x, n, rx, w->s);
        rank_into(y, n, rx + n, w->s);
        u = rx;
        v = rx + n;
    }
    double g = fmax(1e-14, fabs(1e-14 * r));
    int *q = xmalloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) q[i] = i;
    *le = *ge = *total = 0;
    for (int b = 0;; b++) {
        const int *perm = p->exact ? q : p->perm + (size_t)b * n;
        if (!p->exact && b == p->B) break;
        for (int i = 0; i < n; i++) w->x[i] = u[perm[i]];
        double t = pearson_r(w->x, v, n);
        *le += t <= r + g;
        *ge += t >= r - g;
        *total += 1;
        if (p->exact) { // next permutation in lexicographic order; stop after the last
            int i = n - 2;
            while (i >= 0 && q[i] > q[i + 1]) i--;
            if (i < 0) break;
            int j = n - 1;
            while (q[j] < q[i]) j--;
            int t2 = q[i]; q[i] = q[j]; q[j] = t2;
            for (int a = i + 1, c = n - 1; a < c; a++, c--) t2 = q[a], q[a] = q[c], q[c] = t2;
        }
    }
    free(q);
    if (u != x) free((double *)u);
}

void st_corr_resample(const double *x, const double *y, int n, st_corr_kind k, const st_plan *p, double level,
                      st_resampled *o) {
    o->stat = o->pct_lo = o->pct_hi = o->bca_lo = o->bca_hi = o->p_perm = NAN;
    if (n < 3 || p->n != n || p->B < 1) return;
    scratch w = {xmalloc(sizeof(double) * (size_t)n), xmalloc(sizeof(double) * (size_t)n),
                 xmalloc(sizeof(double) * (size_t)n), xmalloc(sizeof(double) * (size_t)n), xmalloc(sizeof(vi) * (size_t)n)};
    double *tb = xmalloc(sizeof(double) * (size_t)p->B), *bx = xmalloc(sizeof(double) * 2 * (size_t)n);
    o->stat = corr(x, y, n, k, &w);
    int m = 0; // resamples where the statistic is defined (a resample may lack variance)
    for (int b = 0; b < p->B && !isnan(o->stat); b++) {
        const int *ix = p->boot + (size_t)b * n;
        for (int i = 0; i < n; i++) bx[i] = x[ix[i]], bx[n + i] = y[ix[i]];
        double t = corr(bx, bx + n, n, k, &w);
        // A resample that re-orders the whole data set equals the estimate in exact arithmetic;
        // snap rounding noise so that z0 counts it as a tie however the sums were ordered.
        if (fabs(t - o->stat) <= ST_TIE) t = o->stat;
        if (!isnan(t)) tb[m++] = t;
    }
    if (m > 0 && m >= p->B / 2) {
        qsort(tb, (size_t)m, sizeof(double), by_double);
        double alpha = (1 - level) / 2, lv[2];
        o->pct_lo = percentile(tb, m, alpha);
        o->pct_hi = percentile(tb, m, 1 - alpha);
        bca_levels(x, y, n, k, o->stat, tb, m, alpha, &w, lv);
        o->bca_lo = percentile(tb, m, lv[0]);
        o->bca_hi = percentile(tb, m, lv[1]);
    }
    if (!isnan(o->stat)) {
        double le, ge, total, adj = p->exact ? 0 : 1;
        perm_counts(x, y, n, k, p, o->stat, &w, &le, &ge, &total);
        o->p_perm = fmin(1, 2 * fmin((le + adj) / (total + adj), (ge + adj) / (total + adj)));
    }
    free(tb); free(bx);
    free(w.x); free(w.y); free(w.rx); free(w.ry); free(w.s);
}
