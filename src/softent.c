#include "ibc/softent.h"

#include <cblas.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_roots.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ibc/mem.h"
#include "ibc/npy.h"
#include "ibc/owner.h"
#include "ibc/rng.h"
#include "lanes.h"

// ---------------------------------------------------------------------------------------------
// Anchors and temperature (method.md §2)

void se_anchors(int n, int d, uint64_t seed, float *W) {
    rng r;
    rng_seed(&r, seed);
    double *row = xmalloc(sizeof(double) * (size_t)d);
    for (int i = 0; i < n; i++) {
        double ss = 0;
        for (int j = 0; j < d; j++) {
            row[j] = rng_normal(&r);
            ss += row[j] * row[j];
        }
        double inv = 1.0 / sqrt(ss);
        for (int j = 0; j < d; j++) W[(size_t)i * d + j] = (float)(row[j] * inv);
    }
    free(row);
}

int se_anchors_load(const char *path, int *n, int *d, float **W, ibc_err *err) {
    npy_array a;
    int rc = npy_read(path, &a, err);
    if (rc) return rc;
    if (a.ndim != 2 || a.shape[0] < 2 || a.shape[1] < 1 || (*n && a.shape[0] != *n) || (*d && a.shape[1] != *d)) {
        rc = ibc_fail(err, IBC_EINPUT, "%s: anchors have shape [%lld, %lld], expected [%d, %d]", path,
                      (long long)a.shape[0], a.ndim > 1 ? (long long)a.shape[1] : 0LL, *n, *d);
        npy_free(&a);
        return rc;
    }
    for (int64_t i = 0; i < a.shape[0]; i++) {
        double ss = 0;
        for (int64_t j = 0; j < a.shape[1]; j++) ss += (double)a.data[i * a.shape[1] + j] * a.data[i * a.shape[1] + j];
        if (!(fabs(sqrt(ss) - 1.0) <= 1e-3)) {
            rc = ibc_fail(err, IBC_EINPUT, "%s: anchor row %lld has norm %g, not 1", path, (long long)i, sqrt(ss));
            npy_free(&a);
            return rc;
        }
    }
    *n = (int)a.shape[0];
    *d = (int)a.shape[1];
    *W = a.data;
    return 0;
}

double se_eps_leading(int n, int d) { return 1.0 / sqrt(2.0 * d * log((double)n)); }

typedef struct { int n, d; } eps_ctx;

// KL_lb(eps) - ln n, with kappa = 1/eps (method.md §2):
//   G(a, b, k) = k / (a + sqrt(k^2 + b^2)), PhiPlus = r - nu + nu ln((d-2)/(nu + r)),
//   nu = d/2 - 1, r = sqrt(kappa^2 + nu^2), KL_lb = G(d/2, d/2, kappa)/eps - PhiPlus.
static double kl_gap(double eps, void *p) {
    const eps_ctx *c = p;
    double d = c->d, kappa = 1.0 / eps, half = d / 2.0, nu = half - 1.0;
    double G = kappa / (half + sqrt(kappa * kappa + half * half));
    double r = sqrt(kappa * kappa + nu * nu);
    double phi = r - nu + nu * log((d - 2.0) / (nu + r));
    return G / eps - phi - log((double)c->n);
}

int se_eps_bound(int n, int d, double *eps, ibc_err *err) {
    if (d <= 2 || n < 2)
        return ibc_fail(err, IBC_EINPUT, "temperature bound needs d > 2 and n >= 2 (d = %d, n = %d)", d, n);
    eps_ctx c = {n, d};
    gsl_function f = {kl_gap, &c};
    double lo = 1e-5, hi = 1.0;
    if (!(kl_gap(lo, &c) > 0 && kl_gap(hi, &c) < 0))
        return ibc_fail(err, IBC_EINPUT, "temperature bound: no root in [1e-5, 1] for d = %d, n = %d", d, n);
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    gsl_root_fsolver *s = gsl_root_fsolver_alloc(gsl_root_fsolver_brent);
    gsl_root_fsolver_set(s, &f, lo, hi);
    int status = GSL_CONTINUE;
    for (int it = 0; it < 200 && status == GSL_CONTINUE; it++) {
        gsl_root_fsolver_iterate(s);
        status = gsl_root_test_interval(gsl_root_fsolver_x_lower(s), gsl_root_fsolver_x_upper(s), 1e-12, 0);
    }
    *eps = gsl_root_fsolver_root(s);
    gsl_root_fsolver_free(s);
    gsl_set_error_handler(old);
    return status == GSL_SUCCESS ? 0 : ibc_fail(err, IBC_EINPUT, "temperature bound did not converge");
}

// ---------------------------------------------------------------------------------------------
// Soft assignment and entropy (method.md §3-§4)

