#include "ibc/run.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <omp.h>

#include "ibc/corpus.h"
#include "ibc/dist.h"
#include "ibc/hmap.h"
#include "ibc/io.h"
#include "ibc/limits.h"
#include "ibc/mem.h"
#include "ibc/manifest.h"
#include "ibc/model.h"
#include "ibc/plan.h"
#include "ibc/results.h"
#include "ibc/softent.h"
#include "ibc/tokenizer.h"

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = sig; }

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int run_anchors(const job *j, int d, res_anchors *a, ibc_err *err) {
    a->d = d;
    a->n = j->bins;
    a->W = NULL;
    a->K = j->anchors[0] ? 1 : j->n_seeds; // job.c refuses an anchors file with several seeds
    memcpy(a->seeds, j->seeds, sizeof(uint64_t) * (size_t)a->K);
    int rc = 0;
    if (j->anchors[0]) {
        int n = j->bins, dd = d;
        rc = se_anchors_load(j->anchors, &n, &dd, &a->W, err); // names the shape it expects
    } else {
        size_t nd = (size_t)a->n * d;
        a->W = xmalloc(sizeof(float) * nd * a->K); // [K, n, d]
        for (int s = 0; s < a->K; s++) se_anchors(a->n, d, a->seeds[s], a->W + s * nd);
    }
    if (rc == 0) {
        if (j->temp == TEMP_FIXED) a->eps = j->temperature;
        else if (j->temp == TEMP_LEADING) a->eps = se_eps_leading(a->n, d);
        else rc = se_eps_bound(a->n, d, &a->eps, err);
    }
    if (rc) { free(a->W); a->W = NULL; }
    return rc;
}

// Anchors per width, made once.
typedef struct {
    res_anchors *a;
    int n;
} anchor_cache;

static int get_anchors(const job *j, anchor_cache *ac, int d, const res_anchors **out, ibc_err *err) {
    for (int i = 0; i < ac->n; i++)
        if (ac->a[i].d == d) { *out = &ac->a[i]; return 0; }
    ac->a = xrealloc(ac->a, sizeof(res_anchors) * (size_t)(ac->n + 1));
    int rc = run_anchors(j, d, &ac->a[ac->n], err);
    if (rc == 0) *out = &ac->a[ac->n++];
    return rc;
}

static void free_anchors(anchor_cache *ac) {
    for (int i = 0; i < ac->n; i++) free(ac->a[i].W);
    free(ac->a);
    ac->a = NULL;
    ac->n = 0;
}

// IBC_TIMING=1: timing lines on stderr (run_ckpt's per checkpoint, save's), for bench/job.sh;
// IBC_TIMING=2 also a line per round of the deal (bench/straggler.sh).
static int timing_on(void) {
    const char *v = getenv("IBC_TIMING");
    return v && *v && strcmp(v, "0") != 0;
}

static int timing_rounds(void) {
    const char *v = getenv("IBC_TIMING");
    return v && atoi(v) >= 2;
}

// Rewrites the results with every checkpoint so far (anchors for each width present).
// Collective: every rank calls it (an anchors file read on one rank only fails there).
static int save(const job *j, const char *dir, res_ckpt *res, int K, anchor_cache *ac, ibc_err *err) {
    const res_anchors *tmp;
    int rc = 0;
    for (int i = 0; i < K && rc == 0; i++)
        if (res[i].status == RES_COMPLETE) rc = get_anchors(j, ac, res[i].d, &tmp, err);
    if ((rc = dist_agree(rc, err))) return rc;
    double t0 = now();
    rc = results_write(dir, j->name, j->text, res, K, ac->a, ac->n, err);
    if (rc == 0 && timing_on() && dist_rank() == 0) fprintf(stderr, "ibc: timing results: %.3f s\n", now() - t0);
    return rc;
}

// Token ids for text documents: the job's tokenizer or the checkpoint's tokenizer.json.
// Re-tokenizes only when the tokenizer file's content changes (a training run shares one).
typedef struct {
    uint64_t hash;   // of the tokenizer file used for the current ids, 0 = none yet
    tokenizer *tok;
    int add_special;
} tok_state;

static int encode_doc(void *ctx, const corpus_doc *d, int32_t **ids, int *n, ibc_err *err) {
    tok_state *ts = ctx;
    return tok_encode(ts->tok, d->text, strlen(d->text), ts->add_special, ids, n, err);
}

// Collective: every rank calls it. Every rank reads and parses the tokenizer file; the
// ranks agree on that before the documents are shared out, then on the encoding.
static int prepare_ids(const job *j, corpus *c, const char *ckpt_dir, tok_state *ts, ibc_err *err) {
    if (!c->n || !c->docs[0].text) return 0; // pre-tokenized (the same on every rank)
    char path[IBC_PATH_NAME_MAX];
    int rc = 0;
    if (j->tokenizer[0]) snprintf(path, sizeof path, "%s", j->tokenizer);
    else rc = io_join(path, sizeof path, ckpt_dir, "tokenizer.json", err);
    char *text = NULL;
    size_t len = 0;
    tokenizer *t = NULL;
    if (rc == 0) rc = io_read_all(path, &text, &len, err);
    uint64_t h = rc == 0 ? hmap_hash(text, len) | 1 : 0;
    if (rc == 0 && h != ts->hash) rc = tok_parse(text, len, path, &t, err);
    free(text);
    if (rc == 0) rc = ibc_fault("tokenize", dist_rank(), err);
    if ((rc = dist_agree(rc, err)) || !dist_any(t != NULL)) { tok_free(t); return rc; }
    if (t) { // a rank that already had this content keeps its tokenizer (the same one)
        tok_free(ts->tok);
        ts->tok = t;
    }
    ts->add_special = j->add_special;
    ts->hash = 0;
    rc = dist_map_docs(c, encode_doc, ts, err);
    if (rc == 0) ts->hash = h;
    return rc;
}

static int64_t countable(const job *j, const corpus *c, int n_max) {
    int64_t k = 0;
    for (int64_t i = 0; i < c->n; i++) {
        int T = c->docs[i].n_ids < j->max_length ? c->docs[i].n_ids : j->max_length;
        k += T - 2 * n_max + 1 > 0 ? T - 2 * n_max + 1 : 0;
    }
    return k;
}

static int n_max_of(unsigned orders) {
    int m = 1;
    for (int k = 1; k <= SE_MAX_ORDER; k++)
        if (orders & (1u << (k - 1))) m = k;
    return m;
}

