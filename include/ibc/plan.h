// plan: what a job will hold per rank and per node, before anything runs (issue 12 §4).
//
// `ibc plan JOB.ini --ranks P [--nodes N] [--threads T]` and the fit check of `ibc run` use
// the same estimate. It reads the job's real corpus (labels depend on token ids only, so the
// precount is exact: softent's own se_precount_doc / se_precount_done_min on a 2-bin, 1-layer
// accumulator, whose rows cost 16 B), each checkpoint's config.json and safetensors headers
// (mapped, never converted). It also owns the work layout that `ibc run` follows, so that
// both count the same thing: units (plan_units), the order and the deal of them to ranks
// round by round (plan_order, plan_deal) and the round size ([parallel] round_units). The design it sizes (design.md "Distribution"):
//
//   mapped weights   = the safetensors files' bytes, shared by every rank of a node through
//                      the page cache (counted once per node)
//   layer scratch    = per rank, the f32 matrices of a decoder layer that cannot be used from
//                      the map as they are (model_scratch_floats, model.c's own rule): all of
//                      them when BF16/F16; with F32, those whose pieces are not adjacent in
//                      the file in the kernels' order (HF files store q, k, v in name order:
//                      k, o, q, v) or need rearranging (GPT-NeoX's per-head fused QKV); 0 when
//                      every matrix is used in place; two layers' when the rank has
//                      threads (model.c converts one while they compute another)
//   activations      = per thread (each thread carries units of documents stacked in every
//                      product, plan_units, round_units of them per round): model.c's
//                      arena 3Rd + R(H+2KV)D + RHD + R F (x2 gated) floats at the largest
//                      unit's R rows, plus a kv group's attention scratch and T(rot+1) at the
//                      longest document T; and per unit of the round its residual stream Rd
//                      floats and the estimator's buffers: label indices [sets, P] int64,
//                      a [P, n] f32, q [P, n] int64, hq [P, limbs] int64, P up to R - 2 n_max + 1
//   label index      = every label of every set on every rank: tuple 16 + N_x 8 + row 8 B
//                      per label plus 4 B per hash slot (softent.h), from the real tables
//   rows             = each counted label's row C_x [K x tracked layers, n] int64 lives on its
//                      owner (owner.h); rows per rank counted exactly with owner_of_label;
//                      K = the job's anchor sets (`seeds`) multiplies every row, C and the
//                      exchange (rows x bins x K x 8 B per tracked layer)
//   folds            = with `folds = F`, each fold's own precount over its documents (a
//                      label index on every rank and rows on their owners, same row size),
//                      counted exactly; up to about F x the label rows
//   exchange         = a rank sends, for each counted label owned elsewhere that its
//                      documents touch, one row of sums (+ 8 B label index) to the owner,
//                      in exchanges of at most exchange_mb per rank, or of one round's growth
//                      when a round (round_units x threads units) alone adds more:
//                      the distinct rows owned elsewhere that its documents touch, counted
//                      exactly for every rank on every window of round_units x threads
//                      consecutive units of the order (a round's deal is such a window,
//                      whichever rank gets it); buffers: outbox + packed copy +
//                      receive, each that size. Expected sends: a label seen N_x times is
//                      touched by a given non-owner rank with probability
//                      1 - (1 - 1/P)^N_x if positions fell on ranks independently; documents
//                      keep positions together, so this is an upper estimate
//   corpus           = every document's text and ids on every rank
//   forward FLOPs    = bench/forward's count: 2 per multiply-add of every projection plus
//                      q.k and p.v over the causal triangle, per document, up to the last
//                      tracked hidden state (no logits)
//
// Per rank = layer scratch + threads x activations + label index + own rows + folds' index and
// own rows + exchange buffers + corpus + C (x (1 + F) with folds); per node = mapped weights + ranks per node x per rank (busiest rank).
#ifndef IBC_PLAN_H
#define IBC_PLAN_H

#include <stdint.h>
#include <stdio.h>

#include "ibc/config.h"
#include "ibc/corpus.h"
#include "ibc/err.h"
#include "ibc/job.h"
#include "ibc/softent.h"

typedef struct {
    char name[8];           // "X1".."Y4", "pref"
    int k;                  // order (1 for pref)
    int64_t labels;         // distinct labels
    int64_t singletons;     // labels seen once (no row unless min_count merges them)
    int64_t rows;           // labels with a row (the min_count "rare" label counts once)
} plan_set;

