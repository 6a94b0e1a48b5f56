/*===- bitnet_rt/tokenizer.h - BPE and SentencePiece tokenizers ----*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * Text to token ids and back, for the byte-level BPE vocabularies of GPT-2 and
 * Llama 3 (GGUF's tokenizer.ggml.model "gpt2") and SentencePiece BPE ones
 * (Llama 2, the older BitNet models: "llama"). A compiled model carries its
 * tokenizer as the metadata entry "bitnet.tokenizer", a JSON object whose keys
 * mirror GGUF's tokenizer.ggml.* (runtime/README.md describes it):
 *
 *   bitnet_tokenizer *tok;   bitnet_tokenizer_create_from_model(model, &tok)
 *   int32_t *ids; int64_t n; bitnet_tokenizer_encode(tok, text, len,
 *                                                    BITNET_ENCODE_ADD_BOS,
 *                                                    &ids, &n) ... free(ids)
 *   bitnet_stream_decoder *d; bitnet_stream_decoder_create(tok, 0, &d)
 *                             bitnet_stream_decoder_push(d, id, &text, &len)
 *
 * A tokenizer is immutable once created: any number of threads may encode
 * and decode with it at once. A stream decoder serves one thread.
 *
 *===----------------------------------------------------------------------===*/

#ifndef BITNET_RT_TOKENIZER_H
#define BITNET_RT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "bitnet_rt/bitnet_rt.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A byte-level BPE or SentencePiece tokenizer. */
typedef struct bitnet_tokenizer bitnet_tokenizer;

/** Kinds of token, as GGUF's tokenizer.ggml.token_type numbers them. */
typedef enum bitnet_token_type {
  BITNET_TOKEN_NORMAL = 1,       /**< byte-to-unicode text (BPE), or text with
                                      '▁' for a space (SentencePiece) */
  BITNET_TOKEN_UNKNOWN = 2,      /**< stands for what the vocabulary lacks */
  BITNET_TOKEN_CONTROL = 3,      /**< special: <|begin_of_text|>, <|eot_id|> */
  BITNET_TOKEN_USER_DEFINED = 4, /**< added text, matched before BPE */
  BITNET_TOKEN_UNUSED = 5,       /**< reserved, decoded like a normal token
                                      (BPE) or to nothing (SentencePiece) */
  BITNET_TOKEN_BYTE = 6,         /**< one byte (SentencePiece: "<0xXX>") */
} bitnet_token_type;

/** Most tokens a tokenizer may have. */
#define BITNET_TOKENIZER_MAX_VOCAB (1 << 24)

/** Flags of bitnet_tokenizer_encode. */
enum {
  /** Put the BOS token first (INVALID_ARGUMENT when there is none). Whether
   *  a model wants one is bitnet_tokenizer_add_bos(). */
  BITNET_ENCODE_ADD_BOS = 1,
  /** Encode the text of control tokens (and SentencePiece's unknown token)
   *  in the input as plain text instead of as those tokens (for text from an
   *  untrusted user). User-defined tokens are still matched. */
  BITNET_ENCODE_SPECIAL_AS_TEXT = 2,
};

/** Flags of the decoding calls. */
enum {
  /** Control and unknown tokens decode to nothing instead of their text. */
  BITNET_DECODE_SKIP_SPECIAL = 1,
};

/** Makes a tokenizer from its JSON description: `length` bytes at `json`
 *  (no terminating NUL needed). Malformed JSON, a missing or mistyped field,
 *  a merge that names an unknown token, an id out of range, SentencePiece
 *  scores missing or not one per token: INVALID_FORMAT, with a message
 *  naming the field. A model or pre-tokenizer this runtime does not know:
 *  UNAVAILABLE, naming it. */
BITNET_RT_API bitnet_status bitnet_tokenizer_create(
    const char *json, size_t length, bitnet_tokenizer **out_tokenizer);

/** Makes the tokenizer of `model` from its metadata entry
 *  "bitnet.tokenizer"; NOT_FOUND when the model has none. The tokenizer
 *  does not keep the model. */
BITNET_RT_API bitnet_status bitnet_tokenizer_create_from_model(
    const bitnet_model *model, bitnet_tokenizer **out_tokenizer);

/** Frees a tokenizer. NULL is fine. */
BITNET_RT_API void bitnet_tokenizer_free(bitnet_tokenizer *tokenizer);

/** Number of tokens (0 for NULL). Ids are 0 .. size - 1. */
BITNET_RT_API int32_t
bitnet_tokenizer_vocab_size(const bitnet_tokenizer *tokenizer);

/** Id of the beginning-of-sequence token, or -1 when there is none. */
BITNET_RT_API int32_t bitnet_tokenizer_bos_id(const bitnet_tokenizer *tokenizer);

