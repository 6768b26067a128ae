#include "ibc/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "ibc/io.h"

// ---------------------------------------------------------------------------------------------
// Small containers: byte buffers, id vectors, a string -> int map, a pair -> merge map

typedef struct { char *p; size_t n, cap; } sbuf;
typedef struct { int32_t *p; int n, cap; } ivec;

static int sb_add(sbuf *b, const void *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

static int iv_push(ivec *v, int32_t x) {
    if (v->n == v->cap) {
        int cap = v->cap ? 2 * v->cap : 64;
        int32_t *p = realloc(v->p, sizeof(int32_t) * (size_t)cap);
        if (!p) return -1;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = x;
    return 0;
}

static uint64_t hash_bytes(const void *s, size_t n) { // FNV-1a, then a final mix
    const unsigned char *p = s;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

typedef struct {
    char **key;
    uint32_t *klen;
    int32_t *val;
    size_t cap, n;
} smap;

static int32_t smap_get(const smap *m, const char *s, size_t n) {
    if (!m->cap) return -1;
    for (size_t i = hash_bytes(s, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->key[i]) return -1;
        if (m->klen[i] == n && !memcmp(m->key[i], s, n)) return m->val[i];
    }
}

static int smap_put(smap *m, const char *s, size_t n, int32_t v);

static int smap_grow(smap *m) {
    smap g = {0};
    g.cap = m->cap ? 2 * m->cap : 1024;
    g.key = calloc(g.cap, sizeof(char *));
    g.klen = calloc(g.cap, sizeof(uint32_t));
    g.val = calloc(g.cap, sizeof(int32_t));
    if (!g.key || !g.klen || !g.val) { free(g.key); free(g.klen); free(g.val); return -1; }
    for (size_t i = 0; i < m->cap; i++)
        if (m->key[i]) {
            size_t j = hash_bytes(m->key[i], m->klen[i]) & (g.cap - 1);
            while (g.key[j]) j = (j + 1) & (g.cap - 1);
            g.key[j] = m->key[i];
            g.klen[j] = m->klen[i];
            g.val[j] = m->val[i];
            g.n++;
        }
    free(m->key); free(m->klen); free(m->val);
    *m = g;
    return 0;
}

// Inserts or overwrites s -> v (the key is copied).
static int smap_put(smap *m, const char *s, size_t n, int32_t v) {
    if ((m->n + 1) * 10 > m->cap * 7 && smap_grow(m)) return -1;
    size_t i = hash_bytes(s, n) & (m->cap - 1);
    for (; m->key[i]; i = (i + 1) & (m->cap - 1))
        if (m->klen[i] == n && !memcmp(m->key[i], s, n)) { m->val[i] = v; return 0; }
    if (!(m->key[i] = malloc(n + 1))) return -1;
    memcpy(m->key[i], s, n);
    m->key[i][n] = 0;
    m->klen[i] = (uint32_t)n;
    m->val[i] = v;
    m->n++;
    return 0;
}

static void smap_free(smap *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->key[i]);
    free(m->key); free(m->klen); free(m->val);
    memset(m, 0, sizeof *m);
}

typedef struct { uint64_t *key; int32_t *rank, *id; size_t cap, n; } pmap; // (a, b) -> rank, merged id

static uint64_t pkey(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }
static uint64_t pmix(uint64_t k) { k ^= k >> 33; k *= 0xff51afd7ed558ccdULL; return k ^ (k >> 33); }

static int pmap_put(pmap *m, int32_t a, int32_t b, int32_t rank, int32_t id) {
    if ((m->n + 1) * 10 > m->cap * 7) {
        pmap g = {0};
        g.cap = m->cap ? 2 * m->cap : 4096;
        g.key = malloc(sizeof(uint64_t) * g.cap);
        g.rank = malloc(sizeof(int32_t) * g.cap);
        g.id = malloc(sizeof(int32_t) * g.cap);
        if (!g.key || !g.rank || !g.id) { free(g.key); free(g.rank); free(g.id); return -1; }
        memset(g.key, 0xff, sizeof(uint64_t) * g.cap); // all ones: empty
        for (size_t i = 0; i < m->cap; i++)
            if (m->key[i] != UINT64_MAX) {
                size_t j = pmix(m->key[i]) & (g.cap - 1);
                while (g.key[j] != UINT64_MAX) j = (j + 1) & (g.cap - 1);
                g.key[j] = m->key[i]; g.rank[j] = m->rank[i]; g.id[j] = m->id[i]; g.n++;
            }
        free(m->key); free(m->rank); free(m->id);
        *m = g;
    }
    uint64_t k = pkey(a, b);
    size_t i = pmix(k) & (m->cap - 1);
    for (; m->key[i] != UINT64_MAX; i = (i + 1) & (m->cap - 1))
        if (m->key[i] == k) return 0; // the first (lowest-rank) merge of a pair wins
    m->key[i] = k; m->rank[i] = rank; m->id[i] = id; m->n++;
    return 0;
}

static int pmap_get(const pmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *id) {
    if (!m->cap) return 0;
    uint64_t k = pkey(a, b);
    for (size_t i = pmix(k) & (m->cap - 1); m->key[i] != UINT64_MAX; i = (i + 1) & (m->cap - 1))
        if (m->key[i] == k) { *rank = m->rank[i]; *id = m->id[i]; return 1; }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// The pipeline's parts, parsed from JSON

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
    char name[512];
    smap vocab;           // token -> id (model and added)
    char **id2tok;        // [nid]
    int nid;
    pmap merges;
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
    smap cache;               // word -> index in cache_ids
    ivec *cache_ids;
    int ncache;
};

static const char *BYTELEVEL_RE = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef struct {
    const char *name;
    ibc_err *err;
    char path[256]; // JSON path of the node being parsed
} pctx;

static int unsupported(pctx *c, const char *what, const char *v) {
    return ibc_fail(c->err, IBC_EINPUT, "%s: %s: unsupported %s", c->name, c->path, v ? v : what);
}

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
            if (e == 's') {
                if (sb_add(out, in_class ? WS_RANGES : "[" WS_RANGES "]", strlen(WS_RANGES) + (in_class ? 0 : 2))) return -1;
            } else if (e == 'S') {
                if (in_class) return -1;
                if (sb_add(out, "[^" WS_RANGES "]", strlen(WS_RANGES) + 3)) return -1;
            } else if (sb_add(out, p + i, 2)) return -1;
            i++;
            continue;
        }
        if (ch == '[' && !in_class) {
            in_class = 1;
            if (sb_add(out, p + i, 1)) return -1;
            if (i + 1 < n && p[i + 1] == '^') { if (sb_add(out, "^", 1)) return -1; i++; }
            if (i + 1 < n && p[i + 1] == ']') { if (sb_add(out, "]", 1)) return -1; i++; } // a leading ] is literal
            continue;
        }
        if (ch == ']' && in_class) in_class = 0;
        if (sb_add(out, p + i, 1)) return -1;
    }
    return sb_add(out, "", 0);
}

static int compile_re(pctx *c, const char *pat, size_t n, pcre2_code **re) {
    int e;
    PCRE2_SIZE off;
    sbuf tp = {0};
    if (n == PCRE2_ZERO_TERMINATED) n = strlen(pat);
    if (translate_ws(pat, n, &tp)) {
        free(tp.p);
        return unsupported(c, "\\S inside a character class", NULL);
    }
    *re = pcre2_compile((PCRE2_SPTR)tp.p, tp.n, PCRE2_UTF | PCRE2_UCP, &e, &off, NULL);
    free(tp.p);
    if (!*re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(e, msg, sizeof msg);
        return ibc_fail(c->err, IBC_EINPUT, "%s: %s: bad regex: %s", c->name, c->path, (char *)msg);
    }
    pcre2_jit_compile(*re, PCRE2_JIT_COMPLETE); // best effort; the interpreter is the fallback
    return 0;
}

// {"String": s} or {"Regex": r}: a literal into (a, alen) or a compiled regex.
static int parse_pattern(pctx *c, json_t *p, node *n) {
    json_t *s = json_object_get(p, "String"), *r = json_object_get(p, "Regex");
    if (json_is_string(s)) {
        n->alen = json_string_length(s);
        n->a = malloc(n->alen + 1);
        if (!n->a) return ibc_fail(c->err, IBC_ESYS, "out of memory");
        memcpy(n->a, json_string_value(s), n->alen + 1);
        return 0;
    }
    if (json_is_string(r)) return compile_re(c, json_string_value(r), json_string_length(r), &n->re);
    return ibc_fail(c->err, IBC_EINPUT, "%s: %s.pattern: expected {\"String\": ...} or {\"Regex\": ...}", c->name, c->path);
}

