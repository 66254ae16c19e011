"""Build of lenet_fast: the C kernels (csrc/) and the Cython layer (lenet_fast/_core.pyx).

- OpenMP: probed at build time (can the compiler compile and link an OpenMP program?), as scikit-learn
  does; used when it works unless LENET_FAST_NO_OPENMP=1. Without it the engine is single-threaded and
  otherwise the same.
- Instruction sets: the kernel files are compiled once per path (x86-64 baseline, AVX2+FMA, AVX-512) and
  csrc/dispatch.c picks one at run time, so one wheel runs on any x86-64. LENET_FAST_NATIVE=1 adds
  -march=native everywhere, for a local build only.
- Sanitizers: LENET_FAST_SANITIZE=address,undefined (any list -fsanitize takes) builds every file with
  them, -fno-omit-frame-pointer and -fno-sanitize-recover (the first finding aborts), for checking only;
  CONTRIBUTING.md#sanitizers says how to run the tests under it.
- Debug info: an installed build or a wheel links with --strip-debug (most of the extension's size is debug
  info; the symbol table stays, so profilers and valgrind still name functions); an editable (development)
  build and a sanitizer build keep it, for debuggers and sanitizer reports.
- Progress: each stage prints one line, which pip shows with `pip install -v`.
- Sources: every csrc/*.c is a kernel file, compiled once per path, except the few in SHARED, compiled once
  into the extension; the headers are every csrc/*.h.
"""
import concurrent.futures
import glob
import os
import platform
import shutil
import tempfile
import textwrap

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# The C files that hold no network kernels (the run-time dispatcher, the per-thread workspaces, the trainer's
# state) or only scalar code (the picture steps, which take a small part of reading a photo): built once, for
# the baseline, not once per instruction-set path.
SHARED = ["dispatch.c", "workspace.c", "trainer_state.c", "morphology.c", "components.c", "ink.c", "read_digit.c"]
SOURCES = sorted(glob.glob(os.path.join("csrc", "*.c")))
KERNELS = [f for f in SOURCES if os.path.basename(f) not in SHARED]
HEADERS = sorted(glob.glob(os.path.join("csrc", "*.h")))
# -fno-math-errno: no caller reads errno, and it lets sqrtf vectorize.
CFLAGS = ["-std=gnu11", "-O3", "-fno-math-errno", "-fno-semantic-interposition", "-Wall", "-Wno-unknown-pragmas", "-Wno-psabi"]
X86 = platform.machine().lower() in ("x86_64", "amd64")
# path name -> extra compiler flags; the baseline is the compiler's default target.
ISA_PATHS = {"baseline": []}
if X86:
    ISA_PATHS["avx2"] = ["-mavx2", "-mfma"]
    ISA_PATHS["avx512"] = ["-mavx512f", "-mavx2", "-mfma"]


def flag(name):
    return os.environ.get(name, "") not in ("", "0")


def sanitize_flags():
    """-fsanitize flags from LENET_FAST_SANITIZE, or [] when it is unset."""
    if not flag("LENET_FAST_SANITIZE"):
        return []
    names = os.environ["LENET_FAST_SANITIZE"].strip()
    return [f"-fsanitize={names}", f"-fno-sanitize-recover={names}", "-fno-omit-frame-pointer", "-g"]


NO_COMPILER = """\
lenet_fast: building from source needs a working C compiler (gcc or clang; the CC environment variable
names another), and none works here ({reason}).
Either install one (Debian/Ubuntu: apt-get install gcc python3-dev; Fedora/RHEL: dnf install gcc
python3-devel; Alpine: apk add build-base), or install a prebuilt wheel, which needs no compiler:
pip install --only-binary lenet_fast lenet_fast"""


def check_compiler(compiler):
    """SystemExit with NO_COMPILER's message unless compiler compiles a trivial C file: a missing compiler
    is said once and plainly, not as a failure deep in the build."""
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("int lenet_fast_probe(void) { return 0; }\n")
        compiler.compile([src], output_dir=tmp)
    except Exception as exc:  # CompileError, or the compiler's program missing (an OSError)
        raise SystemExit(NO_COMPILER.format(reason=" ".join(str(exc).split()) or type(exc).__name__)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def openmp_flags(compiler):
    """The flags that compile and link an OpenMP program with this compiler, or [] if none do."""
    if flag("LENET_FAST_NO_OPENMP"):
        return []
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(textwrap.dedent("""\
                #include <omp.h>
                int main(void) {
                    int n = 0;
                    #pragma omp parallel reduction(+ : n)
                    n += 1;
                    return n == omp_get_max_threads() ? 0 : 1;
                }
            """))
        objects = compiler.compile([src], output_dir=tmp, extra_postargs=["-fopenmp"])
        compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=["-fopenmp"])
        return ["-fopenmp"]
    except Exception as exc:  # any compile or link failure means no OpenMP
        print(f"lenet_fast: building without OpenMP ({type(exc).__name__})")
        return []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class BuildExt(build_ext):
    def build_extensions(self):
        check_compiler(self.compiler)
        omp = openmp_flags(self.compiler)
        native = ["-march=native"] if flag("LENET_FAST_NATIVE") else []
        sanitize = sanitize_flags()
        # editable_mode: setuptools' editable install (pip install -e); inplace: build_ext --inplace
        development = getattr(self, "editable_mode", False) or self.inplace
        strip = [] if sanitize or development else ["-Wl,--strip-debug"]

        def compile_kernel(isa, kernel):
            return self.compiler.compile(
                [kernel],
                # one folder per flag set, so that objects built with other flags are never reused
                output_dir=os.path.join(self.build_temp, f"isa-{isa}{'-openmp' * bool(omp)}"
                                        f"{'-native' * bool(native)}{'-sanitize' * bool(sanitize)}"),
                macros=[("LF_ISA_SUFFIX", isa)],
                include_dirs=["csrc"],
                extra_postargs=CFLAGS + omp + ISA_PATHS[isa] + native + sanitize,
                depends=HEADERS,
            )

        for ext in self.extensions:
            # Every kernel file once per path, as many compilers at once as there are cores (the objects
            # keep their order).
            jobs = [(isa, kernel) for isa in ISA_PATHS for kernel in KERNELS]
            print(f"lenet_fast: compiling {len(KERNELS)} kernel files for {len(ISA_PATHS)} instruction-set paths "
                  f"({len(jobs)} objects, {os.cpu_count() or 1} at a time)", flush=True)
            with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
                ext.extra_objects = [o for objs in pool.map(lambda job: compile_kernel(*job), jobs) for o in objs]
            ext.define_macros += [("LF_HAVE_" + isa.upper(), "1") for isa in ISA_PATHS if isa != "baseline"]
            ext.extra_compile_args = CFLAGS + omp + native + sanitize
            ext.extra_link_args = omp + sanitize + strip
            ext.depends = HEADERS + KERNELS  # the objects above are linked in: relink when they change
        print(f"lenet_fast: OpenMP {'on' if omp else 'off'}; instruction-set paths {', '.join(ISA_PATHS)}"
              + (f"; sanitizers {' '.join(sanitize)}" if sanitize else "")
              + ("; debug info kept" if not strip else "; debug info stripped")
              + "; compiling and linking the extension", flush=True)
        super().build_extensions()


core = Extension(
    "lenet_fast._core",
    sources=["lenet_fast/_core.pyx"] + [os.path.join("csrc", f) for f in SHARED],
    include_dirs=["csrc", numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
)

setup(
    ext_modules=cythonize([core], compiler_directives={"language_level": 3}),
    cmdclass={"build_ext": BuildExt},
)
