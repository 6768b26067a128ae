// hmap: ibc's one hash table (tokenizer vocabulary, merges, word cache and pair counts;
// softent's label tables).
//
// Keys are bytes: either every key has the same size (key_size > 0: tuples of small integers,
// e.g. an (int32, int32) merge pair or a 4 x int32 label) or keys have any length
// (key_size == 0: strings; the empty key is a key like any other). The map copies keys.
// Each key gets a dense index 0, 1, 2, ... in insertion order that never changes, so callers
// keep per-key data in their own arrays indexed by it; val[index] is an int64 payload the
// caller may use instead (a count, a packed pair of ids, another index).
//
// Layout: open addressing with linear probing over a power-of-two slot array. A slot holds
// the key's index + 1 (0: empty) and the high 32 bits of its hash (the tag), so a probe
// compares keys only when the tags agree. The tag also gives the key's home slot (its low
// bits; past 2^32 slots homes repeat, which only lengthens probes), so growth re-places slots
// without reading or hashing keys. Load factor at most 0.7: an insertion that would pass it
// doubles the slots first (amortised O(1); indices and keys are unchanged by growth). Keys live in one arena
// (fixed-size keys: [n, key_size] contiguous; others: NUL-terminated bytes with offsets).
// At most HMAP_MAX keys (the index must fit 32 bits). Nothing is ever removed; hmap_clear
// empties the map and keeps its memory.
//
// Memory per key: 8 B of slots / 0.35..0.7, 8 B of val, the key bytes (+ 8 B offset and
// 1 B NUL for keys of any length). Allocation follows ibc/mem.h (never fails).
//
// Not thread-safe for writers; any number of readers may call hmap_find at once.
#ifndef IBC_HMAP_H
#define IBC_HMAP_H

#include <stddef.h>
#include <stdint.h>

#define HMAP_MAX ((int64_t)UINT32_MAX - 1)

typedef struct {
    uint64_t *slot;       // [cap] 0 empty, else (hash >> 32) << 32 | (index + 1)
    size_t cap;           // slots: 0 or a power of two
    size_t min_cap;       // first capacity
    int64_t n;            // keys, indices 0..n-1
    size_t key_size;      // bytes of every key, or 0: any length
    unsigned char *keys;  // the key arena
    size_t keys_len, keys_cap;
    size_t *off;          // [n + 1] key_size 0: key i is keys[off[i] .. off[i+1] - 1) (a NUL follows)
    size_t off_cap;
    int64_t *val;         // [n] payload, 0 when the key is inserted
    size_t val_cap;
} hmap;

// key_size: see above; min_cap: slots of the first allocation (rounded up to a power of two,
// at least 16): a map that will hold many keys starts big and skips the first doublings.
void hmap_init(hmap *m, size_t key_size, size_t min_cap);
void hmap_free(hmap *m);
// Removes every key (indices restart at 0); keeps the memory.
void hmap_clear(hmap *m);

// Index of key[0..len) or -1. For fixed-size maps len must be key_size.
int64_t hmap_find(const hmap *m, const void *key, size_t len);
// Index of key[0..len), inserted with val 0 when absent (*added = 1, else 0; added may be
// NULL); -1 when the map already holds HMAP_MAX keys.
int64_t hmap_put(hmap *m, const void *key, size_t len, int *added);

// Key of index i (0 <= i < n) and its length.
static inline const void *hmap_key(const hmap *m, int64_t i, size_t *len) {
    if (m->key_size) {
        if (len) *len = m->key_size;
        return m->keys + (size_t)i * m->key_size;
    }
    if (len) *len = m->off[i + 1] - m->off[i] - 1;
    return m->keys + m->off[i];
}

// The one hash function of ibc (64 bits): FNV-1a's xor-then-multiply taken a 64-bit word at a
// time (with a xorshift so high bits reach the next multiply; the last word read overlapping
// the one before), the length mixed in first, and MurmurHash3's fmix64 finaliser. Deterministic on every platform of the same byte order;
// never used for anything stored in files.
uint64_t hmap_hash(const void *s, size_t n);

#endif
