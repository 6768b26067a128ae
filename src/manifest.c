#include "ibc/manifest.h"

#include <errno.h>
#include <glob.h>
#include <jansson.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ibc/blas.h"
#include "ibc/config.h"
#include "ibc/io.h"
#include "ibc/limits.h"
#include "ibc/mem.h"
#include "ibc/sha256.h"
#include "ibc/softent.h"
#include "ibc/version.h"

// A safetensors header may not claim more than this (real ones are a few MB at most).
#define ST_HEADER_MAX ((uint64_t)100 << 20)

// SHA-256 of up to `limit` bytes of f from where it stands (all of it when limit = UINT64_MAX).
static int hash_stream(FILE *f, uint64_t limit, char hex[SHA256_HEX], uint64_t *n) {
    unsigned char buf[1 << 16];
    sha256_ctx s;
    sha256_init(&s);
    *n = 0;
    while (*n < limit) {
        size_t want = limit - *n < sizeof buf ? (size_t)(limit - *n) : sizeof buf, k = fread(buf, 1, want, f);
        sha256_update(&s, buf, k);
        *n += k;
        if (k < want) break;
    }
    sha256_final_hex(&s, hex);
    return ferror(f) ? -1 : 0;
}

// {"path", "size", "sha256"} of a whole file, or {"path", "error"}.
static json_t *hashed(const char *path) {
    json_t *o = json_object();
    json_object_set_new(o, "path", json_string(path));
    FILE *f = fopen(path, "rb");
    char hex[SHA256_HEX];
    uint64_t n;
    if (!f) json_object_set_new(o, "error", json_string(strerror(errno)));
    else if (hash_stream(f, UINT64_MAX, hex, &n)) json_object_set_new(o, "error", json_string("read error"));
    else {
        json_object_set_new(o, "size", json_integer((json_int_t)n));
        json_object_set_new(o, "sha256", json_string(hex));
    }
    if (f) fclose(f);
    return o;
}

// {"file", "size", "header_bytes", "header_sha256"} of one safetensors file, or {"file", "error"}.
static json_t *st_header(const char *path) {
    json_t *o = json_object();
    const char *base = strrchr(path, '/');
    json_object_set_new(o, "file", json_string(base ? base + 1 : path));
    FILE *f = fopen(path, "rb");
    struct stat st;
    unsigned char len8[8];
    uint64_t hlen = 0, got;
    char hex[SHA256_HEX];
    const char *why = NULL;
    if (!f || fstat(fileno(f), &st) != 0) why = "cannot open";
    else if (fread(len8, 1, 8, f) != 8) why = "shorter than 8 bytes";
    else {
        for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i]; // u64 little-endian
        if (hlen > ST_HEADER_MAX || hlen > (uint64_t)st.st_size - 8) why = "header length past the file's end";
        else if (hash_stream(f, hlen, hex, &got) || got != hlen) why = "read error in the header";
    }
    if (why) json_object_set_new(o, "error", json_string(why));
    else {
        json_object_set_new(o, "size", json_integer((json_int_t)st.st_size));
        json_object_set_new(o, "header_bytes", json_integer((json_int_t)hlen));
        json_object_set_new(o, "header_sha256", json_string(hex));
    }
    if (f) fclose(f);
    return o;
}

typedef struct {
    int d[64];
    double eps[64];
    int n;
} eps_cache;

// The temperature a checkpoint of width d gets (run_anchors' rule), or NaN with why.
static json_t *eps_of(const job *j, int d, eps_cache *ec) {
    for (int i = 0; i < ec->n; i++)
        if (ec->d[i] == d) return json_real(ec->eps[i]);
    double eps;
    ibc_err e = {0};
    if (j->temp == TEMP_FIXED) eps = j->temperature;
    else if (j->temp == TEMP_LEADING) eps = se_eps_leading(j->bins, d);
    else if (se_eps_bound(j->bins, d, &eps, &e)) return json_string(e.msg);
    if (ec->n < 64) { ec->d[ec->n] = d; ec->eps[ec->n++] = eps; }
    return json_real(eps);
}