static char *dupstr(json_t *v, size_t *len) {
    const char *s = json_string_value(v);
    if (!s) return NULL;
    size_t n = json_string_length(v);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    if (len) *len = n;
    return d;
}

static int parse_node(pctx *c, json_t *j, int kind, node *n);

static int parse_list(pctx *c, json_t *arr, const char *key, int kind, node *n) {
    if (!json_is_array(arr)) return ibc_fail(c->err, IBC_EINPUT, "%s: %s.%s: expected a list", c->name, c->path, key);
    n->nkids = (int)json_array_size(arr);
    n->kids = calloc((size_t)n->nkids + 1, sizeof(node));
    if (!n->kids) return ibc_fail(c->err, IBC_ESYS, "out of memory");
    size_t plen = strlen(c->path);
    for (int i = 0; i < n->nkids; i++) {
        snprintf(c->path + plen, sizeof c->path - plen, ".%s[%d]", key, i);
        int rc = parse_node(c, json_array_get(arr, (size_t)i), kind, &n->kids[i]);
        if (rc) return rc;
        c->path[plen] = 0;
    }
    return 0;
}

static int bool_of(json_t *j, const char *key, int def) {
    json_t *v = json_object_get(j, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

// kind: 0 normalizer, 1 pre-tokenizer, 2 decoder.
static int parse_node(pctx *c, json_t *j, int kind, node *n) {
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) return ibc_fail(c->err, IBC_EINPUT, "%s: %s.type: missing", c->name, c->path);
    size_t plen = strlen(c->path);
    snprintf(c->path + plen, sizeof c->path - plen, ".type");
    int rc = 0;
    if (kind == 0) {
        if (!strcmp(type, "NFC")) n->type = N_NFC;
        else if (!strcmp(type, "NFD")) n->type = N_NFD;
        else if (!strcmp(type, "NFKC")) n->type = N_NFKC;
        else if (!strcmp(type, "NFKD")) n->type = N_NFKD;
        else if (!strcmp(type, "Lowercase")) n->type = N_LOWER;
        else if (!strcmp(type, "Prepend")) {
            n->type = N_PREPEND;
            if (!(n->a = dupstr(json_object_get(j, "prepend"), &n->alen))) rc = unsupported(c, "Prepend without prepend", NULL);
        } else if (!strcmp(type, "Replace")) {
            n->type = N_REPLACE;
            c->path[plen] = 0;
            rc = parse_pattern(c, json_object_get(j, "pattern"), n);
            if (!rc && !(n->b = dupstr(json_object_get(j, "content"), &n->blen))) rc = unsupported(c, "Replace without content", NULL);
        } else if (!strcmp(type, "Strip")) {
            n->type = N_STRIP;
            n->x = bool_of(j, "strip_left", 1);
            n->y = bool_of(j, "strip_right", 1);
        } else if (!strcmp(type, "Sequence")) {
            n->type = N_SEQ;
            c->path[plen] = 0;
            rc = parse_list(c, json_object_get(j, "normalizers"), "normalizers", 0, n);
        } else rc = unsupported(c, NULL, type);
    } else if (kind == 1) {
        if (!strcmp(type, "ByteLevel")) {
            n->type = P_BYTELEVEL;
            n->x = bool_of(j, "add_prefix_space", 1);
            n->y = bool_of(j, "use_regex", 1);
            if (n->y) rc = compile_re(c, BYTELEVEL_RE, PCRE2_ZERO_TERMINATED, &n->re);
        } else if (!strcmp(type, "Split")) {
            n->type = P_SPLIT;
            const char *b = json_string_value(json_object_get(j, "behavior"));
            static const char *B[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
            n->x = -1;
            for (int i = 0; b && i < 5; i++)
                if (!strcmp(b, B[i])) n->x = i;
            n->y = bool_of(j, "invert", 0);
            c->path[plen] = 0;
            if (n->x < 0) {
                snprintf(c->path + plen, sizeof c->path - plen, ".behavior");
                rc = unsupported(c, "behavior", b);
            } else rc = parse_pattern(c, json_object_get(j, "pattern"), n);
        } else if (!strcmp(type, "Digits")) {
            n->type = P_DIGITS;
            n->x = bool_of(j, "individual_digits", 0);
        } else if (!strcmp(type, "Metaspace")) {
            n->type = P_METASPACE;
            n->a = dupstr(json_object_get(j, "replacement"), &n->alen);
            const char *ps = json_string_value(json_object_get(j, "prepend_scheme"));
            if (ps) n->x = !strcmp(ps, "always") ? PS_ALWAYS : !strcmp(ps, "first") ? PS_FIRST : !strcmp(ps, "never") ? PS_NEVER : -1;
            else n->x = bool_of(j, "add_prefix_space", 1) ? PS_ALWAYS : PS_NEVER; // older files
            n->y = bool_of(j, "split", 1);
            if (!n->a) rc = unsupported(c, "Metaspace without replacement", NULL);
            else if (n->x < 0) {
                snprintf(c->path + plen, sizeof c->path - plen, ".prepend_scheme");
                rc = unsupported(c, "prepend_scheme", ps);
            }
        } else if (!strcmp(type, "Sequence")) {
            n->type = P_SEQ;
            c->path[plen] = 0;
            rc = parse_list(c, json_object_get(j, "pretokenizers"), "pretokenizers", 1, n);
        } else rc = unsupported(c, NULL, type);
    } else {
        if (!strcmp(type, "ByteLevel")) n->type = D_BYTELEVEL;
        else if (!strcmp(type, "ByteFallback")) n->type = D_BYTEFALLBACK;
        else if (!strcmp(type, "Fuse")) n->type = D_FUSE;
        else if (!strcmp(type, "Metaspace")) {
            n->type = D_METASPACE;
            n->a = dupstr(json_object_get(j, "replacement"), &n->alen);
            const char *ps = json_string_value(json_object_get(j, "prepend_scheme"));
            n->x = ps ? (!strcmp(ps, "never") ? PS_NEVER : PS_ALWAYS) : (bool_of(j, "add_prefix_space", 1) ? PS_ALWAYS : PS_NEVER);
            if (!n->a) rc = unsupported(c, "Metaspace without replacement", NULL);
        } else if (!strcmp(type, "Strip")) {
            n->type = D_STRIP;
            n->a = dupstr(json_object_get(j, "content"), &n->alen);
            n->x = (int)json_integer_value(json_object_get(j, "start"));
            n->y = (int)json_integer_value(json_object_get(j, "stop"));
            if (!n->a) rc = unsupported(c, "Strip without content", NULL);
        } else if (!strcmp(type, "Replace")) {
            n->type = D_REPLACE;
            c->path[plen] = 0;
            rc = parse_pattern(c, json_object_get(j, "pattern"), n);
            if (!rc && n->re) rc = unsupported(c, "a Regex pattern in the Replace decoder", NULL);
            if (!rc && !(n->b = dupstr(json_object_get(j, "content"), &n->blen))) rc = unsupported(c, "Replace without content", NULL);
        } else if (!strcmp(type, "Sequence")) {
            n->type = D_SEQ;
            c->path[plen] = 0;
            rc = parse_list(c, json_object_get(j, "decoders"), "decoders", 2, n);
        } else rc = unsupported(c, NULL, type);
    }
    c->path[plen] = 0;
    return rc;
}

static void free_node(node *n) {
    if (!n) return;
    for (int i = 0; i < n->nkids; i++) free_node(&n->kids[i]);
    free(n->kids);
    free(n->a);
    free(n->b);
    if (n->re) pcre2_code_free(n->re);
}

// ---------------------------------------------------------------------------------------------
// UTF-8 helpers

static int u8len(unsigned char c) { return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4; }

// Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes one U+FFFD.
static int lossy_utf8(const unsigned char *s, size_t n, sbuf *out) {
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
            if (sb_add(out, s + i, need)) return -1;
            i += need;
        } else {
            if (sb_add(out, "\xef\xbf\xbd", 3)) return -1;
            i += k > 1 ? k : 1; // the valid prefix of a sequence counts as one error
        }
    }
    return 0;
}

// GPT-2's byte <-> printable character table (bytes_to_unicode).
static uint32_t byte2cp[256];
static int cp2byte[324]; // code points < 324 map back, -1 otherwise
static void init_bytemap(void) {
    static int done;
    if (done) return;
    int n = 0;
    for (int i = 0; i < 324; i++) cp2byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
        byte2cp[b] = keep ? (uint32_t)b : (uint32_t)(256 + n++);
        cp2byte[byte2cp[b]] = b;
    }
    done = 1;
}

static int add_cp(sbuf *b, uint32_t cp) {
    utf8proc_uint8_t tmp[4];
    utf8proc_ssize_t k = utf8proc_encode_char((utf8proc_int32_t)cp, tmp);
    return sb_add(b, tmp, (size_t)k);
}

