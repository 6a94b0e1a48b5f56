/*===- chat.c - Chat templates --------------------------------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * No Jinja here: a template is recognised by fragments of its text, looked
 * for in a normalised copy (white space removed, double quotes made single,
 * Jinja's '-' whitespace control dropped, message.role written
 * message['role']), so that formatting differences between copies of one
 * template do not matter. Each known format is then written out in C.
 *
 *===----------------------------------------------------------------------===*/

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bitnet_rt/chat.h"
#include "internal.h"

typedef enum chat_format {
  FORMAT_BITNET,   /* Role: content<|eot_id|> ... Assistant: */
  FORMAT_LLAMA3,   /* <|start_header_id|>role<|end_header_id|>\n\n... */
  FORMAT_LLAMA3_1, /* the same after a system header with dates */
} chat_format;

static const char *const format_names[] = {"bitnet-b1.58", "llama-3",
                                           "llama-3.1"};

static const char known_formats[] =
    "bitnet-b1.58 (BitNet b1.58 2B-4T), llama-3 (Llama 3 Instruct), "
    "llama-3.1 (Llama 3.1, 3.2 and 3.3 Instruct)";

struct bitnet_chat_template {
  chat_format format;
  int trim;       /* contents go through Jinja's trim */
  char *bos_text; /* text of the BOS token where the text starts with it */
  char date[64];  /* llama-3.1: "Today Date: ..." */
};

/*===----------------------------------------------------------------------===*
 * A growable string
 *===----------------------------------------------------------------------===*/

typedef struct buffer {
  char *data;
  size_t len, cap;
  int failed;
} buffer;

