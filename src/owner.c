#include "ibc/owner.h"

static uint64_t fnv1a_bytes(uint64_t h, const unsigned char *p, int n) {
    for (int i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

int owner_of_label(int set, const int32_t key[4], int P) {
    unsigned char b[20]; // the key and the set index, little-endian whatever the host
    for (int i = 0; i < 5; i++) {
        uint32_t v = (uint32_t)(i < 4 ? key[i] : set);
        for (int k = 0; k < 4; k++) b[4 * i + k] = (unsigned char)(v >> (8 * k));
    }
    uint64_t z = fnv1a_bytes(0xcbf29ce484222325ULL, b, 20);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL; // splitmix64 finaliser
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return P > 1 ? (int)(z % (uint64_t)P) : 0;
}
