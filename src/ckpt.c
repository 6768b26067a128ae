#include "ibc/ckpt.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibc/io.h"
#include "ibc/limits.h"
#include "ibc/mem.h"
#include "ibc/rng.h"
#include "ibc/safetensors.h"

typedef struct {
    ckpt_entry *e;
    int n;
} list;

static void add(list *l, int kind, int64_t r, int64_t c, const char *fmt, int i) {
    ckpt_entry *e = &l->e[l->n++];
    snprintf(e->name, sizeof e->name, fmt, i);
    e->kind = kind;
    e->ndim = c ? 2 : 1;
    e->shape[0] = r;
    e->shape[1] = c;
    e->numel = c ? r * c : r;
}

int ckpt_layout(const model_config *c, ckpt_entry **out, int *n, ibc_err *err) {
    if (c->arch != ARCH_LLAMA && c->arch != ARCH_GPT_NEOX)
        return ibc_fail(err, IBC_EINPUT, "ckpt: cannot write family %s", config_arch_name(c->arch));
    list l = {xcalloc((size_t)(16 * c->n_layers + 8), sizeof(ckpt_entry)), 0};
    int64_t d = c->d, F = c->d_ff, qd = (int64_t)c->n_heads * c->head_dim,
            kd = (int64_t)c->n_kv_heads * c->head_dim;
    if (c->arch == ARCH_LLAMA) {
        add(&l, CKPT_EMBED, c->vocab, d, "model.embed_tokens.weight", 0);
        for (int i = 0; i < c->n_layers; i++) {
            add(&l, CKPT_NORM, d, 0, "model.layers.%d.input_layernorm.weight", i);
            add(&l, CKPT_MATRIX, qd, d, "model.layers.%d.self_attn.q_proj.weight", i);
            add(&l, CKPT_MATRIX, kd, d, "model.layers.%d.self_attn.k_proj.weight", i);
            add(&l, CKPT_MATRIX, kd, d, "model.layers.%d.self_attn.v_proj.weight", i);
            add(&l, CKPT_MATRIX, d, qd, "model.layers.%d.self_attn.o_proj.weight", i);
            add(&l, CKPT_NORM, d, 0, "model.layers.%d.post_attention_layernorm.weight", i);
            add(&l, CKPT_MATRIX, F, d, "model.layers.%d.mlp.gate_proj.weight", i);
            add(&l, CKPT_MATRIX, F, d, "model.layers.%d.mlp.up_proj.weight", i);
            add(&l, CKPT_MATRIX, d, F, "model.layers.%d.mlp.down_proj.weight", i);
        }
        add(&l, CKPT_NORM, d, 0, "model.norm.weight", 0);
        if (!c->tied) add(&l, CKPT_MATRIX, c->vocab, d, "lm_head.weight", 0);
    } else {
        add(&l, CKPT_EMBED, c->vocab, d, "gpt_neox.embed_in.weight", 0);
        for (int i = 0; i < c->n_layers; i++) {
            add(&l, CKPT_NORM, d, 0, "gpt_neox.layers.%d.input_layernorm.weight", i);
            add(&l, CKPT_BIAS, d, 0, "gpt_neox.layers.%d.input_layernorm.bias", i);
            add(&l, CKPT_NORM, d, 0, "gpt_neox.layers.%d.post_attention_layernorm.weight", i);
            add(&l, CKPT_BIAS, d, 0, "gpt_neox.layers.%d.post_attention_layernorm.bias", i);
            add(&l, CKPT_MATRIX, 3 * d, d, "gpt_neox.layers.%d.attention.query_key_value.weight", i);
            add(&l, CKPT_BIAS, 3 * d, 0, "gpt_neox.layers.%d.attention.query_key_value.bias", i);
            add(&l, CKPT_MATRIX, d, d, "gpt_neox.layers.%d.attention.dense.weight", i);
            add(&l, CKPT_BIAS, d, 0, "gpt_neox.layers.%d.attention.dense.bias", i);
            add(&l, CKPT_MATRIX, F, d, "gpt_neox.layers.%d.mlp.dense_h_to_4h.weight", i);
            add(&l, CKPT_BIAS, F, 0, "gpt_neox.layers.%d.mlp.dense_h_to_4h.bias", i);
            add(&l, CKPT_MATRIX, d, F, "gpt_neox.layers.%d.mlp.dense_4h_to_h.weight", i);
            add(&l, CKPT_BIAS, d, 0, "gpt_neox.layers.%d.mlp.dense_4h_to_h.bias", i);
        }
        add(&l, CKPT_NORM, d, 0, "gpt_neox.final_layer_norm.weight", 0);
        add(&l, CKPT_BIAS, d, 0, "gpt_neox.final_layer_norm.bias", 0);
        if (!c->tied) add(&l, CKPT_MATRIX, c->vocab, d, "embed_out.weight", 0);
    }
    *out = l.e;
    *n = l.n;
    return 0;
}

