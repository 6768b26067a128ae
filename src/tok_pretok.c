// tok_pretok: the pre-tokenizers (ByteLevel, Split, Digits, Metaspace, Sequence), a list of
// pieces in, a list of pieces out.
#include <stdlib.h>
#include <utf8proc.h>

#include "tok_internal.h"

void tok_pl_push(plist *l, const char *s, size_t n, int first) {
    if (!n) return; // HF drops empty splits
    TOK_GROW(l->v, l->cap, (size_t)l->n + 1);
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    l->v[l->n++] = (piece){d, n, first};
}

void tok_pl_free(plist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i].s);
    free(l->v);
    memset(l, 0, sizeof *l);
}

typedef struct { size_t a, b; int match; } seg;
typedef struct { seg *v; int n; size_t cap; } slist;

static void sl_push(slist *l, size_t a, size_t b, int match) {
    TOK_GROW(l->v, l->cap, (size_t)l->n + 1);
    l->v[l->n++] = (seg){a, b, match};
}

// A match at [a, b) after the text since *prev.
static void sl_match(slist *l, size_t *prev, size_t a, size_t b) {
    if (*prev < a) sl_push(l, *prev, a, 0);
    sl_push(l, a, b, 1);
    *prev = b;
}

// Each character satisfying the predicate is its own match (pred: 1 numeric, 2 the literal
// nd->a as one character).
static void char_segments(const node *nd, int pred, const char *s, size_t n, slist *out, size_t *prev) {
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) k = 1; // not reached: tok_encode checked the text
        int hit;
        if (pred == 1) {
            utf8proc_category_t cat = utf8proc_category(cp);
            hit = cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
        } else hit = (size_t)k == nd->alen && !memcmp(s + i, nd->a, (size_t)k);
        if (hit) sl_match(out, prev, i, i + (size_t)k);
        i += (size_t)k;
    }
}

static int regex_segments(const tok_rx *rx, const node *nd, const char *s, size_t n, slist *out, size_t *prev) {
    pcre2_match_data *md = tok_match_data(rx, nd);
    if (!md) return IBC_ESYS;
    size_t pos = 0;
    int rc = 0;
    while (pos <= n && (rc = tok_match(rx, nd, s, n, pos, md)) == 1) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        sl_match(out, prev, ov[0], ov[1]);
        pos = ov[1] > ov[0] ? ov[1] : ov[0] + (ov[0] < n ? (size_t)u8len((unsigned char)s[ov[0]]) : 1);
    }
    pcre2_match_data_free(md);
    return rc == 1 ? 0 : rc;
}

// Segments of s: maximal runs between and including the matches of a regex, a literal, or a
// per-character predicate (pred: see char_segments).
static int find_segments(const tok_rx *rx, const node *nd, int pred, const char *s, size_t n, slist *out) {
    out->n = 0;
    size_t prev = 0;
    if (pred) char_segments(nd, pred, s, n, out, &prev);
    else if (nd->re) {
        int rc = regex_segments(rx, nd, s, n, out, &prev);
        if (rc) return rc;
    } else if (nd->alen) {
        for (size_t i = 0; i + nd->alen <= n;) {
            if (!memcmp(s + i, nd->a, nd->alen)) {
                sl_match(out, &prev, i, i + nd->alen);
                i += nd->alen;
            } else i++;
        }
    }
    if (prev < n) sl_push(out, prev, n, 0);
    return 0;
}

// HF's SplitDelimiterBehavior on segments, then the pieces.
static void split_by(int behavior, int invert, slist *sg, const char *s, int first, plist *out) {
    if (invert)
        for (int i = 0; i < sg->n; i++) sg->v[i].match = !sg->v[i].match;
    slist r = {0};
    int prev_match = 0;
    if (behavior == B_NEXT) { // fold from the right
        for (int i = sg->n - 1; i >= 0; i--) {
            seg g = sg->v[i];
            if (g.match && !prev_match && r.n) r.v[r.n - 1].a = g.a;
            else sl_push(&r, g.a, g.b, 0);
            prev_match = g.match;
        }
        for (int i = 0; i < r.n / 2; i++) { seg t = r.v[i]; r.v[i] = r.v[r.n - 1 - i]; r.v[r.n - 1 - i] = t; }
    } else {
        for (int i = 0; i < sg->n; i++) {
            seg g = sg->v[i];
            if (behavior == B_REMOVED) { if (!g.match) sl_push(&r, g.a, g.b, 0); }
            else if (behavior == B_ISOLATED) sl_push(&r, g.a, g.b, 0);
            else if (behavior == B_PREV) {
                if (g.match && !prev_match && r.n) r.v[r.n - 1].b = g.b;
                else sl_push(&r, g.a, g.b, 0);
            } else { // contiguous: runs of equal kind merge
                if (r.n && g.match == prev_match) r.v[r.n - 1].b = g.b;
                else sl_push(&r, g.a, g.b, 0);
            }
            prev_match = g.match;
        }
    }
    for (int i = 0; i < r.n; i++) // a split starting inside the first stretch is "first" too
        tok_pl_push(out, s + r.v[i].a, r.v[i].b - r.v[i].a, (size_t)first > r.v[i].a ? first - (int)r.v[i].a : 0);
    free(r.v);
}

