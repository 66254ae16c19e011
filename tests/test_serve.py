"""lenet_fast/serve.py: the HTTP API through Starlette's test client (every route, every refusal, the limits,
fuzzed bodies), and lenet-fast serve as a process (SIGTERM, the missing extra). The page in a browser:
test_page.py."""
import base64
import io
import json
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib

import numpy as np
import pytest

import lenet_fast
from lenet_fast import cli, handwriting, maps, serve
from lenet_fast.images import sample_paths

pytest.importorskip("starlette", reason="the service's tests need Starlette (pip install \"lenet_fast[serve]\")")
pytest.importorskip("httpx", reason="Starlette's test client needs httpx")
pytest.importorskip("PIL", reason="the service reads images with Pillow")
from PIL import Image  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

MAX_BODY = 200_000
MAX_BATCH = 64


@pytest.fixture(scope="module")
def model():
    return lenet_fast.pretrained("classic")


@pytest.fixture(scope="module")
def client(model):
    # raise_server_exceptions (the default): an unhandled exception, which would be a 5xx, fails the test
    app = serve.create_app(model, max_body=MAX_BODY, max_pixels=4_000_000, max_batch=MAX_BATCH,
                           description="pretrained classic")
    with TestClient(app) as c:
        yield c


def png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def png_header(width, height):
    """A PNG file of a few dozen bytes whose header claims width x height 8-bit gray pixels."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def refused(response, status, words):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert isinstance(error, str) and words.lower() in error.lower(), error
    return error


def test_healthz_and_version(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    version = client.get("/version").json()
    assert version["version"] == lenet_fast.__version__
    assert version["model"] == {"variant": "classic", "description": "pretrained classic"}
    build = lenet_fast.build_info()
    assert version["build"].pop("num_threads") >= 1  # the event loop thread's: OpenMP's setting is per thread
    assert version["build"] == {k: v for k, v in build.items() if k != "num_threads"}


def test_the_page_has_its_elements_and_no_outside_resources(client):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    for element in ('<canvas id="pad"', 'id="digit"', '<button id="clear"', "pointermove", "/predict?maps=1"):
        assert element in page
    assert "http://" not in page and "https://" not in page and "src=" not in page


@pytest.mark.parametrize("how", ["raw", "file", "image", "octet-stream"])
def test_the_sample_digits_read_right_as_image_files(client, how):
    read = []
    for path in sample_paths():
        data = path.read_bytes()
        if how == "raw":
            response = client.post("/predict", content=data, headers={"content-type": "image/png"})
        elif how == "octet-stream":
            response = client.post("/predict", content=data, headers={"content-type": "application/octet-stream"})
        else:
            response = client.post("/predict", files={how: (path.name, data, "image/png")})
        assert response.status_code == 200, response.text
        result = response.json()
        assert set(result) == {"digit", "confidence", "probabilities"}
        assert len(result["probabilities"]) == 10 and abs(sum(result["probabilities"]) - 1) < 1e-4
        assert result["confidence"] == max(result["probabilities"])
        read.append(result["digit"])
    assert read == list(range(10))


def test_the_sample_digits_read_right_as_json_and_match_predict_proba(client, model):
    digits = np.stack([lenet_fast.read_digit(p) for p in sample_paths()])
    for d, digit in enumerate(digits):
        result = client.post("/predict", json=digit.tolist()).json()
        assert result["digit"] == d
        np.testing.assert_allclose(result["probabilities"], model.predict_proba(digit)[0], atol=1e-6)


def test_a_batch_equals_predict_proba_on_the_same_arrays(client, model):
    rng = np.random.default_rng(19)
    digits = np.stack([lenet_fast.read_digit(p) for p in sample_paths()])
    batch = np.concatenate([digits, rng.integers(0, 256, (MAX_BATCH - 10, 28, 28), dtype=np.uint8)])
    results = client.post("/predict", json=batch.tolist()).json()
    assert len(results) == MAX_BATCH
    probs = np.array([r["probabilities"] for r in results])
    np.testing.assert_allclose(probs, model.predict_proba(batch), atol=1e-6)
    assert [r["digit"] for r in results] == model.predict(batch).tolist()
    assert [r["digit"] for r in results[:10]] == list(range(10))
    floats = (digits / 255).round(4)  # floats in [0, 1], as predict takes them
    results = client.post("/predict", json=floats.tolist()).json()
    np.testing.assert_allclose([r["probabilities"] for r in results], model.predict_proba(floats), atol=1e-6)


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def test_npy_arrays_are_predicted_as_json_pixels_are(client, model):
    rng = np.random.default_rng(5)
    batch = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    batch[:10] = [lenet_fast.read_digit(p) for p in sample_paths()]
    for array in (batch, np.asfortranarray(batch / np.float32(255)), batch[3].astype(">i4")):
        response = client.post("/predict", content=npy(array), headers={"content-type": "application/x-npy"})
        assert response.status_code == 200, response.text
        result = response.json()
        expected = model.predict_proba(array)
        if array.ndim == 2:
            assert result["digit"] == 3
            result = [result]
        np.testing.assert_allclose([r["probabilities"] for r in result], expected, atol=1e-6)
    assert [r["digit"] for r in client.post("/predict", content=npy(batch[:10]),
                                            headers={"content-type": "application/x-npy"}).json()] == list(range(10))


def npy_header(shape):
    """A .npy header claiming shape of uint8, without the data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return buffer.getvalue()


