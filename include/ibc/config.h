// config: a Hugging Face config.json -> model_config, for the seven supported families.
//
// Keys that Hugging Face gives a default to (num_key_value_heads, rope_theta, head_dim,
// tie_word_embeddings, ...) take that family's default from transformers v4.47 when absent;
// the size keys (hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
// vocab_size) are required. A missing required key, an unknown model_type, rope type or
// activation is an IBC_EINPUT error naming the file and the key.
#ifndef IBC_CONFIG_H
#define IBC_CONFIG_H

#include "ibc/err.h"

typedef enum { ARCH_LLAMA, ARCH_MISTRAL, ARCH_QWEN2, ARCH_GPT_NEOX, ARCH_GPT2, ARCH_OLMO2, ARCH_GEMMA } model_arch;
typedef enum { ACT_SILU, ACT_GELU, ACT_GELU_TANH } model_act;
typedef enum { NORM_LAYER, NORM_RMS } model_norm;

typedef struct {
    model_arch arch;
    int d;            // hidden size
    int n_layers;     // L: hidden states are indices 0..L
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int d_ff;         // MLP inner size
    int vocab;
    int max_pos;      // learned positions (GPT-2) or 0
    float norm_eps;
    model_norm norm;
    int norm_plus_one;   // Gemma: RMSNorm multiplies by (1 + w)
    model_act act;
    int gated_mlp;       // down(act(gate(x)) * up(x)) rather than down(act(up(x)))
    int qkv_bias, o_bias, mlp_bias;
    int parallel_residual; // GPT-NeoX use_parallel_residual
    int post_norm;         // OLMo2: norms after attention / MLP, plus q_norm/k_norm
    int tied;              // logits use the input embedding
    int embed_scale;       // Gemma: embeddings * sqrt(d)
    // RoPE (rot_dim == 0: none, learned positions instead)
    int rot_dim;
    double rope_theta;
    int rope_llama3;
    double rs_factor, rs_low, rs_high, rs_orig; // llama3 rope_scaling
    int sliding_window;  // 0: none; else query i sees keys j with i - W < j <= i
    char dtype[16];      // torch_dtype as written, informational
} model_config;

// Parses DIR/config.json (path is the file itself).
int config_load(const char *path, model_config *c, ibc_err *err);
// The same from a JSON text (fuzzing, tests); `name` is used in messages.
int config_parse(const char *text, size_t len, const char *name, model_config *c, ibc_err *err);

const char *config_arch_name(model_arch a);

#endif
