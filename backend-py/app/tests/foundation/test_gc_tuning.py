"""The serving process's garbage-collector settings."""

import gc
from collections.abc import Iterator

import pytest

from src.infra.gc_tuning import GEN0_THRESHOLD, tune_gc_for_serving


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """Put the test session's collector back as it was."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_startup_objects_are_frozen_and_young_collections_are_rarer() -> None:
    startup_object = {"built": "at startup"}
    _, gen1, gen2 = gc.get_threshold()

    tune_gc_for_serving()

    assert gc.get_freeze_count() > 0
    # Frozen: no longer in the generations a collection walks.
    assert all(obj is not startup_object for obj in gc.get_objects())
    assert gc.get_threshold() == (GEN0_THRESHOLD, gen1, gen2)
