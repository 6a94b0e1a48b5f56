/*===- tokenizer.c - Byte-level BPE and SentencePiece tokenizers --*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * Encoding goes in four steps:
 *  1. special (control and user-defined) tokens are found in the text, the
 *     longest one first at each position, scanning left to right;
 *  2. the text between them is cut into runs of valid UTF-8 and single
 *     invalid bytes; each run is split by the pre-tokenizer's regular
 *     expression (PCRE2, UTF + UCP, JIT-compiled once);
 *  3. each piece is mapped byte by byte to GPT-2's byte-to-unicode alphabet;
 *     with ignore_merges, a piece that is itself a token is that token;
 *  4. otherwise BPE: the piece starts as one symbol per byte and the adjacent
 *     pair of lowest merge rank is merged until no pair has a rank (a binary
 *     heap of candidate pairs over a linked list of symbols: O(n log n)).
 *
 * SentencePiece vocabularies ("model": "llama") skip steps 2-4: the text
 * between special tokens gets a '▁' first and each space as '▁', and is
 * merged by token scores as llama.cpp's llm_tokenizer_spm does (spm_encode).
 *
 * The JSON is read with cJSON; every field is checked before use.
 *
 *===----------------------------------------------------------------------===*/

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "bitnet_rt/tokenizer.h"
#include "internal.h"

/* The pre-tokenizers, as GGUF's tokenizer.ggml.pre names them. */
static const struct {
  const char *name;
  const char *pattern;
} pre_tokenizers[] = {
    {"llama-bpe",
     "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
     " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {"gpt-2", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| "
              "?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"},
};
#define NUM_PRE_TOKENIZERS                                                     \
  ((int)(sizeof(pre_tokenizers) / sizeof(pre_tokenizers[0])))

/* Largest number of merges accepted. */
#define MAX_MERGES (1 << 24)

typedef struct merge_slot {
  uint64_t key; /* left id << 32 | right id; EMPTY_KEY when free */
  int32_t rank;
  int32_t merged;
} merge_slot;
#define EMPTY_KEY UINT64_MAX

/* A slot of the token table: the id, and its text's hash so that a probe
 * rarely touches the text. */
typedef struct token_slot {
  uint32_t hash;
  int32_t id; /* -1 when free */
} token_slot;

typedef struct special_token {
  uint32_t len;
  int32_t id;
  unsigned char first;
} special_token;

struct bitnet_tokenizer {
  int32_t vocab_size;
  char *text_arena;     /* every token's text, each NUL-terminated */
  size_t *text_offset;  /* [vocab_size] */
  uint32_t *text_len;   /* [vocab_size] */
  uint32_t *text_hash;  /* [vocab_size] */
  uint8_t *type;        /* [vocab_size], bitnet_token_type */
  char *decoded_arena;  /* every token's decoded bytes */
  size_t *decoded_offset; /* [vocab_size] */
  uint32_t *decoded_len;  /* [vocab_size] */

  token_slot *token_table; /* open addressing over the text */
  uint32_t token_mask;
  merge_slot *merge_table;
  uint64_t merge_mask;

  uint16_t byte_to_cp[256]; /* GPT-2's bytes_to_unicode */
  int16_t cp_to_byte[512];  /* its inverse, -1 for other code points */
  char mapped[256][2];      /* byte_to_cp as UTF-8 ... */
  uint8_t mapped_len[256];  /* ... of 1 or 2 bytes */
  int32_t byte_token[256];  /* the token of each byte, -1 when none */
  int32_t unknown_id;       /* the first token of type UNKNOWN, or -1 */

  special_token *specials; /* by first byte, longest first */
  int32_t num_specials;
  int32_t special_begin[256], special_end[256];

  int32_t bos_id, eos_id, eot_id;
  int add_bos, ignore_merges;
  pcre2_code *regex; /* NULL for SentencePiece */

  /* SentencePiece ("model": "llama"). */
  int spm;
  int add_space_prefix; /* a space before text that starts a prompt or
                           follows a special token */
  float *scores;        /* [vocab_size]: merges prefer higher scores */
};

/*===----------------------------------------------------------------------===*
 * Helpers
 *===----------------------------------------------------------------------===*/

/* An INVALID_FORMAT status whose message starts with "tokenizer JSON: ". */
static bitnet_status bad_json(const char *format, ...)
    __attribute__((format(printf, 1, 2)));
static bitnet_status bad_json(const char *format, ...) {
  char message[512];
  va_list args;
  va_start(args, format);
  vsnprintf(message, sizeof(message), format, args);
  va_end(args);
  return bitnet_status_make(BITNET_STATUS_INVALID_FORMAT, "tokenizer JSON: %s",
                            message);
}

static bitnet_status out_of_memory(const char *what) {
  return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                            "tokenizer: out of memory (%s)", what);
}

/* Copies at most ~40 bytes of `s` into `out` for a message, never cutting a
 * UTF-8 character, with "..." when shortened. */
static const char *clip(char out[64], const char *s) {
  size_t n = strlen(s);
  if (n <= 40) {
    memcpy(out, s, n + 1);
    return out;
  }
  n = 40;
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
    --n;
  memcpy(out, s, n);
  memcpy(out + n, "...", 4);
  return out;
}

static const char *json_type_name(const cJSON *item) {
  if (cJSON_IsString(item))
    return "a string";
  if (cJSON_IsNumber(item))
    return "a number";
  if (cJSON_IsBool(item))
    return "a boolean";
  if (cJSON_IsNull(item))
    return "null";
  if (cJSON_IsArray(item))
    return "an array";
  if (cJSON_IsObject(item))
    return "an object";
  return "invalid";
}

/* Reads an integer in [lo, hi] from `item`; `field` names it in errors. */
static bitnet_status json_int(const cJSON *item, const char *field, int64_t lo,
                              int64_t hi, int64_t *out) {
  if (!cJSON_IsNumber(item))
    return bad_json("'%s' is %s, not an integer", field, json_type_name(item));
  double v = item->valuedouble;
  if (!isfinite(v) || v != floor(v) || v < (double)lo || v > (double)hi)
    return bad_json("'%s' is %.17g, not an integer in [%lld, %lld]", field, v,
                    (long long)lo, (long long)hi);
  *out = (int64_t)v;
  return BITNET_OK;
}

/* Reads an optional boolean `key` of `root` (default 0). */
static bitnet_status json_bool(const cJSON *root, const char *key, int *out) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
  *out = 0;
  if (item == NULL)
    return BITNET_OK;
  if (!cJSON_IsBool(item))
    return bad_json("'%s' is %s, not a boolean", key, json_type_name(item));
  *out = cJSON_IsTrue(item) ? 1 : 0;
  return BITNET_OK;
}

/* Reads an optional token id `key` of `root`: -1 when absent, null or -1. */
static bitnet_status json_token_id(const cJSON *root, const char *key,
                                   int32_t vocab_size, int32_t *out) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
  *out = -1;
  if (item == NULL || cJSON_IsNull(item))
    return BITNET_OK;
  int64_t v = 0;
  BITNET_RETURN_IF_ERROR(json_int(item, key, -1, (int64_t)vocab_size - 1, &v));
  *out = (int32_t)v;
  return BITNET_OK;
}

/* FNV-1a, 32 bits. */
static uint32_t hash_bytes(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; ++i) {
    h ^= (unsigned char)s[i];
    h *= 16777619u;
  }
  return h;
}

