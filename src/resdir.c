#include "ibc/resdir.h"

#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ibc/benchtab.h"
#include "ibc/io.h"
#include "ibc/limits.h"
#include "ibc/mem.h"

const char *const RD_METRICS[RD_NMETRICS] = {"H_mean", "complexity_1", "complexity_2", "complexity_3", "complexity_4",
                                             "expressivity_1", "expressivity_2", "expressivity_3", "expressivity_4",
                                             "optimality_1", "optimality_2", "optimality_3", "optimality_4", "pref_info"};

double rd_metric(const res_ckpt *r, int m) {
    const se_summary *s = &r->sum;
    if (m == 0) return s->H_mean;
    if (m <= 4) return s->complexity[m];
    if (m <= 8) return s->expressivity[m - 4];
    if (m <= 12) return s->optimality[m - 8];
    return s->pref_info;
}

static double *metric_slot(res_ckpt *r, int m) {
    se_summary *s = &r->sum;
    if (m == 0) return &s->H_mean;
    if (m <= 4) return &s->complexity[m];
    if (m <= 8) return &s->expressivity[m - 4];
    if (m <= 12) return &s->optimality[m - 8];
    return &s->pref_info;
}

static int ends_with(const char *s, const char *x) {
    size_t a = strlen(s), b = strlen(x);
    return a >= b && !strcmp(s + a - b, x);
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

// ---------------------------------------------------------------------------------------------
// HDF5: the job text and a fingerprint of the anchors

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static herr_t hash_anchor(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)info;
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    if (ds < 0) return 0; // not a dataset
    hid_t sp = H5Dget_space(ds), t = H5Dget_type(ds);
    size_t bytes = (size_t)H5Sget_simple_extent_npoints(sp) * H5Tget_size(t);
    unsigned char *b = xmalloc(bytes ? bytes : 1);
    herr_t e = H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, b);
    uint64_t *h = data;
    *h = fnv(fnv(*h, name, strlen(name) + 1), b, e < 0 ? 0 : bytes);
    free(b);
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(ds);
    return e < 0 ? -1 : 0;
}

static char *read_job(hid_t f) {
    if (H5Lexists(f, "run", H5P_DEFAULT) <= 0 || H5Lexists(f, "run/job", H5P_DEFAULT) <= 0) return NULL;
    hid_t ds = H5Dopen2(f, "run/job", H5P_DEFAULT), t = H5Dget_type(ds);
    size_t sz = H5Tget_size(t);
    char *s = xcalloc(sz + 1, 1);
    if (H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) > 0 || H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) < 0) {
        free(s);
        s = NULL;
    }
    H5Tclose(t);
    H5Dclose(ds);
    return s;
}

static void read_h5_run(rd_source *src) {
    H5E_auto2_t old;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(src->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0) {
        src->job = read_job(f);
        uint64_t h = 0xcbf29ce484222325ULL;
        if (H5Lexists(f, "anchors", H5P_DEFAULT) > 0) {
            hid_t g = H5Gopen2(f, "anchors", H5P_DEFAULT);
            if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, hash_anchor, &h) >= 0) src->anchors = h;
            H5Gclose(g);
        }
        H5Fclose(f);
    }
    H5Eset_auto2(H5E_DEFAULT, old, old_data);
}

// ---------------------------------------------------------------------------------------------
// Sources and checkpoints

