#include "ibc/correlate.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ibc/io.h"
#include "ibc/limits.h"
#include "ibc/mem.h"
#include "ibc/resdir.h"
#include "ibc/stats.h"

// A metric for the statistics: one of the summary metrics, or (per layer) a per-layer value.
typedef struct {
    char name[32];
    int summary; // index in RD_METRICS, or -1
    int layer;   // hidden-state index for per-layer metrics
    int what;    // 0 H, 1..4 I_X k, 5..8 I_Y k, 9 I_pref
} mdesc;

static double mval(const res_ckpt *r, const mdesc *m) {
    if (m->summary >= 0) return rd_metric(r, m->summary);
    for (int s = 0; s < r->n_layers; s++) {
        if (r->layer_ids[s] != m->layer) continue;
        if (m->what == 0) return r->H[s];
        if (m->what <= 4) return r->I_X[(size_t)(m->what - 1) * r->n_layers + s];
        if (m->what <= 8) return r->I_Y[(size_t)(m->what - 5) * r->n_layers + s];
        return r->I_pref[s];
    }
    return NAN;
}

static void num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, ",%.17g", v);
    else fputc(',', f);
}

// Everything corr_run works on.
typedef struct {
    const corr_opts *o;
    const rd_set *set;
    benchtab t;
    bt_aliases al;
    int *row;        // [set.n] table row of each checkpoint, -1 when unmatched
    double *score;   // [t.n_rows, nb] the benchmark columns and their mean
    const char **bnames; // [nb]
    int nb, matched, log_params, B;
    st_plan *plans;  // [set.n + 1] resampling plans by n, built on first use
} ctx;

static void ctx_free(ctx *c) {
    for (int n = 0; c->plans && n <= c->set->n; n++) st_plan_free(&c->plans[n]);
    free(c->plans);
    bt_free(&c->t);
    bt_aliases_free(&c->al);
    free(c->row);
    free(c->score);
    free(c->bnames);
}

static const st_plan *plan_for(ctx *c, int n) {
    if (!c->plans[n].boot) st_plan_init(&c->plans[n], n, c->B, c->o->seed);
    return &c->plans[n];
}

// Reads the table and matches checkpoints to rows (unmatched on stderr and into um, if any).
static int load(ctx *c, FILE *um, ibc_err *err) {
    const corr_opts *o = c->o;
    int rc = 0;
    c->log_params = o->covariates && !strcmp(o->covariates, "log_params");
    if (o->per_layer) rc = rd_need_h5(c->set, "--per-layer", err);
    if (rc == 0 && c->log_params) rc = rd_need_h5(c->set, "--covariates log_params (the parameter count)", err);
    if (rc == 0 && o->covariates && o->covariates[0] && !c->log_params)
        rc = ibc_fail(err, IBC_EINPUT, "--covariates: expected log_params, got %s", o->covariates);
    if (rc == 0) rc = bt_read(o->benchmarks, o->name_cols, o->exclude, o->dups, &c->t, err);
    if (rc == 0 && o->aliases) rc = bt_read_aliases(o->aliases, &c->al, err);
    if (rc) return rc;
    const benchtab *t = &c->t;
    c->nb = t->n_cols + 1;
    c->bnames = xcalloc((size_t)c->nb, sizeof(char *));
    for (int b = 0; b < t->n_cols; b++) c->bnames[b] = t->cols[b];
    c->bnames[t->n_cols] = "mean";
    c->score = xmalloc(sizeof(double) * (size_t)t->n_rows * (size_t)c->nb);
    for (int i = 0; i < t->n_rows; i++) { // "mean": the mean of the benchmark columns (all present)
        double s = 0;
        for (int b = 0; b < t->n_cols; b++) s += c->score[(size_t)i * c->nb + b] = t->v[(size_t)i * t->n_cols + b];
        c->score[(size_t)i * c->nb + t->n_cols] = s / t->n_cols;
    }
    c->row = xcalloc((size_t)c->set->n + 1, sizeof(int));
    c->plans = xcalloc((size_t)c->set->n + 1, sizeof(st_plan));
    for (int i = 0; i < c->set->n; i++) {
        c->row[i] = bt_find(t, bt_alias(&c->al, c->set->r[i].name));
        c->matched += c->row[i] >= 0;
        if (c->row[i] < 0) {
            fprintf(stderr, "ibc: unmatched: %s\n", c->set->r[i].name);
            if (um) fprintf(um, "%s\n", c->set->r[i].name);
        }
    }
    if (c->matched < 3)
        return ibc_fail(err, IBC_EINPUT, "%s: only %d of %d checkpoints matched a row (need 3); see --name-column and --aliases",
                        o->benchmarks, c->matched, c->set->n);
    return 0;
}

