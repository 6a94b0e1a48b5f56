/*===- bitnet-generate.c - Generate text with a compiled decoder ----*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * Runs a decoder compiled by bitnet-compile (one step of the model: inputs
 * `tokens` [S] int32, `position` int32 and KV caches flagged
 * BITNET_TENSOR_STATE; output `logits` [S, V]) token by token: the prompt
 * first, then sampled tokens, streamed as they come. The KV caches are held
 * here, between runs, and updated in place by the model.
 *
 * A batched build (bitnet-compile --max-sequences=B: inputs `tokens`,
 * `positions`, `slots`) runs the same way as one sequence in slot 0, its
 * prompt in chunks of up to T tokens, the rest of each step padding (slot
 * -1): the tokens bitnet-serve gives a request alone on that build.
 *
 * Text goes through the model's tokenizer (metadata entry bitnet.tokenizer,
 * bitnet_rt/tokenizer.h) when it has one, else through its character
 * vocabulary (bitnet.vocab, a JSON list of strings, longest match first).
 *
 * With --chat, messages go through the model's chat template (metadata entry
 * bitnet.chat_template, bitnet_rt/chat.h) one turn at a time: each turn's
 * text follows the previous reply in the KV cache, so nothing is run twice.
 *
 * Exit status: 0 on success, 1 when loading or running fails, 2 for bad
 * command-line usage.
 *
 *===----------------------------------------------------------------------===*/

#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bitnet_rt/bitnet_rt.h"
#include "bitnet_rt/chat.h"
#include "bitnet_rt/sampler.h"
#include "bitnet_rt/tokenizer.h"

#include "tool_cli.h"
#include "tool_step.h"
#include "tool_text.h"
#include "tool_version.h"

static const char usage_text[] =
    "usage: bitnet-generate MODEL.so [options]\n"
    "       bitnet-generate MODEL.so --chat [--system TEXT] [--prompt TEXT]\n"
    "\n"
    "Generates tokens with a decoder compiled by bitnet-compile (see\n"
    "models/README.md): runs the prompt through the model, then samples one\n"
    "token at a time and prints each as it comes. The model keeps its KV cache\n"
    "here between steps.\n"
    "\n"
    "chat:\n"
    "  --chat               talk to an instruction-tuned model through its chat\n"
    "                       template (metadata entry bitnet.chat_template):\n"
    "                       each line of stdin is a user message, and the reply\n"
    "                       is printed as it comes, then a line break; the\n"
    "                       conversation stays in the KV cache, each turn\n"
    "                       after the previous reply and its end of turn. A\n"
    "                       reply ends at the end-of-turn or end-of-sequence\n"
    "                       token (or -n, --stop). Known templates: BitNet\n"
    "                       b1.58 2B-4T, Llama 3, Llama 3.1/3.2/3.3 Instruct;\n"
    "                       any other is an error\n"
    "  --prompt TEXT        with --chat: one user message, its reply, and exit\n"
    "  --system TEXT        with --chat: a system message first\n"
    "\n"
    "options:\n"
    "  --prompt TEXT        prompt text, encoded with the model's tokenizer\n"
    "                       (its metadata entry bitnet.tokenizer; BOS first\n"
    "                       when the tokenizer asks for it) or split into its\n"
    "                       character vocabulary (bitnet.vocab)\n"
    "  -f, --file FILE      prompt text from FILE (less one line break at its\n"
    "                       end, as llama.cpp's -f); with --chat, one message\n"
    "  --tokens 1,2,3       prompt as token ids instead\n"
    "  -c, --ctx-size N     tokens the context holds: prompt and generated\n"
    "                       text (default and most: the model's KV cache,\n"
    "                       its context; more is an error)\n"
    "  --no-context-shift   stop at the end of the context instead of\n"
    "                       shifting it (see below)\n"
    "  -n N                 tokens to generate (default 128; with --chat, per\n"
    "                       reply); generation also stops at the tokenizer's\n"
    "                       end-of-sequence or end-of-turn token\n"
    "  --temperature T      0 picks the most likely token (greedy); default 0.8\n"
    "  --top-k K            sample among the K most likely tokens (default 40,\n"
    "                       0: all)\n"
    "  --top-p P            ... and among the fewest whose probabilities add up\n"
    "                       to P (default 0.95, 1: all)\n"
    "  --seed N             seed of the sampler (default: from the clock)\n"
    "  --stop TEXT          stop once the generated text ends with TEXT\n"
    "  --prefill MODEL.so   a build of the same model for S > 1 tokens a step\n"
    "                       (bitnet-compile --input-shape=tokens:S, best with\n"
    "                       --last-token-logits), used for the prompt's full\n"
    "                       chunks of S tokens; its caches must match (not\n"
    "                       with a batched build, which runs its prompt T\n"
    "                       tokens a step itself). A model compiled with\n"
    "                       --prefill-tokens=S carries such a step, its entry\n"
    "                       'prefill', over the same weights: it is used\n"
    "                       unless --prefill or --no-prefill is given\n"
    "  --no-prefill         run the prompt one token a step. (A batched\n"
    "                       build, --max-sequences, runs in slot 0: its\n"
    "                       one-token step, entry 'one', decodes, and its\n"
    "                       T-token step runs the prompt.)\n"
    "  --threads N          threads for the kernels (default: online cores)\n"
    "  --huge-pages         move the weights onto transparent huge pages\n"
    "                       first (a private copy, about 0.3-1.5 s a GB):\n"
    "                       decoding, which reads every weight a token, runs\n"
    "                       faster; the weights are then not shared with\n"
    "                       other processes\n"
    "  --ids                print token ids instead of text (with --chat: each\n"
    "                       reply's, its end token included, a line each)\n"
    "  --trace-ids FILE     write every token id given to the model to FILE,\n"
    "                       one line per run: 'POSITION: ID ID ...'\n"
    "  --quiet              no statistics at the end\n"
    "  --help               show this text\n"
    "  --version            show the version, git revision, runtime library\n"
    "                       and model ABI\n"
    "\n"
    "Past the end of the context: when a generated token does not fit in the\n"
    "context (--ctx-size), the context is shifted as llama.cpp's context swap\n"
    "does: the first token stays when it is the BOS token, the oldest half of\n"
    "the others is dropped, and what is left is run again from an empty KV\n"
    "cache, then generation goes on (with --chat, a message that does not fit\n"
    "drops the earliest turns the same way). The text after a shift no longer\n"
    "sees the dropped tokens. With --no-context-shift generation stops there\n"
    "instead, saying so. A prompt longer than the context is an error either\n"
    "way.\n"
    "\n"
    "A batched build (bitnet-compile --max-sequences=B) runs as one sequence\n"
    "in slot 0: the prompt up to T tokens a step, the rest of each step\n"
    "padding, as bitnet-serve runs a request alone on it.\n"
    "\n"
    "At the end it prints prompt and decode tokens/s, the time to the first\n"
    "generated token, the model's read-only (weights) bytes, the KV-cache bytes\n"
    "and the peak resident memory, on stderr.\n";

