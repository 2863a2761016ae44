"""`DispatchResult.to_mermaid`: what actually ran, ok/failed/skipped/cancelled visible."""

from __future__ import annotations

import pytest

from actorflow import AgentRun, DispatchResult, State

pytestmark = pytest.mark.timeout(30)


def result(mode, runs, ok=True, error=None):
    return DispatchResult(State({}), mode, "ev-1", "s-1", 0.5, runs, ok=ok, error=error)


MIXED = result(
    "mixed",
    [
        AgentRun("a", "ok", 0.1, None, 1, None, "collaborative", None, 0.0),
        AgentRun("b", "error", 0.1, "ValueError: bad", 1, None, "collaborative", None, 0.0),
        AgentRun("b", "ok", 0.1, None, 2, None, "collaborative", None, 0.1),
        AgentRun("c", "cancelled", 0.2, "cancelled: late", 1, None, "sequential", None, 0.25),
        AgentRun("d", "skipped", 0.0, None, 1, None, "sequential", None, 0.45),
    ],
    ok=False,
    error="DispatchTimeoutError: did not finish",
)


def test_flowchart_shows_each_attempt_with_status_duration_and_attempt():
    text = MIXED.to_mermaid("flowchart")
    assert text.startswith("flowchart TD\n")
    assert 'r1["a<br/>ok · 0.100s · attempt 1"]:::ok' in text
    assert 'r2["b<br/>error · 0.100s · attempt 1"]:::error' in text
    assert 'r3["b<br/>ok · 0.100s · attempt 2"]:::ok' in text
    assert ":::cancelled" in text and ":::skipped" in text
    # the collaborative phase fans out from the event; the retry follows its first attempt;
    # the sequential stage follows both branches; the failure is the result node
    for edge in ("event --> r1", "event --> r2", "r2 --> r3", "r1 --> r4", "r3 --> r4", "r4 --> r5", "r5 --> result"):
        assert f"    {edge}\n" in text
    assert "Failed: DispatchTimeoutError" in text
    assert MIXED.to_mermaid() == text  # flowchart is the default


def test_gantt_puts_attempts_on_a_timeline():
    text = MIXED.to_mermaid("gantt")
    assert text.startswith("gantt\n") and "dateFormat x" in text
    assert "    section b\n" in text
    assert "b attempt 1 error 0.100s :crit, r2, 0, 100" in text
    assert "b attempt 2 ok 0.100s :done, r3, 100, 200" in text
    assert "c attempt 1 cancelled 0.200s :active, r4, 250, 450" in text
    assert ":milestone, r5, 450, 451" in text


def test_sequential_chain_and_unknown_kind():
    seq = result("sequential", [AgentRun("x", "ok", 0.01, started_at=0.0), AgentRun("y", "ok", 0.02, started_at=0.01)])
    text = seq.to_mermaid()
    assert "event --> r1" in text and "r1 --> r2" in text and "r2 --> result" in text and "Result" in text
    with pytest.raises(ValueError, match="flowchart"):
        seq.to_mermaid("pie")
