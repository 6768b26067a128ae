#include "ibc/correlate.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ibc/io.h"
#include "ibc/results.h"
#include "ibc/stats.h"

#define N_METRICS 14
static const char *METRICS[N_METRICS] = {"H_mean", "complexity_1", "complexity_2", "complexity_3", "complexity_4",
                                         "expressivity_1", "expressivity_2", "expressivity_3", "expressivity_4",
                                         "optimality_1", "optimality_2", "optimality_3", "optimality_4", "pref_info"};

static double metric(const res_ckpt *r, int m) {
    const se_summary *s = &r->sum;
    if (m == 0) return s->H_mean;
    if (m <= 4) return s->complexity[m];
    if (m <= 8) return s->expressivity[m - 4];
    if (m <= 12) return s->optimality[m - 8];
    return s->pref_info;
}

// A metric for the statistics: one of the summary metrics, or (per layer) a per-layer value.
typedef struct {
    char name[32];
    int summary; // index in METRICS, or -1
    int layer;   // hidden-state index for per-layer metrics
    int what;    // 0 H, 1..4 I_X k, 5..8 I_Y k, 9 I_pref
} mdesc;

static double mval(const res_ckpt *r, const mdesc *m) {
    if (m->summary >= 0) return metric(r, m->summary);
    for (int s = 0; s < r->n_layers; s++) {
        if (r->layer_ids[s] != m->layer) continue;
        if (m->what == 0) return r->H[s];
        if (m->what <= 4) return r->I_X[(size_t)(m->what - 1) * r->n_layers + s];
        if (m->what <= 8) return r->I_Y[(size_t)(m->what - 5) * r->n_layers + s];
        return r->I_pref[s];
    }
    return NAN;
}

typedef struct {
    res_ckpt *r;
    int n, cap;
} ckpts;

static int add_file(ckpts *all, const char *h5, ibc_err *err) {
    res_ckpt *r;
    int n, rc = results_read_all(h5, &r, &n, err);
    if (rc) return rc;
    for (int i = 0; i < n; i++) {
        int dup = r[i].status != RES_COMPLETE;
        for (int k = 0; k < all->n && !dup; k++) dup = !strcmp(all->r[k].name, r[i].name);
        if (dup) { res_ckpt_free(&r[i]); continue; }
        if (all->n == all->cap) {
            int cap = all->cap ? 2 * all->cap : 64;
            res_ckpt *nr = realloc(all->r, sizeof(res_ckpt) * (size_t)cap);
            if (!nr) { free(r); return ibc_fail(err, IBC_ESYS, "out of memory"); }
            all->r = nr;
            all->cap = cap;
        }
        all->r[all->n++] = r[i];
    }
    free(r);
    return 0;
}

static int ends_with(const char *s, const char *x) {
    size_t a = strlen(s), b = strlen(x);
    return a >= b && !strcmp(s + a - b, x);
}

// A folder: its *.h5 files, else those one level below (Slurm task folders).
static int add_input(ckpts *all, const char *in, int depth, int *found, ibc_err *err) {
    struct stat sb;
    if (stat(in, &sb) != 0) return ibc_fail(err, IBC_EINPUT, "%s: no such file or folder", in);
    if (!S_ISDIR(sb.st_mode)) { (*found)++; return add_file(all, in, err); }
    DIR *d = opendir(in);
    if (!d) return ibc_fail(err, IBC_EINPUT, "%s: cannot open", in);
    struct dirent *e;
    int rc = 0, here = 0;
    char path[4200];
    while (rc == 0 && (e = readdir(d)))
        if (e->d_name[0] != '.' && ends_with(e->d_name, ".h5")) {
            snprintf(path, sizeof path, "%s/%s", in, e->d_name);
            rc = add_file(all, path, err);
            here++;
        }
    rewinddir(d);
    while (rc == 0 && !here && depth < 2 && (e = readdir(d))) // task folders, e.g. NAME/tasks/K
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", in, e->d_name);
            if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) rc = add_input(all, path, depth + 1, found, err);
        }
    closedir(d);
    *found += here;
    return rc;
}

