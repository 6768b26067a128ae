// Writes tests/tokenizer-ref/: small tokenizer.json variants (built from fuzz/tiny_tokenizer.json)
// that exercise the normalizers, pre-tokenizers, model flags and decoders no shared fixture
// covers, and for each the ids and decodes of Hugging Face's reference tokenizers library.
// Run by hand, not by the tests (it needs the npm package):
//   npm install tokenizers@0.23.2 && node scripts/tokenizer-goldens.js
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

const root = path.join(__dirname, '..');
const base = JSON.parse(fs.readFileSync(path.join(root, 'fuzz/tiny_tokenizer.json'), 'utf8'));
const clone = (o) => JSON.parse(JSON.stringify(o));

// A vocabulary with letters, digits, punctuation and a few merges, so BPE has work to do.
function vocab() {
  const v = { '<unk>': 0, '<s>': 1, '\u2581': 2 };
  let id = 3;
  for (const c of 'abcdefghijklmnopqrstuvwxyz0123456789.,!?-\u03c3\u03c2\u03bf\u03b4\u03b1\u0307') v[c] = id++;
  for (let b = 0; b < 256; b++) v['<0x' + b.toString(16).toUpperCase().padStart(2, '0') + '>'] = id++;
  const merges = [['t', 'h'], ['th', 'e'], ['\u2581', 'th'], ['\u2581', 'the'], ['i', 'n'], ['in', 'g'], ['\u2581', 'a'], ['e', 'r']];
  for (const [a, b] of merges) v[a + b] = v[a + b] ?? id++;
  v['[x]'] = id++;
  return { v, merges };
}

function variant(name, edit) {
  const t = clone(base);
  const { v, merges } = vocab();
  t.model.vocab = v;
  t.model.merges = merges;
  t.added_tokens[2].id = v['[x]'];
  edit(t);
  return [name, t];
}

const variants = [
  variant('pipeline', () => {}),
  variant('splits', (t) => {
    t.normalizer = { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Lowercase' }] };
    t.pre_tokenizer = { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: '\\s+' }, behavior: 'Removed', invert: false },
      { type: 'Split', pattern: { String: '-' }, behavior: 'MergedWithNext', invert: false },
      { type: 'Split', pattern: { Regex: '[a-z]+' }, behavior: 'Contiguous', invert: true },
      { type: 'Digits', individual_digits: false }] };
  }),
  variant('metaspace', (t) => {
    t.normalizer = { type: 'NFKC' };
    t.pre_tokenizer = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: false };
    t.decoder = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true };
    t.model.fuse_unk = false;
  }),
  variant('never', (t) => {
    t.normalizer = { type: 'Sequence', normalizers: [{ type: 'Lowercase' }, { type: 'Strip', strip_left: true, strip_right: true }] };
    t.pre_tokenizer = { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: '\\d' }, behavior: 'MergedWithPrevious', invert: false },
      { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'never', split: true }] };
    t.model.byte_fallback = false;
  }),
];

const texts = [
  'Hello, World!', 'the thing', 'THE THING is in the ring', '  leading and trailing  ', 'a\tb\nc\r\nd',
  'İstanbul', 'ΟΔΟΣ ΣΑ Σ', 'ὈΔΥΣΣΕΎΣ.', 'ＡＢＣ ﬁne ①②', 'café cafe\u0301', 'x-y-z -- -a-', '12345 6.78 9,0',
  '[x] a[x]b [x]x x[x]', '<s>hi <s> there<s>', 'emoji \ud83d\ude00\ud83d\udc4d\ud83c\udffd', '\u00a0nbsp\u2003em\u3000ideo',
  'mixed CASE Words', 'the  the   the', '', ' ', 'ab ab ab', 'ing thing bring', 'é', '\u0130\u0307', 'ς σ Σ.',
];

const outDir = path.join(root, 'tests/tokenizer-ref');
fs.mkdirSync(outDir, { recursive: true });
(async () => {
  for (const [name, t] of variants) {
    const file = path.join(outDir, name + '.json');
    fs.writeFileSync(file, JSON.stringify(t, null, 1) + '\n');
    const tok = Tokenizer.fromFile(file);
    const lines = [];
    for (const text of texts) {
      const d = await tok.encode(text, null, { addSpecialTokens: true });
      const n = await tok.encode(text, null, { addSpecialTokens: false });
      lines.push(JSON.stringify({ text, ids_default: d.getIds(), ids_nospecial: n.getIds(),
        decoded_nospecial: await tok.decode(n.getIds(), false) }));
    }
    fs.writeFileSync(path.join(outDir, name + '.ids.jsonl'), lines.join('\n') + '\n');
    console.log(name, lines.length);
  }
})().catch((e) => { console.error(e); process.exit(1); });
