//===- bitnet-serve.cpp - An OpenAI-compatible server -----------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Serves a decoder compiled by bitnet-compile (the model bitnet-generate
// runs, tool_step.h) over HTTP, with the request and response shapes of
// OpenAI's API: /v1/completions,
// /v1/chat/completions (both streamed as server-sent events on request),
// /v1/models, and /health and /metrics (Prometheus) for operations.
//
// Text goes through the same code as bitnet-generate (tool_step.h, the
// runtime's tokenizer, chat template and sampler), so that a request gives
// the tokens bitnet-generate gives for the same prompt and sampling.
//
// Requests wait in a bounded first-in first-out queue; one scheduler thread
// owns the model and runs the requests in its slots, the sequences its KV
// caches hold:
//
// - A batched build (bitnet-compile --max-sequences=B: inputs `tokens`,
//   `positions`, `slots` [T] int32, caches [B, C, ...]; output `logits`
//   [T, V]) has B slots, batched continuously: at each step a waiting
//   request takes a free slot; every decoding slot gives one token, prompt
//   chunks of the slots still reading theirs (oldest first) fill the rest
//   of the T tokens, and padding (slot -1) what is left; then each slot due
//   a token samples it from its own logits row. A request that ends, or
//   whose client goes away, frees its slot for the next step. A token's
//   logits depend on its own sequence only, so a request gives the same
//   tokens whatever runs beside it.
// - A classic build (inputs `tokens` [S] int32, `position` int32 and KV
//   caches; output `logits` [S, V]) has one slot: one request at a time, its
//   prompt S tokens a step, then a token a step.
//
// HTTP and JSON are cpp-httplib's and nlohmann::json's.
//
// Exit status: 0 after a shutdown by SIGTERM or SIGINT, 1 when loading the
// model or listening fails, 2 for bad command-line usage.
//
//===----------------------------------------------------------------------===//

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bitnet_rt/bitnet_rt.h"
#include "bitnet_rt/chat.h"
#include "bitnet_rt/sampler.h"
#include "bitnet_rt/tokenizer.h"

#include "tool_cli.h"
#include "tool_step.h"
#include "tool_text.h"
#include "tool_version.h"

using json = nlohmann::json;

static const char usage_text[] =
    "usage: bitnet-serve MODEL.so [options]\n"
    "\n"
    "Serves a decoder compiled by bitnet-compile (the model bitnet-generate\n"
    "runs) over HTTP with OpenAI's API:\n"
    "  POST /v1/completions       {\"prompt\": TEXT, ...}\n"
    "  POST /v1/chat/completions  {\"messages\": [{\"role\": ROLE, \"content\":\n"
    "                             TEXT}, ...], ...}, through the model's chat\n"
    "                             template\n"
    "  GET  /v1/models            the model served\n"
    "  GET  /health               200 while serving, 503 when shutting down\n"
    "  GET  /metrics              Prometheus counters, gauges, histograms\n"
    "Requests take temperature (default 0.8; 0: greedy), top_p (0.95), top_k\n"
    "(40, 0: all), max_tokens (completions: 16; chat: the rest of the\n"
    "context), stop (a string or a list of up to 4), seed (default: random)\n"
    "and stream (server-sent events). Generation stops at max_tokens or at\n"
    "the end of the context (finish_reason \"length\"), or at a stop text or\n"
    "the end-of-sequence or end-of-turn token (\"stop\").\n"
    "\n"
    "A batched build (bitnet-compile --max-sequences=B) runs up to B requests\n"
    "at once, batched continuously: each step of T tokens (--input-shape=\n"
    "tokens:T, default B) takes one token of every request generating and\n"
    "fills the rest with prompt chunks of those starting; a request takes a\n"
    "free slot at the next step and frees it when it ends or its client goes\n"
    "away. A classic build (one sequence) runs one request at a time. Others\n"
    "wait in a queue, first come first served; /metrics gives the slots.\n"
    "\n"
    "options:\n"
    "  --host HOST            address to listen on (default 127.0.0.1)\n"
    "  --port N               port to listen on (default 8080; 0: a free\n"
    "                         one). Once listening, it prints\n"
    "                         'bitnet-serve: listening on http://HOST:PORT'\n"
    "                         on stderr\n"
    "  --threads N            threads for the kernels (default: online cores)\n"
    "  --huge-pages           move the weights onto transparent huge pages at\n"
    "                         start (a private copy, about 0.3-1.5 s a GB):\n"
    "                         decoding runs faster; the weights are then not\n"
    "                         shared with other processes\n"
    "  --queue N              requests that may wait for the model (default\n"
    "                         16); past that a request gets 429 with a\n"
    "                         Retry-After header\n"
    "  --api-key KEY          every /v1 request needs the header\n"
    "                         'Authorization: Bearer KEY' (else 401);\n"
    "                         /health and /metrics stay open. Default: the\n"
    "                         environment variable BITNET_API_KEY, else no\n"
    "                         key\n"
    "  --shutdown-timeout S   on SIGTERM or SIGINT, seconds to finish the\n"
    "                         requests running and waiting (default 10); new\n"
    "                         ones get 503 meanwhile. Then it exits with 0\n"
    "  --model-name NAME      the model's id in /v1/models and responses\n"
    "                         (default: the file's name without .so)\n"
    "  --quiet                no line per request on stderr\n"
    "  --help                 show this text\n"
    "  --version              show the version, git revision, runtime library\n"
    "                         and model ABI\n";

//===----------------------------------------------------------------------===//
// Metrics
//===----------------------------------------------------------------------===//

namespace {

/// A Prometheus histogram with fixed bucket bounds (seconds).
class Histogram {
public:
  explicit Histogram(std::vector<double> bounds)
      : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

  void observe(double v) {
    std::lock_guard<std::mutex> lock(m_);
    size_t i = 0;
    while (i < bounds_.size() && v > bounds_[i])
      ++i;
    ++counts_[i];
    sum_ += v;
    ++count_;
  }