static void num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, ",%.17g", v);
    else fputc(',', f);
}

// Training runs for the information plane: names that differ only in a trailing number
// (e.g. step-100, step-2000) are one run, joined in the order of that number.
static void run_key(const char *name, char *key, size_t cap, long *step) {
    size_t n = strlen(name), k = n;
    while (k > 0 && name[k - 1] >= '0' && name[k - 1] <= '9') k--;
    *step = k < n ? atol(name + k) : -1;
    snprintf(key, cap, "%.*s", (int)k, name);
}

static int write_plots(const char *out, const ckpts *all, const int *row, const benchtab *t, const double *score,
                       int nb, char **bnames, ibc_err *err) {
    char dir[4200], path[4400];
    snprintf(dir, sizeof dir, "%s/plots", out);
    int rc = io_mkdirs(dir, err);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/plots.gp", dir);
    FILE *gp = fopen(path, "w");
    if (!gp) return ibc_fail(err, IBC_ESYS, "%s: cannot create", path);
    fprintf(gp, "# gnuplot script written by ibc correlate; run `gnuplot plots.gp` here to redraw.\n"
                "set datafile separator ','\nset key outside right top\nset grid\n");
    const char *terms[2][2] = {{"pngcairo size 900,640 font 'sans,11'", "png"}, {"svg size 900,640 font 'sans,11'", "svg"}};
    // Information plane per order: a data block per training run.
    for (int k = 1; k <= 4; k++) {
        int any = 0;
        for (int i = 0; i < all->n; i++) any |= isfinite(metric(&all->r[i], k)) && isfinite(metric(&all->r[i], 4 + k));
        if (!any) continue;
        snprintf(path, sizeof path, "%s/information_plane_k%d.dat", dir, k);
        FILE *f = fopen(path, "w");
        if (!f) { fclose(gp); return ibc_fail(err, IBC_ESYS, "%s: cannot create", path); }
        char *done = calloc((size_t)all->n, 1);
        double lo = 1, hi = 0;
        for (int i = 0; i < all->n; i++) { // one block per run, points in step order
            if (done[i]) continue;
            char key[256], k2[256];
            long si, sj;
            run_key(all->r[i].name, key, sizeof key, &si);
            fprintf(f, "# run %s\n", key);
            for (;;) {
                int best = -1;
                long bs = 0;
                for (int j = 0; j < all->n; j++) {
                    if (done[j]) continue;
                    run_key(all->r[j].name, k2, sizeof k2, &sj);
                    if (strcmp(key, k2) || (si < 0 && j != i)) continue;
                    if (best < 0 || sj < bs) { best = j; bs = sj; }
                }
                if (best < 0) break;
                done[best] = 1;
                double x = metric(&all->r[best], k), y = metric(&all->r[best], 4 + k);
                if (isfinite(x) && isfinite(y)) {
                    fprintf(f, "%.17g,%.17g,\"%s\"\n", x, y, all->r[best].name);
                    lo = fmin(lo, fmin(x, y));
                    hi = fmax(hi, fmax(x, y));
                }
            }
            fprintf(f, "\n\n");
        }
        free(done);
        fclose(f);
        double pad = (hi - lo) * 0.08 + 1e-3;
        for (int g = 0; g < 2; g++)
            fprintf(gp,
                    "set terminal %s\nset output 'information_plane_k%d.%s'\n"
                    "set title 'Information plane, order %d: complexity I(X_%d;Z) vs expressivity I(Y_%d;Z)'\n"
                    "set xlabel 'complexity_%d (mean over layers of I(X_%d; Z))'\nset ylabel 'expressivity_%d (mean over layers of I(Y_%d; Z))'\n"
                    "set xrange [%g:%g]\nset yrange [%g:%g]\n"
                    "plot x title 'IB bound (optimality = 1)' lw 2 dt 2 lc rgb '#888888', "
                    "'information_plane_k%d.dat' using 1:2 with linespoints pt 7 ps 1.2 title 'checkpoints (runs joined in step order)'\n",
                    terms[g][0], k, terms[g][1], k, k, k, k, k, k, k, lo - pad, hi + pad, lo - pad, hi + pad, k);
    }
    // Each metric against each benchmark, with the least-squares line.
    int n = 0;
    for (int i = 0; i < all->n; i++) n += row[i] >= 0;
    for (int m = 0; m < N_METRICS; m++)
        for (int b = 0; b < nb; b++) {
            double *x = malloc(sizeof(double) * (size_t)(n + 1)), *y = malloc(sizeof(double) * (size_t)(n + 1));
            int c = 0;
            for (int i = 0; i < all->n; i++) {
                if (row[i] < 0) continue;
                double xv = metric(&all->r[i], m), yv = score[(size_t)row[i] * nb + b];
                if (isfinite(xv) && isfinite(yv)) x[c] = xv, y[c++] = yv;
            }
            st_ols o;
            if (c >= 3 && st_ols_fit(y, x, c, 1, &o) == 0) {
                snprintf(path, sizeof path, "%s/%s__%s.dat", dir, METRICS[m], bnames[b]);
                FILE *f = fopen(path, "w");
                for (int i = 0; f && i < c; i++) fprintf(f, "%.17g,%.17g\n", x[i], y[i]);
                if (f) fclose(f);
                double r, p;
                st_pearson(x, y, c, &r, &p);
                for (int g = 0; g < 2; g++)
                    fprintf(gp,
                            "set terminal %s\nset output '%s__%s.%s'\nset title '%s vs %s: r = %.3f, p = %.3g, n = %d'\n"
                            "set xlabel '%s'\nset ylabel '%s'\nset autoscale\n"
                            "plot '%s__%s.dat' using 1:2 with points pt 7 ps 1.2 title 'models', %.17g + %.17g * x title 'least squares' lw 2\n",
                            terms[g][0], METRICS[m], bnames[b], terms[g][1], METRICS[m], bnames[b], r, p, c, METRICS[m],
                            bnames[b], METRICS[m], bnames[b], o.coef[0], o.coef[1]);
            }
            free(x);
            free(y);
        }
    fclose(gp);
    (void)t;
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot plots.gp 2>gnuplot.log", dir);
    if (system(cmd) != 0) return ibc_fail(err, IBC_ESYS, "%s/plots.gp: gnuplot failed (see gnuplot.log)", dir);
    return 0;
}

