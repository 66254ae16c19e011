"""The HTTP service (lenet-fast serve): a Starlette app over one model, and its runner on uvicorn.

    app = create_app(lenet_fast.pretrained("classic"))      # any ASGI server runs it
    run(model, host="127.0.0.1", port=8000)                 # what lenet-fast serve does

Routes (docs/serving.md): POST /predict (an image file, multipart or raw; JSON pixels: one 28x28 array or a
list of them; or the same as a .npy array), POST /read (a picture of a number), GET /healthz, GET /version,
GET / (the drawing page).

Bad input is the client's error, never the server's: every refusal is a 4xx with a JSON body {"error": ...}.
A body larger than max_body is refused (413) from its Content-Length before any of it is read, and a body sent
in chunks is counted as it arrives and refused as soon as it passes the limit; an image whose header claims
more than max_pixels pixels is refused (413) before any pixel is decoded.

The model is shared by every request: its predictions are safe from any number of threads at once
(docs/architecture.md#threads), so inference runs on Starlette's thread pool (the kernels release the GIL),
off the event loop: all but a JSON body of a few digits (INLINE), whose work costs less than the hop.
Starlette, uvicorn, python-multipart and Pillow (the [serve] extra) are imported only when an app is made or
run: the rest of the package never needs them.
"""
import base64
import io
import json
import signal
import threading
from pathlib import Path

import numpy as np

import lenet_fast

from . import _core, images, maps
from ._version import __version__
from .images import read_digit
from .inputs import _FIELDS
from .model import LeNet5
from .numbers import read_number

MAX_BODY = 5_000_000      # bytes: the default limit of a request's body
MAX_PIXELS = 16_000_000   # the default limit of an image's pixels, from its header (a 16-megapixel photo)
# bytes: a JSON body this small (a few digits) is predicted on the event loop, since the thread pool's hop (the
# GIL handed between the loop and a worker thread) costs more than the work: benchmarks/results/serve-2026-12-03.md
INLINE = 16_384
MAX_BATCH = 4096          # the default limit of the images in one request (JSON or .npy)
PAGE = Path(__file__).parent / "static" / "pad.html"
EXTRA_MISSING = ('lenet-fast serve needs Starlette, uvicorn, python-multipart and Pillow: '
                 'pip install "lenet_fast[serve]"')
JSON_TYPES = ("application/json",)
NPY_TYPE = "application/x-npy"  # numpy's .npy file: a batch without JSON's decoding
MAP_NAMES = ("c1", "c3")  # the layers the page shows


class BodyTooLarge(Exception):
    """A request body passed the app's max_body while it was being read, or holds more than max_batch images."""


class Unsupported(Exception):
    """A request body of a content type the route does not take."""


def requirements():
    """Import the [serve] extra's modules; ImportError naming the extra when one is missing."""
    try:
        import PIL  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ImportError(EXTRA_MISSING) from None
    import importlib.util
    if not any(importlib.util.find_spec(name) for name in ("python_multipart", "multipart")):
        raise ImportError(EXTRA_MISSING)  # python-multipart, Starlette's form parser (named so since 0.0.13)