@pytest.mark.parametrize("body, status, words", [
    (b"\x93NUMPY", 400, "not a .npy"),
    (b"PK\x03\x04 a zip", 400, "not a .npy"),
    (npy(np.zeros((2, 28, 28), np.uint8))[:-1], 400, "bytes, not the 1,568"),
    (npy(np.zeros((2, 28, 28), np.uint8)) + b"\0", 400, "bytes, not the 1,568"),
    (npy(np.array([None] * 784, dtype=object).reshape(28, 28)), 400, "dtype object"),
    (npy(np.zeros((28, 28), bool)), 400, "dtype bool"),
    (npy(np.zeros((28, 28), np.complex64)), 400, "dtype complex64"),
    (npy(np.zeros((3, 28), np.uint8)), 400, "shape [3, 28]"),
    (npy(np.zeros((0, 28, 28), np.uint8)), 400, "empty"),
    (npy(np.full((28, 28), np.nan, np.float32)), 400, "nan"),
    (npy(np.zeros((28, 28), np.uint8)).replace(b"(28, 28)", b"(100000"), 400, "not a .npy"),
    (npy_header((10 ** 13, 28, 28)) + b"\0" * 64, 413, "10,000,000,000,000 images"),
    (npy_header((-1, 28, 28)) + b"\0" * 64, 400, "empty"),
])
def test_bad_npy_bodies_are_refused(client, body, status, words):
    refused(client.post("/predict", content=body, headers={"content-type": "application/x-npy"}), status, words)


def test_a_list_of_one_is_a_list(client):
    digit = lenet_fast.read_digit(sample_paths()[3])
    results = client.post("/predict", json=[digit.tolist()]).json()
    assert isinstance(results, list) and len(results) == 1 and results[0]["digit"] == 3


def test_reject_refuses_as_predict_does(client, model):
    noise = np.random.default_rng(3).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    expected = model.predict(noise, reject=0.9)
    assert (expected == -1).any()  # the check below can fail
    results = client.post("/predict?reject=0.9", json=noise.tolist()).json()
    assert [r["digit"] for r in results] == expected.tolist()
    assert all(r["confidence"] > 0 for r in results)
    seven = sample_paths()[7].read_bytes()
    assert client.post("/predict?reject=0.5", content=seven).json()["digit"] == 7
    refused(client.post("/predict?reject=2", content=seven), 400, "reject")
    refused(client.post("/predict?reject=high", content=seven), 400, "reject")