static int add_source(rd_set *s, const char *path, int h5) {
    if (s->n_srcs == s->cap_srcs) {
        size_t cap = (size_t)s->cap_srcs;
        xgrow(s->srcs, cap, (size_t)s->n_srcs + 1);
        s->cap_srcs = (int)cap;
    }
    rd_source *src = &s->srcs[s->n_srcs];
    memset(src, 0, sizeof *src);
    src->path = xstrdup(path);
    src->h5 = h5;
    char dir[IBC_PATH_MAX], mpath[IBC_PATH_NAME_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    if (io_join(mpath, sizeof mpath, dir, "manifest.json", NULL) == 0 && is_file(mpath))
        io_read_all(mpath, &src->manifest, NULL, NULL);
    if (h5) read_h5_run(src);
    return s->n_srcs++;
}

// Appends r (taking it) unless a checkpoint of that name is there; returns its index or -1.
static int add_ckpt(rd_set *s, res_ckpt *r, int src) {
    for (int k = 0; k < s->n; k++)
        if (!strcmp(s->r[k].name, r->name)) { res_ckpt_free(r); return -1; }
    if (s->n == s->cap) {
        size_t cap = (size_t)s->cap, c2 = cap;
        xgrow(s->r, cap, (size_t)s->n + 1);
        xgrow(s->src, c2, (size_t)s->n + 1);
        s->cap = (int)cap;
        s->sd = xrealloc(s->sd, sizeof(double) * cap * RD_NMETRICS);
    }
    s->r[s->n] = *r;
    s->src[s->n] = src;
    for (int m = 0; m < RD_NMETRICS; m++) s->sd[(size_t)s->n * RD_NMETRICS + m] = NAN;
    return s->n++;
}

static int col_of(const benchtab *t, const char *name, const char *suffix) {
    char c[128];
    snprintf(c, sizeof c, "%s%s", name, suffix);
    for (int k = 0; k < t->n_cols; k++)
        if (!strcmp(t->cols[k], c)) return k;
    return -1;
}

// summary.csv of a folder: its checkpoints (when add) and the `_sd` spreads of those in s.
static int read_summary(rd_set *s, const char *csv, int add, int src, ibc_err *err) {
    benchtab t;
    int rc = bt_read(csv, "checkpoint", "", BT_FIRST, &t, err);
    if (rc) return rc;
    int npos = col_of(&t, "n_positions", "");
    for (int i = 0; i < t.n_rows; i++) {
        int at = -1;
        if (add) {
            res_ckpt r;
            memset(&r, 0, sizeof r);
            snprintf(r.name, sizeof r.name, "%s", t.names[i]);
            r.status = RES_COMPLETE;
            r.n_positions = npos >= 0 ? (int64_t)t.v[(size_t)i * t.n_cols + npos] : 0;
            for (int m = 0; m < RD_NMETRICS; m++) {
                int c = col_of(&t, RD_METRICS[m], "");
                *metric_slot(&r, m) = c >= 0 ? t.v[(size_t)i * t.n_cols + c] : NAN;
            }
            at = add_ckpt(s, &r, src);
        } else {
            for (int k = 0; k < s->n && at < 0; k++)
                if (s->src[k] == src && !strcmp(s->r[k].name, t.names[i])) at = k;
        }
        for (int m = 0; at >= 0 && m < RD_NMETRICS; m++) {
            int c = col_of(&t, RD_METRICS[m], "_sd");
            if (c < 0) continue;
            s->sd[(size_t)at * RD_NMETRICS + m] = t.v[(size_t)i * t.n_cols + c];
            s->has_sd = 1;
        }
    }
    bt_free(&t);
    return 0;
}

static int add_h5(rd_set *s, const char *h5, ibc_err *err) {
    res_ckpt *r;
    int n, rc = results_read_all(h5, &r, &n, err);
    if (rc) return rc;
    int src = add_source(s, h5, 1);
    for (int i = 0; i < n; i++) {
        if (r[i].status == RES_COMPLETE) add_ckpt(s, &r[i], src);
        else res_ckpt_free(&r[i]);
    }
    free(r);
    char dir[IBC_PATH_MAX], csv[IBC_PATH_NAME_MAX];
    snprintf(dir, sizeof dir, "%s", h5);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    if (io_join(csv, sizeof csv, dir, "summary.csv", NULL) == 0 && is_file(csv)) {
        ibc_err ignored = {0}; // spreads are optional: a summary.csv of another form adds none
        read_summary(s, csv, 0, src, &ignored);
    }
    return 0;
}

// A folder: its *.h5 files, else those one or two levels below (Slurm task folders), else
// its summary.csv. *found counts the sources read.
static int add_dir(rd_set *s, const char *in, int depth, int *found, ibc_err *err) {
    DIR *d = opendir(in);
    if (!d) return ibc_fail(err, IBC_EINPUT, "%s: cannot open", in);
    struct dirent *e;
    int rc = 0, here = 0;
    char path[IBC_PATH_NAME_MAX];
    while (rc == 0 && (e = readdir(d)))
        if (e->d_name[0] != '.' && ends_with(e->d_name, ".h5")) {
            rc = io_join(path, sizeof path, in, e->d_name, err);
            if (rc == 0) rc = add_h5(s, path, err);
            here++;
        }
    rewinddir(d);
    int before = *found;
    while (rc == 0 && !here && depth < 2 && (e = readdir(d))) // task folders, e.g. NAME/tasks/K
        if (e->d_name[0] != '.' && io_join(path, sizeof path, in, e->d_name, NULL) == 0 && is_dir(path))
            rc = add_dir(s, path, depth + 1, found, err);
    closedir(d);
    if (rc == 0 && !here && *found == before && depth == 0 && io_join(path, sizeof path, in, "summary.csv", err) == 0 &&
        is_file(path)) {
        rc = read_summary(s, path, 1, add_source(s, path, 0), err);
        here++;
    }
    *found += here;
    return rc;
}

int rd_add(rd_set *s, const char *in, ibc_err *err) {
    struct stat sb;
    if (stat(in, &sb) != 0) return ibc_fail(err, IBC_EINPUT, "%s: no such file or folder", in);
    int found = 0, rc = S_ISDIR(sb.st_mode) ? add_dir(s, in, 0, &found, err) : add_h5(s, in, err);
    if (rc == 0 && S_ISDIR(sb.st_mode) && !found)
        rc = ibc_fail(err, IBC_EINPUT, "%s: no results file (*.h5 or summary.csv) found", in);
    return rc;
}

int rd_add_all(rd_set *s, const char *const *inputs, int n, ibc_err *err) {
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) rc = rd_add(s, inputs[i], err);
    if (rc == 0 && s->n == 0) rc = ibc_fail(err, IBC_EINPUT, "%s: no complete checkpoint in the results", inputs[0]);
    return rc;
}