// ---------------------------------------------------------------------------------------------
// Normalizers: string in, string out

// out += s with every occurrence of `from` (left to right, not overlapping) replaced by `to`.
static int replace_literal(const char *s, size_t n, const char *from, size_t fn, const char *to, size_t tn, sbuf *out) {
    if (sb_add(out, "", 0)) return -1;
    for (size_t i = 0; i < n;) {
        if (fn && i + fn <= n && !memcmp(s + i, from, fn)) {
            if (sb_add(out, to, tn)) return -1;
            i += fn;
        } else if (sb_add(out, s + i++, 1)) return -1;
    }
    return 0;
}

static int regex_replace(pcre2_code *re, const char *s, size_t n, const char *with, size_t wn, sbuf *out) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    size_t pos = 0;
    int rc = 0;
    while (pos <= n) {
        int m = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL); // checked once in tok_encode
        if (m < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (sb_add(out, s + pos, ov[0] - pos) || sb_add(out, with, wn)) { rc = -1; break; }
        if (ov[1] == ov[0]) { // empty match: copy one character and go on
            if (ov[0] >= n) { pos = n + 1; break; }
            size_t k = (size_t)u8len((unsigned char)s[ov[0]]);
            if (sb_add(out, s + ov[0], k)) { rc = -1; break; }
            pos = ov[0] + k;
        } else pos = ov[1];
    }
    if (rc == 0 && pos < n) rc = sb_add(out, s + pos, n - pos);
    pcre2_match_data_free(md);
    return rc;
}

static int is_space(const char *s, size_t n, size_t i, size_t *k);

// The reference's Lowercase maps each character on its own (Rust's char::to_lowercase): no
// context rule, so capital sigma is always small sigma (checked against the reference in
// tests/tokenizer-ref), and U+0130 becomes two characters, "i" + U+0307, which utf8proc's
// one-to-one mapping does not give.
static int lowercase(const char *s, size_t n, sbuf *out) {
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0) return -1;
        i += (size_t)k;
        int rc = c == 0x130 ? (add_cp(out, 'i') || add_cp(out, 0x307)) : add_cp(out, (uint32_t)utf8proc_tolower(c));
        if (rc) return -1;
    }
    return 0;
}

static int normalize(const node *nd, const char *s, size_t n, sbuf *out) {
    out->n = 0;
    if (sb_add(out, "", 0)) return -1;
    switch (nd->type) {
    case N_NFC: case N_NFD: case N_NFKC: case N_NFKD: {
        size_t ascii = 0;
        while (ascii < n && (unsigned char)s[ascii] < 0x80) ascii++;
        if (ascii == n) return sb_add(out, s, n); // every normal form of ASCII is itself
        int opt = UTF8PROC_STABLE | (nd->type == N_NFC || nd->type == N_NFKC ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE) |
                  (nd->type >= N_NFKC ? UTF8PROC_COMPAT : 0);
        utf8proc_uint8_t *d = NULL;
        utf8proc_ssize_t k = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &d, (utf8proc_option_t)opt);
        int rc = k < 0 ? -1 : sb_add(out, d, (size_t)k);
        free(d);
        return rc;
    }
    case N_LOWER:
        return lowercase(s, n, out);
    case N_PREPEND: // only a non-empty string gets the prefix
        return n ? (sb_add(out, nd->a, nd->alen) || sb_add(out, s, n)) : 0;
    case N_REPLACE:
        if (nd->re) return regex_replace(nd->re, s, n, nd->b, nd->blen, out);
        return replace_literal(s, n, nd->a, nd->alen, nd->b, nd->blen, out);
    case N_STRIP: { // Unicode White_Space at either end, as Rust's trim_start / trim_end
        size_t a = 0, b = n, k;
        while (nd->x && a < b && is_space(s, b, a, &k)) a += k;
        while (nd->y && b > a) {
            size_t j = b - 1;
            while (j > a && ((unsigned char)s[j] & 0xc0) == 0x80) j--;
            if (!is_space(s, b, j, &k)) break;
            b = j;
        }
        return sb_add(out, s + a, b - a);
    }
    case N_SEQ: {
        sbuf cur = {0}, nxt = {0};
        int rc = sb_add(&cur, s, n);
        for (int i = 0; rc == 0 && i < nd->nkids; i++) {
            rc = normalize(&nd->kids[i], cur.p, cur.n, &nxt);
            sbuf t = cur; cur = nxt; nxt = t;
        }
        if (rc == 0) { out->n = 0; rc = sb_add(out, cur.p, cur.n); }
        free(cur.p);
        free(nxt.p);
        return rc;
    }
    }
    return -1;
}

// ---------------------------------------------------------------------------------------------
// Pre-tokenizers: a list of pieces in, a list of pieces out

// first: how many leading bytes of the piece map to offset 0 of the original text (0: none).
// The reference's Metaspace prepend_scheme "first" asks exactly that of a split.
typedef struct { char *s; size_t n; int first; } piece;
typedef struct { piece *v; int n, cap; } plist;

static int pl_push(plist *l, const char *s, size_t n, int first) {
    if (!n) return 0; // HF drops empty splits
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        piece *v = realloc(l->v, sizeof(piece) * (size_t)cap);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    char *d = malloc(n + 1);
    if (!d) return -1;
    memcpy(d, s, n);
    d[n] = 0;
    l->v[l->n++] = (piece){d, n, first};
    return 0;
}

static void pl_free(plist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i].s);
    free(l->v);
    memset(l, 0, sizeof *l);
}

typedef struct { size_t a, b; int match; } seg;
typedef struct { seg *v; int n, cap; } slist;

static int sl_push(slist *l, size_t a, size_t b, int match) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 32;
        seg *v = realloc(l->v, sizeof(seg) * (size_t)cap);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (seg){a, b, match};
    return 0;
}

// Segments of s: maximal runs between and including the matches of a regex, a literal, or a
// per-character predicate (pred: 1 numeric, 2 the literal as one character).
static int find_segments(const node *nd, int pred, const char *s, size_t n, slist *out) {
    out->n = 0;
    size_t prev = 0;
    if (pred) { // each matching character is its own match
        for (size_t i = 0; i < n;) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
            if (k <= 0) return -1;
            int hit;
            if (pred == 1) {
                utf8proc_category_t cat = utf8proc_category(cp);
                hit = cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
            } else hit = (size_t)k == nd->alen && !memcmp(s + i, nd->a, (size_t)k);
            if (hit) {
                if (prev < i && sl_push(out, prev, i, 0)) return -1;
                if (sl_push(out, i, i + (size_t)k, 1)) return -1;
                prev = i + (size_t)k;
            }
            i += (size_t)k;
        }
    } else if (nd->re) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(nd->re, NULL);
        size_t pos = 0;
        while (pos <= n) {
            int m = pcre2_match(nd->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL); // checked once in tok_encode
            if (m < 0) break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (prev < ov[0]) sl_push(out, prev, ov[0], 0);
            sl_push(out, ov[0], ov[1], 1);
            prev = ov[1];
            pos = ov[1] > ov[0] ? ov[1] : ov[0] + (ov[0] < n ? (size_t)u8len((unsigned char)s[ov[0]]) : 1);
        }
        pcre2_match_data_free(md);
    } else if (nd->alen) {
        for (size_t i = 0; i + nd->alen <= n;) {
            if (!memcmp(s + i, nd->a, nd->alen)) {
                if (prev < i) sl_push(out, prev, i, 0);
                sl_push(out, i, i + nd->alen, 1);
                i += nd->alen;
                prev = i;
            } else i++;
        }
    }
    if (prev < n && sl_push(out, prev, n, 0)) return -1;
    return 0;
}

// HF's SplitDelimiterBehavior on segments, then the pieces.
static int split_by(int behavior, int invert, slist *sg, const char *s, int first, plist *out) {
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
    int rc = 0;
    for (int i = 0; i < r.n && rc == 0; i++) // a split starting inside the first stretch is "first" too
        rc = pl_push(out, s + r.v[i].a, r.v[i].b - r.v[i].a, (size_t)first > r.v[i].a ? first - (int)r.v[i].a : 0);
    free(r.v);
    return rc;
}

