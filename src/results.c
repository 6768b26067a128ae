#include "ibc/results.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ibc/dist.h"
#include "ibc/io.h"
#include "ibc/limits.h"
#include "ibc/mem.h"
#include "ibc/manifest.h"
#include "ibc/version.h"

void res_ckpt_alloc(res_ckpt *r, int n_layers) {
    r->n_layers = n_layers;
    r->layer_ids = xcalloc((size_t)n_layers, sizeof(int));
    r->H = xmalloc(sizeof(double) * (size_t)n_layers);
    r->I_X = xmalloc(sizeof(double) * (size_t)n_layers * RES_ORDERS); // [RES_ORDERS, n_layers]
    r->I_Y = xmalloc(sizeof(double) * (size_t)n_layers * RES_ORDERS); // [RES_ORDERS, n_layers]
    r->I_pref = xmalloc(sizeof(double) * (size_t)n_layers);
    for (int i = 0; i < n_layers; i++) r->H[i] = r->I_pref[i] = NAN;
    for (int i = 0; i < n_layers * RES_ORDERS; i++) r->I_X[i] = r->I_Y[i] = NAN;
}

void res_ckpt_free(res_ckpt *r) {
    free(r->layer_ids); free(r->H); free(r->I_X); free(r->I_Y); free(r->I_pref);
    free(r->H_seeds); free(r->I_X_seeds); free(r->I_Y_seeds); free(r->I_pref_seeds); free(r->sum_seeds);
    free(r->sum_folds);
    r->layer_ids = NULL;
    r->H = r->I_X = r->I_Y = r->I_pref = NULL;
    r->H_seeds = r->I_X_seeds = r->I_Y_seeds = r->I_pref_seeds = NULL;
    r->sum_seeds = r->sum_folds = NULL;
    r->n_layers = r->n_seeds = r->n_folds = 0;
}

static double *nan_array(size_t n) {
    double *v = xmalloc(sizeof(double) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) v[i] = NAN;
    return v;
}

void res_ckpt_alloc_seeds(res_ckpt *r, int K) {
    size_t S = (size_t)r->n_layers;
    r->n_seeds = K;
    r->H_seeds = nan_array((size_t)K * S);                   // [K, S]
    r->I_X_seeds = nan_array((size_t)K * RES_ORDERS * S);    // [K, RES_ORDERS, S]
    r->I_Y_seeds = nan_array((size_t)K * RES_ORDERS * S);    // [K, RES_ORDERS, S]
    r->I_pref_seeds = nan_array((size_t)K * S);              // [K, S]
    r->sum_seeds = xcalloc((size_t)K, sizeof(se_summary));   // [K]
}

void res_ckpt_alloc_folds(res_ckpt *r, int F) {
    r->n_folds = F;
    r->sum_folds = xcalloc((size_t)F, sizeof(se_summary)); // [F]
}

// Mean and sd over the K sets of per-set [K, m] values, into mean [m] and sd [m] (NULL: skip).
static void over_sets(const double *per_set, int K, int m, double *mean, double *sd) {
    for (int i = 0; i < m; i++) {
        double a, b;
        se_mean_sd(per_set + i, K, m, &a, &b);
        if (mean) mean[i] = a;
        if (sd) sd[i] = b;
    }
}

void res_ckpt_mean(res_ckpt *r) {
    int K = r->n_seeds, S = r->n_layers;
    se_summary sd;
    over_sets(r->H_seeds, K, S, r->H, NULL);
    over_sets(r->I_X_seeds, K, RES_ORDERS * S, r->I_X, NULL);
    over_sets(r->I_Y_seeds, K, RES_ORDERS * S, r->I_Y, NULL);
    over_sets(r->I_pref_seeds, K, S, r->I_pref, NULL);
    se_summary_mean_sd(r->sum_seeds, K, &r->sum, &sd); // optimality: the mean of each set's ratio
}

void res_ckpt_sd(const res_ckpt *r, double *H, double *I_X, double *I_Y, double *I_pref, se_summary *sum) {
    int K = r->n_seeds, S = r->n_layers;
    if (H) over_sets(r->H_seeds, K, S, NULL, H);
    if (I_X) over_sets(r->I_X_seeds, K, RES_ORDERS * S, NULL, I_X);
    if (I_Y) over_sets(r->I_Y_seeds, K, RES_ORDERS * S, NULL, I_Y);
    if (I_pref) over_sets(r->I_pref_seeds, K, S, NULL, I_pref);
    se_summary mean;
    if (sum) se_summary_mean_sd(r->sum_seeds, K, &mean, sum);
}