static void put_n(buffer *b, const char *s, size_t n) {
  if (b->failed)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *more = realloc(b->data, cap);
    if (more == NULL) {
      b->failed = 1;
      return;
    }
    b->data = more;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void put(buffer *b, const char *s) { put_n(b, s, strlen(s)); }

/*===----------------------------------------------------------------------===*
 * Recognising a template
 *===----------------------------------------------------------------------===*/

static int is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

/* Replaces every `from` in `*s` with `to` (no longer than `from`). */
static void replace_all(char *s, const char *from, const char *to) {
  size_t nf = strlen(from), nt = strlen(to);
  char *out = s;
  for (const char *in = s; *in;) {
    if (strncmp(in, from, nf) == 0) {
      memcpy(out, to, nt);
      out += nt;
      in += nf;
    } else {
      *out++ = *in++;
    }
  }
  *out = '\0';
}

/* The normalised copy of `source` (see the top of the file), or NULL. */
static char *normalise(const char *source) {
  size_t n = strlen(source);
  char *s = malloc(n + 1);
  if (s == NULL)
    return NULL;
  size_t len = 0;
  for (size_t i = 0; i < n; ++i)
    if (!is_ascii_space(source[i]))
      s[len++] = source[i] == '"' ? '\'' : source[i];
  s[len] = '\0';
  replace_all(s, "{%-", "{%");
  replace_all(s, "-%}", "%}");
  replace_all(s, "{{-", "{{");
  replace_all(s, "-}}", "}}");
  /* ("message['role']" is one byte longer than "message.role": widen.) */
  char *wide = malloc(2 * len + 1), *o = wide;
  if (wide == NULL) {
    free(s);
    return NULL;
  }
  for (const char *in = s; *in;) {
    if (strncmp(in, "message.role", 12) == 0) {
      o += sprintf(o, "message['role']");
      in += 12;
    } else if (strncmp(in, "message.content", 15) == 0) {
      o += sprintf(o, "message['content']");
      in += 15;
    } else {
      *o++ = *in++;
    }
  }
  *o = '\0';
  free(s);
  return wide;
}

/* Whether every "<|end_header_id|>" in `source` that is followed by a line
 * break in the template is followed by exactly two ("\n\n", as real line
 * breaks or as escapes in a Jinja string). */
static int headers_end_with_blank_line(const char *source) {
  const char *tag = "<|end_header_id|>";
  for (const char *p = strstr(source, tag); p; p = strstr(p + 1, tag)) {
    const char *q = p + strlen(tag);
    if (strncmp(q, "\n\n", 2) == 0 || strncmp(q, "\\n\\n", 4) == 0)
      continue;
    if (*q == '\n' || strncmp(q, "\\n", 2) == 0)
      return 0;
  }
  return 1;
}

/* Reads the quoted string at `p` ('...' or "...") into `out`; 0 when there
 * is none or it does not fit. */
static int read_quoted(const char *p, char *out, size_t size) {
  char quote = *p;
  if (quote != '\'' && quote != '"')
    return 0;
  const char *end = strchr(p + 1, quote);
  if (end == NULL || (size_t)(end - p - 1) >= size)
    return 0;
  memcpy(out, p + 1, (size_t)(end - p - 1));
  out[end - p - 1] = '\0';
  return 1;
}

/* Llama 3.1's "Today Date": the template's default date_string, a
 * literal or strftime_now("FORMAT") (Llama 3.2: today's date, as Hugging
 * Face and llama.cpp give it). 0 when the template has neither. */
static int read_date(const char *source, char *date, size_t size) {
  const char *p = strstr(source, "set date_string");
  if (p == NULL)
    return 0;
  p += strlen("set date_string");
  while (is_ascii_space(*p))
    ++p;
  if (*p++ != '=')
    return 0;
  while (is_ascii_space(*p))
    ++p;
  if (strncmp(p, "strftime_now(", 13) == 0) {
    char format[32];
    if (!read_quoted(p + 13, format, sizeof(format)))
      return 0;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    return strftime(date, size, format, &tm) > 0;
  }
  return read_quoted(p, date, size);
}

static bitnet_status unknown_template(const char *source) {
  /* The start of the template, on one line, for the message. */
  char start[61];
  size_t n = 0;
  for (const char *p = source; *p && n < sizeof(start) - 1; ++p)
    start[n++] = is_ascii_space(*p) ? ' ' : *p;
  start[n] = '\0';
  return bitnet_status_make(
      BITNET_STATUS_UNAVAILABLE,
      "not a chat template this runtime knows (it recognises %s, by "
      "fragments of their text, and formats them in C: there is no Jinja "
      "engine); the template starts '%s%s'",
      known_formats, start, source[n] ? "..." : "");
}

bitnet_status bitnet_chat_template_create(const char *source,
                                          const bitnet_tokenizer *tokenizer,
                                          bitnet_chat_template **out_template) {
  BITNET_CHECK_ARG(out_template, "bitnet_chat_template_create");
  *out_template = NULL;
  BITNET_CHECK_ARG(source, "bitnet_chat_template_create");
  BITNET_CHECK_ARG(tokenizer, "bitnet_chat_template_create");
  char *s = normalise(source);
  if (s == NULL)
    return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                              "bitnet_chat_template_create: out of memory");
  bitnet_chat_template t = {.format = FORMAT_BITNET, .trim = 1};
  int known = 0, bos_in_template = 0;
  if (strstr(s, "message['role']|capitalize+':'+message['content']|trim+"
                "'<|eot_id|>'") &&
      strstr(s, "{{'Assistant:'}}") &&
      (strstr(source, "': '") || strstr(source, "\": \"")) &&
      (strstr(source, "'Assistant: '") || strstr(source, "\"Assistant: \""))) {
    t.format = FORMAT_BITNET;
    known = 1;
  } else if (strstr(s, "'<|start_header_id|>'+message['role']+"
                       "'<|end_header_id|>") &&
             strstr(s, "'<|start_header_id|>assistant<|end_header_id|>") &&
             strstr(s, "bos_token") && headers_end_with_blank_line(source) &&
             (strstr(s, "message['content']|trim+'<|eot_id|>'") ||
              strstr(s, "message['content']+'<|eot_id|>'"))) {
    t.trim = strstr(s, "message['content']|trim+'<|eot_id|>'") != NULL;
    bos_in_template = 1;
    known = 1;
    if (strstr(s, "CuttingKnowledgeDate:December2023")) {
      t.format = FORMAT_LLAMA3_1;
      known = strstr(s, "'<|start_header_id|>system<|end_header_id|>") &&
              strstr(s, "'TodayDate:'+date_string") &&
              read_date(source, t.date, sizeof(t.date));
    } else {
      t.format = FORMAT_LLAMA3;
    }
  }
  free(s);
  if (!known)
    return unknown_template(source);

  /* The BOS: in Llama 3's text (its bos_token); for BitNet where the
   * tokenizer asks for it, as llama.cpp adds it to a chat. Either way it is
   * text, so it must encode to the token. */
  int32_t bos = bitnet_tokenizer_bos_id(tokenizer);
  if (bos >= 0 && (bos_in_template || bitnet_tokenizer_add_bos(tokenizer))) {
    int32_t type = bitnet_tokenizer_token_type(tokenizer, bos);
    if (type != BITNET_TOKEN_CONTROL && type != BITNET_TOKEN_USER_DEFINED)
      return bitnet_status_make(
          BITNET_STATUS_FAILED_PRECONDITION,
          "chat template %s: the BOS token (%d, '%s') is not a control or "
          "user-defined token, so its text would not encode to it",
          format_names[t.format], (int)bos,
          bitnet_tokenizer_token_text(tokenizer, bos));
    t.bos_text = strdup(bitnet_tokenizer_token_text(tokenizer, bos));
  } else {
    t.bos_text = strdup("");
  }
  bitnet_chat_template *out = malloc(sizeof(*out));
  if (out == NULL || t.bos_text == NULL) {
    free(out);
    free(t.bos_text);
    return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                              "bitnet_chat_template_create: out of memory");
  }
  *out = t;
  *out_template = out;
  return BITNET_OK;
}

