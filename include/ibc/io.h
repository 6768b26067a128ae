// io: small file helpers shared by every writer and reader.
//
// Files ibc writes are never left half-written: io_begin opens PATH.tmp.<pid>, io_commit
// flushes, fsyncs, closes and renames it over PATH; io_abort removes it.
#ifndef IBC_IO_H
#define IBC_IO_H

#include <stdio.h>

#include "ibc/err.h"
#include "ibc/limits.h"

typedef struct {
    FILE *f;
    char path[IBC_PATH_MAX];
    char tmp[IBC_PATH_NAME_MAX]; // path + ".tmp.<pid>"
} io_file;

// IBC_EINPUT if path does not fit IBC_PATH_MAX; IBC_ESYS if the file cannot be created.
int io_begin(io_file *w, const char *path, ibc_err *err);
int io_commit(io_file *w, ibc_err *err);
void io_abort(io_file *w);

// Reads a whole file into a NUL-terminated malloc'd buffer (*len excludes the NUL).
int io_read_all(const char *path, char **buf, size_t *len, ibc_err *err);

// Reads path whole and hands its text to parse(ctx, text, len, path, err), then frees it: the
// one read-then-parse step of every file loader (config.json, tokenizer.json, benchmark CSVs).
typedef int (*io_parse_fn)(void *ctx, const char *text, size_t len, const char *path, ibc_err *err);
int io_parse_file(const char *path, io_parse_fn parse, void *ctx, ibc_err *err);

// dst = dir + "/" + name; IBC_EINPUT naming both if it does not fit in cap (never cut). The
// one way ibc joins paths; size dst IBC_PATH_NAME_MAX for a folder plus a file name.
int io_join(char *dst, size_t cap, const char *dir, const char *name, ibc_err *err);

// mkdir -p.
int io_mkdirs(const char *path, ibc_err *err);

#endif