static void write_matched(const ctx *c, FILE *f) {
    fputs("checkpoint,table_name,params", f);
    for (int m = 0; m < RD_NMETRICS; m++) fprintf(f, ",%s", RD_METRICS[m]);
    for (int b = 0; b < c->nb; b++) fprintf(f, ",%s", c->bnames[b]);
    fputc('\n', f);
    for (int i = 0; i < c->set->n; i++) {
        if (c->row[i] < 0) continue;
        fprintf(f, "%s,%s,%lld", c->set->r[i].name, c->t.names[c->row[i]], (long long)c->set->r[i].params);
        for (int m = 0; m < RD_NMETRICS; m++) num(f, rd_metric(&c->set->r[i], m));
        for (int b = 0; b < c->nb; b++) num(f, c->score[(size_t)c->row[i] * c->nb + b]);
        fputc('\n', f);
    }
}

// The metrics: the summary ones, then (--per-layer) every per-layer value of every hidden-state
// index some matched checkpoint tracks.
static mdesc *metric_list(const ctx *c, int *nm) {
    static const char *PL[10] = {"H", "I_X1", "I_X2", "I_X3", "I_X4", "I_Y1", "I_Y2", "I_Y3", "I_Y4", "I_pref"};
    int maxl = -1;
    for (int i = 0; i < c->set->n; i++)
        for (int s = 0; c->row[i] >= 0 && c->o->per_layer && s < c->set->r[i].n_layers; s++)
            if (c->set->r[i].layer_ids[s] > maxl) maxl = c->set->r[i].layer_ids[s];
    mdesc *ms = xcalloc((size_t)RD_NMETRICS + 10 * (size_t)(maxl + 1), sizeof(mdesc));
    for (int m = 0; m < RD_NMETRICS; m++) {
        snprintf(ms[m].name, sizeof ms[m].name, "%s", RD_METRICS[m]);
        ms[m].summary = m;
    }
    *nm = RD_NMETRICS;
    for (int l = 0; l <= maxl; l++)
        for (int w = 0; w < 10; w++, (*nm)++) {
            snprintf(ms[*nm].name, sizeof ms[*nm].name, "%s@%d", PL[w], l);
            ms[*nm].summary = -1;
            ms[*nm].layer = l;
            ms[*nm].what = w;
        }
    return ms;
}

// The statistics' outputs.
typedef struct {
    FILE *fc, *fr, *fp, *fm;
    double *x, *y, *X, *Z; // [matched], X [matched, 2]
} outs;

// Gathers metric m against benchmark b over the models with both values; returns n.
static int gather(const ctx *c, const mdesc *m, int b, outs *w) {
    int n = 0;
    for (int i = 0; i < c->set->n; i++) {
        if (c->row[i] < 0) continue;
        double xv = mval(&c->set->r[i], m), yv = c->score[(size_t)c->row[i] * c->nb + b];
        if (!isfinite(xv) || !isfinite(yv) || (c->log_params && c->set->r[i].params <= 0)) continue;
        w->x[n] = xv;
        w->y[n] = yv;
        w->Z[n] = c->log_params ? log10((double)c->set->r[i].params) : 0;
        w->X[2 * n] = xv;
        w->X[2 * n + 1] = w->Z[n];
        n++;
    }
    return n;
}

