// libFuzzer target: the .npy reader (anchors files) on arbitrary file images. The image goes
// into one memory file reread through /proc/self/fd, as npy_read takes a path; every float of
// an array that read is touched, so a wrong size check reads out of bounds under ASan.
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ibc/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_npy", 0);
        if (fd < 0) return 0;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) return 0;
    npy_array a;
    ibc_err e = {0};
    if (npy_read(path, &a, &e) == 0) {
        volatile float sum = 0;
        for (int64_t i = 0; i < a.numel; i++) sum += a.data[i];
        npy_free(&a);
    }
    return 0;
}
