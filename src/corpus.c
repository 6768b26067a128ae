#include "ibc/corpus.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "ibc/io.h"
#include "ibc/rng.h"

static int valid_utf8(const char *s, size_t n) {
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    utf8proc_int32_t cp;
    for (size_t i = 0; i < n;) {
        utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

static int push(corpus *c, int64_t *cap, corpus_doc d) {
    if (c->n == *cap) {
        int64_t nc = *cap ? 2 * *cap : 1024;
        corpus_doc *nd = realloc(c->docs, sizeof(corpus_doc) * (size_t)nc);
        if (!nd) return -1;
        c->docs = nd;
        *cap = nc;
    }
    c->docs[c->n++] = d;
    return 0;
}

// A bad document: an error, or counted and skipped.
static int bad_doc(const job *j, corpus *c, ibc_err *err, const char *path, int64_t line, const char *what) {
    if (j->skip_bad) { c->n_bad++; return 0; }
    return ibc_fail(err, IBC_EINPUT, "%s:%lld: %s", path, (long long)line, what);
}

static int read_text(const job *j, corpus *c, ibc_err *err) {
    FILE *f = fopen(j->corpus, "r");
    if (!f) return ibc_fail(err, IBC_EINPUT, "%s: cannot open", j->corpus);
    char *line = NULL, *doc = NULL;
    size_t lcap = 0, dlen = 0, dcap = 0;
    int64_t cap = 0, lineno = 0, start = 1;
    ssize_t k;
    int rc = 0;
    for (;;) {
        k = getline(&line, &lcap, f);
        if (k >= 0) lineno++;
        char *body = k >= 0 ? line : NULL;
        if (body) {
            size_t bl = (size_t)k;
            while (bl && (body[bl - 1] == '\n' || body[bl - 1] == '\r')) bl--;
            int ends = j->separator[0] ? (bl == strlen(j->separator) && !memcmp(body, j->separator, bl)) : bl == 0;
            if (!ends) {
                if (dlen + (size_t)k + 1 > dcap) {
                    dcap = (dlen + (size_t)k + 1) * 2;
                    char *nd = realloc(doc, dcap);
                    if (!nd) { rc = ibc_fail(err, IBC_ESYS, "out of memory"); break; }
                    doc = nd;
                }
                if (!dlen) start = lineno;
                memcpy(doc + dlen, body, (size_t)k);
                dlen += (size_t)k;
                continue;
            }
        }
        // end of a document (separator line or end of file)
        while (dlen && (doc[dlen - 1] == '\n' || doc[dlen - 1] == '\r')) dlen--; // the separator's newline
        if (dlen) {
            if (!valid_utf8(doc, dlen)) {
                if ((rc = bad_doc(j, c, err, j->corpus, start, "invalid UTF-8"))) break;
            } else {
                char *t = strndup(doc, dlen);
                if (!t || push(c, &cap, (corpus_doc){t, NULL, 0, -1, start})) { free(t); rc = ibc_fail(err, IBC_ESYS, "out of memory"); break; }
            }
        }
        dlen = 0;
        if (!body) break;
    }
    free(line);
    free(doc);
    fclose(f);
    return rc;
}

static int read_ids_array(json_t *a, int32_t **ids, int *n) {
    *n = (int)json_array_size(a);
    *ids = malloc(sizeof(int32_t) * (size_t)(*n ? *n : 1));
    if (!*ids) return -1;
    for (int i = 0; i < *n; i++) {
        json_t *v = json_array_get(a, (size_t)i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) return -2;
        (*ids)[i] = (int32_t)json_integer_value(v);
    }
    return 0;
}

// jsonl, jsonl-ids and preference JSONL, one object per line.
static int read_jsonl(const job *j, const char *path, int pref, corpus *c, ibc_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return ibc_fail(err, IBC_EINPUT, "%s: cannot open", path);
    char *line = NULL;
    size_t lcap = 0;
    int64_t cap = 0, lineno = 0;
    int rc = 0;
    ssize_t k;
    while (rc == 0 && (k = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        if (k == 0 || strspn(line, " \t\r\n") == (size_t)k) continue;
        if (!valid_utf8(line, (size_t)k)) { rc = bad_doc(j, c, err, path, lineno, "invalid UTF-8"); continue; }
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)k, JSON_ALLOW_NUL, &je);
        if (!json_is_object(o)) {
            json_decref(o);
            rc = bad_doc(j, c, err, path, lineno, "not a JSON object");
            continue;
        }
        if (pref) {
            const char *p = json_string_value(json_object_get(o, "prompt"));
            const char *ch = json_string_value(json_object_get(o, "chosen"));
            const char *rj = json_string_value(json_object_get(o, "rejected"));
            if (!p || !ch || !rj) {
                rc = bad_doc(j, c, err, path, lineno, "expected string fields prompt, chosen and rejected");
            } else {
                char *a = NULL, *b = NULL;
                if (asprintf(&a, "%s%s", p, ch) < 0 || asprintf(&b, "%s%s", p, rj) < 0 ||
                    push(c, &cap, (corpus_doc){a, NULL, 0, 1, lineno}) || push(c, &cap, (corpus_doc){b, NULL, 0, 0, lineno}))
                    rc = ibc_fail(err, IBC_ESYS, "out of memory");
            }
        } else if (j->format == CORPUS_JSONL_IDS) {
            json_t *a = json_object_get(o, j->field);
            int32_t *ids = NULL;
            int n = 0, r = json_is_array(a) ? read_ids_array(a, &ids, &n) : -2;
            if (r == -1) rc = ibc_fail(err, IBC_ESYS, "out of memory");
            else if (r) {
                char what[128];
                snprintf(what, sizeof what, "field %s is not an array of non-negative integers", j->field);
                rc = bad_doc(j, c, err, path, lineno, what);
            } else if (push(c, &cap, (corpus_doc){NULL, ids, n, -1, lineno})) rc = ibc_fail(err, IBC_ESYS, "out of memory");
            if (r || rc) free(ids);
        } else {
            const char *t = json_string_value(json_object_get(o, j->field));
            if (!t) {
                char what[128];
                snprintf(what, sizeof what, "no string field %s", j->field);
                rc = bad_doc(j, c, err, path, lineno, what);
            } else {
                char *d = strdup(t);
                if (!d || push(c, &cap, (corpus_doc){d, NULL, 0, -1, lineno})) { free(d); rc = ibc_fail(err, IBC_ESYS, "out of memory"); }
            }
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    return rc;
}

static int read_tokens(const job *j, corpus *c, ibc_err *err) {
    size_t es = j->format == CORPUS_TOKENS_U16 ? 2 : 4, tlen, olen;
    char *tok, *off;
    int rc = io_read_all(j->corpus, &tok, &tlen, err);
    if (rc) return rc;
    if ((rc = io_read_all(j->offsets, &off, &olen, err))) { free(tok); return rc; }
    int64_t ntok = (int64_t)(tlen / es), nd = (int64_t)(olen / 8) - 1, cap = 0;
    if (tlen % es) rc = ibc_fail(err, IBC_EINPUT, "%s: size %zu is not a multiple of %zu", j->corpus, tlen, es);
    else if (olen % 8 || nd < 0) rc = ibc_fail(err, IBC_EINPUT, "%s: expected N + 1 u64 offsets", j->offsets);
    for (int64_t i = 0; rc == 0 && i < nd; i++) {
        uint64_t a, b;
        memcpy(&a, off + 8 * i, 8);
        memcpy(&b, off + 8 * (i + 1), 8);
        if ((i == 0 && a != 0) || b < a || b > (uint64_t)ntok || (i + 1 == nd && b != (uint64_t)ntok)) {
            rc = ibc_fail(err, IBC_EINPUT, "%s: offset %lld (%llu..%llu) is not increasing within the %lld tokens of %s",
                          j->offsets, (long long)i, (unsigned long long)a, (unsigned long long)b, (long long)ntok, j->corpus);
            break;
        }
        int n = (int)(b - a);
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
        if (!ids) { rc = ibc_fail(err, IBC_ESYS, "out of memory"); break; }
        for (int t = 0; t < n; t++) {
            if (es == 2) { uint16_t v; memcpy(&v, tok + 2 * (a + (uint64_t)t), 2); ids[t] = v; }
            else {
                uint32_t v;
                memcpy(&v, tok + 4 * (a + (uint64_t)t), 4);
                if (v > INT32_MAX) { rc = ibc_fail(err, IBC_EINPUT, "%s: token %llu is %u, too large", j->corpus, (unsigned long long)(a + (uint64_t)t), v); break; }
                ids[t] = (int32_t)v;
            }
        }
        if (rc || push(c, &cap, (corpus_doc){NULL, ids, n, -1, i + 1})) {
            free(ids);
            if (!rc) rc = ibc_fail(err, IBC_ESYS, "out of memory");
        }
    }
    free(tok);
    free(off);
    return rc;
}

int corpus_read(const job *j, corpus *c, ibc_err *err) {
    memset(c, 0, sizeof *c);
    int rc;
    if (j->preference[0]) {
        snprintf(c->source, sizeof c->source, "%s", j->preference);
        rc = read_jsonl(j, j->preference, 1, c, err);
    } else {
        snprintf(c->source, sizeof c->source, "%s", j->corpus);
        switch (j->format) {
        case CORPUS_TEXT: rc = read_text(j, c, err); break;
        case CORPUS_JSONL:
        case CORPUS_JSONL_IDS: rc = read_jsonl(j, j->corpus, 0, c, err); break;
        default: rc = read_tokens(j, c, err); break;
        }
    }
    if (rc == 0 && c->n == 0)
        rc = ibc_fail(err, IBC_EINPUT, "%s: the corpus holds no document", c->source);
    if (rc) corpus_free(c);
    return rc;
}

void corpus_sample(corpus *c, int64_t documents, uint64_t seed) {
    if (documents <= 0 || documents >= c->n) return;
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)c->n);
    char *keep = calloc((size_t)c->n, 1);
    if (!idx || !keep) { free(idx); free(keep); return; }
    for (int64_t i = 0; i < c->n; i++) idx[i] = i;
    rng r;
    rng_seed(&r, seed);
    for (int64_t i = 0; i < documents; i++) { // the first `documents` of a Fisher-Yates shuffle
        int64_t k = i + (int64_t)rng_below(&r, (uint64_t)(c->n - i));
        int64_t t = idx[i];
        idx[i] = idx[k];
        idx[k] = t;
        keep[idx[i]] = 1;
    }
    int64_t m = 0;
    for (int64_t i = 0; i < c->n; i++) {
        if (keep[i]) c->docs[m++] = c->docs[i];
        else { free(c->docs[i].text); free(c->docs[i].ids); }
    }
    c->n = m;
    free(idx);
    free(keep);
}

void corpus_free(corpus *c) {
    for (int64_t i = 0; i < c->n; i++) { free(c->docs[i].text); free(c->docs[i].ids); }
    free(c->docs);
    memset(c, 0, sizeof *c);
}