static json_t *ckpt_entry(const job *j, const job_ckpt *k, eps_cache *ec) {
    json_t *o = json_object(), *sts = json_array();
    char path[IBC_PATH_NAME_MAX];
    json_object_set_new(o, "name", json_string(k->name));
    json_object_set_new(o, "path", json_string(k->path));
    static const char *FILES[] = {"config.json", "tokenizer.json", "model.safetensors.index.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", k->path, FILES[i]);
        json_t *h = hashed(path);
        if (i < 2 || !json_object_get(h, "error")) json_object_set(o, FILES[i], json_object_get(h, "error") ? h : json_object_get(h, "sha256"));
        json_decref(h);
    }
    snprintf(path, sizeof path, "%s/*.safetensors", k->path);
    glob_t g;
    if (glob(path, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) json_array_append_new(sts, st_header(g.gl_pathv[i]));
        globfree(&g);
    }
    json_object_set_new(o, "safetensors", sts);
    model_config mc;
    ibc_err e = {0};
    snprintf(path, sizeof path, "%s/config.json", k->path);
    if (config_load(path, &mc, &e) == 0) {
        json_object_set_new(o, "d", json_integer(mc.d));
        json_object_set_new(o, "temperature", eps_of(j, mc.d, ec));
    }
    return o;
}

static json_t *documents(const job *j, const corpus *c) {
    json_t *o = json_object(), *idx = json_array();
    int sampled = j->documents > 0 && j->documents < c->n_total;
    json_object_set_new(o, "total", json_integer(c->n_total));
    json_object_set_new(o, "kept", json_integer(c->n));
    json_object_set_new(o, "bad_skipped", json_integer(c->n_bad));
    json_object_set_new(o, "requested", json_integer(j->documents));
    json_object_set_new(o, "seed", json_integer((json_int_t)j->corpus_seed));
    // The kept documents' numbers as decimal lines: `sha256sum` of that text reproduces it.
    sha256_ctx s;
    sha256_init(&s);
    char line[32], hex[SHA256_HEX];
    for (int64_t i = 0; i < c->n; i++) {
        int k = snprintf(line, sizeof line, "%lld\n", (long long)(c->index ? c->index[i] : i));
        sha256_update(&s, line, (size_t)k);
        if (sampled && c->n <= MANIFEST_MAX_INDICES) json_array_append_new(idx, json_integer(c->index ? c->index[i] : i));
    }
    sha256_final_hex(&s, hex);
    json_object_set_new(o, "indices_sha256", json_string(hex));
    if (sampled && c->n <= MANIFEST_MAX_INDICES) json_object_set_new(o, "indices", idx);
    else json_decref(idx);
    return o;
}

static json_t *inputs(const corpus *c) {
    json_t *a = json_array();
    for (int i = 0; i < c->n_files; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:s}", "path", c->files[i].path, "kind", c->files[i].kind,
                                           "size", (json_int_t)c->files[i].size, "sha256", c->files[i].sha256));
    return a;
}

