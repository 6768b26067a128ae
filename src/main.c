// ibc: the command-line program. Each subcommand parses its arguments, calls the library, and
// turns an error into one line on stderr and exit status 2 (bad input) or 1 (system failure).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>
#include <omp.h>
#include <cblas.h>

#include "ibc/ckpt.h"
#include "ibc/correlate.h"
#include "ibc/err.h"
#include "ibc/io.h"
#include "ibc/job.h"
#include "ibc/model.h"
#include "ibc/mem.h"
#include "ibc/npy.h"
#include "ibc/report.h"
#include "ibc/run.h"
#include "ibc/tokenizer.h"
#include "ibc/train.h"
#include <jansson.h>
#include <utf8proc.h>

static const char USAGE[] =
    "usage: ibc COMMAND [ARGS]\n"
    "  run JOB.ini [--quiet] [--only K] [--results DIR]\n"
    "                                            the job: estimates for every checkpoint (mpirun -np N for N ranks);\n"
    "                                            --only K runs checkpoint K (0-based) alone, into DIR\n"
    "  tokenize --tokenizer FILE [--no-special] [--jsonl IN]\n"
    "                                            token ids of UTF-8 text on stdin (one line), or of each\n"
    "                                            JSONL record's text field (one JSON array per line)\n"
    "  random-checkpoint DIR [--arch llama|gpt_neox] [--d N] [--layers N] [--heads N] [--kv-heads N]\n"
    "                    [--ff N] [--vocab N] [--seed S]\n"
    "                                            a random-weight Hugging Face folder (tests, benchmarks)\n"
    "  correlate RESULTS_DIR_OR_H5... --benchmarks FILE.csv [--name-column C[,C2]] [--aliases FILE]\n"
    "            [--covariates log_params] [--duplicates first|mean|error] [--exclude COLS] [--out DIR]\n"
    "            [--per-layer] [--no-plots] [--resamples N] [--seed S] [--dump-resamples]\n"
    "                                            metrics against benchmark scores: CSV, Markdown, plots\n"
    "  report RESULTS... [--benchmarks FILE.csv ...] [--aliases FILE] [--name-column C] [--out FILE.html]\n"
    "                                            one self-contained HTML page: job, tables, plots, intervals\n"
    "  train [--out DIR] [--corpus DIR] [--steps N] [--seed S] [--quiet]\n"
    "                                            the embedded default: tokenizer, model and scores on Debian's fortunes\n"
    "  merge JOB.ini DIR...                      merges results folders of one job (Slurm array tasks)\n"
    "  checkpoints JOB.ini [--results-dir]       prints the job's checkpoint count (or results folder)\n"
    "  inspect DIR                               architecture, sizes and dtype of a checkpoint\n"
    "  hidden DIR --ids 1,2,3 --out FILE.npy [--logits FILE.npy]\n"
    "                                            hidden states [L+1, T, d] of one sequence\n";

static int fail(const ibc_err *e) {
    fprintf(stderr, "ibc: %s\n", e->msg);
    return ibc_exit_status(e->code);
}

static int usage_error(const char *msg) {
    fprintf(stderr, "ibc: %s\n%s", msg, USAGE);
    return 2;
}

static int cmd_inspect(int argc, char **argv) {
    if (argc != 1) return usage_error("inspect takes one checkpoint folder");
    ibc_err e = {0};
    model m;
    if (model_load(argv[0], &m, &e)) return fail(&e);
    const model_config *c = &m.c;
    printf("checkpoint   %s\n", argv[0]);
    printf("architecture %s\n", config_arch_name(c->arch));
    printf("parameters   %lld\n", (long long)m.n_params);
    printf("d            %d\n", c->d);
    printf("layers       %d\n", c->n_layers);
    printf("heads        %d\n", c->n_heads);
    printf("kv_heads     %d\n", c->n_kv_heads);
    printf("head_dim     %d\n", c->head_dim);
    printf("d_ff         %d\n", c->d_ff);
    printf("vocab        %d\n", c->vocab);
    printf("tied         %s\n", c->tied ? "yes" : "no");
    printf("dtype        %s\n", m.file_dtype);
    printf("bytes        %lld\n", (long long)m.file_bytes);
    model_free(&m);
    return 0;
}

