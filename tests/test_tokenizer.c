// tokenizer.json BPE against Hugging Face tokenizers (../shared/fixtures/tokenizers): the
// exact ids of every text with and without special tokens, and the exact decoded strings.
// No tolerance: one different id is a failure.
#include "testutil.h"

#include <jansson.h>

#include "ibc/tokenizer.h"
#include "../src/tok_internal.h" // tok_test_pcre2: the PCRE2 test hook

static int ids_equal(const int32_t *a, int n, json_t *want) {
    if ((size_t)n != json_array_size(want)) return 0;
    for (int i = 0; i < n; i++)
        if (a[i] != json_integer_value(json_array_get(want, (size_t)i))) return 0;
    return 1;
}

// tok_path: a tokenizer.json; ids_path: its JSONL goldens.
static void compare(const char *name, const char *tok_path, const char *ids_path) {
    char path[512];
    tokenizer *t;
    ibc_err e = {0};
    if (tok_load(tok_path, &t, &e)) fail_msg("%s", e.msg);
    snprintf(path, sizeof path, "%s", ids_path);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    int texts = 0, bad = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, JSON_ALLOW_NUL, NULL);
        const char *text = json_string_value(json_object_get(j, "text"));
        size_t len = json_string_length(json_object_get(j, "text"));
        texts++;
        for (int special = 0; special < 2; special++) {
            int32_t *ids;
            int n;
            if (tok_encode(t, text, len, special, &ids, &n, &e)) fail_msg("%s", e.msg);
            json_t *want = json_object_get(j, special ? "ids_default" : "ids_nospecial");
            if (!ids_equal(ids, n, want)) {
                if (bad++ < 5) {
                    char *w = json_dumps(want, JSON_COMPACT);
                    print_message("  %s text %lld (%s) special=%d: %d ids, want %s\n", name,
                                  (long long)json_integer_value(json_object_get(j, "id")),
                                  json_string_value(json_object_get(j, "cat")), special, n, w);
                    free(w);
                }
            }
            free(ids);
        }
        static const char *dkeys[3][2] = {{"ids_nospecial", "decoded_nospecial"},
                                          {"ids_default", "decoded_default"},
                                          {"ids_default", "decoded_default_skip_special"}};
        for (int k = 0; k < 3; k++) {
            json_t *ids_j = json_object_get(j, dkeys[k][0]), *want = json_object_get(j, dkeys[k][1]);
            if (!want) continue;
            int n = (int)json_array_size(ids_j);
            int32_t *ids = malloc(sizeof(int32_t) * (size_t)(n + 1));
            for (int i = 0; i < n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(ids_j, (size_t)i));
            char *out;
            size_t olen;
            if (tok_decode(t, ids, n, k == 2, &out, &olen, &e)) fail_msg("%s", e.msg);
            if (olen != json_string_length(want) || memcmp(out, json_string_value(want), olen)) {
                if (bad++ < 5) print_message("  %s text %lld: %s differs: got [%s] want [%s]\n", name,
                                             (long long)json_integer_value(json_object_get(j, "id")), dkeys[k][1], out,
                                             json_string_value(want));
            }
            free(out);
            free(ids);
        }
        json_decref(j);
    }
    free(line);
    fclose(f);
    tok_free(t);
    print_message("  %s: %d texts, %d mismatches\n", name, texts, bad);
    assert_int_equal(bad, 0);
}

static void golden(const char *name) {
    char tp[512], ip[512], rel[128];
    snprintf(rel, sizeof rel, "tokenizers/%s/tokenizer.json", name);
    FX_PATH(tp, rel);
    snprintf(rel, sizeof rel, "tokenizers/%s/ids.jsonl", name);
    FX_PATH(ip, rel);
    compare(name, tp, ip);
}

// The parts no shared fixture covers (Lowercase, NFKC, Strip, every Split behaviour and
// invert, Digits both ways, Metaspace always/first/never, byte fallback, fuse_unk), in four
// small tokenizer.json files of ours; the ids are those of Hugging Face's tokenizers 0.23.2
// (npm, Rust core), made by scripts/tokenizer-goldens.js. No tolerance.
static void test_components(void **s) {
    (void)s;
    const char *v[] = {"pipeline", "splits", "metaspace", "never"};
    for (int i = 0; i < 4; i++) {
        char tp[256], ip[256];
        snprintf(tp, sizeof tp, "tests/tokenizer-ref/%s.json", v[i]);
        snprintf(ip, sizeof ip, "tests/tokenizer-ref/%s.ids.jsonl", v[i]);
        compare(v[i], tp, ip);
    }
}

static void test_gpt2(void **s) { (void)s; golden("gpt2"); }
static void test_neox(void **s) { (void)s; golden("gpt-neox-20b"); }
static void test_lenml(void **s) { (void)s; golden("lenml-llama2"); }

