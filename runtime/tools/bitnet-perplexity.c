/*===- bitnet-perplexity.c - Perplexity of a decoder on a text -----*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * Scores a text file with a decoder compiled by bitnet-compile (the decoder
 * step of bitnet-generate: inputs `tokens` [S] int32, `position` int32 and
 * KV caches flagged BITNET_TENSOR_STATE; output `logits` [S, V]; or a
 * batched build, bitnet-compile --max-sequences, run as one sequence in slot
 * 0), by the method of llama.cpp's llama-perplexity:
 *
 *   - the file is split into tokens by the model's tokenizer (metadata entry
 *     bitnet.tokenizer) or its character vocabulary (bitnet.vocab);
 *   - the tokens are cut into windows of n_ctx tokens (--ctx-size, by
 *     default the model's context), the tokens after the last full window
 *     left out; when the tokenizer asks for a BOS token, it replaces each
 *     window's first token;
 *   - each window runs from an empty KV cache, and the tokens of its second
 *     half are scored: the logits at positions n_ctx/2 .. n_ctx-2 predict
 *     tokens n_ctx/2+1 .. n_ctx-1 (n_ctx - 1 - n_ctx/2 tokens a window);
 *   - PPL = exp(mean negative log-likelihood), and its error is the standard
 *     error of that mean, propagated: PPL * sqrt(var(nll) / (N - 1)).
 *
 * Exit status: 0 on success, 1 when loading, reading or running fails, 2 for
 * bad command-line usage.
 *
 *===----------------------------------------------------------------------===*/

#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bitnet_rt/bitnet_rt.h"
#include "bitnet_rt/tokenizer.h"

#include "tool_cli.h"
#include "tool_step.h"
#include "tool_text.h"
#include "tool_version.h"

static const char usage_text[] =
    "usage: bitnet-perplexity MODEL.so -f TEXT.txt [options]\n"
    "\n"
    "Measures the perplexity of a decoder compiled by bitnet-compile (see\n"
    "models/README.md) on a text file, as llama.cpp's llama-perplexity does:\n"
    "the text is split into tokens by the model's tokenizer (metadata entry\n"
    "bitnet.tokenizer; BOS as each window's first token when it asks for one)\n"
    "or its character vocabulary (bitnet.vocab), cut into windows of\n"
    "--ctx-size tokens, and each window runs from an empty KV cache; the\n"
    "tokens of its second half are scored (the logits at positions\n"
    "n_ctx/2 .. n_ctx-2 predict the next token). Tokens after the last full\n"
    "window are left out; a text shorter than one window is one window.\n"
    "\n"
    "It prints the windows and the tokens it scores, the running perplexity\n"
    "after each window ('[1]12.3456,[2]...') and the final estimate with its\n"
    "standard error: 'Final estimate: PPL = P +/- E', where E is P times the\n"
    "standard error of the mean negative log-likelihood.\n"
    "\n"
    "options:\n"
    "  -f, --file FILE      the text to score (required)\n"
    "  -c, --ctx-size N     tokens a window holds (default and most: the\n"
    "                       model's KV cache, its context; at least 2)\n"
    "  --threads N          threads for the kernels (default: online cores)\n"
    "  --quiet              no timing at the end\n"
    "  --help               show this text\n"
    "  --version            show the version, git revision, runtime library\n"
    "                       and model ABI\n"
    "\n"
    "A model built for S > 1 tokens a step (bitnet-compile\n"
    "--input-shape=tokens:S, without --last-token-logits) runs S tokens at a\n"
    "time, which is faster.\n";

/*===----------------------------------------------------------------------===*
 * Scoring
 *===----------------------------------------------------------------------===*/

/* Runs `n` <= S tokens at `position`; their logits are s->logits[0 .. n). */
static void run_step(step_model *s, const int32_t *ids, int64_t n,
                     int64_t position) {
  step_fill_one(s, ids, n, position);
  tool_check(bitnet_context_run(s->context, (const void *const *)s->inputs,
                                s->num_inputs, s->outputs, s->num_outputs));
}

