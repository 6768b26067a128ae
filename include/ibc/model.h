// model: checkpoint weights and the forward pass that streams hidden states layer by layer.
//
// model_load reads DIR/config.json and the safetensors weights, converts every weight to f32
// once, and rearranges them into one layout for all families (nn.Linear's [out, in]):
//   wqkv [(H + 2 KV) * D, d]  q rows, then k rows, then v rows (GPT-2's Conv1D is transposed,
//                             GPT-NeoX's per-head interleaved QKV is de-interleaved)
//   wo   [d, H * D]
//   wup  [F or 2F, d]         gated MLPs: gate rows [0, F), up rows [F, 2F)
//   wdown [d, F]
// Gemma's (1 + w) norm weights are stored as 1 + w (the same f32 sum HF computes).
//
// model_forward follows Hugging Face's output_hidden_states convention (method.md §1): index 0
// is the embedding output (Gemma: times sqrt(d)), index l in 1..L-1 the residual stream after
// block l, index L the last block's output after the final norm. The callback gets each one in
// turn in a [T, d] buffer that is reused: memory is the weights plus O(T * (d + F + T)).
#ifndef IBC_MODEL_H
#define IBC_MODEL_H

#include <stdint.h>

#include "ibc/config.h"
#include "ibc/err.h"

typedef struct {
    float *ln1_w, *ln1_b;   // [d] pre-attention norm (OLMo2: post-attention norm)
    float *ln2_w, *ln2_b;   // [d] pre-MLP norm (OLMo2: post-feedforward norm)
    float *wqkv, *bqkv;     // [(H+2KV)*D, d], [(H+2KV)*D]
    float *q_norm, *k_norm; // OLMo2: [H*D], [KV*D]
    float *wo, *bo;         // [d, H*D], [d]
    float *wup, *bup;       // [F or 2F, d]
    float *wdown, *bdown;   // [d, F], [d]
} model_layer;

typedef struct {
    model_config c;
    char dir[4096];
    float *embed;     // [V, d]
    float *pos;       // [max_pos, d] GPT-2 learned positions, else NULL
    float *lnf_w, *lnf_b; // [d]
    float *lm_head;   // [V, d]; == embed when tied
    float *inv_freq;  // [rot_dim/2]
    model_layer *layers; // [L]
    int64_t n_params; // elements stored in the checkpoint
    int64_t file_bytes;
    char file_dtype[16];  // dtype of the stored weights (F32, BF16, mixed, ...)
} model;

// Loads DIR (config.json + model.safetensors or its index). On error nothing is allocated.
int model_load(const char *dir, model *m, ibc_err *err);
void model_free(model *m);

// Called once per hidden-state index l = 0..L with h: [T, d]; a nonzero return stops the pass.
typedef int (*model_layer_cb)(void *ctx, int l, const float *h, int T, int d);

// Runs ids[0..T-1] (each < vocab) through the model. cb may be NULL. logits, if not NULL,
// receives [T, vocab]. Returns IBC_EINPUT for an id out of range or T past the learned
// positions, or the callback's nonzero value.
int model_forward(const model *m, const int32_t *ids, int T, model_layer_cb cb, void *ctx,
                  float *logits, ibc_err *err);

// RoPE inverse frequencies as HF computes them in f32, llama3 scaling included; out[rot_dim/2].
void model_rope_inv_freq(const model_config *c, float *out);

#endif