static uint64_t hash_pair(uint64_t key) {
  key ^= key >> 29;
  key *= 0xBF58476D1CE4E5B9ULL;
  key ^= key >> 32;
  return key;
}

/* Length of the valid UTF-8 character at s[0..n) (n > 0), or 0 when it is
 * not one: overlong forms, surrogates and code points above U+10FFFF are
 * invalid, as PCRE2 has them. */
static size_t utf8_char_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80)
    return 1;
  if (c < 0xC2)
    return 0;
  if (c < 0xE0)
    return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c < 0xF0) {
    if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
      return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0))
      return 0;
    return 3;
  }
  if (c < 0xF5) {
    if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
        (s[3] & 0xC0) != 0x80)
      return 0;
    if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))
      return 0;
    return 4;
  }
  return 0;
}

/* Decodes the code point of a valid character of `len` bytes. */
static uint32_t utf8_decode(const unsigned char *s, size_t len) {
  switch (len) {
  case 1: return s[0];
  case 2: return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
  case 3:
    return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) |
           (s[2] & 0x3F);
  default:
    return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
           ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
  }
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
 * the others for U+0100 and up, in byte order. */
static void init_byte_tables(bitnet_tokenizer *t) {
  int next = 256;
  for (int i = 0; i < 512; ++i)
    t->cp_to_byte[i] = -1;
  for (int b = 0; b < 256; ++b) {
    int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                    (b >= 0xAE && b <= 0xFF);
    unsigned cp = printable ? (unsigned)b : (unsigned)next++;
    t->byte_to_cp[b] = (uint16_t)cp;
    t->cp_to_byte[cp] = (int16_t)b;
    if (cp < 0x80) {
      t->mapped[b][0] = (char)cp;
      t->mapped_len[b] = 1;
    } else {
      t->mapped[b][0] = (char)(0xC0 | (cp >> 6));
      t->mapped[b][1] = (char)(0x80 | (cp & 0x3F));
      t->mapped_len[b] = 2;
    }
  }
}

/*===----------------------------------------------------------------------===*
 * Lookup tables
 *===----------------------------------------------------------------------===*/

static int32_t find_token(const bitnet_tokenizer *t, const char *s, size_t n) {
  uint32_t h = hash_bytes(s, n);
  for (uint32_t i = h & t->token_mask;; i = (i + 1) & t->token_mask) {
    token_slot slot = t->token_table[i];
    if (slot.id < 0)
      return -1;
    if (slot.hash == h && t->text_len[slot.id] == n &&
        memcmp(t->text_arena + t->text_offset[slot.id], s, n) == 0)
      return slot.id;
  }
}

static const merge_slot *find_merge(const bitnet_tokenizer *t, int32_t left,
                                    int32_t right) {
  uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
  for (uint64_t i = hash_pair(key) & t->merge_mask;;
       i = (i + 1) & t->merge_mask) {
    const merge_slot *slot = &t->merge_table[i];
    if (slot->key == key)
      return slot;
    if (slot->key == EMPTY_KEY)
      return NULL;
  }
}

static uint64_t table_size(uint64_t entries) {
  uint64_t size = 16;
  while (size < 2 * entries)
    size *= 2;
  return size;
}

/*===----------------------------------------------------------------------===*
 * Creation
 *===----------------------------------------------------------------------===*/

void bitnet_tokenizer_free(bitnet_tokenizer *t) {
  if (t == NULL)
    return;
  free(t->text_arena);
  free(t->text_offset);
  free(t->text_len);
  free(t->text_hash);
  free(t->type);
  free(t->decoded_arena);
  free(t->decoded_offset);
  free(t->decoded_len);
  free(t->token_table);
  free(t->merge_table);
  free(t->specials);
  free(t->scores);
  pcre2_code_free(t->regex);
  free(t);
}

/* Reads "tokens" and "token_type". */
static bitnet_status read_tokens(bitnet_tokenizer *t, const cJSON *root) {
  const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(root, "tokens");
  if (tokens == NULL)
    return bad_json("'tokens' is missing");
  if (!cJSON_IsArray(tokens))
    return bad_json("'tokens' is %s, not an array of strings",
                    json_type_name(tokens));
  int64_t n = 0;
  size_t arena_bytes = 0;
  const cJSON *item;
  cJSON_ArrayForEach(item, tokens) {
    if (!cJSON_IsString(item) || item->valuestring == NULL)
      return bad_json("'tokens[%lld]' is %s, not a string", (long long)n,
                      json_type_name(item));
    arena_bytes += strlen(item->valuestring) + 1;
    if (++n > BITNET_TOKENIZER_MAX_VOCAB)
      return bad_json("'tokens' has more than %d entries",
                      BITNET_TOKENIZER_MAX_VOCAB);
  }
  if (n == 0)
    return bad_json("'tokens' is empty");
  t->vocab_size = (int32_t)n;
  t->text_arena = malloc(arena_bytes);
  t->text_offset = malloc(sizeof(size_t) * (size_t)n);
  t->text_len = malloc(sizeof(uint32_t) * (size_t)n);
  t->text_hash = malloc(sizeof(uint32_t) * (size_t)n);
  t->type = malloc((size_t)n);
  if (!t->text_arena || !t->text_offset || !t->text_len || !t->text_hash ||
      !t->type)
    return out_of_memory("tokens");
  size_t at = 0;
  int64_t id = 0;
  cJSON_ArrayForEach(item, tokens) {
    size_t len = strlen(item->valuestring);
    if (len > UINT32_MAX - 1)
      return bad_json("'tokens[%lld]' is too long", (long long)id);
    memcpy(t->text_arena + at, item->valuestring, len + 1);
    t->text_offset[id] = at;
    t->text_len[id] = (uint32_t)len;
    t->text_hash[id] = hash_bytes(item->valuestring, len);
    t->type[id] = BITNET_TOKEN_NORMAL;
    at += len + 1;
    ++id;
  }

  const cJSON *types = cJSON_GetObjectItemCaseSensitive(root, "token_type");
  if (types != NULL) {
    if (!cJSON_IsArray(types))
      return bad_json("'token_type' is %s, not an array of integers",
                      json_type_name(types));
    int64_t k = 0;
    cJSON_ArrayForEach(item, types) {
      if (k == n)
        return bad_json("'token_type' has more entries than 'tokens' (%lld)",
                        (long long)n);
      char field[48];
      snprintf(field, sizeof(field), "token_type[%lld]", (long long)k);
      int64_t v = 0;
      BITNET_RETURN_IF_ERROR(json_int(item, field, BITNET_TOKEN_NORMAL,
                                      BITNET_TOKEN_BYTE, &v));
      t->type[k++] = (uint8_t)v;
    }
    if (k != n)
      return bad_json("'token_type' has %lld entries, 'tokens' %lld",
                      (long long)k, (long long)n);
  }
  return BITNET_OK;
}

static bitnet_status build_token_table(bitnet_tokenizer *t) {
  uint64_t size = table_size((uint64_t)t->vocab_size);
  t->token_mask = (uint32_t)(size - 1);
  t->token_table = malloc(sizeof(token_slot) * size);
  if (t->token_table == NULL)
    return out_of_memory("token table");
  for (uint64_t i = 0; i < size; ++i)
    t->token_table[i] = (token_slot){0, -1};
  for (int32_t id = 0; id < t->vocab_size; ++id) {
    const char *s = t->text_arena + t->text_offset[id];
    if (find_token(t, s, t->text_len[id]) >= 0)
      continue; /* a duplicate: the first id keeps the text */
    uint32_t i = t->text_hash[id] & t->token_mask;
    while (t->token_table[i].id >= 0)
      i = (i + 1) & t->token_mask;
    t->token_table[i] = (token_slot){t->text_hash[id], id};
  }
  return BITNET_OK;
}