  void write(std::string &out, const char *name, const char *help) {
    std::lock_guard<std::mutex> lock(m_);
    char line[256];
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name +
           " histogram\n";
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      cumulative += counts_[i];
      if (i < bounds_.size())
        snprintf(line, sizeof(line), "%s_bucket{le=\"%g\"} %llu\n", name,
                 bounds_[i], (unsigned long long)cumulative);
      else
        snprintf(line, sizeof(line), "%s_bucket{le=\"+Inf\"} %llu\n", name,
                 (unsigned long long)cumulative);
      out += line;
    }
    snprintf(line, sizeof(line), "%s_sum %.6f\n%s_count %llu\n", name, sum_,
             name, (unsigned long long)count_);
    out += line;
  }

private:
  std::mutex m_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct Metrics {
  std::mutex m;
  // Requests answered, by endpoint and status.
  std::map<std::pair<std::string, int>, uint64_t> requests;
  std::atomic<uint64_t> prompt_tokens{0}, generated_tokens{0};
  // Steps of the model, and of them those run through the one-token step
  // (a batched build's entry 'one').
  std::atomic<uint64_t> steps{0}, one_token_steps{0};
  std::atomic<int64_t> queue_depth{0}, slots_in_use{0};
  int64_t slots = 0;
  Histogram ttft{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}};
  Histogram itl{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                 2.5}};

  void count_request(const std::string &path, int status) {
    // Known routes only, so that probing for paths cannot grow the labels.
    static const char *const known[] = {"/v1/completions",
                                        "/v1/chat/completions", "/v1/models",
                                        "/health", "/metrics"};
    std::string endpoint = "other";
    for (const char *k : known)
      if (path == k)
        endpoint = k;
    std::lock_guard<std::mutex> lock(m);
    ++requests[{endpoint, status}];
  }

  std::string text() {
    std::string out;
    out += "# HELP bitnet_serve_requests_total HTTP requests answered, by "
           "endpoint and status.\n# TYPE bitnet_serve_requests_total "
           "counter\n";
    {
      std::lock_guard<std::mutex> lock(m);
      for (const auto &[key, n] : requests)
        out += "bitnet_serve_requests_total{endpoint=\"" + key.first +
               "\",status=\"" + std::to_string(key.second) + "\"} " +
               std::to_string(n) + "\n";
    }
    auto put = [&](const char *name, const char *type, const char *help,
                   long long v) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name +
             " " + type + "\n" + name + " " + std::to_string(v) + "\n";
    };
    put("bitnet_serve_prompt_tokens_total", "counter",
        "Prompt tokens run through the model.", (long long)prompt_tokens);
    put("bitnet_serve_generated_tokens_total", "counter",
        "Tokens generated.", (long long)generated_tokens);
    put("bitnet_serve_steps_total", "counter", "Steps of the model run.",
        (long long)steps);
    put("bitnet_serve_one_token_steps_total", "counter",
        "Steps run through a batched build's one-token step (one token to "
        "run).",
        (long long)one_token_steps);
    put("bitnet_serve_queue_depth", "gauge",
        "Requests waiting for a slot.", (long long)queue_depth);
    put("bitnet_serve_slots_in_use", "gauge",
        "Slots (sequences the model holds) running a request.",
        (long long)slots_in_use);
    put("bitnet_serve_slots", "gauge", "Slots of the model.",
        (long long)slots);
    ttft.write(out, "bitnet_serve_time_to_first_token_seconds",
               "Time from a request's arrival to its first generated token.");
    itl.write(out, "bitnet_serve_inter_token_latency_seconds",
              "Time between consecutive generated tokens of a request.");
    return out;
  }
};

Metrics metrics;

double seconds_now() { return now_seconds(); }

//===----------------------------------------------------------------------===//
// Requests and the queue
//===----------------------------------------------------------------------===//

/// One generation request, shared by the HTTP thread that answers it and
/// the scheduler that runs it. The scheduler appends text to `text` and the
/// HTTP thread takes it, under `m`, so that no piece is lost or sent twice.
struct Job {
  // What to run (set before it is queued, read-only after).
  std::vector<int32_t> prompt;
  bitnet_sampler_params sampling{};
  int64_t max_tokens = 0;
  std::vector<std::string> stops;
  double t_arrival = 0;

  // What came out.
  std::mutex m;
  std::condition_variable cv;
  std::string text;          // generated, not yet taken by the HTTP thread
  bool done = false;
  std::string finish_reason; // "stop" or "length"
  std::string error;         // the model failed to run
  int64_t completion_tokens = 0;

  // Set by the HTTP side when the client is gone or by a shutdown past its
  // time: the scheduler stops the request at its next token.
  std::atomic<bool> cancelled{false};

  void append(const std::string &piece) {
    if (piece.empty())
      return;
    std::lock_guard<std::mutex> lock(m);
    text += piece;
    cv.notify_all();
  }
  void finish(const std::string &reason, int64_t tokens,
              const std::string &failure = "") {
    std::lock_guard<std::mutex> lock(m);
    finish_reason = reason;
    completion_tokens = tokens;
    error = failure;
    done = true;
    cv.notify_all();
  }
};

/// What the text of tokens is made of: the model's tokenizer, else its
/// character vocabulary (bitnet.vocab), as bitnet-generate has it.
struct TextModel {
  bitnet_tokenizer *tok = nullptr;
  bitnet_chat_template *tmpl = nullptr; // or null: no chat
  std::string tmpl_error;               // why there is none
  vocab voc{};
  bool has_vocab = false;
  int64_t sample_v = 0;

  /// The prompt's tokens, as bitnet-generate encodes --prompt (BOS when the
  /// tokenizer asks for it), or chat text as --chat does (none added).
  bool encode(const std::string &text, bool chat,
              std::vector<int32_t> &out) const {
    out.clear();
    if (tok) {
      int32_t *ids = nullptr;
      int64_t n = 0;
      int flags = !chat && bitnet_tokenizer_add_bos(tok) ? BITNET_ENCODE_ADD_BOS
                                                         : 0;
      bitnet_status s = bitnet_tokenizer_encode(tok, text.data(), text.size(),
                                                flags, &ids, &n);
      if (s != BITNET_OK) {
        bitnet_status_free(s);
        return false;
      }
      out.assign(ids, ids + n);
      free(ids);
      return true;
    }
    if (!has_vocab)
      return false;
    // Bytes that no vocabulary entry starts with are left out, as
    // bitnet-generate does.
    std::vector<int32_t> ids(text.size() + 2);
    int64_t skipped = 0;
    int64_t n = ::encode(&voc, text.c_str(), ids.data(), &skipped);
    out.assign(ids.begin(), ids.begin() + n);
    return true;
  }
};