// Checks the documents' ids against the vocabulary: marks bad ones (skip) or fails.
static int check_ids(const job *j, const corpus *c, int vocab, const char *ckpt, char *ok, int64_t *bad, ibc_err *err) {
    *bad = 0;
    for (int64_t i = 0; i < c->n; i++) {
        const corpus_doc *d = &c->docs[i];
        ok[i] = 1;
        for (int t = 0; t < d->n_ids && t < j->max_length; t++)
            if (d->ids[t] >= vocab) {
                if (!j->skip_bad)
                    return ibc_fail(err, IBC_EINPUT, "%s:%lld: token id %d is outside the vocabulary of %d of checkpoint %s",
                                    c->source, (long long)d->line, d->ids[t], vocab, ckpt);
                ok[i] = 0;
                (*bad)++;
                break;
            }
    }
    return 0;
}

typedef struct {
    const run_opts *o;
    double t0, last;
    int k, K;
    const char *name;
    int64_t tokens; // so far in this checkpoint
    double imbalance; // busiest rank's document time over the mean, so far (0: not known)
} progress;

static void report(progress *p, int64_t docs, int64_t total, int64_t tokens, int force) {
    double t = now();
    if (tokens >= 0) p->tokens = tokens;
    tokens = p->tokens;
    if (p->o->quiet || dist_rank() != 0 || (!force && t - p->last < p->o->progress_s)) return;
    p->last = t;
    double rate = tokens / fmax(t - p->t0, 1e-9), left = docs ? (t - p->t0) * (double)(total - docs) / docs : 0;
    fprintf(stderr, "ibc: checkpoint %d/%d %s: documents %lld/%lld, %.0f tokens/s, imbalance %.2f, ETA %.0fs\n", p->k,
            p->K, p->name, (long long)docs, (long long)total, rate, p->imbalance > 0 ? p->imbalance : 1.0, left);
}

// ---------------------------------------------------------------------------------------------
// Timing (IBC_TIMING=1 prints it; bench/job.sh reads it). Seconds; "core" times are summed
// over every thread of every rank and divided by the number of those threads.
typedef struct {
    double precount;          // label pass (every rank, the whole corpus)
    double forward, estimator; // per thread: model_forward minus the estimator; the estimator
    double idle;              // of forward: thread-seconds with no unit step ready to take
    double busy;              // this rank's document loop, wall time, without the agreement
    double agree;             // per-round agreement: waiting for the slowest rank included
    double merge;             // exchange and merge of counts, conditional sums, results
    double lock_wait;         // thread-seconds waiting for a layer's lock (se_doc_add)
    int64_t lock_waits;       // how often a thread had to wait for one
    int64_t outbox_max;       // the most rows this rank's outbox held after a round (ibc plan: outbox_round)
    int64_t tokens;           // this rank's tokens (the deal gives a slower rank fewer)
    int64_t taken;            // units this rank took over from another (handover)
} ckpt_timing;

// This process's peak resident memory (VmHWM), bytes; 0 if unknown.
static int64_t peak_rss(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lld kB", &kb) == 1) break;
    if (f) fclose(f);
    return (int64_t)kb * 1024;
}

// v of every rank into all [P] (a sum of vectors each rank fills one slot of). Collective.
static void gather_i64(int64_t v, int64_t *all, int P) {
    memset(all, 0, sizeof(int64_t) * (size_t)P);
    all[dist_rank()] = v;
    dist_sum(all, P);
}

// Busiest over mean of all [P] (1 when nothing was measured).
static double max_over_mean(const int64_t *all, int P) {
    int64_t mx = 0, sum = 0;
    for (int r = 0; r < P; r++) { sum += all[r]; mx = all[r] > mx ? all[r] : mx; }
    return sum > 0 ? (double)mx * P / (double)sum : 1.0;
}

// Prints the checkpoint's timing line on rank 0. Collective.
static void timing_print(const progress *pg, const ckpt_timing *tm, double wall, int threads) {
    int P = dist_size();
    int64_t v[10] = {(int64_t)(tm->forward * 1e9), (int64_t)(tm->estimator * 1e9), (int64_t)(tm->precount * 1e9),
                     (int64_t)(tm->agree * 1e9), (int64_t)(tm->merge * 1e9), threads, (int64_t)(tm->lock_wait * 1e9),
                     tm->lock_waits, (int64_t)(tm->idle * 1e9), tm->taken};
    dist_sum(v, 10);
    int64_t *mem = xmalloc(sizeof(int64_t) * (size_t)P), mx = 0, ob = 0;
    gather_i64(peak_rss(), mem, P);
    for (int r = 0; r < P; r++) mx = mem[r] > mx ? mem[r] : mx;
    gather_i64(tm->outbox_max, mem, P);
    for (int r = 0; r < P; r++) ob = mem[r] > ob ? mem[r] : ob;
    gather_i64(tm->tokens, mem, P);
    int64_t tmin = mem[0], tmax = mem[0];
    for (int r = 1; r < P; r++) tmin = mem[r] < tmin ? mem[r] : tmin, tmax = mem[r] > tmax ? mem[r] : tmax;
    free(mem);
    if (dist_rank() == 0)
        fprintf(stderr, "ibc: timing %s: wall %.3f s, ranks %d, threads %lld, forward %.3f s, estimator %.3f s, "
                "precount %.3f s, agreement %.3f s, merge %.3f s, imbalance %.3f, peak memory per rank %.1f MB, "
                "lock waits %lld (%.4f s), forward idle %.3f s, outbox max %lld rows, tokens per rank min %lld max %lld, "
                "units taken over %lld\n", pg->name, wall, P, (long long)v[5],
                v[0] * 1e-9 / v[5], v[1] * 1e-9 / v[5], v[2] * 1e-9 / P, v[3] * 1e-9 / P, v[4] * 1e-9 / P, pg->imbalance,
                mx / 1048576.0, (long long)v[7], v[6] * 1e-9 / v[5], v[8] * 1e-9 / v[5], (long long)ob, (long long)tmin,
                (long long)tmax, (long long)v[9]);
}

// ---------------------------------------------------------------------------------------------
// The document loop: threads, like ranks, carry whole documents

// The accumulators of one checkpoint: the whole corpus, and one per data fold (`folds`),
// each precounted over its own documents and partitioned like the whole (a fold's C_x are its
// documents' alone: the conditional term is nonlinear, so folds cannot be cut out of `all`).
// Every accumulator has K x tracked slots, seed-major: slot = set * tracked + layer.
typedef struct {
    se_acc all;
    se_acc *fold;        // [F]
    int F;
    const int *fold_of;  // [documents] fold of each document (-1: no counted position)
} accs;