static int pretokenize(const node *nd, plist *in, plist *out) {
    int rc = 0;
    if (nd->type == P_SEQ) {
        plist cur = *in, nxt = {0};
        memset(in, 0, sizeof *in);
        for (int i = 0; rc == 0 && i < nd->nkids; i++) {
            rc = pretokenize(&nd->kids[i], &cur, &nxt);
            pl_free(&cur);
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
        case P_BYTELEVEL: {
            tmp.n = 0;
            if (nd->x && p.s[0] != ' ') rc = sb_add(&tmp, " ", 1);
            if (!rc) rc = sb_add(&tmp, p.s, p.n);
            plist words = {0};
            if (!rc && nd->y) {
                node re = {.re = nd->re};
                rc = find_segments(&re, 0, tmp.p, tmp.n, &sg) || split_by(B_ISOLATED, 0, &sg, tmp.p, p.first, &words);
            } else if (!rc) rc = pl_push(&words, tmp.p, tmp.n, p.first);
            for (int w = 0; w < words.n && rc == 0; w++) { // every byte to its printable character
                sbuf m = {0};
                for (size_t k = 0; k < words.v[w].n && rc == 0; k++) rc = add_cp(&m, byte2cp[(unsigned char)words.v[w].s[k]]);
                if (!rc) rc = pl_push(out, m.p, m.n, words.v[w].first);
                free(m.p);
            }
            pl_free(&words);
            break;
        }
        case P_SPLIT:
            rc = find_segments(nd, 0, p.s, p.n, &sg) || split_by(nd->x, nd->y, &sg, p.s, p.first, out);
            break;
        case P_DIGITS:
            rc = find_segments(nd, 1, p.s, p.n, &sg) || split_by(nd->x ? B_ISOLATED : B_CONTIGUOUS, 0, &sg, p.s, p.first, out);
            break;
        case P_METASPACE: {
            tmp.n = 0;
            rc = sb_add(&tmp, "", 0);
            int prepend = nd->x == PS_ALWAYS || (nd->x == PS_FIRST && p.first > 0);
            int starts = p.n >= nd->alen && !memcmp(p.s, nd->a, nd->alen);
            if (prepend && !starts && p.s[0] != ' ') rc = sb_add(&tmp, nd->a, nd->alen);
            for (size_t k = 0; k < p.n && rc == 0; k++) rc = p.s[k] == ' ' ? sb_add(&tmp, nd->a, nd->alen) : sb_add(&tmp, p.s + k, 1);
            if (rc) break;
            if (nd->y) rc = find_segments(nd, 2, tmp.p, tmp.n, &sg) || split_by(B_NEXT, 0, &sg, tmp.p, p.first, out);
            else rc = pl_push(out, tmp.p, tmp.n, p.first);
            break;
        }
        }
    }
    free(sg.v);
    free(tmp.p);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// BPE

static int32_t vocab_id(const tokenizer *t, const char *s, size_t n) { return smap_get(&t->vocab, s, n); }

// Candidate merge of the symbol at pos with its right neighbour, ordered by (rank, pos): the
// lowest rank first, the leftmost among equals, as the reference's heap.
typedef struct { int32_t rank, pos, id; } cand;

static int cand_less(cand a, cand b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

typedef struct { cand *v; int n, cap; } heap;

static int heap_push(heap *h, cand c) {
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 64;
        cand *v = realloc(h->v, sizeof(cand) * (size_t)cap);
        if (!v) return -1;
        h->v = v;
        h->cap = cap;
    }
    int i = h->n++;
    while (i > 0 && cand_less(c, h->v[(i - 1) / 2])) { h->v[i] = h->v[(i - 1) / 2]; i = (i - 1) / 2; }
    h->v[i] = c;
    return 0;
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

// Applies merges to the symbols in place: a linked list and a heap of candidates, O(n log n);
// a popped candidate whose pair has changed since it was pushed is skipped.
static int merge_all(const tokenizer *t, ivec *sym) {
    int n = sym->n, rc = 0;
    int *next = malloc(sizeof(int) * (size_t)n), *prev = malloc(sizeof(int) * (size_t)n);
    heap h = {0};
    if (!next || !prev) { free(next); free(prev); return -1; }
    for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }
    int32_t r, id;
    for (int i = 0; i + 1 < n && rc == 0; i++)
        if (pmap_get(&t->merges, sym->p[i], sym->p[i + 1], &r, &id)) rc = heap_push(&h, (cand){r, i, id});
    while (rc == 0 && h.n) {
        cand c = heap_pop(&h);
        int a = c.pos, b = next[a];
        if (sym->p[a] < 0 || b < 0 || !pmap_get(&t->merges, sym->p[a], sym->p[b], &r, &id) || r != c.rank || id != c.id)
            continue; // stale
        sym->p[a] = c.id;
        sym->p[b] = -1; // removed
        next[a] = next[b];
        if (next[b] >= 0) prev[next[b]] = a;
        if (prev[a] >= 0 && pmap_get(&t->merges, sym->p[prev[a]], sym->p[a], &r, &id)) rc = heap_push(&h, (cand){r, prev[a], id});
        if (rc == 0 && next[a] >= 0 && pmap_get(&t->merges, sym->p[a], sym->p[next[a]], &r, &id)) rc = heap_push(&h, (cand){r, a, id});
    }
    int m = 0;
    for (int i = 0; i < n; i++)
        if (sym->p[i] >= 0) sym->p[m++] = sym->p[i];
    sym->n = m;
    free(next); free(prev); free(h.v);
    return rc;
}

// One word to ids, appended to out.
static int bpe_word(tokenizer *t, const char *w, size_t n, ivec *out) {
    int32_t id;
    if (t->ignore_merges && (id = vocab_id(t, w, n)) >= 0) return iv_push(out, id);
    ivec sym = {0};
    sbuf s = {0};
    int rc = 0, last_unk = 0;
    size_t pl = strlen(t->prefix), sl = strlen(t->suffix);
    for (size_t i = 0; i < n && rc == 0;) {
        size_t k = (size_t)u8len((unsigned char)w[i]);
        if (i + k > n) k = n - i;
        s.n = 0;
        rc = sb_add(&s, "", 0);
        if (i > 0 && pl) rc = sb_add(&s, t->prefix, pl);
        if (!rc) rc = sb_add(&s, w + i, k);
        if (!rc && i + k == n && sl) rc = sb_add(&s, t->suffix, sl);
        i += k;
        if (rc) break;
        if ((id = vocab_id(t, s.p, s.n)) >= 0) {
            rc = iv_push(&sym, id);
            last_unk = 0;
            continue;
        }
        if (t->byte_fallback) {
            int all = 1;
            for (size_t b = 0; b < s.n; b++) all &= t->byte_id[(unsigned char)s.p[b]] >= 0;
            if (all) {
                for (size_t b = 0; b < s.n && rc == 0; b++) rc = iv_push(&sym, t->byte_id[(unsigned char)s.p[b]]);
                last_unk = 0;
                continue;
            }
        }
        if (t->unk >= 0) {
            if (!(t->fuse_unk && last_unk)) rc = iv_push(&sym, t->unk);
            last_unk = 1;
        }
    }
    if (rc == 0 && sym.n > 1) rc = merge_all(t, &sym);
    for (int i = 0; i < sym.n && rc == 0; i++) rc = iv_push(out, sym.p[i]);
    free(sym.p);
    free(s.p);
    return rc;
}

#define CACHE_MAX 200000

static int bpe_cached(tokenizer *t, const char *w, size_t n, ivec *out) {
    int32_t c = smap_get(&t->cache, w, n);
    if (c >= 0) {
        for (int i = 0; i < t->cache_ids[c].n; i++)
            if (iv_push(out, t->cache_ids[c].p[i])) return -1;
        return 0;
    }
    ivec ids = {0};
    if (bpe_word(t, w, n, &ids)) { free(ids.p); return -1; }
    for (int i = 0; i < ids.n; i++)
        if (iv_push(out, ids.p[i])) { free(ids.p); return -1; }
    if (n > 256 || t->ncache >= CACHE_MAX) { free(ids.p); return 0; } // long words are rare
    ivec *ci = realloc(t->cache_ids, sizeof(ivec) * (size_t)(t->ncache + 1));
    if (!ci) { free(ids.p); return 0; }
    t->cache_ids = ci;
    t->cache_ids[t->ncache] = ids;
    if (smap_put(&t->cache, w, n, t->ncache)) { free(ids.p); return 0; }
    t->ncache++;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Added tokens: leftmost-longest matches split a text into tokens and gaps

static int is_space(const char *s, size_t n, size_t i, size_t *k) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t m = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
    if (m <= 0) return 0;
    *k = (size_t)m;
    return utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS || cp == '\t' || cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c ||
           cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

static int is_word_char(const char *s, size_t n, size_t i) {
    utf8proc_int32_t cp;
    if (utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp) <= 0) return 0;
    utf8proc_category_t c = utf8proc_category(cp);
    return cp == '_' || (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) || (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

typedef struct { size_t a, b; int tok; } hit; // tok: index in t->added, -1 for a gap

// Splits s on the added tokens whose `normalized` equals `normalized`.
static int split_added(const tokenizer *t, const char *s, size_t n, int normalized, hit **out, int *nout) {
    int cap = 16, m = 0;
    hit *h = malloc(sizeof(hit) * (size_t)cap);
    if (!h) return -1;
    size_t gap = 0;
    for (size_t i = 0; i < n;) {
        int best = -1;
        size_t bl = 0;
        if (!t->first_byte[normalized][(unsigned char)s[i]]) { i++; continue; }
        for (int k = 0; k < t->nadded; k++) {
            const added_tok *a = &t->added[k];
            if (a->normalized != normalized || a->mn <= bl || i + a->mn > n || memcmp(s + i, a->m, a->mn)) continue;
            if (a->single_word && ((i > 0 && is_word_char(s, n, i - 1)) || (i + a->mn < n && is_word_char(s, n, i + a->mn)))) continue;
            best = k;
            bl = a->mn;
        }
        if (best < 0) { i += (size_t)u8len((unsigned char)s[i]); continue; }
        size_t a = i, b = i + bl, k;
        if (t->added[best].lstrip) // whitespace before the token belongs to it
            while (a > gap) {
                size_t j = a - 1;
                while (j > gap && ((unsigned char)s[j] & 0xc0) == 0x80) j--;
                if (!is_space(s, n, j, &k)) break;
                a = j;
            }
        if (t->added[best].rstrip)
            while (b < n && is_space(s, n, b, &k)) b += k;
        if (m + 2 > cap) {
            hit *nh = realloc(h, sizeof(hit) * (size_t)(cap *= 2));
            if (!nh) { free(h); return -1; }
            h = nh;
        }
        if (gap < a) h[m++] = (hit){gap, a, -1};
        h[m++] = (hit){a, b, best};
        gap = i = b;
    }
    if (gap < n) {
        if (m + 1 > cap) {
            hit *nh = realloc(h, sizeof(hit) * (size_t)(cap + 1));
            if (!nh) { free(h); return -1; }
            h = nh;
        }
        h[m++] = (hit){gap, n, -1};
    }
    *out = h;
    *nout = m;
    return 0;
}

// A gap of text (not an added token) through pre-tokenizer and model.
static int encode_words(tokenizer *t, const char *s, size_t n, int first, ivec *out) {
    plist in = {0}, words = {0};
    int rc = pl_push(&in, s, n, first);
    if (rc == 0 && t->pre) {
        rc = pretokenize(t->pre, &in, &words);
    } else if (rc == 0 && t->word_split) { // exact: no token spans the cut (see tok_parse)
        size_t w = t->word_split_n, a = 0;
        for (size_t i = w; i + w <= n && rc == 0; i++) // cut before a marker that follows a non-marker
            if (!memcmp(s + i, t->word_split, w) && memcmp(s + i - w, t->word_split, w) && i > a) {
                rc = pl_push(&words, s + a, i - a, first && a == 0);
                a = i;
            }
        if (rc == 0) rc = pl_push(&words, s + a, n - a, first && a == 0);
    } else {
        words = in;
        memset(&in, 0, sizeof in);
    }
    for (int i = 0; i < words.n && rc == 0; i++) rc = bpe_cached(t, words.v[i].s, words.v[i].n, out);
    pl_free(&in);
    pl_free(&words);
    return rc;
}

// Bytes at the start of normalize(nd, s) that map to offset 0 of s: what a Prepend added,
// then the first character. None when Strip took leading characters away.
static void norm_prefix(const node *nd, const char *s, size_t n, size_t *prepended, int *stripped) {
    if (!nd) return;
    if (nd->type == N_PREPEND && n) *prepended += nd->alen;
    size_t k;
    if (nd->type == N_STRIP && nd->x && n && is_space(s, n, 0, &k)) *stripped = 1;
    for (int i = 0; i < nd->nkids; i++) norm_prefix(&nd->kids[i], s, n, prepended, stripped);
}

static int zero_end(const node *nd, const char *orig, size_t on, const char *s, size_t n) {
    size_t pre = 0;
    int stripped = 0;
    norm_prefix(nd, orig, on, &pre, &stripped);
    if (stripped || pre >= n) return stripped ? 0 : (int)n;
    return (int)(pre + (size_t)u8len((unsigned char)s[pre]));
}

int tok_encode(tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids, int *n, ibc_err *err) {
    // Valid UTF-8 once here, so that every regex match can skip PCRE2's own check (which
    // scans the whole subject on each call: quadratic).
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0) return ibc_fail(err, IBC_EINPUT, "%s: text is not valid UTF-8 at byte %zu", t->name, i);
        i += (size_t)k;
    }
    ivec out = {0};
    hit *raw = NULL;
    int nraw = 0, rc = 0;
    if (add_special)
        for (int i = 0; i < t->post_pre.n && rc == 0; i++) rc = iv_push(&out, t->post_pre.p[i]);
    if (rc == 0) rc = split_added(t, text, len, 0, &raw, &nraw);
    sbuf norm = {0};
    for (int i = 0; i < nraw && rc == 0; i++) {
        if (raw[i].tok >= 0) { rc = iv_push(&out, t->added[raw[i].tok].id); continue; }
        const char *s = text + raw[i].a;
        size_t sn = raw[i].b - raw[i].a;
        int z0 = raw[i].a == 0 && sn ? u8len((unsigned char)s[0]) : 0; // bytes mapping to offset 0
        if (t->norm) {
            if ((rc = normalize(t->norm, s, sn, &norm))) break;
            if (raw[i].a == 0) z0 = zero_end(t->norm, s, sn, norm.p, norm.n);
            s = norm.p;
            sn = norm.n;
        }
        hit *h = NULL;
        int nh = 0;
        if ((rc = split_added(t, s, sn, 1, &h, &nh))) break;
        for (int k = 0; k < nh && rc == 0; k++)
            rc = h[k].tok >= 0 ? iv_push(&out, t->added[h[k].tok].id)
                               : encode_words(t, s + h[k].a, h[k].b - h[k].a, (size_t)z0 > h[k].a ? z0 - (int)h[k].a : 0, &out);
        free(h);
    }
    if (add_special)
        for (int i = 0; i < t->post_post.n && rc == 0; i++) rc = iv_push(&out, t->post_post.p[i]);
    free(raw);
    free(norm.p);
    if (rc) {
        free(out.p);
        return ibc_fail(err, IBC_ESYS, "%s: encoding failed (out of memory or invalid UTF-8)", t->name);
    }
    *ids = out.p ? out.p : malloc(sizeof(int32_t));
    *n = out.n;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Decoders: a list of token strings in, a list out; finally joined

typedef struct { sbuf *v; int n; } tlist;

static void tl_free(tlist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i].p);
    free(l->v);
    memset(l, 0, sizeof *l);
}

