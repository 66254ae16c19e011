"""What every lenet-fast command shares: the parser that reports argument errors in one line, the argument
types, the --threads option, and running a command so that a user's mistake ends it with one line
"lenet-fast: error: ..." on stderr and exit status 1 (2 for bad arguments), not a traceback.

lenet_fast.cli (the command line) and lenet_fast.bench (lenet-fast bench, also python -m lenet_fast.bench)
both build on this module, and neither imports the other at import time: cli imports bench only when the
bench command is given (Parser's deferred options), so that predict, train and evaluate never load the
benchmark, the peers or the reference.
"""
import argparse
import math
import os
import sys

import lenet_fast

PROG = "lenet-fast"
# What the library raises for a user's mistake: OSError (missing files and folders), ValueError (bad files and
# values), ImportError (Pillow absent), RuntimeError, FloatingPointError (training diverged).
USER_ERRORS = (OSError, ValueError, ImportError, RuntimeError, FloatingPointError)


class Parser(argparse.ArgumentParser):
    """Argument errors in one line, like every other error of the command. deferred, when given, is a
    function that adds the parser's arguments the first time the parser parses (or prints its help): a
    command whose options live in a module that only that command should import."""

    def __init__(self, *args, deferred=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._deferred = deferred

    def parse_known_args(self, args=None, namespace=None):
        if self._deferred is not None:
            add_arguments, self._deferred = self._deferred, None
            add_arguments(self)
        return super().parse_known_args(args, namespace)

    def error(self, message):
        self.exit(2, f"{PROG}: error: {message} (see {self.prog} --help)\n")


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def port(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number in 0..65535, got {text!r}")
    return value


def _float(text, accept, rule):
    """text as a float that accept(value) takes (NaN never does), else argparse's error: expected rule."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not accept(value):
        raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}")
    return value


def positive_float(text):
    return _float(text, lambda v: 0 < v < math.inf, "a positive number")


def probability(text):
    return _float(text, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def dropout_share(text):
    return _float(text, lambda v: 0 <= v < 1, "a number in [0, 1)")


def threads_option():
    """A parent parser holding --threads, which every command accepts before or after its name; SUPPRESS
    keeps a command's parser from resetting a value given before it."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--threads", type=positive_int, default=argparse.SUPPRESS, metavar="N",
                        help="threads the kernels use (default: OMP_NUM_THREADS, else every core)")
    return common


def execute(args):
    """Run the parsed command args.run(args) on --threads threads; returns the exit status: args.run's own
    (a command that reports some failures itself and goes on, such as predict with a bad file, returns 1),
    else 0."""
    try:
        if hasattr(args, "threads"):
            lenet_fast.set_num_threads(args.threads)
        status = args.run(args)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader stopped early (| head): not an error, and nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exit's flush cannot fail again
        return 1
    except USER_ERRORS as exc:
        print(f"{PROG}: error: {message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return status or 0


def message(exc):
    """exc's message on one line; OS errors as "file: reason" rather than "[Errno 2] ...: 'file'"."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())
