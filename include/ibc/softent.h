// softent: the soft-entropy estimator of method.md §2-§6.
//
// Anchors W [n, d]: rows of N(0, I_d) drawn from ibc's rng (rng.h) in row-major order, each
// row scaled to unit length in double and stored as f32. Loaded anchors (.npy) are used as
// given (rows must be unit length within 1e-3), which is how tests reproduce soft_h exactly.
//
// Temperature eps: `leading` 1/sqrt(2 d ln n); `bound` (default, soft_h's find_eps) the root
// in [1e-5, 1] of KL_lb(eps) = ln n, by Brent's method to |d eps| <= 1e-12 (needs d > 2).
//
// Soft assignment, per counted position: zbar = z/||z||, s = W zbar (one sgemm [P, d] x
// [d, n] per layer and document), a = softmax(s / eps) in f32 with the max subtracted.
//
// Exact counts: every a_j is rounded once to fixed point Q32.32 (int64, resolution 2^-32 =
// 2.3e-10 of one position's mass) and every count is an integer sum of those, so totals do
// not depend on the order in which documents are added or on how they are split between
// accumulators or ranks. Capacity: 2^31 positions per accumulator. The conditional sums
// sum_x N_x h(C_x) are exact too: each double term is truncated to a multiple of 2^-64 and
// split into three 32-bit limbs (bits 0-31 of the fraction, 32-63, and the integer part),
// each limb summed in int64 (SE_COND_LIMBS per value), so they reduce across ranks with a
// plain integer sum in any order.
//
// Label sets (method.md §5): X_k(t) = tok[t-k+1..t], Y_k(t) = tok[t+1..t+k] for each order
// k of the job, plus the per-document preference label. Labels are whole tuples, hashed with
// the full tuple compared on collision. Counted positions: t = n_max-1 .. T-n_max-1.
//
// Memory: per tracked layer C [n] int64; per label set a table (hmap.h) with, per distinct
// label, the tuple (16 B), N_x (8 B), its row index (8 B), 11-23 B of hash slots (8 B at load
// 0.35-0.7) on every rank, and C_x [layers, n] int64 (8 n bytes per layer: 800 B per label and
// layer at n = 100) only on the label's owner rank (se_acc_partition), plus a bounded outbox
// (docs/scaling.md).
//
// Anchor ensembles (`[estimator] seeds`, K sets): run.c gives the accumulator K x tracked
// slots (seed-major: slot = set * tracked + layer), so K multiplies C [slots, n], every C_x
// row [slots, n] (rows x bins x K x 8 B per tracked layer), the outbox rows and the exchange,
// and the estimator's work (one sgemm per set); the label index and the forward pass are
// shared. Data folds (`folds`, F) add F accumulators over the folds' documents: their own
// label indices and rows (up to about F x the label rows of the whole corpus when labels
// repeat within folds; in practice fewer, since a fold's singletons need no row).
#ifndef IBC_SOFTENT_H
#define IBC_SOFTENT_H

#include <omp.h>
#include <stdint.h>

#include "ibc/err.h"
#include "ibc/hmap.h"

#define SE_MAX_ORDER 4
#define SE_MAX_SETS (2 * SE_MAX_ORDER + 1)
#define SE_FIX_ONE 4294967296.0 // 2^32: one unit of soft mass in fixed point

// ---- anchors and temperature ----
// W [n, d] from seed.
void se_anchors(int n, int d, uint64_t seed, float *W);
// Loads W from a float32 .npy of shape [n, d] (either may be 0 = take the file's).
int se_anchors_load(const char *path, int *n, int *d, float **W, ibc_err *err);

double se_eps_leading(int n, int d);
// The `bound` root; IBC_EINPUT when d <= 2 or the bracket holds no root.
int se_eps_bound(int n, int d, double *eps, ibc_err *err);

// ---- soft assignment ----
// a [P, n] = softmax(W normalize(z) / eps) for rows z of h [P, d] (row stride ldh).
void se_assign(const float *W, int n, int d, double eps, const float *h, int P, int ldh, float *a);

