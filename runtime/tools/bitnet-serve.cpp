//===- bitnet-serve.cpp - An OpenAI-compatible server -----------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Serves a decoder compiled by bitnet-compile (the model bitnet-generate
// runs: inputs `tokens` [S] int32, `position` int32 and KV caches flagged
// BITNET_TENSOR_STATE; output `logits` [S, V]) over HTTP, with the request
// and response shapes of OpenAI's API: /v1/completions,
// /v1/chat/completions (both streamed as server-sent events on request),
// /v1/models, and /health and /metrics (Prometheus) for operations.
//
// Text goes through the same code as bitnet-generate (tool_step.h, the
// runtime's tokenizer, chat template and sampler), so that a request gives
// the tokens bitnet-generate gives for the same prompt and sampling.
//
// The model holds one sequence at a time (one slot: one set of KV caches).
// Requests wait in a bounded first-in first-out queue; one scheduler thread
// owns the model and gives the next request to a free slot. More slots (more
// KV caches, run in turn or batched) fit the same loop.
//
// HTTP and JSON are cpp-httplib's and nlohmann::json's.
//
// Exit status: 0 after a shutdown by SIGTERM or SIGINT, 1 when loading the
// model or listening fails, 2 for bad command-line usage.
//
//===----------------------------------------------------------------------===//

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
    "The model holds one sequence at a time; other requests wait in a queue,\n"
    "first come first served.\n"
    "\n"
    "options:\n"
    "  --host HOST            address to listen on (default 127.0.0.1)\n"
    "  --port N               port to listen on (default 8080; 0: a free\n"
    "                         one). Once listening, it prints\n"
    "                         'bitnet-serve: listening on http://HOST:PORT'\n"
    "                         on stderr\n"
    "  --threads N            threads for the kernels (default: online cores)\n"
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

/// One sequence the model holds: its KV caches and the tokens in them. This
/// version has one; more would be more step_models sharing the weights.
struct Slot {
  step_model *step = nullptr;
  std::vector<int32_t> ids; // the token at each position
  int64_t pos = 0;          // tokens run so far
  std::shared_ptr<Job> job; // running, or null: free
};

