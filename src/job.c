#include "ibc/mem.h"
#include "ibc/job.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibc/io.h"

typedef struct {
    job *j;
    char dir[JOB_PATH]; // folder of the job file
    char msg[512];      // first error, without "FILE:LINE: "
    int failed;
    int seen_output;
    int seen_seed;      // [estimator] seed given
} parse_ctx;

static int bad(parse_ctx *c, const char *fmt, const char *a, const char *b) {
    if (!c->failed) snprintf(c->msg, sizeof c->msg, fmt, a, b);
    c->failed = 1;
    return 0; // inih: an error on this line
}

// A path relative to the job file's folder (absolute paths kept).
static int set_path(parse_ctx *c, char *dst, const char *v, const char *key) {
    int k = v[0] == '/' || !c->dir[0] ? snprintf(dst, JOB_PATH, "%s", v) : snprintf(dst, JOB_PATH, "%s/%s", c->dir, v);
    if (k < 0 || k >= JOB_PATH) return bad(c, "%s: path too long%s", key, "");
    return 1;
}

// A corpus file spec: a path or glob relative to the job file's folder, or @LIST (the list's path
// made relative the same way; its lines are taken relative to the list's own folder).
static int set_files(parse_ctx *c, char *dst, const char *v, const char *key) {
    char list[JOB_PATH];
    if (v[0] != '@') return set_path(c, dst, v, key);
    if (!set_path(c, list, v + 1, key)) return 0;
    if (strlen(list) + 1 >= JOB_PATH) return bad(c, "%s: path too long%s", key, "");
    dst[0] = '@';
    strcpy(dst + 1, list);
    return 1;
}

static int set_int(parse_ctx *c, const char *key, const char *v, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) {
        char range[96];
        snprintf(range, sizeof range, "an integer in [%lld, %lld]", lo, hi);
        return bad(c, "%s: expected %s", key, range);
    }
    *out = x;
    return 1;
}

static int set_bool(parse_ctx *c, const char *key, const char *v, int *out) {
    if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1")) *out = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0")) *out = 0;
    else return bad(c, "%s: expected true or false, got %s", key, v);
    return 1;
}

static int set_str(parse_ctx *c, char *dst, size_t cap, const char *key, const char *v) {
    if (strlen(v) >= cap) return bad(c, "%s: value too long%s", key, "");
    strcpy(dst, v);
    return 1;
}

// "1,2,3,4" -> bitmask of orders 1..4.
static int set_orders(parse_ctx *c, const char *v) {
    unsigned m = 0;
    for (const char *p = v; *p;) {
        if (*p < '1' || *p > '4' || (p[1] && p[1] != ',')) return bad(c, "orders: expected a list of 1..4 like 1,2,3,4, got %s%s", v, "");
        m |= 1u << (*p - '1');
        p += p[1] ? 2 : 1;
    }
    if (!m) return bad(c, "orders: expected a list of 1..4 like 1,2,3,4%s%s", "", "");
    c->j->orders = m;
    return 1;
}

// "all" or "0,4,8-12" (hidden-state indices, checked against each model later).
static int set_layers(parse_ctx *c, const char *v) {
    job *j = c->j;
    if (!strcmp(v, "all")) { j->all_layers = 1; return 1; }
    j->all_layers = 0;
    j->n_layers_sel = 0;
    for (const char *p = v; *p;) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p || a < 0 || a > 4096) return bad(c, "layers: expected all, or indices like 0,4,8-12, got %s%s", v, "");
        if (*end == '-') {
            p = end + 1;
            b = strtol(p, &end, 10);
            if (end == p || b < a || b > 4096) return bad(c, "layers: bad range in %s%s", v, "");
        }
        for (long l = a; l <= b; l++) {
            if (j->n_layers_sel == 256) return bad(c, "layers: more than 256 indices%s%s", "", "");
            j->layers[j->n_layers_sel++] = (int)l;
        }
        if (*end && *end != ',') return bad(c, "layers: expected all, or indices like 0,4,8-12, got %s%s", v, "");
        p = *end ? end + 1 : end;
    }
    return 1;
}