// Label statistics of one tokenisation of the corpus at P ranks.
typedef struct {
    int P;
    int n_sets;
    plan_set sets[SE_MAX_SETS];
    int64_t documents;      // documents with a counted position
    int64_t tokens;         // their tokens (up to max_length each)
    int64_t positions;      // counted positions
    int T_max;              // longest document (tokens, up to max_length)
    int R_max;              // most rows of one unit (plan_units: documents stacked in products)
    double sum_T, sum_tri;  // over counted documents: sum T and sum T(T+1)/2 (FLOPs)
    int64_t rows;           // all sets
    int64_t *rows_rank;     // [P] rows each rank owns
    double touch_total;     // sum over rows of 1 - (1 - 1/P)^N_x (expected senders per row)
    double *touch_owned;    // [P] the same over the rows rank r owns
    int64_t round_rows;     // the most outbox rows one round adds on one rank (count_round_rows)
    int64_t rounds_max;     // rounds when every rank runs at one speed
    int round_units;        // units per thread in a round (the job's [parallel] round_units)
    int64_t index_bytes;    // the label index, every rank
    int F;                  // data folds (0: none)
    int64_t fold_rows;      // rows of all folds' accumulators together
    int64_t *fold_rows_rank; // [P] the folds' rows each rank owns
    int64_t fold_index_bytes; // the folds' label indices, every rank
    int64_t corpus_bytes;   // texts + ids + document records, every rank
} plan_labels;

// The units `ibc run` carries through the model: documents whose ids are usable (ok
// [documents], NULL: all) and that have a counted position (T >= 2 n_max, T capped at
// max_length) are stacked in corpus order while a unit's rows stay within `[parallel]
// unit_rows` (j->unit_rows, default 1024: OpenBLAS packs a product's weights once per unit,
// not once per document); a longer document, and every other document, is a unit alone.
// unit_of [documents] (or NULL) gets each one's unit; returns the number of units;
// *rows_max the most rows of one unit. Depends on the corpus and the job only: the same on
// every rank and layout.
int64_t plan_units(const job *j, const corpus *c, const char *ok, int n_max, int64_t *unit_of, int *rows_max);

// The order `ibc run` deals units in. mine [n]: the documents, unit by unit (each unit's in
// corpus order); first [units + 1]: where each unit starts in mine; tok [units + 1]: tokens
// of the units before each (tok[k + 1] - tok[k]: unit k's). Freed with free() (all three).
typedef struct {
    int64_t *mine, *first, *tok;
    int64_t n, units;
} plan_work;

// Every unit (unit_of [documents] from plan_units, nu of them), longest first: by tokens of
// its documents that are usable (ok [documents], NULL: all), index breaking ties (longest
// processing time first: the short units come last, where they even out the ranks' ends).
// Every rank computes the same order from the same lengths.
plan_work plan_order(const job *j, const corpus *c, const char *ok, const int64_t *unit_of, int64_t nu);

// One round of `ibc run`: from unit g of the order (tok [units + 1] as plan_work's), rank p
// takes units take[p] .. take[p + 1] - 1 (take [P + 1], take[0] = g), consecutive and in rank
// order, at most cap[p] of them (round_units x its threads: what its memory holds). rate [P]
// (> 0) is how fast each rank ran, in tokens per second (all equal: a deal by tokens alone);
// each rank's share of tokens is its rate times the round's length, which is the time every
// rank needs for what is left or, when shorter, the time the first rank to fill its cap
// needs. Returns take[P], the next round's g: always past g while g < units. A pure
// function: every rank computes the same deal from the same agreed rates.
int64_t plan_deal(const int64_t *tok, int64_t units, int64_t g, int P, const int *cap, const double *rate,
                  int64_t *take);

// The caps of `ibc run`'s first round, before any rate is known: with ranks, a probe of one
// unit per thread (threads [P]) whose rates shape the deals of the rest, but only when the
// units do not all fit in one full round (cap [P], round_units x threads): then there is no
// later deal to shape, and a probe would only split the work into two rounds and the ranks'
// wait into two agreements (docs/performance.md, eighth section). Returns cap or threads.
const int *plan_first_cap(int64_t units, int P, const int *cap, const int *threads);

// The ranks' rates plan_deal reads, tokens per second. Each is over the rounds so far, a
// round's weight falling by PLAN_RATE_DECAY with each round after it, and a rank within
// PLAN_RATE_BAND of the fastest is dealt as the fastest: on a shared machine one round's rate
// moves by up to a fifth from the next's and the first round's also pays for warming up
// (docs/performance.md), so a deal that followed every difference would take a unit (a
// quarter of a round) from a rank on noise alone and leave it waiting, while a rank slower by
// more for several rounds (a busy core, a throttled node) shows within two or three. A rank
// dealt nothing has its rate moved halfway up to the fastest (one never measured: to it), so
// that it is dealt work and measured again. rate [P] starts all 1 (a deal by tokens alone).
#define PLAN_RATE_DECAY 0.7
#define PLAN_RATE_BAND 0.2
typedef struct {
    int P;
    double *rate; // [P] what plan_deal reads
    double *sum;  // [2, P] decayed tokens and seconds of each rank
} plan_rates;