// Squared norm with 8 independent f32 partial sums: vectorises, and the order is fixed.
static float sqnorm(const float *z, int d) {
    float p[8] = {0};
    int j = 0;
    for (; j + 8 <= d; j += 8)
        for (int k = 0; k < 8; k++) p[k] += z[j + k] * z[j + k];
    for (; j < d; j++) p[0] += z[j] * z[j];
    return ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7]));
}

// One row of se_assign: r[n] = softmax(r * scale) in f32, the maximum subtracted first, the
// sum in fixed lanes (lanes.h: the same bits on any layout), then times its reciprocal.
LANES_WIDE static void assign_row(float *r, int n, float scale) {
#pragma omp simd
    for (int j = 0; j < n; j++) r[j] *= scale;
    float mx = lanes_max(r, n);
#pragma omp simd
    for (int j = 0; j < n; j++) r[j] = expf(r[j] - mx);
    float inv = 1.0f / lanes_sum(r, n);
#pragma omp simd
    for (int j = 0; j < n; j++) r[j] *= inv;
}

void se_assign(const float *W, int n, int d, double eps, const float *h, int P, int ldh, float *a) {
    // s = z W^T for the raw rows; dividing row i by ||z_i|| afterwards equals W zbar.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, n, d, 1.0f, h, ldh, W, d, 0.0f, a, n);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < P; i++) {
        float *r = a + (size_t)i * n, ss = sqnorm(h + (size_t)i * ldh, d);
        if (ss == 0) { // a zero vector has no direction: spread its mass evenly
            for (int j = 0; j < n; j++) r[j] = 1.0f / (float)n;
            continue;
        }
        assign_row(r, n, (float)(1.0 / (sqrt((double)ss) * eps)));
    }
}

// -sum p log p over the bins, in LANES_D lanes of vector logs (a position's entropy, for every
// position of every layer in precount mode). The last group is padded with p = 1, whose term is
// exactly 0, so every bin goes through the same vector log.
LANES_WIDE double se_entropy_fix(const int64_t *c, int n) {
    int64_t tot = 0;
    for (int j = 0; j < n; j++) tot += c[j];
    if (tot <= 0) return 0;
    double S = (double)tot, acc[LANES_D] = {0}, p[LANES_D], q[LANES_D];
    for (int j = 0; j < n; j += LANES_D) {
        for (int l = 0; l < LANES_D; l++) p[l] = j + l < n ? (double)c[j + l] : S;
#pragma omp simd
        for (int l = 0; l < LANES_D; l++) {
            p[l] /= S;
            q[l] = p[l] > 1e-9 ? p[l] : 1e-9; // ln(max(p, 1e-9)), method.md
        }
#pragma omp simd
        for (int l = 0; l < LANES_D; l++) acc[l] -= p[l] * log(q[l]);
    }
    return lanes_dfold(acc) / log((double)n);
}

// ---------------------------------------------------------------------------------------------
// Label tables: hmap keyed by the whole tuple (16 bytes), N_x its payload

// Index of label k in t; if absent, inserts it (N_x 0, no row) when `insert`, else returns -2.
// -1 when the table holds HMAP_MAX labels.
static int64_t table_find(se_table *t, const se_label *k, int insert) {
    if (!insert) {
        int64_t i = hmap_find(&t->map, k, sizeof *k);
        return i >= 0 ? i : -2;
    }
    int added;
    int64_t i = hmap_put(&t->map, k, sizeof *k, &added);
    if (i < 0 || !added) return i;
    if ((size_t)i + 1 > t->cap) xgrow(t->row, t->cap, (size_t)i + 1);
    t->row[i] = -1;
    t->n_labels = t->map.n;
    t->keys = (const se_label *)t->map.keys;
    t->Nx = t->map.val;
    return i;
}

// Gives label x a zeroed C_x row of `len` counts. Returns 0: allocation follows ibc/mem.h.
static int table_add_row(se_table *t, int64_t x, int len) {
    if (t->n_rows == t->cap_rows) {
        t->cap_rows = t->cap_rows ? 2 * t->cap_rows : 256;
        t->Cx = xrealloc(t->Cx, sizeof(int64_t) * (size_t)t->cap_rows * (size_t)len);
    }
    t->row[x] = t->n_rows++;
    memset(t->Cx + t->row[x] * len, 0, sizeof(int64_t) * (size_t)len);
    return 0;
}

static void table_free(se_table *t) {
    hmap_free(&t->map);
    free(t->row); free(t->Cx); free(t->ob_label); free(t->ob_Cx);
    memset(t, 0, sizeof *t);
}

