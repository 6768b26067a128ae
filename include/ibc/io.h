// io: small file helpers shared by every writer and reader.
//
// Files ibc writes are never left half-written: io_begin opens PATH.tmp.<pid>, io_commit
// flushes, fsyncs, closes and renames it over PATH; io_abort removes it.
#ifndef IBC_IO_H
#define IBC_IO_H

#include <stdio.h>

#include "ibc/err.h"

typedef struct {
    FILE *f;
    char path[4096];
    char tmp[4200];
} io_file;

int io_begin(io_file *w, const char *path, ibc_err *err);
int io_commit(io_file *w, ibc_err *err);
void io_abort(io_file *w);

// Reads a whole file into a NUL-terminated malloc'd buffer (*len excludes the NUL).
int io_read_all(const char *path, char **buf, size_t *len, ibc_err *err);

// dst = dir + "/" + name; IBC_EINPUT if it does not fit.
int io_join(char *dst, size_t cap, const char *dir, const char *name, ibc_err *err);

// mkdir -p.
int io_mkdirs(const char *path, ibc_err *err);

#endif
