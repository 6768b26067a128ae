// resdir: results folders as `ibc correlate` and `ibc report` read them.
//
// An input is a results folder or a .h5 file. A folder is read through its NAME.h5 (every
// *.h5 in it; else those one or two levels below, e.g. Slurm task folders); a folder with no
// HDF5 file but a summary.csv is read through summary.csv (issue 11): its checkpoints then
// have the summary metrics only (n_layers = 0, params = 0), and rd_need_h5 refuses what
// needs more. Checkpoints of all inputs are combined; a name seen twice: the first wins.
// Spreads: summary.csv's `<metric>_sd` columns (the spread over anchor sets), when present.
// Nothing here is collective; the HDF5 files are read with the serial API on one process.
#ifndef IBC_RESDIR_H
#define IBC_RESDIR_H

#include <stdint.h>

#include "ibc/err.h"
#include "ibc/results.h"

#define RD_NMETRICS 14
extern const char *const RD_METRICS[RD_NMETRICS]; // H_mean, complexity_1..4, expressivity_1..4, optimality_1..4, pref_info

typedef struct {
    char *path;        // the .h5 file, or the summary.csv read in its place
    int h5;            // 1 when read from HDF5 (per-layer values, params)
    char *job;         // /run/job text, NULL without HDF5
    char *manifest;    // manifest.json beside it, NULL when absent
    uint64_t anchors;  // FNV-1a 64 of every /anchors dataset (name and bytes), 0 when unknown
} rd_source;

typedef struct {
    res_ckpt *r;       // [n] complete checkpoints
    int *src;          // [n] index into srcs
    double *sd;        // [n, RD_NMETRICS] spread of each summary metric, NaN when not measured
    int n, cap, has_sd;
    rd_source *srcs;   // [n_srcs]
    int n_srcs, cap_srcs;
} rd_set;

// Adds every checkpoint of one input. IBC_EINPUT for a missing path, a folder with neither
// an HDF5 file nor summary.csv, or a file that is not a results file.
int rd_add(rd_set *s, const char *input, ibc_err *err);
// rd_add for every input; IBC_EINPUT when nothing was found.
int rd_add_all(rd_set *s, const char *const *inputs, int n, ibc_err *err);
void rd_free(rd_set *s);

// IBC_EINPUT naming the first source read without HDF5 and `what` (e.g. "--per-layer").
int rd_need_h5(const rd_set *s, const char *what, ibc_err *err);
// IBC_EINPUT when two sources' anchors differ (their results are not on one plane).
int rd_same_anchors(const rd_set *s, ibc_err *err);

// Summary metric m (index into RD_METRICS) of r.
double rd_metric(const res_ckpt *r, int m);

// Training runs: checkpoint names that differ only in a trailing number (step-100, step-2000)
// are one run. key gets the name without that number; *step the number, -1 when none.
void rd_run_key(const char *name, char *key, size_t cap, long *step);

// The checkpoints of s in runs: order [n] lists every checkpoint index grouped by run (runs in
// order of first appearance, each in step order); run_start [n_runs + 1] the offsets. A name
// without a trailing number is a run of its own. Returns n_runs; *order, *run_start malloc'd.
int rd_runs(const rd_set *s, int **order, int **run_start);

#endif
