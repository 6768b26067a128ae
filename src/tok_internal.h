// tok_internal: what the tokenizer's rooms share (private; the contract is ibc/tokenizer.h).
//
// The rooms, in the order a text goes through them:
//   tok_load.c       tokenizer.json -> struct tokenizer (model, added tokens, pipeline nodes)
//   tok_encode.c     tok_encode: added tokens, then per gap normalize -> pre-tokenize -> BPE
//   tok_normalize.c  normalizers (string in, string out)
//   tok_pretok.c     pre-tokenizers (pieces in, pieces out)
//   tok_bpe.c        the BPE model on one word, and the word cache
//   tok_decode.c     tok_decode: ids -> token strings -> decoders -> text
//   tok_train.c      tok_train_bpe (only `ibc train` uses it)
//   tok_regex.c      every PCRE2 call: compiling, matching, turning its errors into ibc_err
//   tok_text.c       UTF-8 and byte-level helpers
// Memory follows ibc/mem.h: the buffers below grow through xgrow and never fail. Functions
// that can fail return 0 or an IBC_E* code with the error filled (never a bare -1).
#ifndef IBC_TOK_INTERNAL_H
#define IBC_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <string.h>

#include "ibc/err.h"
#include "ibc/hmap.h"
#include "ibc/limits.h"
#include "ibc/mem.h"
#include "ibc/tokenizer.h"

// ---- growing buffers ----
// xgrow with its capacity test inline: these grow in the innermost loops (one byte, one id).
#define TOK_GROW(p, cap, need)                  \
    do {                                        \
        if ((size_t)(need) > (cap)) xgrow(p, cap, need); \
    } while (0)
typedef struct { char *p; size_t n, cap; } sbuf;   // bytes, always NUL-terminated once used
typedef struct { int32_t *p; int n; size_t cap; } ivec;

