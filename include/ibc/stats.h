// stats: the statistics of method.md §7, with GSL for distributions and linear algebra.
//
// All p-values are two-sided, from Student's t with the degrees of freedom stated, as
// scipy.stats computes them: r -> t = r sqrt(df / (1 - r^2)).
#ifndef IBC_STATS_H
#define IBC_STATS_H

#include <stdint.h>

// Pearson r of x, y [n] and its p-value (df = n - 2). NaN when n < 3 or a variance is 0.
void st_pearson(const double *x, const double *y, int n, double *r, double *p);
// Spearman rho (Pearson of average ranks; ties share their mean rank) and its p (df = n - 2).
void st_spearman(const double *x, const double *y, int n, double *rho, double *p);
// Average ranks (1-based) of x [n] into rk [n].
void st_rank(const double *x, int n, double *rk);

// Ordinary least squares of y [n] on an intercept and the columns of X [n, k] (row-major).
typedef struct {
    int n, p;          // observations, parameters (k + 1)
    double coef[16], se[16], t[16], pval[16]; // [p]: intercept first, then X's columns
    double r2, adj_r2, loo_r2; // leave-one-out predictive R^2 = 1 - PRESS / SS_tot
} st_ols;

// 0 on success; -1 when n <= p or X'X is singular.
int st_ols_fit(const double *y, const double *X, int n, int k, st_ols *out);

// Partial correlation of x and y given the columns of Z [n, k]: Pearson of the residuals of
// x and y on (1, Z); p from t with df = n - 2 - k.
void st_partial(const double *x, const double *y, const double *Z, int n, int k, double *r, double *p);

// Resampling for a correlation (issue 14): a paired bootstrap over models and a permutation
// test, both driven by ibc's rng so that a seed gives the same numbers on every machine.
// Nothing here is collective; every function is pure apart from its outputs.
#define ST_TIE 1e-12

typedef enum { ST_PEARSON, ST_SPEARMAN } st_corr_kind;

// The resamples for n observations: B bootstrap index sets (n draws of rng_below(n) each) and
// B permutations (Fisher-Yates), generated in that order from rng_seed(seed). When n! <= B the
// permutation test enumerates all n! orders instead (exact = 1; perm is then NULL), as scipy's
// permutation_test does.
typedef struct {
    int n, B, exact;
    int *boot; // [B, n] indices into the observations
    int *perm; // [B, n] a permutation of 0..n-1 per row, or NULL when exact
} st_plan;

void st_plan_init(st_plan *p, int n, int B, uint64_t seed);
void st_plan_free(st_plan *p);

typedef struct {
    double stat;             // the correlation on the data
    double pct_lo, pct_hi;   // percentile interval at `level`
    double bca_lo, bca_hi;   // bias-corrected and accelerated interval (Efron & Tibshirani 14.3)
    double p_perm;           // two-sided permutation p: 2 min(P(null <= r), P(null >= r)), <= 1
} st_resampled;

// Bootstrap interval and permutation p of the correlation `kind` of x, y [n] under plan p
// (p->n == n), with scipy.stats' conventions: np.percentile's linear interpolation, z0 from
// the mean of the strict and weak ranks of the estimate among the B values, the acceleration
// from the leave-one-out jackknife, the permutation p with the +1 correction when sampled and
// without it when exact, and a relative tolerance of 1e-14 when counting ties with r.
// One difference from scipy, on purpose: bootstrap values within ST_TIE of the estimate are set
// to it (a resample that re-orders all n points gives the estimate up to rounding, and z0
// would otherwise count it on either side depending on summation order).
// A second difference: a resample without variance (e.g. one model drawn n times; likely with
// few models: 1 in n^(n-1)) has no correlation; scipy then returns NaN intervals, here the
// intervals are taken over the resamples where it is defined (NaN if fewer than half are).
void st_corr_resample(const double *x, const double *y, int n, st_corr_kind kind, const st_plan *p, double level,
                      st_resampled *out);

#endif
