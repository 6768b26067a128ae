// ibc: the command-line program. main() only dispatches: a table of commands (name, handler,
// whether it runs over MPI, usage); each handler parses its arguments with args.h, calls the
// library and turns an error into one line on stderr (rank 0 only under MPI) and exit status
// 2 (bad input) or 1 (system failure). MPI start-up, cores and threads are dist_init's.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibc/args.h"
#include "ibc/blas.h"
#include "ibc/ckpt.h"
#include "ibc/corpus.h"
#include "ibc/correlate.h"
#include "ibc/dist.h"
#include "ibc/err.h"
#include "ibc/io.h"
#include "ibc/job.h"
#include "ibc/limits.h"
#include "ibc/mem.h"
#include "ibc/model.h"
#include "ibc/npy.h"
#include "ibc/plan.h"
#include "ibc/report.h"
#include "ibc/run.h"
#include "ibc/tokenizer.h"
#include "ibc/version.h"
#include "ibc/train.h"
#include <jansson.h>
#include <utf8proc.h>

static int g_rank; // this process's MPI rank under an MPI command, else 0

static int fail(const ibc_err *e) {
    if (g_rank == 0) fprintf(stderr, "ibc: %s\n", e->msg);
    return ibc_exit_status(e->code);
}

// Shorthand for an option table and its positional arguments.
#define SPEC(cmd, opts, pos, lo, hi, what) \
    (arg_spec){cmd, opts, (int)(sizeof opts / sizeof *opts), pos, lo, hi, what}
#define SPEC0(cmd, pos, lo, hi, what) (arg_spec){cmd, NULL, 0, pos, lo, hi, what} // no options
#define N_MAX 1000000000LL // counts and sizes given on the command line: far above any use