static int accs_init(accs *a, const job *j, int n, int d, int slots, const int *fold_of, ibc_err *err) {
    int rc = se_acc_init(&a->all, n, d, slots, j->orders, j->preference[0] != 0, err);
    se_acc_partition(&a->all, dist_rank(), dist_size()); // each row on its owner rank (owner.h), as `ibc plan` predicts
    a->F = j->folds;
    a->fold_of = fold_of;
    a->fold = xcalloc((size_t)a->F + 1, sizeof(se_acc));
    for (int f = 0; f < a->F && rc == 0; f++) {
        rc = se_acc_init(&a->fold[f], n, d, slots, j->orders, j->preference[0] != 0, err);
        se_acc_partition(&a->fold[f], dist_rank(), dist_size());
    }
    return rc;
}

static void accs_free(accs *a) {
    se_acc_free(&a->all);
    for (int f = 0; f < a->F; f++) se_acc_free(&a->fold[f]);
    free(a->fold);
}

// Outbox bytes now, and the most the given positions can add (one row per set in `all` and
// one in their fold).
static int64_t accs_outbox(const accs *a, int64_t positions) {
    int64_t b = se_outbox_bytes(&a->all), k = a->F ? 2 : 1;
    for (int f = 0; f < a->F; f++) b += se_outbox_bytes(&a->fold[f]);
    return b + positions * k * a->all.n_sets * se_outbox_row_bytes(&a->all);
}

static void accs_reserve(accs *a, int64_t positions) {
    se_outbox_reserve(&a->all, positions);
    for (int f = 0; f < a->F; f++) se_outbox_reserve(&a->fold[f], positions);
}

// Collective: every rank calls it. Sends every outbox (merge: the last exchange and the sums).
static int accs_exchange(accs *a, int merge, int64_t *sent, ibc_err *err) {
    int rc = merge ? dist_merge_acc(&a->all, sent, err) : dist_exchange(&a->all, sent, err);
    for (int f = 0; f < a->F && rc == 0; f++)
        rc = merge ? dist_merge_acc(&a->fold[f], sent, err) : dist_exchange(&a->fold[f], sent, err);
    return rc;
}

static void pause_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {}
}

// What the layer callback needs, shared by the threads of a rank. Per-document scratch is
// indexed by the document's place in the round, so that a batched forward pass (documents
// through tasks, model_forward_docs) can call it for any document from any thread.
typedef struct {
    accs *a;
    se_doc *docs;     // [per round] scratch of each document of the round
    se_doc *fdocs;    // [per round] the same document's labels in its fold (folds only)
    int *fold;        // [per round] its fold
    const int64_t *unit_of; // [documents] unit of each document (plan_units)
    const int *slot;  // [L+1] slot of each hidden-state index, -1 if not tracked
    int last;         // the last tracked index: the forward pass can stop there
    int nslots, K;    // tracked indices; anchor sets
    const float *W;   // [K, n, d]
    double eps;
    double *est;      // [threads] estimator seconds of each thread
    dist_ho *ho;      // handing units over between ranks (NULL: one rank)
    int threads, d;
    double slow;      // IBC_SLOW's factor for this rank (tests), 1: none
    double *tick;     // [threads] when each thread's last unit step ended (IBC_SLOW)
    double given;     // this round: tokens x the share of layers of the units given away
} round_ctx;

static int on_doc_layer(void *ctx, int doc, int l, const float *h, int T, int d) {
    round_ctx *c = ctx;
    if (c->slot[l] >= 0) {
        double t = now();
        size_t nd = (size_t)c->a->all.n * d;
        for (int s = 0; s < c->K; s++) { // each anchor set over the same hidden state
            int sl = s * c->nslots + c->slot[l];
            se_doc_add(&c->a->all, &c->docs[doc], sl, c->W + s * nd, c->eps, h, T);
            if (c->a->F) se_doc_add_masses(&c->a->fold[c->fold[doc]], &c->fdocs[doc], sl, &c->docs[doc]);
        }
        c->est[omp_get_thread_num()] += now() - t;
    }
    return l == c->last ? 1 : 0; // 1: no later layer is needed
}

// The callback of model_forward_docs: batch index -> the document's place in the round, and
// (own units) the place -> the document: mine[lo + place] (NULL for a unit taken over).
typedef struct { round_ctx *rc; const int *place; const int64_t *mine; int64_t lo; } batch_ctx;

static int on_batch_layer(void *ctx, int doc, int l, const float *h, int T, int d) {
    batch_ctx *b = ctx;
    return on_doc_layer(b->rc, b->place[doc], l, h, T, d);
}

// After a unit's step to index l (model.c's leave hook, on the thread that ran it): IBC_SLOW
// stretches the step; on thread 0, a rank that finished its own units may be asking for one.
// It gets this unit, from index l + 1 on, when this rank keeps at least one unit per thread
// without it: the asking rank's core would otherwise idle until this rank's round ends, and
// this rank's own threads do not. Index 0 (the embedding) is never given: a batch resumes
// from a block's output.
static int on_unit_step(void *ctx, int first, int n, int l, const float *x, int R, int others) {
    batch_ctx *b = ctx;
    round_ctx *c = b->rc;
    int tid = omp_get_thread_num();
    if (c->slow > 1) {
        pause_s((c->slow - 1) * (now() - c->tick[tid]));
        c->tick[tid] = now();
    }
    int to = tid == 0 && c->ho ? dist_ho_poll(c->ho) : -1;
    if (to < 0) return 0;
    if (!b->mine || l < 1 || others < c->threads || (int64_t)R * c->d > dist_ho_max_floats()) {
        dist_ho_refuse(c->ho, to);
        return 0;
    }
    int64_t *head = xmalloc(sizeof(int64_t) * (size_t)(n + 1)); // [index, documents (corpus order)]
    head[0] = l;
    for (int i = 0; i < n; i++) head[1 + i] = b->mine[b->lo + b->place[first + i]];
    dist_ho_give(c->ho, to, head, n + 1, x, (int64_t)R * c->d);
    free(head);
    c->given += (double)R * (c->last - l) / c->last;
    return 1;
}

