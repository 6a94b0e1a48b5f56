"""Model.generate(): text generation with a compiled decoder step.

The same loop as the bitnet-generate tool, over the same runtime pieces: the
model's tokenizer (metadata entry bitnet.tokenizer, through libbitnet_rt) or
its character vocabulary (bitnet.vocab), the runtime's sampler
(bitnet_rt/sampler.h), and the tool's context shift past the end of the
context. The same prompt, sampling parameters and seed give the same tokens
as `bitnet-generate --seed`.
"""

import codecs
import json
import numbers
import os
import warnings

import numpy as np

from . import _native


def _plural(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class _CharVocab:
    """A character vocabulary: a list of token strings, split longest match
    first on the UTF-8 bytes (as the runtime's tools split it)."""

    def __init__(self, tokens):
        self.text = list(tokens)
        self.index = {}
        for i, t in enumerate(self.text):
            self.index.setdefault(t.encode("utf-8"), i)
        self.longest = max((len(b) for b in self.index), default=0)

    def encode(self, text):
        """(ids, number of bytes no token starts with, left out)."""
        data = text.encode("utf-8")
        ids, skipped, at = [], 0, 0
        while at < len(data):
            for n in range(min(self.longest, len(data) - at), 0, -1):
                id_ = self.index.get(data[at:at + n])
                if id_ is not None:
                    ids.append(id_)
                    at += n
                    break
            else:
                skipped += 1
                at += 1
        return ids, skipped


class _Text:
    """Token ids to text: the tokenizer's stream decoder, else the
    vocabulary's strings."""

    def __init__(self, tokenizer, vocab):
        self.decoder = (_native.StreamDecoder(tokenizer)
                        if tokenizer is not None else None)
        self.vocab = vocab
        self.utf8 = codecs.getincrementaldecoder("utf-8")("replace")

    def push(self, token):
        if self.decoder is None:
            return self.vocab.text[token]
        return self.utf8.decode(self.decoder.push(token))

    def flush(self):
        if self.decoder is None:
            return ""
        return self.utf8.decode(self.decoder.flush(), final=True)


class _Step:
    """A decoder step (inputs tokens [S] int32, position int32 and KV caches
    flagged as state; output logits [S, V]) with its caches."""

    def __init__(self, model):
        self.model = model
        what = model._what()
        specs = {s.name: s for s in model.inputs}
        tokens, position = specs.get("tokens"), specs.get("position")
        logits = [i for i, s in enumerate(model.outputs) if s.name == "logits"]
        if (tokens is None or position is None or not logits or
                tokens.dtype != np.int32 or tokens.ndim != 1 or
                position.dtype != np.int32 or position.size != 1):
            raise ValueError(
                f"{what} is not a decoder step: generate() needs inputs "
                "'tokens' int32 [S] and 'position' int32 and an output "
                "'logits' [S, V] (see models/README.md)")
        others = [s for s in model.inputs
                  if s.name not in ("tokens", "position")]
        if any(not s.state or s.ndim < 1 for s in others):
            raise ValueError(
                f"{what} has an input other than tokens and position that is "
                "not a KV cache (state) input; it is not a decoder step")
        self.logits_index = logits[0]
        out = model.outputs[self.logits_index]
        self.S = tokens.shape[0]
        if out.dtype != np.float32 or out.ndim != 2 or \
                out.shape[0] not in (self.S, 1):
            raise ValueError(f"output 'logits' of {what} must be float32 "
                             "[S, V]")
        if out.shape[0] == 1 and self.S > 1:
            raise ValueError(
                f"{what} computes the logits of the last of {self.S} tokens "
                "only (a --last-token-logits build): generate() needs a build "
                "with every token's logits, or a one-token build")
        self.V = out.shape[1]
        self.position_shape = position.shape
        self.capacity = min((s.shape[0] for s in others), default=0)
        if self.capacity < self.S:
            raise ValueError(f"the KV cache of {what} holds fewer tokens than "
                             "one step")
        self.caches = {s.name: np.zeros(s.shape, s.dtype) for s in others}

    def reset(self):
        for cache in self.caches.values():
            cache.fill(0)

    def run(self, ids, position):
        """Runs len(ids) <= S tokens at `position`; the last one's logits."""
        tokens = np.zeros(self.S, np.int32)  # padding: later rows, never read
        tokens[:len(ids)] = ids
        out = self.model.run(
            tokens=tokens,
            position=np.full(self.position_shape, position, np.int32),
            **self.caches)
        if not isinstance(out, np.ndarray):
            out = out[self.logits_index]
        return out[len(ids) - 1]


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _check_float(name, value, low, high, low_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got "
                        f"{type(value).__name__}")
    value = float(value)
    # Written so that NaN, which compares false with everything, is refused.
    ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bound = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bound}{low}, {high}], got "
                         f"{value}")
    return value


