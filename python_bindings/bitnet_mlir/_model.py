"""bitnet_mlir.load() and Model: compiled models over libbitnet_rt."""

import numbers
import os
from dataclasses import dataclass

import numpy as np

from . import _native
from ._generate import Generation
from ._profile import Profiler


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model."""

    name: str
    dtype: np.dtype   # bf16 tensors are exchanged as their uint16 bit patterns
    shape: tuple
    dtype_name: str   # the runtime's name: "f32", "bf16", "i8", ...
    nbytes: int
    state: bool = False  # an input the run updates in place (a KV cache)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def __str__(self):
        return f"{self.name}: {self.dtype} {self.shape}"


@dataclass(frozen=True)
class PoolStats:
    """Counters of a model's memory pool (workspace and output arrays).
    Byte figures count block capacities."""

    bytes_reserved: int         # held by the pool: in use plus cached
    peak_bytes_reserved: int
    bytes_in_use: int           # handed out and not returned yet
    peak_bytes_in_use: int
    allocations: int            # requests served in total
    allocations_from_pool: int  # ... by reusing a cached block
    allocations_fresh: int      # ... by asking the system
    deallocations: int


def _spec(name, dtype, dtype_name, shape, nbytes, state=False):
    return TensorSpec(name=name, dtype=dtype, shape=tuple(shape),
                      dtype_name=dtype_name, nbytes=nbytes, state=state)


_MISSING = object()


def _plural(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class Model:
    """A compiled model loaded by libbitnet_rt. Create it with load()."""

    def __init__(self, native):
        self._native = native
        self.inputs = tuple(_spec(*spec) for spec in native.inputs())
        self.outputs = tuple(_spec(*spec) for spec in native.outputs())
        self._input_index = {spec.name: i for i, spec in enumerate(self.inputs)}
        self._profiler = None
        #: The Profiler of the last run(..., profile=True).
        self.last_profile = None

    # -- description -------------------------------------------------------

    @property
    def name(self):
        """Name of the entry function the model was compiled from."""
        return self._native.name

    @property
    def path(self):
        return self._native.path

    @property
    def entry(self):
        """The entry this model was loaded as (load(..., entry=)), or None
        for the file's main entry."""
        return self._native.entry or None

    @property
    def entries(self):
        """The other entries of the model's file (e.g. ["prefill"] for
        `bitnet-compile --prefill-tokens`): steps of other shapes over the
        same weights, loaded with load(path, entry=NAME)."""
        return list(self._native.entries)

    @property
    def metadata(self):
        """Metadata of the source model (e.g. "bitnet.vocab"), a dict of str."""
        return dict(self._native.metadata)

    @property
    def producer(self):
        return self._native.producer

    @property
    def target(self):
        """Target triple and CPU the code was compiled for."""
        return self._native.target

    @property
    def threads(self):
        """Threads the kernels' parallel loops use (the caller included)."""
        return self._native.threads

    @property
    def workspace_bytes(self):
        """Scratch memory one run uses, taken from the pool once."""
        return self._native.workspace_bytes

    @property
    def closed(self):
        return self._native.closed

    def _what(self):
        return f"model {self.name!r}"

    def _signature(self):
        return ", ".join(str(spec) for spec in self.inputs) or "no inputs"

    def __repr__(self):
        state = ", closed" if self.closed else ""
        return (f"<bitnet_mlir.Model {self.name!r} from {self.path!r}: "
                f"inputs ({self._signature()}), outputs "
                f"({', '.join(str(s) for s in self.outputs)}), "
                f"{self.threads} threads{state}>")

    # -- running ------------------------------------------------------------

    def run(self, *args, out=None, profile=False, **named):
        """Runs the model once.

        Inputs are numpy arrays, positional in the model's input order and/or
        by name (model.run(x) or model.run(x=x)); a 0-d input also takes a
        numpy scalar of its dtype. Each must have exactly the input's dtype
        (no conversion is made: a wrong dtype is a TypeError) and shape (a
        ValueError). C-contiguous, aligned arrays are used in place; others
        (slices, transposes) are copied into a contiguous array first.

        out: preallocated outputs, written in place and returned: an array
        (models with one output) or a sequence with one array or None per
        output. They must be C-contiguous, writable and match dtype and shape
        exactly; they are never copied.

        profile: record per-kernel times of this run into `last_profile` (a
        Profiler).

        Returns the output array, or a tuple of them for several outputs.
        The GIL is released during the run. Inputs named "out" or "profile"
        must be given positionally.
        """
        if profile:
            if self._profiler is not None:
                raise ValueError(
                    f"{self._what()} already reports to an active Profiler; "
                    "run without profile=True and read that Profiler")
            profiler = Profiler(self)
            with profiler:
                result = self._run(args, named, out)
            self.last_profile = profiler
            return result
        return self._run(args, named, out)

    __call__ = run

    def _bind_inputs(self, args, named):
        n = len(self.inputs)
        if len(args) > n:
            raise TypeError(
                f"{self._what()} takes {_plural(n, 'input')} "
                f"({self._signature()}), got {len(args)} positional")
        bound = list(args) + [_MISSING] * (n - len(args))
        for name, value in named.items():
            index = self._input_index.get(name)
            if index is None:
                names = ", ".join(repr(s.name) for s in self.inputs) or "none"
                raise TypeError(f"{self._what()} has no input named {name!r} "
                                f"(its inputs: {names})")
            if bound[index] is not _MISSING:
                raise TypeError(f"{self._what()} got two values for input {name!r}")
            bound[index] = value
        missing = [spec for spec, v in zip(self.inputs, bound) if v is _MISSING]
        if missing:
            raise TypeError(
                f"{self._what()} is missing {_plural(len(missing), 'input')}: "
                f"{', '.join(str(s) for s in missing)} (it takes "
                f"{self._signature()})")
        return [self._check_input(spec, value)
                for spec, value in zip(self.inputs, bound)]

    def _check_input(self, spec, value):
        if isinstance(value, np.generic):
            value = np.asarray(value)  # keeps the scalar's dtype
        if not isinstance(value, np.ndarray):
            raise TypeError(
                f"input {spec.name!r} of {self._what()} must be a numpy.ndarray "
                f"of dtype {spec.dtype} and shape {spec.shape}, got "
                f"{type(value).__name__}")
        if value.dtype != spec.dtype:
            raise TypeError(
                f"input {spec.name!r} of {self._what()} must have dtype "
                f"{spec.dtype}, got {value.dtype} (no implicit conversion; "
                f"convert with .astype(numpy.{spec.dtype}))")
        if value.shape != spec.shape:
            raise ValueError(
                f"input {spec.name!r} of {self._what()} must have shape "
                f"{spec.shape}, got {value.shape}")
        if not (value.flags.c_contiguous and value.flags.aligned):
            if spec.state:
                raise ValueError(
                    f"state input {spec.name!r} of {self._what()} is updated "
                    f"in place, so it must be a C-contiguous, aligned array "
                    f"(a copy would lose the update)")
            # A strided or unaligned view: copied once, dtype unchanged.
            value = np.array(value, order="C", copy=True)
        if spec.state and not value.flags.writeable:
            raise ValueError(
                f"state input {spec.name!r} of {self._what()} is updated in "
                f"place and must be writeable")
        return value

    def _bind_outputs(self, out):
        m = len(self.outputs)
        if out is None:
            return [None] * m
        if isinstance(out, np.ndarray):
            if m != 1:
                raise TypeError(
                    f"out= for {self._what()} must be a sequence of "
                    f"{m} arrays (or None), one per output "
                    f"({', '.join(str(s) for s in self.outputs)})")
            return [out]
        if isinstance(out, (str, bytes)) or not hasattr(out, "__len__"):
            raise TypeError(f"out= must be a numpy.ndarray or a sequence of them, "
                            f"got {type(out).__name__}")
        out = list(out)
        if len(out) != m:
            raise ValueError(f"out= for {self._what()} must hold "
                             f"{_plural(m, 'array')}, one per output "
                             f"({', '.join(str(s) for s in self.outputs)}), "
                             f"got {len(out)}")
        return out

    def _check_output(self, spec, value):
        what = f"output {spec.name!r} of {self._what()}"
        if not isinstance(value, np.ndarray):
            raise TypeError(f"out= for {what} must be a numpy.ndarray of dtype "
                            f"{spec.dtype} and shape {spec.shape}, got "
                            f"{type(value).__name__}")
        if value.dtype != spec.dtype:
            raise TypeError(f"out= for {what} must have dtype {spec.dtype}, "
                            f"got {value.dtype}")
        if value.shape != spec.shape:
            raise ValueError(f"out= for {what} must have shape {spec.shape}, "
                             f"got {value.shape}")
        if not (value.flags.c_contiguous and value.flags.aligned):
            raise ValueError(f"out= for {what} must be C-contiguous and aligned "
                             "(outputs are written in place, never copied)")
        if not value.flags.writeable:
            raise ValueError(f"out= for {what} is read-only")
        return value

    def _run(self, args, named, out):
        inputs = self._bind_inputs(args, named)
        outputs = self._bind_outputs(out)
        for i, (spec, value) in enumerate(zip(self.outputs, outputs)):
            if value is None:
                outputs[i] = self._native.allocate_output(i)
            else:
                outputs[i] = self._check_output(spec, value)
                others = inputs + outputs[:i]
                for other in others:
                    if other is not None and np.may_share_memory(value, other):
                        raise ValueError(
                            f"out= for output {spec.name!r} of {self._what()} "
                            "overlaps another input or output")
        self._native.run(inputs, outputs)
        if len(outputs) == 1:
            return outputs[0]
        return tuple(outputs)

    # -- text generation ----------------------------------------------------

    def generate(self, prompt, max_tokens=128, temperature=0.8, top_k=40,
                 top_p=0.95, seed=None, stop=None, stream=False,
                 ctx_size=None, context_shift=True):
        """Generates text after `prompt` with a decoder step compiled by
        bitnet-compile (inputs tokens [S] int32, position int32 and KV
        caches; output logits [S, V]; see models/README.md), as the
        bitnet-generate tool does.

        prompt: a str, encoded with the model's tokenizer (metadata entry
        bitnet.tokenizer; BOS first when it asks for one) or its character
        vocabulary (bitnet.vocab); or a sequence of token ids.

        max_tokens: most tokens to generate; generation also ends at the
        tokenizer's end-of-sequence or end-of-turn token.

        temperature, top_k, top_p, seed: the runtime's sampler (temperature
        0 is greedy; top_k 0 and top_p 1 keep every token); seed None draws
        one. The same values give the same tokens as bitnet-generate with
        --seed.

        stop: a str or a list of them: generation ends at the first one in
        the generated text, which is returned up to it (without it).

        stream: False returns the generated text (without the prompt); True
        returns an iterator over pieces of it, each yielded as soon as it is
        generated (text that may be the start of a stop string is held back
        until it is not).

        ctx_size: tokens the context holds, prompt and generated text
        (default and most: the model's KV cache). When a generated token
        does not fit, the context shifts as bitnet-generate's does: the BOS
        token stays, the oldest half of the other tokens is dropped, and the
        rest runs again from an empty KV cache; with context_shift=False
        generation stops there with a warning. A prompt longer than the
        context is a ValueError.

        Each call starts from empty KV caches. Bad arguments raise TypeError
        or ValueError when generate() is called, also with stream=True.
        """
        generation = Generation(self, prompt, max_tokens, temperature, top_k,
                                top_p, seed, stop, ctx_size, context_shift)
        if stream:
            return generation.pieces()
        return "".join(generation.pieces())

    # -- profiling ----------------------------------------------------------

    def _attach(self, profiler):
        if self._profiler is profiler:
            return
        if self._profiler is not None:
            raise ValueError(f"{self._what()} already reports to another "
                             "active Profiler")
        self._native.set_profiler(profiler._collector)
        self._profiler = profiler

    def _detach(self, profiler):
        if self._profiler is not profiler:
            return
        self._profiler = None
        if not self.closed:
            self._native.set_profiler(None)

    # -- memory -------------------------------------------------------------

    def pool_stats(self):
        """Counters of the model's memory pool (PoolStats). The workspace and
        the output arrays run() allocates come from it; an output array's
        memory goes back to the pool when the array is collected, so a run
        loop reaches a state with no fresh allocation."""
        return PoolStats(**self._native.pool_stats())

    def reset_pool_peaks(self):
        """Sets the pool's peaks back to the current values."""
        self._native.reset_pool_peaks()

    def trim_pool(self):
        """Returns the pool's cached (unused) blocks to the system."""
        self._native.trim_pool()

    def verify(self):
        """Checks the model file against the checksum bitnet-compile
        recorded in it. Raises bitnet_mlir.RuntimeError: INVALID_MODEL when
        the file is damaged, UNAVAILABLE when it carries no checksum,
        FAILED_PRECONDITION when the file was replaced since it was loaded.
        Reads the whole file; catches damage, not malice."""
        self._native.verify()

    def use_huge_pages(self):
        """Moves the model's weights (its read-only data) onto transparent
        huge pages: a private copy at the same addresses, which decoding
        streams faster; the weights are then no longer shared with other
        processes. Call it before running, with no other thread using the
        model (or other entries of its file). Returns the bytes moved (0
        when they were moved before). Raises bitnet_mlir.RuntimeError
        UNAVAILABLE where the system has no transparent huge pages (the
        model is unchanged)."""
        return self._native.use_huge_pages()

    def mapping(self):
        """Bytes of the model's shared object mapped in this process:
        {'read_only_bytes', 'huge_page_bytes', 'code_bytes',
        'writable_bytes'}; huge_page_bytes is the part of the read-only data
        the kernel maps in 2 MiB pages (the file's cached 2 MiB folios, or
        the copy use_huge_pages() made)."""
        return self._native.mapping()

    # -- lifetime -----------------------------------------------------------

    def close(self):
        """Frees the context and unloads the model (when no array still uses
        its pool). Further runs raise ValueError."""
        if self._profiler is not None:
            self._profiler = None
        self._native.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def load(path, threads=None, entry=None):
    """Loads a model compiled with emit="so" (or by bitnet-compile).

    entry: one of the file's other entries (Model.entries) instead of its
    main one; it shares the file's weights, and its state inputs (KV
    caches) have the main entry's names and shapes, so the same arrays can
    be given to both.

    threads: threads for the kernels' parallel loops, the calling thread
    included (>= 1); None means one per online core, 1 runs everything on
    the calling thread.

    Raises bitnet_mlir.RuntimeError with the runtime's message (code_name
    'NOT_FOUND', 'INVALID_MODEL', 'INCOMPATIBLE', ...) when the file cannot be
    loaded.
    """
    try:
        path = os.fsdecode(os.fspath(path))
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike, got "
                        f"{type(path).__name__}") from None
    if threads is None:
        threads = _native.default_num_threads()
    elif isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
        raise TypeError(f"threads must be an int >= 1 or None, got "
                        f"{type(threads).__name__}")
    elif threads < 1:
        raise ValueError(f"threads must be >= 1 (or None for one per core), "
                         f"got {threads}")
    if entry is not None and not isinstance(entry, str):
        raise TypeError(f"entry must be a str or None, got "
                        f"{type(entry).__name__}")
    return Model(_native.Model(path, int(threads), entry or ""))
