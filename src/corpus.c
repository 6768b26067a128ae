#include "ibc/corpus.h"

#include <endian.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "ibc/instream.h"
#include "ibc/io.h"
#include "ibc/limits.h"
#include "ibc/mem.h"
#include "ibc/rng.h"

int corpus_valid_utf8(const char *s, size_t n) {
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    utf8proc_int32_t cp;
    for (size_t i = 0; i < n;) {
        utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

// A growing NUL-terminated byte string.
typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    xgrow(b->p, b->cap, b->n + n + 1);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

// ---- files: one path, a glob, or @LIST ----

static int by_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int add_paths(const char *spec, char ***paths, int *n, size_t *cap, ibc_err *err) {
    if (!strpbrk(spec, "*?[")) {
        xgrow(*paths, *cap, (size_t)*n + 1);
        (*paths)[(*n)++] = xstrdup(spec);
        return 0;
    }
    glob_t g;
    int r = glob(spec, 0, NULL, &g);
    if (r == GLOB_NOMATCH) return ibc_fail(err, IBC_EINPUT, "%s: no file matches this pattern", spec);
    if (r) return ibc_fail(err, IBC_EINPUT, "%s: cannot expand this pattern (glob error %d)", spec, r);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        xgrow(*paths, *cap, (size_t)*n + 1);
        (*paths)[(*n)++] = xstrdup(g.gl_pathv[i]);
    }
    globfree(&g);
    return 0;
}

// @LIST: one path or glob per line, relative to the list's folder; blank lines and # comments.
static int add_list(const char *list, char ***paths, int *n, size_t *cap, ibc_err *err) {
    char *text, dir[IBC_PATH_MAX], full[IBC_PATH_NAME_MAX];
    size_t len;
    int rc = io_read_all(list, &text, &len, err);
    if (rc) return rc;
    const char *slash = strrchr(list, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - list) : 1, slash ? list : ".");
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && rc == 0; l = strtok_r(NULL, "\n", &save)) {
        l += strspn(l, " \t");
        size_t k = strlen(l);
        while (k && (l[k - 1] == '\r' || l[k - 1] == ' ' || l[k - 1] == '\t')) l[--k] = 0;
        if (!k || l[0] == '#') continue;
        if (l[0] == '/') rc = add_paths(l, paths, n, cap, err);
        else if ((rc = io_join(full, sizeof full, dir, l, err)) == 0) rc = add_paths(full, paths, n, cap, err);
    }
    free(text);
    if (rc == 0 && *n == 0) rc = ibc_fail(err, IBC_EINPUT, "%s: the list names no file", list);
    return rc;
}

int corpus_expand(const char *spec, char ***paths, int *n, ibc_err *err) {
    *paths = NULL;
    *n = 0;
    size_t cap = 0;
    int rc = spec[0] == '@' ? add_list(spec + 1, paths, n, &cap, err) : add_paths(spec, paths, n, &cap, err);
    if (rc == 0 && *n > 1) qsort(*paths, (size_t)*n, sizeof(char *), by_str);
    for (int i = 1; rc == 0 && i < *n; i++)
        if (!strcmp((*paths)[i], (*paths)[i - 1])) rc = ibc_fail(err, IBC_EINPUT, "%s: names %s twice", spec, (*paths)[i]);
    if (rc) {
        for (int i = 0; i < *n; i++) free((*paths)[i]);
        free(*paths);
        *paths = NULL;
        *n = 0;
    }
    return rc;
}

// ---- documents go to a sink: counted (first pass), kept, or kept if sampled ----

typedef struct {
    const job *j;
    corpus *c;
    int counting;         // count only (the first of two passes)
    const int64_t *sel;   // sorted document numbers to keep, or NULL = all
    int64_t n_sel, next;
    int64_t seen;         // good documents so far: the next one's number
    size_t cap;
    int file;             // files noted so far in this pass
} sink;

static void emit(sink *s, corpus_doc d) {
    int64_t i = s->seen++;
    corpus *c = s->c;
    if (s->counting || (s->sel && (s->next >= s->n_sel || s->sel[s->next] != i))) {
        free(d.text);
        free(d.ids);
        return;
    }
    if (s->sel) s->next++;
    size_t before = s->cap;
    xgrow(c->docs, s->cap, (size_t)c->n + 1);
    if (s->cap != before) c->index = xrealloc(c->index, sizeof(int64_t) * s->cap);
    c->index[c->n] = i;
    c->docs[c->n++] = d;
}