/// One sequence the model holds: a slot of its KV caches (slot `index` of a
/// batched build; all of a classic build's caches, its only slot), the
/// request running there and how far it has come.
struct Slot {
  int32_t index = 0;
  std::shared_ptr<Job> job;  // running, or null: free
  uint64_t order = 0;        // when it took the request: older prompts first
  std::vector<int32_t> ids;  // the token at each position
  int64_t pos = 0;           // tokens run so far
  int64_t prompt_run = 0;    // of them, the prompt's
  bool decoding = false;     // ids[pos] is a sampled token to run next
  bitnet_sampler *sampler = nullptr;
  bitnet_stream_decoder *decoder = nullptr; // or null: the vocabulary
  std::string all;           // the text generated
  size_t sent = 0;           // how much of it was handed over
  int64_t produced = 0;      // tokens sampled
  double t_last = 0;         // when the last one was
};

/// The bounded queue of requests and the loop that runs them in the
/// model's slots, a step at a time (continuous batching).
///
/// Each step takes the requests waiting into free slots, then gathers one
/// token for every slot that is decoding and fills the rest of the step's
/// T tokens with prompt chunks of the slots still reading theirs, oldest
/// first; what is left is padding. After the step, every slot whose last
/// token in it was a decode token or its prompt's last samples its next
/// token from that token's logits row. A classic build has one slot, its
/// step one sequence: a prompt chunk of up to S tokens, or one token.
class Scheduler {
public:
  /// `one`, when not null, is the batched build's step of one token over
  /// the same caches (its entry 'one'), run for a step that has a single
  /// token to run.
  Scheduler(step_model *step, step_model *one, const TextModel *text,
            size_t capacity)
      : step_(step), one_(one), text_(text), capacity_(capacity) {
    // A step takes one token of each decoding slot: a batched build of
    // T < B tokens a step can keep only T of its slots busy.
    slots_.resize((size_t)std::min(step->slots, step->S));
    for (size_t i = 0; i < slots_.size(); ++i) {
      slots_[i].index = (int32_t)i;
      slots_[i].ids.resize((size_t)step->capacity + 1);
    }
    metrics.slots = (int64_t)slots_.size();
  }

  /// Queues `job`; false when the queue is full.
  bool submit(std::shared_ptr<Job> job) {
    std::lock_guard<std::mutex> lock(m_);
    if (queue_.size() >= capacity_)
      return false;
    queue_.push_back(std::move(job));
    metrics.queue_depth = (int64_t)queue_.size();
    cv_.notify_all();
    return true;
  }

  /// Whether nothing waits or runs.
  bool idle() {
    std::lock_guard<std::mutex> lock(m_);
    return queue_.empty() && busy_ == 0;
  }

  /// Stops every waiting and running request at its next token.
  void cancel_all() {
    std::lock_guard<std::mutex> lock(m_);
    for (auto &job : queue_)
      job->cancelled = true;
    for (auto &slot : slots_)
      if (slot.job)
        slot.job->cancelled = true;
  }

  /// Runs steps until stop() and nothing is left to run.
  void loop() {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock,
                 [&] { return stopping_ || !queue_.empty() || busy_ > 0; });
        if (queue_.empty() && busy_ == 0)
          break;
        admit();
      }
      // A request whose client went away (or whose shutdown time is up)
      // leaves its slot free for the next step.
      for (Slot &s : slots_)
        if (s.job && s.job->cancelled)
          end(s, "length", std::string::npos);
      if (busy_ > 0)
        run_step();
    }
  }

  void stop() {
    std::lock_guard<std::mutex> lock(m_);
    stopping_ = true;
    cv_.notify_all();
  }