// A byte-level BPE trained on Debian fortunes reads back, round-trips every document exactly,
// and compresses (its merges are used).
static void test_train_roundtrip(void **s) {
    (void)s;
    char path[512], out[512];
    FX_PATH(path, "corpora/debian_fortunes_text.txt");
    size_t len;
    char *text = read_file(path, &len);
    text[len] = 0;
    const char *docs[2000];
    size_t lens[2000];
    int n = 0;
    for (char *p = text; *p && n < 2000;) { // documents end at a line "%"
        char *e = strstr(p, "\n%\n");
        size_t l = e ? (size_t)(e - p) : strlen(p);
        docs[n] = p;
        lens[n++] = l;
        if (!e) break;
        p = e + 3;
    }
    tmp_dir(out, sizeof out, "bpe");
    strcat(out, "/tokenizer.json");
    ibc_err e = {0};
    if (tok_train_bpe(docs, lens, n, 2048, out, &e)) fail_msg("%s", e.msg);
    tokenizer *t;
    if (tok_load(out, &t, &e)) fail_msg("%s", e.msg);
    assert_int_equal(tok_vocab_size(t), 2048);
    long bytes = 0, ids_total = 0;
    for (int i = 0; i < n; i++) {
        int32_t *ids;
        int k;
        if (tok_encode(t, docs[i], lens[i], 1, &ids, &k, &e)) fail_msg("%s", e.msg);
        char *back;
        size_t bl;
        if (tok_decode(t, ids, k, 0, &back, &bl, &e)) fail_msg("%s", e.msg);
        if (bl != lens[i] || memcmp(back, docs[i], bl)) fail_msg("document %d does not round-trip", i);
        bytes += (long)lens[i];
        ids_total += k;
        free(back);
        free(ids);
    }
    print_message("  trained 2048 ids on %d fortunes: %.2f bytes per token\n", n, (double)bytes / ids_total);
    assert_true((double)bytes / ids_total > 2.5);
    tok_free(t);
    free(text);
}

// A tokenizer whose pre-tokenizer is one Split on `regex` (JSON-escaped), vocabulary "a".."c".
static tokenizer *split_tokenizer(const char *regex, const char *name) {
    char json[1024];
    snprintf(json, sizeof json,
             "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"%s\"}, \"behavior\": \"Isolated\"},"
             " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \" \": 3}, \"merges\": []}}",
             regex);
    tokenizer *t;
    ibc_err e = {0};
    if (tok_parse(json, strlen(json), name, &t, &e)) fail_msg("%s", e.msg);
    return t;
}

static void expect_error(tokenizer *t, const char *text, int code, const char *const *parts) {
    int32_t *ids = NULL;
    int n;
    ibc_err e = {0};
    int rc = tok_encode(t, text, strlen(text), 0, &ids, &n, &e);
    print_message("  %s\n", e.msg);
    assert_int_equal(rc, code);
    assert_null(ids);
    for (int i = 0; parts[i]; i++)
        if (!strstr(e.msg, parts[i])) fail_msg("message lacks \"%s\": %s", parts[i], e.msg);
}

// Issue 11 point 4: a PCRE2 error other than no-match is an error naming the tokenizer, the
// pattern and the position, never a silently different tokenization.
static void test_pcre2_errors(void **s) {
    (void)s;
    // 1. Catastrophic backtracking at PCRE2's own default limits: (a+)+b over 40 a's that are
    // not followed by b needs ~2^40 steps; the match limit (10^7) stops it.
    tokenizer *t = split_tokenizer("(a+)+b", "evil.json");
    char text[64];
    snprintf(text, sizeof text, "%s", "c aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac b");
    expect_error(t, text, IBC_EINPUT, (const char *const[]){"evil.json", "(a+)+b", "from byte 0 of a 45-byte piece", "limit", NULL});
    tok_free(t);
    // 2. The real GPT-2 pattern with a match limit of 1 (the test hook): the first search fails.
    t = split_tokenizer("'s|'t| ?\\\\p{L}+| ?\\\\p{N}+|\\\\s+", "gpt2ish.json");
    int32_t *ids;
    int n;
    ibc_err e = {0};
    assert_int_equal(tok_encode(t, "ab c", 4, 0, &ids, &n, &e), 0); // the pattern itself works
    assert_int_equal(n, 4); // a b " " c: no merges
    free(ids);
    tok_test_pcre2(t, 1, 0);
    expect_error(t, "ab c", IBC_EINPUT, (const char *const[]){"gpt2ish.json", "\\p{L}+", "match limit", NULL});
    // 3. PCRE2 cannot allocate while segmenting (the test hook fails its allocations): IBC_ESYS.
    tok_test_pcre2(t, 0, 1);
    expect_error(t, "ab c", IBC_ESYS, (const char *const[]){"gpt2ish.json", "out of memory", "match data", NULL});
    tok_test_pcre2(t, 0, 0); // and back to normal
    assert_int_equal(tok_encode(t, "ab c", 4, 0, &ids, &n, &e), 0);
    free(ids);
    tok_free(t);
}

// A long run of one character class (10 MB of spaces, then of letters) through GPT-2's
// pattern: no limit is reached, and the ids are right.
static void test_long_runs(void **s) {
    (void)s;
    size_t len = 10u << 20;
    char *text = xmalloc(len + 1);
    tokenizer *t = split_tokenizer("'s|'t| ?\\\\p{L}+| ?\\\\p{N}+|\\\\s+(?!\\\\S)|\\\\s+", "runs.json");
    for (int k = 0; k < 2; k++) {
        memset(text, k ? 'a' : ' ', len);
        text[len] = 0;
        int32_t *ids;
        int n;
        ibc_err e = {0};
        if (tok_encode(t, text, len, 0, &ids, &n, &e)) fail_msg("%s", e.msg);
        assert_int_equal(n, (int)len); // one piece; no merges, so one id per character
        free(ids);
    }
    tok_free(t);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2),
        cmocka_unit_test(test_neox),
        cmocka_unit_test(test_lenml),
        cmocka_unit_test(test_train_roundtrip),
        cmocka_unit_test(test_components),
        cmocka_unit_test(test_pcre2_errors),
        cmocka_unit_test(test_long_runs),
    };
    return cmocka_run_group_tests_name("tokenizer", tests, NULL, NULL);
}