// Parses "1,2,3" into a malloc'd array.
static int parse_ids(const char *s, int32_t **ids, int *n) {
    int cap = 16;
    *n = 0;
    *ids = malloc(sizeof(int32_t) * (size_t)cap);
    while (*ids && *s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) return -1;
        if (*n == cap) {
            int32_t *p = realloc(*ids, sizeof(int32_t) * (size_t)(cap *= 2));
            if (!p) return -1;
            *ids = p;
        }
        (*ids)[(*n)++] = (int32_t)v;
        s = *end ? end + 1 : end;
    }
    return *ids && *n > 0 ? 0 : -1;
}

static int write_layer(void *ctx, int l, const float *h, int T, int d) {
    (void)l;
    return fwrite(h, sizeof(float), (size_t)T * d, ((io_file *)ctx)->f) == (size_t)T * d ? 0 : IBC_ESYS;
}

static int cmd_hidden(int argc, char **argv) {
    const char *dir = NULL, *ids_s = NULL, *out = NULL, *lout = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--ids") && i + 1 < argc) ids_s = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--logits") && i + 1 < argc) lout = argv[++i];
        else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else return usage_error("hidden: unexpected argument");
    }
    if (!dir || !ids_s || !out) return usage_error("hidden needs DIR, --ids and --out");
    int32_t *ids = NULL;
    int T;
    if (parse_ids(ids_s, &ids, &T)) {
        free(ids);
        return usage_error("--ids: expected comma-separated non-negative integers");
    }
    ibc_err e = {0};
    model m;
    if (model_load(dir, &m, &e)) { free(ids); return fail(&e); }
    float *logits = lout ? malloc(sizeof(float) * (size_t)T * m.c.vocab) : NULL;
    io_file w;
    int rc = io_begin(&w, out, &e);
    if (rc == 0) {
        int64_t shape[3] = {m.c.n_layers + 1, T, m.c.d};
        npy_write_header(w.f, 3, shape);
        rc = model_forward(&m, ids, T, write_layer, &w, logits, &e);
        if (rc == IBC_ESYS && !e.code) ibc_fail(&e, rc, "%s: write failed", out);
        if (rc == 0) rc = io_commit(&w, &e);
        else io_abort(&w);
    }
    if (rc == 0 && lout) {
        int64_t shape[2] = {T, m.c.vocab};
        rc = npy_write(lout, 2, shape, logits, &e);
    }
    free(logits);
    free(ids);
    model_free(&m);
    return rc ? fail(&e) : 0;
}

// `ibc run`: every rank runs the job; rank 0 reports. Exit status is the same on all ranks.
static int cmd_run(int argc, char **argv) {
    run_opts o = {.progress_s = 5, .only = -1};
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--quiet")) o.quiet = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            char *end;
            o.only = (int)strtol(argv[++i], &end, 10);
            if (*end || o.only < 0) return usage_error("--only: expected a checkpoint index (0-based)");
        } else if (!strcmp(argv[i], "--results") && i + 1 < argc) o.results = argv[++i];
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else return usage_error("run: unexpected argument");
    }
    if (!path) return usage_error("run needs a job file");
    MPI_Init(NULL, NULL);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (!getenv("OMP_NUM_THREADS")) { // ranks on one node share its cores instead of each taking all
        MPI_Comm node;
        int local;
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
        MPI_Comm_size(node, &local);
        MPI_Comm_free(&node);
        int threads = omp_get_num_procs() / local;
        omp_set_num_threads(threads > 1 ? threads : 1);
        openblas_set_num_threads(threads > 1 ? threads : 1);
    }
    ibc_err e = {0};
    job j;
    int rc = job_load(path, &j, &e);
    if (rc == 0) {
        rc = run_job(&j, &o, &e);
        job_free(&j);
    }
    if (rc && rank == 0) fprintf(stderr, "ibc: %s\n", e.msg);
    MPI_Finalize();
    return rc ? ibc_exit_status(rc) : 0;
}

