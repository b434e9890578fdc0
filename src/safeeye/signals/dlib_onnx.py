"""dlib's 128-d face-embedding ResNet run in onnxruntime: same network, same weights, ~10x faster.

``convert`` reads dlib's serialized ``dlib_face_recognition_resnet_model_v1.dat`` (the
``loss_metric<fc_no_bias<128,avg_pool_everything<...>>>`` network of dlib's
``tools/python/src/face_recognition.cpp``) and writes an equivalent ONNX graph. The protobuf is
encoded here by hand (a few ONNX messages), so neither ``onnx`` nor ``protobuf`` is needed.

What dlib's forward pass does, and the graph reproduces:

* input (``input_rgb_image_sized<150>``): ``(pixel - avg) / 256`` per channel, the averages
  read from the file (122.782, 117.001, 104.298);
* ``con``: cross-correlation with bias; ``affine``: per-channel ``x * gamma + beta`` (folded
  into the preceding convolution, as onnxruntime would do anyway); ``relu``; ``max_pool`` and
  ``avg_pool`` without padding;
* ``add_prev``: the output has the larger size in every dimension and the smaller input counts
  as zero where it has no element (at the end of channels, rows and columns). The
  down-sampling blocks add a 2x2 average pool of the block input (fewer channels; one more
  row and column at the 8->3 step) to the block output, so zero padding is needed there;
* ``avg_pool_everything``: the mean over rows and columns; ``fc_no_bias``: ``x @ W``;
* ``loss_metric`` returns the 128 values as they are: no normalisation.

``compute_face_descriptor(chip)`` with the default ``num_jitters=0`` is exactly this forward pass
on the chip (cast to double), so ``OnnxFaceEncoder.predict`` returns the same embeddings up to
float32 summation order (max abs difference ~1e-6).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from safeeye.signals.base import LazyModel
from safeeye.signals.onnx import inference_session

CHIP_SIZE = 150
EMBEDDING_DIM = 128
DAT_NAME = "dlib_face_recognition_resnet_model_v1.dat"
# Part of the cache key: bump it whenever the graph this module writes changes.
CONVERTER_VERSION = 1
_BATCH = 32  # faces per onnxruntime call (bounds the activation memory of big lists)


def default_dat_path() -> Path:
    """dlib's ResNet weights in the installed ``face-recognition-models`` package (found without
    importing it: its ``__init__`` needs the deprecated ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the face-recognition-models package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models" / DAT_NAME


# ---------------------------------------------------------------------------------------------
# dlib's serialization (dlib/serialize.h, dlib/cuda/tensor.h)


class DlibFormatError(ValueError):
    """The file is not the dlib network this converter understands."""


