#include "ibc/dist.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "ibc/mem.h"

int dist_rank(void) {
    int r;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int dist_size(void) {
    int s;
    MPI_Comm_size(MPI_COMM_WORLD, &s);
    return s;
}

int dist_local_size(void) {
    MPI_Comm node;
    int local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    return local;
}

void dist_barrier(void) { MPI_Barrier(MPI_COMM_WORLD); }

int dist_agree(int rc, ibc_err *err) {
    int P = dist_size(), me = rc ? dist_rank() : P, first = P;
    MPI_Allreduce(&me, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == P) return 0;
    if (me == first) err->code = rc;
    MPI_Bcast(err, (int)sizeof *err, MPI_BYTE, first, MPI_COMM_WORLD); // code and message
    return err->code;
}

int dist_any(int flag) {
    int any = 0;
    MPI_Allreduce(&flag, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return any;
}

void dist_sum(int64_t *v, int n) { MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD); }

// In-place integer sum of a long array, in chunks that fit MPI's int counts.
static void sum_long(int64_t *v, int64_t n) {
    const int64_t chunk = 1 << 26;
    for (int64_t i = 0; i < n; i += chunk)
        MPI_Allreduce(MPI_IN_PLACE, v + i, (int)(n - i < chunk ? n - i : chunk), MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
}

static void bcast_long(void *buf, int64_t bytes) {
    const int64_t chunk = 1 << 30;
    for (int64_t i = 0; i < bytes; i += chunk)
        MPI_Bcast((char *)buf + i, (int)(bytes - i < chunk ? bytes - i : chunk), MPI_BYTE, 0, MPI_COMM_WORLD);
}

int dist_bcast_corpus(corpus *c, ibc_err *err) {
    (void)err; // nothing here fails short of memory, which aborts the job (mem.h)
    int root = dist_rank() == 0;
    int64_t head[2] = {c->n, c->n_bad};
    MPI_Bcast(head, 2, MPI_INT64_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(c->source, sizeof c->source, MPI_CHAR, 0, MPI_COMM_WORLD);
    // Per document: text length (-1: none), id count, pref, line.
    int64_t *meta = xmalloc(sizeof(int64_t) * 4 * (size_t)(head[0] + 1));
    if (root)
        for (int64_t i = 0; i < c->n; i++) {
            corpus_doc *d = &c->docs[i];
            meta[4 * i] = d->text ? (int64_t)strlen(d->text) : -1;
            meta[4 * i + 1] = d->n_ids;
            meta[4 * i + 2] = d->pref;
            meta[4 * i + 3] = d->line;
        }
    bcast_long(meta, 32 * head[0]);
    if (!root) {
        c->n = head[0];
        c->n_bad = head[1];
        c->docs = xcalloc((size_t)(c->n ? c->n : 1), sizeof(corpus_doc));
        for (int64_t i = 0; i < c->n; i++) {
            corpus_doc *d = &c->docs[i];
            d->n_ids = (int)meta[4 * i + 1];
            d->pref = (int)meta[4 * i + 2];
            d->line = meta[4 * i + 3];
            if (meta[4 * i] >= 0) d->text = xcalloc((size_t)meta[4 * i] + 1, 1);
            if (d->n_ids || meta[4 * i] < 0) d->ids = xmalloc(sizeof(int32_t) * (size_t)(d->n_ids + 1));
        }
    }
    // Texts and ids travel as two packed buffers.
    int64_t tb = 0, ib = 0;
    for (int64_t i = 0; i < head[0]; i++) {
        tb += meta[4 * i] > 0 ? meta[4 * i] : 0;
        ib += meta[4 * i + 1];
    }
    char *tbuf = xmalloc((size_t)tb + 1);
    int32_t *ibuf = xmalloc(sizeof(int32_t) * (size_t)(ib + 1));
    if (root)
        for (int64_t i = 0, to = 0, io = 0; i < c->n; i++) {
            if (meta[4 * i] > 0) memcpy(tbuf + to, c->docs[i].text, (size_t)meta[4 * i]), to += meta[4 * i];
            if (c->docs[i].n_ids) memcpy(ibuf + io, c->docs[i].ids, sizeof(int32_t) * (size_t)c->docs[i].n_ids), io += c->docs[i].n_ids;
        }
    bcast_long(tbuf, tb);
    bcast_long(ibuf, 4 * ib);
    if (!root)
        for (int64_t i = 0, to = 0, io = 0; i < c->n; i++) {
            if (meta[4 * i] > 0) memcpy(c->docs[i].text, tbuf + to, (size_t)meta[4 * i]), to += meta[4 * i];
            if (c->docs[i].n_ids) memcpy(c->docs[i].ids, ibuf + io, sizeof(int32_t) * (size_t)c->docs[i].n_ids), io += c->docs[i].n_ids;
        }
    free(tbuf); free(ibuf); free(meta);
    return 0;
}

void dist_merge_acc(se_acc *acc) {
    int len = acc->n_layers * acc->n;
    sum_long(acc->C, len);
    sum_long(acc->cond_direct, (int64_t)acc->n_sets * acc->n_layers * SE_COND_LIMBS);
    int64_t v[3] = {acc->N, acc->n_docs, acc->n_skipped};
    dist_sum(v, 3);
    acc->N = v[0];
    acc->n_docs = v[1];
    acc->n_skipped = v[2];
    for (int s = 0; s < acc->n_sets; s++) sum_long(acc->tables[s].Cx, acc->tables[s].n_rows * len);
}

void dist_cond_sums(const se_acc *acc, int64_t *out) {
    se_cond_sums(acc, dist_rank(), dist_size(), out);
    sum_long(out, (int64_t)acc->n_sets * acc->n_layers * SE_COND_LIMBS);
}

int dist_map_docs(corpus *c, dist_doc_fn fn, void *ctx, ibc_err *err) {
    int P = dist_size(), r = dist_rank(), rc = 0;
    int64_t mine = 0, total = 0;
    int32_t **ids = xcalloc((size_t)c->n + 1, sizeof(int32_t *));
    int *len = xcalloc((size_t)c->n + 1, sizeof(int));
    int64_t *lens = xcalloc((size_t)c->n + 1, sizeof(int64_t));
    int32_t *packed = NULL, *everything = NULL;
    int *counts = NULL, *displs = NULL;
    for (int64_t i = r; rc == 0 && i < c->n; i += P) rc = fn(ctx, &c->docs[i], &ids[i], &len[i], err);
    if ((rc = dist_agree(rc, err))) goto done;
    // Lengths: each rank fills its own, an integer sum merges them (others are 0).
    for (int64_t i = r; i < c->n; i += P) lens[i] = len[i], mine += len[i];
    sum_long(lens, c->n);
    for (int64_t i = 0; i < c->n; i++) total += lens[i];
    if (total > INT32_MAX) { // the same verdict on every rank: total is global
        rc = ibc_fail(err, IBC_EINPUT, "%s: %lld token ids: more than one gather can carry (%d)", c->source,
                      (long long)total, INT32_MAX);
        goto done;
    }
    // Ids: packed per rank in document order, gathered, then unpacked.
    packed = xmalloc(sizeof(int32_t) * (size_t)(mine + 1));
    everything = xmalloc(sizeof(int32_t) * (size_t)(total + 1));
    counts = xmalloc(sizeof(int) * (size_t)P);
    displs = xmalloc(sizeof(int) * (size_t)P);
    int64_t o = 0;
    for (int64_t i = r; i < c->n; i += P) memcpy(packed + o, ids[i], sizeof(int32_t) * (size_t)len[i]), o += len[i];
    for (int k = 0, d = 0; k < P; k++) {
        int64_t cnt = 0;
        for (int64_t i = k; i < c->n; i += P) cnt += lens[i];
        counts[k] = (int)cnt;
        displs[k] = d;
        d += (int)cnt;
    }
    MPI_Allgatherv(packed, (int)mine, MPI_INT32_T, everything, counts, displs, MPI_INT32_T, MPI_COMM_WORLD);
    for (int k = 0; k < P; k++) {
        int64_t o2 = displs[k];
        for (int64_t i = k; i < c->n; i += P) {
            corpus_doc *d = &c->docs[i];
            free(d->ids);
            d->n_ids = (int)lens[i];
            d->ids = xmalloc(sizeof(int32_t) * (size_t)(d->n_ids + 1));
            memcpy(d->ids, everything + o2, sizeof(int32_t) * (size_t)d->n_ids);
            o2 += d->n_ids;
        }
    }
done:
    for (int64_t i = 0; i < c->n; i++) free(ids[i]);
    free(ids); free(len); free(lens); free(packed); free(everything); free(counts); free(displs);
    return rc;
}
