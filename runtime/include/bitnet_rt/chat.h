/*===- bitnet_rt/chat.h - Chat templates ----------------------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * Turns chat messages into the text a model was trained on. A compiled model
 * carries its chat template, the Jinja text of Hugging Face's
 * tokenizer_config.json or GGUF's tokenizer.chat_template, as the metadata
 * entry "bitnet.chat_template". This runtime has no Jinja engine: it
 * recognises the templates it knows by distinctive fragments of their text
 * and formats messages as they would, in C. Any other template is an error
 * (UNAVAILABLE) that names the ones it knows; nothing falls back to a
 * guess.
 *
 *   bitnet_chat_template *t;  bitnet_chat_template_create_from_model(m, tok, &t)
 *   bitnet_chat_message msgs[] = {{"system", "Be brief."}, {"user", "Hi"}};
 *   char *text; size_t len;   bitnet_chat_template_apply(t, msgs, 2,
 *                               BITNET_CHAT_ADD_GENERATION_PROMPT, &text, &len)
 *   ... bitnet_tokenizer_encode(tok, text, len, 0, &ids, &n); free(text)
 *
 * The text is meant to be encoded with control tokens parsed (flags 0) and
 * without BITNET_ENCODE_ADD_BOS: it has the BOS token's text where the
 * model wants the token. A template is immutable: threads may share one.
 *
 *===----------------------------------------------------------------------===*/

#ifndef BITNET_RT_CHAT_H
#define BITNET_RT_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "bitnet_rt/bitnet_rt.h"
#include "bitnet_rt/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A recognised chat template. */
typedef struct bitnet_chat_template bitnet_chat_template;

/** One message: its role ("system", "user", "assistant", ...) and its
 *  content, both NUL-terminated UTF-8. */
typedef struct bitnet_chat_message {
  const char *role;
  const char *content;
} bitnet_chat_message;

/** Flags of bitnet_chat_template_apply. */
enum {
  /** End with what starts the assistant's reply ("Assistant: ", Llama 3's
   *  assistant header): the model writes the reply from there. */
  BITNET_CHAT_ADD_GENERATION_PROMPT = 1,
  /** The messages continue a conversation whose text so far ends with an
   *  assistant's reply, generated after the generation prompt: the text
   *  starts with what closes that reply (the end-of-turn token's text) and
   *  has no beginning of conversation (no BOS, no Llama 3.1 system header).
   *  For a conversation kept in a KV cache, one turn at a time. */
  BITNET_CHAT_CONTINUE = 2,
};

/** Recognises the chat template `source` (its Jinja text, NUL-terminated)
 *  for a model with `tokenizer` (which gives the BOS token's text; the
 *  template does not keep it). A template it does not know: UNAVAILABLE,
 *  with a message naming the ones it knows. A template that needs a BOS
 *  token whose text does not encode to it (not a control or user-defined
 *  token): FAILED_PRECONDITION. */
BITNET_RT_API bitnet_status
bitnet_chat_template_create(const char *source,
                            const bitnet_tokenizer *tokenizer,
                            bitnet_chat_template **out_template);

/** The same for the metadata entry "bitnet.chat_template" of `model`;
 *  NOT_FOUND when the model has none. Messages name the model's file. */
BITNET_RT_API bitnet_status bitnet_chat_template_create_from_model(
    const bitnet_model *model, const bitnet_tokenizer *tokenizer,
    bitnet_chat_template **out_template);

/** Frees a template. NULL is fine. */
BITNET_RT_API void bitnet_chat_template_free(bitnet_chat_template *tmpl);

/** The name of the format recognised ("bitnet-b1.58", "llama-3",
 *  "llama-3.1"); "" for NULL. */
BITNET_RT_API const char *
bitnet_chat_template_name(const bitnet_chat_template *tmpl);

/** The formats this runtime knows, for messages: a NUL-terminated list
 *  such as "bitnet-b1.58 (BitNet b1.58 2B-4T), llama-3 (...), ...". */
BITNET_RT_API const char *bitnet_chat_template_known(void);

/** Formats `num_messages` messages as the template would (Jinja's `trim` of
 *  each content, as the templates have it). `flags` is a combination of
 *  BITNET_CHAT_*. On success *out_text is a NUL-terminated string of
 *  *out_length bytes that the caller frees with free(); on error both are
 *  zeroed. A NULL role or content: INVALID_ARGUMENT naming the message. */
BITNET_RT_API bitnet_status bitnet_chat_template_apply(
    const bitnet_chat_template *tmpl, const bitnet_chat_message *messages,
    int64_t num_messages, int32_t flags, char **out_text, size_t *out_length);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BITNET_RT_CHAT_H */