/*===----------------------------------------------------------------------===*
 * Printing tokens
 *===----------------------------------------------------------------------===*/

/* Where the text of tokens goes: stdout, and the generated text kept for
 * --stop. Through the tokenizer's stream decoder when there is one (so that a
 * character split across tokens is printed whole), else the vocabulary. */
typedef struct text_out {
  bitnet_stream_decoder *decoder; /* or NULL: */
  const vocab *voc;
  char *kept;
  size_t kept_len, kept_cap;
} text_out;

static void put_bytes(text_out *out, const char *bytes, size_t len, int keep) {
  fwrite(bytes, 1, len, stdout);
  if (!keep)
    return;
  if (out->kept_len + len + 1 > out->kept_cap) {
    out->kept_cap = 2 * (out->kept_len + len + 1);
    out->kept = realloc(out->kept, out->kept_cap);
    if (!out->kept)
      tool_fail("out of memory (%s)", "text");
  }
  memcpy(out->kept + out->kept_len, bytes, len);
  out->kept_len += len;
  out->kept[out->kept_len] = '\0';
}

/* Prints token `id`; `keep`: it is generated text that --stop looks at. */
static void put_token(text_out *out, int32_t id, int keep) {
  if (out->decoder) {
    const char *bytes;
    size_t len;
    tool_check(bitnet_stream_decoder_push(out->decoder, id, &bytes, &len));
    put_bytes(out, bytes, len, keep);
  } else {
    put_bytes(out, out->voc->text[id], out->voc->len[id], keep);
  }
}

/* Prints what the stream decoder still holds (an unfinished character). */
static void put_rest(text_out *out, int keep) {
  if (out->decoder) {
    const char *bytes;
    size_t len;
    bitnet_stream_decoder_flush(out->decoder, &bytes, &len);
    put_bytes(out, bytes, len, keep);
  }
}

