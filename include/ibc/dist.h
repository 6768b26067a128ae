// dist: every MPI call of ibc outside main.c (design.md "Distribution").
//
// Ranks agree on everything that decides a number: rank 0 reads the corpus and broadcasts
// it; every rank precounts the same labels in the same order, so label tables have the same
// layout on every rank and merge by an elementwise integer MPI_Allreduce; conditional sums
// are computed by label stripes (label index mod ranks) and reduced as integer limbs. All
// sums are of integers, so results are bitwise identical for any number of ranks.
#ifndef IBC_DIST_H
#define IBC_DIST_H

#include <stdint.h>

#include "ibc/corpus.h"
#include "ibc/err.h"
#include "ibc/softent.h"

int dist_rank(void);
int dist_size(void);
// Ranks on this rank's node (MPI_COMM_TYPE_SHARED). Collective: every rank calls it.
int dist_local_size(void);

// Broadcasts rank 0's return code and error message; returns the code on every rank.
int dist_share_error(int rc, ibc_err *err);

// Sends rank 0's corpus to every rank (others pass an empty corpus to fill).
int dist_bcast_corpus(corpus *c, ibc_err *err);

// 1 on every rank if any rank passes a nonzero flag.
int dist_any(int flag);

// Sums counters across ranks in place.
void dist_sum(int64_t *v, int n);

// Merges every rank's accumulator into the global counts, on every rank: C, N, documents,
// singleton terms and every label row. The accumulators must be precounted identically.
void dist_merge_acc(se_acc *acc);

// Global conditional limb sums (se_cond_sums by label stripes), on every rank.
void dist_cond_sums(const se_acc *acc, int64_t *out);

void dist_barrier(void);

// Rank r computes the ids of the documents i with i % P == r (fn, e.g. tokenization); then
// every rank holds every document's ids (previous ids are replaced). Errors are shared.
typedef int (*dist_doc_fn)(void *ctx, const corpus_doc *d, int32_t **ids, int *n, ibc_err *err);
int dist_map_docs(corpus *c, dist_doc_fn fn, void *ctx, ibc_err *err);

#endif
