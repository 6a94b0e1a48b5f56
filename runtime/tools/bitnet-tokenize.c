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
 * The runtime reads its own tokenizer JSON only. GGUF files, checkpoint
 * directories and Hugging Face tokenizer.json files are read by the
 * compiler: this tool runs `bitnet-compile SOURCE --emit=tokenizer -o -`
 * (the bitnet-compile beside its own executable, else the one on PATH) and
 * reads the JSON it writes, so that the runtime stays free of LLVM.
 *
 * Exit status: 0 on success, 1 when loading or tokenizing fails, 2 for bad
 * command-line usage.
 *
 *===----------------------------------------------------------------------===*/

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bitnet_rt/bitnet_rt.h"
#include "bitnet_rt/tokenizer.h"

#include "tool_version.h"

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
    "  MODEL.gguf           a GGUF file (its tokenizer.ggml.* entries)\n"
    "  CHECKPOINT/          a Hugging Face checkpoint directory (config.json,\n"
    "                       tokenizer.json, tokenizer_config.json)\n"
    "  CHECKPOINT/tokenizer.json  Hugging Face's tokenizer.json, in its\n"
    "                       checkpoint directory\n"
    "The last three are read by bitnet-compile (--emit=tokenizer), which\n"
    "must be beside bitnet-tokenize or on PATH.\n"
    "\n"
    "options:\n"
    "  --add-bos            put the BOS token first (encoding)\n"
    "  --special-as-text    the text of control tokens (<|eot_id|>, ...) in\n"
    "                       the input is plain text, not those tokens\n"
    "  --skip-special       print nothing for control tokens (decoding)\n"
    "  --time               print the encoding speed on stderr\n"
    "  --help               show this text\n"
    "  --version            show the version, git revision, runtime library\n"
    "                       and model ABI\n";

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

/* Reads the file at `path` into a NUL-terminated buffer (*out_text, to be
 * freed), or an error. */
static bitnet_status read_file(const char *path, char **out_text,
                               size_t *out_len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return bitnet_status_make(errno == ENOENT ? BITNET_STATUS_NOT_FOUND
                                              : BITNET_STATUS_IO_ERROR,
                              "cannot open: %s", strerror(errno));
  *out_text = read_all(f, out_len);
  fclose(f);
  if (*out_text == NULL)
    return bitnet_status_make(BITNET_STATUS_IO_ERROR, "cannot read the file");
  return BITNET_OK;
}

static int is_json(const char *path) { return ends_with(path, ".json"); }

static bitnet_status load_json(const char *path, bitnet_tokenizer **out) {
  char *json = NULL;
  size_t len = 0;
  BITNET_RETURN_IF_ERROR(read_file(path, &json, &len));
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

/*===----------------------------------------------------------------------===*
 * Sources read by bitnet-compile
 *===----------------------------------------------------------------------===*/

static int is_executable_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
         access(path, X_OK) == 0;
}

/* The directory part of `path` ("." when it has none), in `dir`. */
static void dir_name(const char *path, char *dir, size_t size) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL)
    snprintf(dir, size, ".");
  else if (slash == path)
    snprintf(dir, size, "/");
  else
    snprintf(dir, size, "%.*s", (int)(slash - path), path);
}

/* Finds bitnet-compile: beside this executable, else on PATH. Returns 1
 * with its path in `out`, or 0 with where it looked in `where`. */
static int find_compiler(char *out, size_t size, char *where,
                         size_t where_size) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  char beside[PATH_MAX + 32] = "";
  if (n > 0) {
    self[n] = '\0';
    char dir[PATH_MAX];
    dir_name(self, dir, sizeof(dir));
    snprintf(beside, sizeof(beside), "%s/bitnet-compile", dir);
    if (is_executable_file(beside)) {
      snprintf(out, size, "%s", beside);
      return 1;
    }
  }
  const char *path = getenv("PATH");
  for (const char *p = path ? path : ""; *p;) {
    size_t len = strcspn(p, ":");
    if (len > 0) {
      snprintf(out, size, "%.*s/bitnet-compile", (int)len, p);
      if (is_executable_file(out))
        return 1;
    }
    p += len + (p[len] == ':');
  }
  snprintf(where, where_size, "neither beside bitnet-tokenize (%s) nor on "
                              "PATH",
           beside[0] ? beside : "its path is unknown");
  return 0;
}

/* Runs `bitnet-compile SOURCE --emit=tokenizer -o -` and makes the
 * tokenizer from its output. Its messages go to stderr as they come. */
