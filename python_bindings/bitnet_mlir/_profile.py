"""Profiler and KernelStats: per-kernel times from libbitnet_rt."""

from dataclasses import dataclass

from . import _native


@dataclass(frozen=True)
class KernelStats:
    """Totals for one kernel over the runs a Profiler saw."""

    name: str
    calls: int
    total_ns: int
    min_ns: int
    max_ns: int
    bytes: int   # bytes the kernel reported moving, summed over calls
    flops: int   # arithmetic operations, summed over calls

    @property
    def total_time(self):
        """Seconds inside the kernel, over all calls."""
        return self.total_ns * 1e-9

    @property
    def mean_ns(self):
        return self.total_ns / self.calls if self.calls else 0.0

    @property
    def mean_time(self):
        """Seconds per call."""
        return self.mean_ns * 1e-9

    @property
    def gbps(self):
        """Bytes moved per second, in GB/s (10^9 bytes)."""
        return self.bytes / self.total_ns if self.total_ns else 0.0

    @property
    def gflops(self):
        return self.flops / self.total_ns if self.total_ns else 0.0


class Profiler:
    """Collects per-kernel statistics and a Chrome trace of the runs of one
    or more models while it is active:

        with bitnet_mlir.Profiler(model) as prof:
            model.run(x)
        for k in prof.kernels:
            print(k.name, k.calls, k.mean_time, k.gbps)
        prof.write_trace("trace.json")     # opens in Perfetto

    max_events bounds the trace (0 means 1,000,000); statistics go on being
    gathered past it. A model reports to one active Profiler at a time.
    """

    def __init__(self, *models, max_events=0):
        self._collector = _native.Collector(max_events)
        self._models = list(models)
        self._active = False

    def start(self):
        """Starts reporting the models' runs here (also `with Profiler(...)`)."""
        if self._active:
            return self
        attached = []
        try:
            for model in self._models:
                model._attach(self)
                attached.append(model)
        except BaseException:
            for model in attached:
                model._detach(self)
            raise
        self._active = True
        return self

    def stop(self):
        """Stops reporting; the results stay readable."""
        for model in self._models:
            model._detach(self)
        self._active = False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def active(self):
        return self._active

    @property
    def kernels(self):
        """KernelStats per kernel name, in order of first appearance."""
        return [KernelStats(*k) for k in self._collector.kernels()]

    def kernel(self, name):
        """The KernelStats of kernel `name` (KeyError if it never ran)."""
        for k in self.kernels:
            if k.name == name:
                return k
        raise KeyError(name)

    @property
    def runs(self):
        """Number of runs seen."""
        return self._collector.runs()[0]

    @property
    def total_ns(self):
        """Time of those runs, in nanoseconds."""
        return self._collector.runs()[1]

    @property
    def total_time(self):
        """Time of those runs, in seconds."""
        return self.total_ns * 1e-9

    def table(self):
        """The runtime's per-kernel table (calls, total ms, mean us, share of
        the run time, GB/s, GFLOP/s), slowest kernel first."""
        return self._collector.table()

    def write_trace(self, path):
        """Writes the events as Chrome trace JSON (Perfetto,
        chrome://tracing)."""
        import os
        self._collector.write_trace(os.fsdecode(os.fspath(path)))

    def reset(self):
        """Forgets everything collected so far."""
        self._collector.reset()

    def __repr__(self):
        state = "active" if self._active else "stopped"
        return (f"<bitnet_mlir.Profiler {state}: {self.runs} runs, "
                f"{len(self.kernels)} kernels>")
