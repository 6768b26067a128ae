// dist: every MPI call of ibc outside main.c (design.md "Distribution").
//
// Ranks agree on everything that decides a number: rank 0 reads the corpus and broadcasts
// it; every rank precounts the same labels in the same order, so label tables have the same
// layout on every rank and merge by an elementwise integer MPI_Allreduce; conditional sums
// are computed by label stripes (label index mod ranks) and reduced as integer limbs. All
// sums are of integers, so results are bitwise identical for any number of ranks.
//
// Errors: a function below that can fail agrees on the outcome before returning (dist_agree),
// so it returns the same code and message on every rank. A caller that fails on its own (a
// file, a parser) calls dist_agree before its next collective: a rank never returns early past
// a collective the others enter, which is what makes a one-rank failure a hang.
#ifndef IBC_DIST_H
#define IBC_DIST_H

#include <stdint.h>

#include "ibc/corpus.h"
#include "ibc/err.h"
#include "ibc/softent.h"

// This rank's index and the number of ranks (local, no communication).
int dist_rank(void);
int dist_size(void);

// The one protocol for errors between ranks. Collective: every rank calls it.
// Every rank passes its own rc (0 or an IBC_E* code) and err (its message when rc != 0).
// Returns 0 on every rank if every rc was 0; otherwise the code of the lowest failing rank,
// on every rank, with that rank's message copied into every rank's err (err->code set).
// One MPI_Allreduce (MIN over "failed ? rank : P"), plus one MPI_Bcast only on failure.
int dist_agree(int rc, ibc_err *err);

// Sends rank 0's corpus to every rank (others pass an empty corpus to fill). Collective:
// every rank calls it. Returns 0 on every rank (allocations abort the job, mem.h).
int dist_bcast_corpus(corpus *c, ibc_err *err);

// 1 on every rank if any rank passes a nonzero flag: for a request such as a stop signal,
// not for errors (those go through dist_agree, which carries the message). Collective:
// every rank calls it.
int dist_any(int flag);

// Sums counters across ranks in place. Collective: every rank calls it.
void dist_sum(int64_t *v, int n);

// Merges every rank's accumulator into the global counts, on every rank: C, N, documents,
// singleton terms and every label row. The accumulators must be precounted identically.
// Collective: every rank calls it.
void dist_merge_acc(se_acc *acc);

// Global conditional limb sums (se_cond_sums by label stripes), on every rank.
// Collective: every rank calls it.
void dist_cond_sums(const se_acc *acc, int64_t *out);

// Collective: every rank calls it.
void dist_barrier(void);

// Rank r computes the ids of the documents i with i % P == r (fn, e.g. tokenization); then
// every rank holds every document's ids (previous ids are replaced). Collective: every rank
// calls it. A failure of fn on any rank is agreed (dist_agree): every rank returns the lowest
// failing rank's code and message, and the documents keep their previous ids.
typedef int (*dist_doc_fn)(void *ctx, const corpus_doc *d, int32_t **ids, int *n, ibc_err *err);
int dist_map_docs(corpus *c, dist_doc_fn fn, void *ctx, ibc_err *err);

#endif