// Replaces the list by the single string s (taken over).
static int tl_single(tlist *l, sbuf s) {
    tl_free(l);
    if (!(l->v = malloc(sizeof(sbuf)))) { free(s.p); return -1; }
    l->v[0] = s;
    l->n = 1;
    return 0;
}

static int decode_chain(const node *d, tlist *l) {
    int rc = 0;
    switch (d->type) {
    case D_SEQ:
        for (int i = 0; i < d->nkids && rc == 0; i++) rc = decode_chain(&d->kids[i], l);
        return rc;
    case D_BYTELEVEL: { // every character back to its byte; a token with any other character stays as it is
        sbuf bytes = {0}, res = {0};
        for (int i = 0; i < l->n && rc == 0; i++) {
            sbuf tb = {0};
            int all = 1;
            for (size_t k = 0; k < l->v[i].n && all;) {
                utf8proc_int32_t cp;
                utf8proc_ssize_t m = utf8proc_iterate((const utf8proc_uint8_t *)l->v[i].p + k, (utf8proc_ssize_t)(l->v[i].n - k), &cp);
                if (m <= 0 || cp >= 324 || cp2byte[cp] < 0) { all = 0; break; }
                unsigned char b = (unsigned char)cp2byte[cp];
                rc |= sb_add(&tb, &b, 1);
                k += (size_t)m;
            }
            rc |= all ? sb_add(&bytes, tb.p ? tb.p : "", tb.n) : sb_add(&bytes, l->v[i].p, l->v[i].n);
            free(tb.p);
        }
        rc |= sb_add(&res, "", 0) || lossy_utf8((unsigned char *)bytes.p, bytes.n, &res);
        free(bytes.p);
        return tl_single(l, res) || rc;
    }
    case D_METASPACE: // the marker becomes a space, and vanishes from the first token unless "never"
        for (int i = 0; i < l->n && rc == 0; i++) {
            sbuf o = {0};
            int drop = i == 0 && d->x != PS_NEVER;
            rc = replace_literal(l->v[i].p, l->v[i].n, d->a, d->alen, " ", drop ? 0 : 1, &o);
            free(l->v[i].p);
            l->v[i] = o;
        }
        return rc;
    case D_BYTEFALLBACK: { // runs of <0xNN> become bytes; an invalid run is one U+FFFD per byte
        tlist o = {calloc((size_t)l->n + 1, sizeof(sbuf)), 0};
        sbuf run = {0};
        if (!o.v) return -1;
        for (int i = 0; i <= l->n && rc == 0; i++) {
            unsigned int b;
            char tail;
            int isbyte = i < l->n && l->v[i].n == 6 && sscanf(l->v[i].p, "<0x%2X%c", &b, &tail) == 2 && tail == '>';
            if (isbyte) { unsigned char c = (unsigned char)b; rc = sb_add(&run, &c, 1); continue; }
            if (run.n) {
                sbuf chk = {0};
                int valid = utf8proc_decompose((const utf8proc_uint8_t *)run.p, (utf8proc_ssize_t)run.n, NULL, 0, 0) >= 0;
                if (valid) rc = sb_add(&chk, run.p, run.n);
                else for (size_t k = 0; k < run.n && rc == 0; k++) rc = sb_add(&chk, "\xef\xbf\xbd", 3);
                o.v[o.n++] = chk;
                run.n = 0;
            }
            if (i < l->n) { o.v[o.n++] = l->v[i]; l->v[i].p = NULL; }
        }
        free(run.p);
        tl_free(l);
        *l = o;
        return rc;
    }
    case D_FUSE: {
        sbuf all = {0};
        rc = sb_add(&all, "", 0);
        for (int i = 0; i < l->n && rc == 0; i++) rc = sb_add(&all, l->v[i].p ? l->v[i].p : "", l->v[i].n);
        return tl_single(l, all) || rc;
    }
    case D_STRIP:
        for (int i = 0; i < l->n; i++) {
            sbuf *s = &l->v[i];
            size_t a = 0, b = s->n;
            for (int k = 0; k < d->x && a + d->alen <= b && !memcmp(s->p + a, d->a, d->alen); k++) a += d->alen;
            for (int k = 0; k < d->y && b >= a + d->alen && !memcmp(s->p + b - d->alen, d->a, d->alen); k++) b -= d->alen;
            memmove(s->p, s->p + a, b - a);
            s->n = b - a;
            s->p[s->n] = 0;
        }
        return 0;
    case D_REPLACE:
        for (int i = 0; i < l->n && rc == 0; i++) {
            sbuf o = {0};
            rc = replace_literal(l->v[i].p, l->v[i].n, d->a, d->alen, d->b, d->blen, &o);
            free(l->v[i].p);
            l->v[i] = o;
        }
        return rc;
    }
    return -1;
}

