// model: checkpoint weights and the forward pass that streams hidden states layer by layer.
//
// Weights stay where they are: model_load maps the safetensors files read-only (the page cache
// holds one copy per node, shared by every rank and thread that maps them) and validates every
// tensor (names, shapes, dtype F32/F16/BF16), but converts only the small vectors (norm weights
// with Gemma's 1 + w, biases, OLMo2's q/k norms) to f32. The kernels (ibc/kernels.h) see every
// family in one layout (nn.Linear's [out, in]):
//   wqkv [(H + 2 KV) * D, d]  q rows, then k rows, then v rows (GPT-NeoX's per-head interleaved
//                             QKV is de-interleaved; GPT-2's Conv1D [in, out] is used as stored
//                             through the transposed sgemm)
//   wo   [d, H * D]
//   wup  [F or 2F, d]         gated MLPs: gate rows [0, F), up rows [F, 2F)
//   wdown [d, F]
// A layer's matrix is used from the map directly when it is F32, 4-byte aligned and already in
// that layout (its parts contiguous in the file, as ibc's writer and, for gate/up, HF's leave
// them); otherwise it is converted just in time into one f32 scratch of one layer, exactly
// (BF16 and F16 widen without rounding), and the next layer's bytes are prefetched
// (madvise WILLNEED). Embedding rows are converted per looked-up id; lm_head only for logits.
// Private memory per call: one or two layers' scratch plus activations, whatever the model size.
//
// Hidden states follow Hugging Face's output_hidden_states convention (method.md §1): index 0
// is the embedding output (Gemma: times sqrt(d)), index l in 1..L-1 the residual stream after
// block l, index L the last block's output after the final norm.
//
// Threads: a loaded model is read-only. model_forward may be called concurrently from several
// threads on different documents with the same `const model *` (each call has its own scratch);
// inside an enclosing OpenMP parallel region its work is single-threaded, outside it splits rows
// and heads over the threads. model_forward_docs runs a batch layer by layer: layer l is made
// ready once (mapped, or converted into a scratch), and the batch's units go through it in
// parallel, each single-threaded, as OpenMP tasks: a unit's layer after its previous one, so
// threads never wait at a layer's end while a unit can go on to the next layer (with threads,
// two layers' scratches: one is converted while the other is in use). A unit is a run of adjacent documents whose rows are stacked
// into every projection (one taller product: OpenBLAS packs the weights once for all of them);
// RoPE and attention see each document alone. So a
// document's hidden states are bitwise the same whatever the rest of the batch, its order and
// the thread count, given its unit (the documents and their order); a unit of one document
// equals model_forward's run on one thread. Across units they agree to rounding only: some
// OpenBLAS kernels (Haswell's) give other bits for the same rows in a taller product, so a
// caller that wants the same bits on every layout fixes its units by the data (plan_units: by
// the corpus), never by the layout. Not collective.
#ifndef IBC_MODEL_H
#define IBC_MODEL_H

#include <stdint.h>

#include "ibc/config.h"
#include "ibc/err.h"
#include "ibc/limits.h"

struct model_weights; // the mapping and how each layer is built from it (model.c)

typedef struct {
    model_config c;
    char dir[IBC_PATH_MAX];
    float *inv_freq;  // [rot_dim/2]
    int64_t n_params; // elements stored in the checkpoint
    int64_t file_bytes;
    char file_dtype[16];  // dtype of the stored weights (F32, BF16, mixed, ...)
    int64_t scratch_floats; // f32 elements of the per-call layer scratch (0: every layer mapped)
    struct model_weights *w;
} model;

// Loads DIR (config.json + model.safetensors or its index). On error nothing is allocated or
// mapped. The files must not change while the model is loaded (the mapping reads them).
int model_load(const char *dir, model *m, ibc_err *err);
void model_free(model *m);
// The layer scratch model_load would size for DIR (scratch_floats), with the same checks, from
// config.json and the safetensors headers: files mapped, no weight read (ibc plan).
int model_scratch_floats(const char *dir, int64_t *floats, ibc_err *err);

// Called once per hidden-state index l = 0..L with h: [T, d]; a nonzero return stops the pass.
typedef int (*model_layer_cb)(void *ctx, int l, const float *h, int T, int d);

// Runs ids[0..T-1] (each < vocab) through the model. cb may be NULL. logits, if not NULL,
// receives [T, vocab]. Returns IBC_EINPUT for an id out of range or T past the learned
// positions, or the callback's nonzero value.
int model_forward(const model *m, const int32_t *ids, int T, model_layer_cb cb, void *ctx,
                  float *logits, ibc_err *err);

// A batch of documents, layer by layer (see the top of this file).
typedef struct {
    const int32_t *ids;
    int T;
    int join; // nonzero: in the previous document's unit (stacked after it); 0: starts a unit
} model_doc;
// cb(ctx, doc, l, h [T, d], T, d): for one doc, l ascends 0..last_layer; calls for different
// docs may come from different threads concurrently. A nonzero return stops that doc (only).
typedef int (*model_doc_cb)(void *ctx, int doc, int l, const float *h, int T, int d);
// Runs docs[0..n) to hidden-state index last_layer (0..L). Returns 0, or IBC_EINPUT (naming the
// document) for an empty document, an id out of range, T past the learned positions or a
// last_layer outside 0..L, checked before any work. Callbacks report their own errors via ctx.
// idle (NULL: not wanted) gets added the thread-seconds the batch's threads spent with no
// unit step ready to take (a layer's conversion is work, not idle).
int model_forward_docs(const model *m, const model_doc *docs, int n, int last_layer,
                       model_doc_cb cb, void *ctx, double *idle, ibc_err *err);

// A unit handed between ranks at a layer boundary (run.c's handover, design.md "Run loop"):
// a batch may start from residual streams instead of ids, and a unit may leave a batch between
// two layers. Its remaining layers, run elsewhere from its residual stream, are the same
// products on the same rows, so its hidden states are the same bits as had it stayed.
//
// leave(ctx, first, n, l, x, R, others): after the unit of documents first .. first + n - 1
// reached hidden-state index l < last_layer with one of its documents still running, on the
// thread that ran the step, with x [R, d] its residual stream after index l and `others` the
// batch's other units still running. A nonzero return takes the unit out of the batch there
// (the callee copied x).
typedef int (*model_leave_cb)(void *ctx, int first, int n, int l, const float *x, int R, int others);
typedef struct {
    int from;         // 0: from the ids; else 1 .. last_layer - 1, the index x is at
    const float *x;   // from > 0: [sum of T, d], every document's residual stream in order
    model_leave_cb leave;  // NULL: no unit leaves
} model_batch_opts;
// model_forward_docs with options (NULL: those of model_forward_docs). With from > 0 the
// callbacks start at index from + 1 and the ids are still checked (RoPE and attention see
// each document alone, as from the start).
int model_forward_docs_opts(const model *m, const model_doc *docs, int n, int last_layer, const model_batch_opts *o,
                            model_doc_cb cb, void *ctx, double *idle, ibc_err *err);

// RoPE inverse frequencies as HF computes them in f32, llama3 scaling included; out[rot_dim/2].
void model_rope_inv_freq(const model_config *c, float *out);

#endif
