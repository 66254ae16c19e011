"""The package's import graph is one-way (docs/architecture.md): no cycle among lenet_fast's modules, counting
the imports inside functions too; and the commands that use the network (predict, train, evaluate, the
samples) never load the benchmark, its peers or the NumPy reference, which only lenet-fast bench needs."""
import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lenet_fast
from lenet_fast.images import sample_paths

PACKAGE = Path(lenet_fast.__file__).parent

BENCH_ONLY = ("lenet_fast.bench", "lenet_fast.peers", "lenet_fast.reference")


def import_graph(folder, package):
    """{module: set of the package's modules it imports}, read with ast from every .py file in folder, at any
    depth of the code (function bodies included). `from . import x` counts as importing the module x when
    there is one, else the package; `import package` counts as importing the package's __init__."""
    modules = {f"{package}.{p.stem}" if p.stem != "__init__" else package: p for p in sorted(folder.glob("*.py"))}
    modules.update({f"{package}.{p.name.split('.')[0]}": None for p in folder.glob("*.pyx")})
    graph = {}
    for name, path in modules.items():
        graph[name] = set()
        if path is None:
            continue  # compiled (Cython): it imports numpy only, no module of the package
        is_package = path.stem == "__init__"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                    base = ".".join(parts + ([node.module] if node.module else []))
                else:
                    base = node.module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in targets:
                while target not in modules and "." in target:  # import package.module.attribute
                    target = target.rsplit(".", 1)[0]
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph):
    """A list of modules [a, b, ..., a] that import each other in a circle, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .a import f\n")
    (pkg / "a.py").write_text("from . import b\n\ndef f():\n    return b.g()\n")
    (pkg / "b.py").write_text("import os\n\ndef g():\n    from pkg.a import f  # a cycle only at call time\n")
    graph = import_graph(pkg, "pkg")
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert find_cycle(graph) in (["pkg.a", "pkg.b", "pkg.a"], ["pkg.b", "pkg.a", "pkg.b"])
    (pkg / "b.py").write_text("import pkg\n")  # b -> the package -> a -> b
    assert find_cycle(import_graph(pkg, "pkg")) == ["pkg", "pkg.a", "pkg.b", "pkg"]
    (pkg / "b.py").write_text("import os\n")
    assert find_cycle(import_graph(pkg, "pkg")) is None


def test_no_import_cycle_in_the_package():
    graph = import_graph(PACKAGE, "lenet_fast")
    assert {"lenet_fast", "lenet_fast.cli", "lenet_fast.bench", "lenet_fast._core"} <= set(graph)
    assert "lenet_fast.timing" in graph["lenet_fast.bench"]  # the graph holds the real edges
    assert find_cycle(graph) is None


def loaded_after(argv):
    """The BENCH_ONLY modules in sys.modules after `lenet-fast argv` ran in a fresh interpreter."""
    code = ("import json, sys\n"
            "from lenet_fast.__main__ import main\n"
            "try:\n"
            f"    main({argv!r})\n"
            "except SystemExit:\n"
            "    pass\n"
            f"print(json.dumps(sorted(m for m in {BENCH_ONLY!r} if m in sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("argv", [
    ["predict", str(sample_paths()[0])],
    ["predict", str(sample_paths()[0]), "--json", "--variant", "modern"],
    [],
    ["train", "--help"],
    ["evaluate", "--help"],
    ["--help"],
], ids=["predict", "predict-json", "samples", "train", "evaluate", "help"])
def test_commands_other_than_bench_do_not_load_the_benchmark(argv):
    assert loaded_after(argv) == []


def test_the_package_never_loads_onnx_unless_exporting():
    """onnx is the [onnx] extra: importing lenet_fast and using a model loads neither it nor onnxruntime (both
    installed or not); only the export imports onnx, inside export_onnx."""
    code = ("import sys, numpy as np, lenet_fast\n"
            "lenet_fast.pretrained('classic').predict(np.zeros((2, 28, 28), np.uint8))\n"
            "print(sorted(m for m in ('onnx', 'onnxruntime') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]"]


def test_the_bench_command_loads_it():
    """The check above can fail: bench's own help loads the benchmark module and its peers."""
    assert loaded_after(["bench", "--help"]) == sorted(BENCH_ONLY)


def test_child_interpreters_import_the_lenet_fast_the_tests_import():
    """conftest.py runs the tests outside the source tree: a `python -c` child (the working folder first on its
    sys.path) gets the package under test, not an unbuilt source folder that would shadow an installed one."""
    result = subprocess.run([sys.executable, "-c", "import lenet_fast; print(lenet_fast.__file__)"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == lenet_fast.__file__


@pytest.mark.skipif(os.environ.get("LENET_FAST_TEST_INSTALLED") != "1",
                    reason="LENET_FAST_TEST_INSTALLED=1 (set by .ci/run) says the tests run against an install")
def test_the_tests_run_against_the_installed_package(repo_root):
    """.ci/run tests the build README's first command installed (one build): the package under test is in
    site-packages, not the source tree."""
    package = Path(lenet_fast.__file__).resolve().parent
    assert package.parent.name == "site-packages", package
    assert package != repo_root / "lenet_fast", package


def test_an_unbuilt_source_tree_says_so_on_import(tmp_path):
    """Python run from a clone's root imports the clone's lenet_fast/, which shadows the installed package; when
    that folder has no compiled engine the ImportError says what happened and what to run (not Python's
    "partially initialized module ... circular import")."""
    unbuilt = tmp_path / "lenet_fast"
    shutil.copytree(PACKAGE, unbuilt, ignore=shutil.ignore_patterns("_core*.so", "_core*.pyd", "__pycache__"))
    # -S: no site-packages, so that an editable install's import hook cannot supply the missing module from
    # the tree it was built in (an installed package is shadowed all the same: the current folder comes first)
    result = subprocess.run([sys.executable, "-S", "-c", "import lenet_fast"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: lenet_fast's compiled engine (_core) is not built in"), result.stderr
    assert str(unbuilt) in last and "pip install -e ." in last and "another folder" in last
    assert "circular" not in result.stderr