class _Reader:
    """Sequential reader of dlib's portable binary format."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def int(self) -> int:
        """dlib's packed integer: a control byte (bit 7: negative, low bits: byte count), then
        that many little-endian bytes."""
        if self.pos >= len(self.data):
            raise DlibFormatError("truncated file")
        control = self.data[self.pos]
        size = control & 0x0F
        start = self.pos + 1
        if size > 8 or start + size > len(self.data):
            raise DlibFormatError(f"bad integer at byte {self.pos}")
        value = int.from_bytes(self.data[start : start + size], "little")
        self.pos = start + size
        return -value if control & 0x80 else value

    def str(self) -> str:
        size = self.int()
        if size < 0 or self.pos + size > len(self.data):
            raise DlibFormatError(f"bad string at byte {self.pos}")
        text = self.data[self.pos : self.pos + size].decode("latin-1")
        self.pos += size
        return text

    def float(self) -> float:
        """dlib's portable float: mantissa and exponent as packed integers. A zero mantissa
        encodes 0 (or inf/nan through the exponent, which a usable network never holds)."""
        mantissa, exponent = self.int(), self.int()
        return 0.0 if mantissa == 0 else float(mantissa * 2.0**exponent)

    def bool(self) -> bool:
        char = self.data[self.pos : self.pos + 1]
        if char not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool at byte {self.pos}")
        self.pos += 1
        return char == b"1"

    def tensor(self) -> np.ndarray:
        """A ``resizable_tensor`` (version 2: four dims, then raw little-endian float32)."""
        version = self.int()
        if version != 2:
            raise DlibFormatError(f"tensor version {version} at byte {self.pos} (expected 2)")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        if self.pos + 4 * count > len(self.data):
            raise DlibFormatError("truncated tensor")
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos += 4 * count
        return values.reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        """An ``alias_tensor``: only a shape (version 1)."""
        if self.int() != 1:
            raise DlibFormatError(f"bad alias_tensor at byte {self.pos}")
        n, k, nr, nc = (self.int() for _ in range(4))
        return n, k, nr, nc


@dataclass
class _Layer:
    kind: str  # "con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc"
    weights: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    bias: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    window: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)


@dataclass
class _Network:
    means: tuple[float, float, float]
    size: tuple[int, int]
    layers: list[_Layer] = field(default_factory=list)  # input side first


def _read_details(r: _Reader) -> _Layer:
    name = r.str()
    if name in ("con_4", "con_5"):
        params = r.tensor().reshape(-1)
        filters, _nr, _nc, stride_y, stride_x, pad_y, pad_x = (r.int() for _ in range(7))
        shape = r.alias()
        bias_shape = r.alias()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.float()
        use_bias = r.bool() if name == "con_5" else True
        size = int(np.prod(shape))
        if shape[0] != filters or params.size != size + (filters if use_bias else 0):
            raise DlibFormatError(f"inconsistent con_ layer {shape} {bias_shape} {params.size}")
        bias = params[size : size + filters] if use_bias else np.zeros(filters, np.float32)
        return _Layer(
            "con",
            params[:size].reshape(shape),
            bias,
            (shape[2], shape[3]),
            (stride_y, stride_x),
            (pad_y, pad_x),
        )
    if name == "affine_":
        params = r.tensor().reshape(-1)
        gamma, beta = r.alias(), r.alias()
        mode = r.int()
        channels = gamma[1]
        if mode != 0 or gamma != (1, channels, 1, 1) or beta != gamma:
            raise DlibFormatError("only affine layers in CONV_MODE are supported")
        return _Layer("affine", params[:channels], params[channels : 2 * channels])
    if name == "relu_":
        return _Layer("relu")
    if name == "add_prev_":
        return _Layer("add_prev")
    if name in ("max_pool_2", "avg_pool_2"):
        nr, nc, stride_y, stride_x, pad_y, pad_x = (r.int() for _ in range(6))
        kind = "max_pool" if name == "max_pool_2" else "avg_pool"
        return _Layer(kind, window=(nr, nc), stride=(stride_y, stride_x), padding=(pad_y, pad_x))
    if name == "fc_2":
        outputs, inputs = r.int(), r.int()
        params = r.tensor().reshape(-1)
        weights, biases = r.alias(), r.alias()
        bias_mode = r.int()
        for _ in range(4):
            r.float()
        if weights[:2] != (inputs, outputs) or bias_mode != 1 or np.prod(biases) != 0:
            raise DlibFormatError("only fc_no_bias layers are supported")
        return _Layer("fc", params[: inputs * outputs].reshape(inputs, outputs))
    raise DlibFormatError(f"unsupported dlib layer {name!r}")


def _parse(data: bytes) -> _Network:
    """The layers of dlib's serialized ``loss_metric`` network, input side first.

    ``add_loss_layer``, ``add_layer``, ``add_tag_layer`` and ``add_skip_layer`` each write a
    version number and then their sub-network, so the file starts with one version number per
    layer (outermost first), then the input layer, then each computational layer's details
    followed by its state (3 bools and 3 or 4 scratch tensors). Tags and skips carry no data: the
    topology comes from the known architecture (see ``_Builder``).
    """
    r = _Reader(data)
    if r.int() != 1:
        raise DlibFormatError("not a dlib add_loss_layer")
    loss = r.str()
    if loss not in ("loss_metric", "loss_metric_2"):
        raise DlibFormatError(f"unexpected loss layer {loss!r}")
    r.float()  # margin
    if loss == "loss_metric_2":
        r.float()  # distance threshold
    versions: list[int] = []
    while r.data[r.pos : r.pos + 2] in (b"\x01\x01", b"\x01\x02", b"\x01\x03"):
        versions.append(r.int())
    if not versions or versions[-1] != 3:
        raise DlibFormatError("expected an add_layer over the input layer (version 3)")
    if r.str() != "input_rgb_image_sized":
        raise DlibFormatError("expected input_rgb_image_sized")
    means = (r.float(), r.float(), r.float())
    size = (r.int(), r.int())
    net = _Network(means=means, size=size)
    for index in range(versions.count(2) + 1):
        layer = _read_details(r)
        for _ in range(3):  # setup called, gradient stale, getters disabled
            r.bool()
        for _ in range(3):  # x_grad, cached_output, params_grad (grad_final for the first)
            r.tensor()
        if index == 0:
            r.int()  # sample expansion factor
        net.layers.append(layer)
    if r.pos != len(data):
        raise DlibFormatError(f"{len(data) - r.pos} trailing bytes")
    return net


# ---------------------------------------------------------------------------------------------
# A minimal ONNX protobuf writer (field numbers from onnx/onnx.proto)

_FLOAT, _UINT8, _INT64 = 1, 2, 7
_ATTR_INT, _ATTR_INTS = 2, 7


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 as two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _len_field(number: int, payload: bytes | str) -> bytes:
    raw = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(raw)) + raw


def _tensor_proto(name: str, array: np.ndarray) -> bytes:
    dtype = {np.dtype(np.float32): _FLOAT, np.dtype(np.int64): _INT64}[array.dtype]
    dims = b"".join(_int_field(1, d) for d in array.shape)
    raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    return dims + _int_field(2, dtype) + _len_field(8, name) + _len_field(9, raw)


def _attribute(name: str, value: int | list[int]) -> bytes:
    if isinstance(value, int):
        return _len_field(1, name) + _int_field(20, _ATTR_INT) + _int_field(3, value)
    ints = b"".join(_int_field(8, v) for v in value)
    return _len_field(1, name) + _int_field(20, _ATTR_INTS) + ints


def _value_info(name: str, elem_type: int, dims: list[int | str]) -> bytes:
    shape = b"".join(
        _len_field(1, _len_field(2, d) if isinstance(d, str) else _int_field(1, d)) for d in dims
    )
    tensor_type = _int_field(1, elem_type) + _len_field(2, shape)
    return _len_field(1, name) + _len_field(2, _len_field(1, tensor_type))


class _Graph:
    """Collects nodes and initializers; tracks each value's static (C, H, W) shape."""

    def __init__(self) -> None:
        self.nodes: list[bytes] = []
        self.initializers: list[bytes] = []
        self._count = 0

    def name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, array: np.ndarray, prefix: str = "w") -> str:
        name = self.name(prefix)
        self.initializers.append(_len_field(5, _tensor_proto(name, array)))
        return name

    def op(
        self, op_type: str, inputs: list[str], output: str | None = None, **attrs: int | list[int]
    ) -> str:
        output = output or self.name(op_type.lower())
        node = b"".join(_len_field(1, i) for i in inputs) + _len_field(2, output)
        node += _len_field(3, output) + _len_field(4, op_type)
        node += b"".join(_len_field(5, _attribute(k, v)) for k, v in attrs.items())
        self.nodes.append(_len_field(1, node))
        return output

    def model(self, inputs: list[bytes], outputs: list[bytes], opset: int = 17) -> bytes:
        graph = b"".join(self.nodes) + _len_field(2, "dlib_face_recognition_resnet_model_v1")
        graph += b"".join(self.initializers)
        graph += b"".join(_len_field(11, i) for i in inputs)
        graph += b"".join(_len_field(12, o) for o in outputs)
        opset_import = _len_field(1, "") + _int_field(2, opset)
        return (
            _int_field(1, 8)  # IR version 8 (onnxruntime >= 1.14)
            + _len_field(2, "safeeye.signals.dlib_onnx")
            + _len_field(3, str(CONVERTER_VERSION))
            + _len_field(7, graph)
            + _len_field(8, opset_import)
        )


