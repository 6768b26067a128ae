#include "ibc/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ibc/mem.h"

int io_begin(io_file *w, const char *path, ibc_err *err) {
    memset(w, 0, sizeof *w);
    if (strlen(path) >= sizeof w->path)
        return ibc_fail(err, IBC_EINPUT, "%s: path too long", path);
    strcpy(w->path, path);
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp.%ld", path, (long)getpid()); // fits: IBC_PATH_NAME_MAX
    w->f = fopen(w->tmp, "wb");
    if (!w->f) return ibc_fail(err, IBC_ESYS, "%s: cannot create: %s", w->tmp, strerror(errno));
    return 0;
}

int io_commit(io_file *w, ibc_err *err) {
    int bad = ferror(w->f) || fflush(w->f) != 0 || fsync(fileno(w->f)) != 0;
    int e = errno;
    if (fclose(w->f) != 0 && !bad) { bad = 1; e = errno; }
    w->f = NULL;
    if (bad) {
        remove(w->tmp);
        return ibc_fail(err, IBC_ESYS, "%s: write failed: %s", w->path, strerror(e));
    }
    if (rename(w->tmp, w->path) != 0) {
        e = errno;
        remove(w->tmp);
        return ibc_fail(err, IBC_ESYS, "%s: rename failed: %s", w->path, strerror(e));
    }
    return 0;
}

void io_abort(io_file *w) {
    if (w->f) fclose(w->f);
    w->f = NULL;
    if (w->tmp[0]) remove(w->tmp);
}

int io_read_all(const char *path, char **buf, size_t *len, ibc_err *err) {
    *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return ibc_fail(err, IBC_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 0, n = 0;
    char *b = NULL;
    xgrow(b, cap, (size_t)1 << 16);
    for (;;) {
        n += fread(b + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        xgrow(b, cap, cap + 1);
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) { free(b); return ibc_fail(err, IBC_EINPUT, "%s: read error", path); }
    b[n] = 0;
    *buf = b;
    if (len) *len = n;
    return 0;
}

int io_join(char *dst, size_t cap, const char *dir, const char *name, ibc_err *err) {
    int k = snprintf(dst, cap, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= cap) return ibc_fail(err, IBC_EINPUT, "%s/%s: path too long", dir, name);
    return 0;
}

int io_mkdirs(const char *path, ibc_err *err) {
    char p[IBC_PATH_MAX];
    if (strlen(path) >= sizeof p) return ibc_fail(err, IBC_EINPUT, "%s: path too long", path);
    strcpy(p, path);
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST)
                return ibc_fail(err, IBC_ESYS, "%s: cannot create folder: %s", p, strerror(errno));
            *s = c;
            if (!c) break;
        }
    }
    return 0;
}

int io_parse_file(const char *path, io_parse_fn parse, void *ctx, ibc_err *err) {
    char *text;
    size_t len;
    int rc = io_read_all(path, &text, &len, err);
    if (rc) return rc;
    rc = parse(ctx, text, len, path, err);
    free(text);
    return rc;
}
