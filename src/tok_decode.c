// tok_decode: ids to token strings, then the decoders (ByteLevel, Metaspace, ByteFallback,
// Fuse, Strip, Replace, Sequence), a list of strings in, a list out; finally joined.
#include <stdio.h>
#include <stdlib.h>
#include <utf8proc.h>

#include "tok_internal.h"

typedef struct { sbuf *v; int n; } tlist;

static void tl_free(tlist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i].p);
    free(l->v);
    memset(l, 0, sizeof *l);
}

// Replaces the list by the single string s (taken over).
static void tl_single(tlist *l, sbuf s) {
    tl_free(l);
    l->v = xmalloc(sizeof(sbuf));
    l->v[0] = s;
    l->n = 1;
}

// Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes one U+FFFD.
static void lossy_utf8(const unsigned char *s, size_t n, sbuf *out) {
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t need = c < 0x80 ? 1 : (c >= 0xc2 && c <= 0xdf) ? 2 : (c >= 0xe0 && c <= 0xef) ? 3 : (c >= 0xf0 && c <= 0xf4) ? 4 : 0;
        size_t k = 1;
        int ok = need > 0;
        for (; ok && k < need; k++) {
            if (i + k >= n) { ok = 0; break; }
            unsigned char d = s[i + k];
            unsigned char lo = 0x80, hi = 0xbf;
            if (k == 1) {
                if (c == 0xe0) lo = 0xa0;
                else if (c == 0xed) hi = 0x9f;
                else if (c == 0xf0) lo = 0x90;
                else if (c == 0xf4) hi = 0x8f;
            }
            if (d < lo || d > hi) { ok = 0; break; }
        }
        if (ok) {
            sb_add(out, s + i, need);
            i += need;
        } else {
            sb_add(out, "\xef\xbf\xbd", 3);
            i += k > 1 ? k : 1; // the valid prefix of a sequence counts as one error
        }
    }
}

// ByteLevel: every character back to its byte; a token with any other character stays as it is.
static void dec_bytelevel(tlist *l) {
    sbuf bytes = {0}, res = {0}, tb = {0};
    sb_reset(&bytes);
    for (int i = 0; i < l->n; i++) {
        int all = 1;
        sb_reset(&tb);
        for (size_t k = 0; k < l->v[i].n && all;) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t m = utf8proc_iterate((const utf8proc_uint8_t *)l->v[i].p + k, (utf8proc_ssize_t)(l->v[i].n - k), &cp);
            if (m <= 0 || cp >= 324 || tok_cp2byte[cp] < 0) { all = 0; break; }
            unsigned char b = (unsigned char)tok_cp2byte[cp];
            sb_add(&tb, &b, 1);
            k += (size_t)m;
        }
        if (all) sb_add(&bytes, tb.p, tb.n);
        else sb_add(&bytes, l->v[i].p, l->v[i].n);
    }
    sb_reset(&res);
    lossy_utf8((unsigned char *)bytes.p, bytes.n, &res);
    free(bytes.p);
    free(tb.p);
    tl_single(l, res);
}

// ByteFallback: runs of <0xNN> become bytes; an invalid run is one U+FFFD per byte.
static void dec_bytefallback(tlist *l) {
    tlist o = {xcalloc((size_t)l->n + 1, sizeof(sbuf)), 0};
    sbuf run = {0};
    for (int i = 0; i <= l->n; i++) {
        unsigned int b;
        char tail;
        int isbyte = i < l->n && l->v[i].n == 6 && sscanf(l->v[i].p, "<0x%2X%c", &b, &tail) == 2 && tail == '>';
        if (isbyte) { unsigned char c = (unsigned char)b; sb_add(&run, &c, 1); continue; }
        if (run.n) {
            sbuf chk = {0};
            int valid = utf8proc_decompose((const utf8proc_uint8_t *)run.p, (utf8proc_ssize_t)run.n, NULL, 0, 0) >= 0;
            if (valid) sb_add(&chk, run.p, run.n);
            else for (size_t k = 0; k < run.n; k++) sb_add(&chk, "\xef\xbf\xbd", 3);
            o.v[o.n++] = chk;
            run.n = 0;
        }
        if (i < l->n) { o.v[o.n++] = l->v[i]; l->v[i].p = NULL; }
    }
    free(run.p);
    tl_free(l);
    *l = o;
}

// Each string with every d->a replaced by `to` (the first string's by `to0`).
static void dec_replace(tlist *l, const node *d, const char *to, size_t tn, size_t tn0) {
    for (int i = 0; i < l->n; i++) {
        sbuf o = {0};
        tok_replace_literal(l->v[i].p, l->v[i].n, d->a, d->alen, to, i == 0 ? tn0 : tn, &o);
        free(l->v[i].p);
        l->v[i] = o;
    }
}

static void dec_strip(tlist *l, const node *d) {
    for (int i = 0; i < l->n; i++) {
        sbuf *s = &l->v[i];
        size_t a = 0, b = s->n;
        for (int k = 0; k < d->x && a + d->alen <= b && !memcmp(s->p + a, d->a, d->alen); k++) a += d->alen;
        for (int k = 0; k < d->y && b >= a + d->alen && !memcmp(s->p + b - d->alen, d->a, d->alen); k++) b -= d->alen;
        memmove(s->p, s->p + a, b - a);
        s->n = b - a;
        s->p[s->n] = 0;
    }
}

static void decode_chain(const node *d, tlist *l) {
    switch (d->type) {
    case D_SEQ:
        for (int i = 0; i < d->nkids; i++) decode_chain(&d->kids[i], l);
        return;
    case D_BYTELEVEL:
        dec_bytelevel(l);
        return;
    case D_METASPACE: // the marker becomes a space, and vanishes from the first token unless "never"
        dec_replace(l, d, " ", 1, d->x != PS_NEVER ? 0 : 1);
        return;
    case D_BYTEFALLBACK:
        dec_bytefallback(l);
        return;
    case D_FUSE: {
        sbuf all = {0};
        sb_reset(&all);
        for (int i = 0; i < l->n; i++) sb_add(&all, l->v[i].p, l->v[i].n);
        tl_single(l, all);
        return;
    }
    case D_STRIP:
        dec_strip(l, d);
        return;
    case D_REPLACE:
        dec_replace(l, d, d->b, d->blen, d->blen);
        return;
    }
}

int tok_decode(const tokenizer *t, const int32_t *ids, int n, int skip_special, char **out, size_t *len, ibc_err *err) {
    tlist l = {xcalloc((size_t)n + 1, sizeof(sbuf)), 0};
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->nid || !t->id2tok[ids[i]]) {
            tl_free(&l);
            return ibc_fail(err, IBC_EINPUT, "%s: id %d is not in the vocabulary", t->name, ids[i]);
        }
        if (skip_special && t->special[ids[i]]) continue;
        sb_add(&l.v[l.n++], t->id2tok[ids[i]], strlen(t->id2tok[ids[i]]));
    }
    if (t->dec) decode_chain(t->dec, &l);
    sbuf res = {0};
    sb_reset(&res);
    for (int i = 0; i < l.n; i++) { // no decoder: tokens joined by spaces, as HF
        if (!t->dec && i) sb_add(&res, " ", 1);
        sb_add(&res, l.v[i].p, l.v[i].n);
    }
    tl_free(&l);
    *out = res.p;
    if (len) *len = res.n;
    return 0;
}