/* -log softmax(logits)[target], in double. */
static double negative_log_likelihood(const float *logits, int64_t V,
                                      int32_t target) {
  double max = logits[0];
  for (int64_t i = 1; i < V; ++i)
    if (logits[i] > max)
      max = logits[i];
  double sum = 0;
  for (int64_t i = 0; i < V; ++i)
    sum += exp((double)logits[i] - max);
  return log(sum) + max - (double)logits[target];
}

/*===----------------------------------------------------------------------===*
 * Main
 *===----------------------------------------------------------------------===*/

int main(int argc, char **argv) {
  const char *model_path = NULL, *text_path = NULL;
  int64_t ctx_size = 0, threads = 0;
  int quiet = 0;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    const char *next = i + 1 < argc ? argv[i + 1] : NULL;
#define VALUE()                                                                \
  (next ? (++i, next) : (usage_error("%s needs a value", a), (const char *)0))
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage_text, stdout);
      return 0;
    } else if (!strcmp(a, "--version")) {
      print_tool_version("bitnet-perplexity");
      return 0;
    } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
      text_path = VALUE();
    } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
      ctx_size = (int64_t)parse_number(a, VALUE(), 2, 1e9);
    } else if (!strcmp(a, "--threads")) {
      threads = (int64_t)parse_number(a, VALUE(), 1, 4096);
    } else if (!strcmp(a, "--quiet")) {
      quiet = 1;
    } else if (a[0] == '-') {
      usage_error("unknown option '%s'", a);
    } else if (!model_path) {
      model_path = a;
    } else {
      usage_error("more than one model given ('%s')", a);
    }