// Normalised entropy of counts c [n] (method.md §4): -sum p ln max(p, 1e-9) / ln n.
double se_entropy_fix(const int64_t *c, int n);

// ---- label sets ----
typedef enum { SE_INPUT, SE_OUTPUT, SE_PREF } se_kind;

typedef struct {
    se_kind kind;
    int k;             // tuple length (1..4); 1 for SE_PREF
    char name[8];      // "X1".."X4", "Y1".."Y4", "pref"
} se_set;

typedef struct {
    int32_t key[SE_MAX_ORDER];
} se_label;

typedef struct {
    hmap map;              // se_label (16 B) -> label index 0..n_labels-1, in order of first sight
    const se_label *keys;  // [n_labels] the map's keys   } views into map, valid until
    int64_t *Nx;           // [n_labels] the map's payloads } the next insertion
    int64_t *row;          // [n_labels] row of C_x in Cx; -1 a precounted singleton; -2 a label
                           // whose row lives on another rank (se_acc_partition); -3 - k: such a
                           // label with outbox row k. Labels merged into "rare" hold rare's row.
    int64_t *Cx;           // [n_rows, n_layers, n] the rows this rank owns
    int64_t n_labels, n_rows, cap_rows;
    size_t cap;            // of row
    int64_t rare;          // index of the min_count "rare" label, or -1
    // Outbox: what this rank added, since the last exchange, to labels owned by other ranks;
    // one row per distinct label (a hot label travels once per exchange).
    int64_t *ob_label;     // [ob_n] label index (row holder) of each outbox row
    int64_t *ob_Cx;        // [ob_n, n_layers, n]
    int64_t ob_n;
    size_t ob_cap;
} se_table;

// ---- the accumulator ----

// One document's labels and soft assignments: per-thread scratch, kept apart from the shared
// counts so that threads, like ranks, can each carry whole documents (design.md "Run loop").
typedef struct {
    int P;                   // counted positions of the current document
    int cap_P, n;            // capacity (positions) and the bins it was sized for
    int64_t *idx;            // [n_sets, P] label index of each position
    float *a;                // [P, n] soft assignments
    int64_t *q;              // [P, n] the same in Q32.32
    int64_t *hq;             // [P, SE_COND_LIMBS] limbs of h(q_t), for precounted singletons
} se_doc;

typedef struct {
    int n, d;                // bins, width
    int n_layers;            // tracked hidden-state indices
    int n_max;               // largest order: decides the counted positions
    int n_sets;
    se_set sets[SE_MAX_SETS];
    int64_t N;               // counted positions
    int64_t n_docs, n_skipped; // documents added; those with no counted position
    int64_t *C;              // [n_layers, n]
    se_table tables[SE_MAX_SETS];
    int precounted;          // labels and N_x fixed by se_precount_* (see below)
    int rank, nranks;        // row partition (se_acc_partition); 0, 1: every row here
    int64_t *cond_direct;    // [n_sets, n_layers, SE_COND_LIMBS] singleton terms h(q_t)
    omp_lock_t *locks;       // [n_layers]: held while a document's layer is added
    int64_t lock_waits;      // times a thread found its layer's lock taken (contention)
    double lock_wait_s;      // seconds spent waiting for those locks, all threads
    se_doc doc;              // scratch of se_doc_begin/se_doc_layer (one thread)
} se_acc;

// orders: bitmask of n-gram orders (bit k-1 for order k), each order giving X_k and Y_k;
// pref: also keep the preference label set. n_max = the largest order (1 if none).
int se_acc_init(se_acc *acc, int n, int d, int n_layers, unsigned orders, int pref, ibc_err *err);
void se_acc_free(se_acc *acc);

// Documents, one thread: se_doc_begin computes the labels of a document and returns the
// number of counted positions in acc->doc.P (0: nothing to add; the document is counted as
// skipped). pref_label: 0/1, or -1 if none. se_doc_layer adds layer slot `layer` of it: h
// [T, d] is the whole document's hidden state, of which rows n_max-1 .. T-n_max-1 are counted.
int se_doc_begin(se_acc *acc, const int32_t *ids, int T, int pref_label, ibc_err *err);
void se_doc_layer(se_acc *acc, int layer, const float *W, double eps, const float *h, int T);