/* Reads "merges": "left right" strings in rank order. */
static bitnet_status read_merges(bitnet_tokenizer *t, const cJSON *root) {
  const cJSON *merges = cJSON_GetObjectItemCaseSensitive(root, "merges");
  if (merges == NULL)
    return bad_json("'merges' is missing");
  if (!cJSON_IsArray(merges))
    return bad_json("'merges' is %s, not an array of strings",
                    json_type_name(merges));
  int64_t n = 0;
  size_t longest = 0;
  const cJSON *item;
  cJSON_ArrayForEach(item, merges) {
    if (!cJSON_IsString(item) || item->valuestring == NULL)
      return bad_json("'merges[%lld]' is %s, not a string", (long long)n,
                      json_type_name(item));
    size_t len = strlen(item->valuestring);
    if (len > longest)
      longest = len;
    if (++n > MAX_MERGES)
      return bad_json("'merges' has more than %d entries", MAX_MERGES);
  }
  uint64_t size = table_size((uint64_t)n);
  t->merge_mask = size - 1;
  t->merge_table = malloc(sizeof(merge_slot) * size);
  char *joined = malloc(longest + 1);
  if (t->merge_table == NULL || joined == NULL) {
    free(joined);
    return out_of_memory("merges");
  }
  for (uint64_t i = 0; i < size; ++i)
    t->merge_table[i].key = EMPTY_KEY;
  int64_t rank = 0;
  bitnet_status status = BITNET_OK;
  cJSON_ArrayForEach(item, merges) {
    const char *s = item->valuestring;
    char shown[64], part[64];
    /* The separator is the first space after the first byte, so that a
     * left part may itself be a space. */
    const char *space = s[0] ? strchr(s + 1, ' ') : NULL;
    if (space == NULL || space[1] == '\0') {
      status = bad_json("'merges[%lld]' is \"%s\", not \"left right\"",
                        (long long)rank, clip(shown, s));
      break;
    }
    size_t left_len = (size_t)(space - s), right_len = strlen(space + 1);
    int32_t left = find_token(t, s, left_len);
    int32_t right = find_token(t, space + 1, right_len);
    memcpy(joined, s, left_len);
    memcpy(joined + left_len, space + 1, right_len);
    joined[left_len + right_len] = '\0';
    int32_t merged = find_token(t, joined, left_len + right_len);
    if (left < 0 || right < 0 || merged < 0) {
      const char *missing = joined;
      if (left < 0) {
        memcpy(joined, s, left_len);
        joined[left_len] = '\0';
      } else if (right < 0) {
        missing = space + 1;
      }
      status = bad_json("'merges[%lld]' (\"%s\") names \"%s\", which is not "
                        "a token",
                        (long long)rank, clip(shown, s), clip(part, missing));
      break;
    }
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    uint64_t i = hash_pair(key) & t->merge_mask;
    while (t->merge_table[i].key != EMPTY_KEY && t->merge_table[i].key != key)
      i = (i + 1) & t->merge_mask;
    if (t->merge_table[i].key == EMPTY_KEY) /* a repeat keeps its first rank */
      t->merge_table[i] = (merge_slot){key, (int32_t)rank, merged};
    ++rank;
  }
  free(joined);
  return status;
}

/* Reads "scores" (SentencePiece): one number per token. */
static bitnet_status read_scores(bitnet_tokenizer *t, const cJSON *root) {
  const cJSON *scores = cJSON_GetObjectItemCaseSensitive(root, "scores");
  if (scores == NULL)
    return bad_json("'scores' is missing (a SentencePiece vocabulary needs "
                    "one per token)");
  if (!cJSON_IsArray(scores))
    return bad_json("'scores' is %s, not an array of numbers",
                    json_type_name(scores));
  t->scores = malloc(sizeof(float) * (size_t)t->vocab_size);
  if (t->scores == NULL)
    return out_of_memory("scores");
  int64_t k = 0;
  const cJSON *item;
  cJSON_ArrayForEach(item, scores) {
    if (k == t->vocab_size)
      return bad_json("'scores' has more entries than 'tokens' (%lld)",
                      (long long)t->vocab_size);
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
      return bad_json("'scores[%lld]' is %s, not a finite number",
                      (long long)k, json_type_name(item));
    /* GGUF stores them as 32-bit floats, and llama.cpp compares them so. */
    t->scores[k++] = (float)item->valuedouble;
  }
  if (k != t->vocab_size)
    return bad_json("'scores' has %lld entries, 'tokens' %lld", (long long)k,
                    (long long)t->vocab_size);
  return BITNET_OK;
}