class Generation:
    """One call of Model.generate(): checked arguments, the prompt's tokens
    and the loop that produces text pieces."""

    def __init__(self, model, prompt, max_tokens, temperature, top_k, top_p,
                 seed, stop, ctx_size, context_shift):
        self.step = _Step(model)
        self.max_tokens = _check_int("max_tokens", max_tokens, 0)
        temperature = _check_float("temperature", temperature, 0, 1e30)
        top_k = _check_int("top_k", top_k, 0)
        top_p = _check_float("top_p", top_p, 0, 1, low_open=True)
        if seed is None:
            seed = int.from_bytes(os.urandom(7), "little")
        seed = _check_int("seed", seed, 0)
        if seed >= 2 ** 64:
            raise ValueError(f"seed must be below 2**64, got {seed}")
        if stop is None:
            stop = []
        elif isinstance(stop, str):
            stop = [stop]
        else:
            stop = list(stop)
        for s in stop:
            if not isinstance(s, str):
                raise TypeError(f"stop must be a str or a list of str, got "
                                f"an item of type {type(s).__name__}")
            if not s:
                raise ValueError("a stop string must not be empty (it would "
                                 "stop before the first token)")
        self.stop = stop
        self.context_shift = bool(context_shift)
        if ctx_size is None:
            ctx_size = self.step.capacity
        ctx_size = _check_int("ctx_size", ctx_size, self.step.S + 1)
        if ctx_size > self.step.capacity:
            raise ValueError(
                f"ctx_size {ctx_size} is beyond the context of "
                f"{model._what()}: its KV cache holds "
                f"{_plural(self.step.capacity, 'token')}")
        self.ctx = ctx_size

        metadata = model.metadata
        self.tokenizer = self.vocab = None
        if "bitnet.tokenizer" in metadata:
            self.tokenizer = _native.Tokenizer(metadata["bitnet.tokenizer"])
            if self.tokenizer.vocab_size > self.step.V:
                raise ValueError(
                    f"the tokenizer of {model._what()} has "
                    f"{self.tokenizer.vocab_size} tokens, the logits "
                    f"{self.step.V}")
            self.sample_v = self.tokenizer.vocab_size
        elif "bitnet.vocab" in metadata:
            self.vocab = _CharVocab(json.loads(metadata["bitnet.vocab"]))
            if len(self.vocab.text) != self.step.V:
                raise ValueError(
                    f"bitnet.vocab of {model._what()} has "
                    f"{len(self.vocab.text)} tokens, the logits {self.step.V}")
            self.sample_v = self.step.V
        else:
            self.sample_v = self.step.V
        self.ids = self._encode(model, prompt)
        if len(self.ids) + self.step.S > self.ctx + 1:
            raise ValueError(
                f"the prompt has {_plural(len(self.ids), 'token')}; the "
                f"context holds {self.ctx} (ctx_size; the model's KV cache "
                f"holds {self.step.capacity})")
        self.sampler = _native.Sampler(temperature, top_k, top_p, seed)
        #: Why generation stopped, once it has: "max_tokens", "eos", "eot",
        #: "stop" or "context".
        self.stopped_at = None
        #: Context shifts made.
        self.shifts = 0

    def _encode(self, model, prompt):
        if isinstance(prompt, str):
            if self.tokenizer is not None:
                ids = self.tokenizer.encode(prompt, self.tokenizer.add_bos)
            elif self.vocab is not None:
                ids, skipped = self.vocab.encode(prompt)
                if skipped:
                    warnings.warn(
                        f"{_plural(skipped, 'prompt byte')} not in the "
                        "vocabulary were left out", stacklevel=4)
            else:
                raise ValueError(
                    f"{model._what()} has no tokenizer (metadata "
                    "bitnet.tokenizer) or vocabulary (bitnet.vocab): give the "
                    "prompt as a list of token ids")
        elif isinstance(prompt, (bytes, bytearray)):
            raise TypeError("prompt must be a str or a sequence of token ids, "
                            "got bytes (decode it first)")
        else:
            try:
                ids = [int(t) for t in prompt]
            except (TypeError, ValueError):
                raise TypeError("prompt must be a str or a sequence of token "
                                "ids") from None
            bad = [t for t in ids if not 0 <= t < self.sample_v]
            if bad:
                raise ValueError(f"prompt token id {bad[0]} is outside the "
                                 f"vocabulary [0, {self.sample_v})")
        if not ids:
            raise ValueError("the prompt is empty")
        return ids

    # -- the loop ------------------------------------------------------------

    def _feed(self, ids, position):
        """Runs `ids` from `position` on, S at a time; the last's logits."""
        logits = None
        for at in range(0, len(ids), self.step.S):
            logits = self.step.run(ids[at:at + self.step.S], position + at)
        return logits

    def _fits(self, pos, n):
        return pos + n + self.step.S <= self.ctx + 1

    def _shift(self, ids):
        """bitnet-generate's context shift: keeps the BOS token, drops the
        oldest half of the others and runs the rest again from an empty KV
        cache. Returns the tokens kept."""
        pos = len(ids)
        keep = 1 if (self.tokenizer is not None and pos > 1 and
                     ids[0] == self.tokenizer.bos_id) else 0
        discard = (pos - keep) // 2
        room = self.ctx + 1 - self.step.S
        if pos - discard + 1 > room:
            discard = pos + 1 - room
        discard = max(discard, 1)
        kept = ids[:keep] + ids[keep + discard:]
        self.step.reset()
        self.shifts += 1
        self._feed(kept, 0)
        return kept

    def tokens(self):
        """Yields each generated token id with its text piece (maybe "")."""
        text = _Text(self.tokenizer, self.vocab)
        ids = list(self.ids)
        logits = self._feed(ids, 0)
        end_ids = ()
        if self.tokenizer is not None:
            end_ids = {i for i in (self.tokenizer.eos_id,
                                   self.tokenizer.eot_id) if i >= 0}
        self.stopped_at = "max_tokens"
        for produced in range(1, self.max_tokens + 1):
            token = self.sampler.sample(logits, self.sample_v)
            if token in end_ids:
                self.stopped_at = ("eos" if token == self.tokenizer.eos_id
                                   else "eot")
                break
            yield token, text.push(token)
            if produced == self.max_tokens:
                break
            if not self._fits(len(ids), 1):
                if not self.context_shift:
                    self.stopped_at = "context"
                    warnings.warn(
                        f"the context is full ({self.ctx} tokens, ctx_size); "
                        "generation stopped there, as context_shift=False "
                        "asks", stacklevel=3)
                    break
                ids = self._shift(ids)
            logits = self.step.run([token], len(ids))
            ids.append(token)
        rest = text.flush()
        if rest:
            yield None, rest

    def pieces(self):
        """Yields the generated text in pieces, as it comes, up to (not
        including) the first stop string."""
        text, emitted = "", 0
        longest = max((len(s) for s in self.stop), default=0)
        for _, piece in self.tokens():
            if not piece:
                continue
            start = max(0, len(text) - longest + 1)
            text += piece
            found = [i for i in (text.find(s, start) for s in self.stop)
                     if i >= 0]
            if found:
                end = min(found)
                if end > emitted:
                    yield text[emitted:end]
                self.stopped_at = "stop"
                return
            # Hold back what may be the start of a stop string.
            hold = 0
            for s in self.stop:
                for k in range(min(len(s) - 1, len(text)), hold, -1):
                    if text.endswith(s[:k]):
                        hold = k
                        break
            if len(text) - hold > emitted:
                yield text[emitted:len(text) - hold]
                emitted = len(text) - hold
        if len(text) > emitted:
            yield text[emitted:]
