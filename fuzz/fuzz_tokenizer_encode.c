// libFuzzer target: encoding arbitrary bytes with fuzz/tiny_tokenizer.json (every normalizer,
// pre-tokenizer and decoder kind in one file), then decoding the ids back.
#include <stdint.h>
#include <stdlib.h>

#include "ibc/tokenizer.h"

static tokenizer *tok;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ibc_err e = {0};
    if (!tok && tok_load(getenv("TINY_TOKENIZER") ? getenv("TINY_TOKENIZER") : "../../fuzz/tiny_tokenizer.json", &tok, &e)) abort();
    int32_t *ids;
    int n;
    for (int special = 0; special < 2; special++)
        if (tok_encode(tok, (const char *)data, size, special, &ids, &n, &e) == 0) {
            char *out;
            size_t len;
            if (tok_decode(tok, ids, n, special, &out, &len, &e) == 0) free(out);
            free(ids);
        }
    return 0;
}
