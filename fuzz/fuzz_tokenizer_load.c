// libFuzzer target: tokenizer.json parsing on arbitrary text (bad input is an error, never a crash).
#include <stdlib.h>
#include <stdint.h>

#include "ibc/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tokenizer *t;
    ibc_err e = {0};
    if (tok_parse((const char *)data, size, "fuzz", &t, &e) == 0) {
        int32_t *ids;
        int n;
        if (tok_encode(t, "a b, 1.", 7, 1, &ids, &n, &e) == 0) free(ids);
        tok_free(t);
    }
    return 0;
}
