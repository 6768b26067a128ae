#include "ibc/benchtab.h"

#include <csv.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibc/io.h"
#include "ibc/limits.h"
#include "ibc/mem.h"

// The whole file as rows of fields.
typedef struct {
    char ***rows;
    int *nf;
    int n, cap;
    char **cur;
    int ncur, capcur;
} rows;

static void on_field(void *s, size_t len, void *data) {
    rows *r = data;
    size_t cap = (size_t)r->capcur;
    xgrow(r->cur, cap, (size_t)r->ncur + 1);
    r->capcur = (int)cap;
    char *f = xmalloc(len + 1);
    memcpy(f, s ? s : "", len);
    f[len] = 0;
    r->cur[r->ncur++] = f;
}

static void on_row(int c, void *data) {
    (void)c;
    rows *r = data;
    size_t cap = (size_t)r->cap, cap2 = cap;
    xgrow(r->rows, cap, (size_t)r->n + 1);
    xgrow(r->nf, cap2, (size_t)r->n + 1);
    r->cap = (int)cap;
    r->rows[r->n] = r->cur;
    r->nf[r->n++] = r->ncur;
    r->cur = NULL;
    r->ncur = r->capcur = 0;
}

static void rows_free(rows *r) {
    for (int i = 0; i < r->n; i++) {
        for (int k = 0; k < r->nf[i]; k++) free(r->rows[i][k]);
        free(r->rows[i]);
    }
    for (int k = 0; k < r->ncur; k++) free(r->cur[k]);
    free(r->cur);
    free(r->rows);
    free(r->nf);
    memset(r, 0, sizeof *r);
}

static int parse_rows(const char *path, const char *text, size_t len, rows *r, ibc_err *err) {
    memset(r, 0, sizeof *r);
    int rc = 0;
    const char *p = text;
    if (len >= 3 && !memcmp(p, "\xef\xbb\xbf", 3)) p += 3, len -= 3; // UTF-8 BOM
    struct csv_parser cp;
    csv_init(&cp, CSV_STRICT | CSV_APPEND_NULL);
    if (csv_parse(&cp, p, len, on_field, on_row, r) != len || csv_fini(&cp, on_field, on_row, r) != 0)
        rc = ibc_fail(err, IBC_EINPUT, "%s: not valid CSV: %s", path, csv_strerror(csv_error(&cp)));
    csv_free(&cp);
    if (!rc && r->n == 0) rc = ibc_fail(err, IBC_EINPUT, "%s: empty file", path);
    if (rc) rows_free(r);
    return rc;
}

static int parse_rows_cb(void *r, const char *text, size_t len, const char *path, ibc_err *err) {
    return parse_rows(path, text, len, r, err);
}

static int read_rows(const char *path, rows *r, ibc_err *err) { return io_parse_file(path, parse_rows_cb, r, err); }

static int missing(const char *s) {
    while (*s == ' ') s++;
    return !*s || !strcmp(s, "NaN") || !strcmp(s, "nan") || !strcmp(s, "-");
}

static int number(const char *s, double *v) {
    char *end;
    *v = strtod(s, &end);
    while (*end == ' ') end++;
    return end != s && !*end && isfinite(*v);
}

static int in_list(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *c = strchr(p, ',');
        size_t k = c ? (size_t)(c - p) : strlen(p);
        if (k == n && !strncmp(p, name, n)) return 1;
        p = c ? c + 1 : NULL;
    }
    return 0;
}

void bt_free(benchtab *t) {
    for (int i = 0; t->names && i < t->n_rows; i++) free(t->names[i]);
    for (int k = 0; t->cols && k < t->n_cols; k++) free(t->cols[k]);
    free(t->names);
    free(t->cols);
    free(t->v);
    memset(t, 0, sizeof *t);
}

int bt_find(const benchtab *t, const char *name) {
    for (int i = 0; i < t->n_rows; i++)
        if (!strcmp(t->names[i], name)) return i;
    return -1;
}

static int bt_from_rows(const char *path, rows r, const char *name_cols, const char *exclude, bt_dups dups, benchtab *t, ibc_err *err);

int bt_read(const char *path, const char *name_cols, const char *exclude, bt_dups dups, benchtab *t, ibc_err *err) {
    memset(t, 0, sizeof *t);
    rows r;
    int rc = read_rows(path, &r, err);
    return rc ? rc : bt_from_rows(path, r, name_cols, exclude, dups, t, err);
}

int bt_parse(const char *text, size_t len, const char *name, const char *name_cols, bt_dups dups, benchtab *t, ibc_err *err) {
    memset(t, 0, sizeof *t);
    rows r;
    int rc = parse_rows(name, text, len, &r, err);
    return rc ? rc : bt_from_rows(name, r, name_cols, "rank", dups, t, err);
}

