// tok_load: tokenizer.json -> struct tokenizer. Every section or value it does not support is
// an IBC_EINPUT error naming its JSON path.
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "ibc/io.h"
#include "tok_internal.h"

static int unsupported(pctx *c, const char *what, const char *v) {
    return ibc_fail(c->err, IBC_EINPUT, "%s: %s: unsupported %s", c->name, c->path, v ? v : what);
}

// A copy of a JSON string (NULL if v is not one); its length in *len.
static char *dupstr(json_t *v, size_t *len) {
    const char *s = json_string_value(v);
    if (!s) return NULL;
    size_t n = json_string_length(v);
    char *d = xmalloc(n + 1);
    memcpy(d, s, n + 1);
    if (len) *len = n;
    return d;
}

static int bool_of(json_t *j, const char *key, int def) {
    json_t *v = json_object_get(j, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

// Appends `fmt` to the JSON path; returns the old length to cut back to.
static size_t path_push(pctx *c, const char *suffix) {
    size_t plen = strlen(c->path);
    snprintf(c->path + plen, sizeof c->path - plen, "%s", suffix);
    return plen;
}

// {"String": s} or {"Regex": r}: a literal into (a, alen) or a compiled regex.
static int parse_pattern(pctx *c, json_t *p, node *n) {
    json_t *s = json_object_get(p, "String"), *r = json_object_get(p, "Regex");
    if (json_is_string(s)) {
        n->a = dupstr(s, &n->alen);
        return 0;
    }
    if (json_is_string(r)) return tok_compile_re(c, json_string_value(r), json_string_length(r), n);
    return ibc_fail(c->err, IBC_EINPUT, "%s: %s.pattern: expected {\"String\": ...} or {\"Regex\": ...}", c->name, c->path);
}

static int parse_node(pctx *c, json_t *j, int kind, node *n);

static int parse_list(pctx *c, json_t *arr, const char *key, int kind, node *n) {
    if (!json_is_array(arr)) return ibc_fail(c->err, IBC_EINPUT, "%s: %s.%s: expected a list", c->name, c->path, key);
    n->nkids = (int)json_array_size(arr);
    n->kids = xcalloc((size_t)n->nkids + 1, sizeof(node));
    size_t plen = strlen(c->path);
    for (int i = 0; i < n->nkids; i++) {
        snprintf(c->path + plen, sizeof c->path - plen, ".%s[%d]", key, i);
        int rc = parse_node(c, json_array_get(arr, (size_t)i), kind, &n->kids[i]);
        if (rc) return rc;
        c->path[plen] = 0;
    }
    return 0;
}

// A string field that must be there: into *s, *len.
static int need_str(pctx *c, json_t *j, const char *key, char **s, size_t *len, const char *what) {
    *s = dupstr(json_object_get(j, key), len);
    return *s ? 0 : unsupported(c, what, NULL);
}

// Replace (normalizer or decoder): a pattern and its content.
static int parse_replace(pctx *c, json_t *j, node *n, size_t plen) {
    c->path[plen] = 0;
    int rc = parse_pattern(c, json_object_get(j, "pattern"), n);
    return rc ? rc : need_str(c, j, "content", &n->b, &n->blen, "Replace without content");
}

static int parse_normalizer(pctx *c, json_t *j, const char *type, node *n, size_t plen) {
    static const char *const NF[] = {"NFC", "NFD", "NFKC", "NFKD", "Lowercase"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(type, NF[i])) { n->type = N_NFC + i; return 0; }
    if (!strcmp(type, "Prepend")) {
        n->type = N_PREPEND;
        return need_str(c, j, "prepend", &n->a, &n->alen, "Prepend without prepend");
    }
    if (!strcmp(type, "Replace")) {
        n->type = N_REPLACE;
        return parse_replace(c, j, n, plen);
    }
    if (!strcmp(type, "Strip")) {
        n->type = N_STRIP;
        n->x = bool_of(j, "strip_left", 1);
        n->y = bool_of(j, "strip_right", 1);
        return 0;
    }
    if (!strcmp(type, "Sequence")) {
        n->type = N_SEQ;
        c->path[plen] = 0;
        return parse_list(c, json_object_get(j, "normalizers"), "normalizers", 0, n);
    }
    return unsupported(c, NULL, type);
}

static int parse_split(pctx *c, json_t *j, node *n, size_t plen) {
    static const char *const B[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    const char *b = json_string_value(json_object_get(j, "behavior"));
    n->type = P_SPLIT;
    n->x = -1;
    for (int i = 0; b && i < 5; i++)
        if (!strcmp(b, B[i])) n->x = i;
    n->y = bool_of(j, "invert", 0);
    c->path[plen] = 0;
    if (n->x >= 0) return parse_pattern(c, json_object_get(j, "pattern"), n);
    path_push(c, ".behavior");
    return unsupported(c, "behavior", b);
}

static int parse_metaspace(pctx *c, json_t *j, node *n, size_t plen) {
    n->type = P_METASPACE;
    const char *ps = json_string_value(json_object_get(j, "prepend_scheme"));
    if (ps) n->x = !strcmp(ps, "always") ? PS_ALWAYS : !strcmp(ps, "first") ? PS_FIRST : !strcmp(ps, "never") ? PS_NEVER : -1;
    else n->x = bool_of(j, "add_prefix_space", 1) ? PS_ALWAYS : PS_NEVER; // older files
    n->y = bool_of(j, "split", 1);
    int rc = need_str(c, j, "replacement", &n->a, &n->alen, "Metaspace without replacement");
    if (rc || n->x >= 0) return rc;
    c->path[plen] = 0;
    path_push(c, ".prepend_scheme");
    return unsupported(c, "prepend_scheme", ps);
}

static int parse_pretokenizer(pctx *c, json_t *j, const char *type, node *n, size_t plen) {
    if (!strcmp(type, "ByteLevel")) {
        n->type = P_BYTELEVEL;
        n->x = bool_of(j, "add_prefix_space", 1);
        n->y = bool_of(j, "use_regex", 1);
        return n->y ? tok_compile_re(c, TOK_BYTELEVEL_RE, PCRE2_ZERO_TERMINATED, n) : 0;
    }
    if (!strcmp(type, "Split")) return parse_split(c, j, n, plen);
    if (!strcmp(type, "Digits")) {
        n->type = P_DIGITS;
        n->x = bool_of(j, "individual_digits", 0);
        return 0;
    }
    if (!strcmp(type, "Metaspace")) return parse_metaspace(c, j, n, plen);
    if (!strcmp(type, "Sequence")) {
        n->type = P_SEQ;
        c->path[plen] = 0;
        return parse_list(c, json_object_get(j, "pretokenizers"), "pretokenizers", 1, n);
    }
    return unsupported(c, NULL, type);
}

static int parse_decoder(pctx *c, json_t *j, const char *type, node *n, size_t plen) {
    if (!strcmp(type, "ByteLevel")) n->type = D_BYTELEVEL;
    else if (!strcmp(type, "ByteFallback")) n->type = D_BYTEFALLBACK;
    else if (!strcmp(type, "Fuse")) n->type = D_FUSE;
    else if (!strcmp(type, "Metaspace")) {
        n->type = D_METASPACE;
        const char *ps = json_string_value(json_object_get(j, "prepend_scheme"));
        n->x = ps ? (!strcmp(ps, "never") ? PS_NEVER : PS_ALWAYS) : (bool_of(j, "add_prefix_space", 1) ? PS_ALWAYS : PS_NEVER);
        return need_str(c, j, "replacement", &n->a, &n->alen, "Metaspace without replacement");
    } else if (!strcmp(type, "Strip")) {
        n->type = D_STRIP;
        n->x = (int)json_integer_value(json_object_get(j, "start"));
        n->y = (int)json_integer_value(json_object_get(j, "stop"));
        return need_str(c, j, "content", &n->a, &n->alen, "Strip without content");
    } else if (!strcmp(type, "Replace")) {
        n->type = D_REPLACE;
        c->path[plen] = 0;
        int rc = parse_pattern(c, json_object_get(j, "pattern"), n);
        if (!rc && n->re) return unsupported(c, "a Regex pattern in the Replace decoder", NULL);
        return rc ? rc : need_str(c, j, "content", &n->b, &n->blen, "Replace without content");
    } else if (!strcmp(type, "Sequence")) {
        n->type = D_SEQ;
        c->path[plen] = 0;
        return parse_list(c, json_object_get(j, "decoders"), "decoders", 2, n);
    } else return unsupported(c, NULL, type);
    return 0;
}

// kind: 0 normalizer, 1 pre-tokenizer, 2 decoder.
static int parse_node(pctx *c, json_t *j, int kind, node *n) {
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) return ibc_fail(c->err, IBC_EINPUT, "%s: %s.type: missing", c->name, c->path);
    size_t plen = path_push(c, ".type");
    int rc = kind == 0 ? parse_normalizer(c, j, type, n, plen)
           : kind == 1 ? parse_pretokenizer(c, j, type, n, plen)
                       : parse_decoder(c, j, type, n, plen);
    c->path[plen] = 0;
    return rc;
}

static void free_node(node *n) {
    if (!n) return;
    for (int i = 0; i < n->nkids; i++) free_node(&n->kids[i]);
    free(n->kids);
    free(n->a);
    free(n->b);
    free(n->pat);
    if (n->re) pcre2_code_free(n->re);
}

// ---------------------------------------------------------------------------------------------
// The model, added tokens, post-processor

static void set_token(tokenizer *t, const char *s, size_t n, int32_t id) {
    if (id >= t->nid) {
        int nn = id + 1;
        t->id2tok = xrealloc(t->id2tok, sizeof(char *) * (size_t)nn);
        t->special = xrealloc(t->special, (size_t)nn);
        for (int i = t->nid; i < nn; i++) { t->id2tok[i] = NULL; t->special[i] = 0; }
        t->nid = nn;
    }
    free(t->id2tok[id]);
    t->id2tok[id] = xmalloc(n + 1);
    memcpy(t->id2tok[id], s, n);
    t->id2tok[id][n] = 0;
    int64_t i = hmap_put(&t->vocab, s, n, NULL); // inserts or overwrites
    t->vocab.val[i] = id;
}

// One entry of model.merges, "a b" or [a, b], into its parts.
static int merge_parts(json_t *e, const char **a, size_t *an, const char **b, size_t *bn) {
    if (json_is_string(e)) {
        const char *str = json_string_value(e), *sp = strchr(str, ' ');
        if (!sp) return -1;
        *a = str; *an = (size_t)(sp - str); *b = sp + 1; *bn = strlen(*b);
        return 0;
    }
    if (!json_is_array(e) || json_array_size(e) != 2) return -1;
    *a = json_string_value(json_array_get(e, 0));
    *b = json_string_value(json_array_get(e, 1));
    if (!*a || !*b) return -1;
    *an = json_string_length(json_array_get(e, 0));
    *bn = json_string_length(json_array_get(e, 1));
    return 0;
}

static int parse_merges(pctx *c, tokenizer *t, json_t *merges) {
    if (!json_is_array(merges)) return ibc_fail(c->err, IBC_EINPUT, "%s: model.merges: expected a list", c->name);
    size_t plen = strlen(t->prefix), nm = json_array_size(merges);
    hmap_init(&t->merges, 2 * sizeof(int32_t), nm * 10 / 7 + 1);
    sbuf joined = {0};
    int rc = 0;
    for (size_t r = 0; r < nm && rc == 0; r++) {
        const char *a, *b;
        size_t an, bn;
        if (merge_parts(json_array_get(merges, r), &a, &an, &b, &bn)) {
            rc = ibc_fail(c->err, IBC_EINPUT, "%s: model.merges[%zu]: expected \"a b\" or [a, b]", c->name, r);
            break;
        }
        // The merged token: a + b, less b's continuing-subword prefix.
        size_t skip = plen && bn >= plen && !memcmp(b, t->prefix, plen) ? plen : 0;
        sb_reset(&joined);
        sb_add(&joined, a, an);
        sb_add(&joined, b + skip, bn - skip);
        int32_t pair[2] = {tok_vocab_id(t, a, an), tok_vocab_id(t, b, bn)}, im = tok_vocab_id(t, joined.p, joined.n);
        if (pair[0] < 0 || pair[1] < 0 || im < 0) {
            rc = ibc_fail(c->err, IBC_EINPUT, "%s: model.merges[%zu]: a part or the result is not in the vocabulary", c->name, r);
            break;
        }
        int added;
        int64_t i = hmap_put(&t->merges, pair, sizeof pair, &added);
        if (added) t->merges.val[i] = (int64_t)r << 32 | (uint32_t)im; // the first (lowest-rank) merge of a pair wins
    }
    free(joined.p);
    return rc;
}

static int parse_model(pctx *c, tokenizer *t, json_t *m) {
    const char *type = json_string_value(json_object_get(m, "type"));
    strcpy(c->path, "model.type");
    if (type && strcmp(type, "BPE")) return unsupported(c, NULL, type);
    json_t *vocab = json_object_get(m, "vocab");
    strcpy(c->path, "model.vocab");
    if (!json_is_object(vocab)) return ibc_fail(c->err, IBC_EINPUT, "%s: model.vocab: expected an object", c->name);
    hmap_init(&t->vocab, 0, json_object_size(vocab) * 10 / 7 + 1);
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) {
        json_int_t id = json_integer_value(v);
        if (!json_is_integer(v) || id < 0 || id > (1 << 24))
            return ibc_fail(c->err, IBC_EINPUT, "%s: model.vocab[%.60s]: expected an id in [0, 2^24]", c->name, k);
        set_token(t, k, strlen(k), (int32_t)id);
    }
    t->byte_fallback = bool_of(m, "byte_fallback", 0);
    t->fuse_unk = bool_of(m, "fuse_unk", 0);
    t->ignore_merges = bool_of(m, "ignore_merges", 0);
    const char *unk = json_string_value(json_object_get(m, "unk_token"));
    t->unk = unk ? tok_vocab_id(t, unk, strlen(unk)) : -1;
    if (unk && t->unk < 0) return ibc_fail(c->err, IBC_EINPUT, "%s: model.unk_token: %.60s is not in the vocabulary", c->name, unk);
    const char *p = json_string_value(json_object_get(m, "continuing_subword_prefix"));
    const char *s = json_string_value(json_object_get(m, "end_of_word_suffix"));
    t->prefix = xstrdup(p ? p : "");
    t->suffix = xstrdup(s ? s : "");
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_id[b] = tok_vocab_id(t, name, 6);
    }
    return parse_merges(c, t, json_object_get(m, "merges"));
}