// The correlations of x, y [n] with their intervals and permutation p-values.
static void pair_stats(ctx *c, const double *x, const double *y, int n, corr_pair *q) {
    q->n = n;
    st_spearman(x, y, n, &q->rho, &q->rho_p);
    st_pearson(x, y, n, &q->r, &q->r_p);
    for (int k = 0; k < 2; k++) // resampled: Spearman, then Pearson
        st_corr_resample(x, y, n, k ? ST_PEARSON : ST_SPEARMAN, plan_for(c, n), 0.95, &q->s[k]);
}

static void write_pair(ctx *c, const mdesc *m, int b, outs *w) {
    int n = gather(c, m, b, w);
    if (n < 3) return; // this metric is absent (e.g. an order not in the job)
    const char *mn = m->name, *bn = c->bnames[b], *cov = c->log_params ? "log_params" : "";
    corr_pair q;
    pair_stats(c, w->x, w->y, n, &q);
    fprintf(w->fc, "%s,%s,%d", mn, bn, n);
    num(w->fc, q.rho); num(w->fc, q.rho_p); num(w->fc, q.r); num(w->fc, q.r_p);
    for (int k = 0; k < 2; k++) {
        const st_resampled *rs = &q.s[k];
        num(w->fc, rs->pct_lo); num(w->fc, rs->pct_hi); num(w->fc, rs->bca_lo); num(w->fc, rs->bca_hi); num(w->fc, rs->p_perm);
    }
    fputc('\n', w->fc);
    fprintf(w->fm, "| %s | %s | %.3f | %.3g | %d |\n", mn, bn, q.r, q.r_p, n);
    st_ols ols;
    if (st_ols_fit(w->y, c->log_params ? w->X : w->x, n, c->log_params ? 2 : 1, &ols) == 0) {
        const char *term[3] = {"intercept", mn, "log_params"};
        for (int j = 0; j < ols.p; j++) {
            fprintf(w->fr, "%s,%s,%s,%d,%s", mn, bn, cov, n, term[j]);
            num(w->fr, ols.coef[j]); num(w->fr, ols.se[j]); num(w->fr, ols.t[j]); num(w->fr, ols.pval[j]);
            num(w->fr, ols.r2); num(w->fr, ols.adj_r2); num(w->fr, ols.loo_r2);
            fputc('\n', w->fr);
        }
    }
    if (c->log_params) {
        double pr, ppv;
        st_partial(w->x, w->y, w->Z, n, 1, &pr, &ppv);
        fprintf(w->fp, "%s,%s,%s,%d", mn, bn, cov, n);
        num(w->fp, pr); num(w->fp, ppv);
        fputc('\n', w->fp);
    }
}

static void write_stats(ctx *c, outs *w) {
    fputs("metric,benchmark,n,spearman_rho,spearman_p,pearson_r,pearson_p,spearman_ci_lo,spearman_ci_hi,"
          "spearman_bca_lo,spearman_bca_hi,spearman_perm_p,pearson_ci_lo,pearson_ci_hi,pearson_bca_lo,pearson_bca_hi,"
          "pearson_perm_p\n", w->fc);
    fputs("metric,benchmark,covariates,n,term,coef,se,t,p,r2,adj_r2,loo_r2\n", w->fr);
    if (c->log_params) fputs("metric,benchmark,covariates,n,partial_r,p\n", w->fp);
    fprintf(w->fm, "| metric | benchmark | r | p | n |\n|---|---|---|---|---|\n");
    int nm;
    mdesc *ms = metric_list(c, &nm);
    size_t k = (size_t)c->matched;
    w->x = xmalloc(sizeof(double) * k);
    w->y = xmalloc(sizeof(double) * k);
    w->X = xmalloc(sizeof(double) * 2 * k);
    w->Z = xmalloc(sizeof(double) * k);
    for (int m = 0; m < nm; m++)
        for (int b = 0; b < c->nb; b++) write_pair(c, &ms[m], b, w);
    free(ms);
    free(w->x); free(w->y); free(w->X); free(w->Z);
}

