"""Every API test runs twice: on a clean store, and with store faults injected.

With faults on, about 2% of store calls each time out, commit and then fail
(ambiguous), lose the connection, or find the database busy; all surface as
``StoreUnavailable`` and the engine must retry them without breaking a promise
(no loss, one result per position, steps not re-run after their record,
idempotent start). The seed comes from ``PERDURE_SEED`` or from the test's id,
so a failure replays with the same faults. ``PERDURE_TEST_STORE_FAULTS`` replaces
the rates (e.g. ``default`` or ``ambiguous=0.2``) for a harsher local run.
"""

from __future__ import annotations

import os
import zlib

import pytest

FAULTS = (
    os.environ.get("PERDURE_TEST_STORE_FAULTS") or "timeout=0.02,ambiguous=0.02,disconnect=0.02,busy=0.02"
)


@pytest.fixture(params=["clean", "faults"], autouse=True)
def store_faults(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``"clean"`` or ``"faults"``: whether engines made by this test inject store faults."""
    if request.param == "faults":
        seed = os.environ.get("PERDURE_SEED") or str(zlib.crc32(request.node.nodeid.encode()))
        monkeypatch.setenv("PERDURE_STORE_FAULTS", FAULTS)
        monkeypatch.setenv("PERDURE_SEED", seed)
    else:
        monkeypatch.delenv("PERDURE_STORE_FAULTS", raising=False)
    mode: str = request.param
    return mode
