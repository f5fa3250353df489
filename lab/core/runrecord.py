"""A run's record, run.json: written by the master (lab.plugin.runs) when the run starts and ends, read
by `lab report`, `lab compare` and `lab runs`. One type for both sides, so the file has one shape."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab.core.errors import LabError
from lab.core.files import write_atomic

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
    # When the file was last written. While the run goes (lab.plugin.checkpoint) the record is partial:
    # its folder holds the figures of that moment, and a run whose master died stays so.
    written_at: float | None = None

    @property
    def invalidated(self) -> bool:
        """A run that lost a worker sent less load than asked, so its figures are not comparable."""
        return bool(self.workers_lost)

    @property
    def partial(self) -> bool:
        """No end recorded: the run still goes, or its master died (its last checkpoint is in its folder)."""
        return self.ended_at is None

    @property
    def end(self) -> float:
        """The end of the run's window: the recorded end; for a partial record read from its folder, its
        last checkpoint (the figures the folder holds); else now, for a run still going."""
        if self.ended_at is not None:
            return self.ended_at
        return self.written_at if self.written_at is not None else time.time()

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
            "partial": self.partial,
            "written_at": self.written_at,
        }

    def write(self, folder: Path) -> None:
        self.written_at = time.time()
        write_atomic(folder / FILE, json.dumps(self.to_dict(), indent=2) + "\n")

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
                written_at=None if data.get("written_at") is None else float(data["written_at"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise LabError(f"{path} is not a valid run record ({type(exc).__name__}: {exc})") from None
