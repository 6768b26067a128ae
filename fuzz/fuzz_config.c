// libFuzzer target: config.json parsing on arbitrary text.
#include <stdint.h>

#include "ibc/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    model_config c;
    ibc_err e = {0};
    config_parse((const char *)data, size, "fuzz", &c, &e);
    return 0;
}