// A bad document: an error, or counted and skipped.
static int bad_doc(sink *s, ibc_err *err, const char *path, int64_t line, const char *what) {
    if (s->j->skip_bad) { s->c->n_bad++; return 0; }
    return ibc_fail(err, IBC_EINPUT, "%s:%lld: %s", path, (long long)line, what);
}

static int long_line(sink *s, instream *in, ibc_err *err) {
    char what[96];
    snprintf(what, sizeof what, "a line longer than %d MiB (IBC_LINE_MAX)", IBC_LINE_MAX >> 20);
    return bad_doc(s, err, instream_name(in), instream_line_no(in), what);
}

// ---- text ----

static int end_text_doc(sink *s, sbuf *doc, const char *path, int64_t start, int too_long, ibc_err *err) {
    while (doc->n && (doc->p[doc->n - 1] == '\n' || doc->p[doc->n - 1] == '\r')) doc->n--; // the separator's newline
    if (!doc->n) return 0;
    if (too_long) return bad_doc(s, err, path, start, "a document longer than IBC_LINE_MAX");
    if (!corpus_valid_utf8(doc->p, doc->n)) return bad_doc(s, err, path, start, "invalid UTF-8");
    char *t = xmalloc(doc->n + 1);
    memcpy(t, doc->p, doc->n);
    t[doc->n] = 0;
    emit(s, (corpus_doc){t, NULL, 0, -1, start});
    return 0;
}

static int read_text(sink *s, instream *in, ibc_err *err) {
    const char *sep = s->j->separator, *path = instream_name(in);
    size_t seplen = strlen(sep);
    sbuf doc = {0};
    int64_t start = 0;
    int rc = 0, have = 0, too_long = 0;
    for (;;) {
        const char *line;
        size_t len;
        int r = instream_line(in, &line, &len, err);
        if (r < 0) { rc = r; break; }
        if (r == 2) { // longer than IBC_LINE_MAX: its document is bad
            if (!have) start = instream_line_no(in), have = 1;
            too_long = 1;
            continue;
        }
        if (r == 1) {
            size_t bl = len;
            while (bl && line[bl - 1] == '\r') bl--;
            int ends = seplen ? (bl == seplen && !memcmp(line, sep, bl)) : bl == 0;
            if (!ends) {
                if (!have) start = instream_line_no(in), have = 1;
                if (doc.n + len + 1 >= IBC_LINE_MAX) too_long = 1;
                else sb_add(&doc, line, len), sb_add(&doc, "\n", 1);
                continue;
            }
        }
        if (have) rc = end_text_doc(s, &doc, path, start, too_long, err); // a separator line or the end
        doc.n = 0;
        have = too_long = 0;
        if (rc || r == 0) break;
    }
    free(doc.p);
    return rc;
}

// ---- JSONL: text, ids, preference pairs ----

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

// A message {role, content} with string fields.
static int turn(json_t *m, json_t **role, json_t **content) {
    *role = json_object_get(m, "role");
    *content = json_object_get(m, "content");
    return json_is_object(m) && json_is_string(*role) && json_is_string(*content);
}

static int same_str(json_t *a, json_t *b) {
    return json_string_length(a) == json_string_length(b) && !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
}

static int same_turn(json_t *a, json_t *b) {
    json_t *ra, *ca, *rb, *cb;
    return turn(a, &ra, &ca) && turn(b, &rb, &cb) && same_str(ra, rb) && same_str(ca, cb);
}

static void add_turn(sbuf *b, const char *role, size_t rl, const char *content, size_t cl) {
    if (b->n) sb_add(b, "\n", 1);
    sb_add(b, role, rl);
    sb_add(b, ": ", 2);
    sb_add(b, content, cl);
}

static void add_turns(sbuf *b, json_t *list, size_t from) {
    json_t *r, *c;
    for (size_t i = from; i < json_array_size(list); i++)
        if (turn(json_array_get(list, i), &r, &c))
            add_turn(b, json_string_value(r), json_string_length(r), json_string_value(c), json_string_length(c));
}

