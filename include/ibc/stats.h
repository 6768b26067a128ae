// stats: the statistics of method.md §7, with GSL for distributions and linear algebra.
//
// All p-values are two-sided, from Student's t with the degrees of freedom stated, as
// scipy.stats computes them: r -> t = r sqrt(df / (1 - r^2)).
#ifndef IBC_STATS_H
#define IBC_STATS_H

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

#endif