// Every index set used so far: kind,n,b,indices.
static void write_resamples(const ctx *c, FILE *f) {
    fputs("kind,n,b,indices\n", f);
    for (int n = 0; n <= c->set->n; n++) {
        const st_plan *p = &c->plans[n];
        for (int k = 0; p->boot && k < 2; k++)
            for (int b = 0; b < p->B && (k == 0 || p->perm); b++) {
                const int *ix = (k ? p->perm : p->boot) + (size_t)b * n;
                fprintf(f, "%s,%d,%d,", k ? "perm" : "boot", n, b);
                for (int i = 0; i < n; i++) fprintf(f, "%s%d", i ? " " : "", ix[i]);
                fputc('\n', f);
            }
    }
}

// ---------------------------------------------------------------------------------------------
// The output set, all or nothing

#define CORR_OUTS 7
typedef struct {
    const char *name[CORR_OUTS];
    char *buf[CORR_OUTS];
    size_t len[CORR_OUTS];
    FILE *f[CORR_OUTS];
    int n;
} oset;

static FILE *oset_add(oset *s, const char *name) {
    int i = s->n++;
    s->name[i] = name;
    s->f[i] = open_memstream(&s->buf[i], &s->len[i]);
    if (!s->f[i]) mem_malloc((size_t)-1 / 2, __FILE__, __LINE__); // the out-of-memory policy's exit
    return s->f[i];
}

static void oset_free(oset *s) {
    for (int i = 0; i < s->n; i++) {
        if (s->f[i]) fclose(s->f[i]);
        free(s->buf[i]);
    }
}