// A string or a non-empty list of messages; else the cause in why.
static int check_field(json_t *v, const char *field, char *why, size_t cap) {
    if (json_is_string(v)) return 0;
    if (!json_is_array(v)) {
        snprintf(why, cap, "%s: expected a string or a list of {role, content} messages, got %s", field, type_name(v));
        return -1;
    }
    if (!json_array_size(v)) { snprintf(why, cap, "%s: an empty list of messages", field); return -1; }
    json_t *r, *c;
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!turn(json_array_get(v, i), &r, &c)) {
            snprintf(why, cap, "%s: message %zu is not an object with string fields role and content", field, i + 1);
            return -1;
        }
    return 0;
}

// How many leading turns of the response repeat the prompt (Tulu / UltraFeedback lists start
// with the prompt's turns; a string prompt is one "user" turn).
static size_t repeated_turns(json_t *prompt, json_t *resp) {
    size_t np = json_is_string(prompt) ? 1 : json_array_size(prompt);
    if (np > json_array_size(resp)) return 0;
    if (json_is_string(prompt)) {
        json_t *r, *c;
        return turn(json_array_get(resp, 0), &r, &c) && !strcmp(json_string_value(r), "user") && same_str(c, prompt);
    }
    for (size_t i = 0; i < np; i++)
        if (!same_turn(json_array_get(prompt, i), json_array_get(resp, i))) return 0;
    return np;
}

char *corpus_render_pair(json_t *prompt, json_t *resp, const char *field, char *why, size_t cap) {
    if (check_field(prompt, "prompt", why, cap) || check_field(resp, field, why, cap)) return NULL;
    sbuf b = {0};
    sb_add(&b, "", 0);
    if (json_is_string(prompt) && json_is_string(resp)) { // bytes as they are (the caller's spacing)
        sb_add(&b, json_string_value(prompt), json_string_length(prompt));
        sb_add(&b, json_string_value(resp), json_string_length(resp));
        return b.p;
    }
    size_t skip = json_is_array(resp) ? repeated_turns(prompt, resp) : 0;
    if (json_is_array(resp) && skip == json_array_size(resp)) {
        snprintf(why, cap, "%s: holds only the prompt's turns", field);
        free(b.p);
        return NULL;
    }
    if (json_is_string(prompt)) add_turn(&b, "user", 4, json_string_value(prompt), json_string_length(prompt));
    else add_turns(&b, prompt, 0);
    if (json_is_string(resp)) add_turn(&b, "assistant", 9, json_string_value(resp), json_string_length(resp));
    else add_turns(&b, resp, skip);
    return b.p;
}

// One JSONL line: the object, or NULL for a blank line (why "") or a bad one (the cause in why).
static json_t *parse_line(const char *line, size_t len, char *why, size_t cap) {
    why[0] = 0;
    size_t k = 0;
    while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
    if (k == len) return NULL;
    if (!corpus_valid_utf8(line, len)) { snprintf(why, cap, "invalid UTF-8"); return NULL; }
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, &je);
    if (!json_is_object(o)) { json_decref(o); snprintf(why, cap, "not a JSON object"); return NULL; }
    return o;
}

// ids: non-negative int32 values; 0, or -1 (the cause in why).
static int read_ids_array(json_t *a, const char *field, int32_t **ids, int *n, char *why, size_t cap) {
    *ids = NULL;
    *n = 0;
    if (!json_is_array(a) || json_array_size(a) > INT32_MAX) goto bad;
    *n = (int)json_array_size(a);
    *ids = xmalloc(sizeof(int32_t) * (size_t)(*n ? *n : 1));
    for (int i = 0; i < *n; i++) {
        json_t *v = json_array_get(a, (size_t)i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) goto bad;
        (*ids)[i] = (int32_t)json_integer_value(v);
    }
    return 0;
bad:
    free(*ids);
    *ids = NULL;
    snprintf(why, cap, "field %s is not an array of non-negative integers", field);
    return -1;
}