static inline void sb_add(sbuf *b, const void *s, size_t n) {
    TOK_GROW(b->p, b->cap, b->n + n + 1);
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static inline void sb_reset(sbuf *b) { b->n = 0; sb_add(b, "", 0); }
static inline void iv_push(ivec *v, int32_t x) {
    TOK_GROW(v->p, v->cap, (size_t)v->n + 1);
    v->p[v->n++] = x;
}
static inline void iv_append(ivec *v, const int32_t *x, int k) {
    if (k <= 0) return;
    TOK_GROW(v->p, v->cap, (size_t)v->n + (size_t)k);
    memcpy(v->p + v->n, x, sizeof(int32_t) * (size_t)k);
    v->n += k;
}

// ---- the pipeline's parts, parsed from JSON ----
enum { N_NFC, N_NFD, N_NFKC, N_NFKD, N_LOWER, N_PREPEND, N_REPLACE, N_STRIP, N_SEQ };
enum { P_BYTELEVEL, P_SPLIT, P_DIGITS, P_METASPACE, P_SEQ };
enum { D_BYTELEVEL, D_METASPACE, D_BYTEFALLBACK, D_FUSE, D_STRIP, D_REPLACE, D_SEQ };
enum { B_REMOVED, B_ISOLATED, B_PREV, B_NEXT, B_CONTIGUOUS };
enum { PS_ALWAYS, PS_FIRST, PS_NEVER };

typedef struct node {
    int type;
    char *a, *b;          // strings: Prepend text, Replace pattern/content, Metaspace replacement, Strip content
    size_t alen, blen;
    pcre2_code *re;       // Replace / Split regex
    char *pat;            // its source text, for messages
    int x, y;             // flags: ByteLevel add_prefix_space/use_regex, Split behaviour/invert, Strip left/right or start/stop, Digits individual, Metaspace scheme/split
    struct node *kids;
    int nkids;
} node;

typedef struct {
    char *s;
    size_t n;
    char *m;          // the text matched: s itself, or, for a normalized token, s normalized
    size_t mn;        //   by the tokenizer's normalizer (as the reference builds its trie)
    int32_t id;       // an added token's id, or -1
    int special;      // that token is special
    int lstrip, rstrip, single_word, normalized;
} added_tok;

struct tokenizer {
    char name[IBC_PATH_MAX]; // the file (or name) given to tok_load / tok_parse, for messages
    hmap vocab;           // token -> id in val (model and added)
    char **id2tok;        // [nid]
    int nid;
    hmap merges;          // (id a, id b) -> rank << 32 | merged id
    int32_t unk;
    int byte_fallback, fuse_unk, ignore_merges;
    char *prefix, *suffix; // continuing_subword_prefix, end_of_word_suffix ("" if none)
    int32_t byte_id[256];  // <0xNN> ids, -1 when absent
    added_tok *added;
    int nadded;
    unsigned char *special; // [nid] 1 for special added tokens
    node *norm, *pre, *dec;
    ivec post_pre, post_post; // ids the post-processor puts before / after the sequence
    unsigned char first_byte[2][256]; // an added token (normalized = index) starts with this byte
    char *word_split;         // no pre-tokenizer: words may be cut before this string (see load)
    size_t word_split_n;
    hmap cache;               // word -> its ids in cache_ids[index]
    ivec *cache_ids;
    size_t cache_cap;
    pcre2_match_context *mctx;   // match limits (tests lower them); NULL: PCRE2's defaults
    pcre2_general_context *gctx; // PCRE2's allocations for matching (tests make them fail)
    int fail_alloc;              // test hook: PCRE2's allocations through gctx fail
};

// Where a regex runs, for its error messages: the tokenizer (its file name) and the offset in
// the caller's text of the part being worked on.
typedef struct {
    const char *name;
    ibc_err *err;
    pcre2_match_context *mctx;
    pcre2_general_context *gctx;
    size_t at;
} tok_rx;

// Parsing context: the file name and the JSON path of the node being parsed.
// Longest JSON path kept for messages ("pre_tokenizer.pretokenizers[3].pattern"): pipelines
// nest two or three levels, so 256 bytes never cut a real one.
#define TOK_JSON_PATH_MAX 256
typedef struct {
    const char *name;
    ibc_err *err;
    char path[TOK_JSON_PATH_MAX];
} pctx;

extern const char *const TOK_BYTELEVEL_RE; // GPT-2's pre-tokenizer regex

// ---- tok_regex.c ----
// Compiles pat[0..n) (n may be PCRE2_ZERO_TERMINATED) with UTF, UCP and JIT into n->re,
// keeping the source in n->pat; \s and \S mean Unicode White_Space as in the reference.
int tok_compile_re(pctx *c, const char *pat, size_t n, node *nd);
// Match data for nd's regex; NULL with IBC_ESYS set when PCRE2 cannot allocate it.
pcre2_match_data *tok_match_data(const tok_rx *rx, const node *nd);
// One match of nd's regex in s[0..n) from pos: 1 (ovector in md), 0 no match, or IBC_EINPUT /
// IBC_ESYS for any other PCRE2 result (match, depth or heap limit, no memory, ...) with a
// message naming the tokenizer, the pattern and the byte position.
int tok_match(const tok_rx *rx, const node *nd, const char *s, size_t n, size_t pos, pcre2_match_data *md);
// The runtime context of tokenizer t (err may be NULL until set).
tok_rx tok_rx_of(const tokenizer *t, ibc_err *err);
// Test hook (tests/test_tokenizer.c): PCRE2's match limit for t (0: the default) and whether
// PCRE2's allocations while matching fail as if out of memory.
void tok_test_pcre2(tokenizer *t, uint32_t match_limit, int fail_alloc);

// ---- tok_text.c ----
static inline int u8len(unsigned char c) { return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4; }
extern uint32_t tok_byte2cp[256]; // GPT-2's bytes_to_unicode
extern int tok_cp2byte[324];      // its inverse for code points < 324, -1 otherwise
void tok_init_bytemap(void);
void tok_add_cp(sbuf *b, uint32_t cp);
// Unicode White_Space (as Rust's char::is_whitespace) at s[i]; its length in *k.
int tok_is_space(const char *s, size_t n, size_t i, size_t *k);
// out += s with every `from` (left to right, not overlapping) replaced by `to`.
void tok_replace_literal(const char *s, size_t n, const char *from, size_t fn, const char *to, size_t tn, sbuf *out);
// Offset of the first byte of s[0..n) that does not start valid UTF-8, or n when all is valid.
size_t tok_utf8_prefix(const char *s, size_t n);

// ---- tok_normalize.c ----
// out = nd applied to s[0..n).
int tok_normalize(const tok_rx *rx, const node *nd, const char *s, size_t n, sbuf *out);

// ---- tok_pretok.c ----
// first: how many leading bytes of the piece map to offset 0 of the original text (0: none).
// The reference's Metaspace prepend_scheme "first" asks exactly that of a split.
typedef struct { char *s; size_t n; int first; } piece;
typedef struct { piece *v; int n; size_t cap; } plist;
void tok_pl_push(plist *l, const char *s, size_t n, int first); // empty pieces are dropped
void tok_pl_free(plist *l);
// out = the pieces of *in (consumed) through nd.
int tok_pretokenize(const tok_rx *rx, const node *nd, plist *in, plist *out);

// ---- tok_bpe.c ----
static inline int32_t tok_vocab_id(const tokenizer *t, const char *s, size_t n) {
    int64_t i = hmap_find(&t->vocab, s, n);
    return i < 0 ? -1 : (int32_t)t->vocab.val[i];
}
// One word through the BPE model (and the word cache), ids appended to out.
void tok_bpe_cached(tokenizer *t, const char *w, size_t n, ivec *out);

#endif
