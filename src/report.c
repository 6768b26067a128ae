#include "ibc/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibc/correlate.h"
#include "ibc/io.h"
#include "ibc/mem.h"
#include "ibc/resdir.h"
#include "ibc/svg.h"

#define esc svg_esc

// ---------------------------------------------------------------------------------------------
// Figures: SVG text in memory, embedded as a base64 data: URI

typedef struct {
    char *buf;
    size_t len;
    FILE *f;
} fig;

static FILE *fig_open(fig *g) {
    g->buf = NULL;
    g->len = 0;
    g->f = open_memstream(&g->buf, &g->len);
    if (!g->f) mem_malloc((size_t)-1 / 2, __FILE__, __LINE__); // the out-of-memory policy's exit
    return g->f;
}

// Closes g and writes it into the page as <img> (W x H px, alt text alt).
static void fig_emit(FILE *h, fig *g, int W, int H, const char *alt) {
    static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    fclose(g->f);
    fprintf(h, "<div class=\"fig\"><img width=\"%d\" height=\"%d\" alt=\"", W, H);
    esc(h, alt);
    fputs("\" src=\"data:image/svg+xml;base64,", h);
    const unsigned char *s = (const unsigned char *)g->buf;
    for (size_t i = 0; i < g->len; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < g->len ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < g->len ? s[i + 2] : 0);
        fputc(B64[v >> 18 & 63], h);
        fputc(B64[v >> 12 & 63], h);
        fputc(i + 1 < g->len ? B64[v >> 6 & 63] : '=', h);
        fputc(i + 2 < g->len ? B64[v & 63] : '=', h);
    }
    fputs("\"></div>\n", h);
    free(g->buf);
}

static void cell(FILE *h, double v) {
    if (isfinite(v)) fprintf(h, "<td>%.4g</td>", v);
    else fputs("<td>&ndash;</td>", h);
}