static int json_doc(sink *s, json_t *o, int pref, const char *path, int64_t ln, ibc_err *err) {
    const job *j = s->j;
    char why[256];
    if (pref) {
        json_t *p = json_object_get(o, "prompt"), *ch = json_object_get(o, "chosen"), *rj = json_object_get(o, "rejected");
        if (!p || !ch || !rj) return bad_doc(s, err, path, ln, "expected fields prompt, chosen and rejected");
        char *a = corpus_render_pair(p, ch, "chosen", why, sizeof why), *b = a ? corpus_render_pair(p, rj, "rejected", why, sizeof why) : NULL;
        if (!b) { free(a); return bad_doc(s, err, path, ln, why); }
        emit(s, (corpus_doc){a, NULL, 0, 1, ln});
        emit(s, (corpus_doc){b, NULL, 0, 0, ln});
    } else if (j->format == CORPUS_JSONL_IDS) {
        int32_t *ids;
        int n;
        if (read_ids_array(json_object_get(o, j->field), j->field, &ids, &n, why, sizeof why)) return bad_doc(s, err, path, ln, why);
        emit(s, (corpus_doc){NULL, ids, n, -1, ln});
    } else {
        const char *t = json_string_value(json_object_get(o, j->field));
        if (!t) {
            snprintf(why, sizeof why, "no string field %s", j->field);
            return bad_doc(s, err, path, ln, why);
        }
        emit(s, (corpus_doc){xstrdup(t), NULL, 0, -1, ln});
    }
    return 0;
}

static int read_jsonl(sink *s, instream *in, int pref, ibc_err *err) {
    const char *line;
    size_t len;
    char why[64];
    int r, rc = 0;
    while (rc == 0 && (r = instream_line(in, &line, &len, err)) > 0) {
        int64_t ln = instream_line_no(in);
        if (r == 2) { rc = long_line(s, in, err); continue; }
        json_t *o = parse_line(line, len, why, sizeof why);
        if (!o) { if (why[0]) rc = bad_doc(s, err, instream_name(in), ln, why); continue; }
        rc = json_doc(s, o, pref, instream_name(in), ln, err);
        json_decref(o);
    }
    return rc ? rc : r;
}

int corpus_each_jsonl(const char *path, const char *field, int skip_bad, corpus_text_fn fn, void *ctx, int64_t *n_bad,
                      ibc_err *err) {
    instream *in;
    int rc = instream_open(path, &in, err), r = 0;
    if (rc) return rc;
    job j = {.skip_bad = skip_bad};
    corpus c = {0};
    sink s = {.j = &j, .c = &c};
    const char *line;
    size_t len;
    char why[128];
    while (rc == 0 && (r = instream_line(in, &line, &len, err)) > 0) {
        int64_t ln = instream_line_no(in);
        if (r == 2) { rc = long_line(&s, in, err); continue; }
        json_t *o = parse_line(line, len, why, sizeof why), *t = json_object_get(o, field);
        if (o && !json_is_string(t)) snprintf(why, sizeof why, "no string field %s", field);
        if (o && json_is_string(t)) rc = fn(ctx, json_string_value(t), json_string_length(t), ln, err);
        else if (why[0]) rc = bad_doc(&s, err, path, ln, why);
        json_decref(o);
    }
    instream_close(in);
    *n_bad = c.n_bad;
    return rc ? rc : r;
}

// ---- token files + offsets ----

// Reads up to n ids (es bytes each) into *ids, grown as they arrive (never to what the offsets
// claim before the tokens are there: a hostile offset cannot make a huge allocation); *got
// counts the ids the stream held.
static int read_ids(instream *tok, size_t es, uint64_t n, int32_t **ids, uint64_t *got, ibc_err *err) {
    unsigned char buf[1 << 14];
    size_t cap = 0;
    *got = 0;
    *ids = NULL;
    xgrow(*ids, cap, 1);
    while (*got < n) {
        size_t want = (n - *got) * es < sizeof buf ? (size_t)(n - *got) * es : sizeof buf, k;
        int rc = instream_read(tok, buf, want, &k, err);
        if (rc) return rc;
        xgrow(*ids, cap, (size_t)*got + k / es + 1);
        for (size_t t = 0; t + es <= k; t += es, (*got)++) {
            uint32_t v;
            if (es == 2) { uint16_t h; memcpy(&h, buf + t, 2); v = le16toh(h); }
            else { memcpy(&v, buf + t, 4); v = le32toh(v); }
            if (v > INT32_MAX)
                return ibc_fail(err, IBC_EINPUT, "%s: token %llu is %u, too large", instream_name(tok), (unsigned long long)*got, v);
            (*ids)[*got] = (int32_t)v;
        }
        if (k < want) {
            if (k % es) return ibc_fail(err, IBC_EINPUT, "%s: size is not a multiple of %zu", instream_name(tok), es);
            break;
        }
    }
    return 0;
}

