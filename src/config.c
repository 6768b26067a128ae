#include "ibc/config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibc/io.h"
#include "ibc/limits.h"

static const char *ARCH_NAMES[] = {"llama", "mistral", "qwen2", "gpt_neox", "gpt2", "olmo2", "gemma"};

const char *config_arch_name(model_arch a) { return ARCH_NAMES[a]; }

typedef struct {
    json_t *root;
    const char *name;
    ibc_err *err;
} cfg;

// Integer key: required (def < 0 means required) or defaulted; null counts as absent.
static int get_int(cfg *c, const char *key, long long def, long long lo, long long hi, int *out) {
    json_t *v = json_object_get(c->root, key);
    long long x;
    if (!v || json_is_null(v)) {
        if (def < 0) return ibc_fail(c->err, IBC_EINPUT, "%s: missing key %s", c->name, key);
        x = def;
    } else if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else {
        return ibc_fail(c->err, IBC_EINPUT, "%s: key %s is not an integer", c->name, key);
    }
    if (x < lo || x > hi)
        return ibc_fail(c->err, IBC_EINPUT, "%s: key %s = %lld is outside [%lld, %lld]", c->name, key,
                        x, lo, hi);
    *out = (int)x;
    return 0;
}

static int get_num(cfg *c, const char *key, double def, double lo, double hi, double *out) {
    json_t *v = json_object_get(c->root, key);
    double x = def;
    if (v && !json_is_null(v)) {
        if (!json_is_number(v)) return ibc_fail(c->err, IBC_EINPUT, "%s: key %s is not a number", c->name, key);
        x = json_number_value(v);
    }
    if (!(x >= lo && x <= hi))
        return ibc_fail(c->err, IBC_EINPUT, "%s: key %s = %g is outside [%g, %g]", c->name, key, x, lo, hi);
    *out = x;
    return 0;
}

static int get_bool(cfg *c, const char *key, int def, int *out) {
    json_t *v = json_object_get(c->root, key);
    if (!v || json_is_null(v)) { *out = def; return 0; }
    if (!json_is_boolean(v)) return ibc_fail(c->err, IBC_EINPUT, "%s: key %s is not a boolean", c->name, key);
    *out = json_is_true(v);
    return 0;
}

static int get_act(cfg *c, const char *key, const char *def, model_act *out) {
    json_t *v = json_object_get(c->root, key);
    const char *s = (v && !json_is_null(v)) ? json_string_value(v) : def;
    if (!s) return ibc_fail(c->err, IBC_EINPUT, "%s: key %s is not a string", c->name, key);
    if (!strcmp(s, "silu") || !strcmp(s, "swish")) *out = ACT_SILU;
    else if (!strcmp(s, "gelu")) *out = ACT_GELU;
    else if (!strcmp(s, "gelu_new") || !strcmp(s, "gelu_pytorch_tanh")) *out = ACT_GELU_TANH;
    else return ibc_fail(c->err, IBC_EINPUT, "%s: key %s: unsupported activation %.40s", c->name, key, s);
    return 0;
}

// rope_scaling: null, {"rope_type"|"type": "default"} or llama3; anything else is refused.
static int get_rope_scaling(cfg *c, model_config *m) {
    json_t *rs = json_object_get(c->root, "rope_scaling");
    if (!rs || json_is_null(rs)) return 0;
    if (!json_is_object(rs)) return ibc_fail(c->err, IBC_EINPUT, "%s: key rope_scaling is not an object", c->name);
    json_t *t = json_object_get(rs, "rope_type");
    if (!t) t = json_object_get(rs, "type");
    const char *type = json_string_value(t);
    if (!type) return ibc_fail(c->err, IBC_EINPUT, "%s: missing key rope_scaling.rope_type", c->name);
    if (!strcmp(type, "default")) return 0;
    if (strcmp(type, "llama3") != 0)
        return ibc_fail(c->err, IBC_EINPUT, "%s: key rope_scaling.rope_type: unsupported rope type %.40s",
                        c->name, type);
    cfg sub = {rs, c->name, c->err};
    int rc;
    if ((rc = get_num(&sub, "factor", NAN, 1e-6, 1e6, &m->rs_factor)) ||
        (rc = get_num(&sub, "low_freq_factor", NAN, 1e-6, 1e6, &m->rs_low)) ||
        (rc = get_num(&sub, "high_freq_factor", NAN, 1e-6, 1e6, &m->rs_high)) ||
        (rc = get_num(&sub, "original_max_position_embeddings", NAN, 1, 1e9, &m->rs_orig)))
        return ibc_fail(c->err, IBC_EINPUT, "%s: rope_scaling: %s", c->name, strchr(c->err->msg, ':') + 2);
    if (m->rs_high <= m->rs_low)
        return ibc_fail(c->err, IBC_EINPUT, "%s: rope_scaling: high_freq_factor must exceed low_freq_factor", c->name);
    m->rope_llama3 = 1;
    return 0;
}