static int cmd_inspect(int argc, char **argv) {
    const char *pos[1];
    ibc_err e = {0};
    int np;
    if (args_parse(&SPEC0("inspect", pos, 1, 1, "one checkpoint folder"), argc, argv, &np, &e)) return fail(&e);
    model m;
    if (model_load(pos[0], &m, &e)) return fail(&e);
    const model_config *c = &m.c;
    printf("checkpoint   %s\n", pos[0]);
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

static int write_layer(void *ctx, int l, const float *h, int T, int d) {
    (void)l;
    return fwrite(h, sizeof(float), (size_t)T * d, ((io_file *)ctx)->f) == (size_t)T * d ? 0 : IBC_ESYS;
}

static int cmd_hidden(int argc, char **argv) {
    const char *pos[1], *ids_s = NULL, *out = NULL, *lout = NULL;
    arg_opt opts[] = {
        {"--ids", ARG_STR, &ids_s, 0, 0, NULL, 1, "1,2,3"},
        {"--out", ARG_STR, &out, 0, 0, NULL, 1, "FILE.npy"},
        {"--logits", ARG_STR, &lout, 0, 0, NULL, 0, "FILE.npy"},
    };
    ibc_err e = {0};
    int np, T;
    int32_t *ids = NULL;
    if (args_parse(&SPEC("hidden", opts, pos, 1, 1, "a checkpoint folder"), argc, argv, &np, &e) ||
        args_int_list("hidden: --ids", ids_s, 0, INT32_MAX, &ids, &T, &e))
        return fail(&e);
    model m;
    if (model_load(pos[0], &m, &e)) { free(ids); return fail(&e); }
    float *logits = lout ? xmalloc(sizeof(float) * (size_t)T * m.c.vocab) : NULL; // [T, vocab]
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
    const char *pos[1];
    arg_opt opts[] = {
        {"--quiet", ARG_FLAG, &o.quiet, 0, 0, NULL, 0, NULL},
        {"--only", ARG_INT, &o.only, 0, INT32_MAX, NULL, 0, "K"},
        {"--results", ARG_STR, &o.results, 0, 0, NULL, 0, "DIR"},
    };
    ibc_err e = {0};
    job j;
    int np;
    if (args_parse(&SPEC("run", opts, pos, 1, 1, "a job file"), argc, argv, &np, &e) || job_load(pos[0], &j, &e))
        return fail(&e);
    if (!o.quiet && dist_layout()[0]) fprintf(stderr, "%s\n", dist_layout());
    int rc = run_job(&j, &o, &e);
    job_free(&j);
    return rc ? fail(&e) : 0;
}

static int print_ids(FILE *f, const int32_t *ids, int n, int json) {
    fputs(json ? "[" : "", f);
    for (int i = 0; i < n; i++) fprintf(f, i ? (json ? ", %d" : " %d") : "%d", ids[i]);
    fputs(json ? "]\n" : "\n", f);
    return ferror(f) ? -1 : 0;
}

typedef struct {
    tokenizer *t;
    int special;
} tok_line;

static int print_doc_ids(void *ctx, const char *text, size_t len, int64_t line, ibc_err *e) {
    (void)line;
    tok_line *tl = ctx;
    int32_t *ids;
    int n, rc = tok_encode(tl->t, text, len, tl->special, &ids, &n, e);
    if (rc == 0) print_ids(stdout, ids, n, 1);
    if (rc == 0) free(ids);
    return rc;
}

static int cmd_tokenize(int argc, char **argv) {
    const char *tpath = NULL, *jsonl = NULL;
    int no_special = 0, np;
    arg_opt opts[] = {
        {"--tokenizer", ARG_STR, &tpath, 0, 0, NULL, 1, "FILE"},
        {"--jsonl", ARG_STR, &jsonl, 0, 0, NULL, 0, "IN"},
        {"--no-special", ARG_FLAG, &no_special, 0, 0, NULL, 0, NULL},
    };
    ibc_err e = {0};
    if (args_parse(&SPEC("tokenize", opts, NULL, 0, 0, ""), argc, argv, &np, &e)) return fail(&e);
    int special = !no_special;
    tokenizer *t;
    if (tok_load(tpath, &t, &e)) return fail(&e);
    int rc = 0;
    int32_t *ids;
    int n;
    if (!jsonl) {
        char *text = NULL;
        size_t len;
        rc = io_read_all("/dev/stdin", &text, &len, &e);
        if (rc == 0 && !corpus_valid_utf8(text, len)) rc = ibc_fail(&e, IBC_EINPUT, "stdin: invalid UTF-8");
        if (rc == 0 && (rc = tok_encode(t, text, len, special, &ids, &n, &e)) == 0) {
            print_ids(stdout, ids, n, 0);
            free(ids);
        }
        free(text);
    } else { // through the corpus reader: compressed files too; blank lines skipped
        tok_line tl = {t, special};
        int64_t n_bad = 0;
        rc = corpus_each_jsonl(jsonl, "text", 0, print_doc_ids, &tl, &n_bad, &e);
    }
    tok_free(t);
    return rc ? fail(&e) : 0;
}

static int cmd_random_checkpoint(int argc, char **argv) {
    model_config c;
    ckpt_default_config(&c, ARCH_LLAMA);
    const char *pos[1];
    int arch = 0, np;
    long long seed = 1;
    arg_opt opts[] = {
        {"--arch", ARG_CHOICE, &arch, 0, 0, "llama|gpt_neox", 0, NULL},
        {"--d", ARG_INT, &c.d, 1, IBC_MAX_WIDTH, NULL, 0, "N"},
        {"--layers", ARG_INT, &c.n_layers, 1, IBC_MAX_LAYERS, NULL, 0, "N"},
        {"--heads", ARG_INT, &c.n_heads, 1, IBC_MAX_HEADS, NULL, 0, "N"},
        {"--kv-heads", ARG_INT, &c.n_kv_heads, 1, IBC_MAX_HEADS, NULL, 0, "N"},
        {"--ff", ARG_INT, &c.d_ff, 1, IBC_MAX_WIDTH, NULL, 0, "N"},
        {"--vocab", ARG_INT, &c.vocab, 1, IBC_MAX_VOCAB, NULL, 0, "N"},
        {"--seed", ARG_I64, &seed, 0, INT64_MAX, NULL, 0, "S"},
    };
    ibc_err e = {0};
    if (args_parse(&SPEC("random-checkpoint", opts, pos, 1, 1, "a folder to write"), argc, argv, &np, &e))
        return fail(&e);
    ckpt_set_family(&c, arch ? ARCH_GPT_NEOX : ARCH_LLAMA);
    if (ckpt_finish_config(&c, &e) || ckpt_write_random(pos[0], &c, (uint64_t)seed, &e)) return fail(&e);
    return 0;
}

static int cmd_correlate(int argc, char **argv) {
    corr_opts o = {.name_cols = "model", .exclude = "rank,params_b,Parameters,step,shots", .covariates = "",
                   .out = "correlate", .dups = BT_FIRST, .plots = 1};
    int no_plots = 0, dups = 0; // dups indexes "first|mean|error"
    long long seed = 0;
    arg_opt opts[] = {
        {"--benchmarks", ARG_STR, &o.benchmarks, 0, 0, NULL, 1, "FILE.csv"},
        {"--name-column", ARG_STR, &o.name_cols, 0, 0, NULL, 0, "C[,C2]"},
        {"--aliases", ARG_STR, &o.aliases, 0, 0, NULL, 0, "FILE"},
        {"--covariates", ARG_STR, &o.covariates, 0, 0, NULL, 0, "log_params"},
        {"--duplicates", ARG_CHOICE, &dups, 0, 0, "first|mean|error", 0, NULL},
        {"--exclude", ARG_STR, &o.exclude, 0, 0, NULL, 0, "COLS"},
        {"--out", ARG_STR, &o.out, 0, 0, NULL, 0, "DIR"},
        {"--per-layer", ARG_FLAG, &o.per_layer, 0, 0, NULL, 0, NULL},
        {"--no-plots", ARG_FLAG, &no_plots, 0, 0, NULL, 0, NULL},
        {"--resamples", ARG_INT, &o.resamples, 1, 100000000, NULL, 0, "N"},
        {"--seed", ARG_I64, &seed, 0, INT64_MAX, NULL, 0, "S"},
        {"--dump-resamples", ARG_FLAG, &o.dump_resamples, 0, 0, NULL, 0, NULL},
    };
    const char **in = xcalloc((size_t)argc + 1, sizeof(char *));
    ibc_err e = {0};
    int rc = args_parse(&SPEC("correlate", opts, in, 1, argc, "results folders or HDF5 files"), argc, argv, &o.n_inputs, &e);
    o.inputs = in;
    o.plots = !no_plots;
    o.dups = dups == 0 ? BT_FIRST : dups == 1 ? BT_MEAN : BT_ERROR;
    o.seed = (unsigned long long)seed;
    if (rc == 0) rc = corr_run(&o, &e);
    free(in);
    if (rc) return fail(&e);
    fprintf(stderr, "ibc: correlations.csv, regression.csv, correlations.md, matched.csv%s%s in %s\n",
            o.covariates[0] ? ", partial.csv" : "", o.plots ? " and plots/" : "", o.out);
    return 0;
}

// `ibc report RESULTS... [--benchmarks FILE.csv[,FILE2.csv...]] --out report.html` (report.h).
static int cmd_report(int argc, char **argv) {
    rep_opts o = {.out = "report.html", .name_cols = "model"};
    const char *bench = NULL;
    long long seed = 0;
    arg_opt opts[] = {
        {"--benchmarks", ARG_STR, &bench, 0, 0, NULL, 0, "FILE.csv[,FILE.csv...]"},
        {"--out", ARG_STR, &o.out, 0, 0, NULL, 0, "FILE.html"},
        {"--name-column", ARG_STR, &o.name_cols, 0, 0, NULL, 0, "C[,C2]"},
        {"--aliases", ARG_STR, &o.aliases, 0, 0, NULL, 0, "FILE"},
        {"--resamples", ARG_INT, &o.resamples, 1, 100000000, NULL, 0, "N"},
        {"--seed", ARG_I64, &seed, 0, INT64_MAX, NULL, 0, "S"},
    };
    const char **in = xcalloc((size_t)argc + 1, sizeof(char *)), **files = NULL;
    char *list = NULL;
    ibc_err e = {0};
    int rc = args_parse(&SPEC("report", opts, in, 1, argc, "results folders or HDF5 files"), argc, argv, &o.n_inputs, &e);
    if (rc == 0 && bench) { // the benchmark tables: one --benchmarks, comma-separated
        list = xstrdup(bench);
        files = xcalloc(strlen(bench) + 1, sizeof(char *)); // at most one file per character
        for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) files[o.n_benchmarks++] = t;
    }
    o.inputs = in;
    o.benchmarks = files;
    o.seed = (unsigned long long)seed;
    if (rc == 0) rc = rep_run(&o, &e);
    if (rc == 0) printf("%s\n", o.out);
    free(in);
    free(files);
    free(list);
    return rc ? fail(&e) : 0;
}