bitnet_status bitnet_chat_template_create_from_model(
    const bitnet_model *model, const bitnet_tokenizer *tokenizer,
    bitnet_chat_template **out_template) {
  BITNET_CHECK_ARG(out_template, "bitnet_chat_template_create_from_model");
  *out_template = NULL;
  BITNET_CHECK_ARG(model, "bitnet_chat_template_create_from_model");
  const char *path = bitnet_model_path(model);
  const char *source = bitnet_model_metadata(model, "bitnet.chat_template");
  if (source == NULL)
    return bitnet_status_make(BITNET_STATUS_NOT_FOUND,
                              "model '%s' has no chat template (metadata "
                              "entry bitnet.chat_template)",
                              path ? path : "");
  bitnet_status status =
      bitnet_chat_template_create(source, tokenizer, out_template);
  if (status == BITNET_OK)
    return BITNET_OK;
  bitnet_status named = bitnet_status_make(
      bitnet_status_get_code(status), "model '%s': bitnet.chat_template: %s",
      path ? path : "", bitnet_status_message(status));
  bitnet_status_free(status);
  return named;
}

void bitnet_chat_template_free(bitnet_chat_template *tmpl) {
  if (tmpl == NULL)
    return;
  free(tmpl->bos_text);
  free(tmpl);
}

const char *bitnet_chat_template_name(const bitnet_chat_template *tmpl) {
  return tmpl ? format_names[tmpl->format] : "";
}

const char *bitnet_chat_template_known(void) { return known_formats; }

/*===----------------------------------------------------------------------===*
 * Formatting
 *===----------------------------------------------------------------------===*/

/* Length of the UTF-8 character at `s` (up to `end`) when it is one of
 * Python's white space characters (what Jinja's trim strips), else 0. */
static size_t space_at(const unsigned char *s, const unsigned char *end) {
  if (s >= end)
    return 0;
  unsigned c = s[0];
  if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1C && c <= 0x1F))
    return 1;
  unsigned cp;
  size_t n;
  if ((c & 0xE0) == 0xC0 && end - s >= 2 && (s[1] & 0xC0) == 0x80) {
    cp = (c & 0x1Fu) << 6 | (s[1] & 0x3Fu);
    n = 2;
  } else if ((c & 0xF0) == 0xE0 && end - s >= 3 && (s[1] & 0xC0) == 0x80 &&
             (s[2] & 0xC0) == 0x80) {
    cp = (c & 0x0Fu) << 12 | (s[1] & 0x3Fu) << 6 | (s[2] & 0x3Fu);
    n = 3;
  } else {
    return 0;
  }
  int space = cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
              (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
              cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
  return space ? n : 0;
}

/* Appends `s`, without the white space at its ends when `trim`. */
static void put_content(buffer *b, const char *s, int trim) {
  const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
  if (trim) {
    for (size_t n; (n = space_at(p, end)) != 0;)
      p += n;
    /* From the end: the last character that is not white space. */
    const unsigned char *last = p;
    for (const unsigned char *q = p; q < end;) {
      size_t n = space_at(q, end);
      if (n == 0) {
        ++q;
        while (q < end && (*q & 0xC0) == 0x80)
          ++q;
        last = q;
      } else {
        q += n;
      }
    }
    end = last;
  }
  put_n(b, (const char *)p, (size_t)(end - p));
}

