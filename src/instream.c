#include "ibc/instream.h"

#include <errno.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

#include "ibc/limits.h"
#include "ibc/mem.h"

// Raw and decompressed chunk sizes for files: large enough that a syscall or decoder call moves a
// useful amount, small enough that many open streams cost little. Memory streams (tests,
// fuzzing) use small odd sizes, so that decoders and lines cross chunk ends often.
#define RAW_CHUNK (1 << 18)
#define OUT_CHUNK (1 << 18)
#define MEM_RAW_CHUNK 1021
#define MEM_OUT_CHUNK 4093
// xz: a hostile header may ask for a huge dictionary; real files (xz -9) need 64 MiB.
#define XZ_MEMLIMIT ((uint64_t)512 << 20)

typedef enum { K_PLAIN, K_GZIP, K_ZSTD, K_XZ } kind;
static const char *KIND_NAME[] = {"plain", "gzip", "zstd", "xz"};

struct instream {
    char name[IBC_PATH_MAX];
    kind k;
    FILE *f;                    // NULL for memory streams
    const unsigned char *mem;   // memory stream
    size_t mem_len, mem_pos;
    struct stat st0;            // at open: a change while reading is an error
    unsigned char *raw;         // [raw_cap] raw bytes; [raw_pos, raw_len) not yet decoded
    size_t raw_pos, raw_len, raw_cap, out_cap;
    uint64_t raw_total;         // raw bytes read from the source
    int raw_eof, out_eof;
    unsigned char *out;         // [out_cap] decompressed bytes; [out_pos, out_len) not yet returned
    size_t out_pos, out_len;
    uint64_t offset;            // decompressed bytes returned
    char *line;                 // the current line (NUL-terminated), capacity line_cap
    size_t line_cap;
    int64_t line_no;
    sha256_ctx sha;
    char hex[SHA256_HEX];
    z_stream z;
    ZSTD_DCtx *zd;
    lzma_stream x;
    int in_member;              // gzip/zstd/xz: inside a member or frame that has not ended
};

// Refills raw when it is empty. Checks at the end that the file did not change meanwhile.
static int fill_raw(instream *s, ibc_err *err) {
    if (s->raw_pos < s->raw_len || s->raw_eof) return 0;
    size_t n;
    if (s->f) {
        n = fread(s->raw, 1, s->raw_cap, s->f);
        if (ferror(s->f)) return ibc_fail(err, IBC_EINPUT, "%s: read error at byte %llu: %s", s->name,
                                          (unsigned long long)s->raw_total, strerror(errno));
    } else {
        n = s->mem_len - s->mem_pos < s->raw_cap ? s->mem_len - s->mem_pos : s->raw_cap;
        memcpy(s->raw, s->mem + s->mem_pos, n);
        s->mem_pos += n;
    }
    sha256_update(&s->sha, s->raw, n);
    s->raw_pos = 0;
    s->raw_len = n;
    s->raw_total += n;
    if (n) return 0;
    s->raw_eof = 1;
    sha256_final_hex(&s->sha, s->hex);
    struct stat st;
    if (s->f && (fstat(fileno(s->f), &st) != 0 || st.st_size != s->st0.st_size || (uint64_t)st.st_size != s->raw_total ||
                 st.st_mtim.tv_sec != s->st0.st_mtim.tv_sec || st.st_mtim.tv_nsec != s->st0.st_mtim.tv_nsec))
        return ibc_fail(err, IBC_EINPUT, "%s: the file changed while it was read (%lld bytes at open, %llu read)", s->name,
                        (long long)s->st0.st_size, (unsigned long long)s->raw_total);
    return 0;
}

static uint64_t raw_offset(const instream *s) { return s->raw_total - (s->raw_len - s->raw_pos); }

static int corrupt(instream *s, const char *what, ibc_err *err) {
    return ibc_fail(err, IBC_EINPUT, "%s: corrupt %s stream at compressed byte %llu: %s", s->name, KIND_NAME[s->k],
                    (unsigned long long)raw_offset(s), what);
}

static int truncated(instream *s, ibc_err *err) {
    return ibc_fail(err, IBC_EINPUT, "%s: truncated %s stream: the file ends (at byte %llu) inside compressed data",
                    s->name, KIND_NAME[s->k], (unsigned long long)s->raw_total);
}