void res_ckpt_se(const res_ckpt *r, se_summary *se) {
    se_summary mean, sd;
    double v[SE_SUMMARY_N];
    if (r->n_folds > 1) {
        se_summary_mean_sd(r->sum_folds, r->n_folds, &mean, &sd);
        se_summary_pack(&sd, v);
    }
    for (int k = 0; k < SE_SUMMARY_N; k++) v[k] = r->n_folds > 1 ? v[k] / sqrt((double)r->n_folds) : NAN;
    se_summary_unpack(v, se);
}

// ---------------------------------------------------------------------------------------------
// HDF5 helpers. Every rank calls every function (metadata is collective in parallel HDF5);
// only rank 0 passes write_data = 1 for the raw data (independent transfers).

typedef struct {
    hid_t gcpl, dcpl; // group and dataset creation: no time stamps, so equal results give equal files
    int root;
    int failed;       // any HDF5 call failed
} h5ctx;

static hid_t ok_id(h5ctx *c, hid_t id) {
    if (id < 0) c->failed = 1;
    return id;
}

static void h5_ds(h5ctx *c, hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims, const void *data) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = ok_id(c, H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, c->dcpl, H5P_DEFAULT));
    if (c->root && H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) c->failed = 1;
    H5Dclose(ds);
    H5Sclose(sp);
}

static void h5_attr(hid_t loc, const char *name, hid_t type, int n, const void *v) {
    hsize_t dim = (hsize_t)n;
    hid_t sp = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
    hid_t a = H5Acreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, type, v);
    H5Aclose(a);
    H5Sclose(sp);
}

static void h5_attr_str(hid_t loc, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(s) + 1);
    h5_attr(loc, name, t, 1, s);
    H5Tclose(t);
}

static void h5_str_ds(h5ctx *c, hid_t loc, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(s) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t ds = ok_id(c, H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, c->dcpl, H5P_DEFAULT));
    if (c->root && H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) < 0) c->failed = 1;
    H5Dclose(ds);
    H5Sclose(sp);
    H5Tclose(t);
}

// Summaries [m] as rows [m, SE_SUMMARY_N] (summary.csv's order, se_summary_pack).
static double *pack_rows(const se_summary *s, int m) {
    double *v = xmalloc(sizeof(double) * SE_SUMMARY_N * (size_t)m);
    for (int i = 0; i < m; i++) se_summary_pack(&s[i], v + (size_t)i * SE_SUMMARY_N);
    return v;
}

// Each anchor set's numbers (leading dimension K) and their spreads (docs/results.md).
static void write_seeds(h5ctx *c, hid_t g, const res_ckpt *r) {
    hsize_t K = (hsize_t)r->n_seeds, S = (hsize_t)r->n_layers, k2[2] = {K, S}, k3[3] = {K, RES_ORDERS, S},
            o2[2] = {RES_ORDERS, S}, ks[2] = {K, SE_SUMMARY_N}, m = SE_SUMMARY_N;
    h5_ds(c, g, "H_seeds", H5T_NATIVE_DOUBLE, 2, k2, r->H_seeds);
    h5_ds(c, g, "I_X_seeds", H5T_NATIVE_DOUBLE, 3, k3, r->I_X_seeds);
    h5_ds(c, g, "I_Y_seeds", H5T_NATIVE_DOUBLE, 3, k3, r->I_Y_seeds);
    h5_ds(c, g, "I_pref_seeds", H5T_NATIVE_DOUBLE, 2, k2, r->I_pref_seeds);
    double *rows = pack_rows(r->sum_seeds, r->n_seeds), v[SE_SUMMARY_N];
    h5_ds(c, g, "summary_seeds", H5T_NATIVE_DOUBLE, 2, ks, rows);
    double *sd = xmalloc(sizeof(double) * (size_t)S * (2 + 2 * RES_ORDERS)); // H [S], I_X, I_Y [4, S], I_pref [S]
    se_summary ssd;
    res_ckpt_sd(r, sd, sd + S, sd + (1 + RES_ORDERS) * S, sd + (1 + 2 * RES_ORDERS) * S, &ssd);
    h5_ds(c, g, "H_sd", H5T_NATIVE_DOUBLE, 1, &S, sd);
    h5_ds(c, g, "I_X_sd", H5T_NATIVE_DOUBLE, 2, o2, sd + S);
    h5_ds(c, g, "I_Y_sd", H5T_NATIVE_DOUBLE, 2, o2, sd + (1 + RES_ORDERS) * S);
    h5_ds(c, g, "I_pref_sd", H5T_NATIVE_DOUBLE, 1, &S, sd + (1 + 2 * RES_ORDERS) * S);
    se_summary_pack(&ssd, v);
    h5_ds(c, g, "summary_sd", H5T_NATIVE_DOUBLE, 1, &m, v);
    free(sd);
    free(rows);
}

