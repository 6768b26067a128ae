// correlate: `ibc correlate`, the compression metrics against benchmark scores (method.md §7).
//
// Inputs are results folders (their NAME.h5, or every */NAME.h5 below, e.g. Slurm task folders)
// or .h5 files; checkpoints of all inputs are combined (a name seen twice: the first wins).
// Each is matched to a table row by its name, through the alias file when given. For every
// metric (H_mean, complexity_k, expressivity_k, optimality_k, pref_info) x benchmark column
// and their per-model mean ("mean"), over the models with both values (with --per-layer also
// every per-layer value, named like I_X1@3 for hidden state 3):
//   correlations.csv  metric,benchmark,n,spearman_rho,spearman_p,pearson_r,pearson_p
//   regression.csv    metric,benchmark,covariates,n,term,coef,se,t,p,r2,adj_r2,loo_r2
//   partial.csv       metric,benchmark,covariates,n,partial_r,p        (with covariates)
//   correlations.md   the paper's form: metric, benchmark, r, p, n
//   matched.csv       every matched checkpoint with its metrics and scores
//   plots/            information_plane_k<K>.{png,svg} and <metric>__<benchmark>.{png,svg}
// Unmatched names are listed on stderr and in unmatched.txt. Fewer than 3 matched models is
// an IBC_EINPUT error.
#ifndef IBC_CORRELATE_H
#define IBC_CORRELATE_H

#include "ibc/benchtab.h"
#include "ibc/err.h"

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
} corr_opts;

int corr_run(const corr_opts *o, ibc_err *err);

#endif
