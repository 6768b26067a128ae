// dist: every MPI call of ibc outside main.c (design.md "Distribution").
//
// Ranks agree on everything that decides a number: rank 0 reads the corpus and broadcasts
// it; every rank precounts the same labels in the same order, so label indices are the same
// on every rank. Each label row lives on one owner rank (owner.h, se_acc_partition); a rank
// sums what it computes for other ranks' labels in an outbox and dist_exchange sends those
// sums to the owners (MPI_Alltoallv); the owners compute the conditional sums of their rows,
// reduced as integer limbs. All sums are of integers, so results are bitwise identical for
// any number of ranks and any exchange schedule.
//
// Counts past INT_MAX: every call that moves a long buffer (the exchange, the corpus
// broadcast, the id gather, the long integer sums) goes in chunks of dist_chunk_bytes().
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
// Ranks on this rank's node (MPI_COMM_TYPE_SHARED). Collective: every rank calls it.
int dist_local_size(void);

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

// The chunk of every MPI transfer whose count could pass INT_MAX, in BYTES: the environment
// variable IBC_MPI_CHUNK (1 .. 2^30; tests set a few bytes to run the chunked paths), else
// 2^30. Read once; every rank must see the same value (mpirun passes the environment).
int64_t dist_chunk_bytes(void);

// One exchange round: every rank's outbox rows (se_acc_partition) go to their owners, packed
// per owner as records (set, label index, row [n_layers, n]) of int64; MPI_Alltoall of the
// byte counts, then MPI_Alltoallv (chunked); the owners add them into their rows (integer
// sums: exact in any order) and the outboxes are emptied. Adds the bytes this rank sent to
// *sent. The accumulators must be precounted over the same documents in the same order and
// partitioned as se_acc_partition(acc, dist_rank(), dist_size()). Send and receive buffers
// come from mem.h: a rank out of memory here ends the whole job with a message (MPI_Abort),
// never a hang. Returns 0, or (a layout mismatch, a bug) the agreed error on every rank.
// Collective: every rank calls it.
int dist_exchange(se_acc *acc, int64_t *sent, ibc_err *err);

// Merges every rank's accumulator, on every rank: a final dist_exchange (every row at its
// owner), then C, N and the document counts all-reduced. Rows and singleton terms stay where
// they are (dist_cond_sums uses them there). Same preconditions as dist_exchange.
// Collective: every rank calls it.
int dist_merge_acc(se_acc *acc, int64_t *sent, ibc_err *err);

// Global conditional limb sums after dist_merge_acc, on every rank: each rank's se_cond_sums
// over its owned rows and its own singleton terms, all-reduced as integer limbs.
// Collective: every rank calls it.
void dist_cond_sums(const se_acc *acc, int64_t *out);

// Collective: every rank calls it.
void dist_barrier(void);

// Handing a unit over within a round (run.c, design.md "Run loop"): a rank that has finished
// its own units asks the ranks still at work for one of theirs, which continues on it from a
// layer boundary. Point-to-point messages on a communicator of their own, from the main thread
// only (MPI_THREAD_FUNNELED; model.c calls the leave hook on every thread, run.c polls on
// thread 0). Within a round every rank calls, in order:
//   dist_ho_begin;
//   dist_ho_poll while it computes its own units, answering each request it returns with
//     dist_ho_give or dist_ho_refuse at once;
//   dist_ho_finished when its own units are done (it gives nothing more this round);
//   dist_ho_take (it answers requests itself meanwhile), and dist_ho_poll + dist_ho_refuse
//     while it computes a unit taken;
//   dist_ho_end, which returns once every rank has reached it.
// Every rank answers every request, and a rank's last message of a round (DONE) comes after
// all its others, so when dist_ho_end returns no message of the round is left unread, and a
// rank that asks is never left waiting: no hang whatever the timing. A rank asks each rank at
// most once per round.
typedef struct {
    int P, rank;
    void *comm;    // MPI_Comm *: a duplicate of the world's
    char *fin;     // [P] finished its own units this round
    char *asked;   // [P] asked this round
    int ndone;     // DONE messages received this round
} dist_ho;
// Collective: every rank calls them.
void dist_ho_init(dist_ho *h);
void dist_ho_free(dist_ho *h);
void dist_ho_begin(dist_ho *h);
// A rank asking this one for a unit (answer it now), or -1.
int dist_ho_poll(dist_ho *h);
void dist_ho_refuse(dist_ho *h, int to);
// The unit: a header of nhead int64 and its residual stream x [nx], nx at most
// dist_ho_max_floats() (one message each).
void dist_ho_give(dist_ho *h, int to, const int64_t *head, int nhead, const float *x, int64_t nx);
int64_t dist_ho_max_floats(void);
void dist_ho_finished(dist_ho *h);
// Asks the ranks still at work, one at a time, until one gives a unit: 1 and *head [*nhead],
// *x [*nx] (malloc'd, the caller frees both), or 0 when none will.
int dist_ho_take(dist_ho *h, int64_t **head, int *nhead, float **x, int64_t *nx);
void dist_ho_end(dist_ho *h);

