#include "ibc/plan.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ibc/dist.h"
#include "ibc/io.h"
#include "ibc/kernels.h"
#include "ibc/limits.h"
#include "ibc/model.h"
#include "ibc/mem.h"
#include "ibc/owner.h"
#include "ibc/safetensors.h"
#include "ibc/tokenizer.h"

// ---------------------------------------------------------------------------------------------
// Labels: softent's precount on a 2-bin, 1-layer accumulator (rows cost 16 B there)

// The largest order of the job (1 if none): documents need 2 n_max tokens to count.
static int max_order(unsigned orders) {
    int m = 1;
    for (int k = 1; k <= SE_MAX_ORDER; k++)
        if (orders & (1u << (k - 1))) m = k;
    return m;
}

static int doc_tokens(const job *j, const corpus_doc *d) { return d->n_ids < j->max_length ? d->n_ids : j->max_length; }

// Rows, owners and expected senders of one precounted table (set s); rows_rank [P] gets the rows.
static void count_rows(plan_labels *pl, const se_table *t, int s, int64_t *rows_rank) {
    int P = pl->P;
    double stay = 1.0 - 1.0 / P; // a position falls on a given rank with probability 1/P
    for (int64_t x = 0; x < t->n_labels; x++) {
        if (t->row[x] < 0 || t->Nx[x] == 0) continue; // singleton, or merged into "rare"
        int o = owner_of_label(s, t->keys[x].key, P);
        double touch = P > 1 ? 1.0 - pow(stay, (double)t->Nx[x]) : 0.0;
        if (rows_rank == pl->rows_rank) pl->sets[s].rows++;
        else pl->fold_rows++;
        rows_rank[o]++;
        pl->touch_total += touch;
        pl->touch_owned[o] += touch;
    }
}

// The folds' accumulators (run.c's make_folds: documents with a counted position, in corpus
// order, to fold number mod F), each precounted over its documents: index bytes and rows.
static int count_folds(const job *j, const corpus *c, plan_labels *pl, ibc_err *err) {
    int F = j->folds, rc = 0;
    se_acc *acc = xcalloc((size_t)F, sizeof(se_acc));
    for (int f = 0; f < F && rc == 0; f++) rc = se_acc_init(&acc[f], 2, 1, 1, j->orders, j->preference[0] != 0, err);
    int64_t k = 0;
    for (int64_t i = 0; rc == 0 && i < c->n; i++) {
        int T = doc_tokens(j, &c->docs[i]);
        if (T >= 2 * acc[0].n_max) rc = se_precount_doc(&acc[k++ % F], c->docs[i].ids, T, c->docs[i].pref, err);
    }
    pl->F = F;
    pl->fold_rows_rank = xcalloc((size_t)pl->P, sizeof(int64_t));
    for (int f = 0; f < F && rc == 0; f++) {
        rc = se_precount_done_min(&acc[f], j->min_count, err);
        for (int s = 0; rc == 0 && s < acc[f].n_sets; s++) {
            const se_table *t = &acc[f].tables[s];
            pl->fold_index_bytes += t->n_labels * (int64_t)(sizeof(se_label) + 2 * sizeof(int64_t)) + (int64_t)t->map.cap * 8;
            count_rows(pl, t, s, pl->fold_rows_rank);
        }
    }
    for (int f = 0; f < F; f++) se_acc_free(&acc[f]);
    free(acc);
    return rc;
}

int64_t plan_units(const job *j, const corpus *c, const char *ok, int n_max, int64_t *unit_of, int *rows_max) {
    int64_t nu = 0, open = -1; // open: the unit being filled
    int rows = 0;
    *rows_max = 0;
    for (int64_t i = 0; i < c->n; i++) {
        int T = c->docs[i].n_ids < j->max_length ? c->docs[i].n_ids : j->max_length;
        if ((ok && !ok[i]) || T - 2 * n_max + 1 <= 0) { // never runs through the model: alone
            if (unit_of) unit_of[i] = nu;
            nu++;
            continue;
        }
        if (open < 0 || rows + T > j->unit_rows) open = nu++, rows = 0;
        if (unit_of) unit_of[i] = open;
        rows += T;
        if (rows > *rows_max) *rows_max = rows;
    }
    return nu;
}

// ---------------------------------------------------------------------------------------------
// Work assignment: one order of units, dealt to ranks round by round

typedef struct { int64_t T, i; } unit_len;