static int by_first_byte_longest(const void *a, const void *b) {
  const special_token *x = a, *y = b;
  if (x->first != y->first)
    return x->first < y->first ? -1 : 1;
  if (x->len != y->len)
    return x->len > y->len ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* Whether token `id` is matched in the text before the rest is encoded:
 * control and user-defined tokens, and with SentencePiece the unknown token
 * too (as llama.cpp does: "<unk>"). */
static int is_special(const bitnet_tokenizer *t, int32_t id) {
  return (t->type[id] == BITNET_TOKEN_CONTROL ||
          t->type[id] == BITNET_TOKEN_USER_DEFINED ||
          (t->spm && t->type[id] == BITNET_TOKEN_UNKNOWN)) &&
         t->text_len[id] > 0;
}

static bitnet_status build_specials(bitnet_tokenizer *t) {
  int32_t n = 0;
  for (int32_t id = 0; id < t->vocab_size; ++id)
    if (is_special(t, id))
      ++n;
  t->specials = malloc(sizeof(special_token) * (size_t)(n ? n : 1));
  if (t->specials == NULL)
    return out_of_memory("special tokens");
  n = 0;
  for (int32_t id = 0; id < t->vocab_size; ++id)
    if (is_special(t, id))
      t->specials[n++] = (special_token){
          t->text_len[id], id,
          (unsigned char)t->text_arena[t->text_offset[id]]};
  qsort(t->specials, (size_t)n, sizeof(special_token), by_first_byte_longest);
  t->num_specials = n;
  for (int b = 0; b < 256; ++b)
    t->special_begin[b] = t->special_end[b] = 0;
  for (int32_t i = n - 1; i >= 0; --i)
    t->special_begin[t->specials[i].first] = i;
  for (int32_t i = 0; i < n; ++i)
    t->special_end[t->specials[i].first] = i + 1;
  return BITNET_OK;
}

static int hex_digit(unsigned char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                : -1;
}

/* What a SentencePiece token decodes to, as llama.cpp has it: a normal
 * token's text with each U+2581 as a space, a byte token <0xXX> its byte,
 * control, unknown and user-defined tokens their text, unused tokens
 * nothing. Writes at most text_len[id] bytes at `out`; -1 for a byte token
 * that is not <0xXX>. */
static int64_t spm_decoded(const bitnet_tokenizer *t, int32_t id, char *out) {
  const unsigned char *s =
      (const unsigned char *)t->text_arena + t->text_offset[id];
  size_t n = t->text_len[id], at = 0;
  switch (t->type[id]) {
  case BITNET_TOKEN_BYTE: {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
      return -1;
    int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
    if (hi < 0 || lo < 0)
      return -1;
    out[0] = (char)(hi << 4 | lo);
    return 1;
  }
  case BITNET_TOKEN_NORMAL:
    for (size_t i = 0; i < n;) {
      if (i + 3 <= n && s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) {
        out[at++] = ' ';
        i += 3;
      } else {
        out[at++] = (char)s[i++];
      }
    }
    return (int64_t)at;
  case BITNET_TOKEN_UNUSED:
    return 0;
  default:
    memcpy(out, s, n);
    return (int64_t)n;
  }
}

/* Precomputes what every token decodes to. */
static bitnet_status build_decoded(bitnet_tokenizer *t) {
  size_t total = 0;
  for (int32_t id = 0; id < t->vocab_size; ++id)
    total += t->text_len[id];
  t->decoded_arena = malloc(total ? total : 1);
  t->decoded_offset = malloc(sizeof(size_t) * (size_t)t->vocab_size);
  t->decoded_len = malloc(sizeof(uint32_t) * (size_t)t->vocab_size);
  if (!t->decoded_arena || !t->decoded_offset || !t->decoded_len)
    return out_of_memory("decoded tokens");
  size_t at = 0;
  for (int32_t id = 0; t->spm && id < t->vocab_size; ++id) {
    int64_t len = spm_decoded(t, id, t->decoded_arena + at);
    if (len < 0) {
      char shown[64];
      return bad_json("'tokens[%lld]' (\"%s\") is a byte token (type 6) but "
                      "not of the form <0xXX>",
                      (long long)id,
                      clip(shown, t->text_arena + t->text_offset[id]));
    }
    t->decoded_offset[id] = at;
    t->decoded_len[id] = (uint32_t)len;
    at += (size_t)len;
  }
  for (int32_t id = 0; !t->spm && id < t->vocab_size; ++id) {
    const unsigned char *s =
        (const unsigned char *)t->text_arena + t->text_offset[id];
    size_t n = t->text_len[id], start = at;
    int byte_level = t->type[id] == BITNET_TOKEN_NORMAL ||
                     t->type[id] == BITNET_TOKEN_UNUSED ||
                     t->type[id] == BITNET_TOKEN_BYTE;
    for (size_t i = 0; i < n;) {
      size_t len = utf8_char_len(s + i, n - i);
      if (len == 0) { /* not UTF-8: the byte as it is */
        t->decoded_arena[at++] = (char)s[i++];
        continue;
      }
      uint32_t cp = utf8_decode(s + i, len);
      if (byte_level && cp < 512 && t->cp_to_byte[cp] >= 0) {
        t->decoded_arena[at++] = (char)t->cp_to_byte[cp];
      } else { /* outside the byte alphabet: the character as it is */
        memcpy(t->decoded_arena + at, s + i, len);
        at += len;
      }
      i += len;
    }
    t->decoded_offset[id] = start;
    t->decoded_len[id] = (uint32_t)(at - start);
  }
  return BITNET_OK;
}

static bitnet_status compile_regex(bitnet_tokenizer *t, const char *pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  t->regex = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                           PCRE2_UTF | PCRE2_UCP, &error, &offset, NULL);
  if (t->regex == NULL) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    return bitnet_status_make(BITNET_STATUS_INTERNAL,
                              "tokenizer: the pre-tokenizer's regular "
                              "expression does not compile at %zu: %s",
                              (size_t)offset, (const char *)message);
  }
  /* Without JIT (not built in, or no executable memory) matching still
   * works, interpreted. */
  (void)pcre2_jit_compile(t->regex, PCRE2_JIT_COMPLETE);
  return BITNET_OK;
}

/* The keys every model has: special token ids and flags. */
static bitnet_status read_common(bitnet_tokenizer *t, const cJSON *root) {
  BITNET_RETURN_IF_ERROR(
      json_token_id(root, "bos_token_id", t->vocab_size, &t->bos_id));
  BITNET_RETURN_IF_ERROR(
      json_token_id(root, "eos_token_id", t->vocab_size, &t->eos_id));
  BITNET_RETURN_IF_ERROR(
      json_token_id(root, "eot_token_id", t->vocab_size, &t->eot_id));
  BITNET_RETURN_IF_ERROR(json_bool(root, "add_bos_token", &t->add_bos));
  t->unknown_id = -1;
  for (int32_t id = 0; id < t->vocab_size && t->unknown_id < 0; ++id)
    if (t->type[id] == BITNET_TOKEN_UNKNOWN)
      t->unknown_id = id;
  return BITNET_OK;
}

/* A SentencePiece vocabulary: tokens, scores, types; no merges and no
 * pre-tokenizer ("pre" and "merges" are ignored). */
static bitnet_status parse_spm(bitnet_tokenizer *t, const cJSON *root) {
  BITNET_RETURN_IF_ERROR(read_tokens(t, root));
  BITNET_RETURN_IF_ERROR(build_token_table(t));
  BITNET_RETURN_IF_ERROR(read_scores(t, root));
  BITNET_RETURN_IF_ERROR(read_common(t, root));
  t->add_space_prefix = 1;
  if (cJSON_GetObjectItemCaseSensitive(root, "add_space_prefix") != NULL)
    BITNET_RETURN_IF_ERROR(
        json_bool(root, "add_space_prefix", &t->add_space_prefix));
  /* Byte fallback as llama.cpp has it: the token <0xXX>, else the byte's
   * own one-byte text, else (below) the unknown token. */
  for (int b = 0; b < 256; ++b) {
    char name[8];
    char one = (char)b;
    snprintf(name, sizeof(name), "<0x%02X>", (unsigned)b);
    t->byte_token[b] = find_token(t, name, 6);
    if (t->byte_token[b] < 0)
      t->byte_token[b] = find_token(t, &one, 1);
  }
  BITNET_RETURN_IF_ERROR(build_specials(t));
  return build_decoded(t);
}

static bitnet_status parse(bitnet_tokenizer *t, const cJSON *root) {
  if (!cJSON_IsObject(root))
    return bad_json("the top level is %s, not an object",
                    json_type_name(root));
  char shown[64];
  const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
  if (model == NULL)
    return bad_json("'model' is missing");
  if (!cJSON_IsString(model))
    return bad_json("'model' is %s, not a string", json_type_name(model));
  t->spm = strcmp(model->valuestring, "llama") == 0;
  if (!t->spm && strcmp(model->valuestring, "gpt2") != 0)
    return bitnet_status_make(BITNET_STATUS_UNAVAILABLE,
                              "tokenizer: unknown tokenizer model \"%s\" "
                              "(supported: \"gpt2\", byte-level BPE; "
                              "\"llama\", SentencePiece)",
                              clip(shown, model->valuestring));
  if (t->spm)
    return parse_spm(t, root);

  const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre");
  if (pre == NULL)
    return bad_json("'pre' (the pre-tokenizer) is missing");
  if (!cJSON_IsString(pre))
    return bad_json("'pre' is %s, not a string", json_type_name(pre));
  const char *pattern = NULL;
  for (int i = 0; i < NUM_PRE_TOKENIZERS; ++i)
    if (strcmp(pre->valuestring, pre_tokenizers[i].name) == 0)
      pattern = pre_tokenizers[i].pattern;
  if (pattern == NULL)
    return bitnet_status_make(BITNET_STATUS_UNAVAILABLE,
                              "tokenizer: unknown pre-tokenizer \"%s\" "
                              "(supported: \"llama-bpe\", \"gpt-2\")",
                              clip(shown, pre->valuestring));

  BITNET_RETURN_IF_ERROR(read_tokens(t, root));
  BITNET_RETURN_IF_ERROR(build_token_table(t));
  BITNET_RETURN_IF_ERROR(read_merges(t, root));
  BITNET_RETURN_IF_ERROR(read_common(t, root));
  BITNET_RETURN_IF_ERROR(json_bool(root, "ignore_merges", &t->ignore_merges));

  for (int b = 0; b < 256; ++b)
    t->byte_token[b] = find_token(t, t->mapped[b], t->mapped_len[b]);
  BITNET_RETURN_IF_ERROR(build_specials(t));
  BITNET_RETURN_IF_ERROR(build_decoded(t));
  return compile_regex(t, pattern);
}

