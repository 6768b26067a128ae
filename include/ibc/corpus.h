// corpus: documents from disk, before tokenization (method.md §1: one item = one document).
//
// Formats: text (a line equal to the separator ends a document; separator "" = blank lines),
// jsonl (a string field), jsonl-ids (an integer-array field: already tokenized), tokens-u16 /
// tokens-u32 (flat little-endian ids, plus an offsets file of u64 LE document starts: N + 1
// values, 0 first, the token count last), and preference JSONL ({prompt, chosen, rejected}:
// prompt + chosen is a document labelled 1, prompt + rejected one labelled 0).
// A bad document (invalid UTF-8, a line that is not JSON, a missing field) is an IBC_EINPUT
// error naming the file and line, or, with skip_bad, skipped and counted in n_bad.
#ifndef IBC_CORPUS_H
#define IBC_CORPUS_H

#include <stdint.h>

#include "ibc/err.h"
#include "ibc/job.h"

typedef struct {
    char *text;    // UTF-8, or NULL for pre-tokenized documents
    int32_t *ids;  // pre-tokenized ids, or NULL
    int n_ids;
    int pref;      // 1 chosen, 0 rejected, -1 none
    int64_t line;  // where it starts in the source (1-based line, or document index)
} corpus_doc;

typedef struct {
    corpus_doc *docs;
    int64_t n;
    int64_t n_bad;      // bad documents skipped
    char source[JOB_PATH];
} corpus;

int corpus_read(const job *j, corpus *c, ibc_err *err);
// Keeps a seeded sample of `documents` documents (all if 0 or more than there are), in
// their original order. Uses ibc's rng (a partial Fisher-Yates shuffle of the indices).
void corpus_sample(corpus *c, int64_t documents, uint64_t seed);
void corpus_free(corpus *c);

#endif
