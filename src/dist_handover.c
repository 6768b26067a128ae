// dist_handover: the messages of a unit handed between ranks (dist.h, "Handing a unit over").
//
// Tags: REQ (asks for a unit, empty), NO (a refusal, empty), UNIT (its int64 header) and right
// after it STREAM (its residual stream, floats, sent from where it lies), FIN (finished its own units, empty) and
// DONE (no more requests from this rank this round, empty). Messages from one rank to another
// arrive in the order sent (MPI's non-overtaking rule, every receive here matching any tag),
// so DONE from a rank is read after every REQ and FIN it sent.
#include "ibc/dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "ibc/mem.h"

enum { TAG_REQ = 7101, TAG_NO, TAG_UNIT, TAG_STREAM, TAG_FIN, TAG_DONE };

static MPI_Comm comm_of(const dist_ho *h) { return *(MPI_Comm *)h->comm; }

void dist_ho_init(dist_ho *h) {
    memset(h, 0, sizeof *h);
    MPI_Comm_size(MPI_COMM_WORLD, &h->P);
    MPI_Comm_rank(MPI_COMM_WORLD, &h->rank);
    h->comm = xmalloc(sizeof(MPI_Comm));
    MPI_Comm_dup(MPI_COMM_WORLD, (MPI_Comm *)h->comm);
    h->fin = xcalloc((size_t)h->P, 1);
    h->asked = xcalloc((size_t)h->P, 1);
}

void dist_ho_free(dist_ho *h) {
    MPI_Comm_free((MPI_Comm *)h->comm);
    free(h->comm);
    free(h->fin);
    free(h->asked);
    memset(h, 0, sizeof *h);
}

void dist_ho_begin(dist_ho *h) {
    memset(h->fin, 0, (size_t)h->P);
    memset(h->asked, 0, (size_t)h->P);
    h->fin[h->rank] = h->asked[h->rank] = 1;
    h->ndone = 0;
}

static void send_empty(const dist_ho *h, int to, int tag) { MPI_Send(NULL, 0, MPI_BYTE, to, tag, comm_of(h)); }

// An empty message (REQ, NO, FIN, DONE) read and recorded; returns its tag.
static int read_empty(dist_ho *h, const MPI_Status *st) {
    MPI_Recv(NULL, 0, MPI_BYTE, st->MPI_SOURCE, st->MPI_TAG, comm_of(h), MPI_STATUS_IGNORE);
    if (st->MPI_TAG == TAG_FIN) h->fin[st->MPI_SOURCE] = 1;
    if (st->MPI_TAG == TAG_DONE) h->ndone++;
    return st->MPI_TAG;
}

int dist_ho_poll(dist_ho *h) {
    int flag = 1;
    while (h->P > 1) {
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_of(h), &flag, &st);
        if (!flag) return -1;
        if (read_empty(h, &st) == TAG_REQ) return st.MPI_SOURCE; // a NO or UNIT never comes unasked
    }
    return -1;
}

void dist_ho_refuse(dist_ho *h, int to) { send_empty(h, to, TAG_NO); }

int64_t dist_ho_max_floats(void) { return INT_MAX; }

void dist_ho_give(dist_ho *h, int to, const int64_t *head, int nhead, const float *x, int64_t nx) {
    MPI_Send(head, nhead, MPI_INT64_T, to, TAG_UNIT, comm_of(h));
    MPI_Send(x, (int)nx, MPI_FLOAT, to, TAG_STREAM, comm_of(h)); // from the unit's own buffer, no copy
}

void dist_ho_finished(dist_ho *h) {
    for (int r = 0; r < h->P; r++)
        if (r != h->rank) send_empty(h, r, TAG_FIN);
}

int dist_ho_take(dist_ho *h, int64_t **head, int *nhead, float **x, int64_t *nx) {
    for (int step = 1; step < h->P; step++) {
        int v = (h->rank + step) % h->P; // the next ranks first: rank r - 1 asks rank r first
        if (h->fin[v] || h->asked[v]) continue;
        h->asked[v] = 1;
        send_empty(h, v, TAG_REQ);
        for (;;) { // until v answers, answering and recording the others
            MPI_Status st;
            MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_of(h), &st);
            if (st.MPI_TAG != TAG_UNIT) { // (a STREAM is read with its UNIT)
                int tag = read_empty(h, &st);
                if (tag == TAG_REQ) dist_ho_refuse(h, st.MPI_SOURCE);
                if (tag == TAG_NO) break; // only v can send one: the one request out is to v
                continue;
            }
            int n, nf;
            MPI_Get_count(&st, MPI_INT64_T, &n);
            *nhead = n;
            *head = xmalloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
            MPI_Recv(*head, n, MPI_INT64_T, v, TAG_UNIT, comm_of(h), MPI_STATUS_IGNORE);
            MPI_Probe(v, TAG_STREAM, comm_of(h), &st);
            MPI_Get_count(&st, MPI_FLOAT, &nf);
            *nx = nf;
            *x = xmalloc(sizeof(float) * (size_t)(nf > 0 ? nf : 1));
            MPI_Recv(*x, nf, MPI_FLOAT, v, TAG_STREAM, comm_of(h), MPI_STATUS_IGNORE);
            return 1;
        }
    }
    return 0;
}

void dist_ho_end(dist_ho *h) {
    if (h->P < 2) return;
    for (int r = 0; r < h->P; r++)
        if (r != h->rank) send_empty(h, r, TAG_DONE);
    while (h->ndone < h->P - 1) {
        MPI_Status st;
        MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_of(h), &st);
        if (read_empty(h, &st) == TAG_REQ) dist_ho_refuse(h, st.MPI_SOURCE); // a UNIT never comes unasked
    }
}
