// `ibc train` (include/ibc/train.h): data, schedule, checkpoints and held-out scores.
#include <ctype.h>
#include <limits.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ibc/corpus.h"
#include "ibc/io.h"
#include "ibc/limits.h"
#include "ibc/model.h"
#include "ibc/rng.h"
#include "ibc/tokenizer.h"
#include "ibc/train.h"

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Every fortune of every *.u8 file in dir, in file-name order.
static int read_fortunes(const char *dir, corpus *all, ibc_err *err) {
    memset(all, 0, sizeof *all);
    DIR *d = opendir(dir);
    if (!d) return ibc_fail(err, IBC_EINPUT, "%s: cannot open the fortunes folder (make deps installs Debian's fortunes)", dir);
    char **names = NULL;
    int n = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 3 && !strcmp(e->d_name + l - 3, ".u8")) {
            names = realloc(names, sizeof(char *) * (size_t)(n + 1));
            names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(char *), by_name);
    int64_t cap = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        job j = {0};
        j.format = CORPUS_TEXT;
        strcpy(j.separator, "%");
        j.skip_bad = 1;
        snprintf(j.corpus, sizeof j.corpus, "%s/%s", dir, names[i]);
        corpus c;
        if (corpus_read(&j, &c, err) != 0) { rc = 0; continue; } // an empty file: nothing to add
        if (all->n + c.n > cap) {
            cap = (all->n + c.n) * 2;
            all->docs = realloc(all->docs, sizeof(corpus_doc) * (size_t)cap);
        }
        memcpy(all->docs + all->n, c.docs, sizeof(corpus_doc) * (size_t)c.n);
        all->n += c.n;
        free(c.docs);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    if (rc == 0 && all->n < 100) rc = ibc_fail(err, IBC_EINPUT, "%s: only %lld fortunes found", dir, (long long)all->n);
    return rc;
}

// The last word of a text (letters only, >= 3 of them) and where it starts (the space before).
static int final_word(const char *s, size_t *start, size_t *len) {
    size_t n = strlen(s), e = n;
    while (e > 0 && !isalpha((unsigned char)s[e - 1])) e--;
    size_t b = e;
    while (b > 0 && isalpha((unsigned char)s[b - 1])) b--;
    if (e - b < 3 || b == 0 || s[b - 1] != ' ') return 0;
    *start = b - 1;
    *len = e - b + 1;
    return 1;
}

typedef struct { int32_t *ids; int n; } seq;

// Mean next-token loss and top-1 accuracy of m over held-out sequences, and cloze accuracy.
static void score(const model *m, tokenizer *tok, const seq *held, int nh, char **texts, int max_len, uint64_t seed,
                  double *loss, double *top1, double *cloze) {
    int V = m->c.vocab;
    float *logits = malloc(sizeof(float) * (size_t)max_len * V);
    double L = 0;
    long cnt = 0, hit = 0;
    ibc_err e = {0};
    for (int i = 0; i < nh; i++) {
        int T = held[i].n < max_len ? held[i].n : max_len;
        if (T < 2 || model_forward(m, held[i].ids, T, NULL, NULL, logits, &e)) continue;
        for (int p = 0; p + 1 < T; p++) {
            const float *r = logits + (size_t)p * V;
            int best = 0;
            double mx = r[0], sum = 0;
            for (int v = 1; v < V; v++) if (r[v] > r[best]) best = v;
            mx = r[best];
            for (int v = 0; v < V; v++) sum += exp(r[v] - mx);
            L -= r[held[i].ids[p + 1]] - mx - log(sum);
            hit += best == held[i].ids[p + 1];
            cnt++;
        }
    }
    *loss = L / (double)cnt;
    *top1 = (double)hit / (double)cnt;
    // Cloze: the true final word against three other fortunes' final words (seeded), each
    // scored by the total log-probability of its tokens after the prefix.
    rng r;
    rng_seed(&r, seed);
    int tried = 0, right = 0;
    for (int i = 0; i < nh && tried < 400; i++) {
        size_t st, ln;
        if (!final_word(texts[i], &st, &ln)) continue;
        char cand[4][64];
        snprintf(cand[0], sizeof cand[0], "%.*s", (int)(ln < 63 ? ln : 63), texts[i] + st);
        int k = 1;
        for (int guard = 0; k < 4 && guard < 100; guard++) {
            int o = (int)rng_below(&r, (uint64_t)nh);
            size_t s2, l2;
            if (o == i || !final_word(texts[o], &s2, &l2) || l2 > 63) continue;
            snprintf(cand[k], sizeof cand[k], "%.*s", (int)l2, texts[o] + s2);
            if (strcmp(cand[k], cand[0])) k++;
        }
        if (k < 4) continue;
        double best = -INFINITY;
        int choice = -1;
        for (int c = 0; c < 4; c++) {
            char *full;
            if (asprintf(&full, "%.*s%s", (int)st, texts[i], cand[c]) < 0) continue;
            int32_t *pi, *fi;
            int np, nf;
            tok_encode(tok, texts[i], st, 1, &pi, &np, &e);
            tok_encode(tok, full, strlen(full), 1, &fi, &nf, &e);
            free(full);
            double lp = -INFINITY;
            int T = nf < max_len ? nf : max_len;
            if (np >= 1 && nf > np && nf <= max_len && !memcmp(pi, fi, sizeof(int32_t) * (size_t)np) &&
                !model_forward(m, fi, T, NULL, NULL, logits, &e)) {
                lp = 0;
                for (int p = np - 1; p + 1 < T; p++) {
                    const float *row = logits + (size_t)p * V;
                    double mx = row[0], sum = 0;
                    for (int v = 1; v < V; v++) mx = fmax(mx, row[v]);
                    for (int v = 0; v < V; v++) sum += exp(row[v] - mx);
                    lp += row[fi[p + 1]] - mx - log(sum);
                }
            }
            free(pi);
            free(fi);
            if (lp > best) { best = lp; choice = c; }
        }
        if (choice < 0) continue;
        tried++;
        right += choice == 0;
    }
    *cloze = tried ? (double)right / tried : NAN;
    free(logits);
}

