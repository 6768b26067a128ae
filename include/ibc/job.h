// job: an INI job file (jobs/README.md documents every key) -> a validated `job`.
//
// Unknown sections or keys, and bad values, are IBC_EINPUT errors "FILE:LINE: what was
// expected". Relative paths in the file are taken relative to the job file's folder.
#ifndef IBC_JOB_H
#define IBC_JOB_H

#include <stdint.h>

#include "ibc/err.h"
#include "ibc/limits.h"

#define JOB_PATH IBC_PATH_MAX

typedef enum { CORPUS_TEXT, CORPUS_JSONL, CORPUS_JSONL_IDS, CORPUS_TOKENS_U16, CORPUS_TOKENS_U32 } corpus_format;
typedef enum { TEMP_BOUND, TEMP_LEADING, TEMP_FIXED } temp_mode;

typedef struct {
    char name[128];
    char path[JOB_PATH];
} job_ckpt;

typedef struct {
    char file[JOB_PATH];    // the job file
    char *text;             // its whole text (stored with the results)
    // [job]
    char name[128];
    char output[JOB_PATH];  // results go to output/name/
    int on_error_stop;      // a checkpoint that fails to load stops the job
    // [checkpoints]
    job_ckpt *ckpts;
    int n_ckpts;
    // [corpus]
    corpus_format format;
    char corpus[JOB_PATH];
    char field[64];         // jsonl: text field; jsonl-ids: ids field
    char separator[64];     // text: a line equal to this ends a document; "" = blank lines
    char offsets[JOB_PATH]; // tokens-u16/u32: u64 document start offsets (in tokens)
    char tokenizer[JOB_PATH]; // "" = each checkpoint's tokenizer.json
    int add_special;        // the tokenizer's default special tokens (method.md §1)
    int64_t documents;      // 0 = all, else a seeded sample
    uint64_t corpus_seed;
    int max_length;
    int skip_bad;           // on_bad_document = skip
    // [estimator]
    int bins;
    uint64_t seed;          // the anchors' seed: seeds[0] (`seed` or the first of `seeds`)
    uint64_t seeds[IBC_MAX_SEEDS]; // anchor sets of the ensemble (`seeds`), distinct
    int n_seeds;            // K >= 1 (1: `seed` alone, today's single anchor set)
    int folds;              // data folds for standard errors (0: off, else 2..IBC_MAX_FOLDS)
    temp_mode temp;
    double temperature;     // TEMP_FIXED
    char anchors[JOB_PATH];
    unsigned orders;        // bit k-1: order k
    int all_layers;
    int layers[256];        // hidden-state indices when !all_layers
    int n_layers_sel;
    int64_t min_count;      // labels seen fewer times are dropped (0 = keep all)
    // [preference]
    char preference[JOB_PATH]; // JSONL {prompt, chosen, rejected}; "" = none
    // [parallel]
    int64_t exchange_mb;    // cap of one label-row exchange round per rank, MB (default 256)
    int unit_rows;          // rows a unit of documents stacked in one product may reach (default 1024, plan.h)
    // Units per thread in one round of ibc run (default 4). A round's units are alive together
    // (residual streams, estimator buffers) and its documents decide how many rows it adds to a
    // rank's outbox (plan.h counts both); fewer: less memory, more rounds, each ending with the
    // ranks' agreement and the threads waiting for the slowest unit. Results do not depend on it.
    int round_units;
} job;

int job_load(const char *path, job *j, ibc_err *err);
// The same from the text of a job file (fuzzing, tests); path names it in messages and
// anchors relative paths.
int job_parse(const char *text, const char *path, job *j, ibc_err *err);
void job_free(job *j);

// The results folder output/name.
void job_results_dir(const job *j, char *out, size_t cap);

#endif
