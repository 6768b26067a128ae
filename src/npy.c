#include "ibc/npy.h"

#include <stdlib.h>
#include <string.h>

#include "ibc/io.h"
#include "ibc/mem.h"

void npy_free(npy_array *a) {
    free(a->data);
    memset(a, 0, sizeof *a);
}

// Parses "(a, b, c)" or "(a,)" or "()" from the header dict.
static int parse_shape(const char *s, npy_array *a) {
    const char *p = strchr(s, '(');
    if (!p) return -1;
    p++;
    a->ndim = 0;
    a->numel = 1;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') return 0;
        if (*p < '0' || *p > '9' || a->ndim == NPY_MAX_DIMS) return -1;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (v < 0 || __builtin_mul_overflow(a->numel, (int64_t)v, &a->numel) || a->numel > (1LL << 40))
            return -1;
        a->shape[a->ndim++] = v;
        p = end;
    }
}

int npy_read(const char *path, npy_array *a, ibc_err *err) {
    memset(a, 0, sizeof *a);
    FILE *f = fopen(path, "rb");
    if (!f) return ibc_fail(err, IBC_EINPUT, "%s: cannot open", path);
    unsigned char pre[12];
    int rc = 0;
    char *hdr = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        rc = ibc_fail(err, IBC_EINPUT, "%s: not a .npy file", path);
        goto done;
    }
    size_t hl = pre[8] | (size_t)pre[9] << 8;
    if (pre[6] >= 2) { // versions 2 and 3: 4-byte header length
        if (fread(pre + 10, 1, 2, f) != 2) { rc = ibc_fail(err, IBC_EINPUT, "%s: truncated header", path); goto done; }
        hl |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    if (hl > (1u << 20) || fread(hdr = xcalloc(1, hl + 1), 1, hl, f) != hl) {
        rc = ibc_fail(err, IBC_EINPUT, "%s: truncated or oversized header", path);
        goto done;
    }
    if (!strstr(hdr, "'descr': '<f4'") && !strstr(hdr, "'descr':'<f4'")) {
        rc = ibc_fail(err, IBC_EINPUT, "%s: dtype is not float32 ('<f4')", path);
        goto done;
    }
    if (strstr(hdr, "True")) {
        rc = ibc_fail(err, IBC_EINPUT, "%s: fortran_order arrays are not supported", path);
        goto done;
    }
    const char *sh = strstr(hdr, "'shape'");
    if (!sh || parse_shape(sh, a) != 0) {
        rc = ibc_fail(err, IBC_EINPUT, "%s: bad shape in header", path);
        goto done;
    }
    // The size the header names is checked against the file's length before it is allocated.
    long here = ftell(f);
    if (here < 0 || fseek(f, 0, SEEK_END) != 0 || ftell(f) - here < (long)sizeof(float) * a->numel ||
        fseek(f, here, SEEK_SET) != 0) {
        rc = ibc_fail(err, IBC_EINPUT, "%s: truncated: fewer than %lld floats", path, (long long)a->numel);
        goto done;
    }
    a->data = xmalloc(sizeof(float) * (size_t)(a->numel ? a->numel : 1));
    if (fread(a->data, sizeof(float), (size_t)a->numel, f) != (size_t)a->numel) {
        rc = ibc_fail(err, IBC_EINPUT, "%s: truncated: fewer than %lld floats", path, (long long)a->numel);
        goto done;
    }
done:
    free(hdr);
    fclose(f);
    if (rc) npy_free(a);
    return rc;
}

int npy_write_header(FILE *f, int ndim, const int64_t *shape) {
    char dict[512];
    int k = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; i++)
        k += snprintf(dict + k, sizeof dict - (size_t)k, i + 1 == ndim && ndim > 1 ? "%lld" : "%lld, ",
                      (long long)shape[i]);
    k += snprintf(dict + k, sizeof dict - (size_t)k, "), }");
    size_t total = (10 + (size_t)k + 1 + 63) / 64 * 64; // magic+len+dict+'\n', 64-aligned
    size_t hl = total - 10;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff),
                             (unsigned char)(hl >> 8)};
    fwrite(pre, 1, 10, f);
    fwrite(dict, 1, (size_t)k, f);
    for (size_t i = (size_t)k; i < hl - 1; i++) fputc(' ', f);
    fputc('\n', f);
    return ferror(f) ? -1 : 0;
}

int npy_write(const char *path, int ndim, const int64_t *shape, const float *data, ibc_err *err) {
    io_file w;
    int rc = io_begin(&w, path, err);
    if (rc) return rc;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    npy_write_header(w.f, ndim, shape);
    fwrite(data, sizeof(float), n, w.f);
    return io_commit(&w, err);
}
