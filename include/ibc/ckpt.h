// ckpt: writes Hugging Face checkpoint folders (config.json + model.safetensors, F32) that
// follow HF's conventions exactly, so that transformers and ibc's own loader both read them.
// Families written: llama (used by `ibc train`) and gpt_neox (benchmarks).
//
// The tensor layout is HF's, not model.h's fused one: separate q/k/v/o and gate/up/down for
// llama; per-head interleaved query_key_value for gpt_neox.
#ifndef IBC_CKPT_H
#define IBC_CKPT_H

#include <stdint.h>

#include "ibc/config.h"
#include "ibc/err.h"

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[2];
    int64_t numel;
    int kind; // CKPT_MATRIX, CKPT_NORM (ones), CKPT_BIAS (zeros), CKPT_EMBED
} ckpt_entry;

enum { CKPT_MATRIX, CKPT_NORM, CKPT_BIAS, CKPT_EMBED };

// The HF tensor list of a config, in a fixed order. *out is malloc'd. IBC_EINPUT for a
// family ckpt cannot write.
int ckpt_layout(const model_config *c, ckpt_entry **out, int *n, ibc_err *err);

// Writes DIR/config.json and DIR/model.safetensors with data[i] for entry i.
int ckpt_write(const char *dir, const model_config *c, const ckpt_entry *e, int n,
               float *const *data, ibc_err *err);

// A random-weight checkpoint from ibc's rng: matrices N(0, 1/fan_in), embeddings N(0, 1),
// norm weights 1, biases 0.
int ckpt_write_random(const char *dir, const model_config *c, uint64_t seed, ibc_err *err);

// config.json text for c (malloc'd).
char *ckpt_config_json(const model_config *c);

#endif