// Each fold's summary and the standard errors they give.
static void write_folds(h5ctx *c, hid_t g, const res_ckpt *r) {
    hsize_t fs[2] = {(hsize_t)r->n_folds, SE_SUMMARY_N}, m = SE_SUMMARY_N;
    double *rows = pack_rows(r->sum_folds, r->n_folds), v[SE_SUMMARY_N];
    se_summary se;
    h5_ds(c, g, "summary_folds", H5T_NATIVE_DOUBLE, 2, fs, rows);
    res_ckpt_se(r, &se);
    se_summary_pack(&se, v);
    h5_ds(c, g, "summary_se", H5T_NATIVE_DOUBLE, 1, &m, v);
    free(rows);
}

static void write_ckpt(h5ctx *c, hid_t parent, const res_ckpt *r, int index) {
    hid_t g = ok_id(c, H5Gcreate2(parent, r->name, H5P_DEFAULT, c->gcpl, H5P_DEFAULT));
    h5_attr(g, "index", H5T_NATIVE_INT, 1, &index); // position in the job's checkpoint list
    h5_attr_str(g, "status", r->status == RES_COMPLETE ? "complete" : "failed");
    if (r->status == RES_FAILED) {
        h5_attr_str(g, "error", r->error);
        H5Gclose(g);
        return;
    }
    h5_attr_str(g, "arch", r->arch);
    h5_attr(g, "params", H5T_NATIVE_INT64, 1, &r->params);
    h5_attr(g, "d", H5T_NATIVE_INT, 1, &r->d);
    h5_attr(g, "L", H5T_NATIVE_INT, 1, &r->L);
    h5_attr(g, "eps", H5T_NATIVE_DOUBLE, 1, &r->eps);
    h5_attr(g, "n_documents", H5T_NATIVE_INT64, 1, &r->n_documents);
    h5_attr(g, "n_skipped", H5T_NATIVE_INT64, 1, &r->n_skipped);
    h5_attr(g, "N", H5T_NATIVE_INT64, 1, &r->n_positions);
    h5_attr(g, "H_mean", H5T_NATIVE_DOUBLE, 1, &r->sum.H_mean);
    h5_attr(g, "complexity", H5T_NATIVE_DOUBLE, RES_ORDERS, r->sum.complexity + 1);
    h5_attr(g, "expressivity", H5T_NATIVE_DOUBLE, RES_ORDERS, r->sum.expressivity + 1);
    h5_attr(g, "optimality", H5T_NATIVE_DOUBLE, RES_ORDERS, r->sum.optimality + 1);
    h5_attr(g, "pref_info", H5T_NATIVE_DOUBLE, 1, &r->sum.pref_info);
    h5_attr(g, "imbalance", H5T_NATIVE_DOUBLE, 1, &r->imbalance);
    h5_attr(g, "rows_max", H5T_NATIVE_INT64, 1, &r->rows_max);
    h5_attr(g, "rows_mean", H5T_NATIVE_DOUBLE, 1, &r->rows_mean);
    h5_attr(g, "sent_max", H5T_NATIVE_INT64, 1, &r->sent_max);
    h5_attr(g, "sent_mean", H5T_NATIVE_DOUBLE, 1, &r->sent_mean);
    hsize_t n = (hsize_t)r->n_layers, two[2] = {RES_ORDERS, n};
    h5_ds(c, g, "layers", H5T_NATIVE_INT, 1, &n, r->layer_ids);
    h5_ds(c, g, "H", H5T_NATIVE_DOUBLE, 1, &n, r->H);
    h5_ds(c, g, "I_X", H5T_NATIVE_DOUBLE, 2, two, r->I_X);
    h5_ds(c, g, "I_Y", H5T_NATIVE_DOUBLE, 2, two, r->I_Y);
    h5_ds(c, g, "I_pref", H5T_NATIVE_DOUBLE, 1, &n, r->I_pref);
    if (r->n_seeds > 1) write_seeds(c, g, r);
    if (r->n_folds > 1) write_folds(c, g, r);
    H5Gclose(g);
}