static int order_present(const rd_set *s, int k) {
    for (int i = 0; i < s->n; i++)
        if (isfinite(rd_metric(&s->r[i], k))) return 1;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Sections

static void sec_job(FILE *h, const rd_set *s) {
    fputs("<h2 id=\"job\">1. The job</h2>\n", h);
    for (int i = 0; i < s->n_srcs; i++) {
        const rd_source *src = &s->srcs[i];
        fputs("<h3>", h);
        esc(h, src->path);
        fputs("</h3>\n", h);
        const char *text = src->manifest ? src->manifest : src->job;
        fprintf(h, "<p>%s</p>\n", src->manifest ? "manifest.json:"
                                  : src->job    ? "no manifest.json beside it; the job text stored in the HDF5 file (/run/job):"
                                                : "read through summary.csv: no manifest.json and no HDF5 file, so no job text.");
        if (!text) continue;
        fputs("<pre>", h);
        esc(h, text);
        fputs("</pre>\n", h);
    }
}

static void sec_summary(FILE *h, const rd_set *s) {
    fputs("<h2 id=\"summary\">2. Summary</h2>\n", h);
    fputs(s->has_sd ? "<p>Mean &plusmn; spread over the anchor sets (summary.csv's <code>_sd</code> columns).</p>\n"
                    : "<p>No spread measured: summary.csv has no <code>_sd</code> columns (one anchor set).</p>\n", h);
    fputs("<div class=\"wide\"><table><tr><th>checkpoint</th><th>positions</th>", h);
    int show[RD_NMETRICS];
    for (int m = 0; m < RD_NMETRICS; m++)
        if ((show[m] = order_present(s, m))) fprintf(h, "<th>%s</th>", RD_METRICS[m]);
    fputs("</tr>\n", h);
    for (int i = 0; i < s->n; i++) {
        fputs("<tr><td>", h);
        esc(h, s->r[i].name);
        fprintf(h, "</td><td>%lld</td>", (long long)s->r[i].n_positions);
        for (int m = 0; m < RD_NMETRICS; m++) {
            if (!show[m]) continue;
            double v = rd_metric(&s->r[i], m), sd = s->sd[(size_t)i * RD_NMETRICS + m];
            if (!isfinite(v)) fputs("<td>&ndash;</td>", h);
            else if (isfinite(sd)) fprintf(h, "<td>%.4g &plusmn; %.2g</td>", v, sd);
            else fprintf(h, "<td>%.4g</td>", v);
        }
        fputs("</tr>\n", h);
    }
    fputs("</table></div>\n", h);
}

static void plane(FILE *h, const rd_set *s, int k, const int *order, const int *start, int runs) {
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < s->n; i++)
        for (int a = 0; a < 2; a++) {
            double v = rd_metric(&s->r[i], k + 4 * a);
            if (isfinite(v)) lo = fmin(lo, v), hi = fmax(hi, v);
        }
    fig g;
    svg_plot p;
    char title[96], xl[96], yl[96], col[8];
    snprintf(title, sizeof title, "Information plane, order %d", k);
    snprintf(xl, sizeof xl, "complexity_%d = mean over layers of I(X_%d; Z)", k, k);
    snprintf(yl, sizeof yl, "expressivity_%d = mean over layers of I(Y_%d; Z)", k, k);
    svg_begin(&p, fig_open(&g), 820, 520, 190, lo, hi, lo, hi, title, xl, yl);
    double diag[2] = {p.x0 > p.y0 ? p.x0 : p.y0, p.x1 < p.y1 ? p.x1 : p.y1};
    svg_line(&p, diag, diag, 2, "#999999", 1.5, 1);
    double *x = xmalloc(sizeof(double) * (size_t)s->n), *y = xmalloc(sizeof(double) * (size_t)s->n);
    for (int u = 0; u < runs; u++) {
        int n = start[u + 1] - start[u];
        for (int q = 0; q < n; q++)
            x[q] = rd_metric(&s->r[order[start[u] + q]], k), y[q] = rd_metric(&s->r[order[start[u] + q]], k + 4);
        svg_line(&p, x, y, n, "#bbbbbb", 1.2, 0);
        for (int q = 0; q < n; q++) {
            const char *name = s->r[order[start[u] + q]].name;
            svg_color(n > 1 ? (double)q / (n - 1) : 0, col);
            svg_point(&p, x[q], y[q], col, name);
            if (q == 0 || q == n - 1) svg_label(&p, x[q], y[q], name);
        }
    }
    free(x);
    free(y);
    svg_legend(&p, "#999999", 1, "IB bound (y = x)");
    svg_legend(&p, "#bbbbbb", 1, "a run, in step order");
    for (int t = 0; t < 5; t++) {
        svg_color(t / 4.0, col);
        svg_legend(&p, col, 0, t == 0 ? "first step" : t == 4 ? "last step" : t == 2 ? "middle" : "");
    }
    svg_end(&p);
    snprintf(title, sizeof title, "information plane, order %d", k);
    fig_emit(h, &g, 820, 520, title);
}

static void sec_plane(FILE *h, const rd_set *s) {
    fputs("<h2 id=\"plane\">3. Information plane</h2>\n<p>Each point is a checkpoint; checkpoints whose names differ "
          "only in a trailing number form a training run, joined in step order and coloured from the first step "
          "(dark) to the last (yellow); the first and last are labelled. Hover a point for its name.</p>\n", h);
    int *order, *start, runs = rd_runs(s, &order, &start);
    for (int k = 1; k <= 4; k++)
        if (order_present(s, k) && order_present(s, k + 4)) plane(h, s, k, order, start, runs);
    free(order);
    free(start);
}