// Documents, many threads at once into one PRECOUNTED accumulator, each thread with its own
// se_doc (se_doc_init / se_doc_free): se_doc_start only reads the label tables (its counters
// are atomic; on a partitioned accumulator it also makes the document's outbox rows, in one
// critical section, see se_outbox_reserve), and se_doc_add computes the document's soft assignment in doc (one sgemm of the
// document's own shape [P, d] x [d, n], on the calling thread when called inside a parallel
// region) and then adds its exact integer masses under the layer's lock (acc->locks[layer]).
// The totals are the same bits whatever the threads, the order or the split of documents.
// Streaming mode (not precounted) inserts labels: one thread only.
void se_doc_init(se_doc *doc);
void se_doc_free(se_doc *doc);
int se_doc_start(se_acc *acc, se_doc *doc, const int32_t *ids, int T, int pref_label, ibc_err *err);
void se_doc_add(se_acc *acc, se_doc *doc, int layer, const float *W, double eps, const float *h, int T);
// A document whose earlier layers ran on another rank (run.c's handover): se_doc_start's
// labels and outbox rows, without counting the document or its positions again (its first
// rank's se_doc_start did); se_doc_add then adds its later layers. Precounted accumulators
// only (IBC_EINPUT otherwise); outside a parallel region, or after se_outbox_reserve.
int se_doc_resume(se_acc *acc, se_doc *doc, const int32_t *ids, int T, int pref_label, ibc_err *err);
// The masses src->q (and singleton limbs src->hq) that se_doc_add last computed on another
// accumulator of the same bins over the same document, added to slot `layer` of acc under
// doc's labels (se_doc_start on acc): a fold accumulator (run.c, `folds`) counts the same
// soft assignment without computing it again. Both accumulators precounted.
void se_doc_add_masses(se_acc *acc, const se_doc *doc, int layer, const se_doc *src);

// Precount mode (what `ibc run` uses). Labels depend on token ids only, so a first pass over
// the corpus's ids can fix every N_x before any hidden state exists. A label seen once then
// needs no C_x row: C_x is that position's mass q_t, and its term N_x h(C_x) = h(q_t) is
// added to exact limb sums on the spot. Only labels seen twice or more keep rows, allocated
// once. Same numbers, bit for bit, as the streaming mode; memory and time fall by the share
// of singletons (most trigrams and quadgrams of real text).
//   se_precount_doc for every document (the same documents, all of them, on every
//   accumulator that will be merged), then se_precount_done, then se_doc_begin/_layer.
int se_precount_doc(se_acc *acc, const int32_t *ids, int T, int pref_label, ibc_err *err);
int se_precount_done(se_acc *acc, ibc_err *err);
// Row partition (issue 12, design.md "Distribution"), called before se_precount_done*:
// a label with a row (N_x >= 2, or the min_count "rare" label) gets its row only on its owner
// rank owner_of_label(set, key, P) (owner.h; labels merged into "rare" follow rare's owner);
// other ranks mark it remote (row -2) and sum what they compute for it in an outbox row,
// which dist_exchange sends to the owner. Singletons never have rows and never travel.
// P = 1 (the default after se_acc_init) keeps every row on this accumulator.
void se_acc_partition(se_acc *acc, int rank, int P);
// Bytes of one outbox row (the row and its label index and set) and of the whole outbox now.
int64_t se_outbox_row_bytes(const se_acc *acc);
int64_t se_outbox_bytes(const se_acc *acc);
// Empties the outbox (after its rows were sent): its labels are remote and untouched again.
void se_outbox_clear(se_acc *acc);
// Makes room for `positions` more outbox rows per set without moving any row. Call it, outside
// any parallel region, before documents run on several threads: se_doc_start makes outbox
// rows (under one critical section per document) while other threads add into existing ones,
// so the outbox must not be reallocated meanwhile. (One thread: se_doc_start grows it itself.)
void se_outbox_reserve(se_acc *acc, int64_t positions);
// The owner's side of an exchange: adds row [n_layers, n] to the C_x of label x of set s,
// which this accumulator must own. IBC_EINPUT (a layout mismatch between ranks) otherwise.
int se_acc_add_row(se_acc *acc, int s, int64_t x, const int64_t *row, ibc_err *err);
// Rows this accumulator owns, over every set.
int64_t se_acc_rows(const se_acc *acc);