// A non-negative double as exact limbs: bits 0-31 and 32-63 of its fraction in units of
// 2^-64 (truncated), and its integer part. Summing limbs is integer addition.
static void fix_limbs(double v, int64_t *out) {
    double ip = floor(v), frac = (v - ip) * 0x1p64; // v - ip is exact
    uint64_t f = frac >= 0x1p64 ? UINT64_MAX : (uint64_t)frac;
    out[0] = (int64_t)(f & 0xffffffffu);
    out[1] = (int64_t)(f >> 32);
    out[2] = (int64_t)ip;
}

// The value of one limb triple: lo * 2^-64 + mid * 2^-32 + hi.
static double limbs_value(const int64_t *c) {
    return (double)c[2] + (double)c[1] * 0x1p-32 + (double)c[0] * 0x1p-64;
}

// ---------------------------------------------------------------------------------------------
// Accumulator

int se_acc_init(se_acc *acc, int n, int d, int n_layers, unsigned orders, int pref, ibc_err *err) {
    memset(acc, 0, sizeof *acc);
    if (n < 2 || d < 1 || n_layers < 1 || (orders >> SE_MAX_ORDER))
        return ibc_fail(err, IBC_EINPUT, "estimator: bad sizes (bins %d, d %d, layers %d, orders 0x%x)", n, d, n_layers, orders);
    acc->n = n;
    acc->d = d;
    acc->n_layers = n_layers;
    acc->n_max = 1;
    for (int k = 1; k <= SE_MAX_ORDER; k++) {
        if (!(orders & (1u << (k - 1)))) continue;
        acc->n_max = k;
        se_set *x = &acc->sets[acc->n_sets++], *y = &acc->sets[acc->n_sets++];
        *x = (se_set){SE_INPUT, k, ""};
        *y = (se_set){SE_OUTPUT, k, ""};
        memcpy(x->name, (char[3]){'X', (char)('0' + k), 0}, 3); // "X1".."X4"
        memcpy(y->name, (char[3]){'Y', (char)('0' + k), 0}, 3);
    }
    if (pref) acc->sets[acc->n_sets++] = (se_set){SE_PREF, 1, "pref"};
    acc->nranks = 1;
    for (int s = 0; s < acc->n_sets; s++) {
        hmap_init(&acc->tables[s].map, sizeof(se_label), 1024);
        acc->tables[s].rare = -1;
    }
    acc->C = xcalloc((size_t)n_layers * n, sizeof(int64_t));
    acc->cond_direct = xcalloc((size_t)(acc->n_sets + 1) * n_layers * SE_COND_LIMBS, sizeof(int64_t));
    acc->locks = xmalloc(sizeof(omp_lock_t) * (size_t)n_layers);
    for (int l = 0; l < n_layers; l++) omp_init_lock(&acc->locks[l]);
    se_doc_init(&acc->doc);
    return 0;
}

void se_acc_free(se_acc *acc) {
    for (int s = 0; s < acc->n_sets; s++) table_free(&acc->tables[s]);
    free(acc->C); free(acc->cond_direct);
    for (int l = 0; acc->locks && l < acc->n_layers; l++) omp_destroy_lock(&acc->locks[l]);
    free(acc->locks);
    se_doc_free(&acc->doc);
    memset(acc, 0, sizeof *acc);
}

int se_set_index(const se_acc *acc, se_kind kind, int k) {
    for (int s = 0; s < acc->n_sets; s++)
        if (acc->sets[s].kind == kind && (kind == SE_PREF || acc->sets[s].k == k)) return s;
    return -1;
}

// Counted positions of a document of T tokens: t0 .. t0 + P - 1 (method.md §1).
static int positions(const se_acc *acc, int T, int *t0) {
    *t0 = acc->n_max - 1;
    int t1 = T - acc->n_max - 1;
    return t1 >= *t0 ? t1 - *t0 + 1 : 0;
}

static se_label label_at(const se_set *set, const int32_t *ids, int t, int pref_label) {
    se_label k = {{-1, -1, -1, -1}};
    if (set->kind == SE_PREF) k.key[0] = pref_label;
    else
        for (int j = 0; j < set->k; j++) // X_k: tok[t-k+1..t]; Y_k: tok[t+1..t+k]
            k.key[j] = set->kind == SE_INPUT ? ids[t - set->k + 1 + j] : ids[t + 1 + j];
    return k;
}

static int check_pref(const se_acc *acc, int pref_label, ibc_err *err) {
    if (se_set_index(acc, SE_PREF, 1) >= 0 && pref_label < 0)
        return ibc_fail(err, IBC_EINPUT, "estimator: a document without a preference label in a preference job");
    return 0;
}

