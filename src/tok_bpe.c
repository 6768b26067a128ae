// tok_bpe: the BPE model on one word (merges by rank, leftmost first; byte_fallback, fuse_unk,
// ignore_merges, unk_token, continuing_subword_prefix, end_of_word_suffix), and the word cache.
#include <stdlib.h>

#include "tok_internal.h"

// Candidate merge of the symbol at pos with its right neighbour, ordered by (rank, pos): the
// lowest rank first, the leftmost among equals, as the reference's heap.
typedef struct { int32_t rank, pos, id; } cand;

static int cand_less(cand a, cand b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

typedef struct { cand *v; int n; size_t cap; } heap;

static void heap_push(heap *h, cand c) {
    TOK_GROW(h->v, h->cap, (size_t)h->n + 1);
    int i = h->n++;
    while (i > 0 && cand_less(c, h->v[(i - 1) / 2])) { h->v[i] = h->v[(i - 1) / 2]; i = (i - 1) / 2; }
    h->v[i] = c;
}

static cand heap_pop(heap *h) {
    cand top = h->v[0], last = h->v[--h->n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && cand_less(h->v[c + 1], h->v[c])) c++;
        if (!cand_less(h->v[c], last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

// The merge of (a, b): its rank and merged id; 0 when there is none.
static int merge_of(const tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *id) {
    int32_t key[2] = {a, b};
    int64_t i = hmap_find(&t->merges, key, sizeof key);
    if (i < 0) return 0;
    int64_t v = t->merges.val[i];
    *rank = (int32_t)(v >> 32);
    *id = (int32_t)(v & 0xffffffff);
    return 1;
}

// Pushes the candidate merge of the symbol at a with its right neighbour b, if any.
static void push_pair(const tokenizer *t, heap *h, const ivec *sym, int a, int b) {
    int32_t r, id;
    if (a >= 0 && b >= 0 && merge_of(t, sym->p[a], sym->p[b], &r, &id)) heap_push(h, (cand){r, a, id});
}

// Applies merges to the symbols in place: a linked list and a heap of candidates, O(n log n);
// a popped candidate whose pair has changed since it was pushed is skipped.
static void merge_all(const tokenizer *t, ivec *sym) {
    int n = sym->n;
    int *next = xmalloc(sizeof(int) * (size_t)n), *prev = xmalloc(sizeof(int) * (size_t)n);
    heap h = {0};
    for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }
    for (int i = 0; i + 1 < n; i++) push_pair(t, &h, sym, i, i + 1);
    while (h.n) {
        cand c = heap_pop(&h);
        int a = c.pos, b = next[a];
        int32_t r, id;
        if (sym->p[a] < 0 || b < 0 || !merge_of(t, sym->p[a], sym->p[b], &r, &id) || r != c.rank || id != c.id)
            continue; // stale
        sym->p[a] = c.id;
        sym->p[b] = -1; // removed
        next[a] = next[b];
        if (next[b] >= 0) prev[next[b]] = a;
        push_pair(t, &h, sym, prev[a], a);
        push_pair(t, &h, sym, a, next[a]);
    }
    int m = 0;
    for (int i = 0; i < n; i++)
        if (sym->p[i] >= 0) sym->p[m++] = sym->p[i];
    sym->n = m;
    free(next); free(prev); free(h.v);
}

// The ids of one character s[0..n) (with prefix/suffix already added): its token, its bytes
// (byte_fallback), or unk (fused with a preceding unk when fuse_unk).
static void char_ids(const tokenizer *t, const sbuf *s, ivec *sym, int *last_unk) {
    int32_t id = tok_vocab_id(t, s->p, s->n);
    if (id >= 0) {
        iv_push(sym, id);
        *last_unk = 0;
        return;
    }
    if (t->byte_fallback) {
        int all = 1;
        for (size_t b = 0; b < s->n; b++) all &= t->byte_id[(unsigned char)s->p[b]] >= 0;
        if (all) {
            for (size_t b = 0; b < s->n; b++) iv_push(sym, t->byte_id[(unsigned char)s->p[b]]);
            *last_unk = 0;
            return;
        }
    }
    if (t->unk >= 0) {
        if (!(t->fuse_unk && *last_unk)) iv_push(sym, t->unk);
        *last_unk = 1;
    }
}

// One word to ids, appended to out.
static void bpe_word(const tokenizer *t, const char *w, size_t n, ivec *out) {
    int32_t id;
    if (t->ignore_merges && (id = tok_vocab_id(t, w, n)) >= 0) {
        iv_push(out, id);
        return;
    }
    ivec sym = {0};
    sbuf s = {0};
    int last_unk = 0;
    size_t pl = strlen(t->prefix), sl = strlen(t->suffix);
    for (size_t i = 0; i < n;) {
        size_t k = (size_t)u8len((unsigned char)w[i]);
        if (i + k > n) k = n - i;
        sb_reset(&s);
        if (i > 0 && pl) sb_add(&s, t->prefix, pl);
        sb_add(&s, w + i, k);
        if (i + k == n && sl) sb_add(&s, t->suffix, sl);
        i += k;
        char_ids(t, &s, &sym, &last_unk);
    }
    if (sym.n > 1) merge_all(t, &sym);
    iv_append(out, sym.p, sym.n);
    free(sym.p);
    free(s.p);
}

// Words up to this many bytes are cached, up to CACHE_MAX of them: long words are rare, and
// the cap bounds the cache's memory (~100 B per word) on corpora with many distinct words.
#define CACHE_WORD_MAX 256
#define CACHE_MAX 200000

void tok_bpe_cached(tokenizer *t, const char *w, size_t n, ivec *out) {
    int64_t c = hmap_find(&t->cache, w, n);
    if (c >= 0) {
        iv_append(out, t->cache_ids[c].p, t->cache_ids[c].n);
        return;
    }
    ivec ids = {0};
    bpe_word(t, w, n, &ids);
    iv_append(out, ids.p, ids.n);
    if (n > CACHE_WORD_MAX || t->cache.n >= CACHE_MAX) {
        free(ids.p);
        return;
    }
    c = hmap_put(&t->cache, w, n, NULL);
    xgrow(t->cache_ids, t->cache_cap, (size_t)c + 1);
    t->cache_ids[c] = ids;
}