def test_maps_are_c1_and_c3_on_their_own_scales(client, model):
    data = sample_paths()[2].read_bytes()
    result = client.post("/predict?maps=1", content=data).json()
    assert result["digit"] == 2
    expected = maps.feature_maps(model, lenet_fast.read_digit(sample_paths()[2]))
    for name, shape in (("c1", (6, 28, 28)), ("c3", (16, 10, 10))):
        m = result["maps"][name]
        assert m["shape"] == list(shape)
        levels = np.frombuffer(base64.b64decode(m["data"]), np.uint8).reshape(shape)
        assert (levels.min(axis=(1, 2)) == 0).all() and (levels.max(axis=(1, 2)) == 255).all()
        out = expected[name].astype(np.float64)
        low, high = out.min(axis=(1, 2), keepdims=True), out.max(axis=(1, 2), keepdims=True)
        np.testing.assert_allclose(levels, (out - low) / (high - low) * 255, atol=0.51)
    assert "maps" not in client.post("/predict?maps=0", content=data).json()
    refused(client.post("/predict?maps=1", json=[np.zeros((28, 28), int).tolist()] * 2), 400, "one image")
    refused(client.post("/predict?maps=perhaps", content=data), 400, "expected 0 or 1")


def test_read_gives_the_number_in_a_picture(client, model):
    photo = handwriting.number_photo("40718", 5)
    expected = lenet_fast.read_number(photo, model, details=True)
    assert "".join(str(d.digit) for d in expected) == "40718"  # the picture reads right directly
    result = client.post("/read", content=png(photo), headers={"content-type": "image/png"}).json()
    assert result["number"] == "40718"
    assert [d["digit"] for d in result["digits"]] == [4, 0, 7, 1, 8]
    assert [d["box"] for d in result["digits"]] == [list(d.box) for d in expected]
    assert client.post("/read", files={"file": ("n.png", png(photo), "image/png")}).json()["number"] == "40718"
    refused(client.post("/read", json=[[0]]), 400, "not pixels")
    refused(client.post("/read", content=npy(photo), headers={"content-type": "application/x-npy"}), 400, "not pixels")
    refused(client.post("/read", content=png(np.full((60, 200), 255, np.uint8))), 400, "no digit")


NESTED = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("body, kind, status, words", [
    (b"[[1, 2", "application/json", 400, "malformed JSON"),
    (b"\xff\xfe[", "application/json", 400, "JSON"),
    (b'{"image": [1, 2]}', "application/json", 400, "28x28"),
    (json.dumps([[1, 2], [3, 4]]).encode(), "application/json", 400, "shape [2, 2]"),
    (json.dumps([[[0] * 28] * 28] * 2 + [[[0] * 27] * 28]).encode(), "application/json", 400, "one shape"),
    (json.dumps([["0"] * 28] * 28).encode(), "application/json", 400, "numbers"),
    (json.dumps([[True] * 28] * 28).encode(), "application/json", 400, "numbers"),
    (json.dumps([[None] * 28] * 28).encode(), "application/json", 400, "numbers"),
    (json.dumps([[2 ** 70] * 28] * 28).encode(), "application/json", 400, "numbers"),
    (json.dumps([[300] * 28] * 28).encode(), "application/json", 400, "0..255"),
    (json.dumps([[-0.5] * 28] * 28).encode(), "application/json", 400, "[0, 1]"),
    (json.dumps([[2.5] * 28] * 28).encode(), "application/json", 400, "[0, 1]"),
    (("[" + ",".join(["[" + ",".join(["NaN"] * 28) + "]"] * 28) + "]").encode(), "application/json", 400, "finite"),
    (b"[[Infinity]]", "application/json", 400, "finite"),
    (NESTED.encode(), "application/json", 400, "nested"),
    (("[" * 8000 + "]" * 8000).encode(), "application/json", 400, "nested"),  # small: parsed on the event loop
    (("[" + ",".join(["[" + ",".join(["1e999"] * 28) + "]"] * 28) + "]").encode(), "application/json", 400, "infinity"),
    (b"[]", "application/json", 400, "empty"),
    (b"", "application/json", 400, "no body"),
    (b"", "image/png", 400, "no body"),
    (b"", "", 400, "no body"),
    (b"GIF89a not really", "image/gif", 400, "not an image"),
    (b"\x00" * 1000, "", 400, "not an image"),
    (png(np.full((40, 40), 255, np.uint8)), "image/png", 400, "no digit"),
    (png_header(2000, 2001), "image/png", 413, "2000x2001"),
    (png_header(100_000, 100_000), "image/png", 413, "pixels"),
    (b"hello", "text/plain", 415, "content type"),
    (b"<digit/>", "application/xml", 415, "content type"),
])
def test_bad_bodies_get_a_4xx_and_a_json_error(client, body, kind, status, words):
    refused(client.post("/predict", content=body, headers={"content-type": kind} if kind else {}), status, words)


