#include "ibc/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ibc/io.h"

static const struct { const char *name; size_t size; } DTYPES[ST_NDTYPES] = {
    [ST_F32] = {"F32", 4},  [ST_F16] = {"F16", 2},  [ST_BF16] = {"BF16", 2},
    [ST_F64] = {"F64", 8},  [ST_I64] = {"I64", 8},  [ST_I32] = {"I32", 4},
    [ST_I16] = {"I16", 2},  [ST_I8] = {"I8", 1},    [ST_U64] = {"U64", 8},
    [ST_U32] = {"U32", 4},  [ST_U16] = {"U16", 2},  [ST_U8] = {"U8", 1},
    [ST_BOOL] = {"BOOL", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *st_dtype_name(st_dtype t) { return t < ST_NDTYPES ? DTYPES[t].name : "?"; }
size_t st_dtype_size(st_dtype t) { return t < ST_NDTYPES ? DTYPES[t].size : 0; }

static int parse_dtype(const char *s, st_dtype *out) {
    for (int i = 0; i < ST_NDTYPES; i++)
        if (strcmp(s, DTYPES[i].name) == 0) { *out = (st_dtype)i; return 0; }
    return -1;
}

void st_close(st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
    free(f->tensors);
    if (f->map) munmap(f->map, f->map_len);
    free(f->path);
    memset(f, 0, sizeof *f);
}

// Reads one header entry into t; data_len is the size of the data area.
static int parse_entry(const char *path, const char *name, json_t *v, const uint8_t *data,
                       uint64_t data_len, st_tensor *t, ibc_err *err) {
    if (!json_is_object(v))
        return ibc_fail(err, IBC_EINPUT, "%s: tensor %s: header entry is not an object", path, name);
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
           *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd))
        return ibc_fail(err, IBC_EINPUT, "%s: tensor %s: missing dtype", path, name);
    if (parse_dtype(json_string_value(jd), &t->dtype) != 0)
        return ibc_fail(err, IBC_EINPUT, "%s: tensor %s: unknown dtype %.32s", path, name,
                        json_string_value(jd));
    if (!json_is_array(js) || json_array_size(js) > ST_MAX_DIMS)
        return ibc_fail(err, IBC_EINPUT, "%s: tensor %s: shape missing or over %d dims", path,
                        name, ST_MAX_DIMS);
    t->ndim = (int)json_array_size(js);
    uint64_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        json_t *e = json_array_get(js, (size_t)i);
        if (!json_is_integer(e) || json_integer_value(e) < 0)
            return ibc_fail(err, IBC_EINPUT, "%s: tensor %s: shape[%d] is not a non-negative integer",
                            path, name, i);
        t->shape[i] = json_integer_value(e);
        if (__builtin_mul_overflow(numel, (uint64_t)t->shape[i], &numel))
            return ibc_fail(err, IBC_EINPUT, "%s: tensor %s: shape overflows", path, name);
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, (uint64_t)st_dtype_size(t->dtype), &nbytes) ||
        numel > (uint64_t)INT64_MAX)
        return ibc_fail(err, IBC_EINPUT, "%s: tensor %s: shape overflows", path, name);
    if (!json_is_array(jo) || json_array_size(jo) != 2 ||
        !json_is_integer(json_array_get(jo, 0)) || !json_is_integer(json_array_get(jo, 1)))
        return ibc_fail(err, IBC_EINPUT, "%s: tensor %s: data_offsets is not [begin, end]", path, name);
    json_int_t b = json_integer_value(json_array_get(jo, 0));
    json_int_t e = json_integer_value(json_array_get(jo, 1));
    if (b < 0 || e < b || (uint64_t)e > data_len)
        return ibc_fail(err, IBC_EINPUT,
                        "%s: tensor %s: data_offsets [%lld, %lld] outside the data area of %llu bytes",
                        path, name, (long long)b, (long long)e, (unsigned long long)data_len);
    if ((uint64_t)(e - b) != nbytes)
        return ibc_fail(err, IBC_EINPUT,
                        "%s: tensor %s: shape x %s size is %llu bytes but data_offsets span %lld",
                        path, name, st_dtype_name(t->dtype), (unsigned long long)nbytes,
                        (long long)(e - b));
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)nbytes;
    t->data = data + b;
    return 0;
}