static int by_length(const void *a, const void *b) { // longest first, then by index
    const unit_len *x = a, *y = b;
    if (x->T != y->T) return x->T > y->T ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

plan_work plan_order(const job *j, const corpus *c, const char *ok, const int64_t *unit_of, int64_t nu) {
    unit_len *ul = xmalloc(sizeof(unit_len) * (size_t)(nu + 1));
    int64_t *start = xcalloc((size_t)nu + 2, sizeof(int64_t)), *order = xmalloc(sizeof(int64_t) * (size_t)(c->n + 1));
    for (int64_t u = 0; u < nu; u++) ul[u] = (unit_len){0, u};
    for (int64_t i = 0; i < c->n; i++) {
        ul[unit_of[i]].T += !ok || ok[i] ? doc_tokens(j, &c->docs[i]) : 0; // a skipped document costs nothing
        start[unit_of[i] + 2]++;
    }
    for (int64_t u = 0; u < nu; u++) start[u + 2] += start[u + 1]; // start[u + 1]: first slot of unit u
    for (int64_t i = 0; i < c->n; i++) order[start[unit_of[i] + 1]++] = i; // then start[u]: of unit u
    qsort(ul, (size_t)nu, sizeof *ul, by_length);
    plan_work w = {xmalloc(sizeof(int64_t) * (size_t)(c->n + 1)), xmalloc(sizeof(int64_t) * (size_t)(nu + 1)),
                   xmalloc(sizeof(int64_t) * (size_t)(nu + 1)), 0, nu};
    w.tok[0] = 0;
    for (int64_t k = 0; k < nu; k++) {
        w.first[k] = w.n;
        for (int64_t q = start[ul[k].i]; q < start[ul[k].i + 1]; q++) w.mine[w.n++] = order[q];
        w.tok[k + 1] = w.tok[k] + ul[k].T;
    }
    w.first[nu] = w.n;
    free(ul); free(start); free(order);
    return w;
}

int64_t plan_deal(const int64_t *tok, int64_t units, int64_t g, int P, const int *cap, const double *rate,
                  int64_t *take) {
    // The round lasts tau: the time the ranks need for everything left at their rates, or,
    // when shorter, the time the first rank to fill its cap needs for that many units from the
    // front (rates are tokens per second, so tau and the shares rate x tau have no scale).
    double sum = 0, tau_cap = INFINITY;
    for (int p = 0; p < P; p++) {
        int64_t e = g + cap[p] < units ? g + cap[p] : units;
        double t = (double)(tok[e] - tok[g]) / rate[p];
        tau_cap = t < tau_cap ? t : tau_cap;
        sum += rate[p];
    }
    double tau_all = (double)(tok[units] - tok[g]) / sum, tau = tau_all < tau_cap ? tau_all : tau_cap;
    int64_t at = g;
    for (int p = 0; p < P; p++) { // rank p: the next units while its share reaches past half of the next one
        take[p] = at;
        while (at < units && at - take[p] < cap[p] &&
               (double)(tok[at] - tok[take[p]]) + 0.5 * (double)(tok[at + 1] - tok[at]) <= rate[p] * tau)
            at++;
    }
    if (tau_all <= tau_cap) // the last round: what rounding left goes to the last rank while it has room
        while (at < units && at - take[P - 1] < cap[P - 1]) at++;
    take[P] = at;
    if (at == g && g < units) { // every share below half a unit: the fastest rank takes one
        int f = 0;
        for (int p = 1; p < P; p++) f = rate[p] > rate[f] ? p : f;
        for (int p = 0; p <= P; p++) take[p] = p <= f ? g : g + 1;
        at = g + 1;
    }
    return at;
}

const int *plan_first_cap(int64_t units, int P, const int *cap, const int *threads) {
    int64_t full = 0;
    for (int p = 0; p < P; p++) full += cap[p];
    return P > 1 && units > full ? threads : cap;
}

void plan_rates_init(plan_rates *r, int P) {
    r->P = P;
    r->rate = xmalloc(sizeof(double) * 3 * (size_t)P);
    r->sum = r->rate + P;
    for (int p = 0; p < P; p++) r->rate[p] = 1.0, r->sum[p] = r->sum[P + p] = 0;
}

void plan_rates_free(plan_rates *r) {
    free(r->rate);
    r->rate = r->sum = NULL;
}

void plan_rates_update(plan_rates *r, const int64_t *tok, const int64_t *take, const int64_t *busy) {
    int P = r->P;
    double *tk = r->sum, *sec = r->sum + P, fastest = 0;
    for (int p = 0; p < P; p++) {
        tk[p] = PLAN_RATE_DECAY * tk[p] + (double)(tok[take[p + 1]] - tok[take[p]]);
        sec[p] = PLAN_RATE_DECAY * sec[p] + (double)busy[p] * 1e-9;
        if (tk[p] > 0 && sec[p] > 0 && tk[p] / sec[p] > fastest) fastest = tk[p] / sec[p];
    }
    if (fastest == 0) return; // nothing measured yet: the deal stays by tokens
    for (int p = 0; p < P; p++) {
        double x = tk[p] > 0 && sec[p] > 0 ? tk[p] / sec[p] : fastest;
        if (tok[take[p + 1]] == tok[take[p]] && sec[p] > 0) { // dealt nothing
            x = 0.5 * (x + fastest);
            tk[p] = x * sec[p];
        }
        r->rate[p] = x >= (1 - PLAN_RATE_BAND) * fastest ? fastest : x;
    }
}

// ---------------------------------------------------------------------------------------------
// Labels of the whole corpus

// The outbox's largest growth in one round of `ibc run` on any rank. A round gives a rank
// consecutive units of plan_order, at most round_units x threads (plan_deal), and which rank
// gets which units depends on how fast the ranks run, so the count covers every window of
// that many consecutive units and every rank: the distinct labels with a row that the
// window's documents touch, less those the rank owns (each other one is an outbox row until
// the next exchange; softent's doc_outbox: a merged rare label goes to the "rare" row); plus
// the same count for the one unit of another rank's it may take over (run.c's handover).
// The window slides one unit at a time: per label, the positions inside it; per rank, the
// distinct labels inside it that it owns. Read-only lookups in the precounted tables acc.
static int unit_labels(const job *j, const corpus *c, se_acc *acc, int P, const plan_work *w, int64_t u, int dir,
                       int32_t **cnt, int32_t **own, int64_t *distinct, int64_t *owned, se_doc *d, ibc_err *err) {
    int rc = 0;
    for (int64_t q = w->first[u]; q < w->first[u + 1] && rc == 0; q++) {
        const corpus_doc *doc = &c->docs[w->mine[q]];
        rc = se_doc_start(acc, d, doc->ids, doc_tokens(j, doc), doc->pref, err);
        for (int s = 0; rc == 0 && s < acc->n_sets; s++) {
            const se_table *t = &acc->tables[s];
            for (int p = 0; p < d->P; p++) {
                int64_t x = d->idx[(size_t)s * d->P + p];
                if (t->row[x] < 0) continue; // a singleton: no row anywhere
                int64_t y = t->Nx[x] == 0 ? t->rare : x;
                if (own[s][y] < 0) own[s][y] = owner_of_label(s, t->keys[y].key, P);
                cnt[s][y] += dir;
                if (cnt[s][y] == (dir > 0)) *distinct += dir, owned[own[s][y]] += dir; // 0 -> 1 or 1 -> 0
            }
        }
    }
    return rc;
}

static int count_round_rows(const job *j, const corpus *c, se_acc *acc, int threads, plan_labels *pl, ibc_err *err) {
    int P = pl->P, rc = 0, rows_max;
    if (P < 2) return 0;
    int64_t *unit_of = xmalloc(sizeof(int64_t) * (size_t)(c->n + 1)), per_round = (int64_t)j->round_units * threads;
    int64_t nu = plan_units(j, c, NULL, acc->n_max, unit_of, &rows_max), distinct = 0, distinct1 = 0, unit_rows = 0;
    int64_t *owned = xcalloc(2 * (size_t)P, sizeof(int64_t)), *owned1 = owned + P; // the window's; one unit's
    int32_t *cnt[SE_MAX_SETS], *cnt1[SE_MAX_SETS], *own[SE_MAX_SETS];
    for (int s = 0; s < acc->n_sets; s++) {
        cnt[s] = xcalloc((size_t)acc->tables[s].n_labels + 1, sizeof(int32_t));
        cnt1[s] = xcalloc((size_t)acc->tables[s].n_labels + 1, sizeof(int32_t));
        own[s] = xmalloc(sizeof(int32_t) * (size_t)(acc->tables[s].n_labels + 1));
        for (int64_t x = 0; x < acc->tables[s].n_labels; x++) own[s][x] = -1; // not computed yet
    }
    se_doc d;
    se_doc_init(&d);
    plan_work w = plan_order(j, c, NULL, unit_of, nu);
    for (int64_t e = 0; e < nu && rc == 0; e++) { // the window [e + 1 - per_round, e]
        rc = unit_labels(j, c, acc, P, &w, e, 1, cnt, own, &distinct, owned, &d, err);
        if (rc == 0 && e >= per_round)
            rc = unit_labels(j, c, acc, P, &w, e - per_round, -1, cnt, own, &distinct, owned, &d, err);
        int64_t least = owned[0];
        for (int r = 1; r < P; r++) least = owned[r] < least ? owned[r] : least;
        if (distinct - least > pl->round_rows) pl->round_rows = distinct - least;
        // Unit e alone: a rank that finishes its units early may take over one more from
        // another rank (run.c's handover), whose rows come on top of its window's.
        if (rc == 0) rc = unit_labels(j, c, acc, P, &w, e, 1, cnt1, own, &distinct1, owned1, &d, err);
        for (int r = 0; r < P; r++) unit_rows = distinct1 - owned1[r] > unit_rows ? distinct1 - owned1[r] : unit_rows;
        if (rc == 0) rc = unit_labels(j, c, acc, P, &w, e, -1, cnt1, own, &distinct1, owned1, &d, err);
    }
    pl->round_rows += unit_rows;
    pl->rounds_max = (nu + P * per_round - 1) / (P * per_round); // ranks of one speed
    free(w.mine); free(w.first); free(w.tok);
    se_doc_free(&d);
    for (int s = 0; s < acc->n_sets; s++) free(cnt[s]), free(cnt1[s]), free(own[s]);
    free(owned);
    free(unit_of);
    return rc;
}

int plan_labels_count(const job *j, const corpus *c, int P, int threads, plan_labels *pl, ibc_err *err) {
    memset(pl, 0, sizeof *pl);
    if (P < 1) return ibc_fail(err, IBC_EINPUT, "plan: ranks must be at least 1, got %d", P);
    pl->P = P;
    pl->round_units = j->round_units;
    se_acc acc;
    int rc = se_acc_init(&acc, 2, 1, 1, j->orders, j->preference[0] != 0, err);
    if (rc) return rc;
    for (int64_t i = 0; rc == 0 && i < c->n; i++) {
        const corpus_doc *d = &c->docs[i];
        int T = doc_tokens(j, d);
        pl->corpus_bytes += (int64_t)sizeof *d + 4 * (int64_t)d->n_ids + (d->text ? (int64_t)strlen(d->text) + 1 : 0);
        rc = se_precount_doc(&acc, d->ids, T, d->pref, err);
        if (T < 2 * acc.n_max) continue; // no counted position: never run through the model
        pl->documents++;
        pl->tokens += T;
        pl->sum_T += T;
        pl->sum_tri += 0.5 * T * (T + 1.0);
        if (T > pl->T_max) pl->T_max = T;
    }
    plan_units(j, c, NULL, acc.n_max, NULL, &pl->R_max); // every id usable, as counted here
    for (int s = 0; rc == 0 && s < acc.n_sets; s++) { // before min_count merges the rare ones
        const se_table *t = &acc.tables[s];
        plan_set *ps = &pl->sets[s];
        memcpy(ps->name, acc.sets[s].name, sizeof ps->name);
        ps->k = acc.sets[s].k;
        ps->labels = t->n_labels;
        for (int64_t x = 0; x < t->n_labels; x++) {
            ps->singletons += t->Nx[x] == 1;
            if (s == 0) pl->positions += t->Nx[x];
        }
    }
    if (rc == 0) rc = se_precount_done_min(&acc, j->min_count, err);
    if (rc == 0) {
        pl->n_sets = acc.n_sets;
        pl->rows_rank = xcalloc((size_t)P, sizeof(int64_t));
        pl->touch_owned = xcalloc((size_t)P, sizeof(double));
        for (int s = 0; s < acc.n_sets; s++) {
            const se_table *t = &acc.tables[s];
            pl->index_bytes += t->n_labels * (int64_t)(sizeof(se_label) + 2 * sizeof(int64_t)) + (int64_t)t->map.cap * 8;
            count_rows(pl, t, s, pl->rows_rank);
            pl->rows += pl->sets[s].rows;
        }
        rc = count_round_rows(j, c, &acc, threads, pl, err);
    }
    se_acc_free(&acc);
    if (rc == 0 && j->folds) rc = count_folds(j, c, pl, err);
    if (rc) plan_labels_free(pl);
    return rc;
}

void plan_labels_free(plan_labels *pl) {
    free(pl->rows_rank);
    free(pl->touch_owned);
    free(pl->fold_rows_rank);
    *pl = (plan_labels){0};
}

// ---------------------------------------------------------------------------------------------
// One checkpoint

double plan_forward_flops(const model_config *c, int n_layers, double sum_T, double sum_tri) {
    double qd = (double)c->n_heads * c->head_dim, kd = (double)c->n_kv_heads * c->head_dim;
    double proj = c->d * (qd + 2 * kd) + qd * c->d + (double)c->d * c->d_ff * (c->gated_mlp ? 3 : 2);
    return n_layers * (2.0 * sum_T * proj + 2.0 * 2.0 * qd * sum_tri); // q.k and p.v: 2 FLOPs each
}

// Bytes one thread holds in a round of `units` units of up to R rows (plan_units)
// whose longest document has T tokens. Once per thread, model.c's arena: the products'
// buffers over R rows (xn, o, o2 [R, d], qkv, attention output, MLP), a kv group's attention
// scratch and the RoPE tables over T. Per unit of the round, alive from its labels to the
// round's end: its residual stream [R, d] (the batch's X) and its documents' estimator
// buffers (se_doc: label indices [sets, P] int64, a [P, n] f32, q [P, n] int64, hq [P, limbs]
// int64), P counted as if the unit were one document of R tokens (its documents have fewer);
// with folds, the same buffers again for the document's labels in its fold.
static int64_t act_bytes(const model_config *c, int T, int R, int bins, int n_sets, int n_max, int folds, int units) {
    int64_t Rd = (int64_t)R * c->d, D = c->head_dim, H = c->n_heads, KV = c->n_kv_heads;
    kern_att_shape as = {T, (int)H, (int)KV, (int)D, c->sliding_window};
    int64_t arena = 3 * Rd + R * (H + 2 * KV) * D + R * H * D + (int64_t)kern_attention_scratch(&as) +
                    (int64_t)R * (c->gated_mlp ? 2 : 1) * c->d_ff + (int64_t)T * (c->rot_dim + 1);
    int64_t P = R - 2 * n_max + 1 > 0 ? R - 2 * n_max + 1 : 0;
    int64_t doc = 8 * P * n_sets + 12 * P * bins + 8 * P * SE_COND_LIMBS;
    int64_t fold = folds ? 12 * P * bins + 8 * P * (SE_MAX_SETS + SE_COND_LIMBS) : 0;
    return 4 * arena + units * (4 * Rd + doc + fold);
}

// Tracked hidden states and the blocks the forward pass runs (it stops at the last tracked).
static int tracked_layers(const job *j, const model_config *c, const char *name, int *tracked, int *run, ibc_err *err) {
    int L = c->n_layers, last = 0;
    *tracked = 0;
    if (j->all_layers) { *tracked = L + 1; *run = L; return 0; }
    char *seen = xcalloc((size_t)L + 1, 1);
    for (int i = 0; i < j->n_layers_sel; i++) {
        int l = j->layers[i];
        if (l > L) {
            free(seen);
            return ibc_fail(err, IBC_EINPUT, "%s: layers: index %d past the %d hidden states of checkpoint %s", j->file, l, L + 1, name);
        }
        *tracked += !seen[l];
        seen[l] = 1;
        if (l > last) last = l;
    }
    free(seen);
    *run = last; // index l needs blocks 1..l; index L is the last block plus the final norm
    return 0;
}

// Safetensors headers: bytes mapped, elements, and the stored dtype ("mixed" if several).
static int read_headers(const char *dir, plan_ckpt *pc, ibc_err *err) {
    st_set st;
    int rc = st_set_open(dir, &st, err); // maps and validates; no tensor byte is read
    if (rc) return rc;
    const char *dt = NULL;
    for (int f = 0; f < st.nfiles; f++) {
        pc->mapped += (int64_t)st.files[f].map_len;
        for (int i = 0; i < st.files[f].n; i++) {
            const st_tensor *t = &st.files[f].tensors[i];
            const char *n = st_dtype_name(t->dtype);
            pc->params += t->numel;
            dt = !dt || !strcmp(dt, n) ? n : "mixed";
        }
    }
    snprintf(pc->dtype, sizeof pc->dtype, "%s", dt ? dt : "?");
    st_set_free(&st);
    return 0;
}

int plan_checkpoint(const job *j, const plan_labels *pl, const plan_layout *lay, const char *name,
                    const char *dir, plan_ckpt *pc, ibc_err *err) {
    memset(pc, 0, sizeof *pc);
    snprintf(pc->name, sizeof pc->name, "%s", name);
    char path[IBC_PATH_NAME_MAX];
    model_config c;
    int rc = io_join(path, sizeof path, dir, "config.json", err);
    if (rc == 0) rc = config_load(path, &c, err);
    if (rc == 0) rc = read_headers(dir, pc, err);
    if (rc == 0) rc = tracked_layers(j, &c, name, &pc->tracked, &pc->layers_run, err);
    int64_t scratch = 0; // model.c's own rule: what is not mapped in place (BF16/F16, q k v apart, NeoX's QKV)
    if (rc == 0) rc = model_scratch_floats(dir, &scratch, err);
    if (rc) return rc;
    snprintf(pc->arch, sizeof pc->arch, "%s", config_arch_name(c.arch));
    pc->L = c.n_layers;
    pc->d = c.d;
    pc->layer_scratch = 4 * scratch * (lay->threads > 1 ? 2 : 1); // threads overlap two layers (model.c batch_run)
    pc->act_thread = act_bytes(&c, pl->T_max, pl->R_max, j->bins, pl->n_sets, max_order(j->orders), pl->F > 0, j->round_units);
    pc->K = j->anchors[0] ? 1 : j->n_seeds;
    pc->bins = j->bins;
    pc->row_bytes = (int64_t)pc->K * pc->tracked * j->bins * 8; // C_x [K x tracked, n] int64
    pc->rows_min = pl->rows;
    double sent_max = 0;
    for (int r = 0; r < lay->P; r++) {
        int64_t k = pl->rows_rank[r];
        if (k > pc->rows_max) pc->rows_max = k;
        if (k < pc->rows_min) pc->rows_min = k;
        double sent = (pl->touch_total - pl->touch_owned[r]) * (double)(pc->row_bytes + 8); // + label index
        if (sent > sent_max) sent_max = sent;
    }
    for (int r = 0; pl->F && r < lay->P; r++)
        pc->fold_rows_max = pl->fold_rows_rank[r] > pc->fold_rows_max ? pl->fold_rows_rank[r] : pc->fold_rows_max;
    pc->fold_bytes = pl->fold_index_bytes + pc->fold_rows_max * pc->row_bytes;
    pc->rows_mean = (double)pl->rows / lay->P;
    pc->rows_bytes_max = pc->rows_max * pc->row_bytes;
    pc->sent_max = (int64_t)ceil(sent_max);
    // The outbox is exchanged before a round that could take it past exchange_mb, so it holds
    // up to exchange_mb, or one round's growth when a round alone adds more (at paper scale a
    // round of 4 units per thread touches tens of thousands of rows); with folds each fold's
    // outbox is counted as large as the whole corpus's.
    pc->round_growth = pl->round_rows * (pc->row_bytes + 8) * (pl->F ? 2 : 1);
    pc->round_bytes = pc->sent_max < lay->exchange_bytes ? pc->sent_max : lay->exchange_bytes;
    if (pc->round_growth > pc->round_bytes) pc->round_bytes = pc->round_growth;
    pc->rounds = pc->sent_max ? (pc->sent_max + lay->exchange_bytes - 1) / lay->exchange_bytes : 0;
    if (pc->round_growth > lay->exchange_bytes) pc->rounds = pl->rounds_max; // an exchange after every round
    // The outbox (up to a round), its packed copy being sent, and the receive buffer: the
    // rehearsal (docs/scaling.md) measured the peak with all three alive.
    pc->exch_buffers = 3 * pc->round_bytes;
    pc->other = pl->corpus_bytes + (1 + pl->F) * pc->row_bytes; // the corpus, and the global counts C (each fold's too)
    pc->flops = plan_forward_flops(&c, pc->layers_run, pl->sum_T, pl->sum_tri);
    pc->per_rank = pc->layer_scratch + (int64_t)lay->threads * pc->act_thread + pl->index_bytes + pc->rows_bytes_max +
                   pc->fold_bytes + pc->exch_buffers + pc->other;
    pc->per_node = pc->mapped + (int64_t)lay->ranks_per_node * pc->per_rank;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Printing: one quantity per line, "key value unit (human)" so that scripts can read it

static void line(FILE *f, const char *key, int64_t bytes, const char *note) {
    fprintf(f, "  %-18s %15lld B  %10.1f MiB  %s\n", key, (long long)bytes, bytes / 1048576.0, note);
}

void plan_print_labels(FILE *f, const job *j, const plan_labels *pl) {
    fprintf(f, "corpus: %lld documents counted, %lld tokens, %lld counted positions, longest %d tokens\n",
            (long long)pl->documents, (long long)pl->tokens, (long long)pl->positions, pl->T_max);
    fprintf(f, "label sets (every rank holds the index; rows live on their owner), min_count %lld:\n",
            (long long)j->min_count);
    fprintf(f, "  %-5s %12s %12s %9s %12s\n", "set", "labels", "singletons", "single%", "rows");
    int64_t labels = 0;
    for (int s = 0; s < pl->n_sets; s++) {
        const plan_set *p = &pl->sets[s];
        fprintf(f, "  %-5s %12lld %12lld %9.2f %12lld\n", p->name, (long long)p->labels, (long long)p->singletons,
                p->labels ? 100.0 * p->singletons / p->labels : 0.0, (long long)p->rows);
        labels += p->labels;
    }
    fprintf(f, "  %-5s %12lld %12s %9s %12lld\n", "total", (long long)labels, "", "", (long long)pl->rows);
    int64_t mx = 0, mn = pl->rows;
    for (int r = 0; r < pl->P; r++) {
        mx = pl->rows_rank[r] > mx ? pl->rows_rank[r] : mx;
        mn = pl->rows_rank[r] < mn ? pl->rows_rank[r] : mn;
    }
    fprintf(f, "rows_per_rank %d ranks: total %lld max %lld min %lld mean %.1f imbalance %.4f\n", pl->P,
            (long long)pl->rows, (long long)mx, (long long)mn, (double)pl->rows / pl->P,
            pl->rows ? mx / ((double)pl->rows / pl->P) : 1.0);
    fprintf(f, "rank_rows");
    for (int r = 0; r < pl->P; r++) fprintf(f, " %lld", (long long)pl->rows_rank[r]);
    fprintf(f, "\n");
}

void plan_print_ckpt(FILE *f, const plan_layout *lay, const plan_labels *pl, const plan_ckpt *pc) {
    char note[256];
    fprintf(f, "checkpoint %s: %s, %d layers, d %d, %s, %lld parameters; %d hidden states tracked, %d blocks run\n",
            pc->name, pc->arch, pc->L, pc->d, pc->dtype, (long long)pc->params, pc->tracked, pc->layers_run);
    line(f, "mapped_weights", pc->mapped, "per node (page cache, shared by its ranks)");
    line(f, "layer_scratch", pc->layer_scratch, !pc->layer_scratch ? "per rank (F32 used from the map)"
                                   : lay->threads > 1 ? "per rank (two layers in f32: threads overlap them)"
                                                      : "per rank (one layer in f32)");
    snprintf(note, sizeof note, "per thread (a round of %d units of up to %d rows, longest document %d tokens), x %d threads",
             pl->round_units, pl->R_max, pl->T_max, lay->threads);
    line(f, "activations", pc->act_thread, note);
    line(f, "label_index", pl->index_bytes, "per rank (every label of every set)");
    snprintf(note, sizeof note, "busiest rank: %lld rows x %lld B (mean %.1f rows, min %lld; %d anchor set%s x %d layers x %d bins x 8 B)",
             (long long)pc->rows_max, (long long)pc->row_bytes, pc->rows_mean, (long long)pc->rows_min, pc->K,
             pc->K > 1 ? "s" : "", pc->tracked, pc->bins);
    line(f, "rows", pc->rows_bytes_max, note);
    if (pl->F) {
        snprintf(note, sizeof note, "per rank: %d folds' label indices + busiest rank's %lld fold rows (%lld in all)", pl->F,
                 (long long)pc->fold_rows_max, (long long)pl->fold_rows);
        line(f, "folds", pc->fold_bytes, note);
    }
    snprintf(note, sizeof note, "busiest sender, expected (upper estimate), in %lld exchange(s)", (long long)pc->rounds);
    line(f, "exchange_sent", pc->sent_max, note);
    snprintf(note, sizeof note, "the most one round (%d units per thread%s) adds to a rank's outbox: %lld rows",
             pl->round_units, pl->P > 1 ? ", and one taken over" : "", (long long)pl->round_rows);
    line(f, "outbox_round", pc->round_growth, note);
    line(f, "exchange_round", pc->round_bytes,
         pc->round_growth > lay->exchange_bytes ? "per rank per exchange: one round's growth, more than exchange_mb (an exchange every round)"
                                                : "per rank per exchange (<= exchange_mb)");
    line(f, "exchange_buffers", pc->exch_buffers, "per rank (outbox + its packed copy + receive)");
    line(f, "corpus_counts", pc->other, "per rank (texts, ids, global counts)");
    line(f, "total_per_rank", pc->per_rank, "private, busiest rank");
    snprintf(note, sizeof note, "mapped + %d ranks x per rank", lay->ranks_per_node);
    line(f, "total_per_node", pc->per_node, note);
    fprintf(f, "  %-18s %15.6g FLOP  %10.1f GFLOP  per checkpoint (all documents)\n", "forward", pc->flops, pc->flops / 1e9);
}

// ---------------------------------------------------------------------------------------------
// Memory limits

// First integer in a file, or -1 (absent, "max", unreadable).
static int64_t read_int(const char *path) {
    FILE *f = fopen(path, "r");
    long long v = -1;
    if (f && fscanf(f, "%lld", &v) != 1) v = -1;
    if (f) fclose(f);
    return v;
}

// The smallest limit file of cgroup path p and its parents under base (v1 "unlimited" is
// a huge number: anything from 2^60 up counts as none).
static int64_t cgroup_walk(const char *base, char *p, const char *file) {
    int64_t best = -1;
    for (;;) {
        char path[IBC_PATH_NAME_MAX];
        snprintf(path, sizeof path, "%s%s/%s", base, strcmp(p, "/") ? p : "", file);
        int64_t v = read_int(path);
        if (v > 0 && v < (1LL << 60) && (best < 0 || v < best)) best = v;
        char *s = strrchr(p, '/');
        if (!s || s == p) { if (!strcmp(p, "/")) break; strcpy(p, "/"); continue; }
        *s = 0;
    }
    return best;
}

static int64_t cgroup_limit(void) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    char ln[IBC_PATH_MAX];
    int64_t best = -1;
    while (f && fgets(ln, sizeof ln, f)) {
        ln[strcspn(ln, "\n")] = 0;
        char *c1 = strchr(ln, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        int64_t v = -1;
        if (!strcmp(ln, "0") && c1[1] == 0) { // cgroup v2: "0::/path"
            v = cgroup_walk(access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/unified",
                            c2 + 1, "memory.max");
        } else if (strstr(c1 + 1, "memory")) { // v1: "N:memory:/path"
            v = cgroup_walk("/sys/fs/cgroup/memory", c2 + 1, "memory.limit_in_bytes");
        }
        if (v > 0 && (best < 0 || v < best)) best = v;
    }
    if (f) fclose(f);
    return best;
}

static int64_t env_mb(const char *name) {
    const char *v = getenv(name);
    char *end;
    long long x = v ? strtoll(v, &end, 10) : -1;
    return v && end != v && x > 0 ? (int64_t)x * 1048576 : -1;
}

int64_t plan_mem_limit(char *source, size_t cap) {
    int64_t best = -1, v;
    snprintf(source, cap, "unknown");
    if ((v = cgroup_limit()) > 0) best = v, snprintf(source, cap, "cgroup memory limit");
    if ((v = env_mb("SLURM_MEM_PER_NODE")) > 0 && (best < 0 || v < best)) best = v, snprintf(source, cap, "SLURM_MEM_PER_NODE");
    const char *cpus = getenv("SLURM_CPUS_ON_NODE");
    long ncpu = cpus ? atol(cpus) : sysconf(_SC_NPROCESSORS_ONLN);
    if ((v = env_mb("SLURM_MEM_PER_CPU")) > 0 && ncpu > 0 && (best < 0 || v * ncpu < best))
        best = v * ncpu, snprintf(source, cap, "SLURM_MEM_PER_CPU x %ld CPUs", ncpu);
    if (best > 0) return best;
    FILE *f = fopen("/proc/meminfo", "r");
    char ln[256];
    long long kb;
    while (f && fgets(ln, sizeof ln, f))
        if (sscanf(ln, "MemAvailable: %lld kB", &kb) == 1) best = kb * 1024, snprintf(source, cap, "MemAvailable");
    if (f) fclose(f);
    return best > 0 ? best : 0;
}

// ---------------------------------------------------------------------------------------------
// The fit check of `ibc run`

// "12.3 GiB" or "456.7 MiB" into buf[32].
static const char *human(int64_t bytes, char *buf) {
    double g = bytes / 1073741824.0;
    snprintf(buf, 32, g >= 1 ? "%.1f GiB" : "%.1f MiB", g >= 1 ? g : bytes / 1048576.0);
    return buf;
}

int plan_fit_check(const job *j, const corpus *c, int only, ibc_err *err) {
    int P = dist_size(), local = dist_local_size();
    plan_layout lay = {P, (P + local - 1) / local, omp_get_max_threads(), local, j->exchange_mb * 1048576};
    plan_labels pl;
    plan_ckpt worst = {0}, pc;
    int rc = plan_labels_count(j, c, P, lay.threads, &pl, err);
    for (int k = 0; rc == 0 && k < j->n_ckpts; k++) {
        if (only >= 0 && k != only) continue;
        ibc_err ignore = {0}; // a checkpoint that cannot be read fails at its own load, as today
        if (plan_checkpoint(j, &pl, &lay, j->ckpts[k].name, j->ckpts[k].path, &pc, &ignore) == 0 && pc.per_node > worst.per_node)
            worst = pc;
    }
    char src[96], need[32], per[32], map[32], lim[32];
    int64_t limit = plan_mem_limit(src, sizeof src);
    if (rc == 0 && limit > 0 && worst.per_node > limit)
        rc = ibc_fail(err, IBC_EINPUT,
                      "%s: the job cannot fit: checkpoint %s needs %s on a node (%d ranks x %s + %s mapped weights) but "
                      "may use %s (%s); levers: more ranks (rows divide by ranks: %lld rows, %lld on the busiest of %d), "
                      "fewer hidden states (`layers =`, %d tracked), `min_count` (rarer labels share one row), fewer "
                      "ranks per node, fewer threads per rank or `round_units` (a round's outbox grows with them); `ibc plan` shows the details",
                      j->file, worst.name, human(worst.per_node, need), local, human(worst.per_rank, per),
                      human(worst.mapped, map), human(limit, lim), src, (long long)pl.rows, (long long)worst.rows_max, P,
                      worst.tracked);
    plan_labels_free(&pl);
    if (dist_any(rc != 0) && rc == 0)
        rc = ibc_fail(err, IBC_EINPUT, "%s: the job cannot fit on another rank's node (its limit is lower); levers: more "
                      "ranks, `layers =`, `min_count`, fewer ranks per node; `ibc plan` shows the details", j->file);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// `ibc plan`

// Replaces every text document's ids by those of tokenizer text tt (the file at path).
static int tokenize_all(const job *j, corpus *c, const char *tt, size_t len, const char *path, ibc_err *err) {
    tokenizer *t;
    int rc = tok_parse(tt, len, path, &t, err);
    for (int64_t i = 0; rc == 0 && i < c->n; i++) {
        corpus_doc *d = &c->docs[i];
        free(d->ids);
        d->ids = NULL;
        d->n_ids = 0;
        rc = tok_encode(t, d->text, strlen(d->text), j->add_special, &d->ids, &d->n_ids, err);
    }
    if (rc == 0) tok_free(t);
    return rc;
}

// Ids for checkpoint k: tokenises again only when its tokenizer file differs from *cur's.
static int ids_for(const job *j, corpus *c, int k, char **cur, size_t *cur_len, int *changed, ibc_err *err) {
    *changed = *cur == NULL;
    if (!c->n || !c->docs[0].text) { // pre-tokenized: the same ids for every checkpoint
        if (!*cur) *cur = xstrdup("");
        return 0;
    }
    char path[IBC_PATH_NAME_MAX], *text;
    size_t len;
    int rc = j->tokenizer[0] ? (snprintf(path, sizeof path, "%s", j->tokenizer), 0)
                             : io_join(path, sizeof path, j->ckpts[k].path, "tokenizer.json", err);
    if (rc == 0) rc = io_read_all(path, &text, &len, err);
    if (rc) return rc;
    if (*cur && len == *cur_len && !memcmp(text, *cur, len)) { free(text); return 0; }
    rc = tokenize_all(j, c, text, len, path, err);
    free(*cur);
    *cur = text;
    *cur_len = len;
    *changed = 1;
    return rc;
}

int plan_command(const job *j, const plan_layout *lay, FILE *out, ibc_err *err) {
    corpus c = {0};
    int rc = corpus_read(j, &c, err);
    if (rc) return rc;
    fprintf(out, "ibc plan: job %s: %d ranks on %d nodes (%d ranks on the busiest node), %d threads per rank, "
            "exchange_mb %lld, bins %d\n", j->name, lay->P, lay->nodes, lay->ranks_per_node, lay->threads,
            (long long)(lay->exchange_bytes / 1048576), j->bins);
    plan_labels pl = {0};
    char *cur = NULL;
    size_t cur_len = 0;
    for (int k = 0; rc == 0 && k < j->n_ckpts; k++) {
        int changed;
        plan_ckpt pc;
        rc = ids_for(j, &c, k, &cur, &cur_len, &changed, err);
        if (rc == 0 && changed) {
            plan_labels_free(&pl);
            rc = plan_labels_count(j, &c, lay->P, lay->threads, &pl, err);
            if (rc == 0 && !pl.documents)
                rc = ibc_fail(err, IBC_EINPUT, "%s: no document has a countable position (each needs at least %d tokens)",
                              c.source[0] ? c.source : j->corpus, 2 * max_order(j->orders));
            if (rc == 0) plan_print_labels(out, j, &pl);
        }
        if (rc == 0) rc = plan_checkpoint(j, &pl, lay, j->ckpts[k].name, j->ckpts[k].path, &pc, err);
        if (rc == 0) plan_print_ckpt(out, lay, &pl, &pc);
    }
    free(cur);
    plan_labels_free(&pl);
    corpus_free(&c);
    return rc;
}