def test_a_truncated_png_is_refused(client):
    data = sample_paths()[4].read_bytes()
    for cut in (8, 30, len(data) // 2):
        refused(client.post("/predict", content=data[:cut], headers={"content-type": "image/png"}), 400,
                "not an image")


def test_bad_forms_are_refused(client):
    data = sample_paths()[1].read_bytes()
    refused(client.post("/predict", files={"picture": ("1.png", data, "image/png")}), 400, '"file" or "image"')
    refused(client.post("/predict", data={"file": "not a file"}, files={"other": ("1.png", data, "image/png")}), 400,
            '"file" or "image"')
    refused(client.post("/predict", data={"file": "not a file"}), 415, "x-www-form-urlencoded")
    refused(client.post("/predict", files=[("file", ("1.png", data, "image/png"))] * 2), 400, "files")
    refused(client.post("/predict", files={"file": ("x.png", b"", "image/png")}), 400, "no body")
    refused(client.post("/predict", content=b"--x\r\nnot a form", headers={"content-type": "multipart/form-data; "
                                                                                     "boundary=x"}), 400, "")


def test_methods_and_paths(client):
    assert client.get("/predict").status_code == 405
    refused(client.get("/predict"), 405, "method not allowed")
    refused(client.post("/healthz"), 405, "method not allowed")
    refused(client.delete("/"), 405, "method not allowed")
    refused(client.get("/nowhere"), 404, "not found")


def test_a_body_one_byte_over_the_limit_is_refused_unread(client):
    within = b" " * (MAX_BODY - 2) + b"[]"  # parsed: so the limit let it through
    refused(client.post("/predict", content=within, headers={"content-type": "application/json"}), 400, "empty")
    over = within + b" "
    refused(client.post("/predict", content=over, headers={"content-type": "application/json"}), 413,
            f"{MAX_BODY + 1:,} bytes")


def test_a_chunked_body_is_counted_as_it_arrives(client):
    sent = []

    def chunks():
        for _ in range(100):
            sent.append(1)
            yield b" " * 10_000
    refused(client.post("/predict", content=chunks(), headers={"content-type": "application/json"}), 413,
            f"{MAX_BODY:,} bytes")
    small = client.post("/predict", content=iter([b"[", b"]"]), headers={"content-type": "application/json"})
    refused(small, 400, "empty")


def test_too_many_images_in_one_request(client):
    refused(client.post("/predict", json=[[[0] * 28] * 28] * (MAX_BATCH + 1)), 413, f"{MAX_BATCH + 1}")


def test_fuzzed_bodies_never_get_a_5xx(client):
    """Random bytes, a real PNG's and .npy's bytes with some changed, and random JSON-like text: a 4xx or a
    200, and the client's raise_server_exceptions would raise any unhandled exception."""
    rng = np.random.default_rng(7)
    bodies = [rng.bytes(int(rng.integers(1, 3000))) for _ in range(20)]
    for good in (sample_paths()[5].read_bytes(), npy(np.zeros((2, 28, 28), np.uint8))):
        for _ in range(15):
            damaged = bytearray(good)
            for i in rng.integers(0, 160, int(rng.integers(1, 8))):  # the headers, mostly
                damaged[i] = int(rng.integers(0, 256))
            bodies.append(bytes(damaged))
    alphabet = list("[],0123456789.-eE \"{}:nulltruefalseNaN")
    bodies += ["".join(rng.choice(alphabet, int(rng.integers(1, 200)))).encode() for _ in range(20)]
    statuses = set()
    for body in bodies:
        for path, kind in (("/predict", "image/png"), ("/predict", "application/json"),
                           ("/predict", "application/x-npy"), ("/read", "image/png")):
            response = client.post(path, content=body, headers={"content-type": kind})
            assert response.status_code < 500
            if response.status_code != 200:
                assert isinstance(response.json()["error"], str)
            statuses.add(response.status_code)
    assert 400 in statuses


@pytest.mark.skipif(not lenet_fast.build_info()["openmp"], reason="built without OpenMP: always one thread")
def test_the_pool_threads_use_the_creators_kernel_threads(model, monkeypatch):
    """OpenMP's thread count is per thread: the app gives its pool threads the one its creator had."""
    monkeypatch.setattr(serve, "_predict", lambda *args: (True, [lenet_fast.get_num_threads()]))
    before = lenet_fast.get_num_threads()
    for threads in (1, 3):
        lenet_fast.set_num_threads(threads)
        try:
            app = serve.create_app(model)
        finally:
            lenet_fast.set_num_threads(before)
        with TestClient(app) as c:  # a batch: predicted in the pool
            assert c.post("/predict", json=[[[0] * 28] * 28] * 30).json() == threads


def test_create_app_checks_its_arguments(model):
    with pytest.raises(TypeError, match="LeNet5"):
        serve.create_app(lenet_fast.pretrained("ensemble"))
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(ValueError, match="max_body"):
            serve.create_app(model, max_body=bad)


def test_the_command_line_takes_a_pretrained_name_for_model(tmp_path, model, monkeypatch):
    args = cli._parser().parse_args(["serve", "--model", "modern", "--port", "0", "--max-body", "1000"])
    loaded, description = cli._model(args)
    assert (loaded.variant, description, args.port, args.max_body) == ("modern", "pretrained modern", 0, 1000)
    model.save(tmp_path / "classic")  # a file of that name wins, for every command
    monkeypatch.chdir(tmp_path)
    for command in (["serve"], ["export", "out.onnx"], ["show", "x.png", "--out", "m.png"]):
        assert cli._model(cli._parser().parse_args(command + ["--model", "classic"]))[1] == "classic"
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["serve", "--port", "70000"])


