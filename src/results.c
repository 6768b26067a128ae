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
    r->layer_ids = NULL;
    r->H = r->I_X = r->I_Y = r->I_pref = NULL;
    r->n_layers = 0;
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
        hid_t ds = H5Dopen2(ag, name, H5P_DEFAULT);
        h5_attr(ds, "eps", H5T_NATIVE_DOUBLE, 1, &an[i].eps);
        H5Dclose(ds);
    }
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

// Writes layers.csv and summary.csv under temporary names (w[0], w[1]) and flushes them, so a
// full disk shows here, before anything is renamed. On failure both are removed.
static int stage_csvs(const char *dir, const res_ckpt *r, int n, io_file w[2], ibc_err *err) {
    char path[IBC_PATH_NAME_MAX];
    int rc = io_join(path, sizeof path, dir, "layers.csv", err);
    if (rc == 0) rc = io_begin(&w[0], path, err);
    if (rc) goto done;
    fputs("checkpoint,layer,n_positions,H,I_X1,I_X2,I_X3,I_X4,I_Y1,I_Y2,I_Y3,I_Y4,I_pref\n", w[0].f);
    for (int i = 0; i < n; i++) {
        if (r[i].status != RES_COMPLETE) continue;
        for (int l = 0; l < r[i].n_layers; l++) {
            fprintf(w[0].f, "%s,%d,%lld", r[i].name, r[i].layer_ids[l], (long long)r[i].n_positions);
            num(w[0].f, r[i].H[l]);
            for (int k = 0; k < RES_ORDERS; k++) num(w[0].f, r[i].I_X[k * r[i].n_layers + l]);
            for (int k = 0; k < RES_ORDERS; k++) num(w[0].f, r[i].I_Y[k * r[i].n_layers + l]);
            num(w[0].f, r[i].I_pref[l]);
            fputc('\n', w[0].f);
        }
    }
    if (fflush(w[0].f) != 0 || ferror(w[0].f)) { rc = ibc_fail(err, IBC_ESYS, "%s: write failed: %s", path, strerror(errno)); goto done; }
    if ((rc = io_join(path, sizeof path, dir, "summary.csv", err)) || (rc = io_begin(&w[1], path, err))) goto done;
    fputs("checkpoint,n_documents,n_positions,H_mean,complexity_1,complexity_2,complexity_3,complexity_4,"
          "expressivity_1,expressivity_2,expressivity_3,expressivity_4,optimality_1,optimality_2,optimality_3,"
          "optimality_4,pref_info,imbalance\n", w[1].f);
    for (int i = 0; i < n; i++) {
        if (r[i].status != RES_COMPLETE) continue;
        const se_summary *s = &r[i].sum;
        fprintf(w[1].f, "%s,%lld,%lld", r[i].name, (long long)(r[i].n_documents - r[i].n_skipped), (long long)r[i].n_positions);
        num(w[1].f, s->H_mean);
        for (int k = 1; k <= RES_ORDERS; k++) num(w[1].f, s->complexity[k]);
        for (int k = 1; k <= RES_ORDERS; k++) num(w[1].f, s->expressivity[k]);
        for (int k = 1; k <= RES_ORDERS; k++) num(w[1].f, s->optimality[k]);
        num(w[1].f, s->pref_info);
        if (isfinite(r[i].imbalance)) fprintf(w[1].f, ",%.3f", r[i].imbalance); // a measurement: 3 decimals
        else fputc(',', w[1].f);
        fputc('\n', w[1].f);
    }
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