static int parse_added(pctx *c, tokenizer *t, json_t *arr) {
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return ibc_fail(c->err, IBC_EINPUT, "%s: added_tokens: expected a list", c->name);
    t->added = xcalloc(json_array_size(arr) + 1, sizeof(added_tok));
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
        set_token(t, k->s, k->n, k->id);
        t->special[k->id] = (unsigned char)k->special;
    }
    return 0;
}

static int token_id(pctx *c, tokenizer *t, const char *s, int32_t *id) {
    *id = s ? tok_vocab_id(t, s, strlen(s)) : -1;
    if (*id < 0) return ibc_fail(c->err, IBC_EINPUT, "%s: %s: token %.60s is not in the vocabulary", c->name, c->path, s ? s : "(none)");
    return 0;
}

// TemplateProcessing's `single`: special tokens around sequence A.
static int parse_template(pctx *c, tokenizer *t, json_t *p, size_t plen) {
    json_t *single = json_object_get(p, "single"), *specials = json_object_get(p, "special_tokens");
    int seen_a = 0, rc = 0;
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
                iv_push(seen_a ? &t->post_post : &t->post_pre, (int32_t)json_integer_value(json_array_get(ids, k)));
        } else rc = unsupported(c, "template item", NULL);
    }
    c->path[plen] = 0;
    return rc;
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
    if (!strcmp(type, "TemplateProcessing")) return parse_template(c, t, p, plen);
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) { // [cls] A [sep]
        int32_t cls, sep;
        path_push(c, ".cls");
        rc = token_id(c, t, json_string_value(json_array_get(json_object_get(p, "cls"), 0)), &cls);
        c->path[plen] = 0;
        path_push(c, ".sep");
        if (!rc) rc = token_id(c, t, json_string_value(json_array_get(json_object_get(p, "sep"), 0)), &sep);
        c->path[plen] = 0;
        if (rc) return rc;
        iv_push(&t->post_pre, cls);
        iv_push(&t->post_post, sep);
        return 0;
    }
    path_push(c, ".type");
    return unsupported(c, NULL, type);
}