#undef VALUE
  }
  if (!model_path)
    usage_error("%s", "no model given");
  if (!text_path)
    usage_error("%s", "no text given: -f FILE");

  /* The text first: a missing file is found before the model loads. */
  char *text;
  size_t text_len;
  const char *error = tool_read_text_file(text_path, &text, &text_len);
  if (error) {
    fprintf(stderr, "bitnet-perplexity: -f %s: %s\n", text_path, error);
    return 1;
  }
  if (text_len == 0) {
    fprintf(stderr, "bitnet-perplexity: -f %s: the file is empty\n", text_path);
    return 1;
  }

  if (threads == 0)
    threads =
        sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
  bitnet_thread_pool *tp = NULL;
  tool_check(bitnet_thread_pool_create((int32_t)threads, &tp));
  step_model m;
  load_step(&m, model_path, tp, NULL);
  if (m.last_only)
    tool_fail("%s: output 'logits' has the last token's row only (a "
              "--last-token-logits build); perplexity needs every token's: "
              "compile it without that flag",
              model_path);

  /* Tokens. */
  bitnet_tokenizer *tok = NULL;
  vocab voc = {0};
  int32_t *ids = NULL;
  int64_t n = 0, skipped = 0;
  int32_t bos = -1;
  const char *how;
  if (bitnet_model_metadata(m.model, "bitnet.tokenizer")) {
    tool_check(bitnet_tokenizer_create_from_model(m.model, &tok));
    if (bitnet_tokenizer_vocab_size(tok) > m.V) {
      fprintf(stderr,
              "bitnet-perplexity: the tokenizer (bitnet.tokenizer) "
              "has %d tokens, the logits %lld\n",
              bitnet_tokenizer_vocab_size(tok), (long long)m.V);
      return 1;
    }
    tool_check(bitnet_tokenizer_encode(tok, text, text_len, 0, &ids, &n));
    if (bitnet_tokenizer_add_bos(tok))
      bos = bitnet_tokenizer_bos_id(tok);
    how = "the model's tokenizer";
  } else {
    const char *vjson = bitnet_model_metadata(m.model, "bitnet.vocab");
    if (!vjson)
      tool_fail("%s has no tokenizer (metadata bitnet.tokenizer) or vocabulary "
                "(bitnet.vocab) to split the text with",
                model_path);
    if (parse_vocab(vjson, &voc, &error) != 0)
      tool_fail("the model's bitnet.vocab is not a JSON list of strings: %s",
                error);
    if (voc.size != m.V) {
      fprintf(stderr,
              "bitnet-perplexity: bitnet.vocab has %lld tokens, the "
              "logits %lld\n",
              (long long)voc.size, (long long)m.V);
      return 1;
    }
    ids = tool_xmalloc(sizeof(int32_t) * (text_len + 1));
    n = encode(&voc, text, ids, &skipped);
    how = "the model's character vocabulary";
  }
  free(text);
  printf("%s: %lld tokens (%s)\n", text_path, (long long)n, how);
  if (skipped)
    printf("%lld bytes of the text are not in the vocabulary and were left "
           "out\n",
           (long long)skipped);
  if (n < 2) {
    fprintf(stderr,
            "bitnet-perplexity: -f %s: the text has %lld token%s; "
            "scoring needs at least 2\n",
            text_path, (long long)n, n == 1 ? "" : "s");
    return 1;
  }

  /* Windows. */
  if (ctx_size > m.capacity) {
    fprintf(stderr,
            "bitnet-perplexity: --ctx-size %lld is beyond the "
            "model's context: its KV cache holds %lld tokens\n",
            (long long)ctx_size, (long long)m.capacity);
    return EXIT_USAGE;
  }
  int64_t n_ctx = ctx_size ? ctx_size : m.capacity;
  if (n < n_ctx) {
    printf("the text is shorter than a window of %lld tokens: one window of "
           "%lld\n",
           (long long)n_ctx, (long long)n);
    n_ctx = n;
  }
  int64_t windows = n / n_ctx;
  /* Scored: the logits at first .. n_ctx - 2 (a 2-token window: the first). */
  int64_t first = n_ctx / 2 < n_ctx - 2 ? n_ctx / 2 : n_ctx - 2;
  int64_t per_window = n_ctx - 1 - first;
  printf("windows: %lld of %lld tokens (%lld tokens at the end left out), "
         "each from an empty KV cache; scoring the tokens at positions "
         "%lld..%lld of each: "
         "%lld tokens a window, %lld in all\n",
         (long long)windows, (long long)n_ctx, (long long)(n - windows * n_ctx),
         (long long)first + 1, (long long)n_ctx - 1, (long long)per_window,
         (long long)(windows * per_window));
  fflush(stdout);

  double nll = 0, nll2 = 0, t0 = now_seconds();
  int64_t count = 0;
  for (int64_t w = 0; w < windows; ++w) {
    int32_t *window = ids + w * n_ctx;
    if (bos >= 0)
      window[0] = bos;
    reset_caches(&m);
    for (int64_t pos = 0; pos < n_ctx; pos += m.S) {
      /* A step of S tokens from `start`; where the last would run past the
       * KV cache, it starts earlier and runs some tokens again (their cache
       * rows come out the same). */
      int64_t start = pos + m.S > m.capacity ? n_ctx - m.S : pos;
      int64_t chunk = n_ctx - start < m.S ? n_ctx - start : m.S;
      run_step(&m, window + start, chunk, start);
      for (int64_t k = 0; k < chunk; ++k) {
        int64_t at = start + k;
        if (at < pos || at < first || at > n_ctx - 2)
          continue;
        double v =
            negative_log_likelihood(m.logits + k * m.V, m.V, window[at + 1]);
        nll += v;
        nll2 += v * v;
        ++count;
      }
    }
    printf("[%lld]%.4f,", (long long)w + 1, exp(nll / (double)count));
    fflush(stdout);
  }
  double seconds = now_seconds() - t0;
  printf("\n");
  double mean = nll / (double)count, ppl = exp(mean);
  double var = nll2 / (double)count - mean * mean;
  double stderr_nll =
      count > 1 && var > 0 ? sqrt(var / (double)(count - 1)) : 0.0;
  printf("Final estimate: PPL = %.4f +/- %.5f (mean NLL %.6f nats over %lld "
         "tokens)\n",
         ppl, ppl * stderr_nll, mean, (long long)count);
  if (!quiet)
    fprintf(stderr,
            "%lld tokens run in %.3f s (%.1f tokens/s), %lld "
            "threads\n",
            (long long)(windows * n_ctx), seconds,
            seconds > 0 ? (double)(windows * n_ctx) / seconds : 0.0,
            (long long)threads);

  free(ids);
  free_vocab(&voc);
  bitnet_tokenizer_free(tok);
  free_step(&m, NULL);
  bitnet_thread_pool_release(tp);
  return 0;
}
