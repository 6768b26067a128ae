#include "ibc/run.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ibc/corpus.h"
#include "ibc/dist.h"
#include "ibc/hmap.h"
#include "ibc/io.h"
#include "ibc/model.h"
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
    int rc = 0;
    if (j->anchors[0]) {
        int n = j->bins, dd = d;
        rc = se_anchors_load(j->anchors, &n, &dd, &a->W, err); // names the shape it expects
    } else {
        a->W = malloc(sizeof(float) * (size_t)a->n * d);
        if (!a->W) return ibc_fail(err, IBC_ESYS, "out of memory");
        se_anchors(a->n, d, j->seed, a->W);
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
    res_anchors *na = realloc(ac->a, sizeof(res_anchors) * (size_t)(ac->n + 1));
    if (!na) return ibc_fail(err, IBC_ESYS, "out of memory");
    ac->a = na;
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

// Rewrites the results with every checkpoint so far (anchors for each width present).
static int save(const job *j, const char *dir, res_ckpt *res, int K, anchor_cache *ac, ibc_err *err) {
    const res_anchors *tmp;
    for (int i = 0; i < K; i++)
        if (res[i].status == RES_COMPLETE) {
            int rc = get_anchors(j, ac, res[i].d, &tmp, err);
            if (rc) return rc;
        }
    return results_write(dir, j->name, j->text, res, K, ac->a, ac->n, err);
}

typedef struct {
    se_acc *acc;
    const int *slot;  // [L+1] slot of each hidden-state index, -1 if not tracked
    int last;         // the last tracked index: the forward pass can stop there
    const float *W;
    double eps;
} layer_ctx;

static int on_layer(void *ctx, int l, const float *h, int T, int d) {
    (void)d;
    layer_ctx *c = ctx;
    if (c->slot[l] >= 0) se_doc_layer(c->acc, c->slot[l], c->W, c->eps, h, T);
    return l == c->last ? 1 : 0; // 1: no later layer is needed
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

static int prepare_ids(const job *j, corpus *c, const char *ckpt_dir, tok_state *ts, ibc_err *err) {
    if (!c->n || !c->docs[0].text) return 0; // pre-tokenized
    char path[JOB_PATH + 32];
    if (j->tokenizer[0]) snprintf(path, sizeof path, "%s", j->tokenizer);
    else snprintf(path, sizeof path, "%s/tokenizer.json", ckpt_dir);
    char *text;
    size_t len;
    int rc = io_read_all(path, &text, &len, err);
    if (rc) return rc;
    uint64_t h = hmap_hash(text, len) | 1; // 0 means no tokenizer yet
    if (h == ts->hash) { free(text); return 0; }
    tokenizer *t;
    rc = tok_parse(text, len, path, &t, err);
    free(text);
    if (rc) return rc;
    tok_free(ts->tok);
    ts->tok = t;
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
} progress;

static void report(progress *p, int64_t docs, int64_t total, int64_t tokens, int force) {
    double t = now();
    if (tokens >= 0) p->tokens = tokens;
    tokens = p->tokens;
    if (p->o->quiet || dist_rank() != 0 || (!force && t - p->last < p->o->progress_s)) return;
    p->last = t;
    double rate = tokens / fmax(t - p->t0, 1e-9), left = docs ? (t - p->t0) * (double)(total - docs) / docs : 0;
    fprintf(stderr, "ibc: checkpoint %d/%d %s: documents %lld/%lld, %.0f tokens/s, ETA %.0fs\n", p->k, p->K, p->name,
            (long long)docs, (long long)total, rate, left);
}

// One checkpoint, all ranks. Fills r. Returns 0, IBC_ESTOP, or an error.
static int run_ckpt(const job *j, const corpus *c, const char *ok, const model *m,
                    const res_anchors *an, res_ckpt *r, progress *pg, ibc_err *err) {
    int L = m->c.n_layers, rank = dist_rank(), P = dist_size();
    int *slot = malloc(sizeof(int) * (size_t)(L + 1)), nslots = 0, last = -1;
    for (int l = 0; slot && l <= L; l++) slot[l] = -1;
    for (int i = 0; slot && i < (j->all_layers ? L + 1 : j->n_layers_sel); i++) {
        int l = j->all_layers ? i : j->layers[i];
        if (l > L) { free(slot); return ibc_fail(err, IBC_EINPUT, "%s: layers: index %d past this model's %d hidden states", j->file, l, L + 1); }
        if (slot[l] < 0) slot[l] = nslots++;
        if (l > last) last = l;
    }
    if (!slot) return ibc_fail(err, IBC_ESYS, "out of memory");
    se_acc acc;
    int rc = se_acc_init(&acc, an->n, m->c.d, nslots, j->orders, j->preference[0] != 0, err);
    for (int64_t i = 0; rc == 0 && i < c->n; i++) {
        const corpus_doc *d = &c->docs[i];
        if (ok[i]) rc = se_precount_doc(&acc, d->ids, d->n_ids < j->max_length ? d->n_ids : j->max_length, d->pref, err);
    }
    if (rc == 0) rc = se_precount_done_min(&acc, j->min_count, err);
    rc = dist_any(rc != 0) ? (rc ? rc : ibc_fail(err, IBC_ESYS, "out of memory on another rank")) : 0;
    int64_t n_units = (c->n + RUN_BLOCK - 1) / RUN_BLOCK, rounds = (n_units + P - 1) / P;
    int64_t done_docs = 0, done_tokens = 0;
    layer_ctx lc = {&acc, slot, last, an->W, an->eps};
    for (int64_t round = 0; rc == 0 && round < rounds; round++) {
        int64_t u = round * P + rank, mine[3] = {0, 0, 0};
        for (int64_t i = u * RUN_BLOCK; u < n_units && i < (u + 1) * RUN_BLOCK && i < c->n && rc == 0; i++) {
            const corpus_doc *d = &c->docs[i];
            mine[1]++;
            if (!ok[i]) continue;
            int T = d->n_ids < j->max_length ? d->n_ids : j->max_length;
            rc = se_doc_begin(&acc, d->ids, T, d->pref, err);
            if (rc == 0 && acc.P > 0) {
                rc = model_forward(m, d->ids, T, on_layer, &lc, NULL, err);
                if (rc == 1) rc = 0; // stopped after the last tracked layer
            }
            mine[2] += T;
        }
        mine[0] = g_stop != 0 || rc != 0;
        dist_sum(mine, 3);
        done_docs += mine[1];
        done_tokens += mine[2];
        report(pg, done_docs, c->n, done_tokens, 0);
        if (rc == 0 && mine[0]) rc = dist_any(g_stop != 0) ? IBC_ESTOP : ibc_fail(err, IBC_ESYS, "a rank failed");
    }
    if (rc == 0) {
        dist_merge_acc(&acc);
        int64_t *cond = malloc(sizeof(int64_t) * (size_t)(acc.n_sets + 1) * nslots * SE_COND_LIMBS);
        se_result sr;
        if (!cond) rc = ibc_fail(err, IBC_ESYS, "out of memory");
        if (rc == 0) dist_cond_sums(&acc, cond);
        if (rc == 0 && (rc = se_result_from(&sr, acc.n, nslots, acc.n_sets, acc.C, acc.N, cond, err)) == 0) {
            int *ids = malloc(sizeof(int) * (size_t)nslots);
            if (!ids || res_ckpt_alloc(r, nslots)) rc = ibc_fail(err, IBC_ESYS, "out of memory");
            for (int l = 0; rc == 0 && l <= L; l++)
                if (slot[l] >= 0) ids[slot[l]] = l;
            for (int s = 0; rc == 0 && s < nslots; s++) {
                r->layer_ids[s] = ids[s];
                r->H[s] = sr.H[s];
                for (int k = 0; k < acc.n_sets; k++) {
                    const se_set *set = &acc.sets[k];
                    double v = sr.mi[(size_t)k * nslots + s];
                    if (set->kind == SE_PREF) r->I_pref[s] = v;
                    else (set->kind == SE_INPUT ? r->I_X : r->I_Y)[(size_t)(set->k - 1) * nslots + s] = v;
                }
            }
            if (rc == 0) se_summarize(&acc, &sr, ids, &r->sum);
            free(ids);
            se_result_free(&sr);
            r->n_documents = acc.n_docs;
            r->n_skipped = acc.n_skipped;
            r->n_positions = acc.N;
            r->eps = an->eps;
            r->status = rc == 0 ? RES_COMPLETE : RES_PENDING;
        }
        free(cond);
    }
    se_acc_free(&acc);
    free(slot);
    return rc;
}

int run_job(const job *j, const run_opts *o, ibc_err *err) {
    g_stop = 0;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    int rank = dist_rank(), rc = 0;
    corpus c = {0};
    rc = rank == 0 ? corpus_read(j, &c, err) : 0;
    if ((rc = dist_share_error(rc, err))) return rc;
    if ((rc = dist_bcast_corpus(&c, err))) { corpus_free(&c); return rc; }
    corpus_sample(&c, j->documents, j->corpus_seed);
    int n_max = n_max_of(j->orders);
    tok_state ts = {0};
    // No countable position is an error before any model is loaded (text: after tokenizing
    // with the first checkpoint's tokenizer).
    rc = prepare_ids(j, &c, j->ckpts[0].path, &ts, err);
    if (rc == 0 && !countable(j, &c, n_max))
        rc = ibc_fail(err, IBC_EINPUT, "%s: no document has a countable position (each needs at least %d tokens)",
                      c.source[0] ? c.source : j->corpus, 2 * n_max);
    rc = dist_share_error(rc, err);
    if (rc) {
        tok_free(ts.tok);
        corpus_free(&c);
        return rc;
    }
    char dir[JOB_PATH + 200];
    if (o->results) snprintf(dir, sizeof dir, "%s", o->results);
    else job_results_dir(j, dir, sizeof dir);
    if (o->only >= j->n_ckpts) {
        corpus_free(&c);
        return ibc_fail(err, IBC_EINPUT, "%s: --only %d: the job has %d checkpoints (0..%d)", j->file, o->only, j->n_ckpts, j->n_ckpts - 1);
    }
    rc = rank == 0 ? io_mkdirs(dir, err) : 0;
    if ((rc = dist_share_error(rc, err))) { corpus_free(&c); return rc; }

    int K = j->n_ckpts, found = 0;
    res_ckpt *res = calloc((size_t)K, sizeof(res_ckpt));
    char *ok = malloc((size_t)c.n + 1);
    anchor_cache ac = {0};
    if (!res || !ok) { corpus_free(&c); free(res); free(ok); return ibc_fail(err, IBC_ESYS, "out of memory"); }
    for (int k = 0; k < K; k++) snprintf(res[k].name, sizeof res[k].name, "%s", j->ckpts[k].name);
    // Every rank reads the same results file (read-only); rank 0's verdict is shared.
    rc = results_load(dir, j->name, j->text, res, K, &found, err);
    if ((rc = dist_share_error(rc, err))) goto done;
    for (int k = 0; k < K && rc == 0; k++) {
        if (o->only >= 0 && k != o->only) continue;
        progress pg = {o, now(), now(), k + 1, K, j->ckpts[k].name, 0};
        if (res[k].status != RES_PENDING) {
            if (!o->quiet && rank == 0) fprintf(stderr, "ibc: checkpoint %d/%d %s: already %s, skipped\n", k + 1, K,
                                                res[k].name, res[k].status == RES_COMPLETE ? "complete" : "failed");
            continue;
        }
        model m;
        ibc_err le = {0};
        int lrc = prepare_ids(j, &c, j->ckpts[k].path, &ts, &le); // text: this checkpoint's tokenizer
        if (dist_any(lrc != 0)) lrc = dist_share_error(lrc ? lrc : IBC_EINPUT, &le);
        else lrc = model_load(j->ckpts[k].path, &m, &le);
        if (dist_any(lrc != 0)) {
            if (lrc == 0) model_free(&m);
            lrc = dist_share_error(lrc ? lrc : IBC_ESYS, &le);
            if (j->on_error_stop) { *err = le; rc = lrc; break; }
            res[k].status = RES_FAILED;
            snprintf(res[k].error, sizeof res[k].error, "%s", le.msg);
            if (rank == 0) fprintf(stderr, "ibc: checkpoint %s failed to load, going on: %s\n", res[k].name, le.msg);
        } else {
            snprintf(res[k].arch, sizeof res[k].arch, "%s", config_arch_name(m.c.arch));
            res[k].params = m.n_params;
            res[k].d = m.c.d;
            res[k].L = m.c.n_layers;
            const res_anchors *an = NULL;
            int64_t bad = 0;
            rc = check_ids(j, &c, m.c.vocab, res[k].name, ok, &bad, err);
            if (rc == 0) rc = get_anchors(j, &ac, m.c.d, &an, err);
            if (rc == 0) rc = run_ckpt(j, &c, ok, &m, an, &res[k], &pg, err);
            res[k].n_skipped += bad;
            model_free(&m);
            if (rc == 0) report(&pg, c.n, c.n, -1, 1);
        }
        if (rc == 0) rc = save(j, dir, res, K, &ac, err);
    }
    if (rc == IBC_ESTOP) {
        int complete = 0;
        for (int k = 0; k < K; k++) complete += res[k].status != RES_PENDING;
        ibc_fail(err, IBC_ESTOP, "stopped by signal %d after saving: %d of %d checkpoints done in %s; run the same job again to resume",
                 (int)g_stop, complete, K, dir);
    }
done:
    for (int k = 0; k < K; k++) res_ckpt_free(&res[k]);
    free_anchors(&ac);
    free(res);
    free(ok);
    tok_free(ts.tok);
    corpus_free(&c);
    return rc;
}

int run_merge(const job *j, const char *const *dirs, int n_dirs, const char *out, ibc_err *err) {
    int K = j->n_ckpts, rc = 0;
    res_ckpt *res = calloc((size_t)K, sizeof(res_ckpt)), *part = calloc((size_t)K, sizeof(res_ckpt));
    anchor_cache ac = {0};
    if (!res || !part) { free(res); free(part); return ibc_fail(err, IBC_ESYS, "out of memory"); }
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
        for (int k = 0; rc == 0 && k < K; k++) // a complete result wins over a failed one
            if (part[k].status == RES_COMPLETE || (part[k].status == RES_FAILED && res[k].status == RES_PENDING)) {
                res_ckpt_free(&res[k]);
                res[k] = part[k];
                memset(&part[k], 0, sizeof part[k]);
            }
    }
    if (rc == 0) rc = dist_rank() == 0 ? io_mkdirs(out, err) : 0;
    if ((rc = dist_share_error(rc, err)) == 0) rc = save(j, out, res, K, &ac, err);
    for (int k = 0; k < K; k++) { res_ckpt_free(&res[k]); res_ckpt_free(&part[k]); }
    free(res);
    free(part);
    free_anchors(&ac);
    return rc;
}