static int parse_section(pctx *c, json_t *root, const char *key, int kind, node **out) {
    json_t *j = json_object_get(root, key);
    if (!j || json_is_null(j)) return 0;
    *out = xcalloc(1, sizeof(node));
    snprintf(c->path, sizeof c->path, "%s", key);
    return parse_node(c, j, kind, *out);
}

// ---------------------------------------------------------------------------------------------
// Derived tables, and the public functions

// What each added token matches (normalized by the normalizer when `normalized`), longest
// first, and which bytes begin one.
static int finish_added(tokenizer *t, ibc_err *err) {
    tok_rx rx = tok_rx_of(t, err);
    for (int i = 0; i < t->nadded; i++) {
        added_tok *a = &t->added[i];
        sbuf m = {0};
        int rc = 0;
        if (a->normalized && t->norm) rc = tok_normalize(&rx, t->norm, a->s, a->n, &m);
        else sb_add(&m, a->s, a->n);
        a->m = m.p;
        a->mn = m.n;
        if (rc) return rc;
        if (!m.n) return ibc_fail(err, IBC_EINPUT, "%s: added_tokens: cannot normalize %.60s", t->name, a->s);
    }
    for (int i = 1; i < t->nadded; i++) // longest first: the first match found at a position is the longest
        for (int k = i; k > 0 && t->added[k].mn > t->added[k - 1].mn; k--) {
            added_tok x = t->added[k]; t->added[k] = t->added[k - 1]; t->added[k - 1] = x;
        }
    for (int i = 0; i < t->nadded; i++) t->first_byte[t->added[i].normalized][(unsigned char)t->added[i].m[0]] = 1;
    return 0;
}

