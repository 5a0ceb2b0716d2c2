"""The one page-size rule: the client's limit, else the list's default, capped at the maximum."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.paging import page_size
from jobstore.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, default_page_size=7, max_page_size=20)


def test_without_a_limit_a_list_gets_the_default_page(settings: Settings) -> None:
    assert page_size(settings, None) == 7


def test_metrics_and_events_without_a_limit_get_the_largest_page(settings: Settings) -> None:
    assert page_size(settings, None, whole=True) == 20


@pytest.mark.parametrize("whole", [False, True])
def test_a_limit_is_kept_up_to_the_maximum_and_capped_beyond(settings: Settings, whole: bool) -> None:
    assert page_size(settings, 3, whole=whole) == 3
    assert page_size(settings, 20, whole=whole) == 20
    assert page_size(settings, 21, whole=whole) == 20