// Checkpoint `step`: out/step-NNNNN as an HF folder with the tokenizer, read back through
// model.c and scored on the held-out fortunes (a row of scores.csv, a line of checkpoints.txt).
static int save_and_score(const trainer *t, const tr_opts *o, int step, tokenizer *tok, const seq *he, int nh,
                          char **held_t, FILE *list, FILE *scores, double run_loss, double t0, ibc_err *err) {
    char name[64], dir[IBC_PATH_MAX], src[IBC_PATH_MAX], dst[IBC_PATH_MAX];
    snprintf(name, sizeof name, "step-%05d", step);
    int rc = io_join(dir, sizeof dir, o->out, name, err);
    if (rc == 0) rc = io_join(src, sizeof src, o->out, "tokenizer.json", err);
    if (rc == 0) rc = io_join(dst, sizeof dst, dir, "tokenizer.json", err);
    if (rc == 0) rc = tr_save(t, dir, err);
    char *tj;
    size_t tjl;
    io_file tf;
    if (rc == 0 && (rc = io_read_all(src, &tj, &tjl, err)) == 0) {
        if ((rc = io_begin(&tf, dst, err)) == 0) { fwrite(tj, 1, tjl, tf.f); rc = io_commit(&tf, err); }
        free(tj);
    }
    model m;
    if (rc == 0 && (rc = model_load(dir, &m, err)) == 0) { // scored through the HF loader
        double l, a, cz;
        score(&m, tok, he, nh, held_t, o->seq, o->seed + 1, &l, &a, &cz);
        fprintf(scores, "%s,%.6f,%.6f,%.6f\n", name, l, a, cz);
        char abs[IBC_PATH_MAX];
        fprintf(list, "%s %s\n", name, realpath(dir, abs) ? abs : dir); // a job resolves relative paths from its own folder
        if (!o->quiet) fprintf(stderr, "ibc train: step %5d  train loss %.3f  held-out loss %.3f  top-1 %.3f  cloze %.3f  (%.0fs)\n",
                               step, run_loss, l, a, cz, wall() - t0);
        model_free(&m);
    }
    return rc;
}

