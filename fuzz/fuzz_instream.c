// libFuzzer target: compressed streams (gzip members, zstd frames, xz streams, plain) read as
// lines and as fixed-size blocks, through instream's memory source.
#include <stdint.h>
#include <stdlib.h>

#include "ibc/instream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    instream *s;
    ibc_err e = {0};
    const char *l;
    size_t n;
    if (instream_open_mem(data, size, "fuzz", &s, &e) == 0) {
        while (instream_line(s, &l, &n, &e) > 0) {}
        char hex[SHA256_HEX];
        uint64_t sz;
        instream_digest(s, hex, &sz);
        instream_close(s);
    }
    if (instream_open_mem(data, size, "fuzz", &s, &e) == 0) {
        unsigned char buf[777];
        while (instream_read(s, buf, sizeof buf, &n, &e) == 0 && n) {}
        instream_close(s);
    }
    return 0;
}