private:
  /// Gives waiting requests to the free slots, first come first served;
  /// one cancelled while it waited ends without a token. Under m_.
  void admit() {
    for (Slot &s : slots_) {
      while (!s.job && !queue_.empty()) {
        std::shared_ptr<Job> job = std::move(queue_.front());
        queue_.pop_front();
        metrics.queue_depth = (int64_t)queue_.size();
        if (job->cancelled) {
          job->finish("stop", 0);
          continue;
        }
        bitnet_status status = bitnet_sampler_create(&job->sampling,
                                                     &s.sampler);
        if (status == BITNET_OK && text_->tok)
          status = bitnet_stream_decoder_create(
              text_->tok, BITNET_DECODE_SKIP_SPECIAL, &s.decoder);
        if (status != BITNET_OK) {
          std::string message = bitnet_status_message(status);
          bitnet_status_free(status);
          bitnet_sampler_free(s.sampler);
          s.sampler = nullptr;
          job->finish("stop", 0, message);
          continue;
        }
        // A classic build's step writes rows past the tokens it runs (its
        // padding): its caches are emptied for each request, as
        // bitnet-generate starts. A batched build's slot needs nothing: a
        // sequence reads only the rows it wrote.
        if (!step_->batched)
          reset_caches(step_);
        s.job = std::move(job);
        s.order = next_order_++;
        ++busy_;
        metrics.slots_in_use = busy_;
      }
    }
  }

  /// Whether `n` more tokens fit in the slot's KV cache (bitnet-generate's
  /// fits(): a run after them must fit).
  bool fits(const Slot &s, int64_t n) const {
    return s.pos + n + step_->run_rows <= step_->capacity + 1;
  }

  /// A slot's tokens in a step: `n` at `at` of the step, from ids[pos].
  struct Piece {
    Slot *slot;
    int64_t at, n;
    bool prompt;
  };

  /// One step of the model over the busy slots; then samples where a
  /// token is due.
  void run_step() {
    const int64_t T = step_->S;
    std::vector<Piece> pieces;
    int64_t used = 0;
    for (Slot &s : slots_)
      if (s.job && s.decoding)
        pieces.push_back({&s, used++, 1, false});
    std::vector<Slot *> reading;
    for (Slot &s : slots_)
      if (s.job && !s.decoding)
        reading.push_back(&s);
    std::sort(reading.begin(), reading.end(),
              [](const Slot *a, const Slot *b) { return a->order < b->order; });
    for (Slot *s : reading) {
      const std::vector<int32_t> &prompt = s->job->prompt;
      int64_t n = std::min<int64_t>((int64_t)prompt.size() - s->prompt_run,
                                    T - used);
      if (n <= 0)
        break;
      std::copy(prompt.begin() + s->prompt_run,
                prompt.begin() + s->prompt_run + n, s->ids.begin() + s->pos);
      pieces.push_back({s, used, n, true});
      used += n;
    }

    // A single token runs through the one-token step where there is one:
    // the T-token step would compute T - 1 padding tokens too.
    step_model *st = one_ && used == 1 ? one_ : step_;
    if (st->batched) {
      for (const Piece &p : pieces)
        for (int64_t k = 0; k < p.n; ++k) {
          st->tokens[p.at + k] = p.slot->ids[(size_t)(p.slot->pos + k)];
          st->positions[p.at + k] = (int32_t)(p.slot->pos + k);
          st->slot_ids[p.at + k] = p.slot->index;
        }
      for (int64_t k = used; k < st->S; ++k) {
        st->tokens[k] = 0;
        st->positions[k] = 0;
        st->slot_ids[k] = -1; // padding
      }
    } else {
      const Piece &p = pieces[0]; // the one slot
      step_fill_one(st, p.slot->ids.data() + p.slot->pos, p.n, p.slot->pos);
    }
    bitnet_status status = bitnet_context_run(
        st->context, (const void *const *)st->inputs, st->num_inputs,
        st->outputs, st->num_outputs);
    ++metrics.steps;
    if (st == one_)
      ++metrics.one_token_steps;
    if (status != BITNET_OK) {
      std::string message = bitnet_status_message(status);
      bitnet_status_free(status);
      for (const Piece &p : pieces)
        fail(*p.slot, message);
      return;
    }

    for (const Piece &p : pieces) {
      Slot &s = *p.slot;
      s.pos += p.n;
      if (p.prompt) {
        s.prompt_run += p.n;
        metrics.prompt_tokens += (uint64_t)p.n;
        if (s.prompt_run < (int64_t)s.job->prompt.size())
          continue;
      }
      sample(s, st->logits + (p.at + p.n - 1) * st->V);
    }
  }

  /// The generation of bitnet-generate's reply(), a token at a time: samples
  /// the slot's next token and hands over its text, less what may be the
  /// start of a stop text; ends the request at max_tokens, the end of the
  /// context, an end token, a stop text or its cancellation.
  void sample(Slot &s, const float *logits) {
    Job &job = *s.job;
    int32_t id;
    bitnet_status status =
        bitnet_sampler_sample(s.sampler, logits, text_->sample_v, &id);
    if (status != BITNET_OK)
      return fail(s, status);
    ++s.produced;
    metrics.generated_tokens += 1;
    double t = seconds_now();
    if (s.produced == 1)
      metrics.ttft.observe(t - job.t_arrival);
    else
      metrics.itl.observe(t - s.t_last);
    s.t_last = t;
    if (text_->tok && (id == bitnet_tokenizer_eos_id(text_->tok) ||
                       id == bitnet_tokenizer_eot_id(text_->tok)))
      return end(s, "stop", std::string::npos);
    if (s.decoder) {
      const char *bytes;
      size_t len;
      status = bitnet_stream_decoder_push(s.decoder, id, &bytes, &len);
      if (status != BITNET_OK)
        return fail(s, status);
      s.all.append(bytes, len);
    } else {
      s.all.append(text_->voc.text[id], text_->voc.len[id]);
    }
    size_t stop_at = find_stop(job.stops, s.all, s.sent);
    if (stop_at != std::string::npos)
      return end(s, "stop", stop_at);
    size_t safe = s.all.size() - held_back(job.stops, s.all);
    if (safe > s.sent) {
      job.append(s.all.substr(s.sent, safe - s.sent));
      s.sent = safe;
    }
    // The client is gone, or the shutdown's time is up: the slot is free
    // now.
    if (job.cancelled || s.produced == job.max_tokens || !fits(s, 1))
      return end(s, "length", std::string::npos);
    s.ids[(size_t)s.pos] = id;
    s.decoding = true;
  }

  /// Ends the slot's request for `reason`: the text not handed over yet,
  /// up to the stop text at `stop_at` (npos: none, then with what the
  /// stream decoder still holds, an unfinished character).
  void end(Slot &s, const char *reason, size_t stop_at) {
    if (s.decoder && stop_at == std::string::npos) {
      const char *bytes;
      size_t len;
      bitnet_stream_decoder_flush(s.decoder, &bytes, &len);
      s.all.append(bytes, len);
    }
    size_t end = stop_at != std::string::npos ? stop_at : s.all.size();
    if (end > s.sent)
      s.job->append(s.all.substr(s.sent, end - s.sent));
    s.job->finish(reason, s.produced);
    release(s);
  }

  /// Ends the slot's request with the model's (or sampler's) error.
  void fail(Slot &s, const std::string &message) {
    s.job->finish("stop", s.produced, message);
    release(s);
  }
  void fail(Slot &s, bitnet_status status) {
    std::string message = bitnet_status_message(status);
    bitnet_status_free(status);
    fail(s, message);
  }

  /// Frees the slot for the next request.
  void release(Slot &s) {
    bitnet_stream_decoder_free(s.decoder);
    bitnet_sampler_free(s.sampler);
    s.decoder = nullptr;
    s.sampler = nullptr;
    s.pos = s.prompt_run = s.produced = 0;
    s.decoding = false;
    s.all.clear();
    s.sent = 0;
    std::lock_guard<std::mutex> lock(m_);
    s.job.reset();
    --busy_;
    metrics.slots_in_use = busy_;
  }

  /// Where the first stop text in `all` starts, looking only at text not
  /// handed over yet (which holds back every start of one), or npos.
  static size_t find_stop(const std::vector<std::string> &stops,
                          const std::string &all, size_t sent) {
    size_t best = std::string::npos;
    for (const std::string &s : stops) {
      size_t at = all.find(s, sent);
      if (at < best)
        best = at;
    }
    return best;
  }

  /// How many bytes at the end of `all` could be the start of a stop text.
  static size_t held_back(const std::vector<std::string> &stops,
                          const std::string &all) {
    size_t hold = 0;
    for (const std::string &s : stops)
      for (size_t k = std::min(s.size() - 1, all.size()); k > hold; --k)
        if (all.compare(all.size() - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
    return hold;
  }

  step_model *step_;
  step_model *one_; ///< the entry 'one', or null
  const TextModel *text_;
  size_t capacity_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  // Written by the scheduler thread only; `job` and busy_ under m_.
  std::vector<Slot> slots_;
  int64_t busy_ = 0;
  uint64_t next_order_ = 0;
  bool stopping_ = false;
};

//===----------------------------------------------------------------------===//
// Requests: checking them
//===----------------------------------------------------------------------===//

/// A JSON body as text; text that is not UTF-8 (a model's vocabulary entry
/// could hold some, and so could the parser's message on a body that is
/// not UTF-8) is replaced, never an exception.
std::string dump(const json &j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// A request refused: its HTTP status and OpenAI's error fields.
struct ApiError {
  ApiError(int status_, std::string message_, std::string param_ = "",
           std::string type_ = "invalid_request_error",
           std::string code_ = "")
      : status(status_), message(std::move(message_)),
        param(std::move(param_)), type(std::move(type_)),
        code(std::move(code_)) {}
  int status;
  std::string message;
  std::string param; // empty: null
  std::string type;
  std::string code; // empty: null
};

std::string error_body(const ApiError &e) {
  json err = {{"message", e.message},
              {"type", e.type},
              {"param", e.param.empty() ? json(nullptr) : json(e.param)},
              {"code", e.code.empty() ? json(nullptr) : json(e.code)}};
  return dump(json{{"error", err}});
}

void send_error(httplib::Response &res, const ApiError &e) {
  res.status = e.status;
  res.set_content(error_body(e), "application/json");
}

ApiError bad(const std::string &param, const std::string &message) {
  return ApiError{400, message, param};
}

/// Everything a generation request says, checked.
struct Request {
  bool stream = false;
  bitnet_sampler_params sampling{};
  int64_t max_tokens = -1; // -1: not given
  std::vector<std::string> stops;
  std::string prompt;                                        // completions
  std::vector<std::pair<std::string, std::string>> messages; // chat
};

bool has_nul(const std::string &s) { return s.find('\0') != std::string::npos; }

/// A string field: a string without NUL bytes (the parser has already
/// refused text that is not UTF-8).
void check_text(const json &v, const std::string &param) {
  if (!v.is_string())
    throw bad(param, "'" + param + "' must be a string");
  if (has_nul(v.get_ref<const std::string &>()))
    throw bad(param, "'" + param + "' must not hold a NUL character");
}

/// Reads the body of a generation request; throws ApiError when it is not
/// one.
Request parse_request(const std::string &body, bool chat) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception &e) { // out_of_range: a number too large
    throw bad("", std::string("the body is not valid JSON (UTF-8): ") +
                      e.what());
  }
  if (!j.is_object())
    throw bad("", "the body must be a JSON object");
  Request r;
  r.sampling = {0.8, 40, 0.95, 0};
  bool have_seed = false;
  bool have_input = false;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string &key = it.key();
    const json &v = it.value();
    if (key == "model") {
      check_text(v, key); // any name: there is one model
    } else if (key == "user") {
      check_text(v, key);
    } else if (key == "stream") {
      if (!v.is_boolean())
        throw bad(key, "'stream' must be a boolean");
      r.stream = v.get<bool>();
    } else if (key == "temperature") {
      // NaN cannot be written in JSON; a number too large to hold is inf,
      // which the range refuses.
      if (!v.is_number() || !(v.get<double>() >= 0 && v.get<double>() <= 2))
        throw bad(key, "'temperature' must be a number in [0, 2]");
      r.sampling.temperature = v.get<double>();
    } else if (key == "top_p") {
      if (!v.is_number() || !(v.get<double>() > 0 && v.get<double>() <= 1))
        throw bad(key, "'top_p' must be a number in (0, 1]");
      r.sampling.top_p = v.get<double>();
    } else if (key == "top_k") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
          (v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX))
        throw bad(key, "'top_k' must be an integer >= 0 (0: all tokens)");
      r.sampling.top_k = v.get<int64_t>();
    } else if (key == "max_tokens" ||
               (chat && key == "max_completion_tokens")) {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 ||
          (v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX))
        throw bad(key, "'" + key + "' must be an integer >= 1");
      r.max_tokens = v.get<int64_t>();
    } else if (key == "seed") {
      if (!v.is_number_integer())
        throw bad(key, "'seed' must be an integer");
      r.sampling.seed = v.is_number_unsigned() ? v.get<uint64_t>()
                                               : (uint64_t)v.get<int64_t>();
      have_seed = true;
    } else if (key == "n") {
      if (!v.is_number_integer() || v.get<int64_t>() != 1)
        throw bad(key, "'n' must be 1: one choice per request");
    } else if (key == "stop") {
      if (v.is_null())
        continue;
      std::vector<json> list;
      if (v.is_string())
        list.push_back(v);
      else if (v.is_array())
        list.assign(v.begin(), v.end());
      else
        throw bad(key, "'stop' must be a string or a list of strings");
      if (list.size() > 4)
        throw bad(key, "'stop' holds at most 4 strings");
      for (const json &s : list) {
        check_text(s, key);
        if (s.get_ref<const std::string &>().empty())
          throw bad(key, "'stop' strings must not be empty");
        r.stops.push_back(s.get<std::string>());
      }
    } else if (!chat && key == "prompt") {
      if (!v.is_string())
        throw bad(key, "'prompt' must be a string");
      check_text(v, key);
      r.prompt = v.get<std::string>();
      have_input = true;
    } else if (chat && key == "messages") {
      if (!v.is_array() || v.empty())
        throw bad(key, "'messages' must be a non-empty list of messages");
      for (size_t i = 0; i < v.size(); ++i) {
        const json &msg = v[i];
        std::string at = "messages[" + std::to_string(i) + "]";
        if (!msg.is_object())
          throw bad(at, "'" + at + "' must be an object");
        std::string role, content;
        bool have_role = false, have_content = false;
        for (auto f = msg.begin(); f != msg.end(); ++f) {
          std::string param = at + "." + f.key();
          if (f.key() == "role") {
            check_text(f.value(), param);
            role = f.value().get<std::string>();
            if (role != "system" && role != "user" && role != "assistant")
              throw bad(param, "'" + param +
                                   "' must be 'system', 'user' or "
                                   "'assistant'");
            have_role = true;
          } else if (f.key() == "content") {
            check_text(f.value(), param);
            content = f.value().get<std::string>();
            have_content = true;
          } else if (f.key() == "name") {
            check_text(f.value(), param);
          } else {
            throw bad(param, "unknown field '" + param + "'");
          }
        }
        if (!have_role || !have_content)
          throw bad(at, "'" + at + "' needs 'role' and 'content'");
        r.messages.emplace_back(role, content);
      }
      have_input = true;
    } else {
      throw bad(key, "unknown field '" + key + "'");
    }
  }
  if (!have_input)
    throw bad(chat ? "messages" : "prompt",
              chat ? "'messages' is required" : "'prompt' is required");
  if (!have_seed) {
    static std::mutex m;
    static std::mt19937_64 random(std::random_device{}());
    std::lock_guard<std::mutex> lock(m);
    r.sampling.seed = random();
  }
  return r;
}