// Precount with min_count = k (method.md §5, an option; 0 or 1 keep every label): the labels
// of each set seen fewer than k times are merged into one label "rare" of that set, whose
// counts are theirs together, so that I(S;Z) is still measured against the same H(Z).
int se_precount_done_min(se_acc *acc, int64_t min_count, ibc_err *err);

// dst += src (same shape; both streaming, or both precounted over the same documents; neither
// partitioned with P > 1): exact.
int se_acc_merge(se_acc *dst, const se_acc *src, ibc_err *err);

#define SE_COND_LIMBS 3
// Exact limb sums of N_x h(C_x) over the labels x whose rows this accumulator holds with
// x % nparts == part (plus its precounted singleton terms when part == 0): out [n_sets, n_layers, SE_COND_LIMBS]. Summing
// the outputs of parts 0..nparts-1 (e.g. one per rank) gives the whole, bit for bit.
void se_cond_sums(const se_acc *acc, int part, int nparts, int64_t *out);

// ---- results ----
typedef struct {
    int n_layers, n_sets;
    int64_t N;
    double *H;   // [n_layers]
    double *HS;  // [n_sets, n_layers] H(Z|S)
    double *mi;  // [n_sets, n_layers] I(S;Z) = H - H(Z|S)
} se_result;

// From global counts C [n_layers, n], N and conditional limb sums [n_sets, n_layers, LIMBS].
int se_result_from(se_result *r, int n, int n_layers, int n_sets, const int64_t *C, int64_t N,
                   const int64_t *cond, ibc_err *err);
// Single-accumulator shortcut: se_cond_sums + se_result_from.
int se_result_compute(const se_acc *acc, se_result *r, ibc_err *err);
void se_result_free(se_result *r);
// out = slots first .. first+count-1 of r (an ensemble's slots of one anchor set), copied.
void se_result_slice(const se_result *r, int first, int count, se_result *out);

// Layer means and the Information Bottleneck metrics (method.md §6), averaging the tracked
// slots whose hidden-state index (layer_ids[slot]) is >= 1. Entries for absent orders are NaN.
typedef struct {
    double H_mean;
    double complexity[SE_MAX_ORDER + 1];   // [k], k = 1..4: mean_l I(X_k; Z_l)
    double expressivity[SE_MAX_ORDER + 1]; // [k]: mean_l I(Y_k; Z_l)
    double optimality[SE_MAX_ORDER + 1];   // [k]: expressivity_k / complexity_k
    double pref_info;                      // mean_l I(pref; Z_l)
} se_summary;

void se_summarize(const se_acc *acc, const se_result *r, const int *layer_ids, se_summary *s);
// The summary as SE_SUMMARY_N numbers: H_mean, complexity_1..4, expressivity_1..4,
// optimality_1..4, pref_info (summary.csv's order), and back.
#define SE_SUMMARY_N 14
void se_summary_pack(const se_summary *s, double *v);
void se_summary_unpack(const double *v, se_summary *s);
// Mean and sample standard deviation (n - 1 in the denominator) of x[0], x[stride], ...
// x[(n-1) stride], summed in that order (the same bits on any layout); n = 1 gives x[0] and
// NaN. A non-finite x gives a non-finite mean and a NaN sd.
void se_mean_sd(const double *x, int n, int stride, double *mean, double *sd);
// Element-wise se_mean_sd of n summaries.
void se_summary_mean_sd(const se_summary *s, int n, se_summary *mean, se_summary *sd);
// Index of the set of that kind and order, or -1.
int se_set_index(const se_acc *acc, se_kind kind, int k);

#endif