// Documents mine[lo..hi) (whole units) through the model and the estimator as one batch,
// layer by layer (model_forward_docs): each layer's weights are made ready once per round
// (mapped, or converted into one of the rank's layer scratches), and the units go through it
// over this rank's threads, each single-threaded, so a document's bits depend on its unit alone
// (fixed by the corpus), not on the thread count or on which units share the round. *tokens
// gets the tokens of documents added, *idle the thread-seconds the threads had no unit step to
// take; on error, the error of the first failing document in the list.
static int run_round(const job *j, const corpus *c, const char *ok, const model *m, round_ctx *rc,
                     const int64_t *mine, int64_t lo, int64_t hi, int threads, int64_t *tokens, double *fwd,
                     double *idle, ibc_err *err) {
    int64_t n = hi - lo, tok = 0;
    model_doc *batch = xmalloc(sizeof(model_doc) * (size_t)(n ? n : 1));
    int *place = xmalloc(sizeof(int) * (size_t)(n ? n : 1)), nb = 0, r = 0;
    int64_t prev = -1; // unit of the batch's last document
    for (int64_t k = lo; k < hi && r == 0; k++) { // labels of each document: table reads only
        int64_t i = mine[k];
        if (!ok[i]) continue;
        const corpus_doc *d = &c->docs[i];
        int T = d->n_ids < j->max_length ? d->n_ids : j->max_length;
        se_doc *sd = &rc->docs[k - lo];
        r = se_doc_start(&rc->a->all, sd, d->ids, T, d->pref, err);
        if (r == 0 && rc->a->F && sd->P > 0) { // its labels in its fold's tables too
            rc->fold[k - lo] = rc->a->fold_of[i];
            r = se_doc_start(&rc->a->fold[rc->fold[k - lo]], &rc->fdocs[k - lo], d->ids, T, d->pref, err);
        }
        tok += T;
        if (r == 0 && sd->P > 0) {
            batch[nb] = (model_doc){d->ids, T, nb > 0 && rc->unit_of[i] == prev};
            prev = rc->unit_of[i];
            place[nb++] = (int)(k - lo);
        }
    }
    double t0 = now(), e0 = 0, e1 = 0;
    for (int t = 0; t < threads; t++) e0 += rc->est[t], rc->tick[t] = t0;
    if (r == 0 && nb > 0) {
        batch_ctx bc = {rc, place, mine, lo};
        model_batch_opts o = {0, NULL, on_unit_step};
        r = model_forward_docs_opts(m, batch, nb, rc->last, &o, on_batch_layer, &bc, idle, err);
    }
    for (int t = 0; t < threads; t++) e1 += rc->est[t];
    fwd[0] += (now() - t0) * threads - (e1 - e0); // thread-seconds outside the estimator
    free(batch);
    free(place);
    *tokens = tok;
    return r;
}

// A unit taken over from another rank (dist_ho_take): head [index l, its documents], x its
// residual stream after index l, run through the later layers into this rank's accumulators
// (the same products on the same rows: the same bits as had it stayed). Its documents and
// positions were counted where it started (se_doc_resume). *work gets its tokens x the share
// of layers run here.
static int run_taken(const job *j, const corpus *c, const model *m, round_ctx *rc, const int64_t *head, int nh,
                     const float *x, int64_t nx, double *fwd, double *idle, double *work, ibc_err *err) {
    int n = nh - 1, l = (int)head[0], r = 0;
    int64_t rows = 0;
    for (int i = 0; i < n && r == 0; i++)
        if (head[1 + i] < 0 || head[1 + i] >= c->n) r = 1;
    if (n < 1 || l < 1 || l >= rc->last || r) // between this job's own ranks: a bug, not input
        return ibc_fail(err, IBC_EINPUT, "handover: a unit of %d documents at index %d does not fit this job", n, l);
    se_doc *sd = xmalloc(sizeof(se_doc) * 2 * (size_t)n); // [2, n]: all, fold
    for (int k = 0; k < 2 * n; k++) se_doc_init(&sd[k]);
    int *fold = xcalloc((size_t)n, sizeof(int)), *place = xmalloc(sizeof(int) * (size_t)n);
    model_doc *batch = xmalloc(sizeof(model_doc) * (size_t)n);
    for (int i = 0; i < n && r == 0; i++) {
        const corpus_doc *d = &c->docs[head[1 + i]];
        int T = d->n_ids < j->max_length ? d->n_ids : j->max_length;
        r = se_doc_resume(&rc->a->all, &sd[i], d->ids, T, d->pref, err);
        if (r == 0 && rc->a->F) {
            fold[i] = rc->a->fold_of[head[1 + i]];
            r = se_doc_resume(&rc->a->fold[fold[i]], &sd[n + i], d->ids, T, d->pref, err);
        }
        batch[i] = (model_doc){d->ids, T, i > 0};
        place[i] = i;
        rows += T;
    }
    if (r == 0 && rows * m->c.d != nx)
        r = ibc_fail(err, IBC_EINPUT, "handover: %lld floats for a unit of %lld rows", (long long)nx, (long long)rows);
    double t0 = now(), e0 = 0, e1 = 0;
    for (int t = 0; t < rc->threads; t++) e0 += rc->est[t], rc->tick[t] = t0;
    if (r == 0) {
        round_ctx tc = *rc;
        tc.docs = sd, tc.fdocs = sd + n, tc.fold = fold;
        batch_ctx bc = {&tc, place, NULL, 0};
        model_batch_opts o = {l, x, on_unit_step}; // polls on: requests to this rank are refused
        r = model_forward_docs_opts(m, batch, n, rc->last, &o, on_batch_layer, &bc, idle, err);
    }
    for (int t = 0; t < rc->threads; t++) e1 += rc->est[t];
    fwd[0] += (now() - t0) * rc->threads - (e1 - e0);
    *work += (double)rows * (rc->last - l) / rc->last;
    for (int k = 0; k < 2 * n; k++) se_doc_free(&sd[k]);
    free(sd); free(fold); free(place); free(batch);
    return r;
}

// The tracked hidden-state indices: slot [L+1] (-1: not tracked), their count, the last.
static int make_slots(const job *j, int L, int *slot, int *nslots, int *last, ibc_err *err) {
    *nslots = 0;
    *last = -1;
    for (int l = 0; l <= L; l++) slot[l] = -1;
    for (int i = 0; i < (j->all_layers ? L + 1 : j->n_layers_sel); i++) {
        int l = j->all_layers ? i : j->layers[i];
        if (l > L) return ibc_fail(err, IBC_EINPUT, "%s: layers: index %d past this model's %d hidden states", j->file, l, L + 1);
        if (slot[l] < 0) slot[l] = (*nslots)++;
        if (l > *last) *last = l;
    }
    return 0;
}

// The precount pass over every usable document (the same on every rank).
static int precount(const job *j, const corpus *c, const char *ok, accs *a, ibc_err *err) {
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < c->n; i++) {
        const corpus_doc *d = &c->docs[i];
        int T = d->n_ids < j->max_length ? d->n_ids : j->max_length;
        if (ok[i]) rc = se_precount_doc(&a->all, d->ids, T, d->pref, err);
        if (ok[i] && rc == 0 && a->F && a->fold_of[i] >= 0) rc = se_precount_doc(&a->fold[a->fold_of[i]], d->ids, T, d->pref, err);
    }
    if (rc == 0) rc = se_precount_done_min(&a->all, j->min_count, err);
    for (int f = 0; f < a->F && rc == 0; f++) rc = se_precount_done_min(&a->fold[f], j->min_count, err);
    if (rc == 0) rc = ibc_fault("precount", dist_rank(), err);
    return dist_agree(rc, err);
}