// One per-layer profile: quantity w (0 H, 1..4 I_X k, 5..8 I_Y k) against the hidden state.
static void profile(FILE *h, const rd_set *s, int w, const int *order) {
    static const char *NAME[9] = {"H", "I_X1", "I_X2", "I_X3", "I_X4", "I_Y1", "I_Y2", "I_Y3", "I_Y4"};
    double lo = INFINITY, hi = -INFINITY, l0 = INFINITY, l1 = -INFINITY;
    int any = 0, shown = 0;
    for (int i = 0; i < s->n; i++)
        for (int l = 0; l < s->r[i].n_layers; l++) {
            const res_ckpt *r = &s->r[i];
            double v = w == 0 ? r->H[l] : w <= 4 ? r->I_X[(size_t)(w - 1) * r->n_layers + l] : r->I_Y[(size_t)(w - 5) * r->n_layers + l];
            if (!isfinite(v)) continue;
            any = 1;
            lo = fmin(lo, v), hi = fmax(hi, v), l0 = fmin(l0, r->layer_ids[l]), l1 = fmax(l1, r->layer_ids[l]);
        }
    if (!any) return;
    int n_leg = s->n < 20 ? s->n : 20, H = 60 + 18 * n_leg > 380 ? 60 + 18 * n_leg + 60 : 380;
    fig g;
    svg_plot p;
    char title[64], col[8];
    snprintf(title, sizeof title, "%s against depth, one line per checkpoint", NAME[w]);
    svg_begin(&p, fig_open(&g), 820, H, 230, l0, l1, lo, hi, title, "hidden state (0 = embeddings)", NAME[w]);
    int maxl = 1;
    for (int i = 0; i < s->n; i++) maxl = s->r[i].n_layers > maxl ? s->r[i].n_layers : maxl;
    double *x = xmalloc(sizeof(double) * 2 * (size_t)maxl), *y = x + maxl;
    for (int q = 0; q < s->n; q++) {
        const res_ckpt *r = &s->r[order[q]];
        int n = r->n_layers;
        for (int l = 0; l < n; l++) {
            x[l] = r->layer_ids[l];
            y[l] = w == 0 ? r->H[l] : w <= 4 ? r->I_X[(size_t)(w - 1) * r->n_layers + l] : r->I_Y[(size_t)(w - 5) * r->n_layers + l];
        }
        svg_color(s->n > 1 ? (double)q / (s->n - 1) : 0, col);
        svg_line(&p, x, y, n, col, 2, 0);
        if (shown < n_leg - 1 || q == s->n - 1) svg_legend(&p, col, 1, r->name), shown++;
        else if (shown == n_leg - 1) svg_legend(&p, "#ffffff", 1, "..."), shown++;
    }
    free(x);
    svg_end(&p);
    fig_emit(h, &g, 820, H, title);
}

static void sec_profiles(FILE *h, const rd_set *s) {
    fputs("<h2 id=\"profiles\">4. Per-layer profiles</h2>\n", h);
    int h5 = 0;
    for (int i = 0; i < s->n; i++) h5 |= s->r[i].n_layers > 0;
    if (!h5) {
        fputs("<p>Per-layer profiles need the HDF5 results file; these results were read through summary.csv.</p>\n", h);
        return;
    }
    int *order, *start;
    rd_runs(s, &order, &start);
    for (int w = 0; w <= 8; w++) profile(h, s, w, order);
    free(order);
    free(start);
}

// What each order adds (method.md §6: the back-off orders), per checkpoint.
static void backoff_table(FILE *h, const rd_set *s) {
    fputs("<table><tr><th>checkpoint</th>", h);
    for (int a = 0; a < 2; a++)
        for (int k = 1; k <= 4; k++)
            if (order_present(s, k + 4 * a))
                fprintf(h, "<th>&Delta;%s<sub>%d</sub></th>", a ? "I(Y;Z)" : "I(X;Z)", k);
    fputs("</tr>\n", h);
    for (int i = 0; i < s->n; i++) {
        fputs("<tr><td>", h);
        esc(h, s->r[i].name);
        fputs("</td>", h);
        for (int a = 0; a < 2; a++)
            for (int k = 1; k <= 4; k++) {
                if (!order_present(s, k + 4 * a)) continue;
                double v = rd_metric(&s->r[i], k + 4 * a), prev = k > 1 ? rd_metric(&s->r[i], k - 1 + 4 * a) : 0;
                cell(h, v - prev);
            }
        fputs("</tr>\n", h);
    }
    fputs("</table>\n", h);
}

