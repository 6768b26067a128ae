#include "ibc/dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "ibc/mem.h"
#include "ibc/owner.h"

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

int64_t dist_chunk_bytes(void) {
    static int64_t c;
    if (!c) {
        const char *e = getenv("IBC_MPI_CHUNK");
        long long v = e ? atoll(e) : 0;
        c = v >= 1 && v <= (1LL << 30) ? v : 1LL << 30;
    }
    return c;
}

// In-place integer sum of a long array, in chunks of dist_chunk_bytes (at least one element).
static void sum_long(int64_t *v, int64_t n) {
    int64_t chunk = dist_chunk_bytes() / 8 > 0 ? dist_chunk_bytes() / 8 : 1;
    for (int64_t i = 0; i < n; i += chunk)
        MPI_Allreduce(MPI_IN_PLACE, v + i, (int)(n - i < chunk ? n - i : chunk), MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
}

static void bcast_long(void *buf, int64_t bytes) {
    int64_t chunk = dist_chunk_bytes();
    for (int64_t i = 0; i < bytes; i += chunk)
        MPI_Bcast((char *)buf + i, (int)(bytes - i < chunk ? bytes - i : chunk), MPI_BYTE, 0, MPI_COMM_WORLD);
}

// MPI_Alltoallv of bytes with 64-bit counts and displacements ([P] each; send regions may
// overlap). Sub-rounds move at most c = min(dist_chunk_bytes, INT_MAX / P) bytes per pair,
// staged contiguously so that every int count and displacement fits; when everything fits
// one call, it goes straight from and to the buffers. Collective: every rank calls it.
static void alltoallv_long(const char *send, const int64_t *scnt, const int64_t *sdis, char *recv,
                           const int64_t *rcnt, const int64_t *rdis) {
    int P = dist_size();
    int64_t c = dist_chunk_bytes() < INT_MAX / P ? dist_chunk_bytes() : INT_MAX / P, mx = 0, end = 0;
    for (int d = 0; d < P; d++) {
        mx = scnt[d] > mx ? scnt[d] : mx;
        mx = rcnt[d] > mx ? rcnt[d] : mx;
        end = sdis[d] + scnt[d] > end ? sdis[d] + scnt[d] : end;
        end = rdis[d] + rcnt[d] > end ? rdis[d] + rcnt[d] : end;
    }
    MPI_Allreduce(MPI_IN_PLACE, &mx, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &end, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    int direct = mx <= c && end <= INT_MAX; // the same verdict on every rank
    int64_t rounds = direct ? 1 : (mx + c - 1) / c;
    int *cnt = xmalloc(sizeof(int) * 4 * (size_t)P), *sc = cnt, *sd = cnt + P, *rc = cnt + 2 * P, *rd = cnt + 3 * P;
    char *sbuf = direct ? NULL : xmalloc((size_t)(P * c)), *rbuf = direct ? NULL : xmalloc((size_t)(P * c));
    for (int64_t i = 0; i < rounds; i++) {
        int so = 0, ro = 0;
        for (int d = 0; d < P; d++) {
            int64_t s = scnt[d] - i * c, r = rcnt[d] - i * c;
            sc[d] = (int)(s < 0 ? 0 : s < c ? s : c);
            rc[d] = (int)(r < 0 ? 0 : r < c ? r : c);
            sd[d] = direct ? (int)sdis[d] : so;
            rd[d] = direct ? (int)rdis[d] : ro;
            if (!direct && sc[d]) memcpy(sbuf + so, send + sdis[d] + i * c, (size_t)sc[d]);
            so += sc[d];
            ro += rc[d];
        }
        MPI_Alltoallv(direct ? send : sbuf, sc, sd, MPI_BYTE, direct ? recv : rbuf, rc, rd, MPI_BYTE, MPI_COMM_WORLD);
        for (int d = 0; !direct && d < P; d++)
            if (rc[d]) memcpy(recv + rdis[d] + i * c, rbuf + rd[d], (size_t)rc[d]);
    }
    free(cnt); free(sbuf); free(rbuf);
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

int dist_exchange(se_acc *acc, int64_t *sent, ibc_err *err) {
    int P = dist_size(), rc = 0;
    int64_t rb = se_outbox_row_bytes(acc), len = (int64_t)acc->n_layers * acc->n, n = 0;
    int64_t *cnt = xcalloc(4 * (size_t)P, sizeof(int64_t)), *scnt = cnt, *sdis = cnt + P, *rcnt = cnt + 2 * P,
            *rdis = cnt + 3 * P;
    for (int s = 0; s < acc->n_sets; s++) n += acc->tables[s].ob_n;
    int *own = xmalloc(sizeof(int) * (size_t)(n + 1)); // owner of each outbox row, in order
    for (int s = 0, i = 0; s < acc->n_sets; s++)
        for (int64_t k = 0; k < acc->tables[s].ob_n; k++, i++) {
            const se_table *t = &acc->tables[s];
            own[i] = owner_of_label(s, t->keys[t->ob_label[k]].key, P);
            scnt[own[i]] += rb;
        }
    for (int d = 1; d < P; d++) sdis[d] = sdis[d - 1] + scnt[d - 1];
    char *send = xmalloc((size_t)(n * rb + 1));
    int64_t *at = xmalloc(sizeof(int64_t) * (size_t)P); // next record of each owner
    memcpy(at, sdis, sizeof(int64_t) * (size_t)P);
    for (int s = 0, i = 0; s < acc->n_sets; s++) // records: set, label index, row [n_layers, n]
        for (int64_t k = 0; k < acc->tables[s].ob_n; k++, i++) {
            int64_t *rec = (int64_t *)(void *)(send + at[own[i]]), *row = acc->tables[s].ob_Cx + k * len;
            rec[0] = s;
            rec[1] = acc->tables[s].ob_label[k];
            memcpy(rec + 2, row, sizeof(int64_t) * (size_t)len);
            at[own[i]] += rb;
        }
    MPI_Alltoall(scnt, 1, MPI_INT64_T, rcnt, 1, MPI_INT64_T, MPI_COMM_WORLD);
    for (int d = 1; d < P; d++) rdis[d] = rdis[d - 1] + rcnt[d - 1];
    int64_t total = rdis[P - 1] + rcnt[P - 1];
    char *recv = xmalloc((size_t)total + 1);
    alltoallv_long(send, scnt, sdis, recv, rcnt, rdis);
    free(send);
    se_outbox_clear(acc);
    *sent += n * rb;
    // The owners add: integer sums, exact in any order.
    for (int64_t o = 0; rc == 0 && o < total; o += rb) {
        const int64_t *rec = (const int64_t *)(const void *)(recv + o);
        rc = se_acc_add_row(acc, (int)rec[0], rec[1], rec + 2, err);
    }
    free(recv); free(own); free(at); free(cnt);
    return dist_agree(rc, err);
}

int dist_merge_acc(se_acc *acc, int64_t *sent, ibc_err *err) {
    int rc = dist_exchange(acc, sent, err); // the final flush: every row is at its owner
    if (rc) return rc;
    sum_long(acc->C, (int64_t)acc->n_layers * acc->n);
    int64_t v[3] = {acc->N, acc->n_docs, acc->n_skipped};
    dist_sum(v, 3);
    acc->N = v[0];
    acc->n_docs = v[1];
    acc->n_skipped = v[2];
    return 0;
}

void dist_cond_sums(const se_acc *acc, int64_t *out) {
    se_cond_sums(acc, 0, 1, out); // this rank's singleton terms and owned rows
    sum_long(out, (int64_t)acc->n_sets * acc->n_layers * SE_COND_LIMBS);
}

int dist_map_docs(corpus *c, dist_doc_fn fn, void *ctx, ibc_err *err) {
    int P = dist_size(), r = dist_rank(), rc = 0;
    int64_t mine = 0, total = 0, *scnt = NULL;
    int32_t **ids = xcalloc((size_t)c->n + 1, sizeof(int32_t *));
    int *len = xcalloc((size_t)c->n + 1, sizeof(int));
    int64_t *lens = xcalloc((size_t)c->n + 1, sizeof(int64_t));
    int32_t *packed = NULL, *everything = NULL;
    int64_t *counts = NULL, *displs = NULL;
    for (int64_t i = r; rc == 0 && i < c->n; i += P) rc = fn(ctx, &c->docs[i], &ids[i], &len[i], err);
    if ((rc = dist_agree(rc, err))) goto done;
    // Lengths: each rank fills its own, an integer sum merges them (others are 0).
    for (int64_t i = r; i < c->n; i += P) lens[i] = len[i], mine += len[i];
    sum_long(lens, c->n);
    for (int64_t i = 0; i < c->n; i++) total += lens[i];
    // Ids: packed per rank in document order, gathered, then unpacked.
    packed = xmalloc(sizeof(int32_t) * (size_t)(mine + 1));
    everything = xmalloc(sizeof(int32_t) * (size_t)(total + 1));
    counts = xmalloc(sizeof(int64_t) * (size_t)P); // bytes from each rank
    displs = xmalloc(sizeof(int64_t) * (size_t)P);
    scnt = xcalloc(2 * (size_t)P, sizeof(int64_t)); // [P] counts, then [P] displacements 0: one packed block to all
    int64_t o = 0;
    for (int64_t i = r; i < c->n; i += P) memcpy(packed + o, ids[i], sizeof(int32_t) * (size_t)len[i]), o += len[i];
    for (int64_t k = 0, d = 0; k < P; k++) {
        int64_t cnt = 0;
        for (int64_t i = k; i < c->n; i += P) cnt += lens[i];
        counts[k] = 4 * cnt;
        displs[k] = d;
        d += 4 * cnt;
        scnt[k] = 4 * mine;
    }
    // An all-gather, as an all-to-all of one block (chunked past INT_MAX like every count).
    alltoallv_long((const char *)packed, scnt, scnt + P, (char *)everything, counts, displs);
    for (int k = 0; k < P; k++) {
        int64_t o2 = displs[k] / 4;
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
    free(ids); free(len); free(lens); free(packed); free(everything); free(counts); free(displs); free(scnt);
    return rc;
}
