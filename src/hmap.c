#include "ibc/hmap.h"

#include <stdlib.h>
#include <string.h>

#include "ibc/mem.h"

#define MUL 0x9e3779b97f4a7c15ULL // 2^64 / golden ratio, odd

static inline uint64_t load64(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}
static inline uint64_t load32(const unsigned char *p) {
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

// The hash, inlined where the map knows the key size (8 or 16 bytes): the compiler then drops
// the loop and the tail's branches. hmap_hash is the same function for any caller.
static inline __attribute__((always_inline)) uint64_t hash_inline(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL ^ (n * MUL); // FNV-1a's offset basis, then the length
    size_t k = n;
    for (; k > 8; k -= 8, p += 8) {
        h = (h ^ load64(p)) * MUL;
        h ^= h >> 32;
    }
    // The last 1-8 bytes as one word: for keys of 8 bytes or more the last 8 (overlapping the
    // previous word); shorter keys by two 4-byte reads, or their first, middle and last byte.
    // The length is already in h, so overlapping reads cannot make two keys equal.
    uint64_t w = n >= 8 ? load64(p + k - 8) : k >= 4 ? load32(p) << 32 | load32(p + k - 4)
               : k ? (uint64_t)p[0] << 16 | (uint64_t)p[k >> 1] << 8 | p[k - 1] : 0;
    h = (h ^ w) * MUL;
    h ^= h >> 32;
    h ^= h >> 33; // fmix64
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

uint64_t hmap_hash(const void *s, size_t n) { return hash_inline(s, n); }

// Key kinds the probe loop is compiled for: the map's key_size when it is 8 or 16 (constant
// size: hash, compare and copy inline to a few instructions), KIND_ANY for keys of any length,
// KIND_FIXED for other fixed sizes (rare: memcmp). Callers pass a constant, so each public
// function switches once and then runs a loop without branches on the kind.
enum { KIND_ANY = 0, KIND_FIXED = 1 };

static inline __attribute__((always_inline)) uint64_t hash_kind(const void *key, size_t len, int kind) {
    return kind == 8 || kind == 16 ? hash_inline(key, (size_t)kind) : hash_inline(key, len);
}

// a[0..n) == b[0..n) without a call: most keys are words of a few bytes, where calling memcmp
// costs more than the compare. Reads stay inside both ranges (overlapping words, as the hash).
static inline __attribute__((always_inline)) int bytes_eq(const unsigned char *a, const unsigned char *b, size_t n) {
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8)
            if (load64(a + i) != load64(b + i)) return 0;
        return load64(a + n - 8) == load64(b + n - 8);
    }
    if (n >= 4) return load32(a) == load32(b) && load32(a + n - 4) == load32(b + n - 4);
    return !n || (a[0] == b[0] && a[n >> 1] == b[n >> 1] && a[n - 1] == b[n - 1]);
}

void hmap_init(hmap *m, size_t key_size, size_t min_cap) {
    memset(m, 0, sizeof *m);
    m->key_size = key_size;
    m->min_cap = 16;
    while (m->min_cap < min_cap) m->min_cap *= 2;
}

void hmap_free(hmap *m) {
    free(m->slot);
    free(m->keys);
    free(m->off);
    free(m->val);
    size_t ks = m->key_size, mc = m->min_cap;
    memset(m, 0, sizeof *m);
    m->key_size = ks;
    m->min_cap = mc;
}

void hmap_clear(hmap *m) {
    if (m->slot) memset(m->slot, 0, sizeof(uint64_t) * m->cap);
    m->n = 0;
    m->keys_len = 0;
}

static inline __attribute__((always_inline)) int key_eq(const hmap *m, int64_t i, const void *key, size_t len, int kind) {
    const unsigned char *k = m->keys + (size_t)i * m->key_size, *q = key;
    switch (kind) {
    case 8: return load64(k) == load64(q);
    case 16: return load64(k) == load64(q) && load64(k + 8) == load64(q + 8);
    case KIND_ANY: {
        size_t a = m->off[i];
        return m->off[i + 1] - a - 1 == len && bytes_eq(m->keys + a, q, len);
    }
    default: return !memcmp(k, key, len);
    }
}