// "0,1,2,3,4": distinct non-negative integers, the anchor sets of the ensemble, in order.
static int set_seeds(parse_ctx *c, const char *v) {
    job *j = c->j;
    j->n_seeds = 0;
    for (const char *p = v;;) {
        char num[32];
        size_t len = strcspn(p, ",");
        long long x;
        if (len >= sizeof num) return bad(c, "seeds: expected distinct integers >= 0 like 0,1,2,3,4, got %s%s", v, "");
        memcpy(num, p, len);
        num[len] = 0;
        if (!set_int(c, "seeds", num, 0, INT64_MAX, &x)) {
            c->failed = 0; // replace set_int's message with one naming the whole list
            return bad(c, "seeds: expected distinct integers >= 0 like 0,1,2,3,4, got %s%s", v, "");
        }
        for (int i = 0; i < j->n_seeds; i++)
            if (j->seeds[i] == (uint64_t)x) return bad(c, "seeds: %s is listed twice%s", num, "");
        if (j->n_seeds == IBC_MAX_SEEDS) {
            snprintf(num, sizeof num, "%d", IBC_MAX_SEEDS);
            return bad(c, "seeds: more than %s anchor sets%s", num, "");
        }
        j->seeds[j->n_seeds++] = (uint64_t)x;
        if (!p[len]) break;
        p += len + 1;
    }
    j->seed = j->seeds[0];
    return 1;
}

static int add_ckpt(parse_ctx *c, const char *name, const char *path) {
    job *j = c->j;
    if (strlen(name) >= sizeof j->ckpts[0].name || !name[0] || strpbrk(name, "/,\"\n"))
        return bad(c, "checkpoint name %s: expected a name without '/', ',' or quotes%s", name, "");
    for (int i = 0; i < j->n_ckpts; i++)
        if (!strcmp(j->ckpts[i].name, name)) return bad(c, "checkpoint %s is listed twice%s", name, "");
    j->ckpts = xrealloc(j->ckpts, sizeof(job_ckpt) * (size_t)(j->n_ckpts + 1));
    job_ckpt *k = &j->ckpts[j->n_ckpts];
    strcpy(k->name, name);
    if (!set_path(c, k->path, path, name)) return 0;
    j->n_ckpts++;
    return 1;
}

// [checkpoints] list = FILE: lines "NAME PATH" (or a bare PATH, named by its last component).
static int add_ckpt_list(parse_ctx *c, const char *v) {
    char path[JOB_PATH];
    if (!set_path(c, path, v, "list")) return 0;
    FILE *f = fopen(path, "r");
    if (!f) return bad(c, "list: cannot open %.300s%s", path, "");
    char line[2 * JOB_PATH];
    int ok = 1;
    while (ok && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *p = line + strspn(line, " \t");
        if (!*p || *p == '#') continue;
        char *sp = strpbrk(p, " \t");
        if (sp) {
            *sp = 0;
            ok = add_ckpt(c, p, sp + 1 + strspn(sp + 1, " \t"));
        } else {
            const char *base = strrchr(p, '/');
            char name[128];
            snprintf(name, sizeof name, "%s", base && base[1] ? base + 1 : p);
            ok = add_ckpt(c, name, p);
        }
    }
    fclose(f);
    return ok;
}

