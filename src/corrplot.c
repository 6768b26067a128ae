// corrplot: correlate's gnuplot plots (PNG and SVG), drawn into a staging folder.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibc/correlate.h"
#include "ibc/err.h"
#include "ibc/io.h"
#include "ibc/limits.h"
#include "ibc/mem.h"
#include "ibc/resdir.h"
#include "ibc/stats.h"

static const char *TERMS[2][2] = {{"pngcairo size 900,640 font 'sans,11'", "png"}, {"svg size 900,640 font 'sans,11'", "svg"}};

// Information plane per order: a data block per training run, points in step order.
static int plane_plots(FILE *gp, const char *dir, const rd_set *set, ibc_err *err) {
    int *order, *start, runs = rd_runs(set, &order, &start), rc = 0;
    char path[IBC_PATH_NAME_MAX], leaf[64];
    for (int k = 1; k <= 4 && rc == 0; k++) {
        int any = 0;
        for (int i = 0; i < set->n; i++) any |= isfinite(rd_metric(&set->r[i], k)) && isfinite(rd_metric(&set->r[i], 4 + k));
        if (!any) continue;
        snprintf(leaf, sizeof leaf, "information_plane_k%d.dat", k);
        if ((rc = io_join(path, sizeof path, dir, leaf, err))) break;
        FILE *f = fopen(path, "w");
        if (!f) { rc = ibc_fail(err, IBC_ESYS, "%s: cannot create", path); break; }
        double lo = 1, hi = 0;
        for (int u = 0; u < runs; u++) {
            fprintf(f, "# run %d\n", u);
            for (int q = start[u]; q < start[u + 1]; q++) {
                const res_ckpt *r = &set->r[order[q]];
                double x = rd_metric(r, k), y = rd_metric(r, 4 + k);
                if (!isfinite(x) || !isfinite(y)) continue;
                fprintf(f, "%.17g,%.17g,\"%s\"\n", x, y, r->name);
                lo = fmin(lo, fmin(x, y));
                hi = fmax(hi, fmax(x, y));
            }
            fprintf(f, "\n\n");
        }
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
                    TERMS[g][0], k, TERMS[g][1], k, k, k, k, k, k, k, lo - pad, hi + pad, lo - pad, hi + pad, k);
    }
    free(order);
    free(start);
    return rc;
}

// Each metric against each benchmark, with the least-squares line.
static void scatter_plots(FILE *gp, const char *dir, const rd_set *set, const int *row, const double *score, int nb,
                          const char **bnames) {
    double *x = xmalloc(sizeof(double) * (size_t)(set->n + 1)), *y = xmalloc(sizeof(double) * (size_t)(set->n + 1));
    char path[IBC_PATH_NAME_MAX], leaf[IBC_PATH_NAME_MAX];
    for (int m = 0; m < RD_NMETRICS; m++)
        for (int b = 0; b < nb; b++) {
            int c = 0;
            for (int i = 0; i < set->n; i++) {
                if (row[i] < 0) continue;
                double xv = rd_metric(&set->r[i], m), yv = score[(size_t)row[i] * nb + b];
                if (isfinite(xv) && isfinite(yv)) x[c] = xv, y[c++] = yv;
            }
            st_ols o;
            snprintf(leaf, sizeof leaf, "%s__%s.dat", RD_METRICS[m], bnames[b]);
            if (c < 3 || st_ols_fit(y, x, c, 1, &o) != 0 || io_join(path, sizeof path, dir, leaf, NULL)) continue;
            FILE *f = fopen(path, "w");
            for (int i = 0; f && i < c; i++) fprintf(f, "%.17g,%.17g\n", x[i], y[i]);
            if (f) fclose(f);
            double r, p;
            st_pearson(x, y, c, &r, &p);
            const char *mn = RD_METRICS[m], *bn = bnames[b];
            for (int g = 0; g < 2; g++)
                fprintf(gp,
                        "set terminal %s\nset output '%s__%s.%s'\nset title '%s vs %s: r = %.3f, p = %.3g, n = %d'\n"
                        "set xlabel '%s'\nset ylabel '%s'\nset autoscale\n"
                        "plot '%s__%s.dat' using 1:2 with points pt 7 ps 1.2 title 'models', %.17g + %.17g * x title 'least squares' lw 2\n",
                        TERMS[g][0], mn, bn, TERMS[g][1], mn, bn, r, p, c, mn, bn, mn, bn, o.coef[0], o.coef[1]);
        }
    free(x);
    free(y);
}

int corr_plots(const char *dir, const rd_set *set, const int *row, const double *score, int nb, const char **bnames,
               ibc_err *err) {
    char path[IBC_PATH_NAME_MAX];
    int rc = io_join(path, sizeof path, dir, "plots.gp", err);
    if (rc) return rc;
    FILE *gp = fopen(path, "w");
    if (!gp) return ibc_fail(err, IBC_ESYS, "%s: cannot create", path);
    fprintf(gp, "# gnuplot script written by ibc correlate; run `gnuplot plots.gp` here to redraw.\n"
                "set datafile separator ','\nset key outside right top\nset grid\n");
    rc = plane_plots(gp, dir, set, err);
    if (rc == 0) scatter_plots(gp, dir, set, row, score, nb, bnames);
    if (fclose(gp) != 0 && rc == 0) rc = ibc_fail(err, IBC_ESYS, "%s: write failed", path);
    char cmd[IBC_CMD_MAX];
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot plots.gp 2>gnuplot.log", dir);
    if (rc == 0 && system(cmd) != 0) rc = ibc_fail(err, IBC_ESYS, "%s/plots.gp: gnuplot failed (see gnuplot.log)", dir);
    return rc;
}