int tok_decode(const tokenizer *t, const int32_t *ids, int n, int skip_special, char **out, size_t *len, ibc_err *err) {
    tlist l = {calloc((size_t)n + 1, sizeof(sbuf)), 0};
    int rc = l.v ? 0 : -1;
    for (int i = 0; i < n && rc == 0; i++) {
        if (ids[i] < 0 || ids[i] >= t->nid || !t->id2tok[ids[i]]) {
            tl_free(&l);
            return ibc_fail(err, IBC_EINPUT, "%s: id %d is not in the vocabulary", t->name, ids[i]);
        }
        if (skip_special && t->special[ids[i]]) continue;
        rc = sb_add(&l.v[l.n++], t->id2tok[ids[i]], strlen(t->id2tok[ids[i]]));
    }
    sbuf res = {0};
    if (rc == 0 && t->dec) rc = decode_chain(t->dec, &l);
    rc |= sb_add(&res, "", 0);
    for (int i = 0; i < l.n && rc == 0; i++) // no decoder: tokens joined by spaces, as HF
        rc = (!t->dec && i && sb_add(&res, " ", 1)) || sb_add(&res, l.v[i].p ? l.v[i].p : "", l.v[i].n);
    tl_free(&l);
    if (rc) { free(res.p); return ibc_fail(err, IBC_ESYS, "%s: decoding failed (out of memory)", t->name); }
    *out = res.p;
    if (len) *len = res.n;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Loading

static int set_token(tokenizer *t, const char *s, size_t n, int32_t id) {
    if (id >= t->nid) {
        int nn = id + 1;
        char **p = realloc(t->id2tok, sizeof(char *) * (size_t)nn);
        unsigned char *sp = realloc(t->special, (size_t)nn);
        if (p) t->id2tok = p;
        if (sp) t->special = sp;
        if (!p || !sp) return -1;
        for (int i = t->nid; i < nn; i++) { t->id2tok[i] = NULL; t->special[i] = 0; }
        t->nid = nn;
    }
    free(t->id2tok[id]);
    if (!(t->id2tok[id] = malloc(n + 1))) return -1;
    memcpy(t->id2tok[id], s, n);
    t->id2tok[id][n] = 0;
    return smap_put(&t->vocab, s, n, id);
}

static int parse_model(pctx *c, tokenizer *t, json_t *m) {
    const char *type = json_string_value(json_object_get(m, "type"));
    strcpy(c->path, "model.type");
    if (type && strcmp(type, "BPE")) return unsupported(c, NULL, type);
    json_t *vocab = json_object_get(m, "vocab"), *merges = json_object_get(m, "merges");
    strcpy(c->path, "model.vocab");
    if (!json_is_object(vocab)) return ibc_fail(c->err, IBC_EINPUT, "%s: model.vocab: expected an object", c->name);
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) {
        json_int_t id = json_integer_value(v);
        if (!json_is_integer(v) || id < 0 || id > (1 << 24))
            return ibc_fail(c->err, IBC_EINPUT, "%s: model.vocab[%.60s]: expected an id in [0, 2^24]", c->name, k);
        if (set_token(t, k, strlen(k), (int32_t)id)) return ibc_fail(c->err, IBC_ESYS, "out of memory");
    }
    t->byte_fallback = bool_of(m, "byte_fallback", 0);
    t->fuse_unk = bool_of(m, "fuse_unk", 0);
    t->ignore_merges = bool_of(m, "ignore_merges", 0);
    const char *unk = json_string_value(json_object_get(m, "unk_token"));
    t->unk = unk ? vocab_id(t, unk, strlen(unk)) : -1;
    if (unk && t->unk < 0) return ibc_fail(c->err, IBC_EINPUT, "%s: model.unk_token: %.60s is not in the vocabulary", c->name, unk);
    const char *p = json_string_value(json_object_get(m, "continuing_subword_prefix"));
    const char *s = json_string_value(json_object_get(m, "end_of_word_suffix"));
    t->prefix = strdup(p ? p : "");
    t->suffix = strdup(s ? s : "");
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_id[b] = vocab_id(t, name, 6);
    }
    if (!json_is_array(merges)) return ibc_fail(c->err, IBC_EINPUT, "%s: model.merges: expected a list", c->name);
    size_t plen = strlen(t->prefix);
    sbuf joined = {0};
    for (size_t r = 0; r < json_array_size(merges); r++) {
        json_t *e = json_array_get(merges, r);
        const char *a = NULL, *b = NULL;
        size_t an = 0, bn = 0;
        if (json_is_string(e)) { // "a b"
            const char *str = json_string_value(e), *sp = strchr(str, ' ');
            if (sp) { a = str; an = (size_t)(sp - str); b = sp + 1; bn = strlen(b); }
        } else if (json_is_array(e) && json_array_size(e) == 2) { // [a, b]
            a = json_string_value(json_array_get(e, 0));
            b = json_string_value(json_array_get(e, 1));
            if (a && b) { an = json_string_length(json_array_get(e, 0)); bn = json_string_length(json_array_get(e, 1)); }
        }
        if (!a || !b) { free(joined.p); return ibc_fail(c->err, IBC_EINPUT, "%s: model.merges[%zu]: expected \"a b\" or [a, b]", c->name, r); }
        int32_t ia = vocab_id(t, a, an), ib = vocab_id(t, b, bn);
        // The merged token: a + b, less b's continuing-subword prefix.
        size_t skip = plen && bn >= plen && !memcmp(b, t->prefix, plen) ? plen : 0;
        joined.n = 0;
        if (sb_add(&joined, a, an) || sb_add(&joined, b + skip, bn - skip)) { free(joined.p); return ibc_fail(c->err, IBC_ESYS, "out of memory"); }
        int32_t im = vocab_id(t, joined.p, joined.n);
        if (ia < 0 || ib < 0 || im < 0) {
            free(joined.p);
            return ibc_fail(c->err, IBC_EINPUT, "%s: model.merges[%zu]: a part or the result is not in the vocabulary", c->name, r);
        }
        if (pmap_put(&t->merges, ia, ib, (int32_t)r, im)) { free(joined.p); return ibc_fail(c->err, IBC_ESYS, "out of memory"); }
    }
    free(joined.p);
    return 0;
}

