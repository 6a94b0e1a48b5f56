/*===- tokenizer_decoder.c - Test model: a decoder with a tokenizer -*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * A decoder step as bitnet-generate runs it (tokens int32 [1], position
 * int32, a KV cache flagged as state; logits f32 [1, V]) that carries a
 * byte-level BPE tokenizer as its metadata entry "bitnet.tokenizer". Its
 * vocabulary: the 256 byte tokens (id = byte value), "Hi" (256) from the
 * merge "H i", then the control tokens <s> (257, BOS), </s> (258, EOS) and
 * <|eot|> (259, end of turn).
 *
 * Whatever the input, the logits at position p pick the byte token of
 * byte p of the metadata entry "test.script" (UTF-8 with multi-byte
 * characters, so that they reach the decoder a byte at a time), and after
 * its last byte the end token: EOS, or end of turn with END_WITH_EOT.
 * BROKEN_TOKENIZER gives the model a tokenizer whose merges name a token
 * that does not exist; SMALL_LOGITS logits for fewer ids than the tokenizer
 * has.
 *
 * CHAT_TEMPLATE (one of chat_templates.h's texts) makes a chat model: the
 * template is the metadata entry "bitnet.chat_template", the control tokens
 * are Llama 3's (<|begin_of_text|> 257, <|end_of_text|> 258, <|eot_id|>
 * 259, <|start_header_id|> 260, <|end_header_id|> 261), the cache holds 256
 * tokens, and the model replies to every turn with the script: it keeps the
 * tokens it is given in its cache, and REPLY_AFTER plain tokens after the
 * last control token (the end of the template's generation prompt) it
 * starts the script over. NO_TOKENIZER leaves the tokenizer out.
 *
 * BATCHED makes a batched decoder step, as bitnet-compile --max-sequences=4
 * --input-shape=tokens:8 builds one (inputs tokens, positions, slots int32
 * [8]; a cache [4, 512, 1, 1] flagged as state; logits f32 [8, V]), with
 * the same tokenizer. Token t writes its id at row positions[t] (clamped
 * into [0, 511]) of slot slots[t]'s cache, or nothing when the slot is
 * outside [0, 4) (padding); its logits pick a lower-case letter (the byte
 * token) from a hash of that slot's rows 0 .. positions[t], so that the text
 * of a sequence depends on every token it holds and on nothing else. Each
 * run sleeps STEP_MICROSECONDS (default 0), so that requests overlap.
 *
 *===----------------------------------------------------------------------===*/

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "test_model.h"
#include "../chat_templates.h"

#ifdef CHAT_TEMPLATE
#define VOCAB 262
#define CAPACITY 256
#elif defined(BATCHED)
#define VOCAB 260
#define CAPACITY 512
#define SLOTS 4
#define STEP 8
#else
#define VOCAB 260
#define CAPACITY 64
#endif
#ifdef SMALL_LOGITS
#define LOGITS 200
#else
#define LOGITS VOCAB
#endif
#define BOS 257
#define EOS 258
#define EOT 259

static const char script[] = "_\xc2\xa1Hola, se\xc3\xb1or! \xe2\x82\xac 5 \xf0\x9f\xa6\x99.";

#ifdef BROKEN_TOKENIZER
#define MERGE "H x"
#else
#define MERGE "H i"
#endif

/* Room for 256 tokens of up to 2 UTF-8 bytes, each quoted and escaped. */
static char tokenizer_json[8192];

static const char *const metadata[] = {
    "test.script", script,
#ifndef NO_TOKENIZER
    "bitnet.tokenizer", tokenizer_json,
#endif
#ifdef CHAT_TEMPLATE
    "bitnet.chat_template", CHAT_TEMPLATE,
#endif
};

/* Writes the JSON when the model is loaded: the byte tokens are GPT-2's
 * byte-to-unicode characters, too many to spell out here. */
__attribute__((constructor)) static void write_tokenizer_json(void) {
  char *p = tokenizer_json;
  p += sprintf(p, "{\"model\":\"gpt2\",\"pre\":\"llama-bpe\",\"tokens\":[");
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                    (b >= 0xAE && b <= 0xFF);
    unsigned cp = printable ? (unsigned)b : 256u + (unsigned)extra++;
    if (cp == '"' || cp == '\\')
      p += sprintf(p, "\"\\%c\",", (char)cp);
    else if (cp < 0x80)
      p += sprintf(p, "\"%c\",", (char)cp);
    else
      p += sprintf(p, "\"%c%c\",", (char)(0xC0 | (cp >> 6)),
                   (char)(0x80 | (cp & 0x3F)));
  }
  sprintf(p,
#ifdef CHAT_TEMPLATE
          "\"Hi\",\"<|begin_of_text|>\",\"<|end_of_text|>\",\"<|eot_id|>\","
          "\"<|start_header_id|>\",\"<|end_header_id|>\"],"
          "\"token_type\":[%s3,3,3,3,3],"
#else
          "\"Hi\",\"<s>\",\"</s>\",\"<|eot|>\"],"
          "\"token_type\":[%s3,3,3],"
#endif
          "\"merges\":[\"" MERGE "\"],"
          "\"bos_token_id\":%d,\"eos_token_id\":%d,\"eot_token_id\":%d,"
          "\"add_bos_token\":true}",
          /* 257 ones */
          "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
          "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
          "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
          "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
          "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
          "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
          "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
          "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
          "1,",
          BOS, EOS, EOT);
}

