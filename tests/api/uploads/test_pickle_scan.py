"""The pickle allowlist checker against torch's own weights-only loader: whatever the scanner accepts,
``torch.load(weights_only=True)`` loads; every code-execution payload is refused before anything in
it runs (a marker file proves nothing ran)."""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import zipfile
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any

import pytest
import torch
from torch._weights_only_unpickler import _get_allowed_globals

from api.uploads.pickle_scan import (
    ALLOWED_GLOBALS,
    ALLOWED_OPCODES,
    MalformedPickleError,
    TensorRef,
    UnsafePickleError,
    scan,
)

REFERENCE = Path("/work/shared/fixtures/ocec_reference")


def data_pkl(obj: Any) -> bytes:
    """The data.pkl torch.save writes for ``obj``."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
        return archive.read(name)


def torch_accepts(obj: Any) -> bool:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    try:
        torch.load(buffer, weights_only=True)
    except pickle.UnpicklingError:
        return False
    return True


class Payload:
    """Runs a command when unpickled (never by the scanner)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


class Custom:
    def __init__(self) -> None:
        self.value = 1


SAFE = {
    "state dict": lambda: OrderedDict(w=torch.ones(3, 2), b=torch.zeros(2)),
    "nested plain data": lambda: {
        "model": {"w": torch.arange(6).reshape(2, 3)},
        "cfg": {"lr": 1e-4, "n": [1, 2, (3, None)]},
    },
    "dtypes": lambda: {
        d: torch.zeros(2, dtype=getattr(torch, d))
        for d in ("float16", "bfloat16", "int8", "uint8", "bool", "float64", "int32")
    },
    "parameter": lambda: {"p": torch.nn.Parameter(torch.ones(2))},
    "views share a storage": lambda: {"a": (t := torch.arange(10.0)), "b": t[2:5], "c": t.view(2, 5).t()},
    "bytes, sets, counters": lambda: {"b": b"\x00\xff", "s": {1, 2}, "c": Counter(a=2), "x": complex(1, 2)},
    "empty": lambda: {},
    "rng state": lambda: {"torch": torch.get_rng_state()},
    "optimizer state": lambda: torch.optim.Adam([torch.nn.Parameter(torch.ones(2))]).state_dict(),
}


@pytest.mark.parametrize("name", list(SAFE))
def test_safe_checkpoints_pass_here_and_in_torch(name: str) -> None:
    obj = SAFE[name]()
    assert torch_accepts(obj)
    scan(data_pkl(obj))  # no exception


def test_a_model_state_dict_is_modelled_with_shapes_and_dtypes() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    value = scan(data_pkl(model.state_dict())).value
    assert isinstance(value, OrderedDict) and list(value) == list(model.state_dict())
    weight = value["0.weight"]
    assert isinstance(weight, TensorRef) and weight.shape == (4, 3, 3, 3) and weight.dtype == "float32"
    assert value["1.num_batches_tracked"].dtype == "int64"


