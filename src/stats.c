#include "ibc/stats.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_multifit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// Two-sided p of a correlation r on df degrees of freedom.
static double r_pvalue(double r, double df) {
    if (!(df > 0) || isnan(r)) return NAN;
    if (fabs(r) >= 1) return 0;
    double t = r * sqrt(df / ((1 - r) * (1 + r)));
    return 2 * gsl_cdf_tdist_Q(fabs(t), df);
}

void st_pearson(const double *x, const double *y, int n, double *r, double *p) {
    *r = *p = NAN;
    if (n < 3) return;
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
    if (sxx == 0 || syy == 0) return;
    *r = sxy / sqrt(sxx * syy);
    if (*r > 1) *r = 1;
    if (*r < -1) *r = -1;
    *p = r_pvalue(*r, n - 2);
}

typedef struct { double v; int i; } vi;
static int by_value(const void *a, const void *b) {
    double x = ((const vi *)a)->v, y = ((const vi *)b)->v;
    return (x > y) - (x < y);
}

void st_rank(const double *x, int n, double *rk) {
    vi *s = malloc(sizeof(vi) * (size_t)(n ? n : 1));
    if (!s) return;
    for (int i = 0; i < n; i++) s[i] = (vi){x[i], i};
    qsort(s, (size_t)n, sizeof(vi), by_value);
    for (int a = 0; a < n;) {
        int b = a;
        while (b + 1 < n && s[b + 1].v == s[a].v) b++;
        double mean = (a + b) / 2.0 + 1; // ties share the mean of their 1-based ranks
        for (int k = a; k <= b; k++) rk[s[k].i] = mean;
        a = b + 1;
    }
    free(s);
}

void st_spearman(const double *x, const double *y, int n, double *rho, double *p) {
    *rho = *p = NAN;
    if (n < 3) return;
    double *rx = malloc(sizeof(double) * (size_t)n), *ry = malloc(sizeof(double) * (size_t)n);
    if (rx && ry) {
        st_rank(x, n, rx);
        st_rank(y, n, ry);
        st_pearson(rx, ry, n, rho, p);
    }
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
    double *rx = malloc(sizeof(double) * (size_t)n), *ry = malloc(sizeof(double) * (size_t)n);
    if (rx && ry && !residuals(x, Z, n, k, rx) && !residuals(y, Z, n, k, ry)) {
        double pp;
        st_pearson(rx, ry, n, r, &pp);
        *p = r_pvalue(*r, n - 2 - k);
    }
    free(rx);
    free(ry);
}