// Per training run and order: the step where complexity peaks and the largest fall after it,
// against the anchor spread of that difference (sqrt(sd_peak^2 + sd_low^2)).
static void compression(FILE *h, const rd_set *s) {
    int *order, *start, runs = rd_runs(s, &order, &start), any = 0;
    for (int u = 0; u < runs; u++) {
        int n = start[u + 1] - start[u];
        if (n < 3) continue;
        char key[256];
        long step;
        rd_run_key(s->r[order[start[u]]].name, key, sizeof key, &step);
        for (int k = 1; k <= 4; k++) {
            if (!order_present(s, k)) continue;
            int pk = -1, lo = -1;
            for (int q = 0; q < n; q++) {
                double v = rd_metric(&s->r[order[start[u] + q]], k);
                if (isfinite(v) && (pk < 0 || v > rd_metric(&s->r[order[start[u] + pk]], k))) pk = q;
            }
            for (int q = pk + 1; pk >= 0 && q < n; q++) {
                double v = rd_metric(&s->r[order[start[u] + q]], k);
                if (isfinite(v) && (lo < 0 || v < rd_metric(&s->r[order[start[u] + lo]], k))) lo = q;
            }
            if (pk < 0) continue;
            if (!any++) fputs("<ul>\n", h);
            int ip = order[start[u] + pk];
            fputs("<li>run <code>", h);
            esc(h, key);
            fprintf(h, "</code>, complexity_%d peaks at <code>", k);
            esc(h, s->r[ip].name);
            fprintf(h, "</code> (%.4g)", rd_metric(&s->r[ip], k));
            if (lo < 0) { fputs(": the last checkpoint, no fall after it.</li>\n", h); continue; }
            int il = order[start[u] + lo];
            double fall = rd_metric(&s->r[ip], k) - rd_metric(&s->r[il], k);
            double sp = sqrt(pow(s->sd[(size_t)ip * RD_NMETRICS + k], 2) + pow(s->sd[(size_t)il * RD_NMETRICS + k], 2));
            fprintf(h, "; it falls by %.3g to %.4g at <code>", fall, rd_metric(&s->r[il], k));
            esc(h, s->r[il].name);
            if (!isfinite(sp)) fputs("</code>: no spread measured, so whether the fall exceeds the anchor noise is not known.</li>\n", h);
            else fprintf(h, "</code>: %s the anchor spread of the difference (%.3g).</li>\n", fall > sp ? "larger than" : "not larger than", sp);
        }
    }
    fputs(any ? "</ul>\n" : "<p>No training run with three or more checkpoints.</p>\n", h);
    free(order);
    free(start);
}

static void sec_backoff(FILE *h, const rd_set *s) {
    fputs("<h2 id=\"backoff\">5. Back-off decomposition and the compression phase</h2>\n<p>What each order adds: "
          "&Delta;I(X;Z)<sub>k</sub> = complexity<sub>k</sub> &minus; complexity<sub>k&minus;1</sub> (order 0 adds "
          "nothing), and the same for expressivity, per checkpoint (layer means).</p>\n", h);
    backoff_table(h, s);
    fputs("<h3>Where complexity peaks</h3>\n", h);
    compression(h, s);
}

static void interval(FILE *h, double lo, double hi) {
    if (isfinite(lo) && isfinite(hi)) fprintf(h, "<td>[%.3f, %.3f]</td>", lo, hi);
    else fputs("<td>&ndash;</td>", h);
}

static void corr_table(FILE *h, const corr_summary *cs) {
    fputs("<table><tr><th>metric</th><th>benchmark</th><th>n</th><th>Spearman &rho;</th><th>95% percentile</th>"
          "<th>95% BCa</th><th>perm. p</th><th>Pearson r</th><th>95% percentile</th><th>95% BCa</th><th>perm. p</th></tr>\n", h);
    for (int i = 0; i < cs->n_pairs; i++) {
        const corr_pair *q = &cs->pairs[i];
        fprintf(h, "<tr><td>%s</td><td>", RD_METRICS[q->metric]);
        esc(h, cs->bnames[q->bench]);
        fprintf(h, "</td><td>%d</td>", q->n);
        for (int k = 0; k < 2; k++) {
            cell(h, k ? q->r : q->rho);
            interval(h, q->s[k].pct_lo, q->s[k].pct_hi);
            interval(h, q->s[k].bca_lo, q->s[k].bca_hi);
            cell(h, q->s[k].p_perm);
        }
        fputs("</tr>\n", h);
    }
    fputs("</table>\n", h);
}