// Anchor set s's per-layer values (one: its slots of a result) into r's per-set arrays.
static void fill_set(const se_acc *acc, const se_result *one, int s, res_ckpt *r) {
    int S = r->n_layers;
    for (int l = 0; l < S; l++) {
        r->H_seeds[(size_t)s * S + l] = one->H[l];
        for (int k = 0; k < acc->n_sets; k++) {
            const se_set *set = &acc->sets[k];
            double v = one->mi[(size_t)k * S + l];
            if (set->kind == SE_PREF) r->I_pref_seeds[(size_t)s * S + l] = v;
            else (set->kind == SE_INPUT ? r->I_X_seeds : r->I_Y_seeds)[((size_t)s * RES_ORDERS + set->k - 1) * S + l] = v;
        }
    }
}

// The numbers of every anchor set of a merged accumulator: each set's summary into sums [K],
// and, when r, its per-layer values into r's per-set arrays. Collective (conditional sums).
static int acc_results(const se_acc *acc, int K, int nslots, const int *ids, res_ckpt *r, se_summary *sums, ibc_err *err) {
    int64_t *cond = xmalloc(sizeof(int64_t) * (size_t)(acc->n_sets + 1) * acc->n_layers * SE_COND_LIMBS);
    se_result sr;
    dist_cond_sums(acc, cond);
    int rc = se_result_from(&sr, acc->n, acc->n_layers, acc->n_sets, acc->C, acc->N, cond, err);
    free(cond);
    for (int s = 0; rc == 0 && s < K; s++) {
        se_result one;
        se_result_slice(&sr, s * nslots, nslots, &one); // set s: slots s * nslots ..
        se_summarize(acc, &one, ids, &sums[s]);
        if (r) fill_set(acc, &one, s, r);
        se_result_free(&one);
    }
    if (rc == 0) se_result_free(&sr);
    return rc;
}

// Fills r from the merged accumulators: per anchor set, their means (res_ckpt_mean), and each
// fold's summary (the mean over the sets). Collective (the last exchange, the merge and the
// conditional sums); *sent gets the bytes of the last exchange.
static int finish_ckpt(const int *slot, int L, int nslots, accs *a, const res_anchors *an, res_ckpt *r,
                       int64_t *sent, ibc_err *err) {
    int rc = accs_exchange(a, 1, sent, err), K = an->K;
    if (rc) return rc;
    int *ids = xmalloc(sizeof(int) * (size_t)nslots);
    res_ckpt_alloc(r, nslots);
    for (int l = 0; l <= L; l++)
        if (slot[l] >= 0) ids[slot[l]] = r->layer_ids[slot[l]] = l;
    res_ckpt_alloc_seeds(r, K);
    rc = acc_results(&a->all, K, nslots, ids, r, r->sum_seeds, err);
    if (rc == 0) res_ckpt_mean(r);
    if (rc == 0 && a->F) res_ckpt_alloc_folds(r, a->F);
    se_summary *per = xmalloc(sizeof(se_summary) * (size_t)K), sd;
    for (int f = 0; rc == 0 && f < a->F; f++) {
        rc = acc_results(&a->fold[f], K, nslots, ids, NULL, per, err);
        se_summary_mean_sd(per, K, &r->sum_folds[f], &sd);
    }
    free(per);
    free(ids);
    r->n_documents = a->all.n_docs;
    r->n_skipped = a->all.n_skipped;
    r->n_positions = a->all.N;
    r->eps = an->eps;
    r->status = rc == 0 ? RES_COMPLETE : RES_PENDING;
    return rc;
}

// Counted positions of documents mine[lo..hi): the most outbox rows per set they can add.
static int64_t docs_positions(const job *j, const corpus *c, const char *ok, int n_max, const int64_t *mine, int64_t lo, int64_t hi) {
    int64_t k = 0;
    for (int64_t q = lo; q < hi; q++) {
        int64_t i = mine[q];
        int T = c->docs[i].n_ids < j->max_length ? c->docs[i].n_ids : j->max_length;
        k += ok[i] && T - 2 * n_max + 1 > 0 ? T - 2 * n_max + 1 : 0;
    }
    return k;
}

// The outbox cap of a rank: [parallel] exchange_mb, or IBC_EXCHANGE_BYTES (tests).
static int64_t exchange_cap(const job *j) {
    const char *e = getenv("IBC_EXCHANGE_BYTES");
    long long v = e ? atoll(e) : 0;
    return v > 0 ? v : j->exchange_mb * 1048576;
}

// Rows per rank and bytes sent per rank: max and mean into r, and a line on rank 0 (with
// every rank's rows: `rank_rows`, as `ibc plan` prints them). Collective: every rank calls it.
static void report_balance(const se_acc *acc, int64_t sent, res_ckpt *r, const progress *pg) {
    int P = dist_size();
    int64_t *all = xmalloc(sizeof(int64_t) * 2 * (size_t)P), *rows = all, *bytes = all + P;
    gather_i64(se_acc_rows(acc), rows, P);
    gather_i64(sent, bytes, P);
    double rs = 0, bs = 0;
    r->rows_max = r->sent_max = 0;
    for (int k = 0; k < P; k++) {
        rs += (double)rows[k], bs += (double)bytes[k];
        r->rows_max = rows[k] > r->rows_max ? rows[k] : r->rows_max;
        r->sent_max = bytes[k] > r->sent_max ? bytes[k] : r->sent_max;
    }
    r->rows_mean = rs / P;
    r->sent_mean = bs / P;
    if (!pg->o->quiet && dist_rank() == 0) {
        fprintf(stderr, "ibc: checkpoint %d/%d %s: rows per rank max %lld mean %.1f (%.3f), bytes sent per rank max %lld mean %.0f; rank_rows",
                pg->k, pg->K, pg->name, (long long)r->rows_max, r->rows_mean, max_over_mean(rows, P),
                (long long)r->sent_max, r->sent_mean);
        for (int k = 0; k < P; k++) fprintf(stderr, " %lld", (long long)rows[k]);
        fprintf(stderr, "\n");
    }
    free(all);
}

// The largest sum of `width` consecutive values of v [n] (of all of them when n < width).
static int64_t window_max(const int64_t *v, int64_t n, int64_t width) {
    int64_t sum = 0, best = 0;
    for (int64_t k = 0; k < n; k++) {
        sum += v[k];
        if (k >= width) sum -= v[k - width];
        best = sum > best ? sum : best;
    }
    return best;
}

