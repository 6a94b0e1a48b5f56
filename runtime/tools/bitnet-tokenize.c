/*===- bitnet-tokenize.c - Text to token ids and back ---------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * Encodes text (stdin, or files) with a model's tokenizer and prints the
 * ids, or (--decode) reads ids and prints the text. The tokenizer comes from a
 * SOURCE; each kind of source is one entry of `sources` below (a test of the
 * path and a loader), so that more kinds are one function each.
 *
 * Exit status: 0 on success, 1 when loading or tokenizing fails, 2 for bad
 * command-line usage.
 *
 *===----------------------------------------------------------------------===*/

#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bitnet_rt/bitnet_rt.h"
#include "bitnet_rt/tokenizer.h"

#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: bitnet-tokenize SOURCE [options] [FILE...] < TEXT\n"
    "       bitnet-tokenize SOURCE --decode [options] [FILE...] < IDS\n"
    "\n"
    "Encodes the text on stdin with a tokenizer and prints the token ids,\n"
    "separated by spaces, on one line; with --decode reads token ids\n"
    "(separated by white space or commas) and prints their text. Given\n"
    "FILEs, it reads each in turn instead of stdin: one line of ids per\n"
    "file, or the texts one after the other.\n"
    "\n"
    "SOURCE is where the tokenizer comes from:\n"
    "  MODEL.so             a model compiled by bitnet-compile (its metadata\n"
    "                       entry bitnet.tokenizer)\n"
    "  TOKENIZER.json       a tokenizer in the runtime's JSON form (see\n"
    "                       runtime/README.md, \"Tokenizer\")\n"
    "\n"
    "options:\n"
    "  --add-bos            put the BOS token first (encoding)\n"
    "  --special-as-text    the text of control tokens (<|eot_id|>, ...) in\n"
    "                       the input is plain text, not those tokens\n"
    "  --skip-special       print nothing for control tokens (decoding)\n"
    "  --time               print the encoding speed on stderr\n"
    "  --help               show this text\n";

static void usage_error(const char *msg, const char *arg) {
  fprintf(stderr, "bitnet-tokenize: ");
  fprintf(stderr, msg, arg);
  fprintf(stderr, "\n(run bitnet-tokenize --help for the options)\n");
  exit(EXIT_USAGE);
}

/* Prints `status` (prefixed with `path` when given) and exits with 1. */
static void check(bitnet_status status, const char *path) {
  if (status == BITNET_OK)
    return;
  if (path)
    fprintf(stderr, "bitnet-tokenize: %s: %s\n", path,
            bitnet_status_message(status));
  else
    fprintf(stderr, "bitnet-tokenize: %s\n", bitnet_status_message(status));
  bitnet_status_free(status);
  exit(1);
}

/* Reads all of `f` into a NUL-terminated buffer. */
static char *read_all(FILE *f, size_t *out_len) {
  size_t len = 0, cap = 1 << 16;
  char *buf = malloc(cap);
  for (;;) {
    if (buf == NULL)
      return NULL;
    len += fread(buf + len, 1, cap - len - 1, f);
    if (ferror(f)) {
      free(buf);
      return NULL;
    }
    if (feof(f))
      break;
    if (cap - len - 1 == 0) {
      cap *= 2;
      char *more = realloc(buf, cap);
      if (more == NULL)
        free(buf);
      buf = more;
    }
  }
  buf[len] = '\0';
  *out_len = len;
  return buf;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/*===----------------------------------------------------------------------===*
 * Sources of a tokenizer
 *===----------------------------------------------------------------------===*/

static int is_json(const char *path) { return ends_with(path, ".json"); }

static bitnet_status load_json(const char *path, bitnet_tokenizer **out) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return bitnet_status_make(errno == ENOENT ? BITNET_STATUS_NOT_FOUND
                                              : BITNET_STATUS_IO_ERROR,
                              "cannot open: %s", strerror(errno));
  size_t len = 0;
  char *json = read_all(f, &len);
  fclose(f);
  if (json == NULL)
    return bitnet_status_make(BITNET_STATUS_IO_ERROR, "cannot read the file");
  bitnet_status status = bitnet_tokenizer_create(json, len, out);
  free(json);
  return status;
}

static int is_model(const char *path) {
  return ends_with(path, ".so") || strstr(path, ".so.") != NULL;
}

static bitnet_status load_model(const char *path, bitnet_tokenizer **out) {
  bitnet_model *model = NULL;
  BITNET_RETURN_IF_ERROR(bitnet_model_load(path, &model));
  bitnet_status status = bitnet_tokenizer_create_from_model(model, out);
  bitnet_model_release(model);
  return status;
}

static const struct source {
  const char *what;
  int (*matches)(const char *path);
  bitnet_status (*load)(const char *path, bitnet_tokenizer **out);
} sources[] = {
    {"a compiled model (.so)", is_model, load_model},
    {"a tokenizer JSON file (.json)", is_json, load_json},
};
#define NUM_SOURCES ((int)(sizeof(sources) / sizeof(sources[0])))

static bitnet_tokenizer *load_tokenizer(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "bitnet-tokenize: %s: %s\n", path, strerror(errno));
    exit(1);
  }
  for (int i = 0; i < NUM_SOURCES; ++i)
    if (!S_ISDIR(st.st_mode) && sources[i].matches(path)) {
      bitnet_tokenizer *tokenizer = NULL;
      check(sources[i].load(path, &tokenizer), path);
      return tokenizer;
    }
  fprintf(stderr, "bitnet-tokenize: %s: not a source of a tokenizer; give",
          path);
  for (int i = 0; i < NUM_SOURCES; ++i)
    fprintf(stderr, "%s %s", i == 0 ? "" : i + 1 == NUM_SOURCES ? " or" : ",",
            sources[i].what);
  fprintf(stderr, "\n");
  exit(1);
}

