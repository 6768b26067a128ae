// owner: the partition rule of label rows across ranks (issue 12, design.md "Distribution").
//
// Each counted label (a row of C_x) lives on exactly one rank, its owner:
//
//   owner_of_label(set, key, P) = mix64(fnv1a64(key bytes [16, little-endian int32 x 4],
//                                               then the set index as 4 LE bytes)) mod P
//
// fnv1a64 is FNV-1a over those 20 bytes (offset basis 0xcbf29ce484222325, prime 0x100000001b3);
// mix64 is the splitmix64 finaliser, which spreads FNV's weak low bits before the modulo so
// that rows divide evenly even when P is a power of two. Unused tuple slots hold -1 (softent's
// label_at), and the min_count "rare" label is {-2,-2,-2,-2}: both hash like any other key.
// The rule depends only on (set, key, P): every rank computes the same owner with no
// communication, and `ibc plan` counts rows per rank with the very function the exchange uses.
// Pure; not collective.
#ifndef IBC_OWNER_H
#define IBC_OWNER_H

#include <stdint.h>

// The owner rank in [0, P) of label `key` of label set `set` (the index in se_acc.sets). P >= 1.
int owner_of_label(int set, const int32_t key[4], int P);

#endif