static int by_offset(const void *a, const void *b) {
    const st_tensor *x = a, *y = b;
    return (x->data > y->data) - (x->data < y->data);
}

static int parse_header(st_file *f, const uint8_t *hdr, size_t n, const uint8_t *data,
                        uint64_t data_len, ibc_err *err) {
    json_error_t je;
    json_t *root = json_loadb((const char *)hdr, n, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return ibc_fail(err, IBC_EINPUT, "%s: header is not valid JSON: %s (byte %d)", f->path,
                        je.text, je.position);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = ibc_fail(err, IBC_EINPUT, "%s: header is not a JSON object", f->path);
        goto done;
    }
    f->tensors = calloc(json_object_size(root) + 1, sizeof(st_tensor));
    if (!f->tensors) { rc = ibc_fail(err, IBC_ESYS, "%s: out of memory", f->path); goto done; }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) continue;
        st_tensor *t = &f->tensors[f->n];
        if ((rc = parse_entry(f->path, key, v, data, data_len, t, err)) != 0) goto done;
        if (!(t->name = strdup(key))) { rc = ibc_fail(err, IBC_ESYS, "out of memory"); goto done; }
        t->path = f->path;
        f->n++;
    }
    // No two non-empty ranges may overlap: sort by start, compare neighbours.
    st_tensor *sorted = malloc(sizeof(st_tensor) * (size_t)(f->n + 1));
    if (!sorted) { rc = ibc_fail(err, IBC_ESYS, "out of memory"); goto done; }
    memcpy(sorted, f->tensors, sizeof(st_tensor) * (size_t)f->n);
    qsort(sorted, (size_t)f->n, sizeof(st_tensor), by_offset);
    const st_tensor *prev = NULL;
    for (int i = 0; i < f->n && rc == 0; i++) {
        if (sorted[i].nbytes == 0) continue;
        if (prev && sorted[i].data < prev->data + prev->nbytes)
            rc = ibc_fail(err, IBC_EINPUT, "%s: tensors %s and %s overlap", f->path, prev->name,
                          sorted[i].name);
        prev = &sorted[i];
    }
    free(sorted);
done:
    json_decref(root);
    return rc;
}

// Validates the header of a whole file image buf[len] and fills f->tensors.
static int validate(st_file *f, const uint8_t *p, size_t len, ibc_err *err) {
    if (len < 8)
        return ibc_fail(err, IBC_EINPUT, "%s: truncated: %zu bytes, no 8-byte header length", f->path, len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | p[i]; // little-endian u64
    if (n > ST_MAX_HEADER)
        return ibc_fail(err, IBC_EINPUT, "%s: header length %llu exceeds the %u-byte limit", f->path,
                        (unsigned long long)n, ST_MAX_HEADER);
    if (n > len - 8)
        return ibc_fail(err, IBC_EINPUT, "%s: header length %llu runs past the end of the %zu-byte file",
                        f->path, (unsigned long long)n, len);
    return parse_header(f, p + 8, (size_t)n, p + 8 + n, len - 8 - n, err);
}

int st_open_buffer(const void *buf, size_t len, const char *name, st_file *f, ibc_err *err) {
    memset(f, 0, sizeof *f);
    if (!(f->path = strdup(name))) return ibc_fail(err, IBC_ESYS, "out of memory");
    int rc = validate(f, buf, len, err);
    if (rc) st_close(f);
    return rc;
}

int st_open(const char *path, st_file *f, ibc_err *err) {
    memset(f, 0, sizeof *f);
    if (!(f->path = strdup(path))) return ibc_fail(err, IBC_ESYS, "out of memory");
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        int rc = ibc_fail(err, IBC_EINPUT, "%s: cannot open: %s", path, strerror(errno));
        st_close(f);
        return rc;
    }
    struct stat sb;
    int rc = 0;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = ibc_fail(err, IBC_EINPUT, "%s: not a regular file", path);
    } else if (sb.st_size < 8) {
        rc = ibc_fail(err, IBC_EINPUT, "%s: truncated: %lld bytes, no 8-byte header length", path,
                      (long long)sb.st_size);
    } else {
        f->map_len = (size_t)sb.st_size;
        f->map = mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            rc = ibc_fail(err, IBC_ESYS, "%s: mmap failed: %s", path, strerror(errno));
        }
    }
    close(fd);
    if (rc == 0) rc = validate(f, f->map, f->map_len, err);
    if (rc != 0) st_close(f);
    return rc;
}