def create_app(model, max_body=MAX_BODY, max_pixels=MAX_PIXELS, max_batch=MAX_BATCH, description=None):
    """The Starlette app serving model (a LeNet5; TypeError otherwise: /read and the feature maps need one
    network), its kernels on as many threads as the calling thread's get_num_threads(). max_body (bytes),
    max_pixels (an image's width x height) and max_batch (images in one JSON request) are positive integers
    (ValueError otherwise). description names the model in /version (default:
    its variant). ImportError naming the [serve] extra when Starlette, uvicorn, python-multipart or Pillow is
    missing."""
    if not isinstance(model, LeNet5):
        raise TypeError(f"create_app serves a lenet_fast.LeNet5, got {type(model).__name__}")
    max_body, max_pixels, max_batch = (_core.positive_int(value, name, limit=None) for name, value in
                                       (("max_body", max_body), ("max_pixels", max_pixels), ("max_batch", max_batch)))
    requirements()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    page = PAGE.read_text(encoding="utf-8")
    # OpenMP's thread count is each thread's own: the pool's threads take the creator's (lenet-fast serve
    # --threads), which they would not inherit
    threads = lenet_fast.get_num_threads()

    def in_pool(fn, *args):
        if lenet_fast.get_num_threads() != threads:
            lenet_fast.set_num_threads(threads)
        return fn(*args)
    version = {"version": __version__, "model": {"variant": model.variant, "description": description or
                                                  f"a {model.variant} model"}}

    async def predict(request):
        reject = _reject(request.query_params.get("reject"))
        want_maps = _flag(request.query_params.get("maps"))
        kind = _content_type(request)
        body = await _body(request, kind)
        work = (model, body, kind, reject, want_maps, max_pixels, max_batch)
        if kind in JSON_TYPES and len(body) <= INLINE and not want_maps:
            single, rows = _predict(*work)
        else:  # one hop to the thread pool for the whole of the work: parsing, reading, predicting
            single, rows = await run_in_threadpool(in_pool, _predict, *work)
        return JSONResponse(rows[0] if single else rows)

    async def read(request):
        kind = _content_type(request)
        if kind in JSON_TYPES or kind == NPY_TYPE:
            raise ValueError("/read takes a picture of a number (an image file), not pixels")
        body = await _body(request, kind)
        digits = await run_in_threadpool(in_pool, _read_number, model, body, max_pixels)
        return JSONResponse({"number": "".join(str(d.digit) for d in digits),
                             "digits": [{"digit": d.digit, "confidence": round(float(d.confidence), 6),
                                         "box": list(d.box)} for d in digits]})

    async def healthz(request):
        return JSONResponse({"status": "ok"})

    async def version_info(request):
        return JSONResponse(dict(version, build=lenet_fast.build_info()))

    async def index(request):
        return HTMLResponse(page)

    def error(status):
        async def handler(request, exc):
            return JSONResponse({"error": " ".join(str(exc).split()) or type(exc).__name__}, status_code=status)
        return handler

    async def http_error(request, exc):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    routes = [Route("/predict", predict, methods=["POST"]), Route("/read", read, methods=["POST"]),
              Route("/healthz", healthz, methods=["GET"]), Route("/version", version_info, methods=["GET"]),
              Route("/", index, methods=["GET"])]
    # The library's refusals of bad input (ValueError, TypeError; FloatingPointError for absurd pixels) are
    # the client's errors, as HTTPException's 404, 405 and 400 (a damaged multipart body) are.
    handlers = {HTTPException: http_error, ValueError: error(400), TypeError: error(400),
                FloatingPointError: error(400), BodyTooLarge: error(413), Unsupported: error(415),
                images.TooManyPixels: error(413)}
    return Starlette(routes=routes, exception_handlers=handlers,
                     middleware=[Middleware(BodyLimit, max_body=max_body)])


class BodyLimit:
    """ASGI middleware refusing request bodies over max_body bytes with 413: from the Content-Length header
    before the app runs (nothing of the body is read), or, for a body without one (chunked), by counting
    what arrives and raising BodyTooLarge from receive as soon as the count passes the limit."""

    def __init__(self, app, max_body):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                length = int(length)
            except ValueError:
                length = -1
            if length < 0:
                return await _refuse(send, 400, "Content-Length is not a byte count")
            if length > self.max_body:
                return await _refuse(send, 413, f"the body is {length:,} bytes, more than the {self.max_body:,} "
                                                f"this service takes")
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(f"the body is more than the {self.max_body:,} bytes this service takes")
            return message

        return await self.app(scope, counted, send)