# ---------------------------------------------------------------------------------------------
# The graph


@dataclass
class _Value:
    name: str
    shape: tuple[int, int, int]  # (channels, rows, columns); the batch dimension is dynamic


def _out_size(size: int, window: int, stride: int, pad: int) -> int:
    return 1 + (size + 2 * pad - window) // stride


class _Builder:
    def __init__(self, layers: list[_Layer]) -> None:
        self.layers = layers
        self.i = 0
        self.g = _Graph()

    def peek(self) -> str | None:
        return self.layers[self.i].kind if self.i < len(self.layers) else None

    def take(self, kind: str) -> _Layer:
        if self.peek() != kind:
            raise DlibFormatError(f"layer {self.i}: expected {kind}, found {self.peek()}")
        self.i += 1
        return self.layers[self.i - 1]

    def conv_affine(self, x: _Value) -> _Value:
        """``affine<con<...>>`` as one Conv (gamma folded into the filters, beta into the bias)."""
        con, affine = self.take("con"), self.take("affine")
        if con.weights.shape[1] != x.shape[0]:
            raise DlibFormatError(f"layer {self.i}: conv input channels {con.weights.shape}")
        gamma = affine.weights.astype(np.float64)
        weights = con.weights.astype(np.float64) * gamma[:, None, None, None]
        bias = con.bias.astype(np.float64) * gamma + affine.bias
        (kh, kw), (sh, sw), (ph, pw) = con.window, con.stride, con.padding
        name = self.g.op(
            "Conv",
            [
                x.name,
                self.g.const(weights.astype(np.float32)),
                self.g.const(bias.astype(np.float32)),
            ],
            kernel_shape=[kh, kw],
            strides=[sh, sw],
            pads=[ph, pw, ph, pw],
        )
        shape = (
            con.weights.shape[0],
            _out_size(x.shape[1], kh, sh, ph),
            _out_size(x.shape[2], kw, sw, pw),
        )
        return _Value(name, shape)

    def relu(self, x: _Value) -> _Value:
        self.take("relu")
        return _Value(self.g.op("Relu", [x.name]), x.shape)

    def pool(self, x: _Value, kind: str) -> _Value:
        layer = self.take(kind)
        (kh, kw), (sh, sw), (ph, pw) = layer.window, layer.stride, layer.padding
        if ph or pw:  # dlib centres windows its own way when padded; this network has none
            raise DlibFormatError("padded pooling is not supported")
        op = "MaxPool" if kind == "max_pool" else "AveragePool"
        name = self.g.op(
            op, [x.name], kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw]
        )
        shape = (x.shape[0], _out_size(x.shape[1], kh, sh, ph), _out_size(x.shape[2], kw, sw, pw))
        return _Value(name, shape)

    def pad_to(self, x: _Value, shape: tuple[int, int, int]) -> _Value:
        """``x`` with zeros appended in each dimension up to ``shape`` (dlib's ``add_prev``)."""
        extra = [t - s for t, s in zip(shape, x.shape, strict=True)]
        if not any(extra):
            return x
        pads = np.array([0, 0, 0, 0, 0, *extra], dtype=np.int64)
        return _Value(self.g.op("Pad", [x.name, self.g.const(pads, "pads")]), shape)

    def add(self, a: _Value, b: _Value) -> _Value:
        self.take("add_prev")
        (ca, ha, wa), (cb, hb, wb) = a.shape, b.shape
        shape = (max(ca, cb), max(ha, hb), max(wa, wb))
        a, b = self.pad_to(a, shape), self.pad_to(b, shape)
        return _Value(self.g.op("Add", [a.name, b.name]), shape)

    def residual(self, x: _Value) -> _Value:
        """``relu<add_prev1<affine<con<relu<affine<con<tag1<x>>>>>>>>>`` or the down-sampling
        ``relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<...block...>>>>>``."""
        y = self.conv_affine(self.relu(self.conv_affine(x)))
        skip = self.pool(x, "avg_pool") if self.peek() == "avg_pool" else x
        return self.relu(self.add(skip, y))

    def build(self, net: _Network) -> bytes:
        rows, cols = net.size
        g = self.g
        # input_rgb_image_sized: (float(pixel) - avg) / 256 per channel, then NHWC -> NCHW
        pixels = g.op("Cast", ["chips"], to=_FLOAT)
        centered = g.op("Sub", [pixels, g.const(np.array(net.means, dtype=np.float32), "mean")])
        scaled = g.op("Mul", [centered, g.const(np.array([1 / 256], dtype=np.float32), "scale")])
        x = _Value(g.op("Transpose", [scaled], perm=[0, 3, 1, 2]), (3, rows, cols))

        x = self.relu(self.conv_affine(x))
        x = self.pool(x, "max_pool")
        while self.peek() == "con":
            x = self.residual(x)
        pool = self.take("avg_pool")
        if pool.window != (0, 0):
            raise DlibFormatError("expected avg_pool_everything before the fc layer")
        pooled = g.op("Flatten", [g.op("GlobalAveragePool", [x.name])], axis=1)
        fc = self.take("fc")
        if fc.weights.shape[0] != x.shape[0] or self.i != len(self.layers):
            raise DlibFormatError("unexpected layers at the network's output")
        g.op("MatMul", [pooled, g.const(np.ascontiguousarray(fc.weights))], output="embedding")
        outputs = fc.weights.shape[1]
        return g.model(
            [_value_info("chips", _UINT8, ["n", rows, cols, 3])],
            [_value_info("embedding", _FLOAT, ["n", outputs])],
        )


