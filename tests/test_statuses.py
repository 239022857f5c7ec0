"""One list of run statuses: the model, the engine and the event readers agree, and members are the stored strings."""

from __future__ import annotations

import json

from runplane.events import types as event_types
from runplane.models import agent_run
from runplane.statuses import ACTIVE_STATUSES, EXECUTING_STATUSES, TERMINAL_STATUSES, RunStatus


def test_one_list_everywhere() -> None:
    assert agent_run.ACTIVE_STATUSES is ACTIVE_STATUSES and agent_run.TERMINAL_STATUSES is TERMINAL_STATUSES
    assert event_types.TERMINAL_STATUSES is TERMINAL_STATUSES
    assert set(ACTIVE_STATUSES) | set(TERMINAL_STATUSES) == set(RunStatus)
    assert not set(ACTIVE_STATUSES) & set(TERMINAL_STATUSES)
    assert set(EXECUTING_STATUSES) <= set(ACTIVE_STATUSES)


def test_members_are_the_stored_strings() -> None:
    assert RunStatus.RUNNING == "running" and f"{RunStatus.FAILED}" == "failed"
    assert json.dumps({"status": RunStatus.STOPPED}) == '{"status": "stopped"}'
    assert "completed" in TERMINAL_STATUSES and RunStatus("paused").active and RunStatus.COMPLETED.terminal


def test_a_terminal_status_event_ends_the_stream() -> None:
    for status in RunStatus:
        event = event_types.RunEventMessage("run", 1, "status", {"status": str(status)})
        assert event.is_terminal is status.terminal
