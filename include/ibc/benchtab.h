// benchtab: benchmark tables (CSV, read with libcsv) and model-name matching.
//
// A table has a header row; the name is one column or several joined by "/" (e.g. "model,step"
// for Pythia's per-step rows). Every other column whose first present value is a number is a
// benchmark column, except those in `exclude` (default rank, params_b, Parameters, step,
// shots); blank, NaN, nan and "-" are missing. Text later in a numeric column, a ragged row,
// no such name column, or an empty file is an IBC_EINPUT error with file, line and column.
// Quoted fields and UTF-8 (a leading BOM is dropped) are read as they are.
#ifndef IBC_BENCHTAB_H
#define IBC_BENCHTAB_H

#include "ibc/err.h"

typedef enum { BT_FIRST, BT_MEAN, BT_ERROR } bt_dups;

typedef struct {
    char **names;   // [n_rows] model names, unique
    char **cols;    // [n_cols] benchmark column names
    double *v;      // [n_rows, n_cols], NaN = missing
    int n_rows, n_cols;
} benchtab;

int bt_read(const char *path, const char *name_cols, const char *exclude, bt_dups dups, benchtab *t, ibc_err *err);
// The same from CSV text in memory (fuzzing); excludes "rank".
int bt_parse(const char *text, size_t len, const char *name, const char *name_cols, bt_dups dups, benchtab *t, ibc_err *err);
void bt_free(benchtab *t);
int bt_find(const benchtab *t, const char *name); // row index or -1

// An alias file: CSV rows "name in results,name in table" (a header row is allowed).
typedef struct {
    char **from, **to;
    int n;
} bt_aliases;

int bt_read_aliases(const char *path, bt_aliases *a, ibc_err *err);
void bt_aliases_free(bt_aliases *a);
const char *bt_alias(const bt_aliases *a, const char *name); // the table name for a result name

#endif