// The most documents (at least 1) and counted positions one of this rank's rounds can hold:
// any cap consecutive units of the order w, and with ranks one unit more, taken over from
// another rank. The first sizes the documents' scratch, the second is what the exchange check
// allows for (the next round is dealt only at the agreement).
static void round_limits(const job *j, const corpus *c, const char *ok, int n_max, const plan_work *w, int cap,
                         int P, int64_t *docs, int64_t *positions) {
    int64_t *per = xmalloc(sizeof(int64_t) * (size_t)(2 * w->units + 1)); // [2, units]: documents, positions
    for (int64_t u = 0; u < w->units; u++) {
        per[u] = w->first[u + 1] - w->first[u];
        per[w->units + u] = docs_positions(j, c, ok, n_max, w->mine, w->first[u], w->first[u + 1]);
    }
    *docs = window_max(per, w->units, cap);
    *docs = *docs > 0 ? *docs : 1;
    *positions = window_max(per + w->units, w->units, cap) + (P > 1 ? window_max(per + w->units, w->units, 1) : 0);
    free(per);
}

// One checkpoint. Collective: every rank calls it. Fills r. Returns 0, IBC_ESTOP, or an
// error, the same on every rank: the ranks agree after the precount, after every round of
// documents and before the merge (dist_agree; fault hooks precount, forward, merge).
//
// Documents are stacked into units by the corpus (plan_units) and the units put in one order,
// longest first (plan_order). Round by round, the ranks take the next units of that order
// (plan_deal): each up to `[parallel] round_units` per thread, as many tokens as its rate
// in the rounds before lets it finish together with the others, so a rank on a slower or
// busier core gets less. Each runs its share (run_round); then the ranks agree on progress,
// on failures, on a stop request and on how long each took, which sets the next deal.
// Counts are exact integers, so the totals are the same bits for any number of ranks and
// threads, and whichever rank ran a unit. Label rows live on their owner ranks
// (se_acc_partition): a rank whose outbox could pass the cap during its next round asks, in
// the round's agreement, for an exchange (dist_exchange), which every rank then joins.
static int run_ckpt(const job *j, const corpus *c, const char *ok, const int *fold_of, const model *m,
                    const res_anchors *an, res_ckpt *r, progress *pg, ibc_err *err) {
    int L = m->c.n_layers, rank = dist_rank(), P = dist_size(), threads = omp_get_max_threads();
    int *slot = xmalloc(sizeof(int) * (size_t)(L + 1)), nslots, last;
    int rc = make_slots(j, L, slot, &nslots, &last, err);
    if (rc) { free(slot); return rc; }
    double t_start = now();
    ckpt_timing tm = {0};
    accs a;
    rc = accs_init(&a, j, an->n, m->c.d, nslots * an->K, fold_of, err); // K anchor sets: K x the slots
    if (rc == 0) rc = precount(j, c, ok, &a, err);
    tm.precount = now() - t_start;
    int64_t *unit_of = xmalloc(sizeof(int64_t) * (size_t)(c->n + 1));
    int rows_max;
    int64_t nu = plan_units(j, c, ok, a.all.n_max, unit_of, &rows_max);
    plan_work w = plan_order(j, c, ok, unit_of, nu);
    int64_t *all = xmalloc(sizeof(int64_t) * (size_t)(2 * P + 4)), *busy = all + P + 4; // busy [P]: each rank's, ns
    int *cap = xmalloc(sizeof(int) * 2 * (size_t)P); // [2, P]: units a round may give each rank; the first round's
    gather_i64(threads, all, P); // ranks may run different thread counts
    for (int p = 0; p < P; p++) cap[p] = j->round_units * (int)all[p], cap[P + p] = (int)all[p], busy[p] = 0;
    int64_t round_docs, round_pos, *take = xmalloc(sizeof(int64_t) * (size_t)(P + 1));
    round_limits(j, c, ok, a.all.n_max, &w, cap[rank], P, &round_docs, &round_pos);
    int64_t done_docs = 0, done_tokens = 0, sent = 0, xcap = exchange_cap(j), g = 0;
    double *fwd = xcalloc((size_t)threads, sizeof(double)), *est = xcalloc((size_t)threads, sizeof(double));
    plan_rates pr;
    plan_rates_init(&pr, P);
    se_doc *docs = xmalloc(sizeof(se_doc) * 2 * (size_t)round_docs); // [2, round_docs]: all, fold
    for (int64_t k = 0; k < 2 * round_docs; k++) se_doc_init(&docs[k]);
    int *fold = xcalloc((size_t)round_docs, sizeof(int));
    dist_ho ho;
    dist_ho_init(&ho);
    double *tick = xcalloc((size_t)threads, sizeof(double));
    round_ctx rx = {&a, docs, docs + round_docs, fold, unit_of, slot, last, nslots, an->K, an->W, an->eps, est,
                    P > 1 ? &ho : NULL, threads, m->c.d, ibc_slow(rank), tick, 0};
    for (int64_t round = 0; rc == 0 && g < w.units; round++) {
        // The same deal on every rank. With ranks, the first round may be a probe, one unit per
        // thread: the rates it measures shape the deals of the rest (plan_first_cap).
        int64_t next = plan_deal(w.tok, w.units, g, P, round == 0 ? plan_first_cap(w.units, P, cap, cap + P) : cap,
                                 pr.rate, take);
        int64_t lo = w.first[take[rank]], hi = w.first[take[rank + 1]], tokens = 0;
        double t0 = now(), taken = 0, tt = 0;
        if (P > 1) accs_reserve(&a, docs_positions(j, c, ok, a.all.n_max, w.mine, lo, hi)); // no realloc under the threads
        dist_ho_begin(&ho);
        rx.given = 0;
        rc = run_round(j, c, ok, m, &rx, w.mine, lo, hi, threads, &tokens, fwd, &tm.idle, err);
        double t1 = now();
        if (P > 1) { // its own units done: one of another rank's, from a layer on, if any gives one
            int64_t *head, nx;
            int nh;
            float *x;
            dist_ho_finished(&ho);
            if (rc == 0 && dist_ho_take(&ho, &head, &nh, &x, &nx)) {
                tt = now();
                rc = run_taken(j, c, m, &rx, head, nh, x, nx, fwd, &tm.idle, &taken, err);
                tt = now() - tt;
                tm.taken++;
                free(head);
                free(x);
            }
            dist_ho_end(&ho);
        }
        tm.busy += t1 - t0 + tt;
        tm.tokens += tokens;
        // The time its dealt tokens would have taken, for the rates: what it ran (less what it
        // gave, plus what it took) at the rate it ran it.
        double ran = (double)tokens - rx.given + taken, busy_s = t1 - t0 + tt;
        if (tokens > 0 && ran > 0) busy_s *= (double)tokens / ran;
        int64_t ob = se_outbox_bytes(&a.all) / se_outbox_row_bytes(&a.all); // the whole corpus's outbox, rows
        tm.outbox_max = ob > tm.outbox_max ? ob : tm.outbox_max;
        if (rc == 0 && round == 0) rc = ibc_fault("forward", rank, err);
        // Agreement: [stop, documents, tokens, this round's busy ns of rank 0..P-1, exchange],
        // then on errors. Exchange now if the next round could push the outbox past the cap:
        // each counted position adds at most one outbox row per label set (and one in its fold).
        memset(all, 0, sizeof(int64_t) * (size_t)(P + 4));
        all[0] = g_stop != 0;
        all[1] = hi - lo;
        all[2] = tokens;
        all[3 + rank] = (int64_t)(busy_s * 1e9);
        all[3 + P] = P > 1 && accs_outbox(&a, round_pos) > xcap;
        dist_sum(all, P + 4);
        tm.agree += now() - t1 - tt;
        done_docs += all[1];
        done_tokens += all[2];
        if (rank == 0 && timing_rounds()) { // what each rank was dealt and ran at
            fprintf(stderr, "ibc: round %lld: units, tokens/s per rank:", (long long)round);
            for (int p = 0; p < P; p++)
                fprintf(stderr, " %lld %.0f", (long long)(take[p + 1] - take[p]),
                        all[3 + p] > 0 ? (double)(w.tok[take[p + 1]] - w.tok[take[p]]) / (all[3 + p] * 1e-9) : 0.0);
            fprintf(stderr, "\n");
        }
        plan_rates_update(&pr, w.tok, take, all + 3);
        for (int p = 0; p < P; p++) busy[p] += all[3 + p];
        pg->imbalance = max_over_mean(busy, P);
        report(pg, done_docs, c->n, done_tokens, 0);
        if ((rc = dist_agree(rc, err)) == 0 && all[0]) rc = IBC_ESTOP;
        if (rc == 0 && all[3 + P] && next < w.units) rc = accs_exchange(&a, 0, &sent, err); // rc is agreed
        g = next;
    }
    for (int t = 0; t < threads; t++) tm.forward += fwd[t], tm.estimator += est[t];
    tm.lock_wait = a.all.lock_wait_s;
    tm.lock_waits = a.all.lock_waits;
    double t2 = now();
    if (rc == 0) rc = dist_agree(ibc_fault("merge", rank, err), err);
    if (rc == 0) rc = finish_ckpt(slot, L, nslots, &a, an, r, &sent, err);
    if (rc == 0) report_balance(&a.all, sent, r, pg);
    tm.merge = now() - t2;
    r->imbalance = pg->imbalance > 0 ? pg->imbalance : 1.0;
    if (dist_any(timing_on()) && rc == 0) timing_print(pg, &tm, now() - t_start, threads); // every rank, or none
    for (int64_t k = 0; k < 2 * round_docs; k++) se_doc_free(&docs[k]);
    free(docs); free(fold); free(fwd); free(est); free(all); free(cap); free(take); free(tick);
    dist_ho_free(&ho);
    plan_rates_free(&pr);
    free(w.mine); free(w.first); free(w.tok); free(unit_of);
    accs_free(&a);
    free(slot);
    return rc;
}