// Writes every buffer to PATH.tmp.<pid>, checks every target (and plots/ when staged), then
// renames them all; before the renames, any failure removes every temporary.
static int oset_commit(oset *s, const char *out, const char *staged, ibc_err *err) {
    io_file w[CORR_OUTS];
    char path[IBC_PATH_NAME_MAX];
    int rc = 0, k = 0;
    for (; rc == 0 && k < s->n; k++) {
        fclose(s->f[k]);
        s->f[k] = NULL;
        rc = io_join(path, sizeof path, out, s->name[k], err);
        if (rc == 0) rc = io_begin(&w[k], path, err);
        if (rc) break;
        if (fwrite(s->buf[k], 1, s->len[k], w[k].f) != s->len[k] || fflush(w[k].f) != 0 || fsync(fileno(w[k].f)) != 0) {
            rc = ibc_fail(err, IBC_ESYS, "%s: write failed: %s", w[k].path, strerror(errno));
            k++;
        }
    }
    struct stat sb;
    for (int i = 0; rc == 0 && i < s->n; i++)
        if (stat(w[i].path, &sb) == 0 && !S_ISREG(sb.st_mode))
            rc = ibc_fail(err, IBC_EINPUT, "%s: in the way (not a regular file); nothing written", w[i].path);
    if (rc == 0 && staged && (rc = io_join(path, sizeof path, out, "plots", err)) == 0 && mkdir(path, 0777) != 0 &&
        (errno != EEXIST || stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        rc = ibc_fail(err, IBC_EINPUT, "%s: cannot create the plots folder (a file in the way?); nothing written", path);
    for (int i = 0; i < k; i++) {
        if (rc) { io_abort(&w[i]); continue; }
        rc = io_commit(&w[i], err);
    }
    return rc;
}

// Moves every file of the staging folder into out/plots (or deletes them when !keep), then
// removes the staging folder.
static int move_staged(const char *staged, const char *out, int keep, ibc_err *err) {
    DIR *d = opendir(staged);
    if (!d) return keep ? ibc_fail(err, IBC_ESYS, "%s: cannot open", staged) : 0;
    char from[IBC_PATH_NAME_MAX], to[IBC_PATH_NAME_MAX], plots[IBC_PATH_NAME_MAX];
    int rc = io_join(plots, sizeof plots, out, "plots", err);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && io_join(from, sizeof from, staged, e->d_name, NULL) == 0) {
            if (keep && rc == 0 && io_join(to, sizeof to, plots, e->d_name, err) == 0 && rename(from, to) != 0)
                rc = ibc_fail(err, IBC_ESYS, "%s: rename failed: %s", to, strerror(errno));
            remove(from);
        }
    closedir(d);
    rmdir(staged);
    return rc;
}

int corr_summarize(const corr_opts *o, const rd_set *set, corr_summary *out, ibc_err *err) {
    memset(out, 0, sizeof *out);
    ctx c = {.o = o, .set = set, .B = o->resamples > 0 ? o->resamples : 10000};
    int rc = load(&c, NULL, err);
    if (rc == 0) {
        out->matched = c.matched;
        out->nb = c.nb;
        out->bnames = xcalloc((size_t)c.nb, sizeof(char *));
        for (int b = 0; b < c.nb; b++) out->bnames[b] = xstrdup(c.bnames[b]);
        out->pairs = xcalloc((size_t)RD_NMETRICS * (size_t)c.nb, sizeof(corr_pair));
        outs w = {0};
        w.x = xmalloc(sizeof(double) * (size_t)c.matched);
        w.y = xmalloc(sizeof(double) * (size_t)c.matched);
        w.X = xmalloc(sizeof(double) * 2 * (size_t)c.matched);
        w.Z = xmalloc(sizeof(double) * (size_t)c.matched);
        for (int m = 0; m < RD_NMETRICS; m++)
            for (int b = 0; b < c.nb; b++) {
                mdesc md = {.summary = m};
                int n = gather(&c, &md, b, &w);
                if (n < 3) continue;
                corr_pair *q = &out->pairs[out->n_pairs++];
                pair_stats(&c, w.x, w.y, n, q);
                q->metric = m;
                q->bench = b;
                q->x = xmalloc(sizeof(double) * (size_t)n);
                q->y = xmalloc(sizeof(double) * (size_t)n);
                memcpy(q->x, w.x, sizeof(double) * (size_t)n);
                memcpy(q->y, w.y, sizeof(double) * (size_t)n);
            }
        free(w.x); free(w.y); free(w.X); free(w.Z);
    }
    ctx_free(&c);
    return rc;
}

void corr_summary_free(corr_summary *s) {
    for (int b = 0; b < s->nb; b++) free(s->bnames[b]);
    for (int i = 0; i < s->n_pairs; i++) { free(s->pairs[i].x); free(s->pairs[i].y); }
    free(s->bnames);
    free(s->pairs);
    memset(s, 0, sizeof *s);
}

int corr_run(const corr_opts *o, ibc_err *err) {
    rd_set set = {0};
    ctx c = {.o = o, .set = &set, .B = o->resamples > 0 ? o->resamples : 10000};
    oset s = {0};
    FILE *um = oset_add(&s, "unmatched.txt");
    int rc = rd_add_all(&set, o->inputs, o->n_inputs, err);
    if (rc == 0) rc = load(&c, um, err);
    char staged[IBC_PATH_NAME_MAX], leaf[64];
    snprintf(leaf, sizeof leaf, ".plots.tmp.%ld", (long)getpid());
    if (rc == 0) rc = io_mkdirs(o->out, err);
    if (rc == 0) rc = io_join(staged, sizeof staged, o->out, leaf, err);
    if (rc == 0) {
        outs w = {oset_add(&s, "correlations.csv"), oset_add(&s, "regression.csv"),
                  c.log_params ? oset_add(&s, "partial.csv") : NULL, oset_add(&s, "correlations.md"), 0, 0, 0, 0};
        write_stats(&c, &w);
        write_matched(&c, oset_add(&s, "matched.csv"));
        if (o->dump_resamples) write_resamples(&c, oset_add(&s, "resamples.csv"));
    }
    if (rc == 0 && o->plots) {
        rc = io_mkdirs(staged, err);
        if (rc == 0) rc = corr_plots(staged, &set, c.row, c.score, c.nb, c.bnames, err);
    }
    if (rc == 0) rc = oset_commit(&s, o->out, o->plots ? staged : NULL, err);
    if (o->plots) {
        int r2 = move_staged(staged, o->out, rc == 0, err);
        if (rc == 0) rc = r2;
    }
    oset_free(&s);
    ctx_free(&c);
    rd_free(&set);
    return rc;
}
