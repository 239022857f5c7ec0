"""The per-event cost of the runEvents fan-out: executing one subscription document for one event, as the shared
path does once per (document, run, event) for all its subscribers (schema/fanout.py). Compares a scalar
selection, the same with createdAt (a DateTime now), and one with the typed `data` union. Prints JSON.

    python bench/bench_run_event_execution.py [--events 20000] [--repeat 3]

Run it from another source tree (PYTHONPATH=/tmp/before python bench/...) for a before/after pair; the
`typed` variant only exists where RunEvent.data does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graphql import execute, parse

from runplane.events.types import RunEventMessage
from runplane.schema import build_schema

try:
    from runplane.schema.run_events import RunEvent
except ImportError:  # a tree from before the typed events
    from runplane.schema.agent_runs import RunEvent  # type: ignore[no-redef, attr-defined]

SELECTIONS = {
    "scalars": "sequence type payload",
    "with_created_at": "sequence type createdAt payload",
    "typed_data": "sequence type payload data { __typename ... on ContentEvent { content messageId } }",
}


def per_event_us(schema: Any, selection: str, events: int) -> float:
    document = parse(f'subscription {{ runEvents(runId: "r") {{ {selection} }} }}')
    fields = RunEventMessage.__dataclass_fields__
    event = RunEventMessage(  # type: ignore[call-arg]
        run_id="r",
        **({"sequence": 1} if "sequence" in fields else {"seq": 1}),
        type="content",
        payload={"content": "hello", "message_id": "m1"},
    )
    started = time.perf_counter()
    for _ in range(events):
        result = execute(schema, document, root_value=RunEvent.from_event(event))
        json.dumps({"data": result.data}, separators=(",", ":"))  # type: ignore[union-attr]
    return (time.perf_counter() - started) / events * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    schema = build_schema()._schema
    typed = "RunEventData" in schema.type_map
    report: dict[str, Any] = {"benchmark": "run_event_execution", "events": args.events, "unit": "us per event"}
    for name, selection in SELECTIONS.items():
        if name == "typed_data" and not typed:
            continue
        runs = [per_event_us(schema, selection, args.events) for _ in range(args.repeat)]
        report[name] = {"median": round(statistics.median(runs), 1), "runs": [round(r, 1) for r in runs]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