static int cmd_train(int argc, char **argv) {
    tr_opts o = {.corpus = "/usr/share/games/fortunes", .out = "results/demo-train", .steps = 600, .batch = 16,
                 .seq = 64, .vocab = 2048, .d = 128, .layers = 4, .heads = 4, .kv_heads = 2, .d_ff = 352, .lr = 3e-3f,
                 .seed = 0, .heldout = 0.1};
    long long seed = 0;
    int np;
    arg_opt opts[] = {
        {"--out", ARG_STR, &o.out, 0, 0, NULL, 0, "DIR"},
        {"--corpus", ARG_STR, &o.corpus, 0, 0, NULL, 0, "DIR"},
        {"--steps", ARG_INT, &o.steps, 1, N_MAX, NULL, 0, "N"},
        {"--seed", ARG_I64, &seed, 0, INT64_MAX, NULL, 0, "S"},
        {"--quiet", ARG_FLAG, &o.quiet, 0, 0, NULL, 0, NULL},
    };
    ibc_err e = {0};
    if (args_parse(&SPEC("train", opts, NULL, 0, 0, ""), argc, argv, &np, &e)) return fail(&e);
    o.seed = (uint64_t)seed;
    return tr_run(&o, &e) ? fail(&e) : 0;
}

static int cmd_merge(int argc, char **argv) {
    const char **pos = xcalloc((size_t)argc + 1, sizeof(char *));
    ibc_err e = {0};
    job j;
    int np, rc = args_parse(&SPEC0("merge", pos, 2, argc, "a job file and results folders"), argc, argv, &np, &e);
    if (rc == 0 && (rc = job_load(pos[0], &j, &e)) == 0) {
        char out[IBC_PATH_NAME_MAX]; // output (< IBC_PATH_MAX) / name: never cut
        job_results_dir(&j, out, sizeof out);
        rc = run_merge(&j, pos + 1, np - 1, out, &e);
        if (rc == 0 && g_rank == 0) fprintf(stderr, "ibc: merged %d folders into %s\n", np - 1, out);
        job_free(&j);
    }
    free(pos);
    return rc ? fail(&e) : 0;
}