bitnet_status bitnet_tokenizer_create(const char *json, size_t length,
                                      bitnet_tokenizer **out_tokenizer) {
  BITNET_CHECK_ARG(out_tokenizer, "bitnet_tokenizer_create");
  *out_tokenizer = NULL;
  BITNET_CHECK_ARG(json, "bitnet_tokenizer_create");
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(json, length, &end, 0);
  if (root == NULL) {
    size_t at = end && end >= json && end <= json + length
                    ? (size_t)(end - json)
                    : 0;
    return bad_json("not valid JSON (at byte %zu of %zu)", at, length);
  }
  /* Only white space may follow the object. */
  for (const char *p = end; p != NULL && p < json + length; ++p)
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
      cJSON_Delete(root);
      return bad_json("unexpected text after the JSON value (at byte %zu)",
                      (size_t)(p - json));
    }
  bitnet_tokenizer *t = calloc(1, sizeof(*t));
  if (t == NULL) {
    cJSON_Delete(root);
    return out_of_memory("tokenizer");
  }
  init_byte_tables(t);
  bitnet_status status = parse(t, root);
  cJSON_Delete(root);
  if (status != BITNET_OK) {
    bitnet_tokenizer_free(t);
    return status;
  }
  *out_tokenizer = t;
  return BITNET_OK;
}

bitnet_status bitnet_tokenizer_create_from_model(
    const bitnet_model *model, bitnet_tokenizer **out_tokenizer) {
  BITNET_CHECK_ARG(out_tokenizer, "bitnet_tokenizer_create_from_model");
  *out_tokenizer = NULL;
  BITNET_CHECK_ARG(model, "bitnet_tokenizer_create_from_model");
  const char *path = bitnet_model_path(model);
  const char *json = bitnet_model_metadata(model, "bitnet.tokenizer");
  if (json == NULL)
    return bitnet_status_make(BITNET_STATUS_NOT_FOUND,
                              "model '%s' has no tokenizer (metadata entry "
                              "bitnet.tokenizer)",
                              path ? path : "");
  bitnet_status status =
      bitnet_tokenizer_create(json, strlen(json), out_tokenizer);
  if (status == BITNET_OK)
    return BITNET_OK;
  bitnet_status named = bitnet_status_make(
      bitnet_status_get_code(status), "model '%s': bitnet.tokenizer: %s",
      path ? path : "", bitnet_status_message(status));
  bitnet_status_free(status);
  return named;
}

/*===----------------------------------------------------------------------===*
 * Accessors
 *===----------------------------------------------------------------------===*/

int32_t bitnet_tokenizer_vocab_size(const bitnet_tokenizer *t) {
  return t ? t->vocab_size : 0;
}
int32_t bitnet_tokenizer_bos_id(const bitnet_tokenizer *t) {
  return t ? t->bos_id : -1;
}
int32_t bitnet_tokenizer_eos_id(const bitnet_tokenizer *t) {
  return t ? t->eos_id : -1;
}
int32_t bitnet_tokenizer_eot_id(const bitnet_tokenizer *t) {
  return t ? t->eot_id : -1;
}
int bitnet_tokenizer_add_bos(const bitnet_tokenizer *t) {
  return t ? t->add_bos : 0;
}

const char *bitnet_tokenizer_token_text(const bitnet_tokenizer *t,
                                        int32_t id) {
  if (t == NULL || id < 0 || id >= t->vocab_size)
    return NULL;
  return t->text_arena + t->text_offset[id];
}

int32_t bitnet_tokenizer_token_type(const bitnet_tokenizer *t, int32_t id) {
  if (t == NULL || id < 0 || id >= t->vocab_size)
    return 0;
  return t->type[id];
}

/*===----------------------------------------------------------------------===*
 * Encoding
 *===----------------------------------------------------------------------===*/

typedef struct symbol {
  int32_t id;         /* -1 once merged into the symbol on its left */
  int32_t prev, next; /* neighbours' indices, -1 at the ends */
} symbol;

typedef struct candidate {
  int32_t rank;
  int32_t left; /* index of the left symbol */
  int32_t left_id, right_id, merged;
} candidate;


/* State of one encode call. */
typedef struct encoder {
  const bitnet_tokenizer *t;
  int32_t *ids;
  size_t num_ids, ids_cap;
  char *mapped;
  size_t mapped_cap;
  symbol *symbols;
  size_t symbols_cap;
  candidate *heap;
  size_t heap_cap, heap_len;
  struct spm_symbol *spm_symbols;
  size_t spm_symbols_cap;
  struct spm_bigram *spm_heap;
  size_t spm_heap_cap, spm_heap_len;
  pcre2_match_data *match;
  bitnet_status error;
} encoder;

/* Makes room for `need` elements of `elem` bytes in *buf; 0 on failure. */
static int grow(void **buf, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap)
    return 1;
  size_t n = *cap ? *cap : 64;
  while (n < need)
    n *= 2;
  void *p = realloc(*buf, n * elem);
  if (p == NULL)
    return 0;
  *buf = p;
  *cap = n;
  return 1;
}

static int fail_oom(encoder *e, const char *what) {
  if (e->error == BITNET_OK)
    e->error = out_of_memory(what);
  return 0;
}

static int push_id(encoder *e, int32_t id) {
  if (!grow((void **)&e->ids, &e->ids_cap, e->num_ids + 1, sizeof(int32_t)))
    return fail_oom(e, "token ids");
  e->ids[e->num_ids++] = id;
  return 1;
}

/* The token of one byte, or the unknown token when the vocabulary has none;
 * -1, with the error set, when it has neither. */
static int32_t byte_id(encoder *e, unsigned char b) {
  int32_t id = e->t->byte_token[b];
  if (id < 0)
    id = e->t->unknown_id;
  if (id < 0 && e->error == BITNET_OK)
    e->error = bitnet_status_make(BITNET_STATUS_FAILED_PRECONDITION,
                                  "tokenizer: the vocabulary has no token for "
                                  "byte 0x%02x and no unknown token",
                                  b);
  return id;
}

/* Heap order: lowest rank first, then leftmost. */
static int before(const candidate *a, const candidate *b) {
  return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(encoder *e, candidate c) {
  size_t i = e->heap_len++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(&c, &e->heap[parent]))
      break;
    e->heap[i] = e->heap[parent];
    i = parent;
  }
  e->heap[i] = c;
}