def convert(dat_path: Path) -> bytes:
    """ONNX model bytes equivalent to dlib's serialized face-recognition ResNet ``dat_path``.

    The model's input ``chips`` is ``(n, 150, 150, 3)`` uint8 RGB (aligned face chips as made by
    ``dlib.get_face_chip(img, shape, size=150, padding=0.25)``); its output ``embedding`` is
    ``(n, 128)`` float32.
    """
    net = _parse(Path(dat_path).read_bytes())
    return _Builder(net.layers).build(net)


# ---------------------------------------------------------------------------------------------
# The encoder


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class OnnxFaceEncoder(LazyModel[list[np.ndarray], np.ndarray]):
    """dlib's face embedding (``compute_face_descriptor`` of a 150x150 chip) in onnxruntime:
    ``predict`` turns 150x150x3 RGB ``uint8`` face chips into ``(len(chips), 128)`` float32
    embeddings.

    Converts on first use; with ``cache_dir`` the ONNX file is kept there, named after the
    ``.dat`` file's SHA-256, so later processes skip the conversion. Thread-safe.
    """

    def __init__(
        self, cache_dir: Path | None = None, threads: int = 1, dat_path: Path | None = None
    ) -> None:
        super().__init__()
        self.cache_dir = cache_dir
        self.threads = threads
        self.dat_path = dat_path
        self._session: Any = None

    def model_bytes(self) -> bytes:
        """The ONNX model, from the cache when there is one, else converted (and cached)."""
        dat = self.dat_path or default_dat_path()
        if self.cache_dir is None:
            return convert(dat)
        cached = (
            self.cache_dir / f"dlib_face_resnet_v1-{_sha256(dat)[:32]}-c{CONVERTER_VERSION}.onnx"
        )
        try:
            return cached.read_bytes()
        except FileNotFoundError:
            pass
        model = convert(dat)
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".dlib_onnx-", suffix=".tmp")
        except OSError:  # a read-only data dir only costs a conversion per process
            return model
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(model)
            os.replace(tmp, cached)  # atomic: concurrent processes never read a partial file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return model

    def _load(self) -> None:
        self._session = inference_session(self.model_bytes(), self.threads)

    def _predict(self, inputs: list[np.ndarray]) -> np.ndarray:
        if not inputs:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        for chip in inputs:
            if chip.shape != (CHIP_SIZE, CHIP_SIZE, 3) or chip.dtype != np.uint8:
                raise ValueError(
                    f"a face chip must be {CHIP_SIZE}x{CHIP_SIZE}x3 uint8 RGB, "
                    f"not {chip.shape} {chip.dtype}"
                )
        out = [
            self._session.run(["embedding"], {"chips": np.stack(inputs[i : i + _BATCH])})[0]
            for i in range(0, len(inputs), _BATCH)
        ]
        return np.concatenate(out).astype(np.float32, copy=False)