char *manifest_build(const job *j, const corpus *c) {
    json_t *m = json_object(), *ck = json_array();
    eps_cache ec = {0};
    json_object_set_new(m, "ibc_version", json_string(IBC_VERSION));
    json_object_set_new(m, "git_revision", json_string(IBC_GIT_REV));
    char blas[256]; // informational, like the version: not compared on resume or merge
    blas_describe(blas, sizeof blas);
    json_object_set_new(m, "blas", json_string(blas));
    json_object_set_new(m, "job_file", json_string(j->file));
    json_object_set_new(m, "job_text", json_string(j->text ? j->text : ""));
    json_object_set_new(m, "inputs", inputs(c));
    json_object_set_new(m, "documents", documents(j, c));
    for (int k = 0; k < j->n_ckpts; k++) json_array_append_new(ck, ckpt_entry(j, &j->ckpts[k], &ec));
    json_object_set_new(m, "checkpoints", ck);
    json_object_set_new(m, "tokenizer", j->tokenizer[0] ? hashed(j->tokenizer) : json_string("each checkpoint's tokenizer.json"));
    json_t *an = j->anchors[0] ? hashed(j->anchors)
                               : json_pack("{s:s, s:I, s:i}", "generated", "se_anchors (method.md §2)", "seed",
                                           (json_int_t)j->seed, "bins", j->bins);
    if (j->n_seeds > 1) { // an ensemble: every set's seed (seed above is the first)
        json_t *sd = json_array();
        for (int k = 0; k < j->n_seeds; k++) json_array_append_new(sd, json_integer((json_int_t)j->seeds[k]));
        json_object_set_new(an, "seeds", sd);
    }
    json_object_set_new(m, "anchors", an);
    static const char *MODE[] = {"bound", "leading", "fixed"};
    json_t *t = json_pack("{s:s}", "mode", MODE[j->temp]);
    if (j->temp == TEMP_FIXED) json_object_set_new(t, "value", json_real(j->temperature));
    json_object_set_new(t, "per_checkpoint", json_string("checkpoints[].temperature, for the checkpoint's width d"));
    json_object_set_new(m, "temperature", t);
    json_object_set_new(m, "special_tokens", json_pack("{s:b, s:i, s:s}", "add_special_tokens", j->add_special, "max_length",
                                                       j->max_length, "meaning", j->add_special
                                                           ? "the tokenizer's post-processor adds its BOS/special tokens"
                                                           : "no special tokens are added"));
    char *s = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(m);
    if (!s) s = xstrdup("{}"); // jansson fails only without memory
    char *out = xstrdup(s);
    free(s);
    return out;
}

// ---- comparing ----

// The first difference between two entries of a list (inputs, checkpoints): "NAME: KEY".
static void name_diff(json_t *a, json_t *b, const char *what, char *buf, size_t cap) {
    size_t na = json_array_size(a), nb = json_array_size(b), i = 0;
    if (!json_is_array(a) || !json_is_array(b) || na != nb) {
        snprintf(buf, cap, "the %s (%zu then %zu)", what, na, nb);
        return;
    }
    while (i < na && json_equal(json_array_get(a, i), json_array_get(b, i))) i++;
    json_t *ea = json_array_get(a, i), *eb = json_array_get(b, i), *v;
    const char *label = json_string_value(json_object_get(eb, "name"));
    if (!label) label = json_string_value(json_object_get(eb, "path"));
    const char *key;
    json_object_foreach(eb, key, v) if (!json_equal(v, json_object_get(ea, key))) break;
    if (!json_equal(json_object_get(ea, "path"), json_object_get(eb, "path")) && !json_object_get(eb, "name"))
        snprintf(buf, cap, "%s %zu: %s then %s", what, i + 1, json_string_value(json_object_get(ea, "path")), label ? label : "?");
    else snprintf(buf, cap, "%s %s: %s", what, label ? label : "?", key ? key : "its entry");
}

// 1 and what in buf when old and new differ in anything but the version and git revision.
static int changed(json_t *old, json_t *now, char *buf, size_t cap) {
    static const char *KEYS[] = {"job_text", "inputs", "documents", "checkpoints", "tokenizer", "anchors", "temperature", "special_tokens"};
    for (size_t i = 0; i < sizeof KEYS / sizeof *KEYS; i++) {
        json_t *a = json_object_get(old, KEYS[i]), *b = json_object_get(now, KEYS[i]);
        if (json_equal(a, b)) continue;
        if (i == 1) name_diff(a, b, "input", buf, cap);
        else if (i == 3) name_diff(a, b, "checkpoint", buf, cap);
        else if (i == 2) snprintf(buf, cap, "the documents (count %lld then %lld of %lld then %lld, or which ones)",
                                  (long long)json_integer_value(json_object_get(a, "kept")), (long long)json_integer_value(json_object_get(b, "kept")),
                                  (long long)json_integer_value(json_object_get(a, "total")), (long long)json_integer_value(json_object_get(b, "total")));
        else snprintf(buf, cap, "%s", KEYS[i]);
        return 1;
    }
    return 0;
}

