// tok_text: UTF-8 and byte-level helpers shared by the tokenizer's rooms.
#include <utf8proc.h>

#include "tok_internal.h"

// GPT-2's byte <-> printable character table (bytes_to_unicode).
uint32_t tok_byte2cp[256];
int tok_cp2byte[324];

void tok_init_bytemap(void) {
    static int done;
    if (done) return;
    int n = 0;
    for (int i = 0; i < 324; i++) tok_cp2byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
        tok_byte2cp[b] = keep ? (uint32_t)b : (uint32_t)(256 + n++);
        tok_cp2byte[tok_byte2cp[b]] = b;
    }
    done = 1;
}

void tok_add_cp(sbuf *b, uint32_t cp) {
    utf8proc_uint8_t tmp[4];
    utf8proc_ssize_t k = utf8proc_encode_char((utf8proc_int32_t)cp, tmp);
    sb_add(b, tmp, (size_t)k);
}

int tok_is_space(const char *s, size_t n, size_t i, size_t *k) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t m = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
    if (m <= 0) return 0;
    *k = (size_t)m;
    return utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS || cp == '\t' || cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c ||
           cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

// Copies the runs between matches whole: memmem finds the next `from` (the leftmost, so the
// result is the left-to-right, non-overlapping replacement) where a memcmp at every byte cost
// a call per byte of text.
void tok_replace_literal(const char *s, size_t n, const char *from, size_t fn, const char *to, size_t tn, sbuf *out) {
    sb_add(out, "", 0);
    for (size_t i = 0; i < n;) {
        const char *hit = fn ? memmem(s + i, n - i, from, fn) : NULL;
        size_t j = hit ? (size_t)(hit - s) : n;
        sb_add(out, s + i, j - i);
        if (!hit) break;
        sb_add(out, to, tn);
        i = j + fn;
    }
}

// ASCII bytes are valid characters on their own: they are skipped eight at a time, and only
// the rest goes through utf8proc's decoder (which rejects overlong forms and surrogates).
size_t tok_utf8_prefix(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint64_t w;
        if (i + 8 <= n && (memcpy(&w, s + i, 8), !(w & 0x8080808080808080ULL))) {
            i += 8;
            continue;
        }
        if (!((unsigned char)s[i] & 0x80)) {
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return i;
        i += (size_t)k;
    }
    return n;
}
