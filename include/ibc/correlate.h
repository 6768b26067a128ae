// correlate: `ibc correlate`, the compression metrics against benchmark scores (method.md §7).
//
// Inputs are read by resdir: results folders (their NAME.h5, or every */NAME.h5 below, e.g.
// Slurm task folders; a folder without HDF5 through its summary.csv) or .h5 files; checkpoints
// of all inputs are combined (a name seen twice: the first wins). --per-layer and log_params
// need the HDF5 file (one-line IBC_EINPUT otherwise).
// Each is matched to a table row by its name, through the alias file when given. For every
// metric (H_mean, complexity_k, expressivity_k, optimality_k, pref_info) x benchmark column
// and their per-model mean ("mean"), over the models with both values (with --per-layer also
// every per-layer value, named like I_X1@3 for hidden state 3):
//   correlations.csv  metric,benchmark,n,spearman_rho,spearman_p,pearson_r,pearson_p, then for
//                     S in spearman, pearson: S_ci_lo,S_ci_hi (percentile bootstrap interval),
//                     S_bca_lo,S_bca_hi (BCa interval), S_perm_p (permutation p); the level is
//                     95%, `resamples` bootstrap resamples and permutations from ibc's rng seeded
//                     with `seed` (the same index sets for every row with the same n; stats.h)
//   regression.csv    metric,benchmark,covariates,n,term,coef,se,t,p,r2,adj_r2,loo_r2
//   partial.csv       metric,benchmark,covariates,n,partial_r,p        (with covariates)
//   correlations.md   the paper's form: metric, benchmark, r, p, n
//   matched.csv       every matched checkpoint with its metrics and scores
//   plots/            information_plane_k<K>.{png,svg} and <metric>__<benchmark>.{png,svg}
//   resamples.csv     with dump_resamples: kind (boot|perm),n,b,indices (space-separated), the
//                     exact index sets behind every interval and p (for tests against scipy)
// All or nothing: every output is written to a temporary first (plots drawn in a staging
// folder), every target checked, and only then are they renamed into place; a failure before
// that leaves no .tmp and the previous set as it was.
// Unmatched names are listed on stderr and in unmatched.txt. Fewer than 3 matched models is
// an IBC_EINPUT error.
#ifndef IBC_CORRELATE_H
#define IBC_CORRELATE_H

#include "ibc/benchtab.h"
#include "ibc/err.h"
#include "ibc/resdir.h"
#include "ibc/stats.h"

typedef struct {
    const char *const *inputs;
    int n_inputs;
    const char *benchmarks;  // CSV
    const char *name_cols;   // default "model"
    const char *exclude;     // non-benchmark numeric columns (default rank,params_b,Parameters,step,shots)
    const char *aliases;     // CSV or NULL
    const char *covariates;  // "" or "log_params"
    const char *out;         // output folder
    bt_dups dups;
    int plots;               // draw with gnuplot
    int per_layer;           // also H@l, I_Xk@l, I_Yk@l, I_pref@l for every tracked layer l
    int resamples;           // bootstrap resamples = permutations; 0 means 10,000
    unsigned long long seed; // of the resamples
    int dump_resamples;      // also write resamples.csv
} corr_opts;

// Not collective: one process reads, computes and writes.
int corr_run(const corr_opts *o, ibc_err *err);

// The summary metrics against each benchmark of o->benchmarks, in memory (for `ibc report`):
// the same statistics and intervals as correlations.csv, for every (metric, benchmark) with at
// least 3 models, with the values behind them. o->inputs are not read: set is used instead.
typedef struct {
    int metric, bench, n;       // index in RD_METRICS, index in bnames, models
    double rho, rho_p, r, r_p;  // Spearman, Pearson and their t-based p
    st_resampled s[2];          // [0] Spearman, [1] Pearson: intervals and permutation p
    double *x, *y;              // [n] the metric, the score
} corr_pair;

typedef struct {
    char **bnames;              // [nb] benchmark columns, then "mean"
    int nb, matched, n_pairs;
    corr_pair *pairs;           // [n_pairs]
} corr_summary;

int corr_summarize(const corr_opts *o, const rd_set *set, corr_summary *out, ibc_err *err);
void corr_summary_free(corr_summary *s);

// corrplot.c: the gnuplot plots (plots/ above) of set, row [set->n] (table row or -1) and
// score [rows, nb], drawn into folder dir; IBC_ESYS when gnuplot fails.
int corr_plots(const char *dir, const rd_set *set, const int *row, const double *score, int nb, const char **bnames,
               ibc_err *err);

#endif
