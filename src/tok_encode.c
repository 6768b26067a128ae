// tok_encode: the encoding pipeline. Added tokens split the raw text; each gap is normalized,
// split again on the normalized added tokens, pre-tokenized into words, and each word goes
// through the BPE model (tok_bpe.c); the post-processor's ids go around the whole.
#include <stdlib.h>
#include <utf8proc.h>

#include "tok_internal.h"

// ---------------------------------------------------------------------------------------------
// Added tokens: leftmost-longest matches split a text into tokens and gaps

static int is_word_char(const char *s, size_t n, size_t i) {
    utf8proc_int32_t cp;
    if (utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp) <= 0) return 0;
    utf8proc_category_t c = utf8proc_category(cp);
    return cp == '_' || (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) || (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

typedef struct { size_t a, b; int tok; } hit; // tok: index in t->added, -1 for a gap
typedef struct { hit *v; int n; size_t cap; } hits;

static void hit_push(hits *h, size_t a, size_t b, int tok) {
    TOK_GROW(h->v, h->cap, (size_t)h->n + 1);
    h->v[h->n++] = (hit){a, b, tok};
}

// The longest added token (of those whose `normalized` equals normalized) at s[i], or -1.
static int added_at(const tokenizer *t, const char *s, size_t n, size_t i, int normalized) {
    int best = -1;
    size_t bl = 0;
    for (int k = 0; k < t->nadded; k++) {
        const added_tok *a = &t->added[k];
        if (a->normalized != normalized || a->mn <= bl || i + a->mn > n || memcmp(s + i, a->m, a->mn)) continue;
        if (a->single_word && ((i > 0 && is_word_char(s, n, i - 1)) || (i + a->mn < n && is_word_char(s, n, i + a->mn)))) continue;
        best = k;
        bl = a->mn;
    }
    return best;
}

// Splits s on the added tokens whose `normalized` equals `normalized`.
static void split_added(const tokenizer *t, const char *s, size_t n, int normalized, hits *out) {
    out->n = 0;
    size_t gap = 0;
    for (size_t i = 0; i < n;) {
        if (!t->first_byte[normalized][(unsigned char)s[i]]) { i++; continue; }
        int best = added_at(t, s, n, i, normalized);
        if (best < 0) { i += (size_t)u8len((unsigned char)s[i]); continue; }
        size_t a = i, b = i + t->added[best].mn, k;
        if (t->added[best].lstrip) // whitespace before the token belongs to it
            while (a > gap) {
                size_t j = a - 1;
                while (j > gap && ((unsigned char)s[j] & 0xc0) == 0x80) j--;
                if (!tok_is_space(s, n, j, &k)) break;
                a = j;
            }
        if (t->added[best].rstrip)
            while (b < n && tok_is_space(s, n, b, &k)) b += k;
        if (gap < a) hit_push(out, gap, a, -1);
        hit_push(out, a, b, best);
        gap = i = b;
    }
    if (gap < n) hit_push(out, gap, n, -1);
}

// ---------------------------------------------------------------------------------------------
// Gaps

// A gap of text (not an added token) through pre-tokenizer and model.
static int encode_words(tokenizer *t, const tok_rx *rx, const char *s, size_t n, int first, ivec *out) {
    plist in = {0}, words = {0};
    int rc = 0;
    tok_pl_push(&in, s, n, first);
    if (t->pre) {
        rc = tok_pretokenize(rx, t->pre, &in, &words);
    } else if (t->word_split) { // exact: no token spans the cut (see tok_parse)
        size_t w = t->word_split_n, a = 0;
        const char *m;
        // Cut before a marker that follows a non-marker; memmem jumps to the next marker.
        for (size_t i = w; i + w <= n && (m = memmem(s + i, n - i, t->word_split, w)); i++) {
            i = (size_t)(m - s);
            if (memcmp(s + i - w, t->word_split, w) && i > a) {
                tok_pl_push(&words, s + a, i - a, first && a == 0);
                a = i;
            }
        }
        tok_pl_push(&words, s + a, n - a, first && a == 0);
    } else {
        words = in;
        memset(&in, 0, sizeof in);
    }
    for (int i = 0; i < words.n && rc == 0; i++) tok_bpe_cached(t, words.v[i].s, words.v[i].n, out);
    tok_pl_free(&in);
    tok_pl_free(&words);
    return rc;
}

// Bytes at the start of normalize(nd, s) that map to offset 0 of s: what a Prepend added,
// then the first character. None when Strip took leading characters away.
static void norm_prefix(const node *nd, const char *s, size_t n, size_t *prepended, int *stripped) {
    if (!nd) return;
    if (nd->type == N_PREPEND && n) *prepended += nd->alen;
    size_t k;
    if (nd->type == N_STRIP && nd->x && n && tok_is_space(s, n, 0, &k)) *stripped = 1;
    for (int i = 0; i < nd->nkids; i++) norm_prefix(&nd->kids[i], s, n, prepended, stripped);
}

static int zero_end(const node *nd, const char *orig, size_t on, const char *s, size_t n) {
    size_t pre = 0;
    int stripped = 0;
    norm_prefix(nd, orig, on, &pre, &stripped);
    if (stripped || pre >= n) return stripped ? 0 : (int)n;
    return (int)(pre + (size_t)u8len((unsigned char)s[pre]));
}

// One gap g of the raw text: normalized, split on the normalized added tokens, the rest
// through encode_words. norm and h are the caller's scratch.
static int encode_gap(tokenizer *t, tok_rx *rx, const char *text, hit g, sbuf *norm, hits *h, ivec *out) {
    const char *s = text + g.a;
    size_t sn = g.b - g.a;
    int rc, z0 = g.a == 0 && sn ? u8len((unsigned char)s[0]) : 0; // bytes mapping to offset 0
    rx->at = g.a;
    if (t->norm) {
        if ((rc = tok_normalize(rx, t->norm, s, sn, norm))) return rc;
        if (g.a == 0) z0 = zero_end(t->norm, s, sn, norm->p, norm->n);
        s = norm->p;
        sn = norm->n;
    }
    split_added(t, s, sn, 1, h);
    rc = 0;
    for (int k = 0; k < h->n && rc == 0; k++) {
        hit x = h->v[k];
        if (x.tok >= 0) iv_push(out, t->added[x.tok].id);
        else rc = encode_words(t, rx, s + x.a, x.b - x.a, (size_t)z0 > x.a ? z0 - (int)x.a : 0, out);
    }
    return rc;
}

int tok_encode(tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids, int *n, ibc_err *err) {
    // Valid UTF-8 once here, so that every regex match can skip PCRE2's own check.
    size_t bad = tok_utf8_prefix(text, len);
    if (bad < len) return ibc_fail(err, IBC_EINPUT, "%s: text is not valid UTF-8 at byte %zu", t->name, bad);
    ivec out = {0};
    hits raw = {0}, h = {0};
    sbuf norm = {0};
    tok_rx rx = tok_rx_of(t, err);
    int rc = 0;
    if (add_special) iv_append(&out, t->post_pre.p, t->post_pre.n);
    split_added(t, text, len, 0, &raw);
    for (int i = 0; i < raw.n && rc == 0; i++) {
        if (raw.v[i].tok >= 0) iv_push(&out, t->added[raw.v[i].tok].id);
        else rc = encode_gap(t, &rx, text, raw.v[i], &norm, &h, &out);
    }
    if (add_special) iv_append(&out, t->post_post.p, t->post_post.n);
    free(raw.v);
    free(h.v);
    free(norm.p);
    if (rc) {
        free(out.p);
        return rc;
    }
    *ids = out.p ? out.p : xmalloc(sizeof(int32_t));
    *n = out.n;
    return 0;
}
