// tok_regex: every PCRE2 call of the tokenizer, and its errors made loud.
#include "tok_internal.h"

#include <stdio.h>
#include <stdlib.h>

const char *const TOK_BYTELEVEL_RE = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// The 25 Unicode White_Space code points, as the reference's regex engine means `\s`. PCRE2's
// own `\s` (with UCP) adds U+180E, which Unicode stopped calling a space in 6.3.
#define WS_RANGES "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

// Rewrites \s and \S into explicit classes; \S inside a class cannot be expressed: -1.
static int translate_ws(const char *p, size_t n, sbuf *out) {
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '\\' && i + 1 < n) {
            char e = p[i + 1];
            if (e == 's') sb_add(out, in_class ? WS_RANGES : "[" WS_RANGES "]", strlen(WS_RANGES) + (in_class ? 0 : 2));
            else if (e == 'S') {
                if (in_class) return -1;
                sb_add(out, "[^" WS_RANGES "]", strlen(WS_RANGES) + 3);
            } else sb_add(out, p + i, 2);
            i++;
            continue;
        }
        if (ch == '[' && !in_class) {
            in_class = 1;
            sb_add(out, p + i, 1);
            if (i + 1 < n && p[i + 1] == '^') { sb_add(out, "^", 1); i++; }
            if (i + 1 < n && p[i + 1] == ']') { sb_add(out, "]", 1); i++; } // a leading ] is literal
            continue;
        }
        if (ch == ']' && in_class) in_class = 0;
        sb_add(out, p + i, 1);
    }
    sb_add(out, "", 0);
    return 0;
}

int tok_compile_re(pctx *c, const char *pat, size_t n, node *nd) {
    int e;
    PCRE2_SIZE off;
    sbuf tp = {0};
    if (n == PCRE2_ZERO_TERMINATED) n = strlen(pat);
    nd->pat = xmalloc(n + 1);
    memcpy(nd->pat, pat, n);
    nd->pat[n] = 0;
    if (translate_ws(pat, n, &tp)) {
        free(tp.p);
        return ibc_fail(c->err, IBC_EINPUT, "%s: %s: unsupported \\S inside a character class", c->name, c->path);
    }
    nd->re = pcre2_compile((PCRE2_SPTR)tp.p, tp.n, PCRE2_UTF | PCRE2_UCP, &e, &off, NULL);
    free(tp.p);
    if (!nd->re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(e, msg, sizeof msg);
        return ibc_fail(c->err, IBC_EINPUT, "%s: %s: bad regex: %s", c->name, c->path, (char *)msg);
    }
    pcre2_jit_compile(nd->re, PCRE2_JIT_COMPLETE); // best effort; the interpreter is the fallback
    return 0;
}

tok_rx tok_rx_of(const tokenizer *t, ibc_err *err) { return (tok_rx){t->name, err, t->mctx, t->gctx, 0}; }

pcre2_match_data *tok_match_data(const tok_rx *rx, const node *nd) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(nd->re, rx->gctx);
    if (!md)
        ibc_fail(rx->err, IBC_ESYS, "%s: regex /%.80s/: out of memory for PCRE2's match data (text from byte %zu)", rx->name,
                 nd->pat, rx->at);
    return md;
}

int tok_match(const tok_rx *rx, const node *nd, const char *s, size_t n, size_t pos, pcre2_match_data *md) {
    // PCRE2_NO_UTF_CHECK: tok_encode checked the whole text once (PCRE2's own check would scan
    // the whole subject on every call: quadratic).
    int m = pcre2_match(nd->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, rx->mctx);
    if (m >= 0) return 1;
    if (m == PCRE2_ERROR_NOMATCH) return 0;
    PCRE2_UCHAR msg[160];
    pcre2_get_error_message(m, msg, sizeof msg);
    return ibc_fail(rx->err, m == PCRE2_ERROR_NOMEMORY ? IBC_ESYS : IBC_EINPUT,
                    "%s: regex /%.80s/ failed searching from byte %zu of a %zu-byte piece (text from byte %zu): %s (PCRE2 error %d)",
                    rx->name, nd->pat, pos, n, rx->at, (char *)msg, m);
}

// PCRE2's allocator for matching: plain malloc, because PCRE2 turns NULL into
// PCRE2_ERROR_NOMEMORY, which tok_match reports as an error (ibc/mem.h's policy for ibc's
// own allocations does not apply inside the library). The test hook makes it fail.
static void *pcre_alloc(PCRE2_SIZE n, void *data) {
    const tokenizer *t = data;
    return t->fail_alloc ? NULL : malloc(n);
}
static void pcre_free(void *p, void *data) {
    (void)data;
    free(p);
}

void tok_test_pcre2(tokenizer *t, uint32_t match_limit, int fail_alloc) {
    t->fail_alloc = 0; // the contexts themselves are allocated through gctx
    if (!t->gctx) t->gctx = pcre2_general_context_create(pcre_alloc, pcre_free, t);
    if (!t->mctx) t->mctx = pcre2_match_context_create(t->gctx);
    if (!t->gctx || !t->mctx) abort(); // test-only path: a test without memory cannot go on
    pcre2_set_match_limit(t->mctx, match_limit ? match_limit : 10000000); // PCRE2's default
    t->fail_alloc = fail_alloc;
}