// Rank r computes the ids of the documents i with i % P == r (fn, e.g. tokenization); then
// every rank holds every document's ids (previous ids are replaced). Collective: every rank
// calls it. A failure of fn on any rank is agreed (dist_agree): every rank returns the lowest
// failing rank's code and message, and the documents keep their previous ids.
typedef int (*dist_doc_fn)(void *ctx, const corpus_doc *d, int32_t **ids, int *n, ibc_err *err);
int dist_map_docs(corpus *c, dist_doc_fn fn, void *ctx, ibc_err *err);

// ---- Start-up (src/dist_start.c): MPI, the out-of-memory handler, cores and threads ----------
//
// Which cores a rank uses and how many threads it runs (issue 15 point 1):
// - Its cores are its affinity mask (sched_getaffinity) as the launcher set it: an explicit
//   binding (`mpirun --bind-to ...`, `--map-by ...:PE=N`, `srun --cpu-bind`, taskset, a Slurm
//   or cgroup cpuset) is kept as it is. Open MPI's DEFAULT binding (each rank of a job of one
//   or two ranks bound to one core although nobody asked) is kept too, unless OMP_NUM_THREADS
//   asks for more threads than it gives: then it is replaced by an even split of the
//   launcher's cores among the node's ranks in local-rank order (hardware-thread siblings kept
//   together), so that `OMP_NUM_THREADS=2 mpirun -np 1` gets 2 cores. Default = Open MPI says
//   it bound the rank and no binding, mapping or cpus-per-rank option, OMP_PROC_BIND or
//   OMP_PLACES was given. (Without OMP_NUM_THREADS the thread counts are those ibc always
//   had: 1 per rank under mpirun -np 1 or 2, all cores for a rank started without mpirun.)
// - Its threads: OMP_NUM_THREADS if set; else the cores of its mask divided fairly among the
//   ranks of the node whose masks overlap it (the remainder to the lower local ranks).
// - Never more threads than cores in the mask, unless IBC_FORCE_THREADS=1: a larger
//   OMP_NUM_THREADS is capped, and rank 0 warns once, saying how to give ranks their cores.
// omp_set_num_threads and openblas_set_num_threads are set to that count.

// Collective: every rank calls it, once, first thing (before any OpenMP region, whose threads
// inherit the mask set here). MPI_Init, mem.h's fail handler (MPI_Abort) and rank, then the
// cores and threads above. Prints the warning (if any) on rank 0 to stderr.
void dist_init(int *argc, char ***argv);

// Collective: every rank calls it, once, last. MPI_Finalize.
void dist_finalize(void);

// This rank's thread count as set by dist_init.
int dist_threads(void);

// Rank 0: the one-line layout report, e.g. "ibc: 2 ranks x 1 thread, cores per rank: 0 | 1"
// (no newline); other ranks: "". Made by dist_init; callers print it unless --quiet.
const char *dist_layout(void);

// The pure parts, for tests. Threads for a rank whose mask has `cores` cores, shared by
// `sharers` ranks of the node (it is the `index`-th of them), given OMP_NUM_THREADS `want`
// (0: unset) and IBC_FORCE_THREADS `force`; *capped = 1 when `want` was cut to the mask.
int dist_plan_threads(int cores, int sharers, int index, int want, int force, int *capped);
// The `index`-th of `parts` even contiguous blocks of cpus[0..n) (ordered): [*lo, *hi).
void dist_split_block(int n, int parts, int index, int *lo, int *hi);

#endif
