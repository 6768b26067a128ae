// safetensors: read-only, validated access to Hugging Face .safetensors checkpoints.
//
// Format: u64 LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets}, ...},
// then the tensor bytes (offsets are relative to the first byte after the header).
// st_open mmaps the file read-only and validates everything before returning:
//   - N <= ST_MAX_HEADER and 8 + N <= file size;
//   - the header is a JSON object (duplicate keys rejected); `__metadata__` is ignored;
//   - every tensor has a known dtype, a shape of non-negative integers and data_offsets
//     [begin, end] with begin <= end <= data size;
//   - product(shape) * element size == end - begin, computed without overflow;
//   - no two non-empty ranges overlap.
// Tensors of any safetensors dtype pass validation; converting one to f32 (st_to_f32) is
// where a dtype other than F32/F16/BF16 is an error naming the tensor and dtype, so that a
// checkpoint carrying an unused integer buffer still loads.
//
// A st_set is one checkpoint folder: `model.safetensors`, or the shards listed by
// `model.safetensors.index.json`. Tensor data pointers stay valid until st_set_free.
#ifndef IBC_SAFETENSORS_H
#define IBC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "ibc/err.h"

#define ST_MAX_HEADER (100u * 1000u * 1000u)
#define ST_MAX_DIMS 8

typedef enum {
    ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U64, ST_U32, ST_U16,
    ST_U8, ST_BOOL, ST_F8_E4M3, ST_F8_E5M2, ST_NDTYPES
} st_dtype;

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const uint8_t *data; // inside the mapping, little-endian
    size_t nbytes;
    const char *path;    // the file holding it (owned by the st_file)
} st_tensor;

typedef struct {
    char *path;
    void *map;
    size_t map_len;
    st_tensor *tensors;
    int n;
} st_file;

typedef struct {
    st_file *files;
    int nfiles;
} st_set;

// Maps and validates one file. On error nothing is left mapped.
int st_open(const char *path, st_file *f, ibc_err *err);
void st_close(st_file *f);
// The same validation on a file image in memory (fuzzing); tensors point into buf, which the
// caller keeps alive and frees.
int st_open_buffer(const void *buf, size_t len, const char *name, st_file *f, ibc_err *err);

// Opens DIR/model.safetensors, or DIR/model.safetensors.index.json and its shards.
int st_set_open(const char *dir, st_set *s, ibc_err *err);
void st_set_free(st_set *s);

// The tensor called name, or NULL.
const st_tensor *st_find(const st_set *s, const char *name);
const st_tensor *st_file_find(const st_file *f, const char *name);

const char *st_dtype_name(st_dtype t);
size_t st_dtype_size(st_dtype t);

// Converts t to f32 into out[numel]. F32, F16 and BF16 convert exactly; any other dtype is
// an IBC_EINPUT error naming the file, tensor and dtype.
int st_to_f32(const st_tensor *t, float *out, ibc_err *err);
// That dtype check alone: 0 for F32, F16 and BF16, else the IBC_EINPUT error of st_to_f32.
int st_float_ok(const st_tensor *t, ibc_err *err);
// Converts elements [first, first + count) of t (a dtype st_float_ok accepts) to f32 into
// out[count]: one embedding row, or one layer's block, straight from the mapping. Thread-safe.
void st_convert(const st_tensor *t, int64_t first, int64_t count, float *out);

// Exact IEEE half -> single (subnormals, infinities and NaN payloads included).
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);

// Writing (checkpoints made by `ibc train` and the benchmarks): tensors given in f32, stored as
// F32 (st_write_f32) or rounded to nearest even BF16 / F16 (st_write), packed in the order
// given. The file is written under a temporary name and renamed, never half-written.
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[4];
    const float *data; // [numel]
} st_wtensor;

int st_write_f32(const char *path, const st_wtensor *t, int n, ibc_err *err);
int st_write(const char *path, const st_wtensor *t, int n, st_dtype dtype, ibc_err *err);

#endif
