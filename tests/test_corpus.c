// corpus, instream and sha256: chat rendering, streams (members, truncation, changes while
// read, over-long lines), file expansion, and the sample against the full Fisher-Yates shuffle.
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "testutil.h"

#include "ibc/corpus.h"
#include "ibc/instream.h"
#include "ibc/limits.h"
#include "ibc/rng.h"
#include "ibc/sha256.h"

// FIPS 180-4 / NIST example digests.
static void test_sha256_vectors(void **state) {
    (void)state;
    char hex[SHA256_HEX];
    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(m, strlen(m), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    sha256_ctx s; // a million 'a' in uneven pieces: the block boundary paths
    sha256_init(&s);
    char a[997];
    memset(a, 'a', sizeof a);
    size_t left = 1000000;
    for (size_t k = 1; left; k = k % 984 + 13) { // 13..996 bytes
        size_t n = k < left ? k : left;
        sha256_update(&s, a, n);
        left -= n;
    }
    sha256_final_hex(&s, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static char *render(const char *prompt, const char *resp, char *why) {
    json_error_t je;
    json_t *p = json_loads(prompt, JSON_DECODE_ANY, &je), *r = json_loads(resp, JSON_DECODE_ANY, &je);
    assert_non_null(p);
    assert_non_null(r);
    char *t = corpus_render_pair(p, r, "chosen", why, 256);
    json_decref(p);
    json_decref(r);
    return t;
}

static void expect_text(const char *prompt, const char *resp, const char *want) {
    char why[256] = "";
    char *t = render(prompt, resp, why);
    if (!t) fail_msg("%s", why);
    assert_string_equal(t, want);
    free(t);
}

static void expect_bad(const char *prompt, const char *resp, const char *want) {
    char why[256] = "";
    char *t = render(prompt, resp, why);
    assert_null(t);
    assert_string_equal(why, want);
}

static void test_render(void **state) {
    (void)state;
    // strings: bytes as they are
    expect_text("\"Q: 2+2? A:\"", "\" four\"", "Q: 2+2? A: four");
    // Tulu: prompt turns repeated at the start of chosen: not repeated in the text
    expect_text("[{\"role\":\"user\",\"content\":\"Hi?\"}]",
                "[{\"role\":\"user\",\"content\":\"Hi?\"},{\"role\":\"assistant\",\"content\":\"Hello.\"}]",
                "user: Hi?\nassistant: Hello.");
    // the same without the repetition
    expect_text("[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi?\"}]",
                "[{\"role\":\"assistant\",\"content\":\"Hello.\"}]", "system: Be brief.\nuser: Hi?\nassistant: Hello.");
    // UltraFeedback: a string prompt, chosen starting with it as the user turn
    expect_text("\"Hi?\"", "[{\"role\":\"user\",\"content\":\"Hi?\"},{\"role\":\"assistant\",\"content\":\"Hello.\"}]",
                "user: Hi?\nassistant: Hello.");
    // a string prompt whose text differs from the first turn: both kept
    expect_text("\"Hi?\"", "[{\"role\":\"user\",\"content\":\"Other\"},{\"role\":\"assistant\",\"content\":\"A\"}]",
                "user: Hi?\nuser: Other\nassistant: A");
    // a list prompt and a string response: one assistant turn
    expect_text("[{\"role\":\"user\",\"content\":\"Hi?\"}]", "\"Hello.\"", "user: Hi?\nassistant: Hello.");
    expect_bad("\"p\"", "3", "chosen: expected a string or a list of {role, content} messages, got a number");
    expect_bad("\"p\"", "{\"role\":\"user\"}", "chosen: expected a string or a list of {role, content} messages, got an object");
    expect_bad("7", "\"x\"", "prompt: expected a string or a list of {role, content} messages, got a number");
    expect_bad("\"p\"", "[]", "chosen: an empty list of messages");
    expect_bad("\"p\"", "[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\"}]",
               "chosen: message 2 is not an object with string fields role and content");
    expect_bad("[{\"role\":\"user\",\"content\":\"Hi?\"}]", "[{\"role\":\"user\",\"content\":\"Hi?\"}]", "chosen: holds only the prompt's turns");
}

// gzip bytes of s (one member).
static size_t gz(const char *s, unsigned char *out, size_t cap) {
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (unsigned char *)s;
    z.avail_in = (uInt)strlen(s);
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    return n;
}

static void read_all_lines(instream *s, char *out, size_t cap, int *rc, ibc_err *e) {
    const char *l;
    size_t n, used = 0;
    out[0] = 0;
    while ((*rc = instream_line(s, &l, &n, e)) == 1) used += (size_t)snprintf(out + used, cap - used, "%s|", l);
}

static void test_gzip_members_and_truncation(void **state) {
    (void)state;
    unsigned char buf[4096];
    size_t a = gz("one\ntwo\n", buf, sizeof buf), b = gz("three\nfour", buf + a, sizeof buf - a);
    instream *s;
    ibc_err e = {0};
    char got[256];
    int rc;
    assert_int_equal(instream_open_mem(buf, a + b, "mem.gz", &s, &e), 0);
    assert_string_equal(instream_kind(s), "gzip");
    read_all_lines(s, got, sizeof got, &rc, &e);
    assert_int_equal(rc, 0);
    assert_string_equal(got, "one|two|three|four|"); // both members; a last line without newline
    instream_close(s);
    assert_int_equal(instream_open_mem(buf, a + b - 5, "cut.gz", &s, &e), 0);
    read_all_lines(s, got, sizeof got, &rc, &e);
    assert_int_equal(rc, IBC_EINPUT);
    assert_non_null(strstr(e.msg, "cut.gz: truncated gzip stream"));
    instream_close(s);
    memset(buf + a + b, 'x', 12); // trailing garbage after the last member
    assert_int_equal(instream_open_mem(buf, a + b + 12, "tail.gz", &s, &e), 0);
    read_all_lines(s, got, sizeof got, &rc, &e);
    assert_int_equal(rc, IBC_EINPUT);
    assert_non_null(strstr(e.msg, "tail.gz: corrupt gzip stream at compressed byte"));
    instream_close(s);
}

// The same 20k lines through gzip, zstd and xz (memory streams use ~1 KiB chunks, so decoders
// and lines cross many chunk ends), and the SHA-256 of the raw bytes.
static void test_formats_across_chunks(void **state) {
    (void)state;
    size_t n = 0, cap = 1000000; // 20k lines of at most 27 bytes
    char *text = malloc(cap);
    for (int i = 0; i < 20000; i++) n += (size_t)snprintf(text + n, cap - n, "{\"text\": \"line %d\"}\n", i * 7919 % 100003);
    size_t zcap = n + 4096;
    unsigned char *z = malloc(zcap);
    for (int k = 0; k < 3; k++) {
        size_t zn = 0;
        const char *want = k == 0 ? "gzip" : k == 1 ? "zstd" : "xz";
        if (k == 0) {
            char *t = malloc(n + 1);
            memcpy(t, text, n);
            t[n] = 0;
            zn = gz(t, z, zcap);
            free(t);
        } else if (k == 1) {
            zn = ZSTD_compress(z, zcap, text, n, 3);
            assert_false(ZSTD_isError(zn));
        } else {
            assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, NULL, (const uint8_t *)text, n, z, &zn, zcap), LZMA_OK);
        }
        instream *s;
        ibc_err e = {0};
        assert_int_equal(instream_open_mem(z, zn, want, &s, &e), 0);
        assert_string_equal(instream_kind(s), want);
        const char *l;
        size_t len, at = 0;
        int rc;
        while ((rc = instream_line(s, &l, &len, &e)) == 1) {
            assert_memory_equal(l, text + at, len);
            assert_int_equal(text[at + len], '\n');
            at += len + 1;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(at, n);
        assert_int_equal(instream_line_no(s), 20000);
        char hex[SHA256_HEX], ref[SHA256_HEX];
        uint64_t size;
        instream_digest(s, hex, &size);
        sha256_hex(z, zn, ref);
        assert_string_equal(hex, ref);
        assert_int_equal(size, zn);
        instream_close(s);
    }
    free(z);
    free(text);
}

static void test_long_line(void **state) {
    (void)state;
    size_t n = (size_t)IBC_LINE_MAX + 100;
    char *big = malloc(n + 16);
    assert_non_null(big);
    memset(big, 'x', n);
    memcpy(big + n, "\nshort\n", 7);
    instream *s;
    ibc_err e = {0};
    const char *l;
    size_t len;
    assert_int_equal(instream_open_mem(big, n + 7, "big", &s, &e), 0);
    assert_int_equal(instream_line(s, &l, &len, &e), 2); // dropped, counted as line 1
    assert_null(l);
    assert_int_equal(instream_line_no(s), 1);
    assert_int_equal(instream_line(s, &l, &len, &e), 1);
    assert_string_equal(l, "short");
    assert_int_equal(instream_line(s, &l, &len, &e), 0);
    instream_close(s);
    free(big);
}

static void test_changed_while_read(void **state) {
    (void)state;
    char path[] = "/tmp/ibc_corpus_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "a\nb\n", 4), 4);
    close(fd);
    instream *s;
    ibc_err e = {0};
    const char *l;
    size_t len;
    assert_int_equal(instream_open(path, &s, &e), 0);
    assert_int_equal(instream_line(s, &l, &len, &e), 1);
    FILE *f = fopen(path, "a");
    fputs("c\n", f);
    fclose(f);
    int rc;
    while ((rc = instream_line(s, &l, &len, &e)) == 1) {}
    assert_int_equal(rc, IBC_EINPUT);
    assert_non_null(strstr(e.msg, "the file changed while it was read"));
    instream_close(s);
    unlink(path);
}

static void test_expand(void **state) {
    (void)state;
    char dir[] = "/tmp/ibc_expand_XXXXXX", p[256];
    assert_non_null(mkdtemp(dir));
    const char *names[] = {"b.2.json", "b.10.json", "a.json", "list.txt"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        FILE *f = fopen(p, "w");
        if (i == 3) fputs("# files\nb.2.json\n\n  a.json\n", f);
        fclose(f);
    }
    char **paths;
    int n;
    ibc_err e = {0};
    snprintf(p, sizeof p, "%s/*.json", dir);
    assert_int_equal(corpus_expand(p, &paths, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_non_null(strstr(paths[0], "/a.json")); // byte order: a < b.10 < b.2
    assert_non_null(strstr(paths[1], "/b.10.json"));
    assert_non_null(strstr(paths[2], "/b.2.json"));
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
    snprintf(p, sizeof p, "@%s/list.txt", dir);
    assert_int_equal(corpus_expand(p, &paths, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_non_null(strstr(paths[0], "/a.json"));
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
    snprintf(p, sizeof p, "%s/*.parquet", dir);
    assert_int_equal(corpus_expand(p, &paths, &n, &e), IBC_EINPUT);
    assert_non_null(strstr(e.msg, "*.parquet: no file matches this pattern"));
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

// The two-pass sample equals the first N of a Fisher-Yates shuffle of all n indices (the way
// ibc sampled when it held every document), for several n, N and seeds.
static void test_sample_matches_full_shuffle(void **state) {
    (void)state;
    char path[] = "/tmp/ibc_sample_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    int64_t n = 1000;
    for (int64_t i = 0; i < n; i++) fprintf(f, "{\"ids\": [%d, 1, 2]}\n", (int)i);
    fclose(f);
    int64_t Ns[] = {1, 10, 500, 999};
    for (int t = 0; t < 4; t++)
        for (uint64_t seed = 0; seed < 3; seed++) {
            job j = {.format = CORPUS_JSONL_IDS, .documents = Ns[t], .corpus_seed = seed};
            strcpy(j.corpus, path);
            strcpy(j.field, "ids");
            corpus c;
            ibc_err e = {0};
            assert_int_equal(corpus_read(&j, &c, &e), 0);
            int64_t *idx = malloc(sizeof(int64_t) * (size_t)n);
            char *keep = calloc((size_t)n, 1);
            for (int64_t i = 0; i < n; i++) idx[i] = i;
            rng r;
            rng_seed(&r, seed);
            for (int64_t i = 0; i < Ns[t]; i++) {
                int64_t k = i + (int64_t)rng_below(&r, (uint64_t)(n - i)), x = idx[i];
                idx[i] = idx[k];
                idx[k] = x;
                keep[idx[i]] = 1;
            }
            assert_int_equal(c.n, Ns[t]);
            assert_int_equal(c.n_total, n);
            for (int64_t i = 0, m = 0; i < n; i++)
                if (keep[i]) {
                    assert_int_equal(c.index[m], i);
                    assert_int_equal(c.docs[m].ids[0], (int32_t)i);
                    m++;
                }
            free(idx);
            free(keep);
            corpus_free(&c);
        }
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_gzip_members_and_truncation),
        cmocka_unit_test(test_formats_across_chunks),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_changed_while_read),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_sample_matches_full_shuffle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