int se_precount_doc(se_acc *acc, const int32_t *ids, int T, int pref_label, ibc_err *err) {
    int t0, P = positions(acc, T, &t0), rc;
    if (acc->precounted) return ibc_fail(err, IBC_EINPUT, "estimator: precount after se_precount_done");
    if (P == 0) return 0;
    if ((rc = check_pref(acc, pref_label, err))) return rc;
    for (int s = 0; s < acc->n_sets; s++)
        for (int p = 0; p < P; p++) {
            se_label k = label_at(&acc->sets[s], ids, t0 + p, pref_label);
            int64_t x = table_find(&acc->tables[s], &k, 1);
            if (x < 0) return ibc_fail(err, IBC_EINPUT, "estimator: label table %s is full (2^32 labels)", acc->sets[s].name);
            acc->tables[s].Nx[x]++;
        }
    return 0;
}

void se_acc_partition(se_acc *acc, int rank, int P) {
    acc->rank = rank;
    acc->nranks = P;
}

// Whether label x of set s keeps its row on this accumulator (owner.h, the rule `ibc plan` uses).
static int owned(const se_acc *acc, int s, int64_t x) {
    return acc->nranks <= 1 || owner_of_label(s, acc->tables[s].keys[x].key, acc->nranks) == acc->rank;
}

// One record on the wire (dist_exchange): set, label index, row [n_layers, n], all int64.
int64_t se_outbox_row_bytes(const se_acc *acc) { return (int64_t)sizeof(int64_t) * (2 + (int64_t)acc->n_layers * acc->n); }

int64_t se_outbox_bytes(const se_acc *acc) {
    int64_t rows = 0;
    for (int s = 0; s < acc->n_sets; s++) rows += acc->tables[s].ob_n;
    return rows * se_outbox_row_bytes(acc);
}

void se_outbox_reserve(se_acc *acc, int64_t positions) {
    size_t len = (size_t)acc->n_layers * acc->n;
    for (int s = 0; s < acc->n_sets; s++) {
        se_table *t = &acc->tables[s];
        size_t cap = t->ob_cap;
        xgrow(t->ob_label, t->ob_cap, (size_t)(t->ob_n + positions));
        if (t->ob_cap != cap) t->ob_Cx = xrealloc(t->ob_Cx, sizeof(int64_t) * len * t->ob_cap); // untouched until used
    }
}

void se_outbox_clear(se_acc *acc) {
    for (int s = 0; s < acc->n_sets; s++) {
        se_table *t = &acc->tables[s];
        for (int64_t k = 0; k < t->ob_n; k++) t->row[t->ob_label[k]] = -2;
        t->ob_n = 0;
    }
}

int se_acc_add_row(se_acc *acc, int s, int64_t x, const int64_t *row, ibc_err *err) {
    int len = acc->n_layers * acc->n;
    if (s < 0 || s >= acc->n_sets || x < 0 || x >= acc->tables[s].n_labels || acc->tables[s].row[x] < 0)
        return ibc_fail(err, IBC_EINPUT, "estimator: exchange: label %lld of set %d is not owned here", (long long)x, s);
    int64_t *d = acc->tables[s].Cx + acc->tables[s].row[x] * len;
    for (int j = 0; j < len; j++) d[j] += row[j];
    return 0;
}

int64_t se_acc_rows(const se_acc *acc) {
    int64_t rows = 0;
    for (int s = 0; s < acc->n_sets; s++) rows += acc->tables[s].n_rows;
    return rows;
}

// A precounted document's labels owned by other ranks: each index becomes the label whose
// row[] says where its sums go (rare's, for labels merged into "rare"), with an outbox row
// made (zeroed) on its first touch since the last exchange. One critical section per
// document: row[] entries of untouched remote labels and the outbox counters change only
// here, and never move a row another thread adds into (se_outbox_reserve sized the outbox).
static void doc_outbox(se_acc *acc, se_doc *doc) {
    size_t len = (size_t)acc->n_layers * acc->n;
#pragma omp critical(se_outbox)
    for (int s = 0; s < acc->n_sets; s++) {
        se_table *t = &acc->tables[s];
        for (int p = 0; p < doc->P; p++) {
            int64_t *x = &doc->idx[(size_t)s * doc->P + p];
            if (t->row[*x] > -2) continue; // owned, or a singleton
            int64_t y = t->Nx[*x] == 0 ? t->rare : *x;
            if (t->row[y] == -2) {
                if ((size_t)t->ob_n >= t->ob_cap) se_outbox_reserve(acc, 1); // only outside se_doc_add's threads
                memset(t->ob_Cx + (size_t)t->ob_n * len, 0, sizeof(int64_t) * len);
                t->ob_label[t->ob_n] = y;
                t->row[y] = -3 - t->ob_n++;
            }
            *x = y;
        }
    }
}

int se_precount_done(se_acc *acc, ibc_err *err) { return se_precount_done_min(acc, 0, err); }

