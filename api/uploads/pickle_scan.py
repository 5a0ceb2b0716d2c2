"""Would this pickle load with ``torch.load(weights_only=True)``? Decided without torch, running nothing.

The pickle inside a torch checkpoint (``<archive>/data.pkl``) is walked opcode by opcode with
``pickletools.genops`` over a *symbolic* stack machine that mirrors torch's weights-only unpickler
(``torch/_weights_only_unpickler.py``):

- only the opcodes that unpickler implements are accepted (protocol-2 subset: no ``STACK_GLOBAL``,
  ``INST``, ``OBJ``, ``EXT*``, ``FRAME``, ``PERSID`` …);
- ``GLOBAL`` may name only the allowlisted globals below — a strict subset of torch's own list,
  the ones plain checkpoints use (dense tensors, parameters, ordered dicts, storages, dtypes);
  anything else (``os.system``, ``builtins.eval``, a user class …) refuses the file;
- ``REDUCE`` / ``NEWOBJ`` may only call an allowlisted global, ``BUILD`` only touch a tensor,
  parameter or ordered dict, ``APPEND`` only lists, ``SETITEM`` only dicts, ``BINPERSID`` only name
  a storage ``('storage', <Storage type>, key, location, numel)``.

Allowed calls are *modelled*, never made: a tensor becomes a ``TensorRef`` (dtype, shape, storage
key), ``OrderedDict()`` a real empty ``OrderedDict`` and so on, so the result is the checkpoint's
structure with plain values (keys, configs, numbers) and references instead of tensors. Anything
this scanner accepts, torch's weights-only loader accepts too (the tests check it against torch); the
worker still loads every checkpoint with ``weights_only=True`` (defence in depth).
"""

from __future__ import annotations

import math
import pickletools
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_OPCODES = 50_000_000  # a 64 MiB data.pkl holds fewer; bounds the work on a hostile file
MAX_CONTAINER_ARGS = 10_000_000
MAX_BYTES_ARG = 1 << 26  # bytes built through _codecs.encode / bytearray


class UnsafePickleError(ValueError):
    """The pickle needs something ``weights_only=True`` refuses (code execution, unknown globals)."""


class MalformedPickleError(ValueError):
    """The data is not a well-formed pickle (truncated, bad stack use, unparsable opcode)."""


# Opcodes torch's weights-only unpickler implements; anything else is refused as it would be there.
ALLOWED_OPCODES = frozenset(
    {
        "PROTO", "STOP", "MARK", "NONE", "NEWTRUE", "NEWFALSE", "BININT", "BININT1", "BININT2", "LONG1",
        "BINFLOAT", "BINUNICODE", "SHORT_BINSTRING", "EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT",
        "EMPTY_SET", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "APPEND", "APPENDS", "SETITEM", "SETITEMS",
        "BINGET", "LONG_BINGET", "BINPUT", "LONG_BINPUT", "GLOBAL", "REDUCE", "NEWOBJ", "BUILD",
        "BINPERSID",
    }
)  # fmt: skip

# Storage classes named in persistent ids: dtype and bytes per element.
STORAGE_TYPES: dict[str, tuple[str, int]] = {
    "torch.DoubleStorage": ("float64", 8),
    "torch.FloatStorage": ("float32", 4),
    "torch.HalfStorage": ("float16", 2),
    "torch.BFloat16Storage": ("bfloat16", 2),
    "torch.LongStorage": ("int64", 8),
    "torch.IntStorage": ("int32", 4),
    "torch.ShortStorage": ("int16", 2),
    "torch.CharStorage": ("int8", 1),
    "torch.ByteStorage": ("uint8", 1),
    "torch.BoolStorage": ("bool", 1),
    "torch.ComplexFloatStorage": ("complex64", 8),
    "torch.ComplexDoubleStorage": ("complex128", 16),
    "torch.storage.UntypedStorage": ("uint8", 1),
}
DTYPES = frozenset(
    f"torch.{name}"
    for name in (
        "float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
        "complex64", "complex128",
    )
)  # fmt: skip