// ByteLevel: an optional leading space, GPT-2's regex, then every byte to its printable
// character.
static int byte_level(const tok_rx *rx, const node *nd, piece p, sbuf *tmp, slist *sg, plist *out) {
    sb_reset(tmp);
    if (nd->x && p.s[0] != ' ') sb_add(tmp, " ", 1);
    sb_add(tmp, p.s, p.n);
    plist words = {0};
    int rc = 0;
    if (nd->y) {
        if ((rc = find_segments(rx, nd, 0, tmp->p, tmp->n, sg)) == 0) split_by(B_ISOLATED, 0, sg, tmp->p, p.first, &words);
    } else tok_pl_push(&words, tmp->p, tmp->n, p.first);
    sbuf m = {0};
    for (int w = 0; w < words.n && rc == 0; w++) {
        sb_reset(&m);
        for (size_t k = 0; k < words.v[w].n; k++) tok_add_cp(&m, tok_byte2cp[(unsigned char)words.v[w].s[k]]);
        tok_pl_push(out, m.p, m.n, words.v[w].first);
    }
    free(m.p);
    tok_pl_free(&words);
    return rc;
}

// Metaspace: spaces become the marker (prepended by the scheme), then split before markers.
static void metaspace(const tok_rx *rx, const node *nd, piece p, sbuf *tmp, slist *sg, plist *out) {
    sb_reset(tmp);
    int prepend = nd->x == PS_ALWAYS || (nd->x == PS_FIRST && p.first > 0);
    int starts = p.n >= nd->alen && !memcmp(p.s, nd->a, nd->alen);
    if (prepend && !starts && p.s[0] != ' ') sb_add(tmp, nd->a, nd->alen);
    for (size_t k = 0; k < p.n; k++) {
        if (p.s[k] == ' ') sb_add(tmp, nd->a, nd->alen);
        else sb_add(tmp, p.s + k, 1);
    }
    if (nd->y) {
        find_segments(rx, nd, 2, tmp->p, tmp->n, sg); // no regex: cannot fail
        split_by(B_NEXT, 0, sg, tmp->p, p.first, out);
    } else tok_pl_push(out, tmp->p, tmp->n, p.first);
}

int tok_pretokenize(const tok_rx *rx, const node *nd, plist *in, plist *out) {
    int rc = 0;
    if (nd->type == P_SEQ) {
        plist cur = *in, nxt = {0};
        memset(in, 0, sizeof *in);
        for (int i = 0; rc == 0 && i < nd->nkids; i++) {
            rc = tok_pretokenize(rx, &nd->kids[i], &cur, &nxt);
            tok_pl_free(&cur);
            cur = nxt;
            memset(&nxt, 0, sizeof nxt);
        }
        *out = cur;
        return rc;
    }
    slist sg = {0};
    sbuf tmp = {0};
    for (int i = 0; i < in->n && rc == 0; i++) {
        piece p = in->v[i];
        switch (nd->type) {
        case P_BYTELEVEL:
            rc = byte_level(rx, nd, p, &tmp, &sg, out);
            break;
        case P_SPLIT:
            if ((rc = find_segments(rx, nd, 0, p.s, p.n, &sg)) == 0) split_by(nd->x, nd->y, &sg, p.s, p.first, out);
            break;
        case P_DIGITS:
            find_segments(rx, nd, 1, p.s, p.n, &sg); // no regex: cannot fail
            split_by(nd->x ? B_ISOLATED : B_CONTIGUOUS, 0, &sg, p.s, p.first, out);
            break;
        case P_METASPACE:
            metaspace(rx, nd, p, &tmp, &sg, out);
            break;
        }
    }
    free(sg.v);
    free(tmp.p);
    return rc;
}