//===----------------------------------------------------------------------===//
// The server
//===----------------------------------------------------------------------===//

struct Server {
  httplib::Server http;
  Scheduler *scheduler = nullptr;
  const TextModel *text = nullptr;
  const step_model *step = nullptr;
  std::string model_name;
  std::string api_key;
  bool quiet = false;
  std::atomic<bool> shutting_down{false};
  std::atomic<uint64_t> next_id{1};
  // Random per process: replicas behind a load balancer give distinct ids.
  const std::string instance_tag = [] {
    std::random_device device;
    char tag[17];
    snprintf(tag, sizeof(tag), "%08x%08x", device(), device());
    return std::string(tag);
  }();
  // Requests taken, until their response is written (streams included).
  std::atomic<int64_t> in_flight{0};

  void handle_generate(const httplib::Request &req, httplib::Response &res,
                       bool chat);
  void setup();
};

void Server::handle_generate(const httplib::Request &req,
                             httplib::Response &res, bool chat) {
  if (shutting_down)
    return send_error(res, {503, "the server is shutting down", "",
                            "server_error"});
  Request r;
  std::vector<int32_t> prompt;
  try {
    r = parse_request(req.body, chat);
    if (chat) {
      if (!text->tmpl)
        throw ApiError{400,
                       "this model has no chat template (" +
                           text->tmpl_error +
                           "); use /v1/completions",
                       "messages"};
      std::vector<bitnet_chat_message> messages;
      for (const auto &[role, content] : r.messages)
        messages.push_back({role.c_str(), content.c_str()});
      char *out = nullptr;
      size_t len = 0;
      bitnet_status s = bitnet_chat_template_apply(
          text->tmpl, messages.data(), (int64_t)messages.size(),
          BITNET_CHAT_ADD_GENERATION_PROMPT, &out, &len);
      if (s != BITNET_OK) {
        std::string message = bitnet_status_message(s);
        bitnet_status_free(s);
        throw bad("messages", "the chat template refused the messages: " +
                                  message);
      }
      std::string templated(out, len);
      free(out);
      if (!text->encode(templated, true, prompt))
        throw bad("messages", "the messages could not be tokenized");
    } else if (!text->encode(r.prompt, false, prompt)) {
      throw bad("prompt", "the prompt could not be tokenized");
    }
    if (prompt.empty())
      throw bad(chat ? "messages" : "prompt",
                "the prompt has no tokens (none of its text is in the "
                "model's vocabulary)");
    int64_t room = step->capacity + 1 - step->run_rows; // before a run
    if ((int64_t)prompt.size() > room)
      throw bad(chat ? "messages" : "prompt",
                "the prompt has " + std::to_string(prompt.size()) +
                    " tokens; the model's context holds " +
                    std::to_string(step->capacity));
    if (r.max_tokens < 0)
      r.max_tokens = chat ? step->capacity : 16;
  } catch (const ApiError &e) {
    return send_error(res, e);
  }

  auto job = std::make_shared<Job>();
  job->prompt = std::move(prompt);
  job->sampling = r.sampling;
  job->max_tokens = r.max_tokens;
  job->stops = r.stops;
  job->t_arrival = seconds_now();
  ++in_flight;
  if (!scheduler->submit(job)) {
    --in_flight;
    res.set_header("Retry-After", "1");
    return send_error(res, {429,
                            "the queue of requests is full; retry later", "",
                            "server_error", "rate_limit_exceeded"});
  }

  char id_text[64];
  snprintf(id_text, sizeof(id_text), "%s-%s-%llu", chat ? "chatcmpl" : "cmpl",
           instance_tag.c_str(), (unsigned long long)next_id++);
  std::string id = id_text;
  long long created = (long long)time(nullptr);
  const int64_t prompt_tokens = (int64_t)job->prompt.size();
  auto usage = [prompt_tokens](int64_t completion) {
    return json{{"prompt_tokens", prompt_tokens},
                {"completion_tokens", completion},
                {"total_tokens", prompt_tokens + completion}};
  };
  std::string model = model_name;

  if (!r.stream) {
    std::unique_lock<std::mutex> lock(job->m);
    job->cv.wait(lock, [&] { return job->done; });
    --in_flight;
    if (!job->error.empty())
      return send_error(res, {500, "the model failed: " + job->error, "",
                              "server_error"});
    json choice = {{"index", 0}, {"finish_reason", job->finish_reason}};
    if (chat)
      choice["message"] = {{"role", "assistant"}, {"content", job->text}};
    else {
      choice["text"] = job->text;
      choice["logprobs"] = nullptr;
    }
    json body = {{"id", id},
                 {"object", chat ? "chat.completion" : "text_completion"},
                 {"created", created},
                 {"model", model},
                 {"choices", json::array({choice})},
                 {"usage", usage(job->completion_tokens)}};
    res.set_content(dump(body), "application/json");
    return;
  }

  // Server-sent events: a chunk per piece of text as it comes, then one
  // with finish_reason (and the usage), then [DONE].
  auto chunk = [=](const std::string &piece, const json &finish,
                   bool first) {
    json choice = {{"index", 0}, {"finish_reason", finish}};
    if (chat) {
      json delta = json::object();
      if (first)
        delta["role"] = "assistant";
      if (finish.is_null())
        delta["content"] = piece;
      choice["delta"] = delta;
    } else {
      choice["text"] = piece;
      choice["logprobs"] = nullptr;
    }
    return json{{"id", id},
                {"object", chat ? "chat.completion.chunk" : "text_completion"},
                {"created", created},
                {"model", model},
                {"choices", json::array({choice})}};
  };
  auto first = std::make_shared<bool>(chat);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [job, chunk, usage, first](size_t, httplib::DataSink &sink) {
        std::string piece;
        bool done;
        {
          std::unique_lock<std::mutex> lock(job->m);
          // Waits a while at a time, to see a client that went away.
          job->cv.wait_for(lock, std::chrono::milliseconds(100), [&] {
            return job->done || !job->text.empty();
          });
          piece.swap(job->text);
          done = job->done;
        }
        auto send = [&](const json &j) {
          std::string event = "data: " + dump(j) + "\n\n";
          return sink.write(event.data(), event.size());
        };
        if ((!piece.empty() || *first) &&
            !send(chunk(piece, nullptr, *first))) {
          job->cancelled = true;
          return false;
        }
        *first = false;
        if (!done) {
          if (!sink.is_writable()) {
            job->cancelled = true;
            return false;
          }
          return true;
        }
        json last;
        if (!job->error.empty())
          last = {{"error",
                   {{"message", "the model failed: " + job->error},
                    {"type", "server_error"},
                    {"param", nullptr},
                    {"code", nullptr}}}};
        else {
          last = chunk("", job->finish_reason, false);
          last["usage"] = usage(job->completion_tokens);
        }
        static const char kDone[] = "data: [DONE]\n\n";
        if (!send(last) || !sink.write(kDone, sizeof(kDone) - 1)) {
          job->cancelled = true;
          return false;
        }
        sink.done();
        return true;
      },
      [this, job](bool) {
        // The response is over, written or not: a request still running
        // (the client went away) stops at its next token.
        job->cancelled = true;
        --in_flight;
      });
}