static int write_h5(const char *path, const char *final, const char *job_text, const res_ckpt *r, int n, const res_anchors *an,
                    int n_an, ibc_err *err) {
    int root = dist_rank() == 0;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
    H5E_auto2_t old;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); // failures become one error line, not a trace
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) {
        H5Eset_auto2(H5E_DEFAULT, old, old_data);
        return ibc_fail(err, IBC_ESYS, "%s: cannot create the HDF5 file (%s)", final, path);
    }
    h5ctx c = {H5Pcreate(H5P_GROUP_CREATE), H5Pcreate(H5P_DATASET_CREATE), root, 0};
    H5Pset_obj_track_times(c.gcpl, 0);
    H5Pset_obj_track_times(c.dcpl, 0);
    hid_t run = ok_id(&c, H5Gcreate2(f, "run", H5P_DEFAULT, c.gcpl, H5P_DEFAULT));
    h5_attr_str(run, "version", IBC_VERSION);
    h5_attr_str(run, "git_revision", IBC_GIT_REV);
    h5_str_ds(&c, run, "job", job_text);
    char *manifest = manifest_text_shared(path); // the folder's manifest.json (manifest.h), if any
    if (manifest) h5_str_ds(&c, run, "manifest", manifest);
    free(manifest);
    H5Gclose(run);
    hid_t ag = ok_id(&c, H5Gcreate2(f, "anchors", H5P_DEFAULT, c.gcpl, H5P_DEFAULT));
    for (int i = 0; i < n_an; i++) {
        char name[32];
        snprintf(name, sizeof name, "d%d", an[i].d);
        hsize_t dims[2] = {(hsize_t)an[i].n, (hsize_t)an[i].d};
        h5_ds(&c, ag, name, H5T_NATIVE_FLOAT, 2, dims, an[i].W);
        for (int k = 0; k < an[i].K; k++) { // set 0 as ever; further sets of an ensemble beside it
            if (k) snprintf(name, sizeof name, "d%d_seed%llu", an[i].d, (unsigned long long)an[i].seeds[k]);
            if (k) h5_ds(&c, ag, name, H5T_NATIVE_FLOAT, 2, dims, an[i].W + (size_t)k * an[i].n * an[i].d);
            hid_t ds = H5Dopen2(ag, name, H5P_DEFAULT);
            h5_attr(ds, "eps", H5T_NATIVE_DOUBLE, 1, &an[i].eps);
            H5Dclose(ds);
        }
    }
    if (n_an && an[0].K > 1) h5_attr(ag, "seeds", H5T_NATIVE_UINT64, an[0].K, an[0].seeds);
    H5Gclose(ag);
    hid_t cg = ok_id(&c, H5Gcreate2(f, "checkpoints", H5P_DEFAULT, c.gcpl, H5P_DEFAULT));
    for (int i = 0; i < n; i++)
        if (r[i].status != RES_PENDING) write_ckpt(&c, cg, &r[i], i);
    H5Gclose(cg);
    H5Pclose(c.gcpl);
    H5Pclose(c.dcpl);
    if (H5Fclose(f) < 0) c.failed = 1;
    H5Eset_auto2(H5E_DEFAULT, old, old_data);
    return c.failed ? ibc_fail(err, IBC_ESYS, "%s: writing the HDF5 file failed (disk full or not writable?)", final) : 0;
}

// ---------------------------------------------------------------------------------------------
// CSV (rank 0)

static void num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, ",%.17g", v);
    else fputc(',', f);
}

// Whether any complete checkpoint has an anchor ensemble (the `_sd` columns), or folds (`_se`).
static int any_complete(const res_ckpt *r, int n, int folds) {
    for (int i = 0; i < n; i++)
        if (r[i].status == RES_COMPLETE && (folds ? r[i].n_folds > 1 : r[i].n_seeds > 1)) return 1;
    return 0;
}

// Per-layer values of one layer l: H, I_X1..4, I_Y1..4, I_pref (layers.csv's order).
static void layer_row(FILE *f, const double *H, const double *I_X, const double *I_Y, const double *I_pref, int S, int l) {
    num(f, H[l]);
    for (int k = 0; k < RES_ORDERS; k++) num(f, I_X[k * S + l]);
    for (int k = 0; k < RES_ORDERS; k++) num(f, I_Y[k * S + l]);
    num(f, I_pref[l]);
}