static candidate heap_pop(encoder *e) {
  candidate top = e->heap[0], last = e->heap[--e->heap_len];
  size_t i = 0, n = e->heap_len;
  if (n == 0)
    return top;
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n)
      break;
    if (child + 1 < n && before(&e->heap[child + 1], &e->heap[child]))
      ++child;
    if (!before(&e->heap[child], &last))
      break;
    e->heap[i] = e->heap[child];
    i = child;
  }
  e->heap[i] = last;
  return top;
}

/* Queues the merge of symbol `left` with its right neighbour, if any. */
static void add_candidate(encoder *e, int32_t left) {
  int32_t right = e->symbols[left].next;
  if (right < 0)
    return;
  int32_t left_id = e->symbols[left].id, right_id = e->symbols[right].id;
  const merge_slot *m = find_merge(e->t, left_id, right_id);
  if (m != NULL)
    heap_push(e, (candidate){m->rank, left, left_id, right_id, m->merged});
}

/* BPE over the n >= 1 bytes at s. */
static int bpe(encoder *e, const unsigned char *s, size_t n) {
  if (n >= INT32_MAX / 4) {
    e->error = bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                                  "tokenizer: a piece of %zu bytes is too "
                                  "long to encode",
                                  n);
    return 0;
  }
  /* At most n - 1 candidates at first and two more per merge. */
  if (!grow((void **)&e->symbols, &e->symbols_cap, n, sizeof(symbol)) ||
      !grow((void **)&e->heap, &e->heap_cap, 3 * n, sizeof(candidate)))
    return fail_oom(e, "BPE");
  symbol *sym = e->symbols;
  for (size_t i = 0; i < n; ++i) {
    sym[i].id = byte_id(e, s[i]);
    if (sym[i].id < 0)
      return 0;
    sym[i].prev = (int32_t)i - 1;
    sym[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
  }
  e->heap_len = 0;
  for (size_t i = 0; i + 1 < n; ++i)
    add_candidate(e, (int32_t)i);
  while (e->heap_len > 0) {
    candidate c = heap_pop(e);
    int32_t left = c.left, right = sym[left].next;
    /* Skip candidates that an earlier merge made stale. */
    if (sym[left].id != c.left_id || right < 0 || sym[right].id != c.right_id)
      continue;
    sym[left].id = c.merged;
    sym[right].id = -1;
    sym[left].next = sym[right].next;
    if (sym[right].next >= 0)
      sym[sym[right].next].prev = left;
    if (sym[left].prev >= 0)
      add_candidate(e, sym[left].prev);
    add_candidate(e, left);
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next)
    if (!push_id(e, sym[i].id))
      return 0;
  return 1;
}

/* Encodes one piece from the pre-tokenizer (n >= 1 bytes). */
static int encode_piece(encoder *e, const unsigned char *s, size_t n) {
  const bitnet_tokenizer *t = e->t;
  if (n == 1) {
    int32_t id = byte_id(e, s[0]);
    return id >= 0 && push_id(e, id);
  }
  if (t->ignore_merges) {
    if (!grow((void **)&e->mapped, &e->mapped_cap, 2 * n, 1))
      return fail_oom(e, "text");
    size_t m = 0;
    for (size_t i = 0; i < n; ++i) {
      e->mapped[m] = t->mapped[s[i]][0];
      e->mapped[m + 1] = t->mapped[s[i]][1];
      m += t->mapped_len[s[i]];
    }
    int32_t id = find_token(t, e->mapped, m);
    if (id >= 0 && t->type[id] != BITNET_TOKEN_CONTROL)
      return push_id(e, id);
  }
  return bpe(e, s, n);
}

/* Splits a run of valid UTF-8 with the pre-tokenizer and encodes each piece;
 * text the expression does not match is a piece too. */
static int encode_run(encoder *e, const unsigned char *s, size_t n) {
  size_t at = 0;
  while (at < n) {
    int rc = pcre2_match(e->t->regex, s, n, at,
                         PCRE2_NO_UTF_CHECK | PCRE2_NOTEMPTY, e->match, NULL);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) /* e.g. the JIT's stack */
      rc = pcre2_match(e->t->regex, s, n, at,
                       PCRE2_NO_UTF_CHECK | PCRE2_NOTEMPTY | PCRE2_NO_JIT,
                       e->match, NULL);
    if (rc == PCRE2_ERROR_NOMATCH)
      break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      e->error = bitnet_status_make(BITNET_STATUS_INTERNAL,
                                    "tokenizer: the pre-tokenizer failed at "
                                    "byte %zu of a piece of %zu: %s",
                                    at, n, (const char *)message);
      return 0;
    }
    const PCRE2_SIZE *match = pcre2_get_ovector_pointer(e->match);
    size_t begin = match[0], end = match[1];
    if (begin > at && !encode_piece(e, s + at, begin - at))
      return 0;
    if (!encode_piece(e, s + begin, end - begin))
      return 0;
    at = end;
  }
  return at < n ? encode_piece(e, s + at, n - at) : 1;
}

/*===----------------------------------------------------------------------===*
 * SentencePiece, as llama.cpp's llm_tokenizer_spm: one symbol per UTF-8
 * character, then the adjacent pair whose concatenation is the token of
 * highest score is merged (ties: leftmost) until no pair is a token; a
 * symbol that is not a token becomes its bytes' tokens.
 *===----------------------------------------------------------------------===*/

typedef struct spm_symbol {
  uint32_t start, len; /* bytes of the escaped text; len 0 once merged */
  int32_t prev, next;
} spm_symbol;

typedef struct spm_bigram {
  float score;
  int32_t left, right;
  uint32_t len; /* bytes of both: a stale bigram's symbols have changed */
} spm_bigram;

/* Heap order: highest score first, then leftmost. */
static int spm_before(const spm_bigram *a, const spm_bigram *b) {
  return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int spm_push(encoder *e, spm_bigram c) {
  if (!grow((void **)&e->spm_heap, &e->spm_heap_cap, e->spm_heap_len + 1,
            sizeof(spm_bigram)))
    return fail_oom(e, "SentencePiece");
  size_t i = e->spm_heap_len++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!spm_before(&c, &e->spm_heap[parent]))
      break;
    e->spm_heap[i] = e->spm_heap[parent];
    i = parent;
  }
  e->spm_heap[i] = c;
  return 1;
}

static spm_bigram spm_pop(encoder *e) {
  spm_bigram *h = e->spm_heap;
  spm_bigram top = h[0], last = h[--e->spm_heap_len];
  size_t i = 0, n = e->spm_heap_len;
  if (n == 0)
    return top;
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n)
      break;
    if (child + 1 < n && spm_before(&h[child + 1], &h[child]))
      ++child;
    if (!spm_before(&h[child], &last))
      break;
    h[i] = h[child];
    i = child;
  }
  h[i] = last;
  return top;
}

/* Queues the merge of symbols `left` and `right` when their text is a
 * token. */
static int spm_try_bigram(encoder *e, int32_t left, int32_t right) {
  if (left < 0 || right < 0)
    return 1;
  const spm_symbol *sym = e->spm_symbols;
  uint32_t len = sym[left].len + sym[right].len;
  int32_t id = find_token(e->t, e->mapped + sym[left].start, len);
  if (id < 0)
    return 1;
  return spm_push(e, (spm_bigram){e->t->scores[id], left, right, len});
}

/* Length of the UTF-8 character starting with byte c, from its high four
 * bits alone, as llama.cpp's unicode_len_utf8. */