// One decoder step: consumes raw bytes, appends to out[out_len..OUT_CHUNK).
static int decode_step(instream *s, ibc_err *err) {
    unsigned char *in = s->raw + s->raw_pos, *o = s->out + s->out_len;
    size_t ain = s->raw_len - s->raw_pos, aout = s->out_cap - s->out_len, used_in = 0, made = 0;
    if (s->k == K_PLAIN) {
        used_in = made = ain < aout ? ain : aout;
        memcpy(o, in, made);
    } else if (s->k == K_GZIP) {
        if (!s->in_member) { inflateReset(&s->z); s->in_member = 1; }
        s->z.next_in = in;
        s->z.avail_in = (uInt)ain;
        s->z.next_out = o;
        s->z.avail_out = (uInt)aout;
        int r = inflate(&s->z, Z_NO_FLUSH);
        used_in = ain - s->z.avail_in;
        made = aout - s->z.avail_out;
        s->raw_pos += used_in; // before a message names the offset
        used_in = 0;
        if (r == Z_STREAM_END) s->in_member = 0; // another member may follow
        else if (r != Z_OK && !(r == Z_BUF_ERROR && ain == 0 && made == 0)) // Z_BUF_ERROR: nothing left to flush
            return corrupt(s, s->z.msg ? s->z.msg : "inflate failed", err);
    } else if (s->k == K_ZSTD) {
        ZSTD_inBuffer zi = {in, ain, 0};
        ZSTD_outBuffer zo = {o, aout, 0};
        size_t r = ZSTD_decompressStream(s->zd, &zo, &zi);
        s->raw_pos += zi.pos;
        if (ZSTD_isError(r)) return corrupt(s, ZSTD_getErrorName(r), err);
        s->in_member = r != 0;
        made = zo.pos;
    } else {
        s->x.next_in = in;
        s->x.avail_in = ain;
        s->x.next_out = o;
        s->x.avail_out = aout;
        lzma_ret r = lzma_code(&s->x, s->raw_eof ? LZMA_FINISH : LZMA_RUN);
        used_in = ain - s->x.avail_in;
        made = aout - s->x.avail_out;
        s->raw_pos += used_in;
        used_in = 0;
        s->in_member = r != LZMA_STREAM_END;
        if (r == LZMA_BUF_ERROR && s->raw_eof) return truncated(s, err);
        if (r == LZMA_MEMLIMIT_ERROR) return corrupt(s, "needs more than 512 MiB of decoder memory", err);
        if (r != LZMA_OK && r != LZMA_STREAM_END) return corrupt(s, "lzma decoder error", err);
    }
    s->raw_pos += used_in;
    s->out_len += made;
    return 0;
}

// Makes [out_pos, out_len) non-empty, or sets out_eof.
static int fill_out(instream *s, ibc_err *err) {
    if (s->out_pos < s->out_len || s->out_eof) return 0;
    s->out_pos = s->out_len = 0;
    int rc = 0;
    while (rc == 0 && s->out_len == 0) {
        if ((rc = fill_raw(s, err))) break;
        int at_end = s->raw_eof && s->raw_pos == s->raw_len;
        if (at_end && !s->in_member) { s->out_eof = 1; break; }
        // At the end inside a member or frame: one more step flushes what the decoder holds (xz:
        // LZMA_FINISH); no output then means the compressed data stops early.
        if ((rc = decode_step(s, err))) break;
        if (at_end && s->out_len == 0 && s->in_member) rc = truncated(s, err);
    }
    return rc;
}

int instream_read(instream *s, void *buf, size_t n, size_t *got, ibc_err *err) {
    *got = 0;
    while (*got < n) {
        int rc = fill_out(s, err);
        if (rc) return rc;
        if (s->out_eof) break;
        size_t k = s->out_len - s->out_pos < n - *got ? s->out_len - s->out_pos : n - *got;
        memcpy((char *)buf + *got, s->out + s->out_pos, k);
        s->out_pos += k;
        *got += k;
    }
    s->offset += *got;
    return 0;
}

