// kernels: the transformer's building blocks, shared by the forward pass (model.c, every family)
// and the trainer (train.c, a Llama), llm.c style: each `*_forward` next to its `*_backward`
// (backward halves exist for what the trainer trains: linear, RMSNorm, RoPE, causal attention,
// SwiGLU, embeddings).
//
// Conventions. Row-major f32; T rows (positions); a matrix "[T, n] ld" has row stride ld >= n.
// Backward functions ADD into their gradient outputs (dx, dW, ...), so a caller zeroes them once
// and several uses of one tensor accumulate. Every matrix product is one OpenBLAS sgemm whose
// shape depends only on the arguments; the elementwise kernels split rows over OpenMP threads
// (exactly, each row is computed the same way on any thread), and inside an enclosing parallel
// region they run on the calling thread, as OpenBLAS-openmp's sgemm then does: results depend
// only on the arguments, never on where the call runs. Not collective.
#ifndef IBC_KERNELS_H
#define IBC_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "ibc/config.h"

// Query rows per attention block: scores are [KERN_ATT_BLOCK, T] at most, and a block only
// computes the keys its rows can see (the masked half of its diagonal square is the waste: 64
// rows ran the SmolLM-135M shape's attention 5-10% faster than 128, docs/performance.md).
#ifndef KERN_ATT_BLOCK // -DKERN_ATT_BLOCK=N builds another block size (bench/attention.c)
#define KERN_ATT_BLOCK 64
#endif

// How a weight matrix is stored: nn.Linear's [out, in], or GPT-2 Conv1D's [in, out].
typedef enum { KERN_W_OUT_IN, KERN_W_IN_OUT } kern_wlayout;

// y[T, out] (ld out) = x[T, in] (ld ldx) W^T + b, with W [out, in] (or [in, out] for
// KERN_W_IN_OUT); b [out] or NULL.
void kern_linear_forward(float *y, const float *x, int ldx, const float *W, kern_wlayout wl,
                         const float *b, int T, int in, int out);
// y[T, out] += x[T, in] W^T + b, the same shapes: a projection added into the residual stream
// by sgemm itself (beta 1), without a buffer, a zeroing pass or a separate add. The sums are
// ((y + b) + x W^T), where Hugging Face rounds y + (x W^T + b): other bits, well within
// the goldens' tolerance (tests/test_model.c).
void kern_linear_add(float *y, const float *x, int ldx, const float *W, kern_wlayout wl, const float *b, int T,
                     int in, int out);
// dx[T, in] += dy[T, out] W ; dW[out, in] += dy^T x   (W [out, in])
void kern_linear_backward(float *dx, float *dW, const float *x, const float *W, const float *dy, int T,
                          int in, int out);

// LayerNorm (mean removed, biased variance) or RMSNorm of rows x[T, n] -> y[T, n] (y may be x):
// y = (x - mu) r w + b with r = 1 / sqrt(var + eps), statistics in double. b may be NULL.
// rstd[T], if not NULL, receives r (the backward pass needs it).
void kern_norm_forward(float *y, float *rstd, const float *x, const float *w, const float *b, int T, int n,
                       float eps, model_norm kind);
// RMSNorm: dx[T, n] += r w dy - x r^3 / n * sum_j w_j dy_j x_j ; dw[n] += sum_t dy x r
void kern_rmsnorm_backward(float *dx, float *dw, const float *x, const float *w, const float *rstd,
                           const float *dy, int T, int n);

// cos[T, half], sin[T, half] of the angle t * inv_freq[i] rounded to f32 (as HF computes it).
// Row t does not depend on T: a table for Tmax serves every T <= Tmax.
void kern_rope_table(float *cos_t, float *sin_t, const float *inv_freq, int half, int T);
// Rotates dims (i, i + rot/2), i < rot/2, of each of `heads` heads of D dims in rows v[T, ld]
// (HF's rotate_half; rot < D is partial rotary: the other dims pass through).
void kern_rope_forward(float *v, int T, int ld, int heads, int D, int rot, const float *cos_t,
                       const float *sin_t);
// The gradient of a rotation is the rotation by the opposite angle: dv is rotated in place.
void kern_rope_backward(float *dv, int T, int ld, int heads, int D, int rot, const float *cos_t,
                        const float *sin_t);

// Causal attention, GQA (query head h reads kv head h / (H / KV)), optional sliding window W
// (0: none; query i sees keys i - W < j <= i): q [T, ld q] (head h at column h D), k, v likewise
// with KV heads -> out [T, ldo] (head h at column h D). Scores are scaled by 1/sqrt(D).
// P: if not NULL, [H, T, T] receives the attention probabilities (row i: keys 0..T-1, zero
// where masked; the backward pass needs them) and serves as the score buffer, one (head, row
// block) at a time; else the query heads of one kv group are stacked into one taller product
// per row block, and scratch holds omp_get_max_threads() * kern_attention_scratch(s) floats.
typedef struct {
    int T, H, KV, D, window;
} kern_att_shape;
// Floats of scratch one thread needs without P, the larger of the two paths' needs: OpenBLAS's
// scores [H/KV KERN_ATT_BLOCK, T], stacked query and output rows [H/KV KERN_ATT_BLOCK, D] each
// and each row's 1 / sum of exps; the own products' K^T [D, T + 32] and scores [8, T + 32].
size_t kern_attention_scratch(const kern_att_shape *s);
void kern_attention_forward(float *out, int ldo, const float *q, int ldq, const float *k, int ldk,
                            const float *v, int ldv, const kern_att_shape *s, float *P, float *scratch);
// Without P, on AVX-512 CPUs and for D a multiple of 16, the products are ibc's own (no
// packing, scores in L1; each score a chain of fmaf over d, each output a chain over the keys
// in order: a row's bits depend on its document only); elsewhere OpenBLAS's, as with P.
// kern_attention_own(D) says which runs; kern_attention_use_blas(1) forces OpenBLAS's for the
// whole process (tests and bench/attention compare the two). Not thread-safe: set it first.
int kern_attention_own(int D);
void kern_attention_use_blas(int on);
// From dout [T, ldo]: dq += .., dk += .., dv += .. (same layouts as q, k, v); P from the
// forward pass; dP scratch [KERN_ATT_BLOCK, T]. No window (the trainer's Llama has none).
void kern_attention_backward(float *dq, float *dk, float *dv, const float *dout, int ldo, const float *q,
                             int ldq, const float *k, int ldk, const float *v, int ldv, const float *P,
                             const kern_att_shape *s, float *dP);

// The activations (SiLU, GELU (erf), GELU (tanh approximation)) run four lanes at a time
// through glibc's libmvec (kernels.c).
// Gated MLP middle: h[T, F] (ld ldh) = act(g) * u, g and u [T, F] with ld ldg (h may be g).
void kern_glu_forward(float *h, int ldh, const float *g, const float *u, int ldg, int T, int F, model_act a);
// SwiGLU: dg[T, F] = dh u silu'(g), du[T, F] = dh silu(g) (written, not added; ld F).
void kern_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, int T, int F);
// Plain MLP middle: x[n] = act(x) in place.
void kern_act_forward(float *x, int64_t n, model_act a);

// out[T, d] = table[ids[t], :] ; dtable[ids[t], :] += dout[t, :]
void kern_embedding_forward(float *out, const float *table, const int32_t *ids, int T, int d);
void kern_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int T, int d);

// out[n] = a[n] + b[n] (out may be a): the residual connection. Its gradient is the identity.
void kern_add(float *out, const float *a, const float *b, int64_t n);

#endif