/* Where --trace-ids writes the ids given to the model, or NULL. */
static FILE *trace_file;

/* Runs `n` <= S tokens at `position`; returns the logits of the last. */
static const float *run_step(step_model *s, const int32_t *ids, int64_t n,
                             int64_t position) {
  if (trace_file) {
    fprintf(trace_file, "%lld:", (long long)position);
    for (int64_t k = 0; k < n; ++k)
      fprintf(trace_file, " %d", ids[k]);
    fprintf(trace_file, "\n");
  }
  step_fill_one(s, ids, n, position);
  tool_check(bitnet_context_run(s->context, (const void *const *)s->inputs,
                                s->num_inputs, s->outputs, s->num_outputs));
  /* A last-token build runs full steps only (see main). */
  return s->last_only ? s->logits : s->logits + (n - 1) * s->V;
}

/*===----------------------------------------------------------------------===*
 * Main
 *===----------------------------------------------------------------------===*/

/* The prompt of -f: the file's text, less one line break at its end (as
 * llama.cpp's -f reads it). */
static char *read_prompt_file(const char *path) {
  char *text;
  size_t len;
  const char *error = tool_read_text_file(path, &text, &len);
  if (error) {
    fprintf(stderr, "bitnet-generate: -f %s: %s\n", path, error);
    exit(1);
  }
  if (len > 0 && text[len - 1] == '\n')
    text[--len] = '\0';
  if (len > 0 && text[len - 1] == '\r')
    text[--len] = '\0';
  if (len == 0) {
    fprintf(stderr, "bitnet-generate: -f %s: the file is empty\n", path);
    exit(1);
  }
  return text;
}

/*===----------------------------------------------------------------------===*
 * Generation: prompts and replies, one after the other in the KV cache
 *===----------------------------------------------------------------------===*/

typedef struct generation {
  step_model *decode, *prefill; /* prefill: NULL without --prefill */
  int32_t *ids;                 /* the token at each position */
  int64_t pos;                  /* tokens given to the model so far */
  int64_t ctx;                  /* tokens the context holds (--ctx-size) */
  int context_shift;            /* past the context: shift (1) or stop (0) */
  const float *logits;          /* the next token's, after `pos` tokens */
  int64_t sample_v;
  bitnet_sampler *sampler;
  int64_t max_new;
  const char *stop;
  int print_ids;
  int ids_on_line; /* --ids: ids printed on the current line */
  const bitnet_tokenizer *tok;
  text_out *out;
  /* Statistics, over all turns. */
  int64_t prompt_tokens, generated, decode_steps, shifts, shift_tokens;
  double t_prompt, t_decode, t_first, t_start;
  /* The fastest step of each build so far (seconds; 0: none yet). */
  double best_prefill_step, best_decode_step;
} generation;

/* Whether `n` more tokens fit in the KV cache after those given so far. */
static int fits(const generation *g, int64_t n) {
  return g->pos + n + g->decode->run_rows <= g->ctx + 1;
}

/* Whether the prefill step should run the `r` < S tokens left of a prompt
 * but its last, padded to S (their logits are not needed): when it takes
 * less time than r one-token steps, as the fastest steps of each kind so
 * far took (before both ran: when r is at least S/8). */
static int pad_tail(const generation *g, int64_t r) {
  if (r < 2)
    return 0;
  if (g->best_prefill_step > 0 && g->best_decode_step > 0)
    return g->best_prefill_step < (double)r * g->best_decode_step;
  return r * 8 >= g->prefill->S;
}

/* Runs `n` tokens (that fit) through the model after those given so far,
 * in the prefill build's chunks of S where it has one: full chunks, and a
 * shorter rest but its last token (padded; see pad_tail), whose logits are
 * the one-token step's. */
static void feed(generation *g, const int32_t *tokens, int64_t n) {
  double t0 = now_seconds();
  if (g->t_start == 0)
    g->t_start = t0;
  memmove(g->ids + g->pos, tokens, sizeof(int32_t) * (size_t)n);
  int64_t end = g->pos + n;
  while (g->pos < end) {
    int64_t left = end - g->pos;
    int fits_chunk =
        g->prefill && g->pos + g->prefill->S <= g->prefill->capacity;
    step_model *s = fits_chunk && (left >= g->prefill->S ||
                                   pad_tail(g, left - 1))
                        ? g->prefill
                        : g->decode;
    int64_t chunk = left < s->S ? left : s->S;
    if (s == g->prefill && left < s->S)
      chunk = left - 1; /* the last one's logits: the one-token step's */
    double t = now_seconds();
    g->logits = run_step(s, g->ids + g->pos, chunk, g->pos);
    t = now_seconds() - t;
    double *best = s == g->prefill ? &g->best_prefill_step
                                   : &g->best_decode_step;
    if (*best == 0 || t < *best)
      *best = t;
    g->pos += chunk;
  }
  g->prompt_tokens += n;
  g->t_prompt += now_seconds() - t0;
}

