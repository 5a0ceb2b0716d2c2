"""Vocabularies the dashboard's JavaScript must repeat (it cannot import jobstore): each copy is
compared with its Python source, so a change on either side fails here until both agree."""

from __future__ import annotations

import re

import pytest

from api.routes.dashboard import STATIC_DIR
from jobstore.repo.races import CAN_WIN, EXTENDABLE, IN_PLAY, LIVE_RACE


def js_list(module: str, name: str) -> list[str]:
    source = (STATIC_DIR / "js" / module).read_text()
    found = re.search(rf"const {name} = \[([^\]]*)\];", source)
    assert found is not None, f"{module} no longer defines {name}"
    return re.findall(r'"([^"]+)"', found.group(1))


@pytest.mark.parametrize(
    ("module", "name", "statuses"),
    [
        ("race_actions.js", "CAN_WIN", CAN_WIN),
        ("race_actions.js", "EXTENDABLE", EXTENDABLE),
        ("race_actions.js", "IN_PLAY", IN_PLAY),
        ("race_panel.js", "LIVE_RACE", LIVE_RACE),
    ],
)
def test_the_race_panel_names_the_statuses_jobstore_acts_on(
    module: str, name: str, statuses: tuple[str, ...] | frozenset[str]
) -> None:
    assert sorted(js_list(module, name)) == sorted(str(s) for s in statuses)