static int bt_from_rows(const char *path, rows r, const char *name_cols, const char *exclude, bt_dups dups, benchtab *t, ibc_err *err) {
    int rc = 0;
    int nc = r.nf[0], nname = 0, name_idx[8];
    char **hdr = r.rows[0];
    for (const char *p = name_cols; p && *p && rc == 0;) { // the name columns, in order
        const char *c = strchr(p, ',');
        size_t k = c ? (size_t)(c - p) : strlen(p);
        int found = -1;
        for (int i = 0; i < nc; i++)
            if (strlen(hdr[i]) == k && !strncmp(hdr[i], p, k)) found = i;
        if (found < 0 || nname == 8) rc = ibc_fail(err, IBC_EINPUT, "%s:1: no name column %.*s in the header", path, (int)k, p);
        else name_idx[nname++] = found;
        p = c ? c + 1 : NULL;
    }
    if (rc == 0 && !nname) rc = ibc_fail(err, IBC_EINPUT, "%s: no name column given", path);
    for (int i = 1; rc == 0 && i < r.n; i++)
        if (r.nf[i] != nc && !(r.nf[i] == 1 && !r.rows[i][0][0]))
            rc = ibc_fail(err, IBC_EINPUT, "%s:%d: %d fields, the header has %d", path, i + 1, r.nf[i], nc);
    // Numeric columns: the first present value decides; later text is an error.
    int *numeric = xcalloc((size_t)nc, sizeof(int));
    for (int k = 0; rc == 0 && k < nc; k++) {
        int isname = 0;
        for (int q = 0; q < nname; q++) isname |= name_idx[q] == k;
        if (isname || in_list(exclude, hdr[k])) continue;
        int decided = 0;
        for (int i = 1; rc == 0 && i < r.n; i++) {
            if (r.nf[i] != nc || missing(r.rows[i][k])) continue;
            double v;
            int isnum = number(r.rows[i][k], &v);
            if (!decided) { numeric[k] = isnum; decided = 1; }
            else if (numeric[k] && !isnum)
                rc = ibc_fail(err, IBC_EINPUT, "%s:%d: column %s: %.40s is not a number", path, i + 1, hdr[k], r.rows[i][k]);
        }
        if (numeric[k]) t->n_cols++;
    }
    if (rc == 0 && !t->n_cols) rc = ibc_fail(err, IBC_EINPUT, "%s: no numeric benchmark column", path);
    if (rc == 0) {
        t->cols = xcalloc((size_t)t->n_cols, sizeof(char *));
        t->names = xcalloc((size_t)r.n, sizeof(char *));
        t->v = xmalloc(sizeof(double) * (size_t)r.n * t->n_cols);
        int *cnt = xcalloc((size_t)r.n * t->n_cols + 1, sizeof(int)); // present values per cell
        for (int k = 0, q = 0; k < nc; k++)
            if (numeric[k]) t->cols[q++] = xstrdup(hdr[k]);
        for (int i = 1; rc == 0 && i < r.n; i++) {
            if (r.nf[i] != nc) continue;
            char name[IBC_PATH_MAX] = ""; // a model name: joined name columns (a path-like id)
            for (int q = 0; q < nname; q++)
                snprintf(name + strlen(name), sizeof name - strlen(name), "%s%s", q ? "/" : "", r.rows[i][name_idx[q]]);
            if (!name[0]) continue;
            int row = bt_find(t, name);
            if (row >= 0 && dups == BT_ERROR) { rc = ibc_fail(err, IBC_EINPUT, "%s:%d: model %s appears again", path, i + 1, name); break; }
            if (row >= 0 && dups == BT_FIRST) continue;
            if (row < 0) {
                row = t->n_rows++;
                t->names[row] = xstrdup(name);
                for (int k = 0; k < t->n_cols; k++) t->v[(size_t)row * t->n_cols + k] = NAN;
            }
            for (int k = 0, q = 0; k < nc; k++) {
                if (!numeric[k]) continue;
                size_t cell = (size_t)row * t->n_cols + q++;
                double v = NAN;
                if (missing(r.rows[i][k]) || !number(r.rows[i][k], &v)) continue;
                // first: the first present value; mean: a running mean of the present values
                if (++cnt[cell] == 1) t->v[cell] = v;
                else if (dups == BT_MEAN) t->v[cell] += (v - t->v[cell]) / cnt[cell];
            }
        }
        free(cnt);
        if (rc == 0 && t->n_rows == 0) rc = ibc_fail(err, IBC_EINPUT, "%s: no data row", path);
    }
    free(numeric);
    rows_free(&r);
    if (rc) bt_free(t);
    return rc;
}

int bt_read_aliases(const char *path, bt_aliases *a, ibc_err *err) {
    memset(a, 0, sizeof *a);
    rows r;
    int rc = read_rows(path, &r, err);
    if (rc) return rc;
    a->from = xcalloc((size_t)r.n, sizeof(char *));
    a->to = xcalloc((size_t)r.n, sizeof(char *));
    for (int i = 0; rc == 0 && i < r.n; i++) {
        if (r.nf[i] == 1 && !r.rows[i][0][0]) continue;
        if (r.nf[i] != 2) { rc = ibc_fail(err, IBC_EINPUT, "%s:%d: expected two fields: name in results, name in table", path, i + 1); break; }
        a->from[a->n] = xstrdup(r.rows[i][0]);
        a->to[a->n++] = xstrdup(r.rows[i][1]);
    }
    rows_free(&r);
    if (rc) bt_aliases_free(a);
    return rc;
}

void bt_aliases_free(bt_aliases *a) {
    for (int i = 0; i < a->n; i++) { free(a->from[i]); free(a->to[i]); }
    free(a->from);
    free(a->to);
    memset(a, 0, sizeof *a);
}

const char *bt_alias(const bt_aliases *a, const char *name) {
    for (int i = 0; a && i < a->n; i++)
        if (!strcmp(a->from[i], name)) return a->to[i];
    return name;
}
