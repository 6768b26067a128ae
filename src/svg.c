#include "ibc/svg.h"

#include <math.h>
#include <string.h>

void svg_esc(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

void svg_color(double t, char *buf) {
    // Five stops of a viridis-like ramp, linearly interpolated.
    static const double S[5][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
    if (!(t >= 0)) t = 0;
    if (t > 1) t = 1;
    double u = t * 4;
    int i = u >= 4 ? 3 : (int)u;
    double a = u - i;
    int c[3];
    for (int k = 0; k < 3; k++) c[k] = (int)lround(S[i][k] + (S[i + 1][k] - S[i][k]) * a);
    snprintf(buf, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
}

double svg_px(const svg_plot *p, double x) { return p->left + (x - p->x0) / (p->x1 - p->x0) * (p->right - p->left); }
double svg_py(const svg_plot *p, double y) { return p->bottom - (y - p->y0) / (p->y1 - p->y0) * (p->bottom - p->top); }

static void pad(double *a, double *b) {
    if (!isfinite(*a) || !isfinite(*b)) *a = 0, *b = 1;
    if (*b - *a < 1e-12 * fmax(1, fabs(*a))) {
        double h = fmax(fabs(*a) * 0.05, 1e-3);
        *a -= h;
        *b += h;
    }
    double m = (*b - *a) * 0.05;
    *a -= m;
    *b += m;
}

// A tick step of 1, 2 or 5 times a power of ten giving about 5 ticks over the range.
static double tick_step(double lo, double hi) {
    double raw = (hi - lo) / 5, p = pow(10, floor(log10(raw))), f = raw / p;
    return p * (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10);
}

static void ticks(svg_plot *p) {
    FILE *f = p->f;
    double s = tick_step(p->x0, p->x1);
    if (p->int_x && s < 1) s = 1; // e.g. hidden-state indices: no tick between layers
    for (double v = ceil(p->x0 / s) * s; v <= p->x1 + s * 1e-9; v += s) {
        double x = svg_px(p, v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e4e4e4\"/>", x, p->top, x, p->bottom);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.4g</text>\n", x, p->bottom + 16, fabs(v) < s * 1e-9 ? 0 : v);
    }
    s = tick_step(p->y0, p->y1);
    for (double v = ceil(p->y0 / s) * s; v <= p->y1 + s * 1e-9; v += s) {
        double y = svg_py(p, v);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>", p->left, y, p->right, y);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n", p->left - 6, y + 4, fabs(v) < s * 1e-9 ? 0 : v);
    }
}

void svg_begin(svg_plot *p, FILE *f, int W, int H, int legend_w, double x0, double x1, double y0, double y1,
               const char *title, const char *xlabel, const char *ylabel) {
    memset(p, 0, sizeof *p);
    p->f = f;
    p->W = W;
    p->H = H;
    p->left = 70;
    p->right = W - 20 - legend_w;
    p->top = 40;
    p->bottom = H - 50;
    p->int_x = x0 == floor(x0) && x1 == floor(x1) && x1 - x0 >= 2;
    pad(&x0, &x1);
    pad(&y0, &y1);
    p->x0 = x0, p->x1 = x1, p->y0 = y0, p->y1 = y1;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"DejaVu Sans, sans-serif\" font-size=\"12\">\n<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
            W, H, W, H, W, H);
    ticks(p);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#555555\"/>\n", p->left, p->top,
            p->right - p->left, p->bottom - p->top);
    fprintf(f, "<text x=\"%d\" y=\"22\" font-size=\"14\" font-weight=\"bold\">", p->left);
    svg_esc(f, title);
    fprintf(f, "</text>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (p->left + p->right) / 2, H - 12);
    svg_esc(f, xlabel);
    fprintf(f, "</text>\n<text transform=\"translate(16 %d) rotate(-90)\" text-anchor=\"middle\">", (p->top + p->bottom) / 2);
    svg_esc(f, ylabel);
    fputs("</text>\n", f);
}

void svg_end(svg_plot *p) { fputs("</svg>\n", p->f); }

void svg_line(svg_plot *p, const double *x, const double *y, int n, const char *color, double width, int dashed) {
    int open = 0;
    for (int i = 0; i <= n; i++) {
        int ok = i < n && isfinite(x[i]) && isfinite(y[i]);
        if (ok && !open) {
            fprintf(p->f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"%s points=\"", color, width,
                    dashed ? " stroke-dasharray=\"6 4\"" : "");
            open = 1;
        }
        if (ok) fprintf(p->f, "%.1f,%.1f ", svg_px(p, x[i]), svg_py(p, y[i]));
        if (!ok && open) {
            fputs("\"/>\n", p->f);
            open = 0;
        }
    }
}

void svg_point(svg_plot *p, double x, double y, const char *color, const char *title) {
    if (!isfinite(x) || !isfinite(y)) return;
    fprintf(p->f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"%s\" stroke=\"#222222\" stroke-width=\"0.6\">", svg_px(p, x),
            svg_py(p, y), color);
    if (title) {
        fputs("<title>", p->f);
        svg_esc(p->f, title);
        fputs("</title>", p->f);
    }
    fputs("</circle>\n", p->f);
}

void svg_label(svg_plot *p, double x, double y, const char *text) {
    if (!isfinite(x) || !isfinite(y)) return;
    fprintf(p->f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#222222\">", svg_px(p, x) + 7, svg_py(p, y) - 7);
    svg_esc(p->f, text);
    fputs("</text>\n", p->f);
}

void svg_legend(svg_plot *p, const char *color, int line, const char *text) {
    int x = p->right + 16, y = p->top + 8 + 18 * p->n_legend++;
    if (line) fprintf(p->f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2.5\"/>", x, y, x + 18, y, color);
    else fprintf(p->f, "<circle cx=\"%d\" cy=\"%d\" r=\"4.5\" fill=\"%s\"/>", x + 9, y, color);
    fprintf(p->f, "<text x=\"%d\" y=\"%d\">", x + 24, y + 4);
    svg_esc(p->f, text);
    fputs("</text>\n", p->f);
}