/* The context shift, as llama.cpp's context swap: keeps the first token when
 * it is the BOS token, drops half of the others (the oldest; more when `need`
 * more tokens would not fit otherwise) and runs what is left again from an
 * empty KV cache. The token at ids[pos], sampled but not run yet, stays after
 * them. Returns 0 when `need` tokens cannot fit even so. */
static int shift_context(generation *g, int64_t need) {
  int64_t keep =
      g->tok && g->pos > 1 && g->ids[0] == bitnet_tokenizer_bos_id(g->tok);
  int64_t discard = (g->pos - keep) / 2;
  int64_t room = g->ctx + 1 - g->decode->run_rows; /* most before a step */
  if (g->pos - discard + need > room)
    discard = g->pos + need - room;
  if (discard < 1)
    discard = 1;
  if (discard > g->pos - keep || keep + need > room)
    return 0;
  int32_t pending = g->ids[g->pos];
  int64_t rest = g->pos - keep - discard;
  memmove(g->ids + keep, g->ids + keep + discard,
          sizeof(int32_t) * (size_t)rest);
  int64_t n = keep + rest;
  g->ids[n] = pending;
  reset_caches(g->decode);
  g->pos = 0;
  if (n > 0)
    feed(g, g->ids, n);
  ++g->shifts;
  g->shift_tokens += n;
  return 1;
}

/* Samples up to max_new tokens after what was fed, printing each. Returns
 * why it stopped; *pending is 1 when the last token sampled is part of the
 * reply but was not given to the model (it is at ids[pos]), 0 when there is
 * none or it is the end token, which is not part of the reply. */
static const char *reply(generation *g, int *pending) {
  int64_t produced = 0;
  double t0 = now_seconds();
  const char *why = "the -n limit";
  const char *stop = g->stop;
  *pending = 0;
  g->out->kept_len = 0;
  while (produced < g->max_new) {
    int32_t id;
    tool_check(bitnet_sampler_sample(g->sampler, g->logits, g->sample_v, &id));
    g->ids[g->pos] = id;
    ++produced;
    if (g->generated + produced == 1)
      g->t_first = now_seconds() - g->t_start;
    if (g->print_ids)
      printf(g->ids_on_line++ ? " %d" : "%d", id);
    if (g->tok && (id == bitnet_tokenizer_eos_id(g->tok) ||
                   id == bitnet_tokenizer_eot_id(g->tok))) {
      why = id == bitnet_tokenizer_eos_id(g->tok) ? "the end-of-sequence token"
                                                   : "the end-of-turn token";
      break;
    }
    *pending = 1;
    if (!g->print_ids)
      put_token(g->out, id, stop != NULL);
    fflush(stdout);
    if (stop && g->out->kept_len >= strlen(stop) &&
        !strcmp(g->out->kept + g->out->kept_len - strlen(stop), stop)) {
      why = "the stop text";
      break;
    }
    if (produced == g->max_new)
      break;
    if (!fits(g, 1) && (!g->context_shift || !shift_context(g, 1))) {
      why = "the end of the context";
      fflush(stdout);
      fprintf(stderr,
              "\nbitnet-generate: the context is full (%lld tokens, "
              "--ctx-size); stopped there, as --no-context-shift "
              "asks\n",
              (long long)g->ctx);
      break;
    }
    g->logits = run_step(g->decode, g->ids + g->pos, 1, g->pos);
    ++g->pos;
    ++g->decode_steps;
    *pending = 0;
  }
  g->generated += produced;
  g->t_decode += now_seconds() - t0;
  return why;
}

/* Fails for a prompt of `n` more tokens that does not fit. */
static void check_fits(const generation *g, int64_t n, const char *what) {
  if (fits(g, n))
    return;
  fprintf(stderr,
          "bitnet-generate: %s has %lld tokens; the context holds "
          "%lld (--ctx-size; the model's KV cache holds %lld)\n",
          what, (long long)(g->pos + n), (long long)g->ctx,
          (long long)g->decode->capacity);
  exit(1);
}

