// corpus: documents from disk, before tokenization (method.md §1: one item = one document).
//
// Files. `path` (and [preference] path, and offsets) is one file, a glob (c4/c4-validation.*.json.gz)
// or @LIST (a file naming one path or glob per line, relative to the list's folder; # comments).
// The files are read in sorted-name order (strcmp) and documents are numbered across them in that
// order. Every file is read as a stream through instream: plain, gzip, zstd or xz, recognised by
// magic bytes; memory holds the kept documents only, never a whole file.
//
// Formats: text (a line equal to the separator ends a document; separator "" = blank lines; a
// file's end ends one too), jsonl (a string field), jsonl-ids (an integer-array field: already
// tokenized), tokens-u16 / tokens-u32 (flat little-endian ids, plus an offsets file of u64 LE
// document starts: N + 1 values, 0 first, the token count last; with several token files, the
// offsets files pair with them in sorted order), and preference JSONL (jobs/README.md: prompt,
// chosen and rejected as strings or lists of {role, content} messages; prompt + chosen is a
// document labelled 1, prompt + rejected one labelled 0; corpus_render_pair gives the text).
//
// Sampling. documents = N (job) keeps a seeded uniform sample of N documents in corpus order: the
// first N of a Fisher-Yates shuffle of the document numbers with ibc's rng (the same sample ibc
// always drew), computed over a first pass that counts the documents; a second pass keeps the
// chosen ones. Memory ∝ N. The file contents must be the same in both passes (SHA-256).
//
// A bad document (invalid UTF-8, a line that is not JSON, a missing or mistyped field, a line
// over IBC_LINE_MAX) is an IBC_EINPUT error "FILE:LINE: cause", or, with skip_bad, skipped and
// counted in n_bad. A truncated or corrupt compressed stream, a glob matching nothing, a file
// that changes while read: an IBC_EINPUT error naming the file (never skipped).
// Not collective: rank 0 reads, dist_bcast_corpus shares the documents.
#ifndef IBC_CORPUS_H
#define IBC_CORPUS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "ibc/err.h"
#include "ibc/job.h"
#include "ibc/sha256.h"

typedef struct {
    char *text;    // UTF-8, or NULL for pre-tokenized documents
    int32_t *ids;  // pre-tokenized ids, or NULL
    int n_ids;
    int pref;      // 1 chosen, 0 rejected, -1 none
    int64_t line;  // where it starts in its file (1-based line, or document index)
} corpus_doc;

typedef struct {
    char path[JOB_PATH];
    uint64_t size;             // bytes on disk
    char sha256[SHA256_HEX];   // of the bytes on disk (compressed, as distributed)
    char kind[8];              // plain, gzip, zstd, xz
} corpus_file;

typedef struct {
    corpus_doc *docs;
    int64_t n;
    int64_t n_bad;      // bad documents skipped
    char source[JOB_PATH];
    // Provenance, on the reading rank only (dist_bcast_corpus shares docs, n and source):
    corpus_file *files; // [n_files] every file read, in reading order (offsets files too)
    int n_files;
    int64_t n_total;    // documents before sampling
    int64_t *index;     // [n] each kept document's number in the corpus (0-based, across files)
} corpus;

int corpus_read(const job *j, corpus *c, ibc_err *err);
// 1 when s[0..n) is valid UTF-8.
int corpus_valid_utf8(const char *s, size_t n);
void corpus_free(corpus *c);

// The paths a `path` value names: one file, a glob, or @LIST; sorted by name, at least one.
// *paths is an array of n malloc'd strings (free each and the array).
int corpus_expand(const char *spec, char ***paths, int *n, ibc_err *err);

// The text of one preference document: prompt then response (chosen or rejected), each a JSON
// string or a list of {role, content} messages. Strings alone: prompt + response, bytes as they
// are. Otherwise turns "ROLE: CONTENT" joined by "\n": the prompt's turns (a string prompt is one
// "user" turn), then the response's (a string response is one "assistant" turn) without the
// leading turns that repeat the prompt's. Returns a malloc'd string, or NULL with the cause in
// why (naming `field`).
char *corpus_render_pair(json_t *prompt, json_t *response, const char *field, char *why, size_t why_cap);

// Streams the documents of one jsonl file (a string field `field`) to fn in order, with their
// 1-based line; a bad line is an error, or skipped and counted in *n_bad when skip_bad. Used by
// `ibc tokenize --jsonl`. fn returns 0 to go on, or an error code.
typedef int (*corpus_text_fn)(void *ctx, const char *text, size_t len, int64_t line, ibc_err *err);
int corpus_each_jsonl(const char *path, const char *field, int skip_bad, corpus_text_fn fn, void *ctx,
                      int64_t *n_bad, ibc_err *err);

#endif