static void write_layers(FILE *f, const res_ckpt *r, int n) {
    int ens = any_complete(r, n, 0);
    fputs("checkpoint,layer,n_positions,H,I_X1,I_X2,I_X3,I_X4,I_Y1,I_Y2,I_Y3,I_Y4,I_pref", f);
    fputs(ens ? ",H_sd,I_X1_sd,I_X2_sd,I_X3_sd,I_X4_sd,I_Y1_sd,I_Y2_sd,I_Y3_sd,I_Y4_sd,I_pref_sd\n" : "\n", f);
    for (int i = 0; i < n; i++) {
        if (r[i].status != RES_COMPLETE) continue;
        int S = r[i].n_layers;
        double *sd = ens ? xmalloc(sizeof(double) * (size_t)S * (2 + 2 * RES_ORDERS)) : NULL; // H, I_X, I_Y, I_pref
        if (ens) res_ckpt_sd(&r[i], sd, sd + S, sd + (1 + RES_ORDERS) * S, sd + (1 + 2 * RES_ORDERS) * S, NULL);
        for (int l = 0; l < S; l++) {
            fprintf(f, "%s,%d,%lld", r[i].name, r[i].layer_ids[l], (long long)r[i].n_positions);
            layer_row(f, r[i].H, r[i].I_X, r[i].I_Y, r[i].I_pref, S, l);
            if (ens) layer_row(f, sd, sd + S, sd + (1 + RES_ORDERS) * S, sd + (1 + 2 * RES_ORDERS) * S, S, l);
            fputc('\n', f);
        }
        free(sd);
    }
}

static const char SUMMARY_METRICS[] = "H_mean,complexity_1,complexity_2,complexity_3,complexity_4,expressivity_1,"
    "expressivity_2,expressivity_3,expressivity_4,optimality_1,optimality_2,optimality_3,optimality_4,pref_info";

// The metric names again, each with suffix (",H_mean_sd,complexity_1_sd,...").
static void metric_names(FILE *f, const char *suffix) {
    for (const char *p = SUMMARY_METRICS; *p;) {
        size_t len = strcspn(p, ",");
        fprintf(f, ",%.*s%s", (int)len, p, suffix);
        p += len + (p[len] == ',');
    }
}

static void summary_values(FILE *f, const se_summary *s) {
    double v[SE_SUMMARY_N];
    se_summary_pack(s, v);
    for (int k = 0; k < SE_SUMMARY_N; k++) num(f, v[k]);
}

// Means, then `_sd` (anchor sets, when any checkpoint has several) and `_se` (folds), then imbalance.
static void write_summary(FILE *f, const res_ckpt *r, int n) {
    int ens = any_complete(r, n, 0), folds = any_complete(r, n, 1);
    fprintf(f, "checkpoint,n_documents,n_positions,%s", SUMMARY_METRICS);
    if (ens) metric_names(f, "_sd");
    if (folds) metric_names(f, "_se");
    fputs(",imbalance\n", f);
    for (int i = 0; i < n; i++) {
        if (r[i].status != RES_COMPLETE) continue;
        se_summary sd, se;
        fprintf(f, "%s,%lld,%lld", r[i].name, (long long)(r[i].n_documents - r[i].n_skipped), (long long)r[i].n_positions);
        summary_values(f, &r[i].sum);
        if (ens) res_ckpt_sd(&r[i], NULL, NULL, NULL, NULL, &sd), summary_values(f, &sd);
        if (folds) res_ckpt_se(&r[i], &se), summary_values(f, &se);
        if (isfinite(r[i].imbalance)) fprintf(f, ",%.3f", r[i].imbalance); // a measurement: 3 decimals
        else fputc(',', f);
        fputc('\n', f);
    }
}

// Writes layers.csv and summary.csv under temporary names (w[0], w[1]) and flushes them, so a
// full disk shows here, before anything is renamed. On failure both are removed.
static int stage_csvs(const char *dir, const res_ckpt *r, int n, io_file w[2], ibc_err *err) {
    char path[IBC_PATH_NAME_MAX];
    int rc = io_join(path, sizeof path, dir, "layers.csv", err);
    if (rc == 0) rc = io_begin(&w[0], path, err);
    if (rc) goto done;
    write_layers(w[0].f, r, n);
    if (fflush(w[0].f) != 0 || ferror(w[0].f)) { rc = ibc_fail(err, IBC_ESYS, "%s: write failed: %s", path, strerror(errno)); goto done; }
    if ((rc = io_join(path, sizeof path, dir, "summary.csv", err)) || (rc = io_begin(&w[1], path, err))) goto done;
    write_summary(w[1].f, r, n);
    if (fflush(w[1].f) != 0 || ferror(w[1].f)) rc = ibc_fail(err, IBC_ESYS, "%s: write failed: %s", path, strerror(errno));
done:
    if (rc) { io_abort(&w[0]); io_abort(&w[1]); }
    return rc;
}