static int print_ids(FILE *f, const int32_t *ids, int n, int json) {
    fputs(json ? "[" : "", f);
    for (int i = 0; i < n; i++) fprintf(f, i ? (json ? ", %d" : " %d") : "%d", ids[i]);
    fputs(json ? "]\n" : "\n", f);
    return ferror(f) ? -1 : 0;
}

static int valid_utf8(const char *s, size_t n) {
    utf8proc_int32_t cp;
    for (size_t i = 0; i < n;) {
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

static int cmd_tokenize(int argc, char **argv) {
    const char *tpath = NULL, *jsonl = NULL;
    int special = 1;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tpath = argv[++i];
        else if (!strcmp(argv[i], "--jsonl") && i + 1 < argc) jsonl = argv[++i];
        else if (!strcmp(argv[i], "--no-special")) special = 0;
        else return usage_error("tokenize: unexpected argument");
    }
    if (!tpath) return usage_error("tokenize needs --tokenizer FILE");
    ibc_err e = {0};
    tokenizer *t;
    if (tok_load(tpath, &t, &e)) return fail(&e);
    int rc = 0;
    int32_t *ids;
    int n;
    if (!jsonl) {
        char *text;
        size_t len;
        rc = io_read_all("/dev/stdin", &text, &len, &e);
        if (rc == 0 && !valid_utf8(text, len)) rc = ibc_fail(&e, IBC_EINPUT, "stdin: invalid UTF-8");
        if (rc == 0 && (rc = tok_encode(t, text, len, special, &ids, &n, &e)) == 0) {
            print_ids(stdout, ids, n, 0);
            free(ids);
        }
        if (rc == 0) free(text);
    } else {
        FILE *f = fopen(jsonl, "r");
        if (!f) rc = ibc_fail(&e, IBC_EINPUT, "%s: cannot open", jsonl);
        char *line = NULL;
        size_t cap = 0;
        ssize_t k;
        for (long ln = 1; rc == 0 && (k = getline(&line, &cap, f)) >= 0; ln++) {
            json_error_t je;
            json_t *o = valid_utf8(line, (size_t)k) ? json_loadb(line, (size_t)k, JSON_ALLOW_NUL, &je) : NULL;
            json_t *tx = json_object_get(o, "text");
            if (!json_is_string(tx)) rc = ibc_fail(&e, IBC_EINPUT, "%s:%ld: expected a JSON object with a string field text", jsonl, ln);
            else if ((rc = tok_encode(t, json_string_value(tx), json_string_length(tx), special, &ids, &n, &e)) == 0) {
                print_ids(stdout, ids, n, 1);
                free(ids);
            }
            json_decref(o);
        }
        free(line);
        if (f) fclose(f);
    }
    tok_free(t);
    return rc ? fail(&e) : 0;
}

static int cmd_random_checkpoint(int argc, char **argv) {
    model_config c = {.arch = ARCH_LLAMA, .d = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .d_ff = 128,
                      .vocab = 512, .norm_eps = 1e-5f, .rope_theta = 10000, .tied = 1, .gated_mlp = 1, .max_pos = 2048};
    const char *dir = NULL;
    long long seed = 1;
    for (int i = 0; i < argc; i++) {
        int *iv = NULL;
        if (!strcmp(argv[i], "--d")) iv = &c.d;
        else if (!strcmp(argv[i], "--layers")) iv = &c.n_layers;
        else if (!strcmp(argv[i], "--heads")) iv = &c.n_heads;
        else if (!strcmp(argv[i], "--kv-heads")) iv = &c.n_kv_heads;
        else if (!strcmp(argv[i], "--ff")) iv = &c.d_ff;
        else if (!strcmp(argv[i], "--vocab")) iv = &c.vocab;
        if ((iv || !strcmp(argv[i], "--seed") || !strcmp(argv[i], "--arch")) && i + 1 >= argc) return usage_error("random-checkpoint: a flag needs a value");
        if (iv) {
            *iv = atoi(argv[++i]);
            if (*iv < 1 || *iv > (1 << 24)) return usage_error("random-checkpoint: sizes are positive integers");
        } else if (!strcmp(argv[i], "--seed")) seed = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--arch")) {
            const char *a = argv[++i];
            if (!strcmp(a, "gpt_neox")) c.arch = ARCH_GPT_NEOX, c.tied = 0, c.gated_mlp = 0, c.parallel_residual = 1;
            else if (strcmp(a, "llama")) return usage_error("random-checkpoint: --arch is llama or gpt_neox");
        } else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else return usage_error("random-checkpoint: unexpected argument");
    }
    if (!dir || c.d % c.n_heads || c.n_heads % c.n_kv_heads) return usage_error("random-checkpoint needs DIR, heads dividing d and kv heads dividing heads");
    if (c.arch == ARCH_GPT_NEOX) c.n_kv_heads = c.n_heads;
    c.head_dim = c.d / c.n_heads;
    c.rot_dim = c.arch == ARCH_GPT_NEOX ? (c.head_dim / 4) & ~1 : c.head_dim;
    ibc_err e = {0};
    if (ckpt_write_random(dir, &c, (uint64_t)seed, &e)) return fail(&e);
    return 0;
}

