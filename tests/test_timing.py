"""The timing harness (lenet_fast.timing) that lenet-fast bench and benchmarks/ share: its statistics against
numpy's and the standard library's, its timers and interleaving on a fake clock (so that the assertions are
exact, not about the machine's speed), its thread limits and the machine description."""
import statistics
import sys

import numpy as np
import pytest

import lenet_fast
from lenet_fast import timing


class FakeTime:
    """A stand-in for the time module: a nanosecond clock that moves only when told to, and a sleep that
    records its argument."""

    def __init__(self, log=None):
        self.now, self.log = 0, log if log is not None else []

    def perf_counter_ns(self):
        return self.now

    def sleep(self, seconds):
        self.log.append(("sleep", seconds))

    def spend(self, ns):
        self.now += ns


@pytest.fixture
def clock(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(timing, "time", fake)
    return fake


@pytest.mark.parametrize("n", [1, 2, 3, 10, 101])
@pytest.mark.parametrize("q", [0, 10, 25, 50, 90, 99.5, 100])
def test_percentile_is_numpys(n, q):
    values = np.random.default_rng([n, int(q * 10)]).standard_normal(n).tolist()
    assert timing.percentile(values, q) == pytest.approx(np.percentile(values, q), rel=1e-12, abs=1e-15)


def test_percentile_interpolates_between_order_statistics():
    assert timing.percentile([40, 10, 30, 20], 50) == 25  # unsorted input; between 20 and 30
    assert timing.percentile([40, 10, 30, 20], 90) == pytest.approx(37)  # 30 + 0.7 * (40 - 30)
    assert timing.percentile([5], 90) == 5


@pytest.mark.parametrize("n", [1, 2, 7, 8])
def test_median_is_the_middle(n):
    values = np.random.default_rng(n).integers(0, 1000, n).tolist()
    assert timing.median(values) == statistics.median(values)


def test_percentile_refuses_nonsense():
    with pytest.raises(ValueError, match="no values"):
        timing.percentile([], 50)
    for q in (-1, 100.1):
        with pytest.raises(ValueError, match="not in"):
            timing.percentile([1, 2], q)


def test_elapsed_times_one_call(clock):
    calls = []
    assert timing.elapsed(lambda: (calls.append(1), clock.spend(2500))) == 2.5e-6
    assert calls == [1]


def test_per_call_fills_min_time_after_untimed_warmup(clock):
    calls = []

    def fn():
        calls.append(clock.now)
        clock.spend(1000)
    # the warm-up's 3 calls are not timed; then 10,000 ns of 1,000 ns calls: 10 of them
    assert timing.per_call(fn, min_time=1e-5, warmup=3) == pytest.approx(1e-6)
    assert len(calls) == 13


def test_per_call_is_the_mean_over_at_least_min_calls(clock):
    costs = iter([1000, 3000] * 10)
    count = []

    def fn():
        count.append(1)
        clock.spend(next(costs))
    assert timing.per_call(fn, min_time=0, warmup=0, min_calls=4) == pytest.approx(2e-6)
    assert len(count) == 4


def test_interleaved_takes_turns_within_every_repeat(clock):
    """Seeded figures handed out in call order: each name gets every third one, in turn, after a pause."""
    figures = iter(np.random.default_rng(0).standard_normal(12).tolist())
    drawn = []

    def measure(name):
        def run():
            value = next(figures)
            clock.log.append(name)
            drawn.append(value)
            return value
        return run
    results = timing.interleaved({name: measure(name) for name in "abc"}, repeats=4, pause=0.02)
    assert clock.log == [("sleep", 0.02), "a", ("sleep", 0.02), "b", ("sleep", 0.02), "c"] * 4
    assert results == {"a": drawn[0::3], "b": drawn[1::3], "c": drawn[2::3]}


def test_interleaved_without_pause_does_not_sleep(clock):
    results = timing.interleaved({1: lambda: 1.0, 2: lambda: 2.0}, repeats=2)
    assert results == {1: [1.0, 1.0], 2: [2.0, 2.0]} and clock.log == []


@pytest.mark.skipif(not lenet_fast.build_info()["openmp"], reason="built without OpenMP: always one thread")
def test_kernel_threads_restores_the_count_even_after_an_error():
    before = lenet_fast.get_num_threads()
    other = 1 if before != 1 else 2
    with pytest.raises(RuntimeError):
        with timing.kernel_threads(other) as threads:
            assert threads == other and lenet_fast.get_num_threads() == other
            raise RuntimeError
    assert lenet_fast.get_num_threads() == before


def test_blas_threads_limits_numpys_blas():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with timing.blas_threads(1) as limited:
        assert limited
        blas = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        assert blas and all(i["num_threads"] == 1 for i in blas)


def test_blas_threads_without_threadpoolctl_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import threadpoolctl raises ImportError
    with timing.blas_threads(1) as limited:
        assert limited is False
    assert timing.blas_info().startswith("unknown (threadpoolctl not installed")


def test_machine_describes_the_build_and_named_modules(monkeypatch):
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "1048576")
    m = timing.machine(["pytest"])
    info = lenet_fast.build_info()
    assert m["isa"] == info["isa"] and m["openmp"] == info["openmp"]
    assert m["versions"] == {"python": m["versions"]["python"], "numpy": np.__version__,
                             "lenet_fast": lenet_fast.__version__, "pytest": pytest.__version__}
    assert m["blas_environment"]["OPENBLAS_L2_SIZE"] == "1048576"
    assert 1 <= m["usable_cores"] <= m["cores"] and m["cpu"]
    assert timing.build_line() == (f"lenet_fast {info['version']}, ISA path {info['isa']}, "
                                   f"OpenMP {'on' if info['openmp'] else 'off'}")


def test_load_average_is_a_number_or_unknown():
    load = timing.load_average()
    assert load is None or load >= 0


def test_a_record_names_its_command_machine_and_settings(tmp_path):
    path = tmp_path / "record.md"
    timing.write_record(path, "A title", "benchmarks/x.py", ["--data", "D"], "2 threads.", ["| a |", "| 1 |"])
    lines = path.read_text().splitlines()
    assert lines[0] == "# A title" and lines[2] == "Command: `python benchmarks/x.py --data D`"
    assert lines[3].startswith("Date: ") and timing.build_line() in lines[3] and lines[3].endswith("2 threads.")
    assert lines[5:7] == ["| a |", "| 1 |"]