static int read_offset(instream *off, uint64_t *v, int *end, ibc_err *err) {
    size_t got;
    int rc = instream_read(off, v, 8, &got, err);
    *v = le64toh(*v);
    *end = got == 0;
    if (rc == 0 && got && got != 8) rc = ibc_fail(err, IBC_EINPUT, "%s: expected N + 1 u64 offsets (the size is not a multiple of 8)", instream_name(off));
    return rc;
}

static int read_tokens(sink *s, instream *tok, instream *off, ibc_err *err) {
    size_t es = s->j->format == CORPUS_TOKENS_U16 ? 2 : 4;
    const char *op = instream_name(off), *tp = instream_name(tok);
    uint64_t a, b, total = 0, got;
    int end, rc = read_offset(off, &a, &end, err);
    if (rc == 0 && (end || a != 0)) rc = ibc_fail(err, IBC_EINPUT, "%s: expected N + 1 u64 offsets starting with 0", op);
    for (int64_t i = 0; rc == 0; i++) {
        if ((rc = read_offset(off, &b, &end, err)) || end) break;
        if (b < a || b - a > INT32_MAX) {
            rc = ibc_fail(err, IBC_EINPUT, "%s: offset %lld (%llu..%llu) is not increasing within the tokens of %s", op,
                          (long long)i, (unsigned long long)a, (unsigned long long)b, tp);
            break;
        }
        int32_t *ids;
        if ((rc = read_ids(tok, es, b - a, &ids, &got, err)) == 0 && got < b - a)
            rc = ibc_fail(err, IBC_EINPUT, "%s: offset %lld (%llu..%llu) is past the end of the %llu tokens of %s", op,
                          (long long)i, (unsigned long long)a, (unsigned long long)b, (unsigned long long)(total + got), tp);
        if (rc) { free(ids); break; }
        total += got;
        emit(s, (corpus_doc){NULL, ids, (int)(b - a), -1, i + 1});
        a = b;
    }
    unsigned char extra;
    size_t k;
    if (rc == 0 && (rc = instream_read(tok, &extra, 1, &k, err)) == 0 && k)
        rc = ibc_fail(err, IBC_EINPUT, "%s: the last offset (%llu) is not the token count of %s (it holds more)", op,
                      (unsigned long long)total, tp);
    return rc;
}

// ---- passes over the files ----

// Pass 1 notes each file's size and SHA-256; pass 2 checks them.
static int note_file(sink *s, int check, instream *in, ibc_err *err) {
    corpus *c = s->c;
    corpus_file f = {0};
    snprintf(f.path, sizeof f.path, "%s", instream_name(in));
    snprintf(f.kind, sizeof f.kind, "%s", instream_kind(in));
    instream_digest(in, f.sha256, &f.size);
    if (check) {
        const corpus_file *o = &c->files[s->file++];
        if (o->size != f.size || strcmp(o->sha256, f.sha256))
            return ibc_fail(err, IBC_EINPUT, "%s: the file changed while it was read (size or SHA-256 differs between the counting pass and the reading pass)", f.path);
        return 0;
    }
    c->files = xrealloc(c->files, sizeof(corpus_file) * (size_t)(c->n_files + 1));
    c->files[c->n_files++] = f;
    s->file++;
    return 0;
}

typedef struct {
    char **data, **offs;
    int n;
} fileset;

static int one_pass(const job *j, const fileset *fs, sink *s, int check, ibc_err *err) {
    int rc = 0, tokens = j->format == CORPUS_TOKENS_U16 || j->format == CORPUS_TOKENS_U32, pref = j->preference[0] != 0;
    s->c->n_bad = 0;
    for (int f = 0; f < fs->n && rc == 0; f++) {
        instream *in = NULL, *off = NULL;
        rc = instream_open(fs->data[f], &in, err);
        if (rc == 0 && tokens && !pref) rc = instream_open(fs->offs[f], &off, err);
        if (rc == 0) {
            if (pref || j->format == CORPUS_JSONL || j->format == CORPUS_JSONL_IDS) rc = read_jsonl(s, in, pref, err);
            else if (j->format == CORPUS_TEXT) rc = read_text(s, in, err);
            else rc = read_tokens(s, in, off, err);
        }
        if (rc == 0) rc = note_file(s, check, in, err);
        if (rc == 0 && off) rc = note_file(s, check, off, err);
        instream_close(in);
        instream_close(off);
    }
    return rc;
}