#define MAXD IBC_MAX_WIDTH
#define MAX_POS (1 << 24) // learned positions (GPT-2): far above any context length
#define TRY(x) do { if ((rc = (x)) != 0) return rc; } while (0)

static int parse_family(cfg *c, model_config *m) {
    int rc, pr;
    double theta;
    if (m->arch == ARCH_GPT2) {
        TRY(get_int(c, "n_embd", -1, 1, MAXD, &m->d));
        TRY(get_int(c, "n_layer", -1, 1, IBC_MAX_LAYERS, &m->n_layers));
        TRY(get_int(c, "n_head", -1, 1, IBC_MAX_HEADS, &m->n_heads));
        TRY(get_int(c, "n_inner", 4LL * m->d, 1, 64LL * MAXD, &m->d_ff));
        TRY(get_int(c, "vocab_size", -1, 1, IBC_MAX_VOCAB, &m->vocab));
        TRY(get_int(c, "n_positions", -1, 1, MAX_POS, &m->max_pos));
        TRY(get_num(c, "layer_norm_epsilon", 1e-5, 0, 1, &theta));
        m->norm_eps = (float)theta;
        TRY(get_act(c, "activation_function", "gelu_new", &m->act));
        m->n_kv_heads = m->n_heads;
        m->qkv_bias = m->o_bias = m->mlp_bias = 1;
        m->norm = NORM_LAYER;
        TRY(get_bool(c, "tie_word_embeddings", 1, &m->tied));
        if (m->d % m->n_heads) return ibc_fail(c->err, IBC_EINPUT, "%s: n_embd is not a multiple of n_head", c->name);
        m->head_dim = m->d / m->n_heads;
        return 0;
    }
    TRY(get_int(c, "hidden_size", -1, 1, MAXD, &m->d));
    TRY(get_int(c, "num_hidden_layers", -1, 1, IBC_MAX_LAYERS, &m->n_layers));
    TRY(get_int(c, "num_attention_heads", -1, 1, IBC_MAX_HEADS, &m->n_heads));
    TRY(get_int(c, "intermediate_size", -1, 1, 64LL * MAXD, &m->d_ff));
    TRY(get_int(c, "vocab_size", -1, 1, IBC_MAX_VOCAB, &m->vocab));
    if (m->arch == ARCH_GPT_NEOX) {
        double pct;
        TRY(get_num(c, "rotary_pct", 0.25, 0, 1, &pct));
        TRY(get_num(c, "rope_theta", 10000, 1, 1e12, &theta));
        TRY(get_num(c, "rotary_emb_base", theta, 1, 1e12, &m->rope_theta)); // HF copies it to rope_theta
        TRY(get_num(c, "layer_norm_eps", 1e-5, 0, 1, &theta));
        m->norm_eps = (float)theta;
        TRY(get_bool(c, "use_parallel_residual", 1, &m->parallel_residual));
        TRY(get_bool(c, "attention_bias", 1, &pr));
        m->qkv_bias = m->o_bias = pr;
        m->mlp_bias = 1;
        TRY(get_act(c, "hidden_act", "gelu", &m->act));
        TRY(get_bool(c, "tie_word_embeddings", 0, &m->tied));
        m->n_kv_heads = m->n_heads;
        m->norm = NORM_LAYER;
        if (m->d % m->n_heads) return ibc_fail(c->err, IBC_EINPUT, "%s: hidden_size is not a multiple of num_attention_heads", c->name);
        m->head_dim = m->d / m->n_heads;
        m->rot_dim = (int)(m->head_dim * pct); // int(head_size * rotary_pct), as HF
        m->rot_dim -= m->rot_dim % 2;
        return get_rope_scaling(c, m);
    }
    // The Llama-like families: llama, mistral, qwen2, olmo2, gemma.
    int gemma = m->arch == ARCH_GEMMA;
    TRY(get_int(c, "num_key_value_heads", m->n_heads, 1, m->n_heads, &m->n_kv_heads));
    int hd_default = gemma ? 256 : m->d / m->n_heads;
    if (m->arch == ARCH_QWEN2 || m->arch == ARCH_OLMO2) m->head_dim = hd_default; // no head_dim key in HF
    else TRY(get_int(c, "head_dim", hd_default, 1, MAXD, &m->head_dim));
    if (m->head_dim < 2 || m->n_heads % m->n_kv_heads)
        return ibc_fail(c->err, IBC_EINPUT, "%s: num_attention_heads is not a multiple of num_key_value_heads, or head_dim < 2", c->name);
    TRY(get_num(c, "rms_norm_eps", m->arch == ARCH_OLMO2 ? 1e-5 : 1e-6, 0, 1, &theta));
    m->norm_eps = (float)theta;
    TRY(get_num(c, "rope_theta", 10000, 1, 1e12, &m->rope_theta));
    TRY(get_rope_scaling(c, m));
    m->rot_dim = m->head_dim;
    m->norm = NORM_RMS;
    m->gated_mlp = 1;
    TRY(get_bool(c, "tie_word_embeddings", gemma, &m->tied));
    switch (m->arch) {
    case ARCH_LLAMA:
    case ARCH_MISTRAL:
    case ARCH_OLMO2:
        TRY(get_bool(c, "attention_bias", 0, &pr));
        m->qkv_bias = m->o_bias = pr;
        TRY(get_bool(c, "mlp_bias", 0, &m->mlp_bias));
        if (m->arch == ARCH_OLMO2) m->post_norm = 1, m->mlp_bias = 0;
        TRY(get_act(c, "hidden_act", "silu", &m->act));
        if (m->arch == ARCH_MISTRAL) // 4096: transformers' MistralConfig default
            TRY(get_int(c, "sliding_window", 4096, 0, 1 << 30, &m->sliding_window));
        if (json_is_null(json_object_get(c->root, "sliding_window"))) m->sliding_window = 0;
        break;
    case ARCH_QWEN2:
        m->qkv_bias = 1;
        TRY(get_act(c, "hidden_act", "silu", &m->act));
        TRY(get_bool(c, "use_sliding_window", 0, &pr));
        if (pr) return ibc_fail(c->err, IBC_EINPUT, "%s: key use_sliding_window: true is not supported", c->name);
        break;
    case ARCH_GEMMA:
        m->norm_plus_one = 1;
        m->embed_scale = 1;
        TRY(get_act(c, "hidden_activation", "gelu_pytorch_tanh", &m->act)); // HF ignores hidden_act
        break;
    default: break;
    }
    return 0;
}