# Protocol 2 names builtins as Python 2 did; torch maps them (torch._utils.IMPORT_MAPPING). Only this
# module of that mapping leads into the allowlist.
PY2_MODULES = {"__builtin__": "builtins"}
PARAMETER = "torch.nn.parameter.Parameter"
REBUILD_FROM_TYPE = "torch._tensor._rebuild_from_type_v2"
TENSOR_TYPES = frozenset({"torch.Tensor", PARAMETER})


@dataclass(frozen=True)
class GlobalRef:
    """An allowlisted global as it sits on the stack (never imported)."""

    name: str


@dataclass(frozen=True)
class StorageRef:
    """A tensor storage record of the archive: ``data/<key>``, ``numel`` elements of ``dtype``."""

    key: str
    dtype: str
    itemsize: int
    numel: int
    location: str


@dataclass(frozen=True, eq=False)
class TensorRef:
    """A dense tensor: a view of ``shape`` and ``stride`` from ``offset`` into a storage."""

    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    parameter: bool = False

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def dtype(self) -> str:
        return self.storage.dtype


@dataclass
class ScanResult:
    value: Any  # the unpickled structure, tensors as TensorRef
    globals: set[str] = field(default_factory=set)
    storages: dict[str, StorageRef] = field(default_factory=dict)
    opcodes: int = 0
    protocol: int | None = None


class _Mark:
    """The MARK sentinel (kept on the metastack, never a value)."""


def scan(data: bytes) -> ScanResult:
    """Walk ``data`` as torch's weights-only unpickler would; raise ``UnsafePickleError`` if it would
    refuse for safety reasons, ``MalformedPickleError`` if it is not a usable pickle."""
    return _Machine().run(data)


