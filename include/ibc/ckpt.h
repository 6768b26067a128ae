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

// Longest HF tensor name ckpt writes ("gpt_neox.layers.4095.attention.query_key_value.weight"
// is 54 bytes): room to spare.
#define CKPT_NAME_MAX 96

typedef struct {
    char name[CKPT_NAME_MAX];
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

// The defaults of a checkpoint ckpt writes from scratch (`ibc random-checkpoint`): a small
// model (d 64, 2 layers, 4 heads, 2 kv heads, F 128, vocab 512, 2048 positions) of family
// `arch` with that family's conventions: llama tied, gated MLP, RMSNorm eps 1e-5, RoPE theta
// 1e4 on the whole head; gpt_neox untied, plain MLP, parallel residual, rotary on a quarter.
// Sizes may be changed after; ckpt_finish_config then derives the rest.
void ckpt_default_config(model_config *c, model_arch arch);
// Only the family's conventions above (arch, tying, MLP, residual); sizes are kept. A family
// ckpt cannot write becomes llama.
void ckpt_set_family(model_config *c, model_arch arch);

// Derives head_dim and the rotary width from the sizes (gpt_neox: kv heads = heads) and checks
// them: IBC_EINPUT if heads do not divide d or kv heads do not divide heads, or a size is
// outside limits.h's bounds.
int ckpt_finish_config(model_config *c, ibc_err *err);

// config.json text for c (malloc'd).
char *ckpt_config_json(const model_config *c);

#endif