/* Whether `line` is nothing but white space. */
static int is_blank(const char *line) {
  for (; *line; ++line)
    if (!strchr(" \t\r\n\v\f", *line))
      return 0;
  return 1;
}

/* The conversation of --chat: each user message (`prompt`, else each line of
 * stdin) through the chat template, then the reply. Returns the number of
 * turns and the last reply's reason to stop in *why. */
static int64_t chat(generation *g, const bitnet_chat_template *tmpl,
                    const char *system, const char *prompt,
                    const char **why) {
  int interactive = !prompt && isatty(STDIN_FILENO);
  char *line = NULL;
  size_t line_cap = 0;
  int64_t turns = 0;
  int pending = 0;
  *why = "no message";
  for (;;) {
    const char *message = prompt;
    if (!prompt) {
      if (interactive) {
        fputs("> ", stderr);
        fflush(stderr);
      }
      ssize_t got = getline(&line, &line_cap, stdin);
      if (got < 0)
        break;
      if (got > 0 && line[got - 1] == '\n')
        line[got - 1] = '\0';
      if (is_blank(line))
        continue;
      message = line;
    }
    bitnet_chat_message messages[2];
    int64_t num = 0;
    if (turns == 0 && system)
      messages[num++] = (bitnet_chat_message){"system", system};
    messages[num++] = (bitnet_chat_message){"user", message};
    char *text = NULL;
    size_t text_len = 0;
    tool_check(bitnet_chat_template_apply(
        tmpl, messages, num,
        BITNET_CHAT_ADD_GENERATION_PROMPT | (turns ? BITNET_CHAT_CONTINUE : 0),
        &text, &text_len));
    /* The template's text has its BOS where the model wants it, and its
     * control tokens are meant as such. */
    int32_t *encoded = NULL;
    int64_t n = 0;
    tool_check(
        bitnet_tokenizer_encode(g->tok, text, text_len, 0, &encoded, &n));
    free(text);
    /* The previous reply's last token, when it was not run yet, then the
     * turn. */
    int32_t *tokens = tool_xmalloc(sizeof(int32_t) * (size_t)(n + 1));
    if (pending)
      tokens[0] = g->ids[g->pos];
    memcpy(tokens + pending, encoded, sizeof(int32_t) * (size_t)n);
    free(encoded);
    if (!fits(g, n + pending) && g->context_shift && g->pos > 0) {
      /* The earliest turns make room; the last token sampled, at
       * ids[pos], stays. */
      shift_context(g, n + pending);
    }
    check_fits(g, n + pending, "the conversation");
    feed(g, tokens, n + pending);
    free(tokens);
    g->ids_on_line = 0;
    *why = reply(g, &pending);
    if (!g->print_ids)
      put_rest(g->out, 0);
    printf("\n");
    fflush(stdout);
    ++turns;
    if (prompt)
      break;
  }
  free(line);
  return turns;
}