/* Jinja's capitalize: the first letter upper case, the rest lower (ASCII). */
static void put_capitalized(buffer *b, const char *role) {
  for (size_t i = 0; role[i]; ++i) {
    char c = role[i];
    if (i == 0 && c >= 'a' && c <= 'z')
      c = (char)(c - 'a' + 'A');
    else if (i > 0 && c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    put_n(b, &c, 1);
  }
}

/* One message of Llama 3's loop. */
static void put_llama3_message(buffer *b, const bitnet_chat_template *t,
                               const bitnet_chat_message *m) {
  /* Llama 3.1 writes tool results under an "ipython" header, untrimmed. */
  int tool = t->format == FORMAT_LLAMA3_1 &&
             (!strcmp(m->role, "tool") || !strcmp(m->role, "ipython"));
  put(b, "<|start_header_id|>");
  put(b, tool ? "ipython" : m->role);
  put(b, "<|end_header_id|>\n\n");
  put_content(b, m->content, t->trim && !tool);
  put(b, "<|eot_id|>");
}

bitnet_status bitnet_chat_template_apply(const bitnet_chat_template *t,
                                         const bitnet_chat_message *messages,
                                         int64_t num_messages, int32_t flags,
                                         char **out_text,
                                         size_t *out_length) {
  BITNET_CHECK_ARG(out_text, "bitnet_chat_template_apply");
  BITNET_CHECK_ARG(out_length, "bitnet_chat_template_apply");
  *out_text = NULL;
  *out_length = 0;
  BITNET_CHECK_ARG(t, "bitnet_chat_template_apply");
  if (num_messages < 0 || (num_messages > 0 && messages == NULL))
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "bitnet_chat_template_apply: %lld messages%s",
                              (long long)num_messages,
                              messages ? "" : " at NULL");
  for (int64_t i = 0; i < num_messages; ++i)
    if (messages[i].role == NULL || messages[i].content == NULL)
      return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                                "bitnet_chat_template_apply: message %lld has "
                                "a NULL %s",
                                (long long)i,
                                messages[i].role ? "content" : "role");
  if (flags & ~(BITNET_CHAT_ADD_GENERATION_PROMPT | BITNET_CHAT_CONTINUE))
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "bitnet_chat_template_apply: unknown flags 0x%x",
                              (unsigned)flags);
  int cont = (flags & BITNET_CHAT_CONTINUE) != 0;
  buffer b = {0};
  put(&b, ""); /* an empty string rather than NULL when there is nothing */
  if (cont)
    put(&b, "<|eot_id|>"); /* closes the reply */
  if (t->format == FORMAT_BITNET) {
    if (!cont)
      put(&b, t->bos_text);
    for (int64_t i = 0; i < num_messages; ++i) {
      put_capitalized(&b, messages[i].role);
      put(&b, ": ");
      put_content(&b, messages[i].content, t->trim);
      put(&b, "<|eot_id|>");
    }
    if (flags & BITNET_CHAT_ADD_GENERATION_PROMPT)
      put(&b, "Assistant: ");
  } else {
    int64_t first = 0;
    if (t->format == FORMAT_LLAMA3_1 && !cont) {
      /* The system header comes first, with the system message if the
       * first message is one. */
      put(&b, t->bos_text);
      put(&b, "<|start_header_id|>system<|end_header_id|>\n\n"
              "Cutting Knowledge Date: December 2023\nToday Date: ");
      put(&b, t->date);
      put(&b, "\n\n");
      if (num_messages > 0 && !strcmp(messages[0].role, "system")) {
        put_content(&b, messages[0].content, 1);
        first = 1;
      }
      put(&b, "<|eot_id|>");
    }
    for (int64_t i = first; i < num_messages; ++i) {
      /* Llama 3 puts its bos_token before the first message only. */
      if (i == 0 && !cont && t->format == FORMAT_LLAMA3)
        put(&b, t->bos_text);
      put_llama3_message(&b, t, &messages[i]);
    }
    if (flags & BITNET_CHAT_ADD_GENERATION_PROMPT)
      put(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
  }
  if (b.failed) {
    free(b.data);
    return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                              "bitnet_chat_template_apply: out of memory");
  }
  *out_text = b.data;
  *out_length = b.len;
  return BITNET_OK;
}
