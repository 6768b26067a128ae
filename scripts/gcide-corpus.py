#!/usr/bin/python3
"""Real-English corpus for the rehearsal (docs/scaling.md): GCIDE dictionary entries as JSONL.

usage: gcide-corpus.py DOCUMENTS OUT.jsonl [CHARS]

Reads Debian's dict-gcide (/usr/share/dictd/gcide.dict.dz, installed by scripts/install-deps.sh),
keeps each entry's headword and definition text (pronunciation marks \\...\\ and source tags such
as [1913 Webster] removed, whitespace collapsed), joins consecutive entries into documents of at
least CHARS characters (default 2600: about 512 GPT-NeoX tokens of this text, so that nearly
every document fills max_length = 512), and writes DOCUMENTS of them evenly spaced over the
whole dictionary (A to Z), one {"text": ...} per line. Deterministic: same inputs, same bytes.
"""
import gzip, json, re, sys

SRC = '/usr/share/dictd/gcide.dict.dz'  # dictzip is gzip-compatible


def entries(text):
    pron = re.compile(r'\\[^\\\n]*\\')
    tag = re.compile(r'\[(?:1913 Webster|PJC|Century Dict\.|Webster 1913 Suppl\.|WordNet 1\.5|RG|[A-Z]{2,4})\]')
    for block in text.split('\n\n'):
        s = tag.sub('', pron.sub('', block))
        s = ' '.join(s.split())
        if len(s) > 40 and not any(w in s for w in ('GCIDE', 'GNU ', '====', '00-database')):  # licence text
            yield s


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    n, out, chars = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]) if len(sys.argv) == 4 else 2600
    with gzip.open(SRC, 'rt', encoding='utf-8', errors='replace') as f:
        text = f.read()
    docs, cur = [], []
    size = 0
    for e in entries(text):
        cur.append(e)
        size += len(e) + 1
        if size >= chars:
            docs.append('\n'.join(cur))
            cur, size = [], 0
    if n > len(docs):
        sys.exit('gcide-corpus: only %d documents of %d characters in %s' % (len(docs), chars, SRC))
    with open(out, 'w', encoding='utf-8') as f:
        for i in range(n):
            f.write(json.dumps({'text': docs[i * len(docs) // n]}, ensure_ascii=False) + '\n')
    print('gcide-corpus: %d of %d documents (%d+ characters each) -> %s' % (n, len(docs), chars, out), file=sys.stderr)


main()