class _Machine:
    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.result = ScanResult(value=None)

    def run(self, data: bytes) -> ScanResult:
        try:
            for opcode, arg, pos in pickletools.genops(data):
                self.result.opcodes += 1
                if self.result.opcodes > MAX_OPCODES:
                    raise MalformedPickleError(f"more than {MAX_OPCODES} opcodes")
                if opcode.name not in ALLOWED_OPCODES:
                    raise UnsafePickleError(f"opcode {opcode.name} at byte {pos} is not allowed")
                if opcode.name == "STOP":
                    return self._stop()
                self._step(opcode.name, arg)
        except (UnsafePickleError, MalformedPickleError):
            raise
        except (ValueError, IndexError, KeyError, TypeError, OverflowError) as exc:
            raise MalformedPickleError(f"{type(exc).__name__}: {exc}") from exc
        raise MalformedPickleError("no STOP opcode: truncated pickle")

    def _stop(self) -> ScanResult:
        if len(self.stack) != 1 or self.metastack:
            raise MalformedPickleError("STOP with an unbalanced stack")
        self.result.value = self.stack.pop()
        return self.result

    # ---- one opcode ------------------------------------------------------------------------------
    def _step(self, name: str, arg: Any) -> None:
        simple = _SIMPLE.get(name)
        if simple is not None:
            self.stack.append(simple())
            return
        handler: Callable[[_Machine, Any], None] = _HANDLERS[name]
        handler(self, arg)

    def _push_arg(self, arg: Any) -> None:
        self.stack.append(arg)

    def _proto(self, arg: Any) -> None:
        self.result.protocol = int(arg)

    def _mark(self, _arg: Any) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def _pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise MalformedPickleError("no MARK to pop to")
        items, self.stack = self.stack, self.metastack.pop()
        return items

    def _tuple(self, _arg: Any) -> None:
        items = self._pop_mark()  # first: it replaces self.stack
        self.stack.append(tuple(items))

    def _tuple_n(self, n: int) -> None:
        if len(self.stack) < n:
            raise MalformedPickleError("stack underflow")
        items = tuple(self.stack[len(self.stack) - n :]) if n else ()
        del self.stack[len(self.stack) - n :]
        self.stack.append(items)

    def _append(self, _arg: Any) -> None:
        item = self.stack.pop()
        self._target(list, "APPEND").append(item)

    def _appends(self, _arg: Any) -> None:
        items = self._pop_mark()
        self._target(list, "APPENDS").extend(items)

    def _setitem(self, _arg: Any) -> None:
        value, key = self.stack.pop(), self.stack.pop()
        self._target(dict, "SETITEM")[key] = value

    def _setitems(self, _arg: Any) -> None:
        items = self._pop_mark()
        target = self._target(dict, "SETITEMS")
        if len(items) % 2:
            raise MalformedPickleError("SETITEMS with an odd number of items")
        for index in range(0, len(items), 2):
            target[items[index]] = items[index + 1]

    def _target(self, kind: type, opcode: str) -> Any:
        if not self.stack or type(self.stack[-1]) not in _TARGETS[kind]:
            found = type(self.stack[-1]).__name__ if self.stack else "nothing"
            raise UnsafePickleError(f"{opcode} on a {found}: only {kind.__name__} targets are allowed")
        return self.stack[-1]

    def _get(self, arg: Any) -> None:
        if arg not in self.memo:
            raise MalformedPickleError(f"memo key {arg} not defined")
        self.stack.append(self.memo[arg])

    def _put(self, arg: Any) -> None:
        if not self.stack:
            raise MalformedPickleError("PUT on an empty stack")
        self.memo[int(arg)] = self.stack[-1]

    def _global(self, arg: Any) -> None:
        module, _, name = str(arg).partition(" ")
        full = f"{PY2_MODULES.get(module, module)}.{name}"
        if full not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"global {full} is not allowed (weights_only loads tensors and plain data)"
            )
        self.result.globals.add(full)
        self.stack.append(GlobalRef(full))

    def _reduce(self, _arg: Any) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if not isinstance(func, GlobalRef) or not isinstance(args, tuple):
            raise UnsafePickleError(
                f"REDUCE of {type(func).__name__}: only allowlisted globals may be called"
            )
        self.stack[-1] = call(func.name, args)

    def _newobj(self, _arg: Any) -> None:
        args, cls = self.stack.pop(), self.stack.pop()
        if not isinstance(cls, GlobalRef) or cls.name not in NEWOBJ_CLASSES or not isinstance(args, tuple):
            raise UnsafePickleError(f"NEWOBJ of {cls!r}: only parameters and allowlisted classes")
        self.stack.append(NEWOBJ_CLASSES[cls.name](args))

    def _build(self, _arg: Any) -> None:
        self.stack.pop()  # the state: an ordered dict's attributes (a state dict's _metadata), ignored
        target = self.stack[-1]
        if not isinstance(target, TensorRef | OrderedDict):
            raise UnsafePickleError(f"BUILD on a {type(target).__name__}: only tensors and ordered dicts")

    def _persid(self, _arg: Any) -> None:
        pid = self.stack.pop()
        self.stack.append(storage_of(pid))
        ref: StorageRef = self.stack[-1]
        self.result.storages[ref.key] = ref


_SIMPLE: dict[str, Callable[[], Any]] = {
    "NONE": lambda: None,
    "NEWTRUE": lambda: True,
    "NEWFALSE": lambda: False,
    "EMPTY_TUPLE": tuple,
    "EMPTY_LIST": list,
    "EMPTY_DICT": dict,
    "EMPTY_SET": set,
}
_TARGETS: dict[type, tuple[type, ...]] = {list: (list,), dict: (dict, OrderedDict, Counter)}
_HANDLERS: dict[str, Callable[[_Machine, Any], None]] = {
    "PROTO": _Machine._proto,
    "MARK": _Machine._mark,
    "TUPLE": _Machine._tuple,
    "TUPLE1": lambda m, _a: m._tuple_n(1),
    "TUPLE2": lambda m, _a: m._tuple_n(2),
    "TUPLE3": lambda m, _a: m._tuple_n(3),
    "APPEND": _Machine._append,
    "APPENDS": _Machine._appends,
    "SETITEM": _Machine._setitem,
    "SETITEMS": _Machine._setitems,
    "BINGET": _Machine._get,
    "LONG_BINGET": _Machine._get,
    "BINPUT": _Machine._put,
    "LONG_BINPUT": _Machine._put,
    "GLOBAL": _Machine._global,
    "REDUCE": _Machine._reduce,
    "NEWOBJ": _Machine._newobj,
    "BUILD": _Machine._build,
    "BINPERSID": _Machine._persid,
    **{
        name: _Machine._push_arg
        for name in ("BININT", "BININT1", "BININT2", "LONG1", "BINFLOAT", "BINUNICODE", "SHORT_BINSTRING")
    },
}


