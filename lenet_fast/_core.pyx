# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The Cython layer: checks every argument, then calls the C engine (csrc/) with the GIL released.

Nothing reaches C unchecked: dtypes, C-contiguity, shapes, connection tables and finiteness are verified
here, and errors name the argument. A network is described once (Network) and then run many times.
"""
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from cpython.pythread cimport PyThread_get_thread_ident
cimport numpy as cnp
import operator

import numpy as np

cnp.import_array()

from lenet_fast._engine cimport *

ACTIVATIONS = {"none": LF_ACT_NONE, "squash": LF_ACT_SQUASH, "tanh": LF_ACT_TANH, "relu": LF_ACT_RELU,
               "leaky_relu": LF_ACT_LEAKY_RELU, "elu": LF_ACT_ELU, "sigmoid": LF_ACT_SIGMOID}
POOLS = {"trainable": LF_POOL_TRAINABLE, "average": LF_POOL_AVERAGE, "max": LF_POOL_MAX}
_KINDS = {"conv": LF_LAYER_CONV, "subsample": LF_LAYER_SUBSAMPLE, "full": LF_LAYER_FULL, "rbf": LF_LAYER_RBF,
          "dropout": LF_LAYER_DROPOUT}
_KEY_MASK = (1 << 64) - 1


def dropout_key(seed, epoch, layer):
    """The key of dropout layer `layer`'s masks in epoch `epoch` of a fit with seed `seed` (integers): the
    masks are a pure function of it, the image's position in the epoch and the unit (csrc/dropout.c), so
    each epoch and each layer draws afresh and a resumed run draws what the uninterrupted one did."""
    return ((int(seed) & _KEY_MASK) * 0x100000001B3 + int(epoch) * 0xC2B2AE3D27D4EB4F
            + int(layer) * 0x165667B19E3779F9) & _KEY_MASK
_MAX_LAYERS = LF_MAX_LAYERS  # csrc/lenet_fast.h: a plan keeps at most this many
_MAX_DIM = 1 << 15  # keeps every index and size well inside a C int
_MAX_TENSOR = 1 << 24  # floats in one image's tensor at any layer
_MAX_TAPS = 4096  # kernel positions: the convolution keeps their offsets on the stack


# ---------------------------------------------------------------------------------------------------------
# Argument checks

def float32_array(x, name, shape=None):
    """x as a C-contiguous float32 array (converting other real float dtypes), checked finite and, when
    shape is given (None entries match anything), of that shape."""
    a = np.asarray(x)
    if a.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point array, got dtype {a.dtype}")
    given = a
    with np.errstate(over="ignore"):  # a value beyond float32's range becomes infinity: refused below
        a = np.asarray(a, dtype=np.float32, order="C")  # unlike ascontiguousarray, keeps a 0-d array 0-d
    if shape is not None:
        if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
            want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {want}, got {a.shape}")
    if not all_finite(a):
        if np.isfinite(given).all():
            raise ValueError(f"{name} holds values beyond float32's range (about 3.4e38)")
        raise ValueError(f"{name} contains NaN or infinity")
    return a


cdef bint finite(const float *x, Py_ssize_t n) noexcept nogil:
    cdef const unsigned int *bits = <const unsigned int *>x
    cdef unsigned int bad = 0
    cdef Py_ssize_t i
    for i in range(n):  # no early exit, so that the loop vectorizes
        bad |= (bits[i] & 0x7F800000u) == 0x7F800000u  # all-ones exponent: inf or NaN
    return bad == 0


cdef bint unit_range(const float *x, Py_ssize_t n) noexcept nogil:
    cdef int out = 0
    cdef Py_ssize_t i
    for i in range(n):
        out |= (x[i] < 0) | (x[i] > 1)
    return out == 0


def all_finite(a):
    """True when the float32 array a (any shape, C-contiguous) holds no NaN or infinity."""
    cdef const float[::1] v = a.reshape(-1)
    return v.shape[0] == 0 or finite(&v[0], v.shape[0])


def _choice(value, table, name):
    try:
        return table[value]
    except (KeyError, TypeError):
        raise ValueError(f"{name} must be one of {sorted(table)}, got {value!r}") from None


def check_labels(labels, n, k, name="labels", loss=None):
    """labels as a C-contiguous int64 array of n class ids in 0..k-1, or -1 (not a digit) too when loss is
    one of REJECT_LOSSES (training); ValueError naming them otherwise."""
    y = np.asarray(labels)
    if y.dtype.kind not in "iu" or y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of integer class ids, got {y.dtype} of shape {y.shape}")
    if len(y) != n:
        raise ValueError(f"{name}: {len(y)} labels for {n} images")
    low = -1 if isinstance(loss, str) and loss in REJECT_LOSSES else 0
    if n and (y.min() < low or y.max() >= k):
        rejects = (f" (-1, not a digit, is a training label for loss {' or '.join(map(repr, REJECT_LOSSES))} "
                   f"only{'' if loss is None else f', not {loss!r}'})" if y.min() == -1 else "")
        raise ValueError(f"{name} must lie in {low}..{k - 1}, got {y.min()}..{y.max()}{rejects}")
    return np.ascontiguousarray(y, dtype=np.int64)


def positive_int(value, name, limit=_MAX_DIM):
    """value as a Python int in 1..limit (no upper bound when limit is None): any integer type (int,
    numpy's; anything operator.index takes) but bool; ValueError naming it, with the range, otherwise."""
    try:
        n = None if isinstance(value, (bool, np.bool_)) else operator.index(value)
    except TypeError:
        n = None
    if n is None or n < 1 or (limit is not None and n > limit):
        allowed = "a positive integer" if limit is None else f"an integer in 1..{limit} (a positive integer)"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return n


cdef int _check(int rc) except -1:
    """Raises the exception a C call's error code stands for (csrc/lenet_fast.h); 0 for success."""
    if rc == LF_ERR_THREADS:
        raise MemoryError(f"cannot create the {lf_get_num_threads()} threads the kernels are set to use (memory "
                          "or the process's thread limit is short): call lenet_fast.set_num_threads with fewer")
    if rc != 0:
        raise MemoryError("cannot allocate the per-thread workspace")
    return 0


# ---------------------------------------------------------------------------------------------------------
# The guard between training and every other use of a network's parameters

cdef class Guard:
    """A reader-writer guard: the one exclusion between changing a network's parameters and every other use
    of them (readers: forward, and whatever else reads them). Two kinds of writer: training (writing(),
    LeNet5.fit: minutes) and an update (updating(), LeNet5.set_params: one copy of the weights).

    Rules:
    - Readers share: any number of threads may read at once.
    - Training excludes other threads: while one thread trains, a read from another thread is refused at
      once (RuntimeError: training takes minutes, so waiting would look like a hang); writing() first
      waits for the reads and the update already running to finish, so none sees the weights change
      under it.
    - An update waits for the reads running to finish, and reads arriving meanwhile wait for it (it is one
      copy): every read sees the weights all from before or all from after it, and none is refused. A
      thread that already reads (nested) is never made to wait, so that no reader waits for itself. One
      update at a time: a second waits for the first. An update while another thread trains is refused
      (RuntimeError), like a read.
    - The training thread may read and update (fit validates, SDLM measures curvature, resume loads) and
      nest reads freely.
    - One training at a time: a second writing() raises RuntimeError, from any thread; so do writing() and
      updating() from inside a reading() on the same thread (each would wait for itself).
    The counters change with the GIL held and no Python code between test and change, so a read either sees
    a writer or is counted before the writer looks; writers and waiting readers wait on a Condition, which
    a reader notifies only when it is the last one out while a writer waits (forward's path takes no lock
    unless an update is running).
    """
    cdef Py_ssize_t _readers  # reads running, from every thread
    cdef Py_ssize_t _waiting  # writers (training or update) waiting for the reads to finish
    cdef bint _writing, _updating
    cdef unsigned long _writer, _updater  # the training thread while _writing; the updating one
    cdef object _cond, _local  # _local.depth: this thread's reading() nesting

    def __cinit__(self):
        import threading
        self._cond = threading.Condition(threading.Lock())
        self._local = threading.local()

    @property
    def readers(self):
        return self._readers

    @property
    def writing_now(self):
        """True while some thread holds writing()."""
        return bool(self._writing)

    @property
    def updating_now(self):
        """True while some thread holds updating()."""
        return bool(self._updating)

    cdef int enter_read(self) except -1:
        cdef unsigned long me
        while self._writing or self._updating:  # the common case, neither, tests two flags only
            me = PyThread_get_thread_ident()
            if self._writing and self._writer != me:
                raise RuntimeError("this model is being trained in another thread; use it after fit returns "
                                   "(or use a copy: lenet_fast.load of a checkpoint)")
            if not self._updating or self._updater == me:
                break
            if getattr(self._local, "depth", 0):
                break  # this thread already reads, so the update has not started copying: it waits for us
            with self._cond:
                while self._updating:
                    self._cond.wait()
            # then checked again from the top: training may have started meanwhile
        self._readers += 1
        return 0

    cdef int exit_read(self) except -1:
        self._readers -= 1
        if self._waiting and self._readers == 0:
            with self._cond:
                self._cond.notify_all()
        return 0

    cdef int _drain(self) except -1:
        """Waits, holding self._cond, until no read runs and (unless this thread is updating) no update."""
        cdef unsigned long me = PyThread_get_thread_ident()
        self._waiting += 1
        try:
            while self._readers or (self._updating and self._updater != me):
                self._cond.wait()
        finally:
            self._waiting -= 1
        return 0

    cdef int enter_write(self) except -1:
        if self._writing:
            raise RuntimeError("this model is already being trained")
        if getattr(self._local, "depth", 0):
            raise RuntimeError("a model cannot be trained from inside a call that uses it")
        self._writing, self._writer = True, PyThread_get_thread_ident()
        try:
            with self._cond:
                self._drain()
        except BaseException:  # Ctrl-C while waiting: nothing was trained
            self._writing = False
            raise
        return 0

    cdef int exit_write(self) except -1:
        self._writing = False
        return 0

    cdef int enter_update(self) except -1:
        cdef unsigned long me = PyThread_get_thread_ident()
        if getattr(self._local, "depth", 0):
            raise RuntimeError("a model's parameters cannot be set from inside a call that uses them")
        with self._cond:
            while True:
                if self._writing and self._writer != me:
                    raise RuntimeError("this model is being trained in another thread; set its parameters "
                                       "after fit returns")
                if not self._updating:
                    break
                self._cond.wait()  # another thread's update: one copy, soon done
            self._updating, self._updater = True, me
            try:
                self._drain()
            except BaseException:  # Ctrl-C while waiting: nothing was changed
                self._updating = False
                self._cond.notify_all()
                raise
        return 0

    cdef int exit_update(self) except -1:
        with self._cond:
            self._updating = False
            self._cond.notify_all()  # the reads, updates and training waiting for this one
        return 0

    def reading(self):
        """A context manager: one read (RuntimeError at entry while another thread trains; waits while
        another thread updates)."""
        return _Reading(self)

    def writing(self):
        """A context manager: train once the running reads and update are done (RuntimeError if another
        training holds)."""
        return _Exclusive(self, False)

    def updating(self):
        """A context manager: one brief change of the parameters, once the running reads are done; reads
        from other threads wait for it (RuntimeError at entry while another thread trains)."""
        return _Exclusive(self, True)


cdef class _Reading:
    cdef Guard guard

    def __cinit__(self, Guard guard):
        self.guard = guard

    def __enter__(self):
        local = self.guard._local
        self.guard.enter_read()
        local.depth = getattr(local, "depth", 0) + 1
        return self

    def __exit__(self, *exc):
        local = self.guard._local
        local.depth -= 1
        self.guard.exit_read()


cdef class _Exclusive:
    """writing() (training) or updating() (a brief change of the parameters): the guard's two writers."""
    cdef Guard guard
    cdef bint update

    def __cinit__(self, Guard guard, bint update):
        self.guard, self.update = guard, update

    def __enter__(self):
        if self.update:
            self.guard.enter_update()
        else:
            self.guard.enter_write()
        return self

    def __exit__(self, *exc):
        if self.update:
            self.guard.exit_update()
        else:
            self.guard.exit_write()


# ---------------------------------------------------------------------------------------------------------
# Networks

def _layers_and_shape(layers, input_shape, form):
    """(layers as a list, input_shape's three entries) for a network's constructor: ValueError unless there
    are 1 to _MAX_LAYERS layers and input_shape has three entries (form: how the message names them)."""
    layers = list(layers)
    if not 1 <= len(layers) <= _MAX_LAYERS:
        raise ValueError(f"a network has 1 to {_MAX_LAYERS} layers, got {len(layers)}")
    try:
        c, h, w = input_shape
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be {form}, got {input_shape!r}") from None
    return layers, (c, h, w)


cdef class Network:
    """A sequence of layers the C engine runs in one call, batch after batch.

    Network(input_shape, layers): input_shape is one image's (C, H, W); each layer is a dict:
      {"kind": "conv", "out": Co, "kernel": (kh, kw), "weight": w, "bias": b, "table": None or (Co, Ci) bool,
       "act": a}: w is (Co, Ci, kh, kw), or (n_connections, kh, kw) packed in table order with a table;
      {"kind": "subsample", "pool": "trainable" | "average" | "max", "coef": c, "bias": b, "act": a}:
       2x2 windows, stride 2; coef and bias (C,) for "trainable" only;
      {"kind": "full", "out": K, "weight": w (In, K), "bias": b (K,), "act": a}: In is the previous
       output's C*H*W (flattened channel-major);
      {"kind": "rbf", "centers": c (K, In)}: squared Euclidean distances to the K centres;
      {"kind": "dropout", "rate": p}: inverted dropout of the share p in [0, 1) of its input's units in
       training (Trainer's dropout argument), the identity otherwise; it takes a subsampling or full
       layer's output.
    Any layer may also hold "round": True: its output is rounded to bfloat16 (nearest, ties to even) before
    the next layer reads it, in forward (the bf16 model's arithmetic; training ignores it). Default False.
    Parameter arrays must be float32 and C-contiguous: they are used in place, not copied, so updates made
    to them in place (training) take effect at once. The Network keeps them alive.

    guard (a Guard) excludes training from every other use: forward is one of its readers, and a thread
    that trains the parameters holds guard.writing() meanwhile.
    """
    cdef lf_layer *layers
    cdef int nlayers
    cdef readonly tuple input_shape, output_shape
    cdef int in_c, in_h, in_w, out_c, out_h, out_w
    cdef list _keep  # the arrays whose memory the C layers point into
    cdef list _trainable  # (layer index, True for the weight or False for the bias, array)
    cdef readonly Guard guard

    def __cinit__(self, input_shape, layers):
        self.layers = NULL
        self._keep = []
        self._trainable = []
        self.guard = Guard()
        layers, (c, h, w) = _layers_and_shape(layers, input_shape, "(C, H, W)")
        c, h, w = (positive_int(c, "input channels"), positive_int(h, "input height"),
                   positive_int(w, "input width"))
        self.input_shape = (c, h, w)
        self.in_c, self.in_h, self.in_w = c, h, w
        self.layers = <lf_layer *>malloc(len(layers) * sizeof(lf_layer))
        if self.layers == NULL:
            raise MemoryError()
        self.nlayers = len(layers)
        for i, spec in enumerate(layers):
            if c * h * w > _MAX_TENSOR:
                raise ValueError(f"layer {i}: its input of {c}x{h}x{w} floats per image is over {_MAX_TENSOR}")
            c, h, w = self._describe(i, spec, c, h, w)
        if c * h * w > _MAX_TENSOR:
            raise ValueError(f"the output of {c}x{h}x{w} floats per image is over {_MAX_TENSOR}")
        self.output_shape = (c, h, w)
        self.out_c, self.out_h, self.out_w = c, h, w

    def __dealloc__(self):
        free(self.layers)

    cdef object _param(self, spec, str key, tuple shape, str where):
        if key not in spec or spec[key] is None:
            raise ValueError(f"{where}: missing {key!r}")
        a = spec[key]
        if not isinstance(a, np.ndarray) or a.dtype != np.float32 or not a.flags.c_contiguous:
            raise TypeError(f"{where}: {key} must be a C-contiguous float32 numpy array")
        if a.shape != shape:
            raise ValueError(f"{where}: {key} must have shape {shape}, got {a.shape}")
        if not all_finite(a):
            raise ValueError(f"{where}: {key} contains NaN or infinity")
        self._keep.append(a)
        return a

    cdef object _trained(self, int i, bint weight, a):
        self._trainable.append((i, weight, a))
        return a

    cdef const float *_ptr(self, a):
        cdef const float[::1] v = a.reshape(-1)
        return &v[0] if v.shape[0] else NULL

    cdef tuple _describe(self, int i, dict spec, int c, int h, int w):
        cdef lf_layer *l = &self.layers[i]
        cdef int[::1] start, conn
        where = f"layer {i} ({spec.get('kind')!r})"
        l.kind = _choice(spec.get("kind"), _KINDS, f"{where}: kind")
        l.in_c, l.in_h, l.in_w = c, h, w
        l.kh = l.kw = 0
        l.conn_start = l.conn_in = NULL
        l.pool = LF_POOL_TRAINABLE
        l.act = _choice(spec.get("act", "none"), ACTIVATIONS, f"{where}: act")
        l.weight = l.bias = NULL
        l.weight_at = l.bias_at = -1
        l.rate, l.key, l.first = 0.0, 0, 0
        rounding = spec.get("round", False)
        if not isinstance(rounding, (bool, np.bool_)):
            raise ValueError(f"{where}: round must be True or False, got {rounding!r}")
        l.round_output = bool(rounding)
        if l.kind == LF_LAYER_DROPOUT:
            if i > 0 and self.layers[i - 1].kind == LF_LAYER_CONV:
                raise ValueError(f"{where}: dropout takes a subsampling or full layer's output")
            rate = spec.get("rate")
            if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) or not 0 <= rate < 1:
                raise ValueError(f"{where}: rate must be a number in [0, 1), got {rate!r}")
            if spec.get("act", "none") != "none":
                raise ValueError(f"{where}: a dropout layer has no activation")
            l.rate = rate
            l.out_c, l.out_h, l.out_w = c, h, w
            return c, h, w
        if l.kind == LF_LAYER_CONV:
            co = positive_int(spec.get("out"), f"{where}: out")
            try:
                kh, kw = spec.get("kernel")
            except (TypeError, ValueError):
                raise ValueError(f"{where}: kernel must be (kh, kw)") from None
            kh, kw = positive_int(kh, f"{where}: kernel height"), positive_int(kw, f"{where}: kernel width")
            if kh > h or kw > w:
                raise ValueError(f"{where}: a {kh}x{kw} kernel does not fit a {h}x{w} input")
            if kh * kw > _MAX_TAPS:
                raise ValueError(f"{where}: a kernel has at most {_MAX_TAPS} positions, got {kh}x{kw}")
            l.out_c, l.out_h, l.out_w, l.kh, l.kw = co, h - kh + 1, w - kw + 1, kh, kw
            if i > 0 and self.layers[i - 1].kind == LF_LAYER_CONV:
                raise ValueError(f"{where}: a convolution cannot follow a convolution directly")
            table = spec.get("table")
            if table is None:
                weight = self._param(spec, "weight", (co, c, kh, kw), where)
            else:
                table = np.asarray(table)
                if table.dtype != np.bool_ or table.shape != (co, c):
                    raise ValueError(f"{where}: table must be a ({co}, {c}) boolean array")
                if not table.any(axis=1).all():
                    raise ValueError(f"{where}: every output map needs at least one input in the table")
                rows, cols = np.nonzero(table)  # row-major: the packed weights' order
                start_a = np.zeros(co + 1, dtype=np.intc)
                np.cumsum(table.sum(axis=1), out=start_a[1:])
                conn_a = np.ascontiguousarray(cols, dtype=np.intc)
                self._keep += [start_a, conn_a]
                start, conn = start_a, conn_a
                l.conn_start, l.conn_in = &start[0], &conn[0]
                weight = self._param(spec, "weight", (len(cols), kh, kw), where)
            l.weight = self._ptr(weight)
            l.bias = self._ptr(self._trained(i, False, self._param(spec, "bias", (co,), where)))
            self._trained(i, True, weight)
        elif l.kind == LF_LAYER_SUBSAMPLE:
            if h < 2 or w < 2:
                raise ValueError(f"{where}: 2x2 subsampling needs at least a 2x2 input, got {h}x{w}")
            l.out_c, l.out_h, l.out_w = c, h // 2, w // 2
            l.pool = _choice(spec.get("pool"), POOLS, f"{where}: pool")
            if l.pool == LF_POOL_TRAINABLE:
                l.weight = self._ptr(self._trained(i, True, self._param(spec, "coef", (c,), where)))
                l.bias = self._ptr(self._trained(i, False, self._param(spec, "bias", (c,), where)))
        else:
            if i > 0 and self.layers[i - 1].kind == LF_LAYER_CONV:
                raise ValueError(f"{where}: a full or RBF layer takes a subsampling or full layer's output "
                                 "(a convolution's output is laid out in wide rows)")
            n_in = c * h * w
            if l.kind == LF_LAYER_FULL:
                k = positive_int(spec.get("out"), f"{where}: out")
                l.weight = self._ptr(self._trained(i, True, self._param(spec, "weight", (n_in, k), where)))
                l.bias = self._ptr(self._trained(i, False, self._param(spec, "bias", (k,), where)))
            else:
                centers = spec.get("centers")
                if centers is None or np.ndim(centers) != 2:
                    raise ValueError(f"{where}: centers must be a (K, {n_in}) array")
                k = positive_int(np.shape(centers)[0], f"{where}: number of centres")
                # The kernel reads the centres input-major, like a full layer's weights.
                transposed = np.ascontiguousarray(self._param(spec, "centers", (k, n_in), where).T)
                self._keep.append(transposed)
                l.weight = self._ptr(transposed)
                if spec.get("act", "none") != "none":
                    raise ValueError(f"{where}: an RBF layer has no activation")
            l.out_c, l.out_h, l.out_w = k, 1, 1
        return l.out_c, l.out_h, l.out_w

    def check_input(self, x, bint normalize=False):
        """The number of images in x; the errors forward would raise for x (shape, dtype, layout, values)."""
        cdef lf_input inp
        return self._input(x, normalize, &inp)

    cdef Py_ssize_t _input(self, x, bint normalize, lf_input *inp) except -1:
        """Checks a batch for forward and sets inp; returns the number of images."""
        cdef cnp.ndarray a
        cdef cnp.npy_intp *d
        cdef cnp.npy_intp n, c, h, w
        cdef Py_ssize_t size
        cdef int typenum, ndim
        # Through numpy's C API: this is on the path of every single-image prediction.
        if not isinstance(x, np.ndarray):
            raise ValueError(f"x must be a numpy array, got {type(x).__name__}")
        a = <cnp.ndarray>x
        ndim = cnp.PyArray_NDIM(a)
        if not (ndim == 4 or (self.in_c == 1 and (ndim == 3 or ndim == 2))):
            raise ValueError(f"x must be a 4-D (N, C, H, W) array (or, with one channel, (N, H, W) or (H, W)), "
                             f"got shape {x.shape}")
        if not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_ISBEHAVED_RO(a):
            raise ValueError("x must be C-contiguous, aligned and in native byte order")
        d = cnp.PyArray_DIMS(a)
        n = d[0] if ndim >= 3 else 1
        c = d[1] if ndim == 4 else 1
        h, w = d[ndim - 2], d[ndim - 1]
        if n > 0x7FFFFFFF:
            raise ValueError("too many images in one call")
        if normalize:
            if c != self.in_c or not (0 < h <= self.in_h and 0 < w <= self.in_w):
                raise ValueError(f"images must be ({self.in_c}, <={self.in_h}, <={self.in_w}) each, got shape "
                                 f"{x.shape}")
        elif c != self.in_c or h != self.in_h or w != self.in_w:
            raise ValueError(f"normalized input must be (N,) + {self.input_shape}, got shape {x.shape}")
        typenum = cnp.PyArray_TYPE(a)
        size = cnp.PyArray_SIZE(a)
        inp.data = cnp.PyArray_DATA(a)
        if typenum == cnp.NPY_UINT8:
            if not normalize:
                raise TypeError("uint8 pixels need normalize=True")
            inp.dtype = LF_U8
        elif typenum == cnp.NPY_FLOAT32:
            if not finite(<const float *>inp.data, size):
                raise ValueError("x contains NaN or infinity")
            if normalize and not unit_range(<const float *>inp.data, size):
                raise ValueError("float pixels must lie in [0, 1] (0 = background, 1 = ink)")
            inp.dtype = LF_F32
        else:
            raise TypeError(f"x must be uint8 or float32, got {x.dtype}")
        inp.c, inp.h, inp.w, inp.normalize = c, h, w, normalize
        return n

    cdef cnp.ndarray _output(self, Py_ssize_t n, bint flat=False):
        cdef cnp.npy_intp dims[4]
        if flat:
            dims[0], dims[1] = n, self.out_c * self.out_h * self.out_w
            return cnp.PyArray_EMPTY(2, dims, cnp.NPY_FLOAT32, 0)
        dims[0], dims[1], dims[2], dims[3] = n, self.out_c, self.out_h, self.out_w
        return cnp.PyArray_EMPTY(4, dims, cnp.NPY_FLOAT32, 0)

    def forward(self, x, bint normalize=False, bint flat=False):
        """Run the network on x, (N, C, H, W) C-contiguous uint8 or float32 (with one input channel, also
        (N, H, W), or (H, W) for one image).

        normalize=False: x is float32 of exactly input_shape per image, the first layer's input as it is.
        normalize=True: x holds pixels, uint8 0-255 or float32 in [0, 1], 0 the background; they map to
        the paper's [-0.1, 1.175] and an image smaller than input_shape is centred with background around.
        Returns (N,) + output_shape float32, or (N, C*H*W) with flat. FloatingPointError when the output is
        not finite: from finite inputs and weights that means float32 overflowed (weights far too large),
        and NaN is no answer. RuntimeError while another thread trains the parameters (guard).
        """
        cdef lf_input inp
        cdef cnp.ndarray out
        cdef int rc
        cdef bint ok
        cdef Py_ssize_t n = self._input(x, normalize, &inp)
        out = self._output(n, flat)
        # A read as Guard.reading() makes one, less its nesting count: nothing from here to exit_read can
        # call back into Python code that would start training on this thread.
        self.guard.enter_read()
        if n == 0:
            self.guard.exit_read()
            return out
        with nogil:
            rc = lf_forward(self.layers, self.nlayers, &inp, <int>n, <float *>cnp.PyArray_DATA(out))
            ok = rc == 0 and finite(<const float *>cnp.PyArray_DATA(out), cnp.PyArray_SIZE(out))
        self.guard.exit_read()
        _check(rc)
        if not ok:
            raise FloatingPointError("the network's output is not finite: float32 overflowed (weights or "
                                     "inputs far too large)")
        return out