// The first N of a Fisher-Yates shuffle of 0..n-1 (step i swaps i with i + rng_below(n - i)),
// sorted: the same documents as a shuffle of the full n-long array, with a map of the displaced
// entries instead (at most N of them; open addressing, load <= 1/4). Memory ∝ N.
static int by_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t *pick(int64_t n, int64_t N, uint64_t seed) {
    size_t cap = 4;
    while (cap < 4 * (size_t)N) cap <<= 1;
    int64_t *key = xmalloc(sizeof(int64_t) * cap), *val = xmalloc(sizeof(int64_t) * cap), *out = xmalloc(sizeof(int64_t) * (size_t)N);
    memset(key, 0xff, sizeof(int64_t) * cap); // -1: empty
    rng r;
    rng_seed(&r, seed);
    for (int64_t i = 0; i < N; i++) {
        int64_t k = i + (int64_t)rng_below(&r, (uint64_t)(n - i)), vi = i, vk = k;
        size_t hi = ((uint64_t)i * 0x9E3779B97F4A7C15ULL) & (cap - 1), hk = ((uint64_t)k * 0x9E3779B97F4A7C15ULL) & (cap - 1);
        while (key[hi] >= 0 && key[hi] != i) hi = (hi + 1) & (cap - 1);
        if (key[hi] == i) vi = val[hi];
        while (key[hk] >= 0 && key[hk] != k) hk = (hk + 1) & (cap - 1);
        if (key[hk] == k) vk = val[hk];
        out[i] = vk; // position i is never read again (later k > i): only k keeps i's value
        key[hk] = k;
        val[hk] = vi;
    }
    free(key);
    free(val);
    qsort(out, (size_t)N, sizeof(int64_t), by_i64);
    return out;
}

int corpus_read(const job *j, corpus *c, ibc_err *err) {
    memset(c, 0, sizeof *c);
    int pref = j->preference[0] != 0, tokens = !pref && (j->format == CORPUS_TOKENS_U16 || j->format == CORPUS_TOKENS_U32);
    const char *spec = pref ? j->preference : j->corpus;
    snprintf(c->source, sizeof c->source, "%s", spec);
    fileset fs = {0};
    int n_off = 0;
    int rc = corpus_expand(spec, &fs.data, &fs.n, err);
    if (rc == 0 && tokens && (rc = corpus_expand(j->offsets, &fs.offs, &n_off, err)) == 0 && n_off != fs.n)
        rc = ibc_fail(err, IBC_EINPUT, "%s: %d offsets files for the %d token files of %s", j->offsets, n_off, fs.n, spec);
    int64_t *sel = NULL;
    sink s = {.j = j, .c = c, .counting = j->documents > 0};
    if (rc == 0) rc = one_pass(j, &fs, &s, 0, err); // everything, or (documents = N) counting
    c->n_total = s.seen;
    if (rc == 0 && j->documents > 0) { // the sample, from a second pass over the same bytes
        sink s2 = {.j = j, .c = c};
        if (j->documents < c->n_total) {
            sel = pick(c->n_total, j->documents, j->corpus_seed);
            s2.sel = sel;
            s2.n_sel = j->documents;
        }
        rc = one_pass(j, &fs, &s2, 1, err);
    }
    if (rc == 0 && c->n == 0) rc = ibc_fail(err, IBC_EINPUT, "%s: the corpus holds no document", c->source);
    free(sel);
    for (int i = 0; i < fs.n; i++) free(fs.data[i]);
    for (int i = 0; i < n_off; i++) free(fs.offs[i]);
    free(fs.data);
    free(fs.offs);
    if (rc) corpus_free(c);
    return rc;
}

void corpus_free(corpus *c) {
    for (int64_t i = 0; i < c->n; i++) { free(c->docs[i].text); free(c->docs[i].ids); }
    free(c->docs);
    free(c->files);
    free(c->index);
    memset(c, 0, sizeof *c);
}