static int parse_added(pctx *c, tokenizer *t, json_t *arr) {
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return ibc_fail(c->err, IBC_EINPUT, "%s: added_tokens: expected a list", c->name);
    t->added = calloc(json_array_size(arr) + 1, sizeof(added_tok));
    if (!t->added) return ibc_fail(c->err, IBC_ESYS, "out of memory");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *a = json_array_get(arr, i), *id = json_object_get(a, "id");
        added_tok *k = &t->added[t->nadded];
        if (!(k->s = dupstr(json_object_get(a, "content"), &k->n)) || !json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) > (1 << 24) || !k->n) {
            free(k->s);
            k->s = NULL;
            return ibc_fail(c->err, IBC_EINPUT, "%s: added_tokens[%zu]: expected content and id", c->name, i);
        }
        k->id = (int32_t)json_integer_value(id);
        k->special = bool_of(a, "special", 0);
        k->lstrip = bool_of(a, "lstrip", 0);
        k->rstrip = bool_of(a, "rstrip", 0);
        k->single_word = bool_of(a, "single_word", 0);
        k->normalized = bool_of(a, "normalized", !k->special);
        t->nadded++;
        if (set_token(t, k->s, k->n, k->id)) return ibc_fail(c->err, IBC_ESYS, "out of memory");
        t->special[k->id] = (unsigned char)k->special;
    }
    return 0;
}

static int token_id(pctx *c, tokenizer *t, const char *s, int32_t *id) {
    *id = s ? vocab_id(t, s, strlen(s)) : -1;
    if (*id < 0) return ibc_fail(c->err, IBC_EINPUT, "%s: %s: token %.60s is not in the vocabulary", c->name, c->path, s ? s : "(none)");
    return 0;
}

static int parse_post(pctx *c, tokenizer *t, json_t *p) {
    if (!p || json_is_null(p)) return 0;
    const char *type = json_string_value(json_object_get(p, "type"));
    size_t plen = strlen(c->path);
    int rc = 0;
    if (!type) return ibc_fail(c->err, IBC_EINPUT, "%s: %s.type: missing", c->name, c->path);
    if (!strcmp(type, "ByteLevel")) return 0; // offsets only
    if (!strcmp(type, "Sequence")) {
        json_t *l = json_object_get(p, "processors");
        for (size_t i = 0; rc == 0 && i < json_array_size(l); i++) {
            snprintf(c->path + plen, sizeof c->path - plen, ".processors[%zu]", i);
            rc = parse_post(c, t, json_array_get(l, i));
        }
        c->path[plen] = 0;
        return rc;
    }
    if (!strcmp(type, "TemplateProcessing")) {
        json_t *single = json_object_get(p, "single"), *specials = json_object_get(p, "special_tokens");
        int seen_a = 0;
        for (size_t i = 0; rc == 0 && i < json_array_size(single); i++) {
            json_t *it = json_array_get(single, i), *st = json_object_get(it, "SpecialToken"), *sq = json_object_get(it, "Sequence");
            snprintf(c->path + plen, sizeof c->path - plen, ".single[%zu]", i);
            if (sq) {
                const char *id = json_string_value(json_object_get(sq, "id"));
                if (!id || strcmp(id, "A") || seen_a) rc = unsupported(c, "sequence other than A", NULL);
                seen_a = 1;
            } else if (st) {
                const char *id = json_string_value(json_object_get(st, "id"));
                json_t *ids = json_object_get(json_object_get(specials, id ? id : ""), "ids");
                if (!json_is_array(ids)) rc = unsupported(c, "special token without ids", NULL);
                for (size_t k = 0; rc == 0 && k < json_array_size(ids); k++)
                    rc = iv_push(seen_a ? &t->post_post : &t->post_pre, (int32_t)json_integer_value(json_array_get(ids, k)));
            } else rc = unsupported(c, "template item", NULL);
        }
        c->path[plen] = 0;
        return rc;
    }
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) { // [cls] A [sep]
        int32_t cls, sep;
        snprintf(c->path + plen, sizeof c->path - plen, ".cls");
        rc = token_id(c, t, json_string_value(json_array_get(json_object_get(p, "cls"), 0)), &cls);
        snprintf(c->path + plen, sizeof c->path - plen, ".sep");
        if (!rc) rc = token_id(c, t, json_string_value(json_array_get(json_object_get(p, "sep"), 0)), &sep);
        c->path[plen] = 0;
        return rc ? rc : (iv_push(&t->post_pre, cls) || iv_push(&t->post_post, sep));
    }
    snprintf(c->path + plen, sizeof c->path - plen, ".type");
    return unsupported(c, NULL, type);
}

static int parse_section(pctx *c, json_t *root, const char *key, int kind, node **out) {
    json_t *j = json_object_get(root, key);
    if (!j || json_is_null(j)) return 0;
    *out = calloc(1, sizeof(node));
    if (!*out) return ibc_fail(c->err, IBC_ESYS, "out of memory");
    snprintf(c->path, sizeof c->path, "%s", key);
    return parse_node(c, j, kind, *out);
}

int tok_parse(const char *json, size_t len, const char *name, tokenizer **out, ibc_err *err) {
    init_bytemap();
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_ALLOW_NUL, &je);
    if (!root) return ibc_fail(err, IBC_EINPUT, "%s: not valid JSON: %s (line %d)", name, je.text, je.line);
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) { json_decref(root); return ibc_fail(err, IBC_ESYS, "out of memory"); }
    snprintf(t->name, sizeof t->name, "%s", name);
    t->unk = -1;
    pctx c = {name, err, ""};
    int rc = 0;
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(root) || !json_is_object(model)) rc = ibc_fail(err, IBC_EINPUT, "%s: model: missing", name);
    if (!rc) rc = parse_model(&c, t, model);
    if (!rc) rc = parse_added(&c, t, json_object_get(root, "added_tokens"));
    if (!rc) rc = parse_section(&c, root, "normalizer", 0, &t->norm);
    if (!rc) rc = parse_section(&c, root, "pre_tokenizer", 1, &t->pre);
    if (!rc) rc = parse_section(&c, root, "decoder", 2, &t->dec);
    if (!rc) {
        strcpy(c.path, "post_processor");
        rc = parse_post(&c, t, json_object_get(root, "post_processor"));
    }
    for (int i = 0; !rc && i < t->nadded; i++) { // what each added token matches
        added_tok *a = &t->added[i];
        sbuf m = {0};
        if (a->normalized && t->norm) {
            if (normalize(t->norm, a->s, a->n, &m) || !m.n) rc = ibc_fail(err, IBC_EINPUT, "%s: added_tokens: cannot normalize %.60s", name, a->s);
        } else if (sb_add(&m, a->s, a->n)) rc = ibc_fail(err, IBC_ESYS, "out of memory");
        a->m = m.p;
        a->mn = m.n;
    }
    if (!rc && t->nadded) { // longest first, so the first match found at a position is the longest
        for (int i = 1; i < t->nadded; i++)
            for (int k = i; k > 0 && t->added[k].mn > t->added[k - 1].mn; k--) {
                added_tok x = t->added[k]; t->added[k] = t->added[k - 1]; t->added[k - 1] = x;
            }
    }
    for (int i = 0; !rc && i < t->nadded; i++) t->first_byte[t->added[i].normalized][(unsigned char)t->added[i].m[0]] = 1;
    if (!rc && !t->pre) { // SentencePiece style: a word is the whole text, unless it can be cut
        // exactly before every U+2581 that follows another character: when no token holds
        // "x U+2581" with x not U+2581, no merge (whose results are tokens) joins across it.
        static const char META[] = "\xe2\x96\x81";
        int ok = vocab_id(t, META, 3) >= 0;
        for (int i = 0; ok && i < t->nid; i++) {
            const char *tk = t->id2tok[i], *p = tk;
            while (tk && (p = strstr(p, META)) != NULL) {
                if (p > tk && (p - tk < 3 || memcmp(p - 3, META, 3))) { ok = 0; break; }
                p += 3;
            }
        }
        if (ok) { t->word_split = strdup(META); t->word_split_n = 3; }
    }
    json_decref(root);
    if (rc) { tok_free(t); return rc; }
    *out = t;
    return 0;
}

int tok_load(const char *path, tokenizer **t, ibc_err *err) {
    char *text;
    size_t len;
    int rc = io_read_all(path, &text, &len, err);
    if (rc) return rc;
    rc = tok_parse(text, len, path, t, err);
    free(text);
    return rc;
}

void tok_free(tokenizer *t) {
    if (!t) return;
    smap_free(&t->vocab);
    smap_free(&t->cache);
    for (int i = 0; i < t->ncache; i++) free(t->cache_ids[i].p);
    free(t->cache_ids);
    for (int i = 0; i < t->nid; i++) free(t->id2tok[i]);
    free(t->id2tok);
    free(t->special);
    free(t->merges.key); free(t->merges.rank); free(t->merges.id);
    for (int i = 0; i < t->nadded; i++) { free(t->added[i].s); free(t->added[i].m); }
    free(t->added);
    free(t->prefix); free(t->suffix); free(t->word_split);
    node *ns[] = {t->norm, t->pre, t->dec};
    for (int i = 0; i < 3; i++) { free_node(ns[i]); free(ns[i]); }
    free(t->post_pre.p); free(t->post_post.p);
    free(t);
}