static int cmd_correlate(int argc, char **argv) {
    corr_opts o = {.name_cols = "model", .exclude = "rank,params_b,Parameters,step,shots", .covariates = "",
                   .out = "correlate", .dups = BT_FIRST, .plots = 1};
    const char **in = calloc((size_t)argc + 1, sizeof(char *));
    for (int i = 0; in && i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-plots")) o.plots = 0;
        else if (!strcmp(a, "--per-layer")) o.per_layer = 1;
        else if (!strcmp(a, "--dump-resamples")) o.dump_resamples = 1;
        else if (a[0] == '-' && !v) { free(in); return usage_error("correlate: a flag needs a value"); }
        else if (!strcmp(a, "--benchmarks")) o.benchmarks = v, i++;
        else if (!strcmp(a, "--name-column")) o.name_cols = v, i++;
        else if (!strcmp(a, "--aliases")) o.aliases = v, i++;
        else if (!strcmp(a, "--covariates")) o.covariates = v, i++;
        else if (!strcmp(a, "--exclude")) o.exclude = v, i++;
        else if (!strcmp(a, "--out")) o.out = v, i++;
        else if (!strcmp(a, "--resamples")) o.resamples = atoi(v), i++;
        else if (!strcmp(a, "--seed")) o.seed = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--duplicates")) {
            i++;
            if (!strcmp(v, "first")) o.dups = BT_FIRST;
            else if (!strcmp(v, "mean")) o.dups = BT_MEAN;
            else if (!strcmp(v, "error")) o.dups = BT_ERROR;
            else { free(in); return usage_error("--duplicates: first, mean or error"); }
        } else if (a[0] != '-') in[o.n_inputs++] = a;
        else { free(in); return usage_error("correlate: unexpected argument"); }
    }
    o.inputs = in;
    if (!in || !o.n_inputs || !o.benchmarks) { free(in); return usage_error("correlate needs results and --benchmarks FILE.csv"); }
    ibc_err e = {0};
    int rc = corr_run(&o, &e);
    free(in);
    if (rc) return fail(&e);
    fprintf(stderr, "ibc: correlations.csv, regression.csv, correlations.md, matched.csv%s%s in %s\n",
            o.covariates[0] ? ", partial.csv" : "", o.plots ? " and plots/" : "", o.out);
    return 0;
}

