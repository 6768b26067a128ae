// tok_train: a byte-level BPE trained on texts (GPT-2's form), written as tokenizer.json.
// Only `ibc train` uses it.
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <utf8proc.h>

#include "ibc/io.h"
#include "tok_internal.h"

typedef struct {
    int32_t *sym;  // current symbols of the word
    int n;
    int64_t count; // occurrences in the texts
} tword;

typedef struct {
    tword *w;     // [nw] word types, in order of first occurrence
    int nw;
    size_t cap;
    int32_t (*merges)[2]; // [m] the pair each merge joins
    char **tokstr;        // [vocab_size] token strings (GPT-2's printable characters)
    int m;
} trainer;

// 1. Word types with their counts, as the encoder will split them.
static int count_words(trainer *tr, const char *const *texts, const size_t *lens, int n, const char *path, ibc_err *err) {
    pctx c = {path, err, "pre_tokenizer"};
    node pre = {.type = P_BYTELEVEL, .x = 0, .y = 1};
    int rc = tok_compile_re(&c, TOK_BYTELEVEL_RE, PCRE2_ZERO_TERMINATED, &pre);
    tok_rx rx = {path, err, NULL, NULL, 0};
    hmap types;
    hmap_init(&types, 0, 0);
    for (int i = 0; i < n && rc == 0; i++) {
        size_t bad = tok_utf8_prefix(texts[i], lens[i]);
        if (bad < lens[i]) {
            rc = ibc_fail(err, IBC_EINPUT, "BPE training: text %d is not valid UTF-8 at byte %zu", i, bad);
            break;
        }
        plist in = {0}, words = {0};
        tok_pl_push(&in, texts[i], lens[i], 1);
        rc = tok_pretokenize(&rx, &pre, &in, &words);
        for (int k = 0; k < words.n && rc == 0; k++) {
            int added;
            int64_t id = hmap_put(&types, words.v[k].s, words.v[k].n, &added);
            if (!added) { tr->w[id].count++; continue; }
            xgrow(tr->w, tr->cap, (size_t)tr->nw + 1);
            tword *t = &tr->w[tr->nw++];
            t->count = 1;
            t->n = 0;
            t->sym = xmalloc(sizeof(int32_t) * words.v[k].n);
            for (size_t b = 0; b < words.v[k].n;) { // mapped characters back to bytes: ids 0..255
                utf8proc_int32_t cp;
                utf8proc_ssize_t m = utf8proc_iterate((const utf8proc_uint8_t *)words.v[k].s + b, (utf8proc_ssize_t)(words.v[k].n - b), &cp);
                t->sym[t->n++] = tok_cp2byte[cp];
                b += (size_t)m;
            }
        }
        tok_pl_free(&in);
        tok_pl_free(&words);
    }
    hmap_free(&types);
    free(pre.pat);
    if (pre.re) pcre2_code_free(pre.re);
    return rc;
}

// The most frequent adjacent pair over all words (ties: the smallest pair of ids) and its count.
static int64_t best_pair(const trainer *tr, hmap *counts, int32_t *ba, int32_t *bb) {
    hmap_clear(counts);
    int64_t best = 0;
    *ba = *bb = -1;
    for (int i = 0; i < tr->nw; i++)
        for (int k = 0; k + 1 < tr->w[i].n; k++) {
            int32_t pair[2] = {tr->w[i].sym[k], tr->w[i].sym[k + 1]}, a = pair[0], b = pair[1];
            int64_t x = hmap_put(counts, pair, sizeof pair, NULL); // may move counts->val
            int64_t *cur = &counts->val[x];
            *cur += tr->w[i].count;
            if (*cur > best || (*cur == best && (a < *ba || (a == *ba && b < *bb)))) { best = *cur; *ba = a; *bb = b; }
        }
    return best;
}

// 2. Merges: count adjacent pairs over all words, join the most frequent, repeat.
static void learn_merges(trainer *tr, int n_merges) {
    hmap counts;
    hmap_init(&counts, 2 * sizeof(int32_t), 1 << 16);
    for (tr->m = 0; tr->m < n_merges; tr->m++) {
        int32_t ba, bb;
        if (best_pair(tr, &counts, &ba, &bb) < 2) break; // nothing left worth a merge
        int32_t id = 256 + tr->m;
        tr->merges[tr->m][0] = ba;
        tr->merges[tr->m][1] = bb;
        sbuf t = {0};
        sb_add(&t, tr->tokstr[ba], strlen(tr->tokstr[ba]));
        sb_add(&t, tr->tokstr[bb], strlen(tr->tokstr[bb]));
        tr->tokstr[id] = t.p;
        for (int i = 0; i < tr->nw; i++) { // apply it left to right in every word
            tword *w = &tr->w[i];
            int o = 0;
            for (int k = 0; k < w->n; k++) {
                if (k + 1 < w->n && w->sym[k] == ba && w->sym[k + 1] == bb) { w->sym[o++] = id; k++; }
                else w->sym[o++] = w->sym[k];
            }
            w->n = o;
        }
    }
    hmap_free(&counts);
}

// 3. tokenizer.json: GPT-2's form, the merges, and <|endoftext|> as the last id.
static int write_json(const trainer *tr, const char *path, ibc_err *err) {
    json_t *vocab = json_object(), *mj = json_array();
    for (int i = 0; i < 256 + tr->m; i++) json_object_set_new(vocab, tr->tokstr[i], json_integer(i));
    for (int i = 0; i < tr->m; i++) json_array_append_new(mj, json_pack("[s,s]", tr->tokstr[tr->merges[i][0]], tr->tokstr[tr->merges[i][1]]));
    int eot = 256 + tr->m;
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
    if (!text) return ibc_fail(err, IBC_ESYS, "%s: BPE training: cannot build the JSON (out of memory)", path);
    io_file f;
    int rc = io_begin(&f, path, err);
    if (rc == 0) {
        fputs(text, f.f);
        fputc('\n', f.f);
        rc = io_commit(&f, err);
    }
    free(text);
    return rc;
}

int tok_train_bpe(const char *const *texts, const size_t *lens, int n, int vocab_size, const char *path, ibc_err *err) {
    tok_init_bytemap();
    if (vocab_size < 257 || vocab_size > (1 << 20)) return ibc_fail(err, IBC_EINPUT, "BPE training: vocab_size %d is outside [257, 2^20]", vocab_size);
    int n_merges = vocab_size - 257;
    trainer tr = {0};
    tr.merges = xmalloc(sizeof(int32_t[2]) * (size_t)(n_merges + 1));
    tr.tokstr = xcalloc((size_t)vocab_size, sizeof(char *));
    for (int b = 0; b < 256; b++) {
        sbuf t = {0};
        tok_add_cp(&t, tok_byte2cp[b]);
        tr.tokstr[b] = t.p;
    }
    int rc = count_words(&tr, texts, lens, n, path, err);
    if (rc == 0) {
        learn_merges(&tr, n_merges);
        rc = write_json(&tr, path, err);
    }
    for (int i = 0; i < tr.nw; i++) free(tr.w[i].sym);
    free(tr.w);
    for (int i = 0; i < vocab_size; i++) free(tr.tokstr[i]);
    free(tr.tokstr);
    free(tr.merges);
    return rc;
}