int tr_run(const tr_opts *o, ibc_err *err) {
    corpus all;
    int rc = read_fortunes(o->corpus, &all, err);
    if (rc) return rc;
    if ((rc = io_mkdirs(o->out, err))) { corpus_free(&all); return rc; }
    // Held-out split by the seed: document i is held out when a draw falls under the share.
    rng r;
    rng_seed(&r, o->seed);
    char **train_t = malloc(sizeof(char *) * (size_t)all.n), **held_t = malloc(sizeof(char *) * (size_t)all.n);
    const char **tt = malloc(sizeof(char *) * (size_t)all.n);
    size_t *tl = malloc(sizeof(size_t) * (size_t)all.n);
    int ntr = 0, nh = 0;
    for (int64_t i = 0; i < all.n; i++) {
        if (rng_uniform(&r) < o->heldout) held_t[nh++] = all.docs[i].text;
        else train_t[ntr++] = all.docs[i].text;
    }
    for (int i = 0; i < ntr; i++) tt[i] = train_t[i], tl[i] = strlen(train_t[i]);
    char path[4200];
    double t0 = wall();
    snprintf(path, sizeof path, "%s/tokenizer.json", o->out);
    rc = tok_train_bpe(tt, tl, ntr, o->vocab, path, err);
    tokenizer *tok = NULL;
    if (rc == 0) rc = tok_load(path, &tok, err);
    if (rc == 0 && !o->quiet) fprintf(stderr, "ibc train: %d training and %d held-out fortunes; tokenizer of %d ids\n", ntr, nh, o->vocab);
    seq *tr = calloc((size_t)ntr, sizeof(seq)), *he = calloc((size_t)nh, sizeof(seq));
    for (int i = 0; rc == 0 && i < ntr; i++) rc = tok_encode(tok, train_t[i], tl[i], 1, &tr[i].ids, &tr[i].n, err);
    for (int i = 0; rc == 0 && i < nh; i++) rc = tok_encode(tok, held_t[i], strlen(held_t[i]), 1, &he[i].ids, &he[i].n, err);
    // Held-out fortunes, for the job that measures the checkpoints.
    io_file f;
    snprintf(path, sizeof path, "%s/heldout.txt", o->out);
    if (rc == 0 && (rc = io_begin(&f, path, err)) == 0) {
        for (int i = 0; i < nh; i++) fprintf(f.f, "%s\n%%\n", held_t[i]);
        rc = io_commit(&f, err);
    }
    model_config c = {.arch = ARCH_LLAMA, .d = o->d, .n_layers = o->layers, .n_heads = o->heads, .n_kv_heads = o->kv_heads,
                      .head_dim = o->d / o->heads, .d_ff = o->d_ff, .vocab = o->vocab, .norm_eps = 1e-5f,
                      .rope_theta = 10000, .rot_dim = o->d / o->heads, .tied = 1, .gated_mlp = 1, .norm = NORM_RMS,
                      .act = ACT_SILU, .max_pos = 2048};
    trainer t;
    if (rc == 0) rc = tr_init(&t, &c, o->seq, o->seed, err);
    FILE *list = NULL, *scores = NULL;
    io_file lf, sf;
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/checkpoints.txt", o->out);
        rc = io_begin(&lf, path, err);
        list = lf.f;
        snprintf(path, sizeof path, "%s/scores.csv", o->out);
        if (rc == 0) rc = io_begin(&sf, path, err);
        scores = sf.f;
        if (rc == 0) fputs("model,loss,top1,cloze\n", scores);
    }
    int next_save = 0; // log-spaced: 0, 16, 32, 64, ... and the last step
    double run_loss = NAN;
    for (int step = 0; rc == 0 && step <= o->steps; step++) {
        if (step == next_save || step == o->steps) {
            rc = save_and_score(&t, o, step, tok, he, nh, held_t, list, scores, run_loss, t0, err);
            next_save = next_save ? 2 * next_save : 16;
        }
        if (step == o->steps || rc) break;
        // One step: a batch of random windows of training documents.
        tr_zero_grad(&t);
        double bl = 0;
        for (int b = 0; b < o->batch; b++) {
            const seq *s;
            do s = &tr[rng_below(&r, (uint64_t)ntr)]; while (s->n < 4);
            int T = s->n < o->seq ? s->n : o->seq, off = s->n > T ? (int)rng_below(&r, (uint64_t)(s->n - T + 1)) : 0;
            bl += tr_step_seq(&t, s->ids + off, T, 1, 1.0f / (float)o->batch);
        }
        run_loss = isnan(run_loss) ? bl / o->batch : 0.9 * run_loss + 0.1 * bl / o->batch;
        // linear warm-up over 5% of the steps, then cosine to a tenth
        double w = o->steps / 20.0 + 1, lr = step < w ? o->lr * (step + 1) / w
                                                      : o->lr * (0.1 + 0.9 * 0.5 * (1 + cos(M_PI * (step - w) / (o->steps - w))));
        tr_adamw(&t, (float)lr, 0.9f, 0.95f, 1e-8f, 0.01f, step + 1);
    }
    if (rc == 0) rc = io_commit(&lf, err);
    else if (list) io_abort(&lf);
    if (rc == 0) rc = io_commit(&sf, err);
    else if (scores) io_abort(&sf);
    for (int i = 0; i < ntr; i++) free(tr[i].ids);
    for (int i = 0; i < nh; i++) free(he[i].ids);
    free(tr); free(he); free(train_t); free(held_t); free(tt); free(tl);
    if (t.p) tr_free(&t);
    tok_free(tok);
    corpus_free(&all);
    return rc;
}
