"""The engine entry point: default, override by OCEC_ENGINE, clear errors for a bad reference."""

from __future__ import annotations

import pytest

from worker.engine_entry import DEFAULT_ENGINE, ENGINE_ENV, EngineEntryError, engine_ref, resolve_engine


def test_default_is_the_real_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    assert engine_ref() == DEFAULT_ENGINE
    import ocec_engine

    assert resolve_engine() is ocec_engine.train


def test_env_plugs_in_another_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENGINE_ENV, "fake_engine:train")
    import fake_engine

    assert resolve_engine() is fake_engine.train


@pytest.mark.parametrize("ref", ["fake_engine", ":train", "fake_engine:", "fake_engine:SCRIPT_NAME"])
def test_bad_reference_names_the_variable(ref: str) -> None:
    with pytest.raises(EngineEntryError, match=ENGINE_ENV):
        resolve_engine(ref)


def test_resolving_the_default_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, worker.engine_entry as e; e.resolve_engine(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