def run_python(code, timeout=60):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


def test_without_the_extra_serve_says_what_to_install():
    result = run_python("import sys\nsys.modules['starlette'] = None\nfrom lenet_fast.__main__ import main\n"
                        "sys.exit(main(['serve', '--port', '0']))")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"lenet-fast: error: {serve.EXTRA_MISSING}"]


def test_the_package_never_imports_the_web_stack():
    result = run_python("import sys\nimport lenet_fast, lenet_fast.cli, lenet_fast.serve\n"
                        "print(sorted(m for m in ('starlette', 'uvicorn', 'httpx', 'multipart') if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_server_process_stops_cleanly_on_sigterm():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "lenet_fast", "serve", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert json.load(response) == {"status": "ok"}
                break
            except OSError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "the server did not answer within 30 s"
                time.sleep(0.1)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=sample_paths()[6].read_bytes(),
                                         headers={"content-type": "image/png"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["digit"] == 6
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
        assert "Traceback" not in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_load_test_runs_and_stops_by_itself(repo_root):
    """benchmarks/load.py on a few requests (its figures are not checked here: speed is measured, not
    asserted): the server starts, answers every request right, and stops with status 0."""
    script = repo_root / "benchmarks" / "load.py"
    if not script.exists():
        pytest.skip("benchmarks/ is not in the sdist")
    result = subprocess.run([sys.executable, str(script), "--requests", "64",
                             "--clients", "4", "--batch", "16", "--batch-repeats", "1", "--time-limit", "20"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "64 requests from 4 clients" in result.stdout and "failed requests: 0" in result.stdout
    assert "batch of 16 digits as .npy" in result.stdout
