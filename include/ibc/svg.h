// svg: a small plotting room for `ibc report`: line and scatter plots as standalone SVG text,
// with axes, "nice" ticks, and a legend in its own column right of the plot area (never on the
// data). Colours: svg_color(t) samples a perceptually ordered ramp (dark blue -> green ->
// yellow) for t in [0, 1], used for training steps and for checkpoints in a profile.
// Not collective; writes into a caller's FILE (e.g. an open_memstream buffer).
#ifndef IBC_SVG_H
#define IBC_SVG_H

#include <stdio.h>

typedef struct {
    FILE *f;
    int W, H;                 // whole figure, px
    int left, right, top, bottom; // plot area edges, px
    double x0, x1, y0, y1;    // data ranges
    int n_legend;
    int int_x;                // x range has integer ends >= 2 apart: ticks at whole numbers
} svg_plot;

// Starts a figure of W x H px with a legend column legend_w px wide (0: none) and data ranges
// (padded by 5%; an empty range is widened); draws the frame, grid, ticks, title and labels.
void svg_begin(svg_plot *p, FILE *f, int W, int H, int legend_w, double x0, double x1, double y0, double y1,
               const char *title, const char *xlabel, const char *ylabel);
void svg_end(svg_plot *p);

double svg_px(const svg_plot *p, double x);
double svg_py(const svg_plot *p, double y);

// Data-space primitives (non-finite points are skipped; a polyline breaks there).
void svg_line(svg_plot *p, const double *x, const double *y, int n, const char *color, double width, int dashed);
void svg_point(svg_plot *p, double x, double y, const char *color, const char *title);
void svg_label(svg_plot *p, double x, double y, const char *text);
// One legend entry: a swatch (line when line = 1, else a dot) and its text.
void svg_legend(svg_plot *p, const char *color, int line, const char *text);

// "#rrggbb" for t in [0, 1] into buf (8 bytes).
void svg_color(double t, char *buf);
// Writes s escaped for XML/HTML text and attributes.
void svg_esc(FILE *f, const char *s);

#endif