void rd_free(rd_set *s) {
    for (int i = 0; i < s->n; i++) res_ckpt_free(&s->r[i]);
    for (int i = 0; i < s->n_srcs; i++) {
        free(s->srcs[i].path);
        free(s->srcs[i].job);
        free(s->srcs[i].manifest);
    }
    free(s->r);
    free(s->src);
    free(s->sd);
    free(s->srcs);
    memset(s, 0, sizeof *s);
}

int rd_need_h5(const rd_set *s, const char *what, ibc_err *err) {
    for (int i = 0; i < s->n_srcs; i++)
        if (!s->srcs[i].h5)
            return ibc_fail(err, IBC_EINPUT, "%s: %s needs the HDF5 results file (only summary.csv is there)",
                            s->srcs[i].path, what);
    return 0;
}

int rd_same_anchors(const rd_set *s, ibc_err *err) {
    int first = -1;
    for (int i = 0; i < s->n_srcs; i++) {
        if (!s->srcs[i].anchors) continue;
        if (first < 0) first = i;
        else if (s->srcs[i].anchors != s->srcs[first].anchors)
            return ibc_fail(err, IBC_EINPUT, "%s and %s: results measured with different anchors; they are not on one plane",
                            s->srcs[first].path, s->srcs[i].path);
    }
    return 0;
}

void rd_run_key(const char *name, char *key, size_t cap, long *step) {
    size_t n = strlen(name), k = n;
    while (k > 0 && name[k - 1] >= '0' && name[k - 1] <= '9') k--;
    *step = k < n ? atol(name + k) : -1;
    snprintf(key, cap, "%.*s", (int)k, name);
}

int rd_runs(const rd_set *s, int **order, int **run_start) {
    *order = xmalloc(sizeof(int) * (size_t)(s->n + 1));
    *run_start = xmalloc(sizeof(int) * (size_t)(s->n + 2));
    char *done = xcalloc((size_t)s->n + 1, 1);
    int runs = 0, k = 0;
    for (int i = 0; i < s->n; i++) {
        if (done[i]) continue;
        char key[256], k2[256];
        long si, sj;
        rd_run_key(s->r[i].name, key, sizeof key, &si);
        (*run_start)[runs++] = k;
        for (;;) { // the rest of this run, smallest step first
            int best = -1;
            long bs = 0;
            for (int j = 0; j < s->n; j++) {
                if (done[j]) continue;
                rd_run_key(s->r[j].name, k2, sizeof k2, &sj);
                if (strcmp(key, k2) || (si < 0 && j != i) || (si >= 0 && sj < 0)) continue;
                if (best < 0 || sj < bs) best = j, bs = sj;
            }
            if (best < 0) break;
            done[best] = 1;
            (*order)[k++] = best;
        }
    }
    (*run_start)[runs] = k;
    free(done);
    return runs;
}