char *ckpt_config_json(const model_config *c) {
    json_t *j = json_object();
    if (c->arch == ARCH_LLAMA) {
        json_object_set_new(j, "architectures", json_pack("[s]", "LlamaForCausalLM"));
        json_object_set_new(j, "model_type", json_string("llama"));
        json_object_set_new(j, "num_key_value_heads", json_integer(c->n_kv_heads));
        json_object_set_new(j, "head_dim", json_integer(c->head_dim));
        json_object_set_new(j, "rms_norm_eps", json_real(c->norm_eps));
        json_object_set_new(j, "rope_theta", json_real(c->rope_theta));
        json_object_set_new(j, "rope_scaling", json_null());
        json_object_set_new(j, "hidden_act", json_string("silu"));
        json_object_set_new(j, "attention_bias", json_false());
        json_object_set_new(j, "mlp_bias", json_false());
        json_object_set_new(j, "bos_token_id", json_integer(1));
        json_object_set_new(j, "eos_token_id", json_integer(2));
    } else {
        json_object_set_new(j, "architectures", json_pack("[s]", "GPTNeoXForCausalLM"));
        json_object_set_new(j, "model_type", json_string("gpt_neox"));
        json_object_set_new(j, "layer_norm_eps", json_real(c->norm_eps));
        json_object_set_new(j, "rotary_pct", json_real((double)c->rot_dim / c->head_dim));
        json_object_set_new(j, "rotary_emb_base", json_real(c->rope_theta));
        json_object_set_new(j, "use_parallel_residual", json_boolean(c->parallel_residual));
        json_object_set_new(j, "hidden_act", json_string("gelu"));
        json_object_set_new(j, "attention_bias", json_true());
    }
    json_object_set_new(j, "hidden_size", json_integer(c->d));
    json_object_set_new(j, "num_hidden_layers", json_integer(c->n_layers));
    json_object_set_new(j, "num_attention_heads", json_integer(c->n_heads));
    json_object_set_new(j, "intermediate_size", json_integer(c->d_ff));
    json_object_set_new(j, "vocab_size", json_integer(c->vocab));
    json_object_set_new(j, "max_position_embeddings", json_integer(c->max_pos ? c->max_pos : 2048));
    json_object_set_new(j, "tie_word_embeddings", json_boolean(c->tied));
    json_object_set_new(j, "torch_dtype", json_string("float32"));
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(j);
    return s;
}

int ckpt_write(const char *dir, const model_config *c, const ckpt_entry *e, int n,
               float *const *data, ibc_err *err) {
    int rc = io_mkdirs(dir, err);
    if (rc) return rc;
    char path[IBC_PATH_NAME_MAX];
    if ((rc = io_join(path, sizeof path, dir, "config.json", err))) return rc;
    char *js = ckpt_config_json(c); // jansson's own allocation: may be NULL
    io_file w;
    if (!js) return ibc_fail(err, IBC_ESYS, "%s: out of memory", path);
    if ((rc = io_begin(&w, path, err)) == 0) {
        fputs(js, w.f);
        fputc('\n', w.f);
        rc = io_commit(&w, err);
    }
    free(js);
    if (rc) return rc;
    if ((rc = io_join(path, sizeof path, dir, "model.safetensors", err))) return rc;
    st_wtensor *t = xcalloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; i++) {
        t[i].name = e[i].name;
        t[i].ndim = e[i].ndim;
        t[i].shape[0] = e[i].shape[0];
        t[i].shape[1] = e[i].shape[1];
        t[i].data = data[i];
    }
    rc = st_write_f32(path, t, n, err);
    free(t);
    return rc;
}

int ckpt_write_random(const char *dir, const model_config *c, uint64_t seed, ibc_err *err) {
    ckpt_entry *e;
    int n, rc = ckpt_layout(c, &e, &n, err);
    if (rc) return rc;
    float **data = xcalloc((size_t)n, sizeof(float *));
    rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        data[i] = xmalloc(sizeof(float) * (size_t)e[i].numel);
        double sd = e[i].kind == CKPT_EMBED ? 1.0 : 1.0 / sqrt((double)e[i].shape[1]);
        for (int64_t k = 0; k < e[i].numel; k++)
            data[i][k] = e[i].kind == CKPT_NORM ? 1.0f : e[i].kind == CKPT_BIAS ? 0.0f : (float)(sd * rng_normal(&r));
    }
    rc = ckpt_write(dir, c, e, n, data, err);
    for (int i = 0; i < n; i++) free(data[i]);
    free(data);
    free(e);
    return rc;
}

void ckpt_set_family(model_config *c, model_arch arch) {
    int neox = arch == ARCH_GPT_NEOX;
    c->arch = neox ? ARCH_GPT_NEOX : ARCH_LLAMA;
    c->tied = !neox;
    c->gated_mlp = !neox;
    c->parallel_residual = neox;
}

void ckpt_default_config(model_config *c, model_arch arch) {
    *c = (model_config){.d = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .d_ff = 128, .vocab = 512,
                        .norm_eps = 1e-5f, .rope_theta = 10000, .max_pos = 2048};
    ckpt_set_family(c, arch);
}

int ckpt_finish_config(model_config *c, ibc_err *err) {
    if (c->d < 1 || c->d > IBC_MAX_WIDTH || c->d_ff < 1 || c->d_ff > IBC_MAX_WIDTH || c->n_layers < 1 ||
        c->n_layers > IBC_MAX_LAYERS || c->n_heads < 1 || c->n_heads > IBC_MAX_HEADS || c->n_kv_heads < 1 ||
        c->vocab < 1 || c->vocab > IBC_MAX_VOCAB)
        return ibc_fail(err, IBC_EINPUT, "ckpt: a size is outside its limits (limits.h)");
    if (c->arch == ARCH_GPT_NEOX) c->n_kv_heads = c->n_heads;
    if (c->d % c->n_heads || c->n_heads % c->n_kv_heads)
        return ibc_fail(err, IBC_EINPUT, "ckpt: heads (%d) must divide d (%d) and kv heads (%d) must divide heads",
                        c->n_heads, c->d, c->n_kv_heads);
    c->head_dim = c->d / c->n_heads;
    c->rot_dim = c->arch == ARCH_GPT_NEOX ? (c->head_dim / 4) & ~1 : c->head_dim; // HF: int(head_dim * 0.25), even
    return 0;
}