/** Id of the end-of-sequence token, or -1 when there is none. */
BITNET_RT_API int32_t bitnet_tokenizer_eos_id(const bitnet_tokenizer *tokenizer);

/** Id of the end-of-turn token (Llama 3's <|eot_id|>), or -1. */
BITNET_RT_API int32_t bitnet_tokenizer_eot_id(const bitnet_tokenizer *tokenizer);

/** 1 when the model expects a BOS token before a prompt, else 0. */
BITNET_RT_API int bitnet_tokenizer_add_bos(const bitnet_tokenizer *tokenizer);

/** The text of token `id` as the vocabulary spells it (NUL-terminated;
 *  normal tokens in the byte-to-unicode alphabet, where a space is "Ġ", or
 *  SentencePiece's, where it is "▁"), or
 *  NULL when `id` is out of range. Owned by the tokenizer. */
BITNET_RT_API const char *
bitnet_tokenizer_token_text(const bitnet_tokenizer *tokenizer, int32_t id);

/** The bitnet_token_type of token `id`, or 0 when `id` is out of range. */
BITNET_RT_API int32_t
bitnet_tokenizer_token_type(const bitnet_tokenizer *tokenizer, int32_t id);

/** Splits `length` bytes of `text` into token ids. Special tokens' text is
 *  matched first (longest first, left to right); the text between them is
 *  split by the pre-tokenizer's regular expression, and each piece is mapped
 *  to the byte-to-unicode alphabet and merged by BPE. Bytes that are not
 *  valid UTF-8 never fail: each one is a piece of its own (its byte token).
 *  SentencePiece: each text between special tokens gets a '▁' first (with
 *  add_space_prefix), its spaces become '▁' and it is merged by token
 *  scores, characters without a token falling back to byte tokens.
 *  `flags` is a combination of BITNET_ENCODE_*. On success *out_ids is an
 *  array of *out_num_ids ids (byte-level BPE: at most length + 1) that the
 *  caller frees with free(); on error both are zeroed. */
BITNET_RT_API bitnet_status bitnet_tokenizer_encode(
    const bitnet_tokenizer *tokenizer, const char *text, size_t length,
    int32_t flags, int32_t **out_ids, int64_t *out_num_ids);

/** The bytes token `id` decodes to (normal tokens through the inverse of
 *  the byte-to-unicode table, special tokens as their text), owned by the
 *  tokenizer; not NUL-terminated, and possibly part of a UTF-8 character.
 *  `flags` is a combination of BITNET_DECODE_*. */
BITNET_RT_API bitnet_status bitnet_tokenizer_token_bytes(
    const bitnet_tokenizer *tokenizer, int32_t id, int32_t flags,
    const char **out_bytes, size_t *out_length);

/** Decodes `num_ids` ids into one NUL-terminated string of *out_length
 *  bytes (plus the NUL) that the caller frees with free(). An id out of
 *  range is INVALID_ARGUMENT naming its position. SentencePiece with
 *  add_space_prefix: one leading space of the first id's bytes is dropped
 *  (the one encoding put there), as llama.cpp's detokenize does; after a
 *  leading BOS it stays. The stream decoder drops nothing. */
BITNET_RT_API bitnet_status bitnet_tokenizer_decode(
    const bitnet_tokenizer *tokenizer, const int32_t *ids, int64_t num_ids,
    int32_t flags, char **out_text, size_t *out_length);

/** Turns a stream of token ids into text that never ends inside a UTF-8
 *  character: bytes of a character split across tokens are held back until
 *  the character is complete. For printing tokens as they are generated. */
typedef struct bitnet_stream_decoder bitnet_stream_decoder;

/** Makes a stream decoder over `tokenizer`, which must outlive it. `flags`
 *  is a combination of BITNET_DECODE_*. */
BITNET_RT_API bitnet_status
bitnet_stream_decoder_create(const bitnet_tokenizer *tokenizer, int32_t flags,
                             bitnet_stream_decoder **out_decoder);

/** Adds token `id`; *out_text and *out_length are what may be printed now:
 *  complete characters (and invalid bytes as they are), possibly nothing.
 *  The text stays valid until the next call on `decoder`. */
BITNET_RT_API bitnet_status bitnet_stream_decoder_push(
    bitnet_stream_decoder *decoder, int32_t id, const char **out_text,
    size_t *out_length);

/** Gives the bytes still held back (an unfinished character at the end of
 *  the stream) and starts over. Valid until the next call on `decoder`. */
BITNET_RT_API void bitnet_stream_decoder_flush(bitnet_stream_decoder *decoder,
                                               const char **out_text,
                                               size_t *out_length);

/** Frees a stream decoder. NULL is fine. */
BITNET_RT_API void bitnet_stream_decoder_free(bitnet_stream_decoder *decoder);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BITNET_RT_TOKENIZER_H */
