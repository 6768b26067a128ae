// libFuzzer target: the corpus readers (text, jsonl, jsonl-ids, preference pairs in string and
// chat form, tokens-u16/u32 + offsets), with and without sampling and on_bad_document = skip.
// The first byte picks the format and options; the rest is the file (for token files: the first
// half the tokens, the second the offsets). Files go to a private temp folder.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ibc/corpus.h"

static char dir[64];

static void put(const char *path, const uint8_t *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fwrite(d, 1, n, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/ibc_fuzz_corpus_XXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    if (size < 1) return 0;
    unsigned op = data[0];
    data++;
    size--;
    job j;
    memset(&j, 0, sizeof j);
    j.format = (corpus_format)(op % 5);
    j.skip_bad = (op >> 3) & 1;
    j.documents = (op >> 4) & 3 ? (op >> 4) & 3 : 0;
    j.corpus_seed = op >> 6;
    strcpy(j.field, j.format == CORPUS_JSONL_IDS ? "ids" : "text");
    strcpy(j.separator, (op >> 6) & 1 ? "%" : "");
    snprintf(j.corpus, sizeof j.corpus, "%s/c", dir);
    if ((op >> 7) & 1 && j.format == CORPUS_JSONL) snprintf(j.preference, sizeof j.preference, "%s/c", dir);
    if (j.format == CORPUS_TOKENS_U16 || j.format == CORPUS_TOKENS_U32) {
        snprintf(j.offsets, sizeof j.offsets, "%s/o", dir);
        put(j.corpus, data, size / 2);
        put(j.offsets, data + size / 2, size - size / 2);
    } else {
        put(j.corpus, data, size);
    }
    corpus c;
    ibc_err e = {0};
    if (corpus_read(&j, &c, &e) == 0) corpus_free(&c);
    return 0;
}