// What run_job owns; freed in one place (free_run).
typedef struct {
    const job *j;
    const run_opts *o;
    int rank, K;
    corpus c;
    tok_state ts;
    res_ckpt *res;     // [K]
    char *ok;          // [documents] 0: a document with ids outside the vocabulary (skipped)
    int *fold_of;      // [documents] data fold (`folds`): -1 without a counted position
    anchor_cache ac;
    char dir[IBC_PATH_MAX];
} job_run;

static void free_run(job_run *s) {
    for (int k = 0; s->res && k < s->K; k++) res_ckpt_free(&s->res[k]);
    free(s->res);
    free(s->ok);
    free(s->fold_of);
    free_anchors(&s->ac);
    tok_free(s->ts.tok);
    corpus_free(&s->c);
}

// Data folds: the documents with a counted position, numbered in corpus order (the same on
// every rank and for any rank count), go to fold number mod F. More folds than such documents
// is an IBC_EINPUT naming the job file and key.
static int make_folds(const job *j, const corpus *c, int n_max, int **fold_of, ibc_err *err) {
    int64_t k = 0;
    *fold_of = xmalloc(sizeof(int) * (size_t)(c->n + 1));
    for (int64_t i = 0; i < c->n; i++) {
        int T = c->docs[i].n_ids < j->max_length ? c->docs[i].n_ids : j->max_length;
        (*fold_of)[i] = T >= 2 * n_max ? (int)(k++ % j->folds) : -1;
    }
    if (k < j->folds)
        return ibc_fail(err, IBC_EINPUT, "%s: [estimator] folds = %d, but only %lld documents have a counted position",
                        j->file, j->folds, (long long)k);
    return 0;
}

// Rank 0 reads the corpus and broadcasts it; text is tokenized with the first checkpoint's
// tokenizer. No countable position is an error before any model is loaded.
// Collective: every rank calls it (fault hooks corpus, tokenize).
static int start_corpus(job_run *s, ibc_err *err) {
    const job *j = s->j;
    int rc = s->rank == 0 ? corpus_read(j, &s->c, err) : 0;
    if (rc == 0) rc = ibc_fault("corpus", s->rank, err);
    if ((rc = dist_agree(rc, err))) return rc;
    dist_bcast_corpus(&s->c, err);
    if ((rc = prepare_ids(j, &s->c, j->ckpts[0].path, &s->ts, err))) return rc;
    int n_max = n_max_of(j->orders);
    if (!countable(j, &s->c, n_max)) // the same verdict on every rank: every rank holds every id
        return ibc_fail(err, IBC_EINPUT, "%s: no document has a countable position (each needs at least %d tokens)",
                        s->c.source[0] ? s->c.source : j->corpus, 2 * n_max);
    return j->folds ? make_folds(j, &s->c, n_max, &s->fold_of, err) : 0;
}

