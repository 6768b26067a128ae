// tok_normalize: the normalizers (NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip,
// Sequence), string in, string out.
#include <stdlib.h>
#include <utf8proc.h>

#include "tok_internal.h"

static int regex_replace(const tok_rx *rx, const node *nd, const char *s, size_t n, sbuf *out) {
    pcre2_match_data *md = tok_match_data(rx, nd);
    if (!md) return rx->err ? rx->err->code : IBC_ESYS;
    size_t pos = 0;
    int rc = 0;
    while (pos <= n && (rc = tok_match(rx, nd, s, n, pos, md)) == 1) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        sb_add(out, s + pos, ov[0] - pos);
        sb_add(out, nd->b, nd->blen);
        if (ov[1] == ov[0]) { // empty match: copy one character and go on
            if (ov[0] >= n) { pos = n + 1; break; }
            size_t k = (size_t)u8len((unsigned char)s[ov[0]]);
            sb_add(out, s + ov[0], k);
            pos = ov[0] + k;
        } else pos = ov[1];
    }
    if (rc == 1) rc = 0;
    if (rc == 0 && pos < n) sb_add(out, s + pos, n - pos);
    pcre2_match_data_free(md);
    return rc;
}

static int bad_utf8(const tok_rx *rx) {
    return ibc_fail(rx->err, IBC_EINPUT, "%s: text is not valid UTF-8 (text from byte %zu)", rx->name, rx->at);
}

// The reference's Lowercase maps each character on its own (Rust's char::to_lowercase): no
// context rule, so capital sigma is always small sigma (checked against the reference in
// tests/tokenizer-ref), and U+0130 becomes two characters, "i" + U+0307, which utf8proc's
// one-to-one mapping does not give.
static int lowercase(const tok_rx *rx, const char *s, size_t n, sbuf *out) {
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0) return bad_utf8(rx);
        i += (size_t)k;
        if (c == 0x130) {
            tok_add_cp(out, 'i');
            tok_add_cp(out, 0x307);
        } else tok_add_cp(out, (uint32_t)utf8proc_tolower(c));
    }
    return 0;
}

static int unicode_form(const tok_rx *rx, const node *nd, const char *s, size_t n, sbuf *out) {
    size_t ascii = 0;
    while (ascii < n && (unsigned char)s[ascii] < 0x80) ascii++;
    if (ascii == n) { // every normal form of ASCII is itself
        sb_add(out, s, n);
        return 0;
    }
    int opt = UTF8PROC_STABLE | (nd->type == N_NFC || nd->type == N_NFKC ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE) |
              (nd->type >= N_NFKC ? UTF8PROC_COMPAT : 0);
    utf8proc_uint8_t *d = NULL;
    utf8proc_ssize_t k = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &d, (utf8proc_option_t)opt);
    if (k == UTF8PROC_ERROR_NOMEM) return ibc_fail(rx->err, IBC_ESYS, "%s: out of memory normalizing the text", rx->name);
    if (k < 0) return bad_utf8(rx);
    sb_add(out, d, (size_t)k);
    free(d);
    return 0;
}

// Unicode White_Space at either end, as Rust's trim_start / trim_end.
static void strip(const node *nd, const char *s, size_t n, sbuf *out) {
    size_t a = 0, b = n, k;
    while (nd->x && a < b && tok_is_space(s, b, a, &k)) a += k;
    while (nd->y && b > a) {
        size_t j = b - 1;
        while (j > a && ((unsigned char)s[j] & 0xc0) == 0x80) j--;
        if (!tok_is_space(s, b, j, &k)) break;
        b = j;
    }
    sb_add(out, s + a, b - a);
}

int tok_normalize(const tok_rx *rx, const node *nd, const char *s, size_t n, sbuf *out) {
    sb_reset(out);
    switch (nd->type) {
    case N_NFC: case N_NFD: case N_NFKC: case N_NFKD:
        return unicode_form(rx, nd, s, n, out);
    case N_LOWER:
        return lowercase(rx, s, n, out);
    case N_PREPEND: // only a non-empty string gets the prefix
        if (n) {
            sb_add(out, nd->a, nd->alen);
            sb_add(out, s, n);
        }
        return 0;
    case N_REPLACE:
        if (nd->re) return regex_replace(rx, nd, s, n, out);
        tok_replace_literal(s, n, nd->a, nd->alen, nd->b, nd->blen, out);
        return 0;
    case N_STRIP:
        strip(nd, s, n, out);
        return 0;
    case N_SEQ: {
        sbuf cur = {0}, nxt = {0};
        sb_add(&cur, s, n);
        int rc = 0;
        for (int i = 0; rc == 0 && i < nd->nkids; i++) {
            rc = tok_normalize(rx, &nd->kids[i], cur.p, cur.n, &nxt);
            sbuf t = cur; cur = nxt; nxt = t;
        }
        if (rc == 0) { sb_reset(out); sb_add(out, cur.p, cur.n); }
        free(cur.p);
        free(nxt.p);
        return rc;
    }
    }
    return ibc_fail(rx->err, IBC_EINPUT, "%s: unknown normalizer %d", rx->name, nd->type);
}