int instream_line(instream *s, const char **line, size_t *len, ibc_err *err) {
    size_t n = 0;
    int too_long = 0;
    for (;;) {
        int rc = fill_out(s, err);
        if (rc) return rc;
        if (s->out_eof) {
            if (!n && !too_long) return 0;
            break;
        }
        unsigned char *p = s->out + s->out_pos, *nl = memchr(p, '\n', s->out_len - s->out_pos);
        size_t k = nl ? (size_t)(nl - p) : s->out_len - s->out_pos;
        if (n + k + 1 > IBC_LINE_MAX) too_long = 1; // read on to the line's end, keep nothing
        if (!too_long) {
            xgrow(s->line, s->line_cap, n + k + 1);
            memcpy(s->line + n, p, k);
            n += k;
        }
        s->out_pos += k + (nl != NULL);
        s->offset += k + (nl != NULL);
        if (nl) break;
    }
    s->line_no++;
    if (too_long) {
        *line = NULL;
        *len = 0;
        return 2;
    }
    xgrow(s->line, s->line_cap, n + 1);
    s->line[n] = 0;
    *line = s->line;
    *len = n;
    return 1;
}

// Recognises the compression by the first bytes and sets up its decoder.
static int detect(instream *s, ibc_err *err) {
    int rc = fill_raw(s, err);
    if (rc) return rc;
    const unsigned char *b = s->raw;
    size_t n = s->raw_len;
    static const unsigned char GZ[] = {0x1f, 0x8b}, ZS[] = {0x28, 0xb5, 0x2f, 0xfd}, XZ[] = {0xfd, '7', 'z', 'X', 'Z', 0};
    s->k = n >= 2 && !memcmp(b, GZ, 2) ? K_GZIP : n >= 4 && !memcmp(b, ZS, 4) ? K_ZSTD : n >= 6 && !memcmp(b, XZ, 6) ? K_XZ : K_PLAIN;
    if (s->k == K_GZIP && inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) return ibc_fail(err, IBC_ESYS, "%s: zlib init failed", s->name);
    if (s->k == K_ZSTD && !(s->zd = ZSTD_createDCtx())) return ibc_fail(err, IBC_ESYS, "%s: zstd init failed", s->name);
    if (s->k == K_XZ) {
        lzma_stream x = LZMA_STREAM_INIT;
        s->x = x;
        if (lzma_stream_decoder(&s->x, XZ_MEMLIMIT, LZMA_CONCATENATED) != LZMA_OK)
            return ibc_fail(err, IBC_ESYS, "%s: liblzma init failed", s->name);
    }
    return 0;
}

static int open_common(instream **out, instream *s, ibc_err *err) {
    s->raw_cap = s->f ? RAW_CHUNK : MEM_RAW_CHUNK;
    s->out_cap = s->f ? OUT_CHUNK : MEM_OUT_CHUNK;
    s->raw = xmalloc(s->raw_cap);
    s->out = xmalloc(s->out_cap);
    sha256_init(&s->sha);
    int rc = detect(s, err);
    if (rc) { instream_close(s); s = NULL; }
    *out = s;
    return rc;
}

int instream_open(const char *path, instream **out, ibc_err *err) {
    *out = NULL;
    if (strlen(path) >= IBC_PATH_MAX) return ibc_fail(err, IBC_EINPUT, "%s: path too long", path);
    FILE *f = fopen(path, "rb");
    if (!f) return ibc_fail(err, IBC_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    instream *s = xcalloc(1, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", path);
    s->f = f;
    if (fstat(fileno(f), &s->st0) != 0 || !S_ISREG(s->st0.st_mode)) {
        instream_close(s);
        return ibc_fail(err, IBC_EINPUT, "%s: not a regular file", path);
    }
    return open_common(out, s, err);
}

int instream_open_mem(const void *data, size_t n, const char *name, instream **out, ibc_err *err) {
    instream *s = xcalloc(1, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->mem = data;
    s->mem_len = n;
    return open_common(out, s, err);
}

void instream_close(instream *s) {
    if (!s) return;
    if (s->f) fclose(s->f);
    if (s->k == K_GZIP) inflateEnd(&s->z);
    ZSTD_freeDCtx(s->zd);
    if (s->k == K_XZ) lzma_end(&s->x);
    free(s->raw);
    free(s->out);
    free(s->line);
    free(s);
}

int64_t instream_line_no(const instream *s) { return s->line_no; }
uint64_t instream_offset(const instream *s) { return s->offset; }
const char *instream_kind(const instream *s) { return KIND_NAME[s->k]; }
const char *instream_name(const instream *s) { return s->name; }

void instream_digest(instream *s, char hex[SHA256_HEX], uint64_t *size) {
    memcpy(hex, s->raw_eof ? s->hex : "", s->raw_eof ? SHA256_HEX : 1);
    *size = s->raw_total;
}