static uint32_t spm_char_len(unsigned char c) {
  static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1,
                                  1, 1, 1, 1, 2, 2, 3, 4};
  return len[c >> 4];
}

/* Encodes a fragment of text (n >= 1 bytes, no special tokens in it):
 * a '▁' first when `prefix`, each space as '▁', then BPE by scores. */
static int spm_encode(encoder *e, const unsigned char *s, size_t n,
                      int prefix) {
  static const char escaped_space[3] = {'\xE2', '\x96', '\x81'};
  size_t spaces = 0;
  for (size_t i = 0; i < n; ++i)
    spaces += s[i] == ' ';
  if (n >= INT32_MAX / 4 || n + 2 * spaces + 3 >= INT32_MAX / 4) {
    e->error = bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                                  "tokenizer: a text of %zu bytes is too long "
                                  "to encode at once",
                                  n);
    return 0;
  }
  size_t m = (prefix ? 3 : 0) + n + 2 * spaces; /* a '▁' is 3 bytes */
  if (!grow((void **)&e->mapped, &e->mapped_cap, m, 1))
    return fail_oom(e, "text");
  char *text = e->mapped;
  size_t at = 0;
  if (prefix) {
    memcpy(text, escaped_space, 3);
    at = 3;
  }
  for (size_t i = 0; i < n; ++i) {
    if (s[i] == ' ') {
      memcpy(text + at, escaped_space, 3);
      at += 3;
    } else {
      text[at++] = (char)s[i];
    }
  }

  /* One symbol per character; at most m of them. */
  if (!grow((void **)&e->spm_symbols, &e->spm_symbols_cap, m,
            sizeof(spm_symbol)))
    return fail_oom(e, "SentencePiece");
  spm_symbol *sym = e->spm_symbols;
  int32_t count = 0;
  for (size_t i = 0; i < m;) {
    uint32_t len = spm_char_len((unsigned char)text[i]);
    if (len > m - i)
      len = (uint32_t)(m - i);
    sym[count] = (spm_symbol){(uint32_t)i, len, count - 1,
                              i + len < m ? count + 1 : -1};
    ++count;
    i += len;
  }
  e->spm_heap_len = 0;
  for (int32_t i = 1; i < count; ++i)
    if (!spm_try_bigram(e, i - 1, i))
      return 0;
  while (e->spm_heap_len > 0) {
    spm_bigram b = spm_pop(e);
    spm_symbol *left = &sym[b.left], *right = &sym[b.right];
    if (left->len == 0 || right->len == 0 || left->len + right->len != b.len)
      continue; /* one of them has been merged since */
    left->len += right->len;
    right->len = 0;
    left->next = right->next;
    if (right->next >= 0)
      sym[right->next].prev = b.left;
    if (!spm_try_bigram(e, left->prev, b.left) ||
        !spm_try_bigram(e, b.left, left->next))
      return 0;
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) {
    int32_t id = find_token(e->t, text + sym[i].start, sym[i].len);
    if (id >= 0) {
      if (!push_id(e, id))
        return 0;
      continue;
    }
    for (uint32_t k = 0; k < sym[i].len; ++k) {
      id = byte_id(e, (unsigned char)text[sym[i].start + k]);
      if (id < 0 || !push_id(e, id))
        return 0;
    }
  }
  return 1;
}

/* Encodes text with no special tokens in it: runs of valid UTF-8 go through
 * the pre-tokenizer, each invalid byte is a piece of its own. */
static int encode_text(encoder *e, const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t start = i;
    while (i < n) {
      if (s[i] < 0x80) {
        ++i;
        continue;
      }
      size_t len = utf8_char_len(s + i, n - i);
      if (len == 0)
        break;
      i += len;
    }
    if (i > start && !encode_run(e, s + start, i - start))
      return 0;
    if (i < n) {
      if (!encode_piece(e, s + i, 1))
        return 0;
      ++i;
    }
  }
  return 1;
}

bitnet_status bitnet_tokenizer_encode(const bitnet_tokenizer *t,
                                      const char *text, size_t length,
                                      int32_t flags, int32_t **out_ids,
                                      int64_t *out_num_ids) {
  BITNET_CHECK_ARG(out_ids, "bitnet_tokenizer_encode");
  BITNET_CHECK_ARG(out_num_ids, "bitnet_tokenizer_encode");
  *out_ids = NULL;
  *out_num_ids = 0;
  BITNET_CHECK_ARG(t, "bitnet_tokenizer_encode");
  if (text == NULL && length > 0)
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "bitnet_tokenizer_encode: 'text' is NULL and "
                              "'length' is %zu",
                              length);
  if (flags & ~(BITNET_ENCODE_ADD_BOS | BITNET_ENCODE_SPECIAL_AS_TEXT))
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "bitnet_tokenizer_encode: unknown flags 0x%x",
                              (unsigned)flags);
  if ((flags & BITNET_ENCODE_ADD_BOS) && t->bos_id < 0)
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "bitnet_tokenizer_encode: a BOS token was asked "
                              "for, and the tokenizer has none");
  encoder e;
  memset(&e, 0, sizeof(e));
  e.t = t;
  if (!t->spm) {
    e.match = pcre2_match_data_create_from_pattern(t->regex, NULL);
    if (e.match == NULL)
      return out_of_memory("match data");
  }
  const unsigned char *s = (const unsigned char *)(text ? text : "");
  int ok = 1;
  if (flags & BITNET_ENCODE_ADD_BOS)
    ok = push_id(&e, t->bos_id);
  /* SentencePiece: whether a '▁' goes before the next text, which starts
   * the prompt or follows a special token (llama.cpp's is_prev_special). */
  int prefix = t->spm && t->add_space_prefix;
  size_t plain = 0; /* start of the text not encoded yet */
  for (size_t i = 0; ok && i < length;) {
    const special_token *found = NULL;
    for (int32_t k = t->special_begin[s[i]]; k < t->special_end[s[i]]; ++k) {
      const special_token *sp = &t->specials[k];
      if (sp->len > length - i ||
          ((flags & BITNET_ENCODE_SPECIAL_AS_TEXT) &&
           (t->type[sp->id] == BITNET_TOKEN_CONTROL ||
            t->type[sp->id] == BITNET_TOKEN_UNKNOWN)))
        continue;
      if (memcmp(s + i, t->text_arena + t->text_offset[sp->id], sp->len) ==
          0) {
        found = sp;
        break;
      }
    }
    if (found == NULL) {
      ++i;
      continue;
    }
    if (t->spm) {
      if (i > plain)
        ok = spm_encode(&e, s + plain, i - plain, prefix);
      prefix = t->add_space_prefix;
    } else {
      ok = encode_text(&e, s + plain, i - plain);
    }
    ok = ok && push_id(&e, found->id);
    i += found->len;
    plain = i;
  }
  if (ok && t->spm)
    ok = length == plain || spm_encode(&e, s + plain, length - plain, prefix);
  else if (ok)
    ok = encode_text(&e, s + plain, length - plain);
  pcre2_match_data_free(e.match);
  free(e.mapped);
  free(e.symbols);
  free(e.heap);
  free(e.spm_symbols);
  free(e.spm_heap);
  if (!ok) {
    free(e.ids);
    return e.error ? e.error : out_of_memory("encode");
  }
  if (e.ids == NULL) /* no tokens: still a pointer the caller may free */
    e.ids = malloc(sizeof(int32_t));
  if (e.ids == NULL)
    return out_of_memory("token ids");
  *out_ids = e.ids;
  *out_num_ids = (int64_t)e.num_ids;
  return BITNET_OK;
}