// `ibc plan`: what each rank and node will hold, from the job's real corpus; nothing runs.
static int cmd_plan(int argc, char **argv) {
    const char *pos[1], *omp = getenv("OMP_NUM_THREADS");
    int ranks = 0, nodes = 1, threads = omp && atoi(omp) > 0 ? atoi(omp) : 1, np;
    arg_opt opts[] = {
        {"--ranks", ARG_INT, &ranks, 1, 1 << 20, NULL, 1, "P"},
        {"--nodes", ARG_INT, &nodes, 1, 1 << 20, NULL, 0, "N"},
        {"--threads", ARG_INT, &threads, 1, 1 << 20, NULL, 0, "T"},
    };
    ibc_err e = {0};
    job j;
    if (args_parse(&SPEC("plan", opts, pos, 1, 1, "a job file"), argc, argv, &np, &e)) return fail(&e);
    if (nodes > ranks) return ibc_fail(&e, IBC_EINPUT, "plan: --nodes %d cannot exceed --ranks %d", nodes, ranks), fail(&e);
    if (job_load(pos[0], &j, &e)) return fail(&e);
    plan_layout lay = {ranks, nodes, threads, (ranks + nodes - 1) / nodes, j.exchange_mb * 1048576};
    int rc = plan_command(&j, &lay, stdout, &e);
    job_free(&j);
    return rc ? fail(&e) : 0;
}

// The job's checkpoint count, or with --results-dir its results folder (for scripts).
static int cmd_checkpoints(int argc, char **argv) {
    const char *pos[1];
    int dir_only = 0, np;
    arg_opt opts[] = {{"--results-dir", ARG_FLAG, &dir_only, 0, 0, NULL, 0, NULL}};
    ibc_err e = {0};
    job j;
    if (args_parse(&SPEC("checkpoints", opts, pos, 1, 1, "a job file"), argc, argv, &np, &e) || job_load(pos[0], &j, &e))
        return fail(&e);
    char dir[IBC_PATH_NAME_MAX]; // output (< IBC_PATH_MAX) / name: never cut
    job_results_dir(&j, dir, sizeof dir);
    if (dir_only) printf("%s\n", dir);
    else printf("%d\n", j.n_ckpts);
    job_free(&j);
    return 0;
}

static int cmd_version(int argc, char **argv) {
    ibc_err e = {0};
    int np;
    if (args_parse(&SPEC0("version", NULL, 0, 0, "no arguments"), argc, argv, &np, &e)) return fail(&e);
    char blas[256];
    blas_describe(blas, sizeof blas);
    printf("ibc %s (git %s)\nblas %s\n", IBC_VERSION, IBC_GIT_REV, blas);
    return 0;
}

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv); // argv: the arguments after the command's name
    int mpi;                           // 1: dist_init before, dist_finalize after
    const char *args;                  // usage: the arguments
    const char *what;                  // usage: what it does
} command;