// SentencePiece style (no pre-tokenizer): a word is the whole text, unless it can be cut
// exactly before every U+2581 that follows another character: when no token holds
// "x U+2581" with x not U+2581, no merge (whose results are tokens) joins across it.
static void find_word_split(tokenizer *t) {
    static const char META[] = "\xe2\x96\x81";
    int ok = tok_vocab_id(t, META, 3) >= 0;
    for (int i = 0; ok && i < t->nid; i++) {
        const char *tk = t->id2tok[i], *p = tk;
        while (tk && (p = strstr(p, META)) != NULL) {
            if (p > tk && (p - tk < 3 || memcmp(p - 3, META, 3))) { ok = 0; break; }
            p += 3;
        }
    }
    if (ok) { t->word_split = xstrdup(META); t->word_split_n = 3; }
}

int tok_parse(const char *json, size_t len, const char *name, tokenizer **out, ibc_err *err) {
    tok_init_bytemap();
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_ALLOW_NUL, &je);
    if (!root) return ibc_fail(err, IBC_EINPUT, "%s: not valid JSON: %s (line %d)", name, je.text, je.line);
    tokenizer *t = xcalloc(1, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->unk = -1;
    hmap_init(&t->vocab, 0, 0);
    hmap_init(&t->merges, 2 * sizeof(int32_t), 0);
    hmap_init(&t->cache, 0, 4096); // the word cache starts with room for ~2.8k words
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
    if (!rc) rc = finish_added(t, err);
    if (!rc && !t->pre) find_word_split(t);
    json_decref(root);
    if (rc) { tok_free(t); return rc; }
    *out = t;
    return 0;
}