async def _refuse(send, status, text):
    """A JSON error response sent straight through ASGI (the app never saw the request)."""
    body = json.dumps({"error": text}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _content_type(request):
    """The request's media type, lower case, without parameters ("" when absent)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _body(request, kind):
    """The bytes of the picture or JSON a request carries: the whole body, or for a multipart form its field
    "file" or "image". Unsupported for a type that is neither JSON, an image, a form nor bytes; ValueError for
    an empty body or a form without either field."""
    if kind == "multipart/form-data":
        async with request.form(max_files=1, max_fields=8) as form:
            field = form.get("file", form.get("image"))
            if field is None or isinstance(field, str):
                raise ValueError('a multipart form must carry the image as a file in its field "file" or "image"')
            data = await field.read()
    elif kind in JSON_TYPES or kind in ("", NPY_TYPE, "application/octet-stream") or kind.startswith("image/"):
        data = await request.body()
    else:
        raise Unsupported(f"unsupported content type {kind!r}: send an image (a file, multipart/form-data or "
                          f"a raw image/* body), application/json pixels or a {NPY_TYPE} array")
    if not data:
        raise ValueError("the request has no body: send an image or JSON pixels")
    return data


def _reject(text):
    """The reject= query parameter as predict takes it: None, or a number (predict checks its range)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"reject must be a confidence in [0, 1], got {text!r}") from None


def _flag(text):
    """A boolean query parameter: absent, "0", "false" or "no" is off; "1", "true" or "yes" on."""
    if text is None or text.lower() in ("0", "false", "no"):
        return False
    if text.lower() in ("1", "true", "yes"):
        return True
    raise ValueError(f"expected 0 or 1, got {text!r}")


def _no_constant(name):
    raise ValueError(f"the JSON holds {name}: pixels must be finite numbers")


def _json_pixels(body, max_batch):
    """(pixels, single) from a JSON body: one (28, 28) or (32, 32) array of numbers (single True), or a
    non-empty list of at most max_batch of them (single False), as an ndarray predict takes. ValueError for
    malformed JSON (nesting too deep included), NaN or infinities, other shapes, and strings, booleans,
    objects or nulls among the numbers; BodyTooLarge for too many images."""
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
    except UnicodeDecodeError:
        raise ValueError("the JSON is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON: {exc}") from None
    if not isinstance(data, list):
        raise ValueError("expected a JSON array: 28x28 (or 32x32) pixels, or a list of such arrays")
    if not data:
        raise ValueError("the list of images is empty")
    try:
        x = np.asarray(data)
    except (ValueError, RecursionError):  # ragged lists: numpy refuses an inhomogeneous shape
        raise ValueError("the JSON arrays must be 28x28 (or 32x32) pixels, or a list of them, all of one shape") \
            from None
    if x.dtype.kind not in "uif":
        raise ValueError("the pixels must all be numbers: uint8 levels 0-255 or floats in [0, 1]")
    _check_shape(x.shape, max_batch)
    return x, x.ndim == 2


def _check_shape(shape, max_batch):
    """ValueError unless shape is one 28x28 (or 32x32) image or a non-empty batch of them; BodyTooLarge for
    a batch of more than max_batch."""
    if len(shape) not in (2, 3) or tuple(shape[-2:]) not in _FIELDS:
        raise ValueError(f"expected a 28x28 (or 32x32) array of pixels, or a list of them, got shape {list(shape)}")
    if len(shape) == 3 and shape[0] < 1:
        raise ValueError("the list of images is empty")
    if len(shape) == 3 and shape[0] > max_batch:
        raise BodyTooLarge(f"{shape[0]:,} images in one request, more than the {max_batch:,} this service takes")


def _npy_pixels(body, max_batch):
    """(pixels, single) from a .npy file's bytes, as _json_pixels: one image or a batch of numbers (uint8 0-255
    or floats in [0, 1]). The header is checked (shape, dtype, the data's length) before an array is made
    from the bytes that follow it; never unpickled. ValueError otherwise."""
    from numpy.lib import format as npy
    stream = io.BytesIO(body)
    try:
        version = npy.read_magic(stream)
        header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran, dtype = header(stream)
    except Exception as exc:  # a foreign header: numpy's parser raises ValueError, SyntaxError, TokenError...
        raise ValueError(f"not a .npy file numpy can read ({exc})") from None
    if dtype.kind not in "uif" or dtype.hasobject or dtype.fields is not None:
        raise ValueError(f"the pixels must be numbers: uint8 levels 0-255 or floats in [0, 1], got dtype {dtype}")
    _check_shape(shape, max_batch)
    data = memoryview(body)[stream.tell():]
    if len(data) != int(np.prod(shape)) * dtype.itemsize:
        raise ValueError(f"the .npy data is {len(data):,} bytes, not the {int(np.prod(shape)) * dtype.itemsize:,} "
                         f"its header's shape {list(shape)} and dtype {dtype} take")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C"), len(shape) == 2