# ---------------------------------------------------------------------------------------------------------
# int8 inference (csrc/int8.h: the quantization scheme and layouts; lenet_fast/int8.py builds the layers)

_I8_KINDS = {"conv": LF_I8_CONV, "pool": LF_I8_POOL, "full": LF_I8_FULL, "rbf": LF_I8_RBF}
I8_DEPTH = LF_I8_DEPTH  # weight rows are a multiple of this many bytes
I8_WEIGHT_MAX = LF_I8_WEIGHT_MAX  # |weight| at most this (csrc/simd_int8.h: AVX2's byte products stay exact)
I8_ISAS = ("baseline", "avx2", "avxvnni", "avx512", "avx512vnni")  # the int8 paths a build may have


cdef class Int8Network:
    """A network the int8 engine runs (csrc/int8.h), checked once and then run many times.

    Int8Network(input_shape, layers): input_shape is one image's (1, H, W) pixel field; each layer a dict:
      {"kind": "conv", "out": Co, "kernel": k, "weight": int8 (Co, depth) within +-I8_WEIGHT_MAX, "offset": int32 (Co,),
       "scale": float32 (Co,), "bias": float32 (Co,), "act": a, "out_scale": s or None, "out_zero": z}:
       a valid k x k convolution; weight rows hold the taps in (c, ky, kx) order, then zeros up to depth
       (the taps rounded up to I8_DEPTH). out_scale None: the output is float32 (an RBF layer may follow,
       or nothing); else codes of scale out_scale > 0 and zero point out_zero in 0..255;
      {"kind": "pool", "pool": "max"}: 2x2 max on codes (they keep their scale);
      {"kind": "pool", "pool": "trainable", "offset", "scale", "bias" (C,), "act", "out_scale", "out_zero"};
      {"kind": "full", "out": K, "weight": int8 (K, depth), ... as conv}: depth is the input's C*H*W rounded
       up to I8_DEPTH;
      {"kind": "rbf", "centers": float32 (K, In)}: on a float32 input.
    Every layer but an RBF one takes codes. Arrays must have exactly these dtypes; they are copied when not
    C-contiguous, and kept alive. Checked: shapes, finite scales and biases (a trainable pooling's scale,
    its coefficient times s_x, may be negative), out_scale finite and > 0, zero points in 0..255,
    offsets within what a sum can reach, and zero weights in every row's padding (the kernels read whatever
    bytes lie there)."""
    cdef lf_int8_layer *layers
    cdef int nlayers
    cdef readonly tuple input_shape, output_shape
    cdef readonly bint codes  # the output is uint8 codes (a network ending on a code layer), else float32
    cdef list _keep

    def __cinit__(self, input_shape, layers):
        self.layers = NULL
        self._keep = []
        layers, (c, h, w) = _layers_and_shape(layers, input_shape, "(1, H, W)")
        if c != 1:
            raise ValueError(f"the int8 network takes one channel of pixels, got input_shape {input_shape!r}")
        h, w = positive_int(h, "input height"), positive_int(w, "input width")
        if h * w > _MAX_TENSOR:
            raise ValueError(f"an input of {h}x{w} pixels is over {_MAX_TENSOR}")
        self.input_shape = (1, h, w)
        self.layers = <lf_int8_layer *>malloc(len(layers) * sizeof(lf_int8_layer))
        if self.layers == NULL:
            raise MemoryError()
        self.nlayers = len(layers)
        c = 1
        codes = True
        for i, spec in enumerate(layers):
            if not isinstance(spec, dict):
                raise TypeError(f"layer {i} must be a dict, got {type(spec).__name__}")
            c, h, w, codes = self._describe(i, spec, c, h, w, codes)
        self.output_shape = (c, h, w)
        self.codes = codes

    def __dealloc__(self):
        free(self.layers)

    cdef object _array(self, dict spec, str key, dtype, tuple shape, str where):
        a = spec.get(key)
        if not isinstance(a, np.ndarray) or a.dtype != dtype:
            raise TypeError(f"{where}: {key} must be a numpy array of {np.dtype(dtype).name}")
        if a.shape != shape:
            raise ValueError(f"{where}: {key} must have shape {shape}, got {a.shape}")
        a = np.ascontiguousarray(a)
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ValueError(f"{where}: {key} contains NaN or infinity")
        self._keep.append(a)
        return a

    cdef int _epilogue(self, lf_int8_layer *l, dict spec, int n, long long reach, str where) except -1:
        """The float32 step's arrays (offset, scale, bias: (n,)), activation and output quantization."""
        cdef const int32_t[::1] off = self._array(spec, "offset", np.int32, (n,), where)
        cdef const float[::1] scale = self._array(spec, "scale", np.float32, (n,), where)
        cdef const float[::1] bias = self._array(spec, "bias", np.float32, (n,), where)
        if n and np.max(np.abs(np.asarray(off, dtype=np.int64))) > reach:
            raise ValueError(f"{where}: offset must lie within +-{reach} (what a sum can reach)")
        l.offset, l.scale, l.bias = &off[0], &scale[0], &bias[0]
        l.act = _choice(spec.get("act", "none"), ACTIVATIONS, f"{where}: act")
        out_scale = spec.get("out_scale")
        l.out_codes = out_scale is not None
        l.out_inv_scale, l.out_zero = 1.0, 0.0
        if l.out_codes:
            if isinstance(out_scale, bool) or not isinstance(out_scale, (int, float, np.floating)) \
                    or not (0 < out_scale < float("inf")) or not (0 < 1.0 / out_scale < 3e38):
                raise ValueError(f"{where}: out_scale must be a positive finite number, got {out_scale!r}")
            zero = spec.get("out_zero")
            if isinstance(zero, bool) or not isinstance(zero, (int, np.integer)) or not 0 <= zero <= 255:
                raise ValueError(f"{where}: out_zero must be an integer in 0..255, got {zero!r}")
            l.out_inv_scale, l.out_zero = 1.0 / out_scale, zero
        return 0

    cdef tuple _describe(self, int i, dict spec, int c, int h, int w, bint codes):
        cdef lf_int8_layer *l = &self.layers[i]
        cdef const int8_t[:, ::1] weight
        cdef const float[:, ::1] centers
        where = f"int8 layer {i} ({spec.get('kind')!r})"
        l.kind = _choice(spec.get("kind"), _I8_KINDS, f"{where}: kind")
        l.in_c, l.in_h, l.in_w = c, h, w
        l.k = l.depth = 0
        l.weight, l.offset, l.scale, l.bias, l.centers = NULL, NULL, NULL, NULL, NULL
        l.pool, l.act, l.out_codes, l.out_inv_scale, l.out_zero = LF_POOL_MAX, LF_ACT_NONE, 1, 1.0, 0.0
        if l.kind != LF_I8_RBF and not codes:
            raise ValueError(f"{where}: takes codes, but the layer before it gives float32 (out_scale None)")
        if l.kind == LF_I8_RBF and codes:
            raise ValueError(f"{where}: takes float32, but the layer before it gives codes")
        if l.kind == LF_I8_CONV or l.kind == LF_I8_FULL:
            co = positive_int(spec.get("out"), f"{where}: out")
            if l.kind == LF_I8_CONV:
                k = positive_int(spec.get("kernel"), f"{where}: kernel")
                if k > h or k > w:
                    raise ValueError(f"{where}: a {k}x{k} kernel does not fit a {h}x{w} input")
                taps = c * k * k
                l.k, l.out_c, l.out_h, l.out_w = k, co, h - k + 1, w - k + 1
            else:
                taps = c * h * w
                l.out_c, l.out_h, l.out_w = co, 1, 1
            if taps > _MAX_TENSOR or co * l.out_h * l.out_w > _MAX_TENSOR:
                raise ValueError(f"{where}: over {_MAX_TENSOR} inputs or outputs per image")
            depth = -(-taps // LF_I8_DEPTH) * LF_I8_DEPTH
            weight = self._array(spec, "weight", np.int8, (co, depth), where)
            if depth > taps and np.asarray(weight)[:, taps:].any():
                raise ValueError(f"{where}: weight's padding columns {taps}..{depth - 1} must be zero")
            _weights_in_range(np.asarray(weight), where)
            l.depth, l.weight = depth, &weight[0, 0]
            self._epilogue(l, spec, co, 255 * 128 * <long long>depth, where)
        elif l.kind == LF_I8_POOL:
            if h < 2 or w < 2:
                raise ValueError(f"{where}: 2x2 pooling needs at least a 2x2 input, got {h}x{w}")
            l.out_c, l.out_h, l.out_w = c, h // 2, w // 2
            l.pool = _choice(spec.get("pool"), {"max": LF_POOL_MAX, "trainable": LF_POOL_TRAINABLE},
                             f"{where}: pool")
            if l.pool == LF_POOL_TRAINABLE:
                self._epilogue(l, spec, c, 4 * 255, where)
        else:
            n_in = c * h * w
            given = spec.get("centers")
            if not isinstance(given, np.ndarray) or given.ndim != 2:
                raise ValueError(f"{where}: centers must be a (K, {n_in}) array")
            centers = self._array(spec, "centers", np.float32, (given.shape[0], n_in), where)
            l.out_c, l.out_h, l.out_w = positive_int(centers.shape[0], f"{where}: number of centres"), 1, 1
            l.centers = &centers[0, 0]
            l.out_codes = 0
        return l.out_c, l.out_h, l.out_w, bool(l.out_codes)

    def forward(self, x):
        """Run the network on x, uint8 pixels (N, H, W) or (N, 1, H, W), C-contiguous, each image at most the
        input field (a smaller one is centred, code 0 around). Returns (N, C*H*W) of the output: float32, or
        uint8 codes (codes). FloatingPointError when a float32 output is not finite."""
        cdef cnp.ndarray a, out
        cdef cnp.npy_intp dims[2]
        cdef int rc, n, h, w
        cdef bint ok = True
        if not isinstance(x, np.ndarray):
            raise ValueError(f"x must be a numpy array, got {type(x).__name__}")
        a = <cnp.ndarray>x
        if a.dtype != np.uint8:
            raise TypeError(f"x must be uint8 pixels, got {x.dtype}")
        if not (a.ndim == 3 or (a.ndim == 4 and a.shape[1] == 1)):
            raise ValueError(f"x must be (N, H, W) or (N, 1, H, W), got shape {x.shape}")
        if not cnp.PyArray_IS_C_CONTIGUOUS(a):
            raise ValueError("x must be C-contiguous")
        h, w = a.shape[a.ndim - 2], a.shape[a.ndim - 1]
        if not (0 < h <= self.input_shape[1] and 0 < w <= self.input_shape[2]):
            raise ValueError(f"images must be at most {self.input_shape[1]}x{self.input_shape[2]}, got shape {x.shape}")
        if a.shape[0] > 0x7FFFFFFF:
            raise ValueError("too many images in one call")
        n = a.shape[0]
        dims[0], dims[1] = n, self.output_shape[0] * self.output_shape[1] * self.output_shape[2]
        out = cnp.PyArray_EMPTY(2, dims, cnp.NPY_UINT8 if self.codes else cnp.NPY_FLOAT32, 0)
        if n == 0:
            return out
        with nogil:
            rc = lf_int8_forward(self.layers, self.nlayers, <const uint8_t *>cnp.PyArray_DATA(a), h, w, n,
                                 cnp.PyArray_DATA(out))
        _check(rc)
        if not self.codes:
            with nogil:
                ok = finite(<const float *>cnp.PyArray_DATA(out), cnp.PyArray_SIZE(out))
        if not ok:
            raise FloatingPointError("the int8 network's output is not finite: float32 overflowed")
        return out


def _weights_in_range(w, where):
    if w.size and np.abs(w.astype(np.int16)).max() > LF_I8_WEIGHT_MAX:
        raise ValueError(f"{where}: int8 weights must lie within +-{LF_I8_WEIGHT_MAX}")


def int8_gemm(a, w):
    """The int8 engine's integer kernel alone (tests): a uint8 (M, depth), w int8 (K, depth) within
    +-I8_WEIGHT_MAX, depth a multiple of I8_DEPTH, both C-contiguous; returns c int32 (K, M),
    c[j, i] = sum_t a[i, t] w[j, t]."""
    if not (isinstance(a, np.ndarray) and a.dtype == np.uint8 and a.ndim == 2 and a.flags.c_contiguous):
        raise TypeError("a must be a C-contiguous 2-D uint8 array")
    if not (isinstance(w, np.ndarray) and w.dtype == np.int8 and w.ndim == 2 and w.flags.c_contiguous):
        raise TypeError("w must be a C-contiguous 2-D int8 array")
    if a.shape[1] != w.shape[1] or a.shape[1] % LF_I8_DEPTH or a.shape[0] == 0 or w.shape[0] == 0:
        raise ValueError(f"a and w need the same depth, a positive multiple of {LF_I8_DEPTH}, and rows; got "
                         f"{a.shape} and {w.shape}")
    if a.shape[0] > _MAX_TENSOR or w.shape[0] > _MAX_TENSOR or a.shape[1] > _MAX_TENSOR:
        raise ValueError("too large")
    _weights_in_range(w, "w")
    cdef const uint8_t[:, ::1] av = a
    cdef const int8_t[:, ::1] wv = w
    c = np.empty((w.shape[0], a.shape[0]), dtype=np.int32)
    cdef int32_t[:, ::1] cv = c
    cdef int m = a.shape[0], depth = a.shape[1], nw = w.shape[0]
    with nogil:
        lf_int8_gemm(&av[0, 0], depth, m, &wv[0, 0], depth, nw, &cv[0, 0])
    return c


def int8_isa():
    """The int8 kernels' instruction-set path: the float32 path's name, or its VNNI form's ('avxvnni',
    'avx512vnni') where the CPU has it."""
    return lf_int8_isa_name().decode()


def select_int8_isa(name):
    """Force the int8 kernels' path (one of I8_ISAS), or with None follow the float32 path again;
    ValueError if this build or CPU lacks it."""
    cdef int rc
    if name is None:
        rc = lf_int8_select_isa(NULL)
    else:
        encoded = str(name).encode()
        rc = lf_int8_select_isa(encoded)
    if rc != 0:
        raise ValueError(f"int8 instruction-set path {name!r} is not built or not supported by this CPU")


def int8_isas():
    """The int8 paths this build and CPU run (of I8_ISAS). Leaves the default selection (the float32
    path's, select_int8_isa(None))."""
    found = []
    for name in I8_ISAS:
        if lf_int8_select_isa(name.encode()) == 0:
            found.append(name)
    lf_int8_select_isa(NULL)
    return found


# ---------------------------------------------------------------------------------------------------------
# Training

LOSSES = {"map": LF_LOSS_MAP, "rbf": LF_LOSS_RBF, "xent": LF_LOSS_XENT, "hinge": LF_LOSS_HINGE}
# the losses that give label -1 (not a digit) a meaning: MAP's rubbish class, cross-entropy's uniform target
REJECT_LOSSES = ("map", "xent")
OPTIMIZERS = {"sgd": LF_OPT_SGD, "adam": LF_OPT_ADAM, "sdlm": LF_OPT_SDLM, "adagrad": LF_OPT_ADAGRAD,
              "rmsprop": LF_OPT_RMSPROP, "adamw": LF_OPT_ADAMW}


cdef class Trainer:
    """Gradients and updates for a Network whose trainable arrays are all views into one flat vector.

    Trainer(network, params): params is a 1-D C-contiguous float32 array; every trainable array of the
    network (convolution and full weights and biases, trainable subsampling coefficients and biases) must
    lie inside it. Gradients come back in the same layout. The RBF centres are fixed. A Trainer is used by
    one thread at a time: a call while another thread is inside one raises RuntimeError.
    """
    cdef lf_trainer *trainer
    cdef lf_layer *layers  # the network's layers, with where each one's gradients go
    cdef readonly Network network
    cdef readonly object params
    cdef object _scratch  # the gradient of train()
    cdef object _lock

    def __cinit__(self, Network network, params):
        import threading
        self.trainer = NULL
        self.layers = NULL
        if not isinstance(params, np.ndarray) or params.dtype != np.float32 or params.ndim != 1 \
                or not params.flags.c_contiguous or not params.flags.writeable:
            raise TypeError("params must be a writable 1-D C-contiguous float32 numpy array")
        self.network, self.params = network, params
        self._lock = threading.Lock()
        self.layers = <lf_layer *>malloc(network.nlayers * sizeof(lf_layer))
        if self.layers == NULL:
            raise MemoryError()
        memcpy(self.layers, network.layers, network.nlayers * sizeof(lf_layer))
        base, end = params.__array_interface__["data"][0], params.nbytes
        for i, weight, a in network._trainable:
            at = a.__array_interface__["data"][0] - base
            if a.size and not (0 <= at and at + a.nbytes <= end):
                raise ValueError(f"layer {i}: its {'weight' if weight else 'bias'} is not a view into params")
            if weight:
                self.layers[i].weight_at = at // 4
            else:
                self.layers[i].bias_at = at // 4
        self.trainer = lf_trainer_new(self.layers, network.nlayers, params.shape[0])
        if self.trainer == NULL:
            raise MemoryError("cannot allocate the trainer's gradient slots")
        self._scratch = np.empty_like(params)

    def __dealloc__(self):
        lf_trainer_free(self.trainer)
        free(self.layers)

    def check_loss(self, loss, j, reject_j=None):
        """ValueError unless loss (a name in LOSSES) fits the network's output layer ("map" and "rbf" an
        RBF layer, "xent" a full one, "hinge" either) and j and reject_j (None: j) are positive numbers."""
        self._loss(loss, j, reject_j)

    cdef lf_loss _loss(self, loss, j, reject_j=None) except *:
        cdef lf_loss out
        out.kind = _choice(loss, LOSSES, "loss")
        rbf_head = self.layers[self.network.nlayers - 1].kind == LF_LAYER_RBF
        # hinge scores the logits, or the negative distances of an RBF head (the nearest centre scores best)
        out.sign = -1.0 if rbf_head else 1.0
        if out.kind != LF_LOSS_HINGE and rbf_head != (out.kind != LF_LOSS_XENT):
            raise ValueError(f"loss {loss!r} does not fit the network's "
                             f"{'RBF' if rbf_head else 'full'} output layer")
        for name, value in (("j", j), ("reject_j", j if reject_j is None else reject_j)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 < value < 1e30:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        out.j = j
        out.reject_j = j if reject_j is None else reject_j
        out.dout = NULL
        return out

    cdef cnp.ndarray _labels(self, labels, Py_ssize_t n, loss):
        return check_labels(labels, n, self.network.out_c * self.network.out_h * self.network.out_w, loss=loss)

    cdef tuple _check_dropout(self, dropout):
        """dropout (None, or (seed, epoch, offset) of integers, offset >= 0) as _set_dropout takes it."""
        if dropout is None:
            return None
        try:
            seed, epoch, offset = (operator.index(v) for v in dropout)
        except (TypeError, ValueError):
            raise ValueError(f"dropout must be None or (seed, epoch, offset) integers, got {dropout!r}") from None
        if offset < 0:
            raise ValueError(f"dropout's offset must be at least 0, got {offset!r}")
        return seed, epoch, offset

    cdef int _set_dropout(self, tuple dropout) except -1:
        """Sets the dropout layers for the next call (under the trainer's lock): None, the identity
        (evaluation); else (seed, epoch, offset): training masks of fit's seed and epoch, the call's first
        image at position offset of the epoch."""
        cdef lf_layer *l
        if dropout is not None:
            seed, epoch, offset = dropout
        for i in range(self.network.nlayers):
            l = &self.layers[i]
            if l.kind == LF_LAYER_DROPOUT:
                l.rate = 0.0 if dropout is None else self.network.layers[i].rate
                l.key = 0 if dropout is None else dropout_key(seed, epoch, i)
                l.first = 0 if dropout is None else offset
        return 0

    def gradient(self, x, labels, loss, j=10.0, double scale=1.0, bint second=False,
                 bint normalize=True, dropout=None, reject_j=None):
        """(grad, losses, out): the gradient of scale * (sum of the images' losses) in params' layout,
        each image's loss (N,) and the network's output (N, ...). second=True: the diagonal Gauss-Newton
        second derivatives instead of the gradient (lenet_fast.h). dropout: None (dropout layers are the
        identity) or (seed, epoch, offset), the masks of training (_dropout). reject_j: MAP's rubbish
        distance for the images labelled -1 (None: j)."""
        cdef lf_input inp
        cdef lf_loss ls = self._loss(loss, j, reject_j)
        if second and ls.kind == LF_LOSS_HINGE:
            raise ValueError("loss 'hinge' has no Gauss-Newton curvature (it is piecewise linear): SDLM cannot "
                             "train with it; use optimizer 'sgd' or 'adam', or loss "
                             f"{'map' if ls.sign < 0 else 'xent'!r}")
        cdef Py_ssize_t n = self.network._input(x, normalize, &inp)
        cdef cnp.ndarray y = self._labels(labels, n, loss), out = self.network._output(n)
        cdef cnp.ndarray grad = np.empty_like(self.params), losses = np.empty(n, dtype=np.float32)
        self._gradient(&inp, n, <const int64_t *>cnp.PyArray_DATA(y), &ls, scale, second, grad, losses, out,
                       NULL, self._check_dropout(dropout))
        return grad, losses, out

    def losses(self, out, labels, loss, j=10.0, reject_j=None):
        """(N,) float32: each image's loss, as gradient gives it, from the network's outputs out (N, K), K
        the output's size (a forward pass's, flat): evaluation without the backward pass. loss, j, reject_j
        as in gradient."""
        cdef lf_loss ls = self._loss(loss, j, reject_j)
        cdef int k = self.network.out_c * self.network.out_h * self.network.out_w, rc
        cdef cnp.ndarray o = float32_array(out, "out", (None, k))
        cdef Py_ssize_t n = o.shape[0]
        cdef cnp.ndarray y = self._labels(labels, n, loss), losses = np.empty(n, dtype=np.float32)
        with nogil:
            rc = lf_losses(&ls, <const float *>cnp.PyArray_DATA(o), <int>n, k, <const int64_t *>cnp.PyArray_DATA(y),
                           <float *>cnp.PyArray_DATA(losses))
        _check(rc)
        return losses

    cdef int _gradient(self, const lf_input *inp, Py_ssize_t n, const int64_t *labels, const lf_loss *ls,
                       float scale, int second, cnp.ndarray grad, cnp.ndarray losses, cnp.ndarray out,
                       float *dinput, tuple dropout) except -1:
        """lf_gradient on checked arguments, the GIL released, one call at a time."""
        cdef int rc
        if not self._lock.acquire(False):
            raise RuntimeError("this trainer is in use by another thread")
        try:
            self._set_dropout(dropout)
            with nogil:
                rc = lf_gradient(self.trainer, inp, <int>n, labels, ls, scale, second,
                                 <float *>cnp.PyArray_DATA(grad), <float *>cnp.PyArray_DATA(losses),
                                 <float *>cnp.PyArray_DATA(out), dinput)
        finally:
            self._lock.release()
        return _check(rc)

    def backward(self, x, dout, bint normalize=False):
        """(grad, dx, out): the backward pass from a chosen gradient dout at the output, (N,) + output_shape:
        the parameters' gradients (params' layout, summed over the images), the gradient with respect to
        the first layer's input, (N,) + input_shape (after normalization when normalize is set), and the
        output. That is the gradient of sum(out * dout) (lenet_fast.h, LF_LOSS_LINEAR): on a one-layer
        network, that layer's backward pass."""
        cdef lf_input inp
        cdef lf_loss ls
        cdef Py_ssize_t n = self.network._input(x, normalize, &inp)
        cdef cnp.ndarray out = self.network._output(n)
        d = float32_array(dout, "dout", (n,) + self.network.output_shape)
        cdef cnp.ndarray g = d
        cdef cnp.ndarray grad = np.empty_like(self.params), losses = np.empty(n, dtype=np.float32)
        cdef cnp.ndarray dx = np.empty((n,) + self.network.input_shape, dtype=np.float32)
        ls.kind, ls.j, ls.reject_j, ls.dout, ls.sign = LF_LOSS_LINEAR, 0, 0, <const float *>cnp.PyArray_DATA(g), 1.0
        self._gradient(&inp, n, NULL, &ls, 1.0, 0, grad, losses, out, <float *>cnp.PyArray_DATA(dx), None)
        return grad, dx, out

    def train(self, x, labels, batch_size, optimizer, loss, j=10.0, bint normalize=True, bint summed=False,
              dropout=None, reject_j=None):
        """Train on the images in order, batch_size at a time, each batch's mean gradient (its summed one
        with summed) followed by an update of params by optimizer (see _optimizer). Returns (losses, out)
        for every image, each from before its batch's update. dropout: as in gradient (fit passes its seed,
        the epoch and the position of x's first image in the epoch); reject_j: as in gradient."""
        cdef lf_input inp
        cdef lf_loss ls = self._loss(loss, j, reject_j)
        cdef Py_ssize_t n = self.network._input(x, normalize, &inp)
        cdef cnp.ndarray y = self._labels(labels, n, loss), out = self.network._output(n)
        cdef cnp.ndarray losses = np.empty(n, dtype=np.float32)
        cdef cnp.ndarray params = self.params, grad = self._scratch
        cdef lf_optimizer opt
        cdef int rc, bs = positive_int(batch_size, "batch_size")
        keep = _optimizer(optimizer, self.params.shape[0], &opt)
        drop = self._check_dropout(dropout)
        if n == 0:
            return losses, out
        if not self._lock.acquire(False):
            raise RuntimeError("this trainer is in use by another thread")
        try:
            self._set_dropout(drop)
            with nogil:
                rc = lf_train(self.trainer, &inp, <int>n, <const int64_t *>cnp.PyArray_DATA(y), &ls, bs, summed,
                              &opt, <float *>cnp.PyArray_DATA(params), <float *>cnp.PyArray_DATA(grad),
                              <float *>cnp.PyArray_DATA(losses), <float *>cnp.PyArray_DATA(out))
        finally:
            self._lock.release()
            optimizer.t = opt.t
        _check(rc)
        return losses, out


cdef float *_state(a, Py_ssize_t n, str name) except? NULL:
    if not isinstance(a, np.ndarray) or a.dtype != np.float32 or a.shape != (n,) or not a.flags.c_contiguous \
            or not a.flags.writeable:
        raise TypeError(f"{name} must be a writable C-contiguous float32 array of shape ({n},)")
    return <float *>cnp.PyArray_DATA(<cnp.ndarray>a)


cdef object _optimizer(o, Py_ssize_t n, lf_optimizer *opt):
    """Fills opt from an optimizer object's attributes (lenet_fast.optim): kind (a name in OPTIMIZERS); sdlm:
    step, each parameter's step size; the others: lr and weight_decay, and sgd: momentum, nesterov and m
    (the velocity); adagrad: eps and v (the sum of squares); rmsprop: alpha, eps, momentum, m (the
    velocity) and v (the mean square); adam and adamw: beta1, beta2, eps, t, m and v (the moments). Arrays
    are float32 (n,), updated in place. Returns what must stay alive."""
    opt.kind = _choice(o.kind, OPTIMIZERS, "optimizer kind")
    opt.m = opt.v = NULL
    opt.step = NULL
    opt.lr = opt.momentum = opt.weight_decay = opt.beta1 = opt.beta2 = opt.eps = opt.alpha = 0
    opt.nesterov = 0
    opt.t = 0
    if opt.kind == LF_OPT_SDLM:
        opt.step = _state(o.step, n, "optimizer.step")
        if not all_finite(o.step):
            raise ValueError("optimizer.step contains NaN or infinity")
        return (o.step,)
    opt.lr, opt.weight_decay = o.lr, o.weight_decay
    if opt.kind == LF_OPT_SGD:
        opt.momentum, opt.nesterov = o.momentum, o.nesterov
        opt.m = _state(o.m, n, "optimizer.m")
        return (o.m,)
    opt.eps = o.eps
    opt.v = _state(o.v, n, "optimizer.v")
    if opt.kind == LF_OPT_ADAGRAD:
        return (o.v,)
    opt.m = _state(o.m, n, "optimizer.m")
    if opt.kind == LF_OPT_RMSPROP:
        opt.alpha, opt.momentum = o.alpha, o.momentum
        return (o.m, o.v)
    opt.beta1, opt.beta2, opt.t = o.beta1, o.beta2, o.t
    return (o.m, o.v)


def update(params, grad, optimizer):
    """One update of params (1-D float32, in place) from grad by optimizer (see _optimizer)."""
    if not isinstance(params, np.ndarray) or params.ndim != 1:
        raise TypeError("params must be a 1-D float32 numpy array")
    cdef Py_ssize_t n = params.shape[0]
    cdef float *p = _state(params, n, "params")
    g = float32_array(grad, "grad", (n,))
    cdef const float[::1] gv = g
    cdef lf_optimizer opt
    keep = _optimizer(optimizer, n, &opt)
    if n:
        with nogil:
            lf_update(&opt, p, &gv[0], n)
    optimizer.t = opt.t


# ---------------------------------------------------------------------------------------------------------
# Elementwise kernels

def activation(x, act):
    """act(x) elementwise for any float array; returns float32 of x's shape."""
    cdef lf_act a = _choice(act, ACTIVATIONS, "act")
    xa = float32_array(x, "x")
    out = np.empty_like(xa)
    cdef const float[::1] xv = xa.reshape(-1)
    cdef float[::1] ov = out.reshape(-1)
    if xv.shape[0]:
        with nogil:
            lf_activation(&xv[0], xv.shape[0], a, &ov[0])
    return out


def softmax(x, bint log=False, bint negate=False):
    """Softmax (or log-softmax) over the last axis of a 2-D (N, K) array; negate takes it of -x."""
    xa = float32_array(x, "x", (None, None))
    if xa.shape[1] == 0:
        raise ValueError("softmax needs at least one class (K >= 1)")
    out = np.empty_like(xa)
    cdef const float[::1] xv = xa.reshape(-1)
    cdef float[::1] ov = out.reshape(-1)
    cdef int n = xa.shape[0], k = xa.shape[1]
    cdef int rc = 0
    if n:
        with nogil:
            rc = lf_softmax(&xv[0], n, k, -1.0 if negate else 1.0, log, &ov[0])
    _check(rc)
    return out


# ---------------------------------------------------------------------------------------------------------
# Pictures (csrc/lenet_fast.h: one image on the calling thread, the GIL released, so threads read several)

def morphology(image, k, bint closing):
    """The grey-level closing (closing=True) or opening of a 2-D float image by a k x k square, k odd,
    windows cut at the edges; returns float32 of its shape."""
    a = float32_array(image, "image", (None, None))
    cdef int kk = positive_int(k, "k", _MAX_DIM)
    if kk % 2 == 0:
        raise ValueError(f"k must be odd, got {kk}")
    cdef int h = positive_int(a.shape[0], "the image's height", _MAX_DIM)
    cdef int w = positive_int(a.shape[1], "the image's width", _MAX_DIM)
    out = np.empty_like(a)
    scratch = np.empty(lf_morphology_scratch(h, w, kk), np.float32)
    cdef const float[:, ::1] av = a
    cdef float[:, ::1] ov = out
    cdef float[::1] sv = scratch
    with nogil:
        lf_morphology(&av[0, 0], h, w, kk, closing, &ov[0, 0], &sv[0])
    return out


def ink_above_floor(gray, paper, bint dark, double min_paper, double sigmas, double min_contrast):
    """(ink or None, contrast, floor): a 2-D float image's ink against paper (an image of its shape, or one
    number) less the noise floor, csrc/ink.c's steps; None when nothing rises above the floor enough. dark:
    (paper - gray) / max(paper, min_paper), else gray - paper. float32 throughout."""
    g = float32_array(gray, "gray", (None, None))
    cdef int h = positive_int(g.shape[0], "the image's height", _MAX_DIM)
    cdef int w = positive_int(g.shape[1], "the image's width", _MAX_DIM)
    cdef float level = 0
    cdef const float[:, ::1] pv
    cdef const float *pp = NULL
    if np.ndim(paper) == 0:
        level = float32_array(paper, "paper")
    else:
        p = float32_array(paper, "paper", g.shape)
        pv = p
        pp = &pv[0, 0]
    ink = np.empty_like(g)
    scratch = np.empty(((h + 1) // 2) * ((w + 1) // 2), np.float32)
    cdef const float[:, ::1] gv = g
    cdef float[:, ::1] iv = ink
    cdef float[::1] sv = scratch
    cdef double contrast, floor
    cdef float mp = min_paper
    cdef int found
    with nogil:
        found = lf_ink(&gv[0, 0], pp, level, h, w, dark, mp, sigmas, min_contrast, &iv[0, 0], &sv[0], &contrast, &floor)
    return (ink if found else None), contrast, floor


def components(mask):
    """(labels, count): the 8-connected components of a 2-D boolean mask, labels int32 of its shape, 1..count
    in the raster order of each component's first pixel, 0 off the mask."""
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"mask must be a boolean array, got dtype {m.dtype}")
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    cdef int h = positive_int(m.shape[0], "the mask's height", _MAX_DIM)
    cdef int w = positive_int(m.shape[1], "the mask's width", _MAX_DIM)
    m = np.ascontiguousarray(m).view(np.uint8)
    labels = np.empty((h, w), np.int32)
    parent = np.empty(h * w + 1, np.int32)
    cdef const uint8_t[:, ::1] mv = m
    cdef int32_t[:, ::1] lv = labels
    cdef int32_t[::1] pv = parent
    cdef int32_t count
    with nogil:
        count = lf_components(&mv[0, 0], h, w, &lv[0, 0], &pv[0])
    return labels, int(count)


def component_stats(labels, int count, values=None):
    """(boxes, sums, peaks) of the components components() numbered 1..count in labels: boxes (count, 4)
    int32 (top, left, bottom, right; bottom and right exclusive), and the sum (float64) and maximum (float32)
    of values, a float image of labels' shape, over each one's pixels (None for both without values).
    Labels must lie in 0..count; a number with no pixel gets the box (h, w, 0, 0), sum 0 and maximum -inf."""
    lab = np.asarray(labels)
    if lab.dtype != np.int32 or lab.ndim != 2 or not lab.flags.c_contiguous:
        raise TypeError("labels must be a C-contiguous 2-D int32 array, as components() returns")
    v = None if values is None else float32_array(values, "values", lab.shape)
    cdef int h = lab.shape[0], w = lab.shape[1]
    if count < 0 or (lab.size and (lab.min() < 0 or lab.max() > count)):
        raise ValueError(f"labels must lie in 0..count (count={count})")
    boxes = np.empty((count, 4), np.int32)
    sums = None if v is None else np.empty(count, np.float64)
    peaks = None if v is None else np.empty(count, np.float32)
    if count == 0:
        return boxes, sums, peaks
    cdef const int32_t[:, ::1] lv = lab
    cdef const float[:, ::1] vv
    cdef const float *vp = NULL
    cdef double[::1] sv
    cdef float[::1] pv
    cdef double *sp = NULL
    cdef float *pp = NULL
    if v is not None:
        vv, sv, pv = v, sums, peaks
        vp, sp, pp = &vv[0, 0], &sv[0], &pv[0]
    cdef int32_t[:, ::1] bv = boxes
    with nogil:
        lf_component_stats(&lv[0, 0], h, w, count, vp, &bv[0, 0], sp, pp)
    return boxes, sums, peaks


_PICTURE_SIDE = 1 << 28  # a picture's side: keeps csrc/read_digit.c's border and row arithmetic inside a C int
PICTURE_OK, PICTURE_NO_INK, PICTURE_SPECK = LF_PICTURE_OK, LF_PICTURE_NO_INK, LF_PICTURE_SPECK


cdef lf_picture_params picture_params(params) except *:
    """The lf_picture_params of a mapping holding each of its fields by name (images.PICTURE_PARAMS)."""
    cdef lf_picture_params p
    p.work_size, p.polarity_size = params["work_size"], params["polarity_size"]
    p.light_window, p.min_window = params["light_window"], params["min_window"]
    p.min_size, p.adjacent, p.box, p.size = params["min_size"], params["adjacent"], params["box"], params["size"]
    p.flat_paper, p.min_paper = params["flat_paper"], params["min_paper"]
    p.noise_sigmas, p.min_contrast = params["noise_sigmas"], params["min_contrast"]
    p.ink_threshold, p.part_share = params["ink_threshold"], params["part_share"]
    p.mark_peak, p.part_reach, p.centre = params["mark_peak"], params["part_reach"], params["centre"]
    return p


def _gray_picture(g, name):
    """g, checked to be what images._gray returns: a C-contiguous float32 (H, W) array, H and W at least 1,
    finite (not converted: a copy here would be a hidden cost per picture; not range-checked: a composited
    colour may exceed 1 by a rounding, and the steps need no range)."""
    if not isinstance(g, np.ndarray) or g.dtype != np.float32 or not g.flags.c_contiguous:
        kind = f"dtype {g.dtype}{'' if g.flags.c_contiguous else ', not C-contiguous'}" if isinstance(g, np.ndarray) \
            else type(g).__name__
        raise TypeError(f"{name} must be a C-contiguous float32 array, got {kind}")
    if g.ndim != 2:
        raise ValueError(f"{name} must be 2-D (H, W), got shape {g.shape}")
    positive_int(g.shape[0], f"{name}'s height", _PICTURE_SIDE)
    positive_int(g.shape[1], f"{name}'s width", _PICTURE_SIDE)
    cdef const float[::1] v = g.reshape(-1)
    if not finite(&v[0], v.shape[0]):
        raise ValueError(f"{name} contains NaN or infinity")
    return g


def read_digits(grays, params):
    """(digits, status, specks, contrasts, floors): each gray picture's MNIST form, csrc/read_digit.c's
    steps 2-8, all in one call with the GIL released and one workspace, sized for the largest picture.

    grays: a non-empty list of C-contiguous float32 (H, W) arrays (levels in [0, 1]), as images._gray returns;
    params: a mapping of lf_picture_params's fields (images.PICTURE_PARAMS). digits (N, size, size) uint8,
    zero where status is not PICTURE_OK; status (N,) int32: PICTURE_OK, PICTURE_NO_INK (contrasts and floors
    (N,) float64 say by how little ink stood out) or PICTURE_SPECK (specks (N,) int32: the digit's size).
    TypeError for a non-list or an array of another dtype or layout; ValueError for an empty list, a shape
    other than (H, W) with H, W >= 1, or NaN or infinity."""
    if not isinstance(grays, list):
        raise TypeError(f"grays must be a list of arrays, got {type(grays).__name__}")
    cdef Py_ssize_t n = len(grays), i
    if n == 0:
        raise ValueError("grays is empty: no picture to read")
    cdef lf_picture_params p = picture_params(params)
    held = [_gray_picture(g, f"grays[{i}]") for i, g in enumerate(grays)]  # kept alive through the call
    cdef size_t need = 0
    cdef const float **pixels = <const float **>malloc(n * sizeof(float *))
    cdef int *shape = <int *>malloc(2 * n * sizeof(int))
    if pixels == NULL or shape == NULL:
        free(pixels)
        free(shape)
        raise MemoryError("no memory for the pictures' list")
    try:
        for i, g in enumerate(held):
            pixels[i] = <const float *>cnp.PyArray_DATA(g)
            shape[2 * i], shape[2 * i + 1] = g.shape[0], g.shape[1]
            need = max(need, lf_read_digit_workspace(shape[2 * i], shape[2 * i + 1], &p))
        digits = np.zeros((n, p.size, p.size), np.uint8)
        status = np.empty(n, np.int32)
        specks = np.empty(n, np.int32)
        contrasts = np.empty(n, np.float64)
        floors = np.empty(n, np.float64)
        workspace = np.empty(need, np.uint8)
        run_pictures(pixels, shape, n, &p, <uint8_t *>cnp.PyArray_DATA(digits), <int32_t *>cnp.PyArray_DATA(status),
                     <int32_t *>cnp.PyArray_DATA(specks), <double *>cnp.PyArray_DATA(contrasts),
                     <double *>cnp.PyArray_DATA(floors), cnp.PyArray_DATA(workspace))
    finally:
        free(pixels)
        free(shape)
    return digits, status, specks, contrasts, floors


cdef void run_pictures(const float **pixels, const int *shape, Py_ssize_t n, const lf_picture_params *p,
                       uint8_t *digits, int32_t *status, int32_t *specks, double *contrasts, double *floors,
                       void *workspace) noexcept:
    cdef lf_picture_result r
    cdef Py_ssize_t i
    cdef size_t field = <size_t>p.size * p.size
    with nogil:
        for i in range(n):
            lf_read_digit(pixels[i], shape[2 * i], shape[2 * i + 1], p, digits + i * field, workspace, &r)
            status[i], specks[i], contrasts[i], floors[i] = r.status, r.speck, r.contrast, r.floor


def picture_ink(gray, params):
    """(ink or None, contrast, floor): read_digit's steps 3-4 on a 2-D float image in [0, 1] (csrc/read_digit.c:
    lf_picture_ink): its ink, float32 of its shape, less the noise floor; None when nothing stands out in
    either polarity, contrast and floor then saying by how little. params as read_digits takes them."""
    g = float32_array(gray, "gray", (None, None))
    cdef int h = positive_int(g.shape[0], "the image's height", _MAX_DIM)
    cdef int w = positive_int(g.shape[1], "the image's width", _MAX_DIM)
    cdef lf_picture_params p = picture_params(params)
    ink = np.empty_like(g)
    workspace = np.empty(lf_picture_ink_workspace(h, w, &p), np.uint8)
    cdef const float[:, ::1] gv = g
    cdef float[:, ::1] iv = ink
    cdef void *ws = cnp.PyArray_DATA(workspace)
    cdef double contrast, floor
    cdef int found
    with nogil:
        found = lf_picture_ink(&gv[0, 0], h, w, &p, &iv[0, 0], ws, &contrast, &floor)
    return (ink if found else None), contrast, floor


def paper(gray, bint dark, params):
    """The paper under uneven light of a 2-D float image (csrc/read_digit.c: lf_paper): its closing (dark) or
    opening over a window wider than a stroke, halved first when both sides allow; float32 of its shape.
    params as read_digits takes them."""
    g = float32_array(gray, "gray", (None, None))
    cdef int h = positive_int(g.shape[0], "the image's height", _MAX_DIM)
    cdef int w = positive_int(g.shape[1], "the image's width", _MAX_DIM)
    cdef lf_picture_params p = picture_params(params)
    out = np.empty_like(g)
    workspace = np.empty(lf_paper_workspace(h, w, &p), np.uint8)
    cdef const float[:, ::1] gv = g
    cdef float[:, ::1] ov = out
    cdef void *ws = cnp.PyArray_DATA(workspace)
    with nogil:
        lf_paper(&gv[0, 0], h, w, dark, &p, &ov[0, 0], ws)
    return out


def mnist_form(ink, params):
    """The (size, size) uint8 MNIST form of an ink map (csrc/read_digit.c: lf_mnist_form, read_digit's steps
    6-8): a 2-D float array, non-negative, with some ink (a positive maximum), taken in float64. params as
    read_digits takes them. ValueError for negative values or no ink."""
    a = np.asarray(ink)
    if a.dtype.kind != "f":
        raise TypeError(f"ink must be a floating-point array, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"ink must be 2-D (H, W), got shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    cdef int h = positive_int(a.shape[0], "the ink's height", _MAX_DIM)
    cdef int w = positive_int(a.shape[1], "the ink's width", _MAX_DIM)
    if not np.isfinite(a).all() or a.min() < 0 or a.max() <= 0:
        raise ValueError("ink must be finite and non-negative, with a positive maximum")
    cdef lf_picture_params p = picture_params(params)
    out = np.empty((p.size, p.size), np.uint8)
    workspace = np.empty(lf_mnist_form_workspace(h, w, &p), np.uint8)
    cdef const double[:, ::1] av = a
    cdef uint8_t[:, ::1] ov = out
    cdef void *ws = cnp.PyArray_DATA(workspace)
    with nogil:
        lf_mnist_form(&av[0, 0], h, w, &p, &ov[0, 0], ws)
    return out


# ---------------------------------------------------------------------------------------------------------
# Build facts and threads

def isa():
    """The instruction-set path the kernels run on: 'avx512', 'avx2' or 'baseline'."""
    return lf_isa_name().decode()


def select_isa(name):
    """Force an instruction-set path (for tests and benchmarks); ValueError if this CPU lacks it."""
    if lf_select_isa(str(name).encode()) != 0:
        raise ValueError(f"instruction-set path {name!r} is not built or not supported by this CPU")


def openmp_enabled():
    return bool(lf_openmp_enabled())


MAX_THREADS = LF_MAX_THREADS  # csrc/lenet_fast.h says why this bound


def get_num_threads():
    """OpenMP's thread count for the calling thread's kernel calls; 1 without OpenMP, and in a process
    forked after it had started OpenMP threads."""
    return lf_get_num_threads()


def set_num_threads(n):
    """Sets the calling thread's kernel threads to n, an integer (int, numpy integer or anything with
    __index__; not a bool) in 1..MAX_THREADS, else ValueError. MemoryError, the setting unchanged, when n
    threads cannot be created now; RuntimeError for n > 1 in a process forked after it had started
    OpenMP threads (csrc/dispatch.c)."""
    n = positive_int(n, "the number of threads", LF_MAX_THREADS)
    rc = lf_set_num_threads(n)
    if rc == LF_ERR_FORKED:
        raise RuntimeError("this process was forked after it had started OpenMP threads, whose pool a forked "
                           "child does not inherit: its kernels run on one thread. For multithreaded child "
                           "processes use the 'spawn' or 'forkserver' start method "
                           "(multiprocessing.get_context('spawn'))")
    if rc == LF_ERR_THREADS:
        raise MemoryError(f"cannot create {n} threads (memory or the process's thread limit is short); the "
                          f"kernels keep {lf_get_num_threads()}")