/*===----------------------------------------------------------------------===*
 * Decoding
 *===----------------------------------------------------------------------===*/

bitnet_status bitnet_tokenizer_token_bytes(const bitnet_tokenizer *t,
                                           int32_t id, int32_t flags,
                                           const char **out_bytes,
                                           size_t *out_length) {
  BITNET_CHECK_ARG(out_bytes, "bitnet_tokenizer_token_bytes");
  BITNET_CHECK_ARG(out_length, "bitnet_tokenizer_token_bytes");
  *out_bytes = "";
  *out_length = 0;
  BITNET_CHECK_ARG(t, "bitnet_tokenizer_token_bytes");
  if (id < 0 || id >= t->vocab_size)
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "tokenizer: token id %d is out of range [0, %d)",
                              (int)id, (int)t->vocab_size);
  if ((flags & BITNET_DECODE_SKIP_SPECIAL) &&
      (t->type[id] == BITNET_TOKEN_CONTROL ||
       t->type[id] == BITNET_TOKEN_UNKNOWN))
    return BITNET_OK;
  *out_bytes = t->decoded_arena + t->decoded_offset[id];
  *out_length = t->decoded_len[id];
  return BITNET_OK;
}

bitnet_status bitnet_tokenizer_decode(const bitnet_tokenizer *t,
                                      const int32_t *ids, int64_t num_ids,
                                      int32_t flags, char **out_text,
                                      size_t *out_length) {
  BITNET_CHECK_ARG(out_text, "bitnet_tokenizer_decode");
  BITNET_CHECK_ARG(out_length, "bitnet_tokenizer_decode");
  *out_text = NULL;
  *out_length = 0;
  BITNET_CHECK_ARG(t, "bitnet_tokenizer_decode");
  if (num_ids < 0 || (ids == NULL && num_ids > 0))
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "bitnet_tokenizer_decode: %lld ids at %p",
                              (long long)num_ids, (const void *)ids);
  size_t total = 0;
  for (int64_t k = 0; k < num_ids; ++k) {
    const char *bytes;
    size_t len;
    bitnet_status status =
        bitnet_tokenizer_token_bytes(t, ids[k], flags, &bytes, &len);
    if (status != BITNET_OK) {
      bitnet_status at = bitnet_status_make(
          bitnet_status_get_code(status), "%s (ids[%lld])",
          bitnet_status_message(status), (long long)k);
      bitnet_status_free(status);
      return at;
    }
    total += len;
  }
  /* SentencePiece: one space is removed from the start of the first
   * token's bytes, the one the encoder put before the text, as llama.cpp's
   * detokenize does; so a leading BOS keeps the space after it. */
  size_t skip = 0;
  if (num_ids > 0 && t->spm && t->add_space_prefix) {
    const char *bytes;
    size_t len;
    bitnet_status_free(
        bitnet_tokenizer_token_bytes(t, ids[0], flags, &bytes, &len));
    skip = len > 0 && bytes[0] == ' ';
  }
  total -= skip;
  char *text = malloc(total + 1);
  if (text == NULL)
    return out_of_memory("decoded text");
  size_t at = 0;
  for (int64_t k = 0; k < num_ids; ++k) {
    const char *bytes;
    size_t len;
    bitnet_status_free(
        bitnet_tokenizer_token_bytes(t, ids[k], flags, &bytes, &len));
    if (k == 0) {
      bytes += skip;
      len -= skip;
    }
    memcpy(text + at, bytes, len);
    at += len;
  }
  text[at] = '\0';
  *out_text = text;
  *out_length = at;
  return BITNET_OK;
}

struct bitnet_stream_decoder {
  const bitnet_tokenizer *tokenizer;
  int32_t flags;
  char *buffer;
  size_t capacity;
  unsigned char pending[4]; /* the start of a character, not yet printed */
  size_t num_pending;
};

bitnet_status bitnet_stream_decoder_create(const bitnet_tokenizer *tokenizer,
                                           int32_t flags,
                                           bitnet_stream_decoder **out) {
  BITNET_CHECK_ARG(out, "bitnet_stream_decoder_create");
  *out = NULL;
  BITNET_CHECK_ARG(tokenizer, "bitnet_stream_decoder_create");
  if (flags & ~BITNET_DECODE_SKIP_SPECIAL)
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "bitnet_stream_decoder_create: unknown flags "
                              "0x%x",
                              (unsigned)flags);
  bitnet_stream_decoder *d = calloc(1, sizeof(*d));
  if (d == NULL)
    return out_of_memory("stream decoder");
  d->tokenizer = tokenizer;
  d->flags = flags;
  *out = d;
  return BITNET_OK;
}

/* Bytes at the end of s[0..n) that start a UTF-8 character and are too few
 * to finish it: what to hold back. */
static size_t unfinished_tail(const unsigned char *s, size_t n) {
  for (size_t k = 1; k <= 3 && k <= n; ++k) {
    unsigned c = s[n - k];
    if ((c & 0xC0) == 0x80)
      continue; /* a continuation byte: look further back */
    size_t need = c >= 0xC2 && c < 0xE0   ? 2
                  : c >= 0xE0 && c < 0xF0 ? 3
                  : c >= 0xF0 && c < 0xF5 ? 4
                                          : 0;
    return need > k ? k : 0;
  }
  return 0;
}

bitnet_status bitnet_stream_decoder_push(bitnet_stream_decoder *d, int32_t id,
                                         const char **out_text,
                                         size_t *out_length) {
  BITNET_CHECK_ARG(out_text, "bitnet_stream_decoder_push");
  BITNET_CHECK_ARG(out_length, "bitnet_stream_decoder_push");
  *out_text = "";
  *out_length = 0;
  BITNET_CHECK_ARG(d, "bitnet_stream_decoder_push");
  const char *bytes;
  size_t len;
  BITNET_RETURN_IF_ERROR(
      bitnet_tokenizer_token_bytes(d->tokenizer, id, d->flags, &bytes, &len));
  size_t n = d->num_pending + len;
  if (n == 0)
    return BITNET_OK;
  if (!grow((void **)&d->buffer, &d->capacity, n, 1))
    return out_of_memory("stream decoder");
  memcpy(d->buffer, d->pending, d->num_pending);
  memcpy(d->buffer + d->num_pending, bytes, len);
  size_t hold = unfinished_tail((const unsigned char *)d->buffer, n);
  memcpy(d->pending, d->buffer + n - hold, hold);
  d->num_pending = hold;
  *out_text = d->buffer;
  *out_length = n - hold;
  return BITNET_OK;
}

void bitnet_stream_decoder_flush(bitnet_stream_decoder *d,
                                 const char **out_text, size_t *out_length) {
  const char *text = "";
  size_t len = 0;
  if (d != NULL && d->num_pending > 0 &&
      grow((void **)&d->buffer, &d->capacity, d->num_pending, 1)) {
    memcpy(d->buffer, d->pending, d->num_pending);
    text = d->buffer;
    len = d->num_pending;
  }
  if (d != NULL)
    d->num_pending = 0;
  if (out_text)
    *out_text = text;
  if (out_length)
    *out_length = len;
}

void bitnet_stream_decoder_free(bitnet_stream_decoder *d) {
  if (d == NULL)
    return;
  free(d->buffer);
  free(d);
}