int se_precount_done_min(se_acc *acc, int64_t min_count, ibc_err *err) {
    int len = acc->n_layers * acc->n;
    for (int s = 0; s < acc->n_sets; s++) {
        se_table *t = &acc->tables[s];
        int64_t rows = 0, rare = 0, n_rare = 0;
        for (int64_t x = 0; x < t->n_labels; x++)
            if (t->Nx[x] < min_count) rare += t->Nx[x], n_rare++;
        int64_t shared = -1;
        if (n_rare) { // one label for all rare ones; theirs point at its row and carry N_x = 0
            se_label k = {{-2, -2, -2, -2}};
            int64_t r = table_find(t, &k, 1);
            if (r < 0) return ibc_fail(err, IBC_EINPUT, "estimator: label table %s is full (2^32 labels)", acc->sets[s].name);
            t->Nx[r] = rare;
            shared = r;
        }
        // A row-holding label gets its row here only if this rank owns it (se_acc_partition).
        for (int64_t x = 0; x < t->n_labels; x++)
            t->row[x] = x == shared || t->Nx[x] < 2 || t->Nx[x] < min_count ? -1
                        : owned(acc, s, x) ? rows++ : -2;
        if (shared >= 0) {
            int64_t r = owned(acc, s, shared) ? rows++ : -2;
            t->row[shared] = r;
            t->rare = shared;
            for (int64_t x = 0; x < t->n_labels; x++)
                if (x != shared && t->Nx[x] < min_count) t->row[x] = r, t->Nx[x] = 0;
        }
        // Zeroed by writing, here, before any thread adds: calloc's pages would map the shared
        // zero page, and add_masses' first read-then-add to each page would then copy it and
        // flush the TLB of every CPU the process runs on, an interrupt per page to the other
        // threads (3% of a 1x2 SmolLM-135M job's samples, against 0.8% at 2x1).
        size_t bytes = sizeof(int64_t) * (size_t)(rows ? rows : 1) * len;
        t->Cx = memset(xmalloc(bytes), 0, bytes);
        t->n_rows = t->cap_rows = rows;
    }
    acc->precounted = 1;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Documents: per-thread scratch, shared exact counts

void se_doc_init(se_doc *doc) { memset(doc, 0, sizeof *doc); }

void se_doc_free(se_doc *doc) {
    free(doc->idx); free(doc->a); free(doc->q); free(doc->hq);
    memset(doc, 0, sizeof *doc);
}

// Room for P positions of n bins. Each buffer has its own type and allocation, so the int64
// arrays are aligned whatever P and n are (issue 11: once carved out of the float buffer).
static void doc_reserve(se_doc *doc, int P, int n) {
    if (P <= doc->cap_P && n == doc->n) return;
    se_doc_free(doc);
    doc->idx = xmalloc(sizeof(int64_t) * (size_t)P * SE_MAX_SETS); // [n_sets, P]
    doc->a = xmalloc(sizeof(float) * (size_t)P * n);               // [P, n]
    doc->q = xmalloc(sizeof(int64_t) * (size_t)P * n);             // [P, n]
    doc->hq = xmalloc(sizeof(int64_t) * (size_t)P * SE_COND_LIMBS); // [P, LIMBS]
    doc->cap_P = P;
    doc->n = n;
}

// The document's label indices (and, partitioned, its outbox rows); counts nothing.
static int doc_labels(se_acc *acc, se_doc *doc, const int32_t *ids, int T, int pref_label, ibc_err *err) {
    int t0, rc, len = acc->n_layers * acc->n, P = positions(acc, T, &t0);
    doc->P = 0;
    if (P == 0) return 0;
    if ((rc = check_pref(acc, pref_label, err))) return rc;
    doc_reserve(doc, P, acc->n);
    for (int s = 0; s < acc->n_sets; s++) {
        se_table *t = &acc->tables[s];
        for (int p = 0; p < P; p++) {
            se_label k = label_at(&acc->sets[s], ids, t0 + p, pref_label);
            int64_t x = table_find(t, &k, !acc->precounted); // precounted: a read-only lookup
            if (x == -2) return ibc_fail(err, IBC_EINPUT, "estimator: a document that was not precounted");
            if (x < 0 || (!acc->precounted && t->row[x] < 0 && table_add_row(t, x, len)))
                return ibc_fail(err, IBC_ESYS, "estimator: out of memory for label table %s", acc->sets[s].name);
            if (!acc->precounted) t->Nx[x]++;
            doc->idx[(size_t)s * P + p] = x;
        }
    }
    doc->P = P;
    if (acc->precounted && acc->nranks > 1) doc_outbox(acc, doc);
    return 0;
}

int se_doc_start(se_acc *acc, se_doc *doc, const int32_t *ids, int T, int pref_label, ibc_err *err) {
    int rc = doc_labels(acc, doc, ids, T, pref_label, err);
#pragma omp atomic
    acc->n_docs++;
    if (rc == 0 && doc->P == 0) {
#pragma omp atomic
        acc->n_skipped++;
    }
#pragma omp atomic
    acc->N += doc->P; // 0 unless its labels were found
    return rc;
}

int se_doc_resume(se_acc *acc, se_doc *doc, const int32_t *ids, int T, int pref_label, ibc_err *err) {
    if (!acc->precounted) return ibc_fail(err, IBC_EINPUT, "estimator: a document resumed on a streaming accumulator");
    return doc_labels(acc, doc, ids, T, pref_label, err);
}

// dst[n] += src[n]: integer sums, exact in any order, so vector adds (GCC 12's -O2 cost model
// leaves a loop over two pointers scalar; a clone per vector width does n / 8 adds on AVX-512).
LANES_WIDE static void add_masses(int64_t *restrict dst, const int64_t *restrict src, int n) {
#pragma omp simd
    for (int j = 0; j < n; j++) dst[j] += src[j];
}

// Masses q [P, n] (and singleton limbs hq [P, LIMBS]) of a document with doc's labels into
// the layer's shared counts. The caller holds the layer's lock: no other thread writes layer
// `layer` of C, of any C_x row or of cond_direct meanwhile. Integer sums: the order of
// documents does not matter.
static void doc_accumulate(se_acc *acc, const se_doc *doc, int layer, const int64_t *q, const int64_t *hq) {
    int n = acc->n, P = doc->P, len = acc->n_layers * n;
    // Each thread owns whole label sets (or the global counts): no two write one row. Inside
    // a document-parallel region this runs on the calling thread alone.
#pragma omp parallel for schedule(dynamic)
    for (int s = -1; s < acc->n_sets; s++) {
        const se_table *t = s < 0 ? NULL : &acc->tables[s];
        int64_t *direct = acc->cond_direct + ((size_t)(s < 0 ? 0 : s) * acc->n_layers + layer) * SE_COND_LIMBS;
        for (int p = 0; p < P; p++) {
            const int64_t *src = q + (size_t)p * n;
            int64_t *dst;
            if (s < 0) {
                dst = acc->C + (size_t)layer * n;
            } else {
                int64_t r = t->row[doc->idx[(size_t)s * P + p]];
                if (r == -1) { // precounted singleton: its whole term, N_x h(C_x) = h(q_t)
                    for (int k = 0; k < SE_COND_LIMBS; k++) direct[k] += hq[(size_t)p * SE_COND_LIMBS + k];
                    continue;
                }
                // an owned row, or the outbox row of a label owned by another rank (-3 - k)
                dst = (r >= 0 ? t->Cx + r * len : t->ob_Cx + (-3 - r) * len) + (size_t)layer * n;
            }
            add_masses(dst, src, n);
        }
    }
}

// Takes the layer's lock; a wait (another thread adds this layer) is counted and timed.
static void layer_lock(se_acc *acc, int layer) {
    if (omp_test_lock(&acc->locks[layer])) return;
    double t0 = omp_get_wtime();
    omp_set_lock(&acc->locks[layer]);
#pragma omp atomic
    acc->lock_waits++;
#pragma omp atomic
    acc->lock_wait_s += omp_get_wtime() - t0;
}

void se_doc_add(se_acc *acc, se_doc *doc, int layer, const float *W, double eps, const float *h, int T) {
    (void)T;
    int n = acc->n, P = doc->P;
    if (P == 0) return;
    int64_t *q = doc->q, *hq = doc->hq;
    // [P, n]: rows n_max-1 .. n_max-2+P of h [T, d]; the sgemm's shape depends on the document only
    se_assign(W, n, acc->d, eps, h + (size_t)(acc->n_max - 1) * acc->d, P, acc->d, doc->a);
#pragma omp parallel for schedule(static)
    for (int p = 0; p < P; p++) {
        for (int j = 0; j < n; j++) // Q32.32, rounded once: exact from here on
            q[(size_t)p * n + j] = (int64_t)((double)doc->a[(size_t)p * n + j] * SE_FIX_ONE + 0.5);
        if (acc->precounted) fix_limbs(se_entropy_fix(q + (size_t)p * n, n), hq + (size_t)p * SE_COND_LIMBS);
    }
    layer_lock(acc, layer);
    doc_accumulate(acc, doc, layer, q, hq);
    omp_unset_lock(&acc->locks[layer]);
}

void se_doc_add_masses(se_acc *acc, const se_doc *doc, int layer, const se_doc *src) {
    if (doc->P == 0) return;
    layer_lock(acc, layer);
    doc_accumulate(acc, doc, layer, src->q, src->hq); // same document: the same P positions
    omp_unset_lock(&acc->locks[layer]);
}

int se_doc_begin(se_acc *acc, const int32_t *ids, int T, int pref_label, ibc_err *err) {
    return se_doc_start(acc, &acc->doc, ids, T, pref_label, err);
}

void se_doc_layer(se_acc *acc, int layer, const float *W, double eps, const float *h, int T) {
    se_doc_add(acc, &acc->doc, layer, W, eps, h, T);
}

int se_acc_merge(se_acc *dst, const se_acc *src, ibc_err *err) {
    if (dst->n != src->n || dst->n_layers != src->n_layers || dst->n_sets != src->n_sets ||
        dst->precounted != src->precounted)
        return ibc_fail(err, IBC_EINPUT, "estimator: merging accumulators of different shapes or modes");
    int len = dst->n_layers * dst->n;
    for (int i = 0; i < len; i++) dst->C[i] += src->C[i];
    for (int i = 0; i < dst->n_sets * dst->n_layers * SE_COND_LIMBS; i++) dst->cond_direct[i] += src->cond_direct[i];
    dst->N += src->N;
    dst->n_docs += src->n_docs;
    dst->n_skipped += src->n_skipped;
    for (int s = 0; s < dst->n_sets; s++) {
        const se_table *st = &src->tables[s];
        se_table *dt = &dst->tables[s];
        for (int64_t x = 0; x < st->n_labels; x++) {
            if (st->row[x] < 0) continue; // precounted singleton: already in cond_direct
            if (src->precounted && st->Nx[x] == 0) continue; // merged into the rare label (min_count)
            int64_t i = table_find(dt, &st->keys[x], !dst->precounted);
            if (i == -2 || (i >= 0 && dst->precounted && dt->row[i] < 0))
                return ibc_fail(err, IBC_EINPUT, "estimator: merging accumulators precounted over different documents");
            if (i < 0 || (dt->row[i] < 0 && table_add_row(dt, i, len)))
                return ibc_fail(err, IBC_EINPUT, "estimator: label table %s is full (2^32 labels) merging", dst->sets[s].name);
            if (!dst->precounted) dt->Nx[i] += st->Nx[x]; // precounted N_x are global already
            int64_t *d = dt->Cx + dt->row[i] * len;
            const int64_t *c = st->Cx + st->row[x] * len;
            for (int j = 0; j < len; j++) d[j] += c[j];
        }
    }
    return 0;
}

void se_cond_sums(const se_acc *acc, int part, int nparts, int64_t *out) {
    int L = acc->n_layers, n = acc->n, len = L * n, m = L * SE_COND_LIMBS;
    if (part == 0) memcpy(out, acc->cond_direct, sizeof(int64_t) * (size_t)acc->n_sets * m);
    else memset(out, 0, sizeof(int64_t) * (size_t)acc->n_sets * m);
    for (int s = 0; s < acc->n_sets; s++) {
        const se_table *t = &acc->tables[s];
        int64_t *o = out + (size_t)s * m;
        // Integer sums are associative: any thread split gives the same bits.
#pragma omp parallel for schedule(static) reduction(+ : o[:m])
        for (int64_t x = part; x < t->n_labels; x += nparts) {
            if (t->row[x] < 0) continue;
            for (int l = 0; l < L; l++) {
                int64_t v[SE_COND_LIMBS];
                fix_limbs((double)t->Nx[x] * se_entropy_fix(t->Cx + t->row[x] * len + (size_t)l * n, n), v);
                for (int k = 0; k < SE_COND_LIMBS; k++) o[l * SE_COND_LIMBS + k] += v[k];
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Results

int se_result_from(se_result *r, int n, int n_layers, int n_sets, const int64_t *C, int64_t N,
                   const int64_t *cond, ibc_err *err) {
    (void)err; // kept in the contract: no failure is left since allocation failures end the job (mem.h)
    memset(r, 0, sizeof *r);
    r->n_layers = n_layers;
    r->n_sets = n_sets;
    r->N = N;
    r->H = xcalloc((size_t)n_layers, sizeof(double));
    r->HS = xcalloc((size_t)(n_sets ? n_sets : 1) * n_layers, sizeof(double));
    r->mi = xcalloc((size_t)(n_sets ? n_sets : 1) * n_layers, sizeof(double));
    for (int l = 0; l < n_layers; l++) {
        r->H[l] = se_entropy_fix(C + (size_t)l * n, n);
        for (int s = 0; s < n_sets; s++) {
            size_t i = (size_t)s * n_layers + l;
            r->HS[i] = N ? limbs_value(cond + i * SE_COND_LIMBS) / (double)N : 0; // sum_x (N_x/N) h(C_x)
            r->mi[i] = r->H[l] - r->HS[i];
        }
    }
    return 0;
}

int se_result_compute(const se_acc *acc, se_result *r, ibc_err *err) {
    int64_t *cond = xmalloc(sizeof(int64_t) * (size_t)(acc->n_sets ? acc->n_sets : 1) * acc->n_layers * SE_COND_LIMBS);
    se_cond_sums(acc, 0, 1, cond);
    int rc = se_result_from(r, acc->n, acc->n_layers, acc->n_sets, acc->C, acc->N, cond, err);
    free(cond);
    return rc;
}

void se_result_free(se_result *r) {
    free(r->H); free(r->HS); free(r->mi);
    memset(r, 0, sizeof *r);
}

void se_result_slice(const se_result *r, int first, int count, se_result *out) {
    int S = r->n_sets ? r->n_sets : 1;
    out->n_layers = count;
    out->n_sets = r->n_sets;
    out->N = r->N;
    out->H = xmalloc(sizeof(double) * (size_t)count);                 // [count]
    out->HS = xmalloc(sizeof(double) * (size_t)S * count);            // [n_sets, count]
    out->mi = xmalloc(sizeof(double) * (size_t)S * count);            // [n_sets, count]
    memcpy(out->H, r->H + first, sizeof(double) * (size_t)count);
    for (int k = 0; k < r->n_sets; k++) {
        memcpy(out->HS + (size_t)k * count, r->HS + (size_t)k * r->n_layers + first, sizeof(double) * (size_t)count);
        memcpy(out->mi + (size_t)k * count, r->mi + (size_t)k * r->n_layers + first, sizeof(double) * (size_t)count);
    }
}

void se_summarize(const se_acc *acc, const se_result *r, const int *layer_ids, se_summary *s) {
    int cnt = 0;
    double H = 0, mi[SE_MAX_SETS] = {0};
    for (int l = 0; l < r->n_layers; l++) {
        if (layer_ids[l] < 1) continue; // the embedding layer is reported, not averaged
        cnt++;
        H += r->H[l];
        for (int k = 0; k < r->n_sets; k++) mi[k] += r->mi[(size_t)k * r->n_layers + l];
    }
    s->H_mean = cnt ? H / cnt : NAN;
    s->pref_info = NAN;
    for (int k = 0; k <= SE_MAX_ORDER; k++) s->complexity[k] = s->expressivity[k] = s->optimality[k] = NAN;
    for (int k = 0; k < r->n_sets && cnt; k++) {
        const se_set *set = &acc->sets[k];
        double m = mi[k] / cnt;
        if (set->kind == SE_PREF) s->pref_info = m;
        else if (set->kind == SE_INPUT) s->complexity[set->k] = m;
        else s->expressivity[set->k] = m;
    }
    for (int k = 1; k <= SE_MAX_ORDER; k++) // ratio of the means (method.md §6)
        s->optimality[k] = s->expressivity[k] / s->complexity[k];
}

void se_summary_pack(const se_summary *s, double *v) {
    v[0] = s->H_mean;
    for (int k = 1; k <= SE_MAX_ORDER; k++) {
        v[k] = s->complexity[k];
        v[SE_MAX_ORDER + k] = s->expressivity[k];
        v[2 * SE_MAX_ORDER + k] = s->optimality[k];
    }
    v[3 * SE_MAX_ORDER + 1] = s->pref_info;
}

void se_summary_unpack(const double *v, se_summary *s) {
    s->H_mean = v[0];
    s->complexity[0] = s->expressivity[0] = s->optimality[0] = NAN; // orders count from 1
    for (int k = 1; k <= SE_MAX_ORDER; k++) {
        s->complexity[k] = v[k];
        s->expressivity[k] = v[SE_MAX_ORDER + k];
        s->optimality[k] = v[2 * SE_MAX_ORDER + k];
    }
    s->pref_info = v[3 * SE_MAX_ORDER + 1];
}

void se_mean_sd(const double *x, int n, int stride, double *mean, double *sd) {
    double m = x[0]; // one value: itself, bit for bit
    for (int i = 1; i < n; i++) m += x[(size_t)i * stride];
    if (n > 1) m /= n;
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (x[(size_t)i * stride] - m) * (x[(size_t)i * stride] - m);
    *mean = m;
    *sd = n > 1 && isfinite(m) ? sqrt(ss / (n - 1)) : NAN; // the sample sd: n - 1
}

void se_summary_mean_sd(const se_summary *s, int n, se_summary *mean, se_summary *sd) {
    double *v = xmalloc(sizeof(double) * SE_SUMMARY_N * (size_t)n), m[SE_SUMMARY_N], d[SE_SUMMARY_N]; // [n, SE_SUMMARY_N]
    for (int i = 0; i < n; i++) se_summary_pack(&s[i], v + (size_t)i * SE_SUMMARY_N);
    for (int k = 0; k < SE_SUMMARY_N; k++) se_mean_sd(v + k, n, SE_SUMMARY_N, &m[k], &d[k]);
    se_summary_unpack(m, mean);
    se_summary_unpack(d, sd);
    free(v);
}