static int write_text(const char *path, const char *text, ibc_err *err) {
    io_file w;
    int rc = io_begin(&w, path, err);
    if (rc) return rc;
    fputs(text, w.f);
    fputc('\n', w.f);
    return io_commit(&w, err);
}

int manifest_update(const char *dir, const char *text, int resuming, ibc_err *err) {
    char path[IBC_PATH_NAME_MAX], what[512], *old_text;
    size_t len;
    int rc = io_join(path, sizeof path, dir, "manifest.json", err);
    if (rc) return rc;
    ibc_err ignore = {0};
    if (resuming && io_read_all(path, &old_text, &len, &ignore) == 0) {
        json_error_t je;
        json_t *old = json_loads(old_text, 0, &je), *now = json_loads(text, 0, &je);
        free(old_text);
        if (!old) rc = ibc_fail(err, IBC_EINPUT, "%s: not valid JSON (line %d); remove it or the folder to start again", path, je.line);
        else if (changed(old, now, what, sizeof what))
            rc = ibc_fail(err, IBC_EINPUT, "%s: cannot resume: %s changed since these results were written; use a new job name or output folder",
                          path, what);
        json_decref(old);
        json_decref(now);
    }
    return rc ? rc : write_text(path, text, err);
}

int manifest_merge(const char *const *dirs, int n, const char *out, ibc_err *err) {
    char path[IBC_PATH_NAME_MAX], what[512];
    json_t *first = NULL;
    char *first_text = NULL;
    int rc = 0, have = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char *t;
        size_t len;
        ibc_err ignore = {0};
        if ((rc = io_join(path, sizeof path, dirs[i], "manifest.json", err))) break;
        if (io_read_all(path, &t, &len, &ignore)) continue;
        json_error_t je;
        json_t *m = json_loads(t, 0, &je);
        if (!m) rc = ibc_fail(err, IBC_EINPUT, "%s: not valid JSON (line %d)", path, je.line);
        else if (!first) { first = m; first_text = t; t = NULL; m = NULL; }
        else if (changed(first, m, what, sizeof what))
            rc = ibc_fail(err, IBC_EINPUT, "%s: these results are of other inputs than %s's: %s differs", path, dirs[0], what);
        have++;
        json_decref(m);
        free(t);
    }
    if (rc == 0 && have && have < n) rc = ibc_fail(err, IBC_EINPUT, "%s: %d of the %d folders have a manifest.json; merge results of one ibc version", out, have, n);
    if (rc == 0 && have && (rc = io_join(path, sizeof path, out, "manifest.json", err)) == 0) {
        size_t k = strlen(first_text);
        while (k && first_text[k - 1] == '\n') first_text[--k] = 0;
        rc = write_text(path, first_text, err);
    }
    json_decref(first);
    free(first_text);
    return rc;
}

char *manifest_text_beside(const char *path) {
    char dir[IBC_PATH_MAX], mpath[IBC_PATH_NAME_MAX], *t;
    size_t len;
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    ibc_err ignore = {0};
    if (io_join(mpath, sizeof mpath, dir, "manifest.json", &ignore) || io_read_all(mpath, &t, &len, &ignore)) return NULL;
    return t;
}

char *manifest_text_shared(const char *path) {
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    char *t = rank == 0 ? manifest_text_beside(path) : NULL;
    long long n = t ? (long long)strlen(t) + 1 : 0;
    MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    if (n > INT32_MAX) n = 0; // a manifest is far smaller; never a partial dataset
    if (!n) { free(t); return NULL; }
    if (rank != 0) t = xmalloc((size_t)n);
    MPI_Bcast(t, (int)n, MPI_CHAR, 0, MPI_COMM_WORLD);
    return t;
}