int corr_run(const corr_opts *o, ibc_err *err) {
    ckpts all = {0};
    benchtab t = {0};
    bt_aliases al = {0};
    int rc = 0, found = 0;
    for (int i = 0; rc == 0 && i < o->n_inputs; i++) rc = add_input(&all, o->inputs[i], 0, &found, err);
    if (rc == 0 && !found) rc = ibc_fail(err, IBC_EINPUT, "%s: no results file (*.h5) found", o->inputs[0]);
    if (rc == 0) rc = bt_read(o->benchmarks, o->name_cols, o->exclude, o->dups, &t, err);
    if (rc == 0 && o->aliases) rc = bt_read_aliases(o->aliases, &al, err);
    int log_params = o->covariates && !strcmp(o->covariates, "log_params");
    if (rc == 0 && o->covariates && o->covariates[0] && !log_params)
        rc = ibc_fail(err, IBC_EINPUT, "--covariates: expected log_params, got %s", o->covariates);
    int nb = t.n_cols + 1, matched = 0;
    int *row = calloc((size_t)all.n + 1, sizeof(int));
    double *score = NULL;
    char **bnames = calloc((size_t)nb, sizeof(char *));
    if (rc == 0 && (!row || !bnames)) rc = ibc_fail(err, IBC_ESYS, "out of memory");
    if (rc == 0) {
        for (int b = 0; b < t.n_cols; b++) bnames[b] = t.cols[b];
        bnames[t.n_cols] = "mean";
        score = malloc(sizeof(double) * (size_t)t.n_rows * nb);
        for (int i = 0; score && i < t.n_rows; i++) { // "mean": the mean of the benchmark columns (all present)
            double s = 0;
            for (int b = 0; b < t.n_cols; b++) s += score[(size_t)i * nb + b] = t.v[(size_t)i * t.n_cols + b];
            score[(size_t)i * nb + t.n_cols] = s / t.n_cols;
        }
        char path[4200];
        snprintf(path, sizeof path, "%s/unmatched.txt", o->out);
        rc = io_mkdirs(o->out, err);
        FILE *um = rc ? NULL : fopen(path, "w");
        for (int i = 0; i < all.n; i++) {
            row[i] = bt_find(&t, bt_alias(&al, all.r[i].name));
            matched += row[i] >= 0;
            if (row[i] < 0) {
                fprintf(stderr, "ibc: unmatched: %s\n", all.r[i].name);
                if (um) fprintf(um, "%s\n", all.r[i].name);
            }
        }
        if (um) fclose(um);
        if (rc == 0 && matched < 3)
            rc = ibc_fail(err, IBC_EINPUT, "%s: only %d of %d checkpoints matched a row (need 3); see --name-column and --aliases",
                          o->benchmarks, matched, all.n);
    }
    io_file fc, fr, fp, fm, fx;
    char path[4200];
    memset(&fp, 0, sizeof fp);
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/correlations.csv", o->out);
        rc = io_begin(&fc, path, err);
        snprintf(path, sizeof path, "%s/regression.csv", o->out);
        if (rc == 0) rc = io_begin(&fr, path, err);
        snprintf(path, sizeof path, "%s/correlations.md", o->out);
        if (rc == 0) rc = io_begin(&fm, path, err);
        snprintf(path, sizeof path, "%s/matched.csv", o->out);
        if (rc == 0) rc = io_begin(&fx, path, err);
        snprintf(path, sizeof path, "%s/partial.csv", o->out);
        if (rc == 0 && log_params) rc = io_begin(&fp, path, err);
    }
    if (rc == 0) {
        const char *cov = log_params ? "log_params" : "";
        fputs("metric,benchmark,n,spearman_rho,spearman_p,pearson_r,pearson_p\n", fc.f);
        fputs("metric,benchmark,covariates,n,term,coef,se,t,p,r2,adj_r2,loo_r2\n", fr.f);
        if (log_params) fputs("metric,benchmark,covariates,n,partial_r,p\n", fp.f);
        fprintf(fm.f, "| metric | benchmark | r | p | n |\n|---|---|---|---|---|\n");
        fputs("checkpoint,table_name,params", fx.f);
        for (int m = 0; m < N_METRICS; m++) fprintf(fx.f, ",%s", METRICS[m]);
        for (int b = 0; b < nb; b++) fprintf(fx.f, ",%s", bnames[b]);
        fputc('\n', fx.f);
        for (int i = 0; i < all.n; i++) {
            if (row[i] < 0) continue;
            fprintf(fx.f, "%s,%s,%lld", all.r[i].name, t.names[row[i]], (long long)all.r[i].params);
            for (int m = 0; m < N_METRICS; m++) num(fx.f, metric(&all.r[i], m));
            for (int b = 0; b < nb; b++) num(fx.f, score[(size_t)row[i] * nb + b]);
            fputc('\n', fx.f);
        }
        // The metrics: the summary ones, then (--per-layer) every per-layer value of every
        // hidden-state index some matched checkpoint tracks.
        int maxl = -1, nm = N_METRICS;
        for (int i = 0; i < all.n; i++)
            for (int s = 0; row[i] >= 0 && o->per_layer && s < all.r[i].n_layers; s++)
                if (all.r[i].layer_ids[s] > maxl) maxl = all.r[i].layer_ids[s];
        mdesc *ms = calloc((size_t)N_METRICS + 10 * (size_t)(maxl + 1), sizeof(mdesc));
        for (int m = 0; ms && m < N_METRICS; m++) {
            snprintf(ms[m].name, sizeof ms[m].name, "%s", METRICS[m]);
            ms[m].summary = m;
        }
        static const char *PL[10] = {"H", "I_X1", "I_X2", "I_X3", "I_X4", "I_Y1", "I_Y2", "I_Y3", "I_Y4", "I_pref"};
        for (int l = 0; ms && l <= maxl; l++)
            for (int w = 0; w < 10; w++, nm++) {
                snprintf(ms[nm].name, sizeof ms[nm].name, "%s@%d", PL[w], l);
                ms[nm].summary = -1;
                ms[nm].layer = l;
                ms[nm].what = w;
            }
        double *x = malloc(sizeof(double) * (size_t)matched), *y = malloc(sizeof(double) * (size_t)matched),
               *X = malloc(sizeof(double) * 2 * (size_t)matched), *Z = malloc(sizeof(double) * (size_t)matched);
        for (int m = 0; ms && m < nm; m++)
            for (int b = 0; b < nb; b++) {
                int n = 0;
                for (int i = 0; i < all.n; i++) {
                    if (row[i] < 0) continue;
                    double xv = mval(&all.r[i], &ms[m]), yv = score[(size_t)row[i] * nb + b];
                    if (!isfinite(xv) || !isfinite(yv) || (log_params && all.r[i].params <= 0)) continue;
                    x[n] = xv;
                    y[n] = yv;
                    Z[n] = log10((double)all.r[i].params);
                    X[2 * n] = xv;
                    X[2 * n + 1] = Z[n];
                    n++;
                }
                if (n < 3) continue; // this metric is absent (e.g. an order not in the job)
                double rho, ps, r, pp;
                st_spearman(x, y, n, &rho, &ps);
                st_pearson(x, y, n, &r, &pp);
                const char *mn = ms[m].name;
                fprintf(fc.f, "%s,%s,%d", mn, bnames[b], n);
                num(fc.f, rho); num(fc.f, ps); num(fc.f, r); num(fc.f, pp);
                fputc('\n', fc.f);
                fprintf(fm.f, "| %s | %s | %.3f | %.3g | %d |\n", mn, bnames[b], r, pp, n);
                st_ols ols;
                int k = log_params ? 2 : 1;
                if (st_ols_fit(y, log_params ? X : x, n, k, &ols) == 0) {
                    const char *term[3] = {"intercept", mn, "log_params"};
                    for (int j = 0; j < ols.p; j++) {
                        fprintf(fr.f, "%s,%s,%s,%d,%s", mn, bnames[b], cov, n, term[j]);
                        num(fr.f, ols.coef[j]); num(fr.f, ols.se[j]); num(fr.f, ols.t[j]); num(fr.f, ols.pval[j]);
                        num(fr.f, ols.r2); num(fr.f, ols.adj_r2); num(fr.f, ols.loo_r2);
                        fputc('\n', fr.f);
                    }
                }
                if (log_params) {
                    double pr, ppv;
                    st_partial(x, y, Z, n, 1, &pr, &ppv);
                    fprintf(fp.f, "%s,%s,%s,%d", mn, bnames[b], cov, n);
                    num(fp.f, pr); num(fp.f, ppv);
                    fputc('\n', fp.f);
                }
            }
        if (!ms) rc = ibc_fail(err, IBC_ESYS, "out of memory");
        free(ms);
        free(x); free(y); free(X); free(Z);
        if (rc == 0) rc = io_commit(&fc, err);
        if (rc == 0) rc = io_commit(&fr, err);
        if (rc == 0) rc = io_commit(&fm, err);
        if (rc == 0) rc = io_commit(&fx, err);
        if (rc == 0 && log_params) rc = io_commit(&fp, err);
        if (rc == 0 && o->plots) rc = write_plots(o->out, &all, row, &t, score, nb, bnames, err);
    }
    for (int i = 0; i < all.n; i++) res_ckpt_free(&all.r[i]);
    free(all.r);
    free(row);
    free(score);
    free(bnames);
    bt_free(&t);
    bt_aliases_free(&al);
    return rc;
}