def _read_image(data, max_pixels):
    """The pixels of an image file's bytes, as read_digit reads a file (a JPEG at a reduced scale, EXIF
    orientation applied), for read_digit or read_number to take. TooManyPixels, before any pixel is decoded,
    for an image whose header claims more than max_pixels; ValueError for bytes Pillow cannot read."""
    return images._read_file(io.BytesIO(data), max_pixels)


def _read_number(model, body, max_pixels):
    """read_number's Digit records for an image file's bytes (_read_image's errors for a bad one)."""
    return read_number(_read_image(body, max_pixels), model, details=True)


def _predict(model, body, kind, reject, with_maps, max_pixels, max_batch):
    """(single, rows) for a /predict body of media type kind: JSON pixels (_json_pixels), a .npy array
    (_npy_pixels) or an image file (_read_image, then read_digit); one {"digit", "confidence",
    "probabilities"} row per image ("maps" too for one image with with_maps), from one forward pass over the
    whole batch."""
    if kind in JSON_TYPES:
        x, single = _json_pixels(body, max_batch)
    elif kind == NPY_TYPE:
        x, single = _npy_pixels(body, max_batch)
    else:
        x, single = read_digit(_read_image(body, max_pixels)), True
    if with_maps and not single:
        raise ValueError("maps=1 takes one image, not a list")
    digits, probs = model.predict_with_proba(x, reject=reject)
    rounded = np.round(probs.astype(np.float64), 6).tolist()  # 6 decimals: the JSON stays short
    rows = [{"digit": d, "confidence": row[k], "probabilities": row}
            for d, k, row in zip(digits.tolist(), probs.argmax(axis=1).tolist(), rounded)]
    if with_maps:
        rows[0]["maps"] = _maps(model, x if x.ndim == 2 else x[0])
    return single, rows


def _maps(model, digit):
    """C1's and C3's feature maps of one digit for the page: {"c1": {"shape": [6, 28, 28], "data": ...}, "c3":
    ...}: each map stretched to 0-255 on its own scale (as maps.draw_maps shows them), as uint8 bytes in
    base64."""
    found = maps.feature_maps(model, digit)
    out = {}
    for name in MAP_NAMES:
        m = found[name]
        low = m.min(axis=(1, 2), keepdims=True)
        span = np.maximum(m.max(axis=(1, 2), keepdims=True) - low, np.float32(1e-6))
        levels = np.round((m - low) / span * 255).astype(np.uint8)
        out[name] = {"shape": list(m.shape), "data": base64.b64encode(levels.tobytes()).decode("ascii")}
    return out


def run(model, host="127.0.0.1", port=8000, max_body=MAX_BODY, max_pixels=MAX_PIXELS, max_batch=MAX_BATCH,
        description=None):
    """Serve model on host:port with uvicorn until SIGTERM or Ctrl-C (uvicorn finishes the requests under
    way, then returns). Arguments as create_app's; ImportError naming the [serve] extra without it."""
    app = create_app(model, max_body=max_body, max_pixels=max_pixels, max_batch=max_batch, description=description)
    import uvicorn
    # no access log: a line per request costs more than a single digit's prediction
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, access_log=False, log_level="info"))
    if threading.current_thread() is not threading.main_thread():
        return server.run()  # signals reach the main thread only: whoever runs this one stops it
    # uvicorn stops on SIGTERM and SIGINT (finishing the requests under way), then raises the signal again for
    # the handlers it found in place; these take it as done, so that a stop asked for is a clean exit (status 0)
    previous = {s: signal.signal(s, _stopped) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _stopped(signum, frame):
    """The signal uvicorn raises again once it has stopped on it: nothing more to do."""