/*===----------------------------------------------------------------------===*
 * Main
 *===----------------------------------------------------------------------===*/

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Opens `path` ("-" or NULL: stdin) and reads all of it; NULL, with a
 * message, when that fails. */
static char *read_input(const char *path, size_t *len) {
  FILE *f = path && strcmp(path, "-") ? fopen(path, "rb") : stdin;
  if (f == NULL) {
    fprintf(stderr, "bitnet-tokenize: %s: %s\n", path, strerror(errno));
    return NULL;
  }
  char *text = read_all(f, len);
  if (text == NULL)
    fprintf(stderr, "bitnet-tokenize: %s: cannot read it\n",
            f == stdin ? "stdin" : path);
  if (f != stdin)
    fclose(f);
  return text;
}

static int encode(const bitnet_tokenizer *tokenizer, const char *path,
                  int32_t flags, int timed) {
  size_t len = 0;
  char *text = read_input(path, &len);
  if (text == NULL)
    return 1;
  int32_t *ids = NULL;
  int64_t n = 0;
  double t0 = now_seconds();
  check(bitnet_tokenizer_encode(tokenizer, text, len, flags, &ids, &n), NULL);
  double seconds = now_seconds() - t0;
  for (int64_t k = 0; k < n; ++k)
    printf(k ? " %d" : "%d", ids[k]);
  printf("\n");
  if (timed)
    fprintf(stderr,
            "encoded %zu bytes into %lld tokens in %.3f s: %.2f MB/s, "
            "%.2f bytes per token\n",
            len, (long long)n, seconds,
            seconds > 0 ? (double)len / seconds / 1e6 : 0.0,
            n > 0 ? (double)len / (double)n : 0.0);
  free(ids);
  free(text);
  return fflush(stdout) == 0 ? 0 : 1;
}

static int decode(const bitnet_tokenizer *tokenizer, const char *path,
                  int32_t flags) {
  size_t len = 0;
  char *text = read_input(path, &len);
  if (text == NULL)
    return 1;
  bitnet_stream_decoder *decoder = NULL;
  check(bitnet_stream_decoder_create(tokenizer, flags, &decoder), NULL);
  const char *bytes;
  size_t n;
  long long index = 0;
  int rc = 0;
  for (char *p = text; rc == 0;) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',')
      ++p;
    if (*p == '\0')
      break;
    char *end;
    errno = 0;
    long long id = strtoll(p, &end, 10);
    if (end == p || errno || id < INT32_MIN || id > INT32_MAX ||
        (*end && !strchr(" \t\n\r,", *end))) {
      size_t shown = strcspn(p, " \t\n\r,");
      fprintf(stderr, "bitnet-tokenize: input id %lld ('%.*s') is not an "
                      "integer\n",
              index, (int)(shown > 40 ? 40 : shown), p);
      rc = 1;
      break;
    }
    bitnet_status status =
        bitnet_stream_decoder_push(decoder, (int32_t)id, &bytes, &n);
    if (status != BITNET_OK) {
      fprintf(stderr, "bitnet-tokenize: input id %lld: %s\n", index,
              bitnet_status_message(status));
      bitnet_status_free(status);
      rc = 1;
      break;
    }
    fwrite(bytes, 1, n, stdout);
    p = end;
    ++index;
  }
  bitnet_stream_decoder_flush(decoder, &bytes, &n);
  fwrite(bytes, 1, n, stdout);
  bitnet_stream_decoder_free(decoder);
  free(text);
  return fflush(stdout) == 0 ? rc : 1;
}

int main(int argc, char **argv) {
  const char *source = NULL;
  const char **files = calloc((size_t)argc, sizeof(char *));
  int num_files = 0, decoding = 0, timed = 0;
  int32_t encode_flags = 0, decode_flags = 0;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage_text, stdout);
      free(files);
      return 0;
    } else if (!strcmp(a, "--decode")) {
      decoding = 1;
    } else if (!strcmp(a, "--add-bos")) {
      encode_flags |= BITNET_ENCODE_ADD_BOS;
    } else if (!strcmp(a, "--special-as-text")) {
      encode_flags |= BITNET_ENCODE_SPECIAL_AS_TEXT;
    } else if (!strcmp(a, "--skip-special")) {
      decode_flags |= BITNET_DECODE_SKIP_SPECIAL;
    } else if (!strcmp(a, "--time")) {
      timed = 1;
    } else if (a[0] == '-' && a[1] != '\0') {
      usage_error("unknown option '%s'", a);
    } else if (!source) {
      source = a;
    } else {
      files[num_files++] = a;
    }
  }
  if (!source)
    usage_error("%s", "no tokenizer source given");
  if (decoding && (encode_flags || timed))
    usage_error("%s", "--add-bos, --special-as-text and --time are for "
                      "encoding, not --decode");
  if (!decoding && decode_flags)
    usage_error("%s", "--skip-special is for --decode");
  bitnet_tokenizer *tokenizer = load_tokenizer(source);
  int rc = 0;
  for (int i = 0; i < (num_files ? num_files : 1) && rc == 0; ++i)
    rc = decoding ? decode(tokenizer, files[i], decode_flags)
                  : encode(tokenizer, files[i], encode_flags, timed);
  bitnet_tokenizer_free(tokenizer);
  free(files);
  return rc;
}