int tok_vocab_size(const tokenizer *t) { return t->nid; }
const char *tok_token(const tokenizer *t, int32_t id) { return id >= 0 && id < t->nid ? t->id2tok[id] : NULL; }

// ---------------------------------------------------------------------------------------------
// Training a byte-level BPE

// Pair -> occurrence count, for the trainer.
typedef struct { uint64_t *key; int64_t *cnt; size_t cap, n; } pcount;

static void pc_clear(pcount *p) {
    if (p->key) memset(p->key, 0xff, sizeof(uint64_t) * p->cap);
    p->n = 0;
}

// Adds c to the count of key; returns the new count, or -1 when out of memory.
static int64_t pc_add(pcount *p, uint64_t key, int64_t c) {
    if ((p->n + 1) * 10 > p->cap * 7) {
        pcount g = {0};
        g.cap = p->cap ? 2 * p->cap : 1 << 16;
        g.key = malloc(sizeof(uint64_t) * g.cap);
        g.cnt = malloc(sizeof(int64_t) * g.cap);
        if (!g.key || !g.cnt) { free(g.key); free(g.cnt); return -1; }
        memset(g.key, 0xff, sizeof(uint64_t) * g.cap);
        for (size_t i = 0; i < p->cap; i++)
            if (p->key[i] != UINT64_MAX) {
                size_t j = pmix(p->key[i]) & (g.cap - 1);
                while (g.key[j] != UINT64_MAX) j = (j + 1) & (g.cap - 1);
                g.key[j] = p->key[i];
                g.cnt[j] = p->cnt[i];
                g.n++;
            }
        free(p->key);
        free(p->cnt);
        *p = g;
    }
    size_t j = pmix(key) & (p->cap - 1);
    while (p->key[j] != UINT64_MAX && p->key[j] != key) j = (j + 1) & (p->cap - 1);
    if (p->key[j] == UINT64_MAX) { p->key[j] = key; p->cnt[j] = 0; p->n++; }
    return p->cnt[j] += c;
}

typedef struct {
    int32_t *sym; // current symbols of the word
    int n;
    int64_t count; // occurrences in the texts
} tword;

int tok_train_bpe(const char *const *texts, const size_t *lens, int n, int vocab_size, const char *path, ibc_err *err) {
    init_bytemap();
    if (vocab_size < 257 || vocab_size > (1 << 20)) return ibc_fail(err, IBC_EINPUT, "BPE training: vocab_size %d is outside [257, 2^20]", vocab_size);
    pctx c = {path, err, "pre_tokenizer"};
    node pre = {.type = P_BYTELEVEL, .x = 0, .y = 1};
    int rc = compile_re(&c, BYTELEVEL_RE, PCRE2_ZERO_TERMINATED, &pre.re);
    if (rc) return rc;
    // 1. Word types with their counts, as the encoder will split them.
    smap types = {0};
    tword *w = NULL;
    int nw = 0, capw = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        plist in = {0}, words = {0};
        rc = pl_push(&in, texts[i], lens[i], 1) || pretokenize(&pre, &in, &words);
        for (int k = 0; k < words.n && rc == 0; k++) {
            int32_t id = smap_get(&types, words.v[k].s, words.v[k].n);
            if (id >= 0) { w[id].count++; continue; }
            if (nw == capw) {
                capw = capw ? 2 * capw : 1024;
                tword *nwp = realloc(w, sizeof(tword) * (size_t)capw);
                if (!nwp) { rc = -1; break; }
                w = nwp;
            }
            tword *t = &w[nw];
            t->count = 1;
            t->n = 0;
            t->sym = malloc(sizeof(int32_t) * words.v[k].n);
            for (size_t b = 0; t->sym && b < words.v[k].n;) { // mapped characters back to bytes: ids 0..255
                utf8proc_int32_t cp;
                utf8proc_ssize_t m = utf8proc_iterate((const utf8proc_uint8_t *)words.v[k].s + b, (utf8proc_ssize_t)(words.v[k].n - b), &cp);
                t->sym[t->n++] = cp2byte[cp];
                b += (size_t)m;
            }
            if (!t->sym || smap_put(&types, words.v[k].s, words.v[k].n, nw++)) rc = -1;
        }
        pl_free(&in);
        pl_free(&words);
    }
    smap_free(&types);
    pcre2_code_free(pre.re);
    // 2. Merges: count adjacent pairs over all words, join the most frequent, repeat.
    int n_merges = vocab_size - 257;
    int32_t (*merges)[2] = malloc(sizeof(int32_t[2]) * (size_t)(n_merges + 1));
    char **tokstr = calloc((size_t)vocab_size, sizeof(char *));
    if (!merges || !tokstr) rc = -1;
    for (int b = 0; rc == 0 && b < 256; b++) {
        sbuf t = {0};
        rc = add_cp(&t, byte2cp[b]);
        tokstr[b] = t.p;
    }
    pcount counts = {0};
    int m = 0;
    for (; rc == 0 && m < n_merges; m++) {
        pc_clear(&counts);
        int64_t best = 0;
        int32_t ba = -1, bb = -1;
        for (int i = 0; i < nw && rc == 0; i++)
            for (int k = 0; k + 1 < w[i].n; k++) {
                int32_t a = w[i].sym[k], b = w[i].sym[k + 1];
                int64_t cur = pc_add(&counts, pkey(a, b), w[i].count);
                if (cur < 0) { rc = -1; break; }
                if (cur > best || (cur == best && (a < ba || (a == ba && b < bb)))) { best = cur; ba = a; bb = b; }
            }
        if (rc || best < 2) break; // nothing left worth a merge
        int32_t id = 256 + m;
        merges[m][0] = ba;
        merges[m][1] = bb;
        sbuf t = {0};
        if (sb_add(&t, tokstr[ba], strlen(tokstr[ba])) || sb_add(&t, tokstr[bb], strlen(tokstr[bb]))) { rc = -1; break; }
        tokstr[id] = t.p;
        for (int i = 0; i < nw; i++) { // apply it left to right in every word
            int o = 0;
            for (int k = 0; k < w[i].n; k++) {
                if (k + 1 < w[i].n && w[i].sym[k] == ba && w[i].sym[k + 1] == bb) { w[i].sym[o++] = id; k++; }
                else w[i].sym[o++] = w[i].sym[k];
            }
            w[i].n = o;
        }
    }
    free(counts.key);
    free(counts.cnt);
    // 3. tokenizer.json
    if (rc == 0) {
        json_t *vocab = json_object(), *mj = json_array();
        for (int i = 0; i < 256 + m; i++) json_object_set_new(vocab, tokstr[i], json_integer(i));
        for (int i = 0; i < m; i++) json_array_append_new(mj, json_pack("[s,s]", tokstr[merges[i][0]], tokstr[merges[i][1]]));
        int eot = 256 + m;
        json_object_set_new(vocab, "<|endoftext|>", json_integer(eot));
        json_t *bl = json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 1);
        json_t *root = json_pack(
            "{s:s,s:n,s:n,s:[{s:i,s:s,s:b,s:b,s:b,s:b,s:b}],s:n,s:O,s:O,s:O,s:{s:s,s:n,s:n,s:n,s:n,s:b,s:b,s:b,s:o,s:o}}",
            "version", "1.0", "truncation", "padding", "added_tokens", "id", eot, "content", "<|endoftext|>",
            "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 1, "normalizer", "pre_tokenizer", bl,
            "post_processor", bl, "decoder", bl, "model", "type", "BPE", "dropout", "unk_token", "continuing_subword_prefix",
            "end_of_word_suffix", "fuse_unk", 0, "byte_fallback", 0, "ignore_merges", 0, "vocab", vocab, "merges", mj);
        json_decref(bl);
        char *text = root ? json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(root);
        io_file f;
        if (!text) rc = ibc_fail(err, IBC_ESYS, "out of memory");
        else if ((rc = io_begin(&f, path, err)) == 0) {
            fputs(text, f.f);
            fputc('\n', f.f);
            rc = io_commit(&f, err);
        }
        free(text);
    } else if (rc == -1) rc = ibc_fail(err, IBC_ESYS, "BPE training: out of memory");
    for (int i = 0; i < nw; i++) free(w[i].sym);
    free(w);
    for (int i = 0; tokstr && i < vocab_size; i++) free(tokstr[i]);
    free(tokstr);
    free(merges);
    return rc;
}