@pytest.mark.parametrize("path", sorted(REFERENCE.glob("*.pt")), ids=lambda p: p.name)
def test_the_real_ocec_checkpoints_pass(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
        result = scan(archive.read(name))
    assert result.value["model_config"]["base_channels"] == 32
    assert result.globals <= {
        "collections.OrderedDict",
        "torch.FloatStorage",
        "torch.LongStorage",
        "torch._utils._rebuild_tensor_v2",
    }


def test_a_reduce_payload_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    data = pickle.dumps({"model_state": Payload(marker)}, protocol=2)
    with pytest.raises(UnsafePickleError, match=r"posix\.system|not allowed"):
        scan(data)
    assert not marker.exists()
    pickle.loads(data)  # control: a plain unpickler does run it
    assert marker.exists()


UNSAFE = {
    "os.system through torch.save": lambda tmp: {"x": Payload(tmp / "m")},
    "a user class": lambda tmp: {"x": Custom()},
    "builtins.eval": lambda tmp: {"x": eval},
    "a function object": lambda tmp: {"f": os.getcwd},
}


@pytest.mark.parametrize("name", list(UNSAFE))
def test_what_torch_refuses_is_refused(name: str, tmp_path: Path) -> None:
    obj = UNSAFE[name](tmp_path)
    assert not torch_accepts(obj)
    with pytest.raises(UnsafePickleError):
        scan(data_pkl(obj))
    assert not (tmp_path / "m").exists()


HANDMADE = {
    # protocol 4 reaches globals through STACK_GLOBAL: torch's loader has no such opcode
    "STACK_GLOBAL": pickle.dumps(OrderedDict(), protocol=4),
    "GLOBAL builtins.getattr": b"\x80\x02cbuiltins\ngetattr\nq\x00.",
    "INST (protocol 0 call)": b"(S'ls'\nios\nsystem\n.",
    "REDUCE of a non-global": b"\x80\x02}q\x00)R.",
    "APPEND to a dict": b"\x80\x02}q\x00K\x01a.",
    "SETITEM on a list": b"\x80\x02]q\x00K\x01K\x02s.",
    "BUILD on a dict": b"\x80\x02}q\x00}q\x01b.",
    "persistent id that is not a storage": b"\x80\x02X\x03\x00\x00\x00abcq\x00Q.",
    "NEWOBJ of eval": b"\x80\x02cbuiltins\neval\n)\x81.",
}


@pytest.mark.parametrize("name", list(HANDMADE))
def test_handmade_hostile_pickles_are_refused(name: str) -> None:
    with pytest.raises(UnsafePickleError):
        scan(HANDMADE[name])
    with pytest.raises(pickle.UnpicklingError):  # torch refuses each as well
        torch.load(_as_checkpoint(HANDMADE[name]), weights_only=True)


def _as_checkpoint(pkl: bytes) -> io.BytesIO:
    """A torch zip archive around a given data.pkl."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pkl)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\x02}q\x00",
        b"\x80\x02K\x01K\x02.",
        b"\x80\x02h\x05.",
        b"not a pickle at all",
        b"\x80\x02(.",
    ],
    ids=["empty", "truncated", "two values at STOP", "undefined memo", "garbage", "unbalanced mark"],
)
def test_malformed_pickles_are_refused(data: bytes) -> None:
    with pytest.raises((MalformedPickleError, UnsafePickleError)):
        scan(data)


def test_a_tensor_view_past_its_storage_is_refused() -> None:
    data = data_pkl({"w": torch.ones(4)})
    forged = data.replace(b"K\x04\x85", b"K\x09\x85", 1)  # the size tuple (4,) -> (9,)
    assert forged != data
    with pytest.raises(MalformedPickleError, match="does not fit"):
        scan(forged)


def test_the_allowlist_is_inside_torchs() -> None:
    """Never more permissive than torch.load(weights_only=True)."""
    assert ALLOWED_GLOBALS.issubset(_get_allowed_globals())
    torch_opcodes = {
        op.name for op in pickletools.opcodes if op.code.encode("latin-1")[0] in _torch_opcode_bytes()
    }
    assert ALLOWED_OPCODES.issubset(torch_opcodes)


def _torch_opcode_bytes() -> set[int]:
    import torch._weights_only_unpickler as unpickler

    names = [
        n
        for n in dir(pickle)
        if n.isupper() and isinstance(getattr(pickle, n), bytes) and len(getattr(pickle, n)) == 1
    ]
    source = Path(unpickler.__file__).read_text()
    return {getattr(pickle, n)[0] for n in names if f"{n}[0]" in source}


@pytest.mark.parametrize("key", ["é".encode(), b"/", b"\n"], ids=["non-ASCII", "slash", "control"])
def test_a_storage_key_that_is_not_a_plain_record_name_is_refused(key: bytes) -> None:
    """torch looks ``data/<key>`` up by its UTF-8 bytes, the check by zipfile's decoded names."""
    data = data_pkl({"w": torch.ones(4)})
    forged = data.replace(b"X\x01\x00\x00\x000", b"X" + len(key).to_bytes(4, "little") + key, 1)
    assert forged != data
    with pytest.raises(MalformedPickleError, match="not a plain record name"):
        scan(forged)