void Server::setup() {
  // A waiting or streaming request holds an HTTP thread: enough for a full
  // queue, the slot and a few more for /health and /metrics.
  size_t threads = (size_t)metrics.slots + 16;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(16 << 20);

  http.set_pre_routing_handler([this](const httplib::Request &req,
                                      httplib::Response &res) {
    if (api_key.empty() || req.path.compare(0, 4, "/v1/") != 0)
      return httplib::Server::HandlerResponse::Unhandled;
    std::string auth = req.get_header_value("Authorization");
    std::string want = "Bearer " + api_key;
    // Compared in time that does not depend on where they differ.
    unsigned diff = auth.size() != want.size();
    for (size_t i = 0; i < auth.size() && i < want.size(); ++i)
      diff |= (unsigned char)(auth[i] ^ want[i]);
    if (diff == 0)
      return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, {401,
                     "a valid API key is needed: 'Authorization: Bearer "
                     "KEY'",
                     "", "invalid_request_error", "invalid_api_key"});
    return httplib::Server::HandlerResponse::Handled;
  });

  http.Post("/v1/completions",
            [this](const httplib::Request &req, httplib::Response &res) {
              handle_generate(req, res, false);
            });
  http.Post("/v1/chat/completions",
            [this](const httplib::Request &req, httplib::Response &res) {
              handle_generate(req, res, true);
            });
  http.Get("/v1/models", [this](const httplib::Request &,
                                httplib::Response &res) {
    json model = {{"id", model_name},
                  {"object", "model"},
                  {"created", 0},
                  {"owned_by", "bitnet-mlir"}};
    res.set_content(dump(json{{"object", "list"},
                              {"data", json::array({model})}}),
                    "application/json");
  });
  http.Get("/health", [this](const httplib::Request &,
                             httplib::Response &res) {
    if (shutting_down) {
      res.status = 503;
      res.set_content(R"({"status":"shutting down"})", "application/json");
    } else {
      res.set_content(R"({"status":"ok"})", "application/json");
    }
  });
  http.Get("/metrics", [](const httplib::Request &, httplib::Response &res) {
    res.set_content(metrics.text(), "text/plain; version=0.0.4");
  });

  // Unknown paths and methods, and bodies too large, in OpenAI's shape.
  http.set_error_handler([](const httplib::Request &req,
                            httplib::Response &res) {
    if (!res.body.empty())
      return;
    std::string message =
        res.status == 404 ? "no such endpoint: " + req.method + " " + req.path
        : res.status == 413 ? std::string("the request body is too large")
                            : "the request was refused (HTTP " +
                                  std::to_string(res.status) + ")";
    res.set_content(error_body({res.status, message, "",
                                "invalid_request_error"}),
                    "application/json");
  });
  http.set_exception_handler([](const httplib::Request &,
                                httplib::Response &res, std::exception_ptr) {
    send_error(res, {500, "internal error", "", "server_error"});
  });
  http.set_logger([this](const httplib::Request &req,
                         const httplib::Response &res) {
    metrics.count_request(req.path, res.status);
    if (!quiet)
      fprintf(stderr, "bitnet-serve: %s %s %d\n", req.method.c_str(),
              req.path.c_str(), res.status);
  });
}

