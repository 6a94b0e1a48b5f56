/*===- tool_text.h - Text files and character vocabularies ---------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * What bitnet-generate and bitnet-perplexity share besides the runtime's
 * tokenizer: reading a text file whole (a prompt, a text to score), and the
 * character vocabulary of models without a tokenizer (metadata entry
 * bitnet.vocab, a JSON list of strings, split longest match first). Errors
 * that end the program name it (program_invocation_short_name: the tools
 * define _GNU_SOURCE).
 *
 *===----------------------------------------------------------------------===*/

#ifndef BITNET_RT_TOOLS_TOOL_TEXT_H
#define BITNET_RT_TOOLS_TOOL_TEXT_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Ends the program with a message: "TOOL: " and `fmt` with `arg`. */
static inline void tool_fail(const char *fmt, const char *arg) {
  fprintf(stderr, "%s: ", program_invocation_short_name);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  exit(1);
}

static inline void tool_out_of_memory(void) {
  tool_fail("out of memory (%s)", "allocation");
}

/* Zeroed memory, or exit on failure. */
static inline void *tool_xmalloc(size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (p == NULL)
    tool_out_of_memory();
  return p;
}

/* Reads the file at `path` whole, NUL-terminated, into *out (free() it) and
 * its length into *out_len. Returns NULL on success, else a message (the
 * file is missing or unreadable, not a regular file, holds a NUL byte). A
 * FIFO or device is refused without blocking. */
static inline const char *tool_read_text_file(const char *path, char **out,
                                              size_t *out_len) {
  static char message[256];
  *out = NULL;
  *out_len = 0;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    snprintf(message, sizeof(message), "%s", strerror(errno));
    return message;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return "not a regular file";
  }
  size_t cap = (size_t)st.st_size + 1, len = 0;
  char *text = (char *)tool_xmalloc(cap);
  for (;;) {
    if (len + 1 == cap) {
      cap *= 2;
      char *grown = (char *)realloc(text, cap);
      if (grown == NULL)
        tool_out_of_memory();
      text = grown;
    }
    ssize_t got = read(fd, text + len, cap - 1 - len);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      snprintf(message, sizeof(message), "%s", strerror(errno));
      close(fd);
      free(text);
      return message;
    }
    if (got == 0)
      break;
    len += (size_t)got;
  }
  close(fd);
  text[len] = '\0';
  if (memchr(text, '\0', len) != NULL) {
    free(text);
    return "holds a NUL byte: not a text file";
  }
  *out = text;
  *out_len = len;
  return NULL;
}

typedef struct vocab {
  char **text;
  size_t *len;
  int64_t size;
} vocab;

static inline void put_utf8(char **out, unsigned cp) {
  char *o = *out;
  if (cp < 0x80) {
    *o++ = (char)cp;
  } else if (cp < 0x800) {
    *o++ = (char)(0xC0 | (cp >> 6));
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *o++ = (char)(0xE0 | (cp >> 12));
    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  }
  *out = o;
}

/* Parses `json`, a list of strings; returns 0, or -1 with `error` set. */
static inline int parse_vocab(const char *json, vocab *v, const char **error) {
  const char *p = json;
  size_t cap = 256;
  v->size = 0;
  v->text = (char **)tool_xmalloc(cap * sizeof(char *));
  v->len = (size_t *)tool_xmalloc(cap * sizeof(size_t));
  while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
    ++p;
  if (*p++ != '[') {
    *error = "expected '['";
    return -1;
  }
  for (;;) {
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == ',')
      ++p;
    if (*p == ']')
      return 0;
    if (*p++ != '"') {
      *error = "expected a string";
      return -1;
    }
    char *s = (char *)tool_xmalloc(strlen(p) + 1), *o = s;
    while (*p != '"') {
      if (*p == '\0') {
        *error = "unterminated string";
        return -1;
      }
      if (*p != '\\') {
        *o++ = *p++;
        continue;
      }
      ++p;
      switch (*p++) {
      case 'n': *o++ = '\n'; break;
      case 't': *o++ = '\t'; break;
      case 'r': *o++ = '\r'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case '/': *o++ = '/'; break;
      case '\\': *o++ = '\\'; break;
      case '"': *o++ = '"'; break;
      case 'u': {
        unsigned cp = 0;
        for (int k = 0; k < 4; ++k, ++p) {
          char c = *p;
          int d = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
          if (d < 0) {
            *error = "bad \\u escape";
            return -1;
          }
          cp = cp * 16 + (unsigned)d;
        }
        put_utf8(&o, cp);
        break;
      }
      default:
        *error = "bad escape";
        return -1;
      }
    }
    ++p;
    if ((size_t)v->size == cap) {
      cap *= 2;
      v->text = (char **)realloc(v->text, cap * sizeof(char *));
      v->len = (size_t *)realloc(v->len, cap * sizeof(size_t));
      if (!v->text || !v->len)
        tool_out_of_memory();
    }
    v->len[v->size] = (size_t)(o - s);
    *o = '\0';
    v->text[v->size++] = s;
  }
}

/* Splits `text` into tokens, longest match first; bytes no token starts
 * with are skipped (and counted in *skipped). */
static inline int64_t encode(const vocab *v, const char *text, int32_t *ids,
                      int64_t *skipped) {
  int64_t n = 0;
  size_t len = strlen(text);
  *skipped = 0;
  for (size_t at = 0; at < len;) {
    int64_t best = -1;
    size_t best_len = 0;
    for (int64_t t = 0; t < v->size; ++t)
      if (v->len[t] > best_len && v->len[t] <= len - at &&
          memcmp(text + at, v->text[t], v->len[t]) == 0) {
        best = t;
        best_len = v->len[t];
      }
    if (best < 0) {
      ++*skipped;
      ++at;
      continue;
    }
    ids[n++] = (int32_t)best;
    at += best_len;
  }
  return n;
}

static inline void free_vocab(vocab *v) {
  for (int64_t t = 0; t < v->size; ++t)
    free(v->text[t]);
  free(v->text);
  free(v->len);
}

#endif /* BITNET_RT_TOOLS_TOOL_TEXT_H */