// All or nothing: the CSVs (rank 0) and the HDF5 file (collective) are written under
// temporary names; only when every rank agrees that all three are whole are they renamed over
// the previous ones (fault hook write fires just before). On failure the temporary files are
// removed and the previous results stay as they were, complete and resumable.
int results_write(const char *dir, const char *job_name, const char *job_text, const res_ckpt *r, int n,
                  const res_anchors *anchors, int n_anchors, ibc_err *err) {
    int rank = dist_rank(), rc = 0;
    char name[IBC_PATH_NAME_MAX], path[IBC_PATH_NAME_MAX], tmp[IBC_PATH_NAME_MAX + 8];
    io_file w[2];
    memset(w, 0, sizeof w);
    snprintf(name, sizeof name, "%s.h5", job_name);
    rc = io_join(path, sizeof path, dir, name, err); // the same verdict on every rank
    if (rc == 0 && rank == 0) rc = stage_csvs(dir, r, n, w, err);
    if ((rc = dist_agree(rc, err))) return rc;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    rc = write_h5(tmp, path, job_text, r, n, anchors, n_anchors, err);
    if (rc == 0) rc = ibc_fault("write", rank, err);
    rc = dist_agree(rc, err);
    if (rank == 0) {
        if (rc == 0 && rename(tmp, path) != 0) rc = ibc_fail(err, IBC_ESYS, "%s: rename failed: %s", path, strerror(errno));
        if (rc) { remove(tmp); io_abort(&w[0]); io_abort(&w[1]); }
        if (rc == 0 && (rc = io_commit(&w[0], err)) != 0) io_abort(&w[1]);
        if (rc == 0) rc = io_commit(&w[1], err);
    }
    return dist_agree(rc, err);
}

// ---------------------------------------------------------------------------------------------
// Reading back (resume)

static char *read_str_attr(hid_t loc, const char *name) {
    if (H5Aexists(loc, name) <= 0) return NULL;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT), t = H5Aget_type(a);
    size_t sz = H5Tget_size(t);
    char *s = xcalloc(sz + 1, 1);
    H5Aread(a, t, s);
    H5Tclose(t);
    H5Aclose(a);
    return s;
}

static int read_attr(hid_t loc, const char *name, hid_t type, void *v) {
    if (H5Aexists(loc, name) <= 0) return -1;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    herr_t e = H5Aread(a, type, v);
    H5Aclose(a);
    return e < 0 ? -1 : 0;
}

static int read_ds(hid_t loc, const char *name, hid_t type, void *v, hssize_t want) {
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return -1;
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT), sp = H5Dget_space(ds);
    int ok = H5Sget_simple_extent_npoints(sp) == want && H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    H5Sclose(sp);
    H5Dclose(ds);
    return ok ? 0 : -1;
}

// Rows of length m of a [k, m] dataset: k, or 0 when absent or not of that shape.
static int rows_of(hid_t g, const char *name, int m) {
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return 0;
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT), sp = H5Dget_space(ds);
    hsize_t dims[2] = {0, 0};
    int ok = H5Sget_simple_extent_ndims(sp) == 2 && H5Sget_simple_extent_dims(sp, dims, NULL) == 2 && dims[1] == (hsize_t)m;
    H5Sclose(sp);
    H5Dclose(ds);
    return ok && dims[0] < 1u << 20 ? (int)dims[0] : 0;
}

// Summaries [k] from rows [k, SE_SUMMARY_N] of dataset name; 0 when read.
static int read_summaries(hid_t g, const char *name, se_summary *s, int k) {
    double *v = xmalloc(sizeof(double) * SE_SUMMARY_N * (size_t)k);
    int rc = read_ds(g, name, H5T_NATIVE_DOUBLE, v, (hssize_t)k * SE_SUMMARY_N);
    for (int i = 0; rc == 0 && i < k; i++) se_summary_unpack(v + (size_t)i * SE_SUMMARY_N, &s[i]);
    free(v);
    return rc;
}