/// cpp-httplib listens with a backlog of 5 connections, built into Debian's
/// library: a burst of clients past that may be reset before they are
/// accepted. Calling listen() again on the listening socket (found by its
/// port, as httplib does not give it out) sets a longer backlog.
void widen_backlog(int port) {
  for (int fd = 3; fd < 1024; ++fd) {
    int listening = 0;
    socklen_t len = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 ||
        !listening)
      continue;
    sockaddr_storage addr;
    socklen_t addr_len = sizeof(addr);
    if (getsockname(fd, (sockaddr *)&addr, &addr_len) != 0)
      continue;
    int bound = addr.ss_family == AF_INET
                    ? ntohs(((sockaddr_in *)&addr)->sin_port)
                : addr.ss_family == AF_INET6
                    ? ntohs(((sockaddr_in6 *)&addr)->sin6_port)
                    : -1;
    if (bound == port)
      listen(fd, SOMAXCONN);
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// Main
//===----------------------------------------------------------------------===//

int main(int argc, char **argv) {
  const char *model_path = nullptr;
  std::string host = "127.0.0.1", model_name, api_key;
  int64_t port = 8080, threads = 0, queue = 16;
  double shutdown_timeout = 10;
  bool quiet = false, have_key = false, huge_pages = false;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    const char *next = i + 1 < argc ? argv[i + 1] : nullptr;
    auto value = [&]() -> const char * {
      if (!next)
        usage_error("%s needs a value", a);
      ++i;
      return next;
    };
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage_text, stdout);
      return 0;
    } else if (!strcmp(a, "--version")) {
      print_tool_version("bitnet-serve");
      return 0;
    } else if (!strcmp(a, "--host")) {
      host = value();
      if (host.empty())
        usage_error("%s", "--host needs an address");
    } else if (!strcmp(a, "--port")) {
      port = (int64_t)parse_number(a, value(), 0, 65535);
    } else if (!strcmp(a, "--threads")) {
      threads = (int64_t)parse_number(a, value(), 1, 4096);
    } else if (!strcmp(a, "--huge-pages")) {
      huge_pages = true;
    } else if (!strcmp(a, "--queue")) {
      queue = (int64_t)parse_number(a, value(), 1, 4096);
    } else if (!strcmp(a, "--api-key")) {
      api_key = value();
      have_key = true;
      if (api_key.empty())
        usage_error("%s", "--api-key needs a non-empty key");
    } else if (!strcmp(a, "--shutdown-timeout")) {
      shutdown_timeout = parse_number(a, value(), 0, 86400);
    } else if (!strcmp(a, "--model-name")) {
      model_name = value();
      if (model_name.empty())
        usage_error("%s", "--model-name needs a non-empty name");
    } else if (!strcmp(a, "--quiet")) {
      quiet = true;
    } else if (a[0] == '-') {
      usage_error("unknown option '%s'", a);
    } else if (!model_path) {
      model_path = a;
    } else {
      usage_error("more than one model given ('%s')", a);
    }
  }
  if (!model_path)
    usage_error("%s", "no model given");
  if ((double)port != std::floor((double)port) ||
      (double)queue != std::floor((double)queue))
    usage_error("%s", "--port and --queue need whole numbers");
  if (!have_key) {
    const char *env = getenv("BITNET_API_KEY");
    if (env && *env)
      api_key = env;
  }
  if (model_name.empty()) {
    const char *base = strrchr(model_path, '/');
    model_name = base ? base + 1 : model_path;
    if (model_name.size() > 3 &&
        model_name.compare(model_name.size() - 3, 3, ".so") == 0)
      model_name.resize(model_name.size() - 3);
  }

  // Signals are taken by a thread of their own (sigwait), so every thread
  // started from here on has them blocked.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A client that goes away mid-response must not end the process.
  signal(SIGPIPE, SIG_IGN);

  // The model, as bitnet-generate loads it; errors exit with 1.
  bitnet_thread_pool *tp = nullptr;
  if (threads == 0)
    threads = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN)
                                                : 1;
  tool_check(bitnet_thread_pool_create((int32_t)threads, &tp));
  step_model decode;
  load_step(&decode, model_path, tp, nullptr);
  if (huge_pages)
    step_use_huge_pages(decode.model);
  if (decode.last_only)
    tool_fail("%s computes logits for the last of S > 1 tokens only; serve a "
              "build of S = 1 (--input-shape=tokens:1)",
              model_path);
  TextModel text;
  text.sample_v = decode.V;
  if (bitnet_model_metadata(decode.model, "bitnet.tokenizer")) {
    tool_check(bitnet_tokenizer_create_from_model(decode.model, &text.tok));
    if (bitnet_tokenizer_vocab_size(text.tok) > decode.V)
      tool_fail("%s: the tokenizer (bitnet.tokenizer) has more tokens than "
                "the logits",
                model_path);
    text.sample_v = bitnet_tokenizer_vocab_size(text.tok);
    bitnet_status s = bitnet_chat_template_create_from_model(
        decode.model, text.tok, &text.tmpl);
    if (s != BITNET_OK) {
      text.tmpl_error = bitnet_status_message(s);
      bitnet_status_free(s);
    }
  } else if (const char *vjson =
                 bitnet_model_metadata(decode.model, "bitnet.vocab")) {
    const char *error = nullptr;
    if (parse_vocab(vjson, &text.voc, &error) != 0)
      tool_fail("the model's bitnet.vocab is not a JSON list of strings: %s",
                error);
    if (text.voc.size != decode.V)
      tool_fail("%s: bitnet.vocab and the logits differ in size", model_path);
    text.has_vocab = true;
    text.tmpl_error = "it has a character vocabulary, no tokenizer";
  } else {
    tool_fail("%s has no tokenizer (metadata bitnet.tokenizer) or vocabulary "
              "(bitnet.vocab): it cannot be given text",
              model_path);
  }

  // A batched build's one-token step (bitnet-compile --max-sequences), over
  // the same caches.
  step_model one;
  bool has_one = false;
  if (decode.batched &&
      open_entry_step(&one, decode.model, "one", model_path, tp, &decode)) {
    has_one = one.batched && one.S == 1 && one.V == decode.V;
    if (!has_one)
      free_step(&one, &decode);
  }
  Scheduler scheduler(&decode, has_one ? &one : nullptr, &text,
                      (size_t)queue);
  Server server;
  server.scheduler = &scheduler;
  server.text = &text;
  server.step = &decode;
  server.model_name = model_name;
  server.api_key = api_key;
  server.quiet = quiet;
  server.setup();

  int bound = port == 0 ? server.http.bind_to_any_port(host)
                        : (server.http.bind_to_port(host, (int)port)
                               ? (int)port
                               : -1);
  if (bound < 0) {
    fprintf(stderr, "bitnet-serve: cannot listen on %s:%lld\n", host.c_str(),
            (long long)port);
    return 1;
  }
  widen_backlog(bound);
  std::atomic<bool> listen_done{false};
  std::thread worker([&] { scheduler.loop(); });

  // SIGTERM or SIGINT: new requests get 503 (and /health says so), those
  // taken finish within --shutdown-timeout, then the server stops.
  std::thread shutdown([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    server.shutting_down = true;
    if (!quiet)
      fprintf(stderr, "bitnet-serve: %s: finishing the requests taken\n",
              strsignal(sig));
    double deadline = seconds_now() + shutdown_timeout;
    while ((server.in_flight > 0 || !scheduler.idle()) &&
           seconds_now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (server.in_flight > 0 || !scheduler.idle()) {
      fprintf(stderr, "bitnet-serve: --shutdown-timeout passed; stopping the "
                      "requests left\n");
      scheduler.cancel_all();
      double grace = seconds_now() + 2;
      while (server.in_flight > 0 && seconds_now() < grace)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // stop() does nothing before listening has begun (a signal at once):
    // asked again until listening is over.
    while (!listen_done) {
      server.http.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });

  fprintf(stderr, "bitnet-serve: listening on http://%s:%d\n", host.c_str(),
          bound);
  fflush(stderr);
  server.http.listen_after_bind();
  listen_done = true;
  // Stopped by the shutdown thread, or failed by itself: then the thread,
  // waiting for a signal, gets one.
  if (!server.shutting_down)
    kill(getpid(), SIGTERM);

  scheduler.stop();
  worker.join();
  shutdown.join();
  bitnet_chat_template_free(text.tmpl);
  bitnet_tokenizer_free(text.tok);
  if (text.has_vocab)
    free_vocab(&text.voc);
  if (has_one)
    free_step(&one, &decode);
  free_step(&decode, nullptr);
  bitnet_thread_pool_release(tp);
  if (!quiet)
    fprintf(stderr, "bitnet-serve: stopped\n");
  return 0;
}