// The slot of key (hash h) or of the empty slot where it would go. The home slot is taken from
// the tag bits (h >> 32), so that growth can re-place slots from their tags alone.
static inline __attribute__((always_inline)) size_t probe(const hmap *m, const void *key, size_t len, uint64_t h, int kind) {
    uint64_t tag = h >> 32;
    size_t mask = m->cap - 1, i = (size_t)tag & mask;
    for (;; i = (i + 1) & mask) {
        uint64_t s = m->slot[i];
        if (!s) return i;
        if (s >> 32 == tag && key_eq(m, (int64_t)(uint32_t)s - 1, key, len, kind)) return i;
    }
}

static inline __attribute__((always_inline)) int64_t find_kind(const hmap *m, const void *key, size_t len, int kind) {
    uint64_t s = m->slot[probe(m, key, len, hash_kind(key, len, kind), kind)];
    return s ? (int64_t)(uint32_t)s - 1 : -1;
}

int64_t hmap_find(const hmap *m, const void *key, size_t len) {
    if (!m->n) return -1;
    switch (m->key_size) {
    case 0: return find_kind(m, key, len, KIND_ANY);
    case 8: return find_kind(m, key, 8, 8);
    case 16: return find_kind(m, key, 16, 16);
    default: return find_kind(m, key, len, KIND_FIXED);
    }
}

// Doubles the slots. A slot's tag holds its home (see probe), so the keys are neither read nor
// hashed again: a slot array of 8 B per slot is all that moves.
static void grow_slots(hmap *m) {
    size_t cap = m->cap ? 2 * m->cap : m->min_cap ? m->min_cap : 16, mask = cap - 1; // zeroed map: 16
    uint64_t *old = m->slot;
    size_t old_cap = m->cap;
    m->slot = xcalloc(cap, sizeof(uint64_t));
    m->cap = cap;
    for (size_t j = 0; j < old_cap; j++) { // indices and keys stay; only the slots move
        uint64_t s = old[j];
        if (!s) continue;
        size_t i = (size_t)(s >> 32) & mask;
        while (m->slot[i]) i = (i + 1) & mask;
        m->slot[i] = s;
    }
    free(old);
}

// Appends key (index k = n - 1, already counted) to the arena and gives it val 0.
static inline __attribute__((always_inline)) void append_key(hmap *m, int64_t k, const void *key, size_t len, int kind) {
    size_t need = kind != KIND_ANY ? (size_t)m->n * len : m->keys_len + len + 1;
    if (need > m->keys_cap) xgrow(m->keys, m->keys_cap, need);
    unsigned char *dst = m->keys + (kind != KIND_ANY ? (size_t)k * len : m->keys_len);
    if (kind == KIND_ANY) {
        if ((size_t)m->n + 1 > m->off_cap) xgrow(m->off, m->off_cap, (size_t)m->n + 1);
        if (k == 0) m->off[0] = 0;
        dst[len] = 0;
        m->off[k + 1] = need;
    }
    if (kind == 8 || kind == 16) memcpy(dst, key, (size_t)kind); // constant sizes: inlined copies
    else if (len) memcpy(dst, key, len);
    m->keys_len = need;
    if ((size_t)m->n > m->val_cap) xgrow(m->val, m->val_cap, (size_t)m->n);
    m->val[k] = 0;
}

static inline __attribute__((always_inline)) int64_t put_kind(hmap *m, const void *key, size_t len, int *added, int kind) {
    if ((size_t)(m->n + 1) * 10 > m->cap * 7) grow_slots(m); // load factor <= 0.7
    uint64_t h = hash_kind(key, len, kind);
    size_t i = probe(m, key, len, h, kind);
    if (m->slot[i]) return (int64_t)(uint32_t)m->slot[i] - 1;
    int64_t k = m->n++;
    append_key(m, k, key, len, kind);
    m->slot[i] = (h >> 32) << 32 | (uint64_t)(k + 1);
    if (added) *added = 1;
    return k;
}

int64_t hmap_put(hmap *m, const void *key, size_t len, int *added) {
    if (added) *added = 0;
    if (m->n >= HMAP_MAX) return hmap_find(m, key, len); // full: only existing keys
    switch (m->key_size) {
    case 0: return put_kind(m, key, len, added, KIND_ANY);
    case 8: return put_kind(m, key, 8, added, 8);
    case 16: return put_kind(m, key, 16, added, 16);
    default: return put_kind(m, key, len, added, KIND_FIXED);
    }
}