static int handler(void *user, const char *sec, const char *key, const char *v) {
    parse_ctx *c = user;
    job *j = c->j;
    long long x;
    if (c->failed) return 1; // report only the first error
    if (!strcmp(sec, "job")) {
        if (!strcmp(key, "name")) {
            if (!v[0] || strpbrk(v, "/ \t")) return bad(c, "name: expected a name without '/' or spaces%s%s", "", "");
            return set_str(c, j->name, sizeof j->name, key, v);
        }
        if (!strcmp(key, "output")) return set_path(c, j->output, v, key);
        if (!strcmp(key, "on_error")) {
            if (strcmp(v, "stop") && strcmp(v, "skip")) return bad(c, "on_error: expected stop or skip, got %s%s", v, "");
            j->on_error_stop = !strcmp(v, "stop");
            return 1;
        }
    } else if (!strcmp(sec, "output")) {
        if (!strcmp(key, "folder")) return set_path(c, j->output, v, key);
    } else if (!strcmp(sec, "checkpoints")) {
        if (!strcmp(key, "list")) return add_ckpt_list(c, v);
        return add_ckpt(c, key, v);
    } else if (!strcmp(sec, "corpus")) {
        if (!strcmp(key, "format")) {
            static const char *F[] = {"text", "jsonl", "jsonl-ids", "tokens-u16", "tokens-u32"};
            for (int i = 0; i < 5; i++)
                if (!strcmp(v, F[i])) { j->format = (corpus_format)i; return 1; }
            return bad(c, "format: expected text, jsonl, jsonl-ids, tokens-u16 or tokens-u32, got %s%s", v, "");
        }
        if (!strcmp(key, "path")) return set_files(c, j->corpus, v, key);
        if (!strcmp(key, "field")) return set_str(c, j->field, sizeof j->field, key, v);
        if (!strcmp(key, "separator")) return set_str(c, j->separator, sizeof j->separator, key, v);
        if (!strcmp(key, "offsets")) return set_files(c, j->offsets, v, key);
        if (!strcmp(key, "tokenizer")) return set_path(c, j->tokenizer, v, key);
        if (!strcmp(key, "add_special_tokens")) return set_bool(c, key, v, &j->add_special);
        if (!strcmp(key, "documents")) return set_int(c, key, v, 0, INT32_MAX, &x) && (j->documents = x, 1);
        if (!strcmp(key, "seed")) return set_int(c, key, v, 0, INT64_MAX, &x) && (j->corpus_seed = (uint64_t)x, 1);
        if (!strcmp(key, "max_length")) return set_int(c, key, v, 2, 1 << 20, &x) && (j->max_length = (int)x, 1);
        if (!strcmp(key, "on_bad_document")) {
            if (strcmp(v, "stop") && strcmp(v, "skip")) return bad(c, "on_bad_document: expected stop or skip, got %s%s", v, "");
            j->skip_bad = !strcmp(v, "skip");
            return 1;
        }
    } else if (!strcmp(sec, "estimator")) {
        if (!strcmp(key, "bins")) return set_int(c, key, v, 2, 100000, &x) && (j->bins = (int)x, 1);
        if (!strcmp(key, "seed")) return set_int(c, key, v, 0, INT64_MAX, &x) && (j->seed = (uint64_t)x, c->seen_seed = 1);
        if (!strcmp(key, "seeds")) return set_seeds(c, v);
        if (!strcmp(key, "folds")) return set_int(c, key, v, 2, IBC_MAX_FOLDS, &x) && (j->folds = (int)x, 1);
        if (!strcmp(key, "temperature")) {
            if (!strcmp(v, "bound")) { j->temp = TEMP_BOUND; return 1; }
            if (!strcmp(v, "leading")) { j->temp = TEMP_LEADING; return 1; }
            char *end;
            double t = strtod(v, &end);
            if (!*v || *end || !(t > 0 && t < 1e6))
                return bad(c, "temperature: expected bound, leading or a positive number, got %s%s", v, "");
            j->temp = TEMP_FIXED;
            j->temperature = t;
            return 1;
        }
        if (!strcmp(key, "anchors")) return set_path(c, j->anchors, v, key);
        if (!strcmp(key, "orders")) return set_orders(c, v);
        if (!strcmp(key, "layers")) return set_layers(c, v);
        if (!strcmp(key, "min_count")) return set_int(c, key, v, 0, INT32_MAX, &x) && (j->min_count = x, 1);
    } else if (!strcmp(sec, "preference")) {
        if (!strcmp(key, "path")) return set_files(c, j->preference, v, key);
    } else if (!strcmp(sec, "parallel")) {
        if (!strcmp(key, "exchange_mb")) return set_int(c, key, v, 1, 1 << 20, &x) && (j->exchange_mb = x, 1);
        if (!strcmp(key, "unit_rows")) return set_int(c, key, v, 1, 1 << 24, &x) && (j->unit_rows = (int)x, 1);
        if (!strcmp(key, "round_units")) return set_int(c, key, v, 1, 64, &x) && (j->round_units = (int)x, 1);
    } else {
        return bad(c, "unknown section [%s]; expected job, checkpoints, corpus, estimator, preference, parallel or output%s", sec, "");
    }
    return bad(c, "unknown key %s in [%s]", key, sec);
}

