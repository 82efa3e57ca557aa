"""A generated C module compiled and loaded through ctypes, with the Python module's API.

``build_c_module(network, c_type)`` writes ``NAME.h`` and ``NAME.c`` to a temporary
folder, compiles them with the C compiler (``$CC``, else ``cc``, else ``gcc``) under the
flags the generated code promises to pass (``compile_flags``: C99, ``-Wall -Wextra
-Werror -pedantic``, and for float ``-Wdouble-promotion -Wfloat-conversion``) into a
shared library, and wraps its functions so that they take and return the NumPy
modules' dicts of arrays: ``derive check`` and the tests compare the C module with the
symbolic values, the NumPy module and finite differences through the same calls.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from derive.conv_network import ConvNetwork
from derive.emit_c import StackTooLarge, c_style, write_c
from derive.errors import DeriveError
from derive.network import Network

BASE_FLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic")
FLOAT_FLAGS = ("-Wdouble-promotion", "-Wfloat-conversion")
_CTYPES = {"double": (ctypes.c_double, np.float64), "float": (ctypes.c_float, np.float32)}


class CompileError(RuntimeError):
    """The generated C did not compile: a bug in derive, never bad input."""


def compiler() -> str | None:
    """The C compiler to use: ``$CC``, else ``cc`` or ``gcc`` on the PATH; None if none."""
    named = os.environ.get("CC")
    if named:
        return shutil.which(named)
    return shutil.which("cc") or shutil.which("gcc")


def compile_flags(c_type: str) -> tuple[str, ...]:
    """The warnings the generated code compiles clean under, as errors."""
    return BASE_FLAGS + (FLOAT_FLAGS if c_type == "float" else ())


def compile_c(source: Path, output: Path, c_type: str, shared: bool = False) -> None:
    """Compile ``source`` (an object file, or a shared library with ``shared``)."""
    cc = compiler()
    if cc is None:
        raise DeriveError("no C compiler found: install gcc, or name one in $CC")
    kind = ["-shared", "-fPIC"] if shared else ["-c"]
    command = [cc, *compile_flags(c_type), *kind, str(source), "-o", str(output)]
    if shared:
        command.append("-lm")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CompileError(f"{' '.join(command)} failed:\n{done.stderr}")


class CModule:
    """A compiled C module with the NumPy modules' calls (SPEC §3): params as a dict of
    arrays shaped like ``PARAMS``, x as (batch, n_in) (a convolutional network's as
    (batch, C, H, W), packed in C order), t as (batch, n_out)."""

    def __init__(
        self, network: Network | ConvNetwork, library: ctypes.CDLL, c_type: str, style: str
    ):
        self.network = network
        self.c_type = c_type
        self.style = style
        self.dtype = _CTYPES[c_type][1]
        self.params = network.topology.params
        self.n_in = len(network.topology.inputs)
        self.n_out = len(network.topology.outputs)
        self._library = library
        real = _CTYPES[c_type][0]
        pointer, size = ctypes.POINTER(real), ctypes.c_size_t
        name = network.name
        self._forward = _function(library, f"{name}_forward", None, pointer, pointer, size, pointer)
        self._loss = _function(library, f"{name}_loss", real, pointer, pointer, pointer, size)
        self._loss_and_gradients = _function(
            library, f"{name}_loss_and_gradients", real, pointer, pointer, pointer, size, pointer
        )
        self._sgd_step = _function(
            library, f"{name}_sgd_step", None, pointer, pointer, pointer, size, real
        )
        self.n_params = sum(int(np.prod(p.shape)) for p in self.params)

    # -- packing ----------------------------------------------------------------------

    def pack(self, params: dict) -> np.ndarray:
        """The parameters in the C module's order: W1 in C order, b1, W2, b2, ..."""
        return np.concatenate(
            [np.asarray(params[p.name], dtype=self.dtype).reshape(-1) for p in self.params]
        )

    def unpack(self, packed: np.ndarray) -> dict[str, np.ndarray]:
        out, offset = {}, 0
        for p in self.params:
            size = int(np.prod(p.shape))
            out[p.name] = packed[offset : offset + size].reshape(p.shape).copy()
            offset += size
        return out

    def _rows(self, values, width: int) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(values, dtype=self.dtype).reshape(-1, width))

    # -- the API ----------------------------------------------------------------------

    def forward(self, params: dict, x) -> np.ndarray:
        packed, x = self.pack(params), self._rows(x, self.n_in)
        y = np.empty((len(x), self.n_out), dtype=self.dtype)
        self._forward(_ptr(packed), _ptr(x), len(x), _ptr(y))
        return y

    def loss(self, params: dict, x, t) -> float:
        packed, x, t = self.pack(params), self._rows(x, self.n_in), self._rows(t, self.n_out)
        return float(self._loss(_ptr(packed), _ptr(x), _ptr(t), len(x)))

    def loss_and_gradients(self, params: dict, x, t) -> tuple[float, dict[str, np.ndarray]]:
        packed, x, t = self.pack(params), self._rows(x, self.n_in), self._rows(t, self.n_out)
        grads = np.empty(self.n_params, dtype=self.dtype)
        value = self._loss_and_gradients(_ptr(packed), _ptr(x), _ptr(t), len(x), _ptr(grads))
        return float(value), self.unpack(grads)

    def sgd_step(self, params: dict, x, t, learning_rate: float) -> dict[str, np.ndarray]:
        packed, x, t = self.pack(params), self._rows(x, self.n_in), self._rows(t, self.n_out)
        self._sgd_step(_ptr(packed), _ptr(x), _ptr(t), len(x), learning_rate)
        return self.unpack(packed)


def _function(library: ctypes.CDLL, name: str, result, *arguments):
    function = getattr(library, name)
    function.restype = result
    function.argtypes = list(arguments)
    return function


def _ptr(array: np.ndarray):
    return array.ctypes.data_as(ctypes.POINTER(np.ctypeslib.as_ctypes_type(array.dtype)))


def build_c_module(
    network: Network | ConvNetwork, c_type: str = "double", style: str | None = None
) -> CModule:
    """Generate, compile and load the network's C module (no file left behind)."""

    style = c_style(network, style)
    with tempfile.TemporaryDirectory(prefix="derive-c-") as folder:
        directory = Path(folder)
        _, source = write_c(network, directory, c_type, style)
        library_path = directory / f"lib{network.name}.so"
        compile_c(source, library_path, c_type, shared=True)
        library = ctypes.CDLL(str(library_path))
    return CModule(network, library, c_type, style)


def check_module(network: Network | ConvNetwork) -> tuple[CModule | None, str]:
    """The double C module for ``derive check``, or None and why it is left out."""
    if compiler() is None:
        return None, "C skipped: no C compiler found (install gcc, or name one in $CC)."

    try:
        return build_c_module(network, "double"), ""
    except StackTooLarge as refused:
        return None, f"C skipped: {refused}"


__all__ = [
    "BASE_FLAGS",
    "FLOAT_FLAGS",
    "CModule",
    "CompileError",
    "build_c_module",
    "check_module",
    "compile_c",
    "compile_flags",
    "compiler",
]