// The results folder made (rank 0) and any earlier results read back (every rank, read-only).
// Collective: every rank calls it.
static int open_results(job_run *s, ibc_err *err) {
    const job *j = s->j;
    int rc = 0, found = 0;
    if (s->o->results) snprintf(s->dir, sizeof s->dir, "%s", s->o->results);
    else job_results_dir(j, s->dir, sizeof s->dir);
    if (s->rank == 0) rc = io_mkdirs(s->dir, err);
    if ((rc = dist_agree(rc, err))) return rc;
    s->res = xcalloc((size_t)s->K, sizeof(res_ckpt));
    s->ok = xmalloc((size_t)s->c.n + 1);
    for (int k = 0; k < s->K; k++) snprintf(s->res[k].name, sizeof s->res[k].name, "%s", j->ckpts[k].name);
    rc = results_load(s->dir, j->name, j->text, s->res, s->K, &found, err);
    if ((rc = dist_agree(rc, err))) return rc;
    if (s->rank == 0) { // provenance; a resume over changed inputs is refused
        char *mf = manifest_build(j, &s->c);
        rc = manifest_update(s->dir, mf, found, err);
        free(mf);
    }
    return dist_agree(rc, err);
}

// Checkpoint k: its tokenizer (text), its weights (fault hook load), the count. A load
// failure marks it failed and goes on, or stops the job under on_error = stop.
// Collective: every rank calls it.
static int run_one(job_run *s, int k, ibc_err *err) {
    const job *j = s->j;
    res_ckpt *r = &s->res[k];
    progress pg = {s->o, now(), now(), k + 1, s->K, j->ckpts[k].name, 0, 0};
    model m;
    ibc_err le = {0};
    int loaded = 0, rc = prepare_ids(j, &s->c, j->ckpts[k].path, &s->ts, &le);
    if (rc == 0) loaded = (rc = model_load(j->ckpts[k].path, &m, &le)) == 0;
    if (rc == 0) rc = ibc_fault("load", s->rank, &le);
    if ((rc = dist_agree(rc, &le))) {
        if (loaded) model_free(&m);
        if (j->on_error_stop) { *err = le; return rc; }
        r->status = RES_FAILED;
        snprintf(r->error, sizeof r->error, "%s", le.msg);
        if (s->rank == 0) fprintf(stderr, "ibc: checkpoint %s failed to load, going on: %s\n", r->name, le.msg);
        return 0;
    }
    snprintf(r->arch, sizeof r->arch, "%s", config_arch_name(m.c.arch));
    r->params = m.n_params;
    r->d = m.c.d;
    r->L = m.c.n_layers;
    const res_anchors *an = NULL;
    int64_t bad = 0;
    rc = check_ids(j, &s->c, m.c.vocab, r->name, s->ok, &bad, err);
    if (rc == 0) rc = get_anchors(j, &s->ac, m.c.d, &an, err); // may read a file: agree
    if ((rc = dist_agree(rc, err)) == 0) rc = run_ckpt(j, &s->c, s->ok, s->fold_of, &m, an, r, &pg, err);
    r->n_skipped += bad;
    model_free(&m);
    if (rc == 0) report(&pg, s->c.n, s->c.n, -1, 1);
    return rc;
}

int run_job(const job *j, const run_opts *o, ibc_err *err) {
    if (o->only >= j->n_ckpts) // before anything is read: the same verdict on every rank
        return ibc_fail(err, IBC_EINPUT, "%s: --only %d: the job has %d checkpoints (0..%d)", j->file, o->only,
                        j->n_ckpts, j->n_ckpts - 1);
    g_stop = 0;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    job_run s = {.j = j, .o = o, .rank = dist_rank(), .K = j->n_ckpts};
    int rc = start_corpus(&s, err);
    if (rc == 0) rc = plan_fit_check(j, &s.c, o->only, err); // collective: a job that cannot fit stops here (exit 2)
    if (rc == 0) rc = open_results(&s, err);
    if (rc) goto done;
    for (int k = 0; k < s.K && rc == 0; k++) {
        if (o->only >= 0 && k != o->only) continue;
        if (s.res[k].status != RES_PENDING) {
            if (!o->quiet && s.rank == 0)
                fprintf(stderr, "ibc: checkpoint %d/%d %s: already %s, skipped\n", k + 1, s.K, s.res[k].name,
                        s.res[k].status == RES_COMPLETE ? "complete" : "failed");
            continue;
        }
        rc = run_one(&s, k, err);
        if (rc == 0) rc = save(j, s.dir, s.res, s.K, &s.ac, err);
    }
    if (rc == IBC_ESTOP) {
        int complete = 0;
        for (int k = 0; k < s.K; k++) complete += s.res[k].status != RES_PENDING;
        ibc_fail(err, IBC_ESTOP, "stopped by signal %d after saving: %d of %d checkpoints done in %s; run the same job again to resume",
                 (int)g_stop, complete, s.K, s.dir);
    }
done:
    free_run(&s);
    return rc;
}

// Collective: every rank calls it. Every rank reads every folder (read-only) and the ranks
// agree after each; the merged results are written collectively.
int run_merge(const job *j, const char *const *dirs, int n_dirs, const char *out, ibc_err *err) {
    int K = j->n_ckpts, rc = 0;
    res_ckpt *res = xcalloc((size_t)K, sizeof(res_ckpt)), *part = xcalloc((size_t)K, sizeof(res_ckpt));
    anchor_cache ac = {0};
    for (int k = 0; k < K; k++) snprintf(res[k].name, sizeof res[k].name, "%s", j->ckpts[k].name);
    for (int i = 0; i < n_dirs && rc == 0; i++) {
        int found = 0;
        for (int k = 0; k < K; k++) {
            res_ckpt_free(&part[k]);
            memset(&part[k], 0, sizeof part[k]);
            snprintf(part[k].name, sizeof part[k].name, "%s", j->ckpts[k].name);
        }
        rc = results_load(dirs[i], j->name, j->text, part, K, &found, err);
        if (rc == 0 && !found) rc = ibc_fail(err, IBC_EINPUT, "%s: no %s.h5 results in this folder", dirs[i], j->name);
        if ((rc = dist_agree(rc, err))) break;
        for (int k = 0; k < K; k++) // a complete result wins over a failed one
            if (part[k].status == RES_COMPLETE || (part[k].status == RES_FAILED && res[k].status == RES_PENDING)) {
                res_ckpt_free(&res[k]);
                res[k] = part[k];
                memset(&part[k], 0, sizeof part[k]);
            }
    }
    if (rc == 0) { // rc is agreed here: every rank is on this line or none
        if (dist_rank() == 0 && (rc = io_mkdirs(out, err)) == 0) rc = manifest_merge(dirs, n_dirs, out, err);
        if ((rc = dist_agree(rc, err)) == 0) rc = save(j, out, res, K, &ac, err);
    }
    for (int k = 0; k < K; k++) { res_ckpt_free(&res[k]); res_ckpt_free(&part[k]); }
    free(res);
    free(part);
    free_anchors(&ac);
    return rc;
}
