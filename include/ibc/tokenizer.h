// tokenizer: Hugging Face tokenizer.json (model type BPE) in C, id for id the reference.
//
// Pipeline of encode(text), as the `tokenizers` library runs it:
//   1. added tokens whose `normalized` is false are matched in the raw text (leftmost-longest,
//      honouring lstrip / rstrip / single_word); the pieces between them are
//   2. normalized (NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Sequence), then
//      split on the added tokens whose `normalized` is true;
//   3. pre-tokenized (ByteLevel with its GPT-2 regex, add_prefix_space, use_regex; Split on a
//      regex or string with every behaviour and invert; Digits; Metaspace with prepend_scheme
//      and split; Sequence) into words;
//   4. each word through the BPE model (merges by rank, leftmost first; byte_fallback,
//      fuse_unk, ignore_merges, unk_token, continuing_subword_prefix, end_of_word_suffix);
//   5. with add_special, the post-processor (TemplateProcessing, ByteLevel, Sequence).
// decode(ids) maps ids to tokens and runs the decoders (ByteLevel, Metaspace, ByteFallback,
// Fuse, Strip, Replace, Sequence). Regexes run through PCRE2 (UTF, UCP, JIT).
// A section or value it does not support is an IBC_EINPUT error naming the JSON path, never a
// silently different tokenization. Texts must be valid UTF-8 (corpus readers check).
#ifndef IBC_TOKENIZER_H
#define IBC_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "ibc/err.h"

typedef struct tokenizer tokenizer;

int tok_load(const char *path, tokenizer **t, ibc_err *err);
// The same from JSON text (fuzzing, tests); `name` is used in messages.
int tok_parse(const char *json, size_t len, const char *name, tokenizer **t, ibc_err *err);
void tok_free(tokenizer *t);

// Encodes text[0..len) into *ids (malloc'd, *n ids). add_special: the post-processor's tokens.
int tok_encode(tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids, int *n, ibc_err *err);

// Decodes ids into a malloc'd UTF-8 string of *len bytes (NUL-terminated too; the text itself
// may hold U+0000); skip_special drops special tokens.
int tok_decode(const tokenizer *t, const int32_t *ids, int n, int skip_special, char **out, size_t *len, ibc_err *err);

// Largest id + 1 (model vocabulary and added tokens).
int tok_vocab_size(const tokenizer *t);

// The token string of id, or NULL.
const char *tok_token(const tokenizer *t, int32_t id);

// Trains a byte-level BPE (GPT-2's form: ByteLevel pre-tokenizer and decoder, no normalizer)
// of vocab_size ids on texts[0..n) and writes it as tokenizer.json to path. Ids 0..255 are the
// bytes, then one id per merge, and the last id is the special token <|endoftext|>. Each merge
// joins the adjacent pair that occurs most often over all words (ties: the smallest pair of
// ids), so the result depends only on the texts and vocab_size.
int tok_train_bpe(const char *const *texts, const size_t *lens, int n, int vocab_size, const char *path, ibc_err *err);

#endif