int job_load(const char *path, job *j, ibc_err *err) {
    char *text;
    size_t len;
    int rc = io_read_all(path, &text, &len, err);
    if (rc) return rc;
    rc = job_parse(text, path, j, err);
    free(text);
    return rc;
}

int job_parse(const char *text, const char *path, job *j, ibc_err *err) {
    memset(j, 0, sizeof *j);
    if (strlen(path) >= JOB_PATH) return ibc_fail(err, IBC_EINPUT, "%s: path too long", path);
    strcpy(j->file, path);
    int rc = 0;
    j->text = xstrdup(text);
    // defaults (issue 5 and method.md)
    strcpy(j->field, "text");
    strcpy(j->output, "results"); // relative to the working directory
    j->max_length = 512;
    j->bins = 100;
    j->orders = 0xf;
    j->all_layers = 1;
    j->add_special = 1;
    j->exchange_mb = 256;
    j->unit_rows = 1024; // plan_units (plan.h): OpenBLAS packs each weight once per unit
    j->round_units = 4;  // a round's units per thread (job.h)
    parse_ctx c = {.j = j};
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(c.dir, sizeof c.dir, "%.*s", (int)(slash - path), path);
    int line = ini_parse_string(j->text, handler, &c);
    if (line < 0) rc = ibc_fail(err, IBC_EINPUT, "%s: cannot read", path);
    else if (line > 0)
        rc = ibc_fail(err, IBC_EINPUT, "%s:%d: %s", path, line, c.failed ? c.msg : "expected key = value or [section]");
    else if (!j->name[0]) rc = ibc_fail(err, IBC_EINPUT, "%s: [job] name is missing", path);
    else if (!j->n_ckpts) rc = ibc_fail(err, IBC_EINPUT, "%s: [checkpoints] lists no checkpoint", path);
    else if (!j->corpus[0] && !j->preference[0]) rc = ibc_fail(err, IBC_EINPUT, "%s: [corpus] path (or [preference] path) is missing", path);
    else if ((j->format == CORPUS_TOKENS_U16 || j->format == CORPUS_TOKENS_U32) && !j->offsets[0])
        rc = ibc_fail(err, IBC_EINPUT, "%s: [corpus] offsets is required for tokens-u16/u32", path);
    else if (j->n_seeds && c.seen_seed)
        rc = ibc_fail(err, IBC_EINPUT, "%s: [estimator] seed and seeds: give one (seeds = S lists one anchor set)", path);
    else if (j->n_seeds > 1 && j->anchors[0])
        rc = ibc_fail(err, IBC_EINPUT, "%s: [estimator] seeds lists %d anchor sets but anchors names one file", path, j->n_seeds);
    if (rc == 0 && !j->n_seeds) j->seeds[j->n_seeds++] = j->seed; // one anchor set: today's
    if (rc == 0 && j->format == CORPUS_JSONL_IDS && !strcmp(j->field, "text")) strcpy(j->field, "ids");
    if (rc) job_free(j);
    return rc;
}

void job_free(job *j) {
    free(j->text);
    free(j->ckpts);
    memset(j, 0, sizeof *j);
}

void job_results_dir(const job *j, char *out, size_t cap) { snprintf(out, cap, "%s/%s", j->output, j->name); }