void plan_rates_init(plan_rates *r, int P);
void plan_rates_free(plan_rates *r);

// After a round in which rank p ran the units take[p] .. take[p + 1] - 1 of the order (tok
// [units + 1] as plan_work's) in busy[p] ns. Every rank computes the same rates from the same
// agreed times.
void plan_rates_update(plan_rates *r, const int64_t *tok, const int64_t *take, const int64_t *busy);

// Precounts the corpus's ids (docs[i].ids, truncated to max_length) as `ibc run` does, with
// `threads` per rank (the size of a round). Not collective.
int plan_labels_count(const job *j, const corpus *c, int P, int threads, plan_labels *pl, ibc_err *err);
void plan_labels_free(plan_labels *pl);

typedef struct {
    int P, nodes, threads;
    int ranks_per_node;     // ceil(P / nodes): the busiest node
    int64_t exchange_bytes; // [parallel] exchange_mb in bytes
} plan_layout;

typedef struct {
    char name[128];
    char arch[16], dtype[16];
    int L, d, layers_run, tracked;
    int64_t params;         // elements stored
    int64_t mapped;         // bytes, once per node
    int64_t layer_scratch;  // bytes per rank
    int64_t act_thread;     // bytes per thread
    int64_t rows_max, rows_min; // rows per rank
    double rows_mean;
    int K, bins;            // anchor sets (`seeds`: multiply every row) and bins
    int64_t row_bytes;      // one row: K * tracked * bins * 8
    int64_t fold_rows_max;  // the folds' rows on the busiest rank
    int64_t fold_bytes;     // the folds' label indices and the busiest rank's fold rows
    int64_t rows_bytes_max; // the busiest rank's rows
    int64_t sent_max;       // bytes the busiest sender sends in this checkpoint (expected)
    int64_t round_growth;   // the most one round adds to a rank's outbox (round_rows x row, x 2 with folds)
    int64_t round_bytes;    // bytes one rank moves per exchange: <= exchange_mb, or round_growth when larger
    int64_t rounds;         // exchanges expected: sent / exchange_mb, or every round when one round passes it
    int64_t exch_buffers;   // outbox + send + receive buffers per rank (3 rounds)
    int64_t other;          // corpus + global counts C
    double flops;           // forward FLOPs of the checkpoint, all documents
    int64_t per_rank;       // private bytes of the busiest rank
    int64_t per_node;       // mapped + ranks_per_node * per_rank
} plan_ckpt;

// The estimate for checkpoint folder dir (config.json and safetensors headers only).
int plan_checkpoint(const job *j, const plan_labels *pl, const plan_layout *lay, const char *name,
                    const char *dir, plan_ckpt *pc, ibc_err *err);

// Forward FLOPs of n_layers blocks over documents with sum T = sum_T and sum T(T+1)/2 =
// sum_tri (bench/forward's count; one document of T tokens: sum_T = T, sum_tri = T(T+1)/2).
double plan_forward_flops(const model_config *c, int n_layers, double sum_T, double sum_tri);

// The plan as text, one quantity per line ("key  BYTES B  MB  note"), for people and scripts:
// the corpus and label sets (rows per rank, rank_rows r0 r1 ...), then a checkpoint's block.
void plan_print_labels(FILE *f, const job *j, const plan_labels *pl);
void plan_print_ckpt(FILE *f, const plan_layout *lay, const plan_labels *pl, const plan_ckpt *pc);

// `ibc plan`: reads and samples the job's corpus as `ibc run` does, tokenises text documents
// with each checkpoint's tokenizer (again only when the tokenizer file's content changes),
// precounts, and prints every checkpoint's estimate to out. Not collective (no MPI).
int plan_command(const job *j, const plan_layout *lay, FILE *out, ibc_err *err);

// The memory this node's ranks may use, in bytes, and where the number comes from: the
// smallest of the cgroup v2 memory.max / cgroup v1 memory.limit_in_bytes (of this process's
// cgroup and its parents), SLURM_MEM_PER_NODE, SLURM_MEM_PER_CPU x SLURM_CPUS_ON_NODE (MB);
// else /proc/meminfo MemAvailable. 0 when none is known.
int64_t plan_mem_limit(char *source, size_t cap);

// `ibc run`'s fit check, after the corpus is prepared and before any checkpoint is loaded:
// every rank computes the estimate of every checkpoint that will run (only >= 0: that one
// alone, as `ibc run --only`) for its node (ranks on this node, omp threads) and compares the
// largest with plan_mem_limit. IBC_EINPUT with one line naming the need, the limit and the
// levers if any node cannot fit.
// Collective: every rank calls it.
int plan_fit_check(const job *j, const corpus *c, int only, ibc_err *err);

#endif
