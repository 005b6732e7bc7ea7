"""Fixtures: a stand-in manager and a scripted market over it."""

from __future__ import annotations

import pytest

from tests.engine.support import FakeManager, Market


@pytest.fixture
def manager() -> FakeManager:
    return FakeManager()


@pytest.fixture
def market(manager: FakeManager) -> Market:
    return Market(manager)