static bitnet_status load_through_compiler(const char *source,
                                           const char *what,
                                           bitnet_tokenizer **out) {
  char compiler[PATH_MAX + 32], where[PATH_MAX + 64];
  if (!find_compiler(compiler, sizeof(compiler), where, sizeof(where)))
    return bitnet_status_make(
        BITNET_STATUS_UNAVAILABLE,
        "reading the tokenizer of %s needs bitnet-compile, which converts it "
        "to the runtime's tokenizer JSON (bitnet-compile SOURCE "
        "--emit=tokenizer; the runtime has no GGUF or Hugging Face reader of "
        "its own), and it is %s. Build bitnet-compile, or convert the "
        "tokenizer where it is and give the .json file",
        what, where);
  int fds[2];
  if (pipe(fds) != 0)
    return bitnet_status_make(BITNET_STATUS_IO_ERROR, "pipe: %s",
                              strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  char *argv[] = {compiler, (char *)source, "--emit=tokenizer", "-o", "-",
                  NULL};
  extern char **environ;
  pid_t pid;
  int rc = posix_spawn(&pid, compiler, &actions, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return bitnet_status_make(BITNET_STATUS_UNAVAILABLE,
                              "cannot run %s: %s", compiler, strerror(rc));
  }
  FILE *f = fdopen(fds[0], "rb");
  size_t len = 0;
  char *json = f ? read_all(f, &len) : NULL;
  if (f)
    fclose(f);
  else
    close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    free(json);
    if (WIFEXITED(status))
      return bitnet_status_make(BITNET_STATUS_INVALID_FORMAT,
                                "%s could not read its tokenizer (exit status "
                                "%d; its messages are above)",
                                compiler, WEXITSTATUS(status));
    return bitnet_status_make(BITNET_STATUS_INTERNAL,
                              "%s was killed by signal %d", compiler,
                              WTERMSIG(status));
  }
  if (json == NULL)
    return bitnet_status_make(BITNET_STATUS_IO_ERROR,
                              "cannot read the output of %s", compiler);
  bitnet_status created = bitnet_tokenizer_create(json, len, out);
  free(json);
  if (created == BITNET_OK)
    return BITNET_OK;
  bitnet_status named = bitnet_status_make(
      bitnet_status_get_code(created), "the tokenizer JSON from %s: %s",
      compiler, bitnet_status_message(created));
  bitnet_status_free(created);
  return named;
}

static int is_gguf(const char *path) { return ends_with(path, ".gguf"); }

static bitnet_status load_gguf(const char *path, bitnet_tokenizer **out) {
  return load_through_compiler(path, "a GGUF file", out);
}

/* A checkpoint directory: one with a config.json. */
static int is_checkpoint_dir(const char *path) {
  char config[PATH_MAX];
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
         snprintf(config, sizeof(config), "%s/config.json", path) <
             (int)sizeof(config) &&
         stat(config, &st) == 0;
}

static bitnet_status load_checkpoint_dir(const char *path,
                                         bitnet_tokenizer **out) {
  return load_through_compiler(path, "a checkpoint directory", out);
}

/* Whether `json` has an object under "model" (Hugging Face's tokenizer.json:
 * "model": {"type": "BPE", ...}); the runtime's form has a string there. */
static int has_model_object(const char *json) {
  for (const char *p = strstr(json, "\"model\""); p;
       p = strstr(p + 1, "\"model\"")) {
    if (p > json && p[-1] == '\\')
      continue; /* inside a string */
    const char *q = p + 7;
    while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
      ++q;
    if (*q++ != ':')
      continue;
    while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
      ++q;
    if (*q == '{')
      return 1;
  }
  return 0;
}

static int is_hf_tokenizer_json(const char *path) {
  if (!is_json(path))
    return 0;
  char *json = NULL;
  size_t len = 0;
  bitnet_status status = read_file(path, &json, &len);
  if (status != BITNET_OK) {
    bitnet_status_free(status);
    return 0; /* load_json says why */
  }
  int hf = has_model_object(json);
  free(json);
  return hf;
}

/* bitnet-compile --emit=tokenizer reads a Hugging Face tokenizer.json (and
 * the tokenizer_config.json beside it, when there is one) by itself. */
static bitnet_status load_hf_tokenizer_json(const char *path,
                                            bitnet_tokenizer **out) {
  return load_through_compiler(path, "a Hugging Face tokenizer.json", out);
}

static const struct source {
  const char *what;
  int (*matches)(const char *path);
  bitnet_status (*load)(const char *path, bitnet_tokenizer **out);
  int directory; /* a directory, not a file */
} sources[] = {
    {"a compiled model (.so)", is_model, load_model, 0},
    {"a Hugging Face tokenizer.json", is_hf_tokenizer_json,
     load_hf_tokenizer_json, 0},
    {"a tokenizer JSON file (.json)", is_json, load_json, 0},
    {"a GGUF file (.gguf)", is_gguf, load_gguf, 0},
    {"a checkpoint directory (with config.json)", is_checkpoint_dir,
     load_checkpoint_dir, 1},
};
#define NUM_SOURCES ((int)(sizeof(sources) / sizeof(sources[0])))

static bitnet_tokenizer *load_tokenizer(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "bitnet-tokenize: %s: %s\n", path, strerror(errno));
    exit(1);
  }
  for (int i = 0; i < NUM_SOURCES; ++i)
    if (!S_ISDIR(st.st_mode) == !sources[i].directory &&
        sources[i].matches(path)) {
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
    } else if (!strcmp(a, "--version")) {
      print_tool_version("bitnet-tokenize");
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
