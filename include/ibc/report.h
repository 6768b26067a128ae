// report: `ibc report RESULTS... [--benchmarks FILE.csv ...] --out report.html`, one
// self-contained HTML page a researcher opens in a browser (issue 14).
//
// Sections: the job (each results file's manifest.json, else its /run job text); the summary
// table (mean +- spread over anchor sets when summary.csv has `_sd` columns); the information
// plane per order (training runs as step-coloured paths, first and last checkpoints labelled,
// the IB bound y = x dashed); per-layer profiles (H, I_X_k, I_Y_k against the hidden-state
// index, one line per checkpoint; from the HDF5 file); the back-off decomposition (what each
// order adds: complexity_k - complexity_{k-1} and the same for expressivity, per checkpoint)
// with, per training run, the step where complexity peaks and whether the fall after it exceeds
// the anchor spread; and per benchmark table the correlations with bootstrap intervals and
// permutation p-values (correlate.h) and the metric-vs-benchmark plots.
//
// Figures are SVG written by ibc (svg.h), embedded as data: URIs in <img> elements, so that the
// page is one file, needs no network and no JavaScript, and is valid HTML 4 for xmllint's
// parser (which rejects inline <svg>). Legends sit in their own column, off the data.
// Results whose anchors differ (rd_same_anchors) are refused: IBC_EINPUT. The page is written
// under a temporary name and renamed.
#ifndef IBC_REPORT_H
#define IBC_REPORT_H

#include "ibc/err.h"

typedef struct {
    const char *const *inputs;      // results folders or .h5 files
    int n_inputs;
    const char *const *benchmarks;  // benchmark CSV files (may be 0)
    int n_benchmarks;
    const char *name_cols;          // default "model"
    const char *aliases;            // CSV or NULL
    const char *out;                // the HTML file
    int resamples;                  // 0 means 10,000
    unsigned long long seed;
} rep_opts;

// Not collective: one process reads and writes.
int rep_run(const rep_opts *o, ibc_err *err);

#endif
