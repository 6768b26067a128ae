// rng: ibc's own random generator, fixed forever (method.md §2: every anchor, every sampled
// document and every random weight depends on it; changing it changes every number).
//
//   state  = xoshiro256** seeded by four successive splitmix64 outputs of the 64-bit seed
//   u64    = xoshiro256** next()
//   double = (u64 >> 11) * 2^-53                      uniform in [0, 1)
//   normal = Box-Muller on two doubles u1, u2: sqrt(-2 ln(1 - u1)) * cos(2 pi u2)
//            (one draw per call; the sine half is not kept, so draws never depend on parity)
#ifndef IBC_RNG_H
#define IBC_RNG_H

#include <stdint.h>

typedef struct { uint64_t s[4]; } rng;

void rng_seed(rng *r, uint64_t seed);
uint64_t rng_u64(rng *r);
double rng_uniform(rng *r);
double rng_normal(rng *r);
// Uniform integer in [0, n), unbiased (rejection).
uint64_t rng_below(rng *r, uint64_t n);

#endif
