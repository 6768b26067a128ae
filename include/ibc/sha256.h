// sha256: SHA-256 (FIPS 180-4) of a byte stream, for the provenance manifest.
//
// ibc implements it itself (one small module, checked against FIPS 180-4's examples and
// sha256sum in tests/corpus.sh) rather than pull in a crypto library for one digest.
// Incremental: init, update any number of times, final. Not collective.
#ifndef IBC_SHA256_H
#define IBC_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_HEX 65 // 64 lowercase hex digits + NUL

typedef struct {
    uint32_t h[8];
    uint64_t bytes;      // message length so far
    unsigned char buf[64];
    size_t fill;         // bytes in buf
} sha256_ctx;

void sha256_init(sha256_ctx *s);
void sha256_update(sha256_ctx *s, const void *data, size_t n);
// Writes the digest as lowercase hex (SHA256_HEX bytes with the NUL). s is spent.
void sha256_final_hex(sha256_ctx *s, char hex[SHA256_HEX]);
// The digest of one buffer, as hex.
void sha256_hex(const void *data, size_t n, char hex[SHA256_HEX]);

#endif
