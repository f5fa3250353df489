"""A run's record, run.json: written by the master (lab.plugin.runs) when the run starts and ends, read
by `lab report`, `lab compare` and `lab runs`. One type for both sides, so the file has one shape."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab.core.errors import LabError

FILE = "run.json"


@dataclass(kw_only=True)
class RunRecord:
    run_id: str
    scenario: str
    host: str
    started_at: float
    ended_at: float | None = None
    parameters: dict = field(default_factory=dict)  # the scenario's parameters
    workers_lost: list[dict] = field(default_factory=list)
    folder: Path | None = field(default=None, compare=False)  # where it was read from; not in the file

    @property
    def invalidated(self) -> bool:
        """A run that lost a worker sent less load than asked, so its figures are not comparable."""
        return bool(self.workers_lost)

    @property
    def end(self) -> float:
        """The end of the run's window: the recorded end, or now for a run still going."""
        return self.ended_at if self.ended_at is not None else time.time()

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "scenario": self.scenario,
            "host": self.host,
            "start": self.started_at,
            "end": self.ended_at,
            "parameters": self.parameters,
            "workers_lost": self.workers_lost,
            "invalidated": self.invalidated,
        }

    def write(self, folder: Path) -> None:
        path = folder / FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        tmp.replace(path)  # readers never see a half-written file

    @classmethod
    def read(cls, folder: Path) -> RunRecord:
        path = folder / FILE
        try:
            data = json.loads(path.read_text())
            return cls(
                run_id=data["run_id"],
                scenario=data.get("scenario") or "",
                host=data.get("host") or "",
                started_at=float(data["start"]),
                ended_at=None if data.get("end") is None else float(data["end"]),
                parameters=dict(data.get("parameters") or {}),
                workers_lost=list(data.get("workers_lost") or []),
                folder=folder,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise LabError(f"{path} is not a valid run record ({type(exc).__name__}: {exc})") from None