# ---- the modelled globals ----------------------------------------------------------------------
def storage_of(pid: Any) -> StorageRef:
    """A persistent id of torch's zip format: ``('storage', <Storage type>, key, location, numel)``."""
    if not isinstance(pid, tuple) or len(pid) != 5 or _ascii(pid[0]) != "storage":
        raise UnsafePickleError(f"persistent id {pid!r:.80}: only tensor storages are allowed")
    kind, key, location, numel = pid[1:]
    if not isinstance(kind, GlobalRef) or kind.name not in STORAGE_TYPES:
        raise UnsafePickleError(f"persistent id names {kind!r:.80}, not a storage type")
    if not isinstance(key, str) or not isinstance(location, str) or not _count(numel):
        raise MalformedPickleError(f"persistent id {pid!r:.80} is malformed")
    if not (key.isascii() and key.isprintable()) or "/" in key:  # torch names them 0, 1, …
        raise MalformedPickleError(f"storage key {key!r:.80}: not a plain record name")
    dtype, itemsize = STORAGE_TYPES[kind.name]
    return StorageRef(key=key, dtype=dtype, itemsize=itemsize, numel=numel, location=location)


def _ascii(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return value if isinstance(value, str) else None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _ints(value: Any) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(_count(v) for v in value):
        raise MalformedPickleError(f"expected a tuple of non-negative ints, got {value!r:.80}")
    return value


def _tensor(args: tuple[Any, ...]) -> TensorRef:
    """``_rebuild_tensor(storage, offset, size, stride, …)``: a view that must fit in its storage."""
    if len(args) < 4 or not isinstance(args[0], StorageRef) or not _count(args[1]):
        raise MalformedPickleError("tensor rebuild with malformed arguments")
    storage, offset, shape, stride = args[0], args[1], _ints(args[2]), _ints(args[3])
    if len(shape) != len(stride):
        raise MalformedPickleError("tensor shape and stride differ in length")
    if (
        math.prod(shape)
        and offset + sum((n - 1) * s for n, s in zip(shape, stride, strict=True)) >= storage.numel
    ):
        raise MalformedPickleError(f"tensor view {shape} at {offset} does not fit its storage {storage.key}")
    return TensorRef(storage, offset, shape, stride)


def _tensor_v2(args: tuple[Any, ...]) -> TensorRef:
    """``_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata])``."""
    if len(args) not in (6, 7) or not isinstance(args[4], bool) or not isinstance(args[5], OrderedDict):
        raise MalformedPickleError("_rebuild_tensor_v2 with malformed arguments")
    return _tensor(args)


def _parameter(args: tuple[Any, ...]) -> TensorRef:
    """``_rebuild_parameter(data, requires_grad, hooks[, state])`` or ``Parameter(data[, grad])``."""
    if not args or not isinstance(args[0], TensorRef):
        raise MalformedPickleError("parameter without tensor data")
    data: TensorRef = args[0]
    return TensorRef(data.storage, data.offset, data.shape, data.stride, parameter=True)


def _from_type(args: tuple[Any, ...]) -> TensorRef:
    """``_rebuild_from_type_v2(func, new_type, args, state)`` for plain tensors and parameters only."""
    if len(args) != 4 or not isinstance(args[0], GlobalRef) or not isinstance(args[2], tuple):
        raise MalformedPickleError("_rebuild_from_type_v2 with malformed arguments")
    func, new_type = args[0], args[1]
    if not isinstance(new_type, GlobalRef) or new_type.name not in TENSOR_TYPES:
        raise UnsafePickleError(f"tensor subclass {new_type!r:.80} is not allowed")
    result = call(func.name, args[2])
    if not isinstance(result, TensorRef):
        raise UnsafePickleError(f"{func.name} does not rebuild a tensor")
    return result


def _ordered_dict(args: tuple[Any, ...]) -> OrderedDict[Any, Any]:
    return OrderedDict(*_limited(args, 1))


def _counter(args: tuple[Any, ...]) -> Counter[Any]:
    return Counter(*_limited(args, 1))


def _set(args: tuple[Any, ...]) -> set[Any]:
    items = _limited(args, 1)
    if items and not isinstance(items[0], list | tuple | set):
        raise MalformedPickleError("set() of a non-sequence")
    return set(*items)


def _bytes(args: tuple[Any, ...]) -> bytes:
    """Protocol 2 pickles ``bytes`` as ``_codecs.encode(text, 'latin1')``."""
    if len(args) != 2 or not isinstance(args[0], str) or args[1] not in ("latin1", "latin-1"):
        raise UnsafePickleError("_codecs.encode is allowed for latin1 bytes only")
    if len(args[0]) > MAX_BYTES_ARG:
        raise MalformedPickleError("bytes value too large")
    return args[0].encode("latin1")


def _bytearray(args: tuple[Any, ...]) -> bytearray:
    if len(args) > 1 or (args and not isinstance(args[0], bytes | str | list)):
        raise UnsafePickleError("bytearray() is allowed from bytes or a list only")  # never bytearray(2**40)
    if args and isinstance(args[0], str):
        return bytearray(args[0].encode("latin1"))
    return bytearray(*args)


def _complex(args: tuple[Any, ...]) -> complex:
    if len(args) > 2 or not all(isinstance(a, int | float) and not isinstance(a, bool) for a in args):
        raise MalformedPickleError("complex() of non-numbers")
    return complex(*args)


def _size(args: tuple[Any, ...]) -> tuple[int, ...]:
    if len(args) != 1:
        raise MalformedPickleError("torch.Size takes one tuple")
    return _ints(tuple(args[0]) if isinstance(args[0], list) else args[0])


def _device(args: tuple[Any, ...]) -> str:
    if not args or len(args) > 2 or not isinstance(args[0], str):
        raise MalformedPickleError("torch.device of a non-string")
    return ":".join(str(a) for a in args)


def _limited(args: tuple[Any, ...], most: int) -> tuple[Any, ...]:
    if len(args) > most:
        raise MalformedPickleError(f"too many arguments ({len(args)})")
    if args and isinstance(args[0], list | tuple | dict) and len(args[0]) > MAX_CONTAINER_ARGS:
        raise MalformedPickleError("container argument too large")
    return args


CALLS: dict[str, Callable[[tuple[Any, ...]], Any]] = {
    "torch._utils._rebuild_tensor": _tensor,
    "torch._utils._rebuild_tensor_v2": _tensor_v2,
    "torch._utils._rebuild_parameter": _parameter,
    "torch._utils._rebuild_parameter_with_state": _parameter,
    REBUILD_FROM_TYPE: _from_type,
    PARAMETER: _parameter,
    "collections.OrderedDict": _ordered_dict,
    "collections.Counter": _counter,
    "builtins.set": _set,
    "builtins.bytearray": _bytearray,
    "builtins.complex": _complex,
    "_codecs.encode": _bytes,
    "torch.Size": _size,
    "torch.device": _device,
}
# NEWOBJ (cls.__new__(cls, *args)): a parameter, or an empty container of an allowlisted class.
NEWOBJ_CLASSES: dict[str, Callable[[tuple[Any, ...]], Any]] = {
    PARAMETER: _parameter,
    "collections.OrderedDict": lambda _args: OrderedDict(),
    "collections.Counter": lambda _args: Counter(),
    "builtins.set": lambda _args: set(),
}
# Globals that may appear on the stack without being called: storage types, dtypes, tensor classes.
ALLOWED_GLOBALS = frozenset(CALLS) | frozenset(STORAGE_TYPES) | DTYPES | {"torch.Tensor"}


def call(name: str, args: tuple[Any, ...]) -> Any:
    """The modelled result of calling the allowlisted global ``name`` with ``args``."""
    model = CALLS.get(name)
    if model is None:
        raise UnsafePickleError(f"{name} may not be called")
    return model(args)