// An ensemble's per-set numbers and the folds' summaries, when the group has them (resume and
// merge write them again). A partial set is dropped: the means alone stay.
static void load_seeds_folds(hid_t g, res_ckpt *r) {
    int K = rows_of(g, "summary_seeds", SE_SUMMARY_N), F = rows_of(g, "summary_folds", SE_SUMMARY_N);
    hssize_t S = r->n_layers;
    if (K > 1) {
        res_ckpt_alloc_seeds(r, K);
        if (read_summaries(g, "summary_seeds", r->sum_seeds, K) || read_ds(g, "H_seeds", H5T_NATIVE_DOUBLE, r->H_seeds, K * S) ||
            read_ds(g, "I_X_seeds", H5T_NATIVE_DOUBLE, r->I_X_seeds, K * RES_ORDERS * S) ||
            read_ds(g, "I_Y_seeds", H5T_NATIVE_DOUBLE, r->I_Y_seeds, K * RES_ORDERS * S) ||
            read_ds(g, "I_pref_seeds", H5T_NATIVE_DOUBLE, r->I_pref_seeds, K * S)) {
            free(r->H_seeds); free(r->I_X_seeds); free(r->I_Y_seeds); free(r->I_pref_seeds); free(r->sum_seeds);
            r->H_seeds = r->I_X_seeds = r->I_Y_seeds = r->I_pref_seeds = NULL;
            r->sum_seeds = NULL;
            r->n_seeds = 0;
        }
    }
    if (F > 1) {
        res_ckpt_alloc_folds(r, F);
        if (read_summaries(g, "summary_folds", r->sum_folds, F)) { free(r->sum_folds); r->sum_folds = NULL; r->n_folds = 0; }
    }
}

static int load_ckpt(hid_t g, res_ckpt *r) {
    char *status = read_str_attr(g, "status");
    int rc = -1;
    if (status && !strcmp(status, "failed")) {
        char *e = read_str_attr(g, "error");
        snprintf(r->error, sizeof r->error, "%s", e ? e : "");
        free(e);
        r->status = RES_FAILED;
        rc = 0;
    } else if (status && !strcmp(status, "complete") && H5Lexists(g, "layers", H5P_DEFAULT) > 0) {
        hid_t ds = H5Dopen2(g, "layers", H5P_DEFAULT), sp = H5Dget_space(ds);
        int nl = (int)H5Sget_simple_extent_npoints(sp);
        H5Sclose(sp);
        H5Dclose(ds);
        char *arch = read_str_attr(g, "arch");
        if (nl > 0 && arch) res_ckpt_alloc(r, nl);
        if (nl > 0 && arch && !read_ds(g, "layers", H5T_NATIVE_INT, r->layer_ids, nl) && !read_ds(g, "H", H5T_NATIVE_DOUBLE, r->H, nl) &&
            !read_ds(g, "I_X", H5T_NATIVE_DOUBLE, r->I_X, (hssize_t)nl * RES_ORDERS) &&
            !read_ds(g, "I_Y", H5T_NATIVE_DOUBLE, r->I_Y, (hssize_t)nl * RES_ORDERS) &&
            !read_ds(g, "I_pref", H5T_NATIVE_DOUBLE, r->I_pref, nl) &&
            !read_attr(g, "params", H5T_NATIVE_INT64, &r->params) && !read_attr(g, "d", H5T_NATIVE_INT, &r->d) &&
            !read_attr(g, "L", H5T_NATIVE_INT, &r->L) && !read_attr(g, "eps", H5T_NATIVE_DOUBLE, &r->eps) &&
            !read_attr(g, "n_documents", H5T_NATIVE_INT64, &r->n_documents) &&
            !read_attr(g, "n_skipped", H5T_NATIVE_INT64, &r->n_skipped) &&
            !read_attr(g, "N", H5T_NATIVE_INT64, &r->n_positions) &&
            !read_attr(g, "H_mean", H5T_NATIVE_DOUBLE, &r->sum.H_mean) &&
            !read_attr(g, "complexity", H5T_NATIVE_DOUBLE, r->sum.complexity + 1) &&
            !read_attr(g, "expressivity", H5T_NATIVE_DOUBLE, r->sum.expressivity + 1) &&
            !read_attr(g, "optimality", H5T_NATIVE_DOUBLE, r->sum.optimality + 1) &&
            !read_attr(g, "pref_info", H5T_NATIVE_DOUBLE, &r->sum.pref_info)) {
            snprintf(r->arch, sizeof r->arch, "%s", arch);
            if (read_attr(g, "imbalance", H5T_NATIVE_DOUBLE, &r->imbalance)) r->imbalance = NAN; // older files
            // balance: absent in results of earlier versions (then 0)
            read_attr(g, "rows_max", H5T_NATIVE_INT64, &r->rows_max);
            read_attr(g, "rows_mean", H5T_NATIVE_DOUBLE, &r->rows_mean);
            read_attr(g, "sent_max", H5T_NATIVE_INT64, &r->sent_max);
            read_attr(g, "sent_mean", H5T_NATIVE_DOUBLE, &r->sent_mean);
            load_seeds_folds(g, r);
            r->status = RES_COMPLETE;
            rc = 0;
        } else {
            res_ckpt_free(r);
        }
        free(arch);
    }
    free(status);
    return rc;
}