int config_parse(const char *text, size_t len, const char *name, model_config *m, ibc_err *err) {
    memset(m, 0, sizeof *m);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return ibc_fail(err, IBC_EINPUT, "%s: not valid JSON: %s (line %d)", name, je.text, je.line);
    cfg c = {root, name, err};
    int rc = 0;
    json_t *mt = json_object_get(root, "model_type");
    const char *type = json_string_value(mt);
    if (!json_is_object(root)) {
        rc = ibc_fail(err, IBC_EINPUT, "%s: not a JSON object", name);
    } else if (!type) {
        rc = ibc_fail(err, IBC_EINPUT, "%s: missing key model_type", name);
    } else {
        rc = ibc_fail(err, IBC_EINPUT, "%s: key model_type: unsupported architecture %.40s", name, type);
        for (int a = 0; a <= ARCH_GEMMA; a++)
            if (!strcmp(type, ARCH_NAMES[a])) { m->arch = (model_arch)a; rc = 0; }
        if (rc == 0) rc = parse_family(&c, m);
        const char *dt = json_string_value(json_object_get(root, "torch_dtype"));
        snprintf(m->dtype, sizeof m->dtype, "%s", dt ? dt : "?");
    }
    if (rc == 0 && m->rot_dim % 2)
        rc = ibc_fail(err, IBC_EINPUT, "%s: rotary dimension %d is odd", name, m->rot_dim);
    // Bound the work: every per-layer buffer is at most a few GB.
    if (rc == 0 && ((long long)m->n_heads * m->head_dim > 4LL * MAXD || (long long)m->d * m->vocab > (1LL << 36)))
        rc = ibc_fail(err, IBC_EINPUT, "%s: sizes are implausibly large", name);
    json_decref(root);
    return rc;
}

static int parse_cb(void *m, const char *text, size_t len, const char *path, ibc_err *err) {
    return config_parse(text, len, path, m, err);
}

int config_load(const char *path, model_config *m, ibc_err *err) { return io_parse_file(path, parse_cb, m, err); }
