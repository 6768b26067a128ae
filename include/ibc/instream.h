// instream: one input file read as a stream of decompressed bytes or lines.
//
// The compression is recognised by the file's first bytes, never its name: gzip (1f 8b; zlib,
// concatenated members read one after the other), zstd (28 b5 2f fd; libzstd, every frame),
// xz (fd 37 7a 58 5a 00; liblzma, concatenated streams), anything else is read as is. Memory is
// two fixed buffers plus the longest line (at most IBC_LINE_MAX), whatever the file's size.
//
// Errors are IBC_EINPUT lines naming the file and where: a truncated or corrupt stream (with the
// compressed byte offset), a file whose
// size or modification time changed between open and end (it changed while it was read).
// While reading, the raw (compressed) bytes are hashed: at the end instream_digest gives the
// file's SHA-256 and size as stored on disk. Not collective; one stream is one thread's.
#ifndef IBC_INSTREAM_H
#define IBC_INSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "ibc/err.h"
#include "ibc/sha256.h"

typedef struct instream instream;

int instream_open(const char *path, instream **s, ibc_err *err);
// The same over bytes in memory (borrowed; tests and fuzzing). name is used in messages.
int instream_open_mem(const void *data, size_t n, const char *name, instream **s, ibc_err *err);
void instream_close(instream *s);

// Up to n decompressed bytes into buf (fewer only at the end); *got = 0 at the end.
int instream_read(instream *s, void *buf, size_t n, size_t *got, ibc_err *err);
// The next line without its '\n' (a '\r' before it is kept), NUL-terminated, in a buffer of s
// valid until the next call. Returns 1 (a line), 0 (end of the stream), 2 (a line longer than
// IBC_LINE_MAX: read to its end and dropped, *line = NULL; the caller names it with
// instream_line_no) or an error. A last line without '\n' is a line.
int instream_line(instream *s, const char **line, size_t *len, ibc_err *err);

int64_t instream_line_no(const instream *s);  // lines returned so far (1-based number of the last)
uint64_t instream_offset(const instream *s);  // decompressed bytes returned so far
const char *instream_kind(const instream *s); // "plain", "gzip", "zstd" or "xz"
const char *instream_name(const instream *s);
// After the end was reached: SHA-256 (hex) and size of the raw file.
void instream_digest(instream *s, char hex[SHA256_HEX], uint64_t *size);

#endif