int results_load(const char *dir, const char *job_name, const char *job_text, res_ckpt *r, int n, int *found,
                 ibc_err *err) {
    char path[IBC_PATH_NAME_MAX], name[IBC_PATH_NAME_MAX];
    *found = 0;
    snprintf(name, sizeof name, "%s.h5", job_name);
    int rc = io_join(path, sizeof path, dir, name, err);
    if (rc || access(path, F_OK) != 0) return rc;
    H5E_auto2_t old;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); // a damaged file is an error message, not a trace
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        rc = ibc_fail(err, IBC_EINPUT, "%s: not a readable HDF5 file; remove it to start over", path);
        goto out;
    }
    char *text = NULL;
    hid_t ds = H5Lexists(f, "run/job", H5P_DEFAULT) > 0 ? H5Dopen2(f, "run/job", H5P_DEFAULT) : -1;
    if (ds >= 0) {
        hid_t t = H5Dget_type(ds);
        text = xcalloc(H5Tget_size(t) + 1, 1);
        H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, text);
        H5Tclose(t);
        H5Dclose(ds);
    }
    if (!text || strcmp(text, job_text) != 0) {
        rc = ibc_fail(err, IBC_EINPUT, "%s: holds results of a different job file; remove it or rename the job", path);
    } else {
        *found = 1;
        for (int i = 0; i < n; i++) {
            char gname[256];
            snprintf(gname, sizeof gname, "checkpoints/%s", r[i].name);
            if (H5Lexists(f, "checkpoints", H5P_DEFAULT) <= 0 || H5Lexists(f, gname, H5P_DEFAULT) <= 0) continue;
            hid_t g = H5Gopen2(f, gname, H5P_DEFAULT);
            load_ckpt(g, &r[i]);
            H5Gclose(g);
        }
    }
    free(text);
    H5Fclose(f);
out:
    H5Eset_auto2(H5E_DEFAULT, old, old_data);
    return rc;
}

// Every checkpoint group of one file, in job order.
typedef struct { res_ckpt *r; int *index; int n, cap; } ckpt_list;

static herr_t collect(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)info;
    ckpt_list *l = data;
    if (l->n == l->cap) { // two arrays of one capacity
        size_t cap = (size_t)l->cap, cap2 = cap;
        xgrow(l->r, cap, (size_t)l->n + 1);
        xgrow(l->index, cap2, (size_t)l->n + 1);
        l->cap = (int)cap;
    }
    res_ckpt *r = &l->r[l->n];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    hid_t cg = H5Gopen2(g, name, H5P_DEFAULT);
    int ix = l->n;
    read_attr(cg, "index", H5T_NATIVE_INT, &ix);
    if (load_ckpt(cg, r) == 0) l->index[l->n++] = ix;
    H5Gclose(cg);
    return 0;
}

int results_read_all(const char *h5, res_ckpt **out, int *n, ibc_err *err) {
    *out = NULL;
    *n = 0;
    H5E_auto2_t old;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    int rc = 0;
    ckpt_list l = {0};
    if (f < 0) rc = ibc_fail(err, IBC_EINPUT, "%s: not a readable HDF5 file", h5);
    else if (H5Lexists(f, "checkpoints", H5P_DEFAULT) <= 0) rc = ibc_fail(err, IBC_EINPUT, "%s: no /checkpoints group", h5);
    else {
        hid_t g = H5Gopen2(f, "checkpoints", H5P_DEFAULT);
        if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect, &l) < 0) rc = ibc_fail(err, IBC_EINPUT, "%s: cannot list /checkpoints", h5);
        H5Gclose(g);
    }
    if (f >= 0) H5Fclose(f);
    H5Eset_auto2(H5E_DEFAULT, old, old_data);
    for (int i = 1; i < l.n; i++) // job order (insertion sort: a few hundred at most)
        for (int k = i; k > 0 && l.index[k] < l.index[k - 1]; k--) {
            res_ckpt t = l.r[k]; l.r[k] = l.r[k - 1]; l.r[k - 1] = t;
            int x = l.index[k]; l.index[k] = l.index[k - 1]; l.index[k - 1] = x;
        }
    free(l.index);
    if (rc) { for (int i = 0; i < l.n; i++) res_ckpt_free(&l.r[i]); free(l.r); return rc; }
    *out = l.r;
    *n = l.n;
    return 0;
}
