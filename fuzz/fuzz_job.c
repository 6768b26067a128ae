// libFuzzer target: INI job files (inih + ibc's keys and values).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ibc/job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    job j;
    ibc_err e = {0};
    if (job_parse(text, "fuzz.ini", &j, &e) == 0) job_free(&j);
    free(text);
    return 0;
}
