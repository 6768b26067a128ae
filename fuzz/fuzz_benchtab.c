// libFuzzer target: benchmark-table CSV parsing (libcsv + ibc's column and duplicate rules).
#include <stdint.h>

#include "ibc/benchtab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    benchtab t;
    ibc_err e = {0};
    for (int d = 0; d < 3; d++)
        if (bt_parse((const char *)data, size, "fuzz", d == 0 ? "model" : "model,step", (bt_dups)d, &t, &e) == 0) bt_free(&t);
    return 0;
}
