// train: a small Llama-architecture model trained in C (issue 7's embedded default).
//
// Architecture (HF LlamaForCausalLM conventions, so that model.c reads the checkpoints):
// embeddings, L blocks of RMSNorm -> attention (GQA, RoPE rotate_half) -> residual ->
// RMSNorm -> SwiGLU MLP -> residual, a final RMSNorm, logits with the tied embedding matrix.
// All parameters live in one f32 array in HF's tensor order (ckpt_layout); gradients and
// AdamW moments are arrays of the same layout. The forward pass uses the kernels model.c uses
// (ibc/kernels.h), the backward pass their backward halves; the activations of a sequence of up
// to max_T tokens live in one block allocated by tr_init, reused by every step.
// The loss of a sequence ids[0..T) is the mean cross-entropy of ids[t+1] given ids[0..t].
#ifndef IBC_TRAIN_H
#define IBC_TRAIN_H

#include <stdint.h>

#include "ibc/ckpt.h"
#include "ibc/config.h"
#include "ibc/err.h"

typedef struct {
    float *ln1, *wq, *wk, *wv, *wo, *ln2, *wg, *wu, *wd;
} tr_layer;

// One layer's saved activations (forward) for T <= max_T tokens.
typedef struct {
    float *xin, *xn1, *r1, *q, *k, *v, *P, *ao, *xmid, *xn2, *r2, *gg, *uu, *hh;
} tr_acts;

typedef struct {
    model_config c;
    ckpt_entry *e;  // HF tensors, in order
    int ne;
    int64_t n;      // parameters
    float *p, *g, *m, *v; // [n] parameters, gradients, Adam moments
    float *embed, *norm;  // views into p
    tr_layer *L;
    float *inv_freq;      // [D/2]
    int max_T;
    float *block;         // every activation and backward buffer below, one allocation
    tr_acts *A;           // [L]
    float *xL, *xnf, *rf, *logits, *tmp, *cos_t, *sin_t;        // forward tail, RoPE tables
    float *dx, *dxn, *dmid, *dq, *dao, *dk, *dv, *dh, *dg, *du, *dP; // backward
} trainer;

// Random init from ibc's rng: N(0, 0.02) matrices and embeddings, output projections scaled
// by 1/sqrt(2L) (GPT-2's), norms 1. Activations for sequences of up to max_T tokens.
int tr_init(trainer *t, const model_config *c, int max_T, uint64_t seed, ibc_err *err);
void tr_free(trainer *t);

// The loss of one sequence (2 <= T <= max_T); with backward, its gradient (scaled by `scale`)
// is added to t->g.
double tr_step_seq(trainer *t, const int32_t *ids, int T, int backward, float scale);
void tr_zero_grad(trainer *t);
// One AdamW step (decoupled weight decay on matrices and embeddings, not on norms).
void tr_adamw(trainer *t, float lr, float b1, float b2, float eps, float wd, int step);

// Writes an HF folder (config.json, model.safetensors) at dir.
int tr_save(const trainer *t, const char *dir, ibc_err *err);

// `ibc train`: the embedded default. Reads every *.u8 file of a fortune folder (Debian's
// fortunes package: one fortune = one document, in file-name order), splits documents into
// training and held-out by a seed, trains a byte-level BPE tokenizer on the training part,
// trains the model with AdamW, and writes to out/:
//   tokenizer.json, step-NNNNN/ (HF folders at log-spaced steps, 0 and the last included),
//   checkpoints.txt ("name path" per line, for a job's [checkpoints] list), heldout.txt
//   (the held-out fortunes, "%"-separated) and scores.csv (model,loss,top1,cloze: held-out
//   next-token loss, top-1 accuracy, and the share of held-out fortunes whose true final
//   word the model prefers among four candidates).
typedef struct {
    const char *corpus;  // folder of *.u8 fortune files
    const char *out;
    int steps, batch, seq, vocab, d, layers, heads, kv_heads, d_ff;
    float lr;
    uint64_t seed;
    double heldout;      // share of documents held out
    int quiet;
} tr_opts;

int tr_run(const tr_opts *o, ibc_err *err);

#endif