// `ibc report RESULTS... [--benchmarks FILE.csv ...] --out report.html` (report.h).
static int cmd_report(int argc, char **argv) {
    rep_opts o = {.out = "report.html"};
    const char **in = xcalloc((size_t)argc + 1, sizeof(char *)), **bench = xcalloc((size_t)argc + 1, sizeof(char *));
    int bad = 0;
    for (int i = 0; i < argc && !bad; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') in[o.n_inputs++] = a;
        else if (!v) bad = 1;
        else if (!strcmp(a, "--benchmarks")) bench[o.n_benchmarks++] = v, i++;
        else if (!strcmp(a, "--out")) o.out = v, i++;
        else if (!strcmp(a, "--name-column")) o.name_cols = v, i++;
        else if (!strcmp(a, "--aliases")) o.aliases = v, i++;
        else if (!strcmp(a, "--resamples")) o.resamples = atoi(v), i++;
        else if (!strcmp(a, "--seed")) o.seed = strtoull(v, NULL, 10), i++;
        else bad = 1;
    }
    o.inputs = in;
    o.benchmarks = bench;
    ibc_err e = {0};
    int rc = bad || !o.n_inputs ? usage_error("report needs results folders and takes --benchmarks FILE --out FILE.html")
                                : rep_run(&o, &e) ? fail(&e) : 0;
    if (rc == 0) printf("%s\n", o.out);
    free(in);
    free(bench);
    return rc;
}

static int cmd_train(int argc, char **argv) {
    tr_opts o = {.corpus = "/usr/share/games/fortunes", .out = "results/demo-train", .steps = 600, .batch = 16,
                 .seq = 64, .vocab = 2048, .d = 128, .layers = 4, .heads = 4, .kv_heads = 2, .d_ff = 352, .lr = 3e-3f,
                 .seed = 0, .heldout = 0.1};
    for (int i = 0; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--quiet")) o.quiet = 1;
        else if (!v) return usage_error("train: a flag needs a value");
        else if (!strcmp(argv[i], "--out")) o.out = v, i++;
        else if (!strcmp(argv[i], "--corpus")) o.corpus = v, i++;
        else if (!strcmp(argv[i], "--steps")) o.steps = atoi(v), i++;
        else if (!strcmp(argv[i], "--seed")) o.seed = (uint64_t)atoll(v), i++;
        else return usage_error("train: unexpected argument");
    }
    if (o.steps < 1) return usage_error("train: --steps must be positive");
    ibc_err e = {0};
    return tr_run(&o, &e) ? fail(&e) : 0;
}

static int cmd_merge(int argc, char **argv) {
    if (argc < 2) return usage_error("merge needs a job file and results folders");
    MPI_Init(NULL, NULL);
    ibc_err e = {0};
    job j;
    int rc = job_load(argv[0], &j, &e);
    if (rc == 0) {
        char out[4400];
        job_results_dir(&j, out, sizeof out);
        rc = run_merge(&j, (const char *const *)argv + 1, argc - 1, out, &e);
        if (rc == 0) fprintf(stderr, "ibc: merged %d folders into %s\n", argc - 1, out);
        job_free(&j);
    }
    if (rc) fprintf(stderr, "ibc: %s\n", e.msg);
    MPI_Finalize();
    return rc ? ibc_exit_status(rc) : 0;
}

// The job's checkpoint count, or with --results-dir its results folder (for scripts).
static int cmd_checkpoints(int argc, char **argv) {
    if (argc < 1 || argc > 2 || (argc == 2 && strcmp(argv[1], "--results-dir")))
        return usage_error("checkpoints takes a job file [--results-dir]");
    ibc_err e = {0};
    job j;
    if (job_load(argv[0], &j, &e)) return fail(&e);
    char dir[4400];
    job_results_dir(&j, dir, sizeof dir);
    if (argc == 2) printf("%s\n", dir);
    else printf("%d\n", j.n_ckpts);
    job_free(&j);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 2, argv + 2);
    if (!strcmp(cmd, "hidden")) return cmd_hidden(argc - 2, argv + 2);
    if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "merge")) return cmd_merge(argc - 2, argv + 2);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 2, argv + 2);
    if (!strcmp(cmd, "correlate")) return cmd_correlate(argc - 2, argv + 2);
    if (!strcmp(cmd, "report")) return cmd_report(argc - 2, argv + 2);
    if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "random-checkpoint")) return cmd_random_checkpoint(argc - 2, argv + 2);
    if (!strcmp(cmd, "checkpoints")) return cmd_checkpoints(argc - 2, argv + 2);
    fprintf(stderr, "ibc: unknown command %s\n%s", cmd, USAGE);
    return 2;
}