// Each metric against the benchmarks' mean (or the only benchmark), small multiples.
static void corr_plots_svg(FILE *h, const corr_summary *cs) {
    int b = cs->nb == 2 ? 0 : cs->nb - 1;
    for (int i = 0; i < cs->n_pairs; i++) {
        const corr_pair *q = &cs->pairs[i];
        if (q->bench != b) continue;
        double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
        for (int j = 0; j < q->n; j++) x0 = fmin(x0, q->x[j]), x1 = fmax(x1, q->x[j]), y0 = fmin(y0, q->y[j]), y1 = fmax(y1, q->y[j]);
        fig g;
        svg_plot p;
        char title[160];
        snprintf(title, sizeof title, "%s vs %s: r = %.2f", RD_METRICS[q->metric], cs->bnames[b], q->r);
        svg_begin(&p, fig_open(&g), 400, 300, 0, x0, x1, y0, y1, title, RD_METRICS[q->metric], cs->bnames[b]);
        for (int j = 0; j < q->n; j++) svg_point(&p, q->x[j], q->y[j], "#3b528b", NULL);
        svg_end(&p);
        fig_emit(h, &g, 400, 300, title);
    }
}

static int sec_corr(FILE *h, const rep_opts *o, const rd_set *s, ibc_err *err) {
    fputs("<h2 id=\"correlations\">6. Correlations with benchmarks</h2>\n", h);
    if (!o->n_benchmarks) fputs("<p>No benchmark table given (<code>--benchmarks FILE.csv</code>).</p>\n", h);
    for (int i = 0; i < o->n_benchmarks; i++) {
        corr_opts co = {.benchmarks = o->benchmarks[i], .name_cols = o->name_cols ? o->name_cols : "model",
                        .exclude = "rank,params_b,Parameters,step,shots", .aliases = o->aliases, .covariates = "",
                        .dups = BT_FIRST, .resamples = o->resamples, .seed = o->seed};
        corr_summary cs;
        int rc = corr_summarize(&co, s, &cs, err);
        if (rc) return rc;
        fputs("<h3>", h);
        esc(h, o->benchmarks[i]);
        fprintf(h, "</h3>\n<p>%d of %d checkpoints matched. Intervals: bootstrap over models, %d resamples (seed %llu); "
                   "p: permutation test, two-sided.</p>\n", cs.matched, s->n, o->resamples > 0 ? o->resamples : 10000, o->seed);
        corr_table(h, &cs);
        corr_plots_svg(h, &cs);
        corr_summary_free(&cs);
    }
    return 0;
}

static const char STYLE[] =
    "body{font-family:'DejaVu Sans',sans-serif;font-size:14px;max-width:1100px;margin:24px auto;padding:0 16px;color:#222}"
    "table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}th{background:#f2f2f2}pre{background:#f7f7f7;padding:8px;"
    "overflow-x:auto;font-size:12px}.fig{display:inline-block;margin:6px}h2{border-bottom:1px solid #ddd;margin-top:32px}"
    ".wide{overflow-x:auto}.wide table{font-size:12px}";

static void page(FILE *h, const rep_opts *o, const rd_set *s) {
    fprintf(h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ibc report</title>"
               "<style>%s</style></head>\n<body>\n<h1>ibc report</h1>\n<p>%d checkpoints from", STYLE, s->n);
    for (int i = 0; i < o->n_inputs; i++) {
        fputs(" <code>", h);
        esc(h, o->inputs[i]);
        fputs("</code>", h);
    }
    fputs(". Sections: <a href=\"#job\">job</a>, <a href=\"#summary\">summary</a>, <a href=\"#plane\">information "
          "plane</a>, <a href=\"#profiles\">per-layer profiles</a>, <a href=\"#backoff\">back-off</a>, "
          "<a href=\"#correlations\">correlations</a>.</p>\n", h);
    sec_job(h, s);
    sec_summary(h, s);
    sec_plane(h, s);
    sec_profiles(h, s);
    sec_backoff(h, s);
}

int rep_run(const rep_opts *o, ibc_err *err) {
    rd_set s = {0};
    io_file w = {0};
    int rc = rd_add_all(&s, o->inputs, o->n_inputs, err);
    if (rc == 0) rc = rd_same_anchors(&s, err);
    if (rc == 0) rc = io_begin(&w, o->out, err);
    if (rc == 0) {
        page(w.f, o, &s);
        rc = sec_corr(w.f, o, &s, err);
        fputs("</body></html>\n", w.f);
    }
    if (rc == 0) rc = io_commit(&w, err);
    else io_abort(&w);
    rd_free(&s);
    return rc;
}