const st_tensor *st_file_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const st_tensor *st_find(const st_set *s, const char *name) {
    for (int i = 0; i < s->nfiles; i++) {
        const st_tensor *t = st_file_find(&s->files[i], name);
        if (t) return t;
    }
    return NULL;
}

void st_set_free(st_set *s) {
    for (int i = 0; i < s->nfiles; i++) st_close(&s->files[i]);
    free(s->files);
    memset(s, 0, sizeof *s);
}

// Shards named by the index must be plain file names inside the folder.
static int shard_name_ok(const char *n) {
    return n[0] && n[0] != '.' && !strchr(n, '/') && strlen(n) < 1024;
}

static int open_index(const char *dir, const char *ipath, st_set *s, ibc_err *err) {
    json_error_t je;
    json_t *root = json_load_file(ipath, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return ibc_fail(err, IBC_EINPUT, "%s: not valid JSON: %s (line %d)", ipath, je.text, je.line);
    json_t *wm = json_object_get(root, "weight_map");
    int rc = 0;
    if (!json_is_object(wm)) {
        rc = ibc_fail(err, IBC_EINPUT, "%s: missing key weight_map", ipath);
        goto done;
    }
    s->files = calloc(json_object_size(wm) + 1, sizeof(st_file));
    if (!s->files) { rc = ibc_fail(err, IBC_ESYS, "out of memory"); goto done; }
    const char *name;
    json_t *v;
    json_object_foreach(wm, name, v) {
        const char *shard = json_string_value(v);
        if (!shard || !shard_name_ok(shard)) {
            rc = ibc_fail(err, IBC_EINPUT, "%s: weight_map[%s] is not a file name in the folder",
                          ipath, name);
            goto done;
        }
        char path[4096];
        if ((rc = io_join(path, sizeof path, dir, shard, err)) != 0) goto done;
        st_file *f = NULL;
        for (int i = 0; i < s->nfiles; i++)
            if (strcmp(s->files[i].path, path) == 0) f = &s->files[i];
        if (!f) {
            if ((rc = st_open(path, &s->files[s->nfiles], err)) != 0) goto done;
            f = &s->files[s->nfiles++];
        }
        if (!st_file_find(f, name)) {
            rc = ibc_fail(err, IBC_EINPUT, "%s: tensor %s is listed by %s but not in the file", path,
                          name, ipath);
            goto done;
        }
    }
done:
    json_decref(root);
    return rc;
}

int st_set_open(const char *dir, st_set *s, ibc_err *err) {
    memset(s, 0, sizeof *s);
    char path[4096];
    int rc = io_join(path, sizeof path, dir, "model.safetensors", err);
    if (rc) return rc;
    if (access(path, F_OK) == 0) {
        if (!(s->files = calloc(1, sizeof(st_file)))) return ibc_fail(err, IBC_ESYS, "out of memory");
        if ((rc = st_open(path, &s->files[0], err)) != 0) { st_set_free(s); return rc; }
        s->nfiles = 1;
        return 0;
    }
    if ((rc = io_join(path, sizeof path, dir, "model.safetensors.index.json", err))) return rc;
    if (access(path, F_OK) != 0)
        return ibc_fail(err, IBC_EINPUT, "%s: no model.safetensors or model.safetensors.index.json", dir);
    if ((rc = open_index(dir, path, s, err)) != 0) st_set_free(s);
    return rc;
}

float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); // inf / NaN, payload kept
    } else if (exp) {
        bits = sign | ((exp + 112) << 23) | (man << 13); // rebias 15 -> 127
    } else {
        float v = (float)man * 0x1p-24f; // subnormal (or zero): man * 2^-24, exact in f32
        memcpy(&bits, &v, 4);
        bits |= sign;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float st_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16; // bf16 is the top half of an f32
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int st_float_ok(const st_tensor *t, ibc_err *err) {
    if (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16) return 0;
    return ibc_fail(err, IBC_EINPUT, "%s: tensor %s has dtype %s; only F32, F16 and BF16 are supported",
                    t->path, t->name, st_dtype_name(t->dtype));
}

void st_convert(const st_tensor *t, int64_t first, int64_t count, float *out) {
    const uint8_t *p = t->data + (size_t)first * st_dtype_size(t->dtype);
    switch (t->dtype) {
    case ST_F32: memcpy(out, p, sizeof(float) * (size_t)count); break;
    case ST_F16:
        for (int64_t i = 0; i < count; i++) out[i] = st_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    case ST_BF16:
        for (int64_t i = 0; i < count; i++) out[i] = st_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    default: break; // excluded by st_float_ok
    }
}

int st_to_f32(const st_tensor *t, float *out, ibc_err *err) {
    int rc = st_float_ok(t, err);
    if (rc == 0) st_convert(t, 0, t->numel, out);
    return rc;
}

// f32 -> bf16 / f16, round to nearest even; NaN stays NaN, overflow becomes infinity.
static uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); // quiet NaN
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

static uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, e = (x >> 23) & 0xffu, man = x & 0x7fffffu;
    if (e == 0xff) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0));
    int E = (int)e - 112; // rebias 127 -> 15
    if (E >= 31) return (uint16_t)(sign | 0x7c00u);
    uint32_t h, rem, half;
    if (E <= 0) { // subnormal f16: (1.man) * 2^(E - 1) in units of 2^-24
        if (E < -11) return (uint16_t)sign;
        int shift = 14 - E;
        man |= 0x800000u;
        h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    } else {
        h = ((uint32_t)E << 10) | (man >> 13), rem = man & 0x1fffu, half = 0x1000u;
    }
    if (rem > half || (rem == half && (h & 1))) h++; // a carry into the exponent is correct
    return (uint16_t)(sign | h);
}

int st_write(const char *path, const st_wtensor *t, int n, st_dtype dtype, ibc_err *err) {
    if (dtype != ST_F32 && dtype != ST_BF16 && dtype != ST_F16)
        return ibc_fail(err, IBC_EINPUT, "%s: cannot write dtype %s", path, st_dtype_name(dtype));
    size_t es = st_dtype_size(dtype);
    json_t *h = json_object();
    json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t numel = 1;
        json_t *shape = json_array();
        for (int k = 0; k < t[i].ndim; k++) {
            numel *= (uint64_t)t[i].shape[k];
            json_array_append_new(shape, json_integer(t[i].shape[k]));
        }
        json_object_set_new(h, t[i].name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", st_dtype_name(dtype), "shape", shape,
                                      "data_offsets", (json_int_t)off, (json_int_t)(off + es * numel)));
        off += es * numel;
    }
    char *js = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    if (!js) return ibc_fail(err, IBC_ESYS, "%s: out of memory", path);
    size_t hl = strlen(js), padded = (hl + 7) / 8 * 8; // spaces so that data starts 8-aligned
    io_file w;
    int rc = io_begin(&w, path, err);
    if (rc == 0) {
        uint8_t len[8];
        for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)padded >> (8 * i));
        fwrite(len, 1, 8, w.f);
        fwrite(js, 1, hl, w.f);
        for (size_t i = hl; i < padded; i++) fputc(' ', w.f);
        for (int i = 0; i < n; i++) {
            uint64_t numel = 1;
            for (int k = 0; k < t[i].ndim; k++) numel *= (uint64_t)t[i].shape[k];
            if (dtype == ST_F32) { fwrite(t[i].data, 4, numel, w.f); continue; }
            for (uint64_t k = 0; k < numel; k++) { // little-endian halves
                uint16_t v = dtype == ST_BF16 ? f32_to_bf16(t[i].data[k]) : f32_to_f16(t[i].data[k]);
                fputc(v & 0xff, w.f);
                fputc(v >> 8, w.f);
            }
        }
        rc = io_commit(&w, err);
    }
    free(js);
    return rc;
}

int st_write_f32(const char *path, const st_wtensor *t, int n, ibc_err *err) {
    return st_write(path, t, n, ST_F32, err);
}
