#!/usr/bin/env python3
"""bench/to-bf16.py SRC DST: a checkpoint folder as most published ones are, from an F32 one.

Every tensor of SRC/model.safetensors is rounded to BF16 (to nearest, ties to even, as
torch's .to(torch.bfloat16)), and the tensors are stored in name order, as the safetensors
writer of Hugging Face stores them (so q_proj, k_proj and v_proj are not adjacent in q, k, v
order, and ibc builds the fused matrices per layer instead of using the map in place).
config.json is copied with torch_dtype "bfloat16". Used by bench/job.sh (DTYPES=bf16);
needs numpy (Debian's python3-numpy: run it with /usr/bin/python3).
"""
import json
import os
import struct
import sys

import numpy as np


def main(src, dst):
    with open(os.path.join(src, 'model.safetensors'), 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        tensors = {}
        for name, t in header.items():
            if name == '__metadata__':
                continue
            if t['dtype'] != 'F32':
                sys.exit('%s: %s is %s, not F32' % (src, name, t['dtype']))
            a, b = t['data_offsets']
            f.seek(base + a)
            u = np.frombuffer(f.read(b - a), dtype='<u4')
            r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype('<u2')  # round to nearest even
            tensors[name] = (t['shape'], r.tobytes())
    out, off = {}, 0
    for name in sorted(tensors):
        shape, data = tensors[name]
        out[name] = {'dtype': 'BF16', 'shape': shape, 'data_offsets': [off, off + len(data)]}
        off += len(data)
    h = json.dumps(out, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(dst, 'model.safetensors'), 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h)
        for name in sorted(tensors):
            f.write(tensors[name][1])
    with open(os.path.join(src, 'config.json')) as f:
        cfg = json.load(f)
    cfg['torch_dtype'] = 'bfloat16'
    with open(os.path.join(dst, 'config.json'), 'w') as f:
        json.dump(cfg, f, indent=2)


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit('usage: to-bf16.py SRC DST')
    main(sys.argv[1], sys.argv[2])