int main(int argc, char **argv) {
  const char *model_path = NULL, *prefill_path = NULL, *prompt = NULL,
             *token_list = NULL, *stop = NULL, *system = NULL,
             *trace_path = NULL, *prompt_path = NULL;
  int64_t max_new = 128, top_k = 40, threads = 0, ctx_size = 0;
  int context_shift = 1, no_prefill = 0, huge_pages = 0;
  double temperature = 0.8, top_p = 0.95;
  uint64_t seed = 0;
  int have_seed = 0, print_ids = 0, quiet = 0, chatting = 0;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    const char *next = i + 1 < argc ? argv[i + 1] : NULL;
#define VALUE()                                                               \
  (next ? (++i, next) : (usage_error("%s needs a value", a), (const char *)0))
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage_text, stdout);
      return 0;
    } else if (!strcmp(a, "--version")) {
      print_tool_version("bitnet-generate");
      return 0;
    } else if (!strcmp(a, "--prompt")) {
      prompt = VALUE();
    } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
      prompt_path = VALUE();
    } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
      ctx_size = (int64_t)parse_number(a, VALUE(), 2, 1e9);
    } else if (!strcmp(a, "--no-context-shift")) {
      context_shift = 0;
    } else if (!strcmp(a, "--tokens")) {
      token_list = VALUE();
    } else if (!strcmp(a, "--chat")) {
      chatting = 1;
    } else if (!strcmp(a, "--system")) {
      system = VALUE();
    } else if (!strcmp(a, "-n")) {
      max_new = (int64_t)parse_number(a, VALUE(), 0, 1e9);
    } else if (!strcmp(a, "--temperature")) {
      temperature = parse_number(a, VALUE(), 0, 100);
    } else if (!strcmp(a, "--top-k")) {
      top_k = (int64_t)parse_number(a, VALUE(), 0, 1e9);
    } else if (!strcmp(a, "--top-p")) {
      top_p = parse_number(a, VALUE(), 1e-6, 1);
    } else if (!strcmp(a, "--seed")) {
      seed = (uint64_t)parse_number(a, VALUE(), 0, 9007199254740992.0);
      have_seed = 1;
    } else if (!strcmp(a, "--stop")) {
      stop = VALUE();
      if (stop && stop[0] == '\0')
        usage_error("%s", "--stop needs a non-empty string (an empty one "
                          "would stop before the first token)");
    } else if (!strcmp(a, "--prefill")) {
      prefill_path = VALUE();
    } else if (!strcmp(a, "--no-prefill")) {
      no_prefill = 1;
    } else if (!strcmp(a, "--huge-pages")) {
      huge_pages = 1;
    } else if (!strcmp(a, "--threads")) {
      threads = (int64_t)parse_number(a, VALUE(), 1, 4096);
    } else if (!strcmp(a, "--ids")) {
      print_ids = 1;
    } else if (!strcmp(a, "--trace-ids")) {
      trace_path = VALUE();
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
  if ((prompt != NULL) + (prompt_path != NULL) + (token_list != NULL) > 1)
    usage_error("%s", "give one of --prompt, -f and --tokens");
  char *file_prompt = NULL;
  if (prompt_path) {
    file_prompt = read_prompt_file(prompt_path);
    prompt = file_prompt;
  }
  if (chatting && token_list)
    usage_error("%s", "--tokens is not for --chat: give messages as text "
                      "(--prompt, or lines on stdin)");
  if (system && !chatting)
    usage_error("%s", "--system is for --chat");
  if (trace_path) {
    trace_file = fopen(trace_path, "w");
    if (trace_file == NULL) {
      fprintf(stderr, "bitnet-generate: --trace-ids %s: %s\n", trace_path,
              strerror(errno));
      exit(1);
    }
  }
  bitnet_sampler *sampler = NULL;
  bitnet_sampler_params sampling = {temperature, top_k, top_p,
                                    have_seed ? seed : (uint64_t)time(NULL)};
  tool_check(bitnet_sampler_create(&sampling, &sampler));

  bitnet_thread_pool *tp = NULL;
  if (threads == 0)
    threads = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
  tool_check(bitnet_thread_pool_create((int32_t)threads, &tp));
  step_model decode, prefill;
  load_step(&decode, model_path, tp, NULL);
  if (huge_pages)
    step_use_huge_pages(decode.model);
  if (decode.last_only)
    tool_fail("%s computes logits for the last of S > 1 tokens only: give it "
              "as --prefill, with a one-token build as the model",
              model_path);
  if (prefill_path && decode.batched)
    usage_error("%s", "--prefill is not for a batched build (input 'slots'), "
                      "which runs the prompt T tokens a step itself");
  if (prefill_path && no_prefill)
    usage_error("%s", "--prefill and --no-prefill exclude each other");
  /* The model's own prefill entry (bitnet-compile --prefill-tokens). */
  int use_prefill = prefill_path != NULL;
  char prefill_name[4096];
  if (!prefill_path && !no_prefill && !decode.batched) {
    use_prefill = open_entry_step(&prefill, decode.model, "prefill",
                                  model_path, tp, &decode);
    snprintf(prefill_name, sizeof(prefill_name), "%s (entry 'prefill')",
             model_path);
  } else if (prefill_path) {
    load_step(&prefill, prefill_path, tp, &decode);
    if (huge_pages)
      step_use_huge_pages(prefill.model);
    snprintf(prefill_name, sizeof(prefill_name), "%s", prefill_path);
  }
  /* A batched build's one-token step (its entry 'one') decodes, and its
   * T-token step runs the prompt (unless --no-prefill), in slot 0; the
   * T-token step holds the caches. */
  int swapped = 0;
  if (decode.batched) {
    step_model batched = decode;
    if (open_entry_step(&decode, batched.model, "one", model_path, tp,
                        &batched)) {
      prefill = batched;
      snprintf(prefill_name, sizeof(prefill_name), "%s", model_path);
      if (!decode.batched || decode.S != 1)
        tool_fail("%s: its entry 'one' is not a batched step of one token",
                  model_path);
      swapped = 1;
      use_prefill = !no_prefill;
    }
  }
  if (use_prefill && prefill.V != decode.V)
    tool_fail("%s has another vocabulary size than the model", prefill_name);

  /* The text side: a tokenizer, else a character vocabulary. */
  vocab voc = {0};
  bitnet_tokenizer *tok = NULL;
  bitnet_chat_template *tmpl = NULL;
  const char *vjson = NULL;
  int64_t sample_v = decode.V; /* the ids that may be sampled */
  text_out out = {NULL, &voc, NULL, 0, 0};
  if (bitnet_model_metadata(decode.model, "bitnet.tokenizer")) {
    tool_check(bitnet_tokenizer_create_from_model(decode.model, &tok));
    if (bitnet_tokenizer_vocab_size(tok) > decode.V) {
      fprintf(stderr, "bitnet-generate: the tokenizer (bitnet.tokenizer) has "
                      "%d tokens, the logits %lld\n",
              bitnet_tokenizer_vocab_size(tok), (long long)decode.V);
      exit(1);
    }
    sample_v = bitnet_tokenizer_vocab_size(tok);
    tool_check(bitnet_stream_decoder_create(tok, BITNET_DECODE_SKIP_SPECIAL,
                                            &out.decoder));
  } else {
    vjson = bitnet_model_metadata(decode.model, "bitnet.vocab");
  }
  if (chatting) {
    if (!tok)
      tool_fail("--chat needs the model's tokenizer (metadata entry "
                "bitnet.tokenizer); %s has none",
                model_path);
    bitnet_status status =
        bitnet_chat_template_create_from_model(decode.model, tok, &tmpl);
    if (status != BITNET_OK) {
      fprintf(stderr, "bitnet-generate: --chat: %s\n",
              bitnet_status_message(status));
      if (bitnet_status_get_code(status) == BITNET_STATUS_NOT_FOUND)
        fprintf(stderr, "bitnet-generate: --chat needs a template (it knows "
                        "%s); without --chat the prompt is given as it is\n",
                bitnet_chat_template_known());
      bitnet_status_free(status);
      exit(1);
    }
  }
  if (vjson) {
    const char *error = NULL;
    if (parse_vocab(vjson, &voc, &error) != 0)
      tool_fail("the model's bitnet.vocab is not a JSON list of strings: %s",
                error);
    if (voc.size != decode.V) {
      fprintf(stderr, "bitnet-generate: bitnet.vocab has %lld tokens, the "
                      "logits %lld\n",
              (long long)voc.size, (long long)decode.V);
      exit(1);
    }
  }
  if (ctx_size > decode.capacity) {
    fprintf(stderr,
            "bitnet-generate: --ctx-size %lld is beyond the model's "
            "context: its KV cache holds %lld tokens\n",
            (long long)ctx_size, (long long)decode.capacity);
    exit(EXIT_USAGE);
  }
  if (ctx_size == 0)
    ctx_size = decode.capacity;
  /* The model's own entry stays out of a context too small for it. */
  if (use_prefill && !prefill_path && ctx_size < prefill.S + 1) {
    if (!swapped)
      free_step(&prefill, &decode);
    use_prefill = 0;
  }
  if (ctx_size < decode.run_rows + 1 || (use_prefill && ctx_size < prefill.S + 1)) {
    fprintf(stderr,
            "bitnet-generate: --ctx-size %lld is too small for a "
            "step of the model\n",
            (long long)ctx_size);
    exit(EXIT_USAGE);
  }
  if (prompt && !vjson && !tok)
    tool_fail("%s has no tokenizer (metadata bitnet.tokenizer) or vocabulary "
              "(bitnet.vocab): give --tokens",
              model_path);
  if (!vjson && !tok)
    print_ids = 1;

  generation g = {
      .decode = &decode,
      .prefill = use_prefill ? &prefill : NULL,
      .ids = tool_xmalloc(sizeof(int32_t) * (size_t)(decode.capacity + 1)),
      .sample_v = sample_v,
      .sampler = sampler,
      .ctx = ctx_size,
      .context_shift = context_shift,
      .max_new = max_new,
      .stop = stop,
      .print_ids = print_ids,
      .tok = tok,
      .out = &out,
  };
  const char *why = NULL;
  int64_t turns = 0;
  if (chatting) {
    turns = chat(&g, tmpl, system, prompt, &why);
  } else {
    /* The prompt. */
    int32_t *ids =
        tool_xmalloc(sizeof(int32_t) * (2 + strlen(prompt ? prompt : "") +
                                        (token_list ? strlen(token_list) : 0)));
    int64_t n = 0;
    if (prompt && tok) {
      int32_t *encoded = NULL;
      tool_check(bitnet_tokenizer_encode(
          tok, prompt, strlen(prompt),
          bitnet_tokenizer_add_bos(tok) ? BITNET_ENCODE_ADD_BOS : 0, &encoded,
          &n));
      memcpy(ids, encoded, sizeof(int32_t) * (size_t)n);
      free(encoded);
    } else if (prompt) {
      int64_t skipped;
      n = encode(&voc, prompt, ids, &skipped);
      if (skipped)
        fprintf(stderr, "bitnet-generate: %lld prompt bytes are not in the "
                        "vocabulary and were left out\n",
                (long long)skipped);
    } else if (token_list) {
      for (const char *p = token_list; *p;) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || v >= sample_v)
          usage_error("--tokens: '%s' is not a list of token ids below the "
                      "vocabulary size",
                      token_list);
        ids[n++] = (int32_t)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
          usage_error("--tokens: '%s' is not a comma-separated list",
                      token_list);
      }
    }
    if (n == 0)
      usage_error("%s", "the prompt is empty: give --prompt, -f or --tokens");
    check_fits(&g, n, "the prompt");

    /* Echo the prompt. */
    for (int64_t k = 0; k < n; ++k) {
      if (print_ids)
        printf("%s%d", k ? " " : "", ids[k]);
      else
        put_token(&out, ids[k], 0);
    }
    fflush(stdout);
    g.ids_on_line = (int)n;
    feed(&g, ids, n);
    free(ids);
    int pending;
    why = reply(&g, &pending);
    if (!print_ids)
      put_rest(&out, 0);
    printf("\n");
    fflush(stdout);
  }
  bitnet_chat_template_free(tmpl);
  bitnet_stream_decoder_free(out.decoder);
  bitnet_tokenizer_free(tok);
  free(out.kept);
  if (trace_file && fclose(trace_file) != 0) {
    fprintf(stderr, "bitnet-generate: --trace-ids %s: %s\n", trace_path,
            strerror(errno));
    exit(1);
  }

  if (!quiet) {
    bitnet_model_mapping map = {0};
    bitnet_status ms = bitnet_model_get_mapping(decode.model, &map);
    bitnet_status_free(ms);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr,
            "prompt: %lld tokens in %.3f s (%.1f tokens/s)\n"
            "decode: %lld tokens in %.3f s (%.2f tokens/s)\n",
            (long long)g.prompt_tokens, g.t_prompt,
            g.t_prompt > 0 ? g.prompt_tokens / g.t_prompt : 0.0,
            (long long)g.decode_steps, g.t_decode,
            g.t_decode > 0 ? g.decode_steps / g.t_decode : 0.0);
    if (chatting)
      fprintf(stderr, "turns: %lld; time to first token: %.3f s; the last "
                      "reply stopped at %s\n",
              (long long)turns, g.t_first, why);
    else
      fprintf(stderr, "time to first token: %.3f s; stopped at %s\n",
              g.t_first, why);
    if (g.shifts)
      fprintf(stderr,
              "context: %lld tokens; %lld context shift%s, which ran "
              "%lld tokens again (counted as prompt tokens)\n",
              (long long)g.ctx, (long long)g.shifts, g.shifts == 1 ? "" : "s",
              (long long)g.shift_tokens);
    fprintf(stderr,
            "weights (read-only data of the model): %.1f MB; KV cache: %.1f "
            "MB; peak RSS: %.1f MB; %lld threads\n",
            map.read_only_bytes / 1e6, kv_bytes(&decode) / 1e6,
            ru.ru_maxrss / 1024.0, (long long)threads);
  }
  bitnet_sampler_free(sampler);
  free(g.ids);
  free_vocab(&voc);
  free(file_prompt);
  if (swapped) {
    free_step(&decode, &prefill);
    free_step(&prefill, NULL);
  } else {
    if (use_prefill)
      free_step(&prefill, &decode);
    free_step(&decode, NULL);
  }
  bitnet_thread_pool_release(tp);
  return 0;
}
