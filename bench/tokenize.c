// bench/tokenize: tokenizer throughput on English text, one core (issue 3: >= 5 MB/s).
//
// Encodes WikiText-2 (raw test split) and tiny-shakespeare from the shared fixtures with each
// fixture tokenizer, document by document (paragraphs of WikiText, 4 KB blocks of
// Shakespeare), twice: the first pass fills the word cache, the second measures steady state.
// MB/s counts input bytes.
//   usage: tokenize [FIXTURES]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "ibc/io.h"
#include "ibc/limits.h"
#include "ibc/tokenizer.h"

int main(int argc, char **argv) {
    const char *fx = argc > 1 ? argv[1] : (getenv("IBC_FIXTURES") ? getenv("IBC_FIXTURES") : "../shared/fixtures");
    const char *toks[] = {"gpt2", "gpt-neox-20b", "lenml-llama2"};
    const char *texts[] = {"corpora/wikitext-2-raw_wiki.test.raw", "corpora/tinyshakespeare_input.txt"};
    for (int ti = 0; ti < 2; ti++) {
        char path[IBC_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", fx, texts[ti]);
        char *text;
        size_t len;
        ibc_err e = {0};
        if (io_read_all(path, &text, &len, &e)) { fprintf(stderr, "%s (fixtures absent?)\n", e.msg); return 1; }
        for (int k = 0; k < 3; k++) {
            snprintf(path, sizeof path, "%s/tokenizers/%s/tokenizer.json", fx, toks[k]);
            tokenizer *t;
            if (tok_load(path, &t, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
            double rate[2];
            long ntok = 0;
            for (int pass = 0; pass < 2; pass++) {
                double t0 = bench_now();
                ntok = 0;
                for (size_t a = 0; a < len;) { // documents: WikiText paragraphs (blank lines), 4 KB blocks
                    size_t b = a + 4096 < len ? a + 4096 : len;
                    if (ti == 0) { const char *p = strstr(text + a + 1, "\n \n"); b = p ? (size_t)(p - text) + 3 : len; }
                    while (b < len && ((unsigned char)text[b] & 0xc0) == 0x80) b++; // whole characters
                    int32_t *ids;
                    int n;
                    if (tok_encode(t, text + a, b - a, 1, &ids, &n, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
                    ntok += n;
                    free(ids);
                    a = b;
                }
                rate[pass] = len / (bench_now() - t0) / 1e6;
            }
            printf("%-32s %-14s %5.2f MB  %8ld tokens  first pass %5.1f MB/s  steady %5.1f MB/s\n", texts[ti] + 8, toks[k],
                   len / 1e6, ntok, rate[0], rate[1]);
            tok_free(t);
        }
        free(text);
    }
    return 0;
}