static int parse_cb(void *t, const char *text, size_t len, const char *path, ibc_err *err) {
    return tok_parse(text, len, path, t, err);
}

int tok_load(const char *path, tokenizer **t, ibc_err *err) { return io_parse_file(path, parse_cb, t, err); }

void tok_free(tokenizer *t) {
    if (!t) return;
    hmap_free(&t->vocab);
    hmap_free(&t->merges);
    for (int64_t i = 0; i < t->cache.n; i++) free(t->cache_ids[i].p);
    hmap_free(&t->cache);
    free(t->cache_ids);
    for (int i = 0; i < t->nid; i++) free(t->id2tok[i]);
    free(t->id2tok);
    free(t->special);
    for (int i = 0; i < t->nadded; i++) { free(t->added[i].s); free(t->added[i].m); }
    free(t->added);
    free(t->prefix); free(t->suffix); free(t->word_split);
    node *ns[] = {t->norm, t->pre, t->dec};
    for (int i = 0; i < 3; i++) { free_node(ns[i]); free(ns[i]); }
    free(t->post_pre.p); free(t->post_post.p);
    pcre2_match_context_free(t->mctx);
    pcre2_general_context_free(t->gctx);
    free(t);
}

int tok_vocab_size(const tokenizer *t) { return t->nid; }
const char *tok_token(const tokenizer *t, int32_t id) { return id >= 0 && id < t->nid ? t->id2tok[id] : NULL; }