#ifdef BATCHED
static const int64_t tokens_shape[1] = {STEP};
static const int64_t cache_shape[4] = {SLOTS, CAPACITY, 1, 1};
static const int64_t logits_shape[2] = {STEP, LOGITS};
static const bitnet_tensor_info inputs[4] = {
    {"tokens", BITNET_DTYPE_I32, 1, tokens_shape},
    {"positions", BITNET_DTYPE_I32, 1, tokens_shape},
    {"slots", BITNET_DTYPE_I32, 1, tokens_shape},
    {"cache.0.key", BITNET_DTYPE_F32, 4, cache_shape, BITNET_TENSOR_STATE},
};
#else
static const int64_t tokens_shape[1] = {1};
static const int64_t cache_shape[2] = {CAPACITY, 4};
static const int64_t logits_shape[2] = {1, LOGITS};
static const bitnet_tensor_info inputs[3] = {
    {"tokens", BITNET_DTYPE_I32, 1, tokens_shape},
    {"position", BITNET_DTYPE_I32, 0, NULL},
    {"cache", BITNET_DTYPE_F32, 2, cache_shape, BITNET_TENSOR_STATE},
};
#endif
static const bitnet_tensor_info outputs[1] = {
    {"logits", BITNET_DTYPE_F32, 2, logits_shape}};

TEST_MODEL_INFO = {
    TEST_MODEL_HOST("tokenizer_decoder"),
    .num_inputs = sizeof(inputs) / sizeof(inputs[0]),
    .num_outputs = 1,
    .inputs = inputs,
    .outputs = outputs,
    .workspace_bytes = 0,
    .workspace_alignment = 1,
    .num_metadata = sizeof(metadata) / sizeof(metadata[0]) / 2,
    .metadata = metadata,
};

#ifdef BATCHED
#ifndef STEP_MICROSECONDS
#define STEP_MICROSECONDS 0
#endif
TEST_MODEL_RUN {
  (void)workspace;
  (void)ctx;
  const int32_t *tokens = buffers[0], *positions = buffers[1],
                *slots = buffers[2];
  float *cache = buffers[3], *logits = buffers[4];
  for (int t = 0; t < STEP; ++t) {
    for (int v = 0; v < LOGITS; ++v)
      logits[t * LOGITS + v] = 0.0f;
    int32_t s = slots[t], p = positions[t];
    if (s < 0 || s >= SLOTS)
      continue;
    p = p < 0 ? 0 : p >= CAPACITY ? CAPACITY - 1 : p;
    float *rows = cache + (int64_t)s * CAPACITY;
    rows[p] = (float)tokens[t];
    uint32_t h = 2166136261u; /* FNV-1a over the sequence's ids */
    for (int32_t q = 0; q <= p; ++q) {
      h ^= (uint32_t)rows[q];
      h *= 16777619u;
    }
    logits[t * LOGITS + 'a' + (int)(h % 26)] = 10.0f;
  }
  if (STEP_MICROSECONDS > 0) {
    struct timespec pause = {0, STEP_MICROSECONDS * 1000L};
    nanosleep(&pause, NULL);
  }
  return 0;
}
#else
TEST_MODEL_RUN {
  (void)workspace;
  (void)ctx;
  const int32_t *position = buffers[1];
  float *cache = buffers[2], *logits = buffers[3];
  int32_t p = *position;
  if (p >= 0 && p < CAPACITY)
    cache[p * 4] = (float)((const int32_t *)buffers[0])[0];
#ifdef CHAT_TEMPLATE
  /* The script from REPLY_AFTER tokens after the last control token. */
  int32_t q = p;
  while (q > 0 && !(q < CAPACITY && cache[q * 4] >= BOS))
    --q;
  p -= q + REPLY_AFTER;
#endif
  int32_t next = p >= 0 && p < (int32_t)strlen(script)
                     ? (unsigned char)script[p]
#ifdef END_WITH_EOT
                     : EOT;
#else
                     : EOS;
#endif
  for (int v = 0; v < LOGITS; ++v)
    logits[v] = v == next ? 10.0f : 0.0f;
  return 0;
}
#endif
