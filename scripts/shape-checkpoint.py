#!/usr/bin/python3
"""A checkpoint folder of a real model's shape for `ibc plan`, without its weights.

usage: shape-checkpoint.py olmo2-7b|olmo2-32b DIR

Writes DIR/config.json (the model's published sizes) and DIR/model.safetensors whose header
lists every tensor in BF16 at its real shape and offsets; the data part is a sparse hole
(truncate), so the file has the real size on disk's books and takes no space. `ibc plan`
reads only config.json and the headers, so it sizes a paper-scale job exactly; the folder
cannot be run (every weight is zero).
"""
import json, os, struct, sys

SHAPES = {  # OLMo2 model cards: hidden, layers, heads, kv heads, intermediate, vocab
    'olmo2-7b': (4096, 32, 32, 32, 11008, 100352),
    'olmo2-32b': (5120, 64, 40, 8, 27648, 100352),
}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in SHAPES:
        sys.exit(__doc__)
    d, L, H, KV, F, V = SHAPES[sys.argv[1]]
    out = sys.argv[2]
    D = d // H
    os.makedirs(out, exist_ok=True)
    cfg = {'architectures': ['Olmo2ForCausalLM'], 'model_type': 'olmo2', 'hidden_size': d, 'num_hidden_layers': L,
           'num_attention_heads': H, 'num_key_value_heads': KV, 'intermediate_size': F, 'vocab_size': V,
           'max_position_embeddings': 4096, 'rms_norm_eps': 1e-6, 'rope_theta': 500000, 'hidden_act': 'silu',
           'attention_bias': False, 'tie_word_embeddings': False, 'torch_dtype': 'bfloat16'}
    json.dump(cfg, open(os.path.join(out, 'config.json'), 'w'), indent=1)
    t = [('model.embed_tokens.weight', [V, d])]
    for i in range(L):
        p = 'model.layers.%d.' % i
        t += [(p + 'self_attn.q_proj.weight', [H * D, d]), (p + 'self_attn.k_proj.weight', [KV * D, d]),
              (p + 'self_attn.v_proj.weight', [KV * D, d]), (p + 'self_attn.o_proj.weight', [d, H * D]),
              (p + 'self_attn.q_norm.weight', [H * D]), (p + 'self_attn.k_norm.weight', [KV * D]),
              (p + 'mlp.gate_proj.weight', [F, d]), (p + 'mlp.up_proj.weight', [F, d]),
              (p + 'mlp.down_proj.weight', [d, F]), (p + 'post_attention_layernorm.weight', [d]),
              (p + 'post_feedforward_layernorm.weight', [d])]
    t += [('model.norm.weight', [d]), ('lm_head.weight', [V, d])]
    header, off = {}, 0
    for name, shape in t:
        n = 2
        for s in shape:
            n *= s
        header[name] = {'dtype': 'BF16', 'shape': shape, 'data_offsets': [off, off + n]}
        off += n
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    with open(os.path.join(out, 'model.safetensors'), 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h)
        f.truncate(8 + len(h) + off)
    print('shape-checkpoint: %s in %s: %.2f GB of BF16 weights (sparse)' % (sys.argv[1], out, off / 1e9), file=sys.stderr)


main()