static const command COMMANDS[] = {
    {"run", cmd_run, 1, "JOB.ini [--quiet] [--only K] [--results DIR]",
     "the job: estimates for every checkpoint (mpirun -np N for N ranks); --only K runs checkpoint K (0-based) "
     "alone, into DIR"},
    {"plan", cmd_plan, 0, "JOB.ini --ranks P [--nodes N] [--threads T]",
     "memory per rank and node, exchange rounds and FLOPs, before running"},
    {"merge", cmd_merge, 1, "JOB.ini DIR...", "merges results folders of one job (Slurm array tasks)"},
    {"checkpoints", cmd_checkpoints, 0, "JOB.ini [--results-dir]", "prints the job's checkpoint count (or results folder)"},
    {"tokenize", cmd_tokenize, 0, "--tokenizer FILE [--no-special] [--jsonl IN]",
     "token ids of UTF-8 text on stdin (one line), or of each JSONL record's text field (one JSON array per line)"},
    {"inspect", cmd_inspect, 0, "DIR", "architecture, sizes and dtype of a checkpoint"},
    {"hidden", cmd_hidden, 0, "DIR --ids 1,2,3 --out FILE.npy [--logits FILE.npy]",
     "hidden states [L+1, T, d] of one sequence (and its logits [T, vocab])"},
    {"correlate", cmd_correlate, 0,
     "RESULTS_DIR_OR_H5... --benchmarks FILE.csv [--name-column C[,C2]] [--aliases FILE] [--covariates log_params] "
     "[--duplicates first|mean|error] [--exclude COLS] [--out DIR] [--per-layer] [--no-plots] [--resamples N] "
     "[--seed S] [--dump-resamples]",
     "metrics against benchmark scores: CSV, Markdown, plots"},
    {"report", cmd_report, 0, "RESULTS... [--benchmarks FILE.csv[,FILE.csv...]] [--aliases FILE] [--name-column C] [--out FILE.html]",
     "one self-contained HTML page: the job, tables, plots, intervals"},
    {"train", cmd_train, 0, "[--out DIR] [--corpus DIR] [--steps N] [--seed S] [--quiet]",
     "the embedded default: tokenizer, model and scores on Debian's fortunes"},
    {"random-checkpoint", cmd_random_checkpoint, 0,
     "DIR [--arch llama|gpt_neox] [--d N] [--layers N] [--heads N] [--kv-heads N] [--ff N] [--vocab N] [--seed S]",
     "a random-weight Hugging Face folder (tests, benchmarks)"},
    {"version", cmd_version, 0, "", "ibc's version and the BLAS kernels it runs (blas.h)"},
};
enum { N_COMMANDS = sizeof COMMANDS / sizeof *COMMANDS };

static void usage(FILE *f, const command *only) {
    if (!only) fputs("usage: ibc COMMAND [ARGS]     (ibc help COMMAND: one command)\n", f);
    for (int i = 0; i < N_COMMANDS; i++)
        if (!only || only == &COMMANDS[i]) fprintf(f, "  ibc %s %s\n      %s\n", COMMANDS[i].name, COMMANDS[i].args, COMMANDS[i].what);
}

static const command *find(const char *name) {
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(COMMANDS[i].name, name)) return &COMMANDS[i];
    return NULL;
}

static int is_help(const char *a) { return !strcmp(a, "help") || !strcmp(a, "-h") || !strcmp(a, "--help"); }

int main(int argc, char **argv) {
    blas_select(argv); // may re-execute this program with OpenBLAS's vector kernels (blas.h)
    if (argc < 2) {
        usage(stderr, NULL);
        return 2;
    }
    const command *c = find(argv[1]);
    if (is_help(argv[1]) || (c && argc == 3 && is_help(argv[2]))) { // ibc help [CMD], ibc CMD --help
        const char *name = c ? argv[1] : argc > 2 ? argv[2] : NULL;
        const command *h = name ? find(name) : NULL;
        if (name && !h) {
            fprintf(stderr, "ibc: help: unknown command '%s' (ibc help lists them)\n", name);
            return 2;
        }
        usage(stdout, h);
        return 0;
    }
    if (!c) {
        fprintf(stderr, "ibc: unknown command '%s' (ibc help lists them)\n", argv[1]);
        return 2;
    }
    if (!c->mpi) return c->run(argc - 2, argv + 2);
    dist_init(&argc, &argv);
    g_rank = dist_rank();
    int st = c->run(argc - 2, argv + 2);
    dist_finalize();
    return st;
}
