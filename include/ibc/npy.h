// npy: float32 NumPy .npy files (format versions 1-3, C order, little-endian '<f4').
#ifndef IBC_NPY_H
#define IBC_NPY_H

#include <stdint.h>
#include <stdio.h>

#include "ibc/err.h"

#define NPY_MAX_DIMS 8

typedef struct {
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    int64_t numel;
    float *data; // owned, [numel]
} npy_array;

// Reads a float32 C-order .npy; any other dtype or layout is an IBC_EINPUT error.
int npy_read(const char *path, npy_array *a, ibc_err *err);
void npy_free(npy_array *a);

// Writes only the header of an array of the given shape to f (version 1.0, 64-byte aligned);
// the caller then writes numel floats. Lets `ibc hidden` stream layers without holding all.
int npy_write_header(FILE *f, int ndim, const int64_t *shape);

// Writes a whole array to path (temporary name, then rename).
int npy_write(const char *path, int ndim, const int64_t *shape, const float *data, ibc_err *err);

#endif
