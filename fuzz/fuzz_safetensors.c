// libFuzzer target: safetensors header validation on arbitrary file images, then converting
// every tensor that validated (so a wrong range check would read out of bounds under ASan).
#include <stdint.h>
#include <stdlib.h>

#include "ibc/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file f;
    ibc_err e = {0};
    if (st_open_buffer(data, size, "fuzz", &f, &e) == 0) {
        for (int i = 0; i < f.n; i++) {
            float *out = malloc(sizeof(float) * (size_t)(f.tensors[i].numel < (1 << 20) ? f.tensors[i].numel + 1 : 1));
            if (out && f.tensors[i].numel < (1 << 20)) st_to_f32(&f.tensors[i], out, &e);
            free(out);
        }
        st_close(&f);
    }
    return 0;
}