/// The bounded queue of requests and the loop that gives each to a slot.
class Scheduler {
public:
  Scheduler(step_model *step, const TextModel *text, size_t capacity)
      : text_(text), capacity_(capacity) {
    slots_.resize(1);
    slots_[0].step = step;
    slots_[0].ids.resize((size_t)step->capacity + 1);
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

  /// Runs requests until stop(); then what is left in the queue is ended.
  void loop() {
    for (;;) {
      std::unique_lock<std::mutex> lock(m_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty())
        break;
      // The next request goes to a free slot; with one slot, and the
      // request run to its end here, the slot is always free now.
      Slot *slot = &slots_[0];
      slot->job = std::move(queue_.front());
      queue_.pop_front();
      metrics.queue_depth = (int64_t)queue_.size();
      ++busy_;
      metrics.slots_in_use = busy_;
      lock.unlock();
      run(*slot);
      lock.lock();
      slot->job.reset();
      --busy_;
      metrics.slots_in_use = busy_;
    }
  }

  void stop() {
    std::lock_guard<std::mutex> lock(m_);
    stopping_ = true;
    cv_.notify_all();
  }

private:
  /// Whether `n` more tokens fit in the slot's KV cache (bitnet-generate's
  /// fits(): a step of S tokens must fit after them).
  static bool fits(const Slot &s, int64_t n) {
    return s.pos + n + s.step->S <= s.step->capacity + 1;
  }

  /// Runs `n` <= S tokens at the slot's position; the logits of the last.
  static const float *step(Slot &s, const int32_t *ids, int64_t n,
                           bitnet_status *status) {
    step_model *m = s.step;
    for (int64_t k = 0; k < m->S; ++k)
      m->tokens[k] = k < n ? ids[k] : 0; // padding: later rows, never seen
    *m->position = (int32_t)s.pos;
    *status = bitnet_context_run(m->context, (const void *const *)m->inputs,
                                 m->num_inputs, m->outputs, m->num_outputs);
    s.pos += n;
    return m->last_only ? m->logits : m->logits + (n - 1) * m->V;
  }

  /// The generation of bitnet-generate's reply(), for one request: the
  /// prompt from an empty KV cache, then sampled tokens until max_tokens,
  /// the end of the context, an end token or a stop text. Text is handed
  /// over as it comes, less what may be the start of a stop text.
  void run(Slot &slot) {
    Job &job = *slot.job;
    step_model *m = slot.step;
    if (job.cancelled) // its client went away while it waited
      return job.finish("stop", 0);
    reset_caches(m);
    slot.pos = 0;
    bitnet_sampler *sampler = nullptr;
    bitnet_stream_decoder *decoder = nullptr;
    bitnet_status status = bitnet_sampler_create(&job.sampling, &sampler);
    if (status == BITNET_OK && text_->tok)
      status = bitnet_stream_decoder_create(
          text_->tok, BITNET_DECODE_SKIP_SPECIAL, &decoder);
    auto fail = [&](int64_t produced) {
      std::string message = bitnet_status_message(status);
      bitnet_status_free(status);
      job.finish("stop", produced, message);
    };
    if (status != BITNET_OK) {
      bitnet_sampler_free(sampler);
      return fail(0);
    }

    // The prompt, S tokens a step (its length was checked on arrival).
    const float *logits = nullptr;
    const int64_t n = (int64_t)job.prompt.size();
    for (int64_t at = 0; at < n && status == BITNET_OK;) {
      int64_t chunk = std::min<int64_t>(n - at, m->S);
      std::copy(job.prompt.begin() + at, job.prompt.begin() + at + chunk,
                slot.ids.begin() + slot.pos);
      logits = step(slot, slot.ids.data() + slot.pos, chunk, &status);
      at += chunk;
    }
    metrics.prompt_tokens += (uint64_t)n;

    std::string all;      // the text generated
    size_t sent = 0;      // how much of it was handed over
    size_t stop_at = std::string::npos;
    std::string reason = "length";
    int64_t produced = 0;
    double t_last = 0;
    while (status == BITNET_OK && produced < job.max_tokens) {
      int32_t id;
      status = bitnet_sampler_sample(sampler, logits, text_->sample_v, &id);
      if (status != BITNET_OK)
        break;
      ++produced;
      metrics.generated_tokens += 1;
      double t = seconds_now();
      if (produced == 1)
        metrics.ttft.observe(t - job.t_arrival);
      else
        metrics.itl.observe(t - t_last);
      t_last = t;
      if (text_->tok && (id == bitnet_tokenizer_eos_id(text_->tok) ||
                         id == bitnet_tokenizer_eot_id(text_->tok))) {
        reason = "stop";
        break;
      }
      if (decoder) {
        const char *bytes;
        size_t len;
        status = bitnet_stream_decoder_push(decoder, id, &bytes, &len);
        if (status != BITNET_OK)
          break;
        all.append(bytes, len);
      } else {
        all.append(text_->voc.text[id], text_->voc.len[id]);
      }
      stop_at = find_stop(job.stops, all, sent);
      if (stop_at != std::string::npos) {
        reason = "stop";
        break;
      }
      size_t safe = all.size() - held_back(job.stops, all);
      if (safe > sent) {
        job.append(all.substr(sent, safe - sent));
        sent = safe;
      }
      // The client is gone, or the shutdown's time is up: the slot is free
      // now.
      if (job.cancelled || produced == job.max_tokens || !fits(slot, 1))
        break;
      slot.ids[(size_t)slot.pos] = id;
      logits = step(slot, &slot.ids[(size_t)slot.pos], 1, &status);
    }
    if (status != BITNET_OK) {
      bitnet_stream_decoder_free(decoder);
      bitnet_sampler_free(sampler);
      return fail(produced);
    }
    if (decoder && stop_at == std::string::npos) {
      // An unfinished character at the end.
      const char *bytes;
      size_t len;
      bitnet_stream_decoder_flush(decoder, &bytes, &len);
      all.append(bytes, len);
    }
    size_t end = stop_at != std::string::npos ? stop_at : all.size();
    if (end > sent)
      job.append(all.substr(sent, end - sent));
    bitnet_stream_decoder_free(decoder);
    bitnet_sampler_free(sampler);
    job.finish(reason, produced);
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

  const TextModel *text_;
  size_t capacity_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::vector<Slot> slots_;
  int64_t busy_ = 0;
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
    int64_t room = step->capacity + 1 - step->S; // tokens before a step
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
  bool quiet = false, have_key = false;
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

  Scheduler scheduler(&decode, &text, (size_t)queue);
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
  free_step(&decode, nullptr);
  bitnet_thread_pool_release(tp);
  if (!quiet)
    fprintf(stderr, "bitnet-serve: stopped\n");
  return 0;
}
