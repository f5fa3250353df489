"""Where the lab lives and what it is set to: the compose file, .env, the offline overrides.

Settings resolve the way Compose resolves them: the process environment wins over
compose/offline/offline.env (when LAB_OFFLINE=1), which wins over .env.
"""

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lab.core.errors import LabError
from lab.core.files import write_atomic

COMPOSE_FILE = "docker-compose.load-test.yml"
OFFLINE_ENV = Path("compose/offline/offline.env")
# Added with LAB_EXPOSE_MASTER=1: publishes the master's worker port for workers on other machines.
MASTER_PORT_FILE = Path("compose/master-port.yml")
_LINE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")

# Filled in on first run; .env.example leaves them empty. Hex keeps them safe inside URLs.
GENERATED = {
    "GRAFANA_ADMIN_PASSWORD": lambda: secrets.token_hex(16),
    "POSTGRES_PASSWORD": lambda: secrets.token_hex(16),
    "POSTGRES_API_PASSWORD": lambda: secrets.token_hex(16),
    "POSTGRES_EXPORTER_PASSWORD": lambda: secrets.token_hex(16),
    "API_SECRET_KEY": lambda: secrets.token_hex(32),
    "SEED_USER_PASSWORD": lambda: secrets.token_hex(12),
    "LAB_UID": lambda: str(os.getuid()),
    "LAB_GID": lambda: str(os.getgid()),
}


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, comments and blank lines; anything else is refused with its line number."""
    values: dict[str, str] = {}
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise LabError(f"cannot read {path} ({reason}): check its permissions, or set LAB_ENV_FILE") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise LabError(
                f"{path}:{number} is not KEY=VALUE ({raw.strip()[:40]!r}): fix or delete that line"
            )
        value = match["value"].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[match["key"]] = value
    return values


@dataclass(frozen=True)
class Lab:
    home: Path
    env_file: Path
    project: str
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "Lab":
        environ = os.environ if environ is None else environ
        home = Path(environ.get("LAB_HOME") or Path.cwd()).resolve()
        if not (home / COMPOSE_FILE).is_file():
            raise LabError(f"no {COMPOSE_FILE} in {home}: run lab from the repository root or set LAB_HOME")
        env_file = Path(environ.get("LAB_ENV_FILE") or home / ".env")
        return cls(
            home=home, env_file=env_file, project=environ.get("LAB_PROJECT", "loadlab"), environ=environ
        )

    def env_files(self) -> list[Path]:
        files = [self.env_file]
        if self.offline:
            files.append(self.home / OFFLINE_ENV)
        return files

    @property
    def offline(self) -> bool:
        value = self.environ.get("LAB_OFFLINE")
        if value is None and self.env_file.is_file():
            value = parse_env_file(self.env_file).get("LAB_OFFLINE")
        return value not in (None, "", "0", "false")

    @property
    def expose_master(self) -> bool:
        return self.setting("LAB_EXPOSE_MASTER", "0") not in ("0", "false")

    def settings(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for path in self.env_files():
            if path.is_file():
                merged.update(parse_env_file(path))
        merged.update({key: value for key, value in self.environ.items() if _LINE.match(f"{key}=")})
        return merged

    def setting(self, key: str, default: str) -> str:
        return self.settings().get(key) or default

    def url(self, port_key: str, default_port: str) -> str:
        host = self.setting("LAB_BIND", "127.0.0.1")
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{self.setting(port_key, default_port)}"

    def results_dir(self) -> Path:
        return (self.home / self.setting("LAB_RESULTS_DIR", "results")).resolve()

    def compose_command(self, *args: str) -> list[str]:
        command = ["docker", "compose", "-p", self.project, "-f", str(self.home / COMPOSE_FILE)]
        if self.expose_master:
            command += ["-f", str(self.home / MASTER_PORT_FILE)]
        for path in self.env_files():
            if path.is_file():
                command += ["--env-file", str(path)]
        return command + list(args)

    def ensure_env_file(self) -> bool:
        """Create .env from .env.example, filling every empty generated setting. True if .env was written."""
        source = self.env_file if self.env_file.is_file() else self.home / ".env.example"
        parse_env_file(source)  # refuse a malformed file before touching anything
        changed = source != self.env_file
        out, seen = [], set()
        for line in source.read_text().splitlines():
            match = _LINE.match(line.strip())
            if match:
                seen.add(match["key"])
                if match["key"] in GENERATED and not match["value"].strip():
                    line = f"{match['key']}={GENERATED[match['key']]()}"
                    changed = True
            out.append(line)
        for key in GENERATED.keys() - seen:
            out.append(f"{key}={GENERATED[key]()}")
            changed = True
        if changed:
            write_atomic(self.env_file, "\n".join(out) + "\n", mode=0o600, fix="set LAB_ENV_FILE")
        return changed

    def remember(self, key: str, value: str) -> None:
        """Set KEY=VALUE in .env (replacing the key's line, or appending one), keeping the rest as it is."""
        lines = self.env_file.read_text().splitlines() if self.env_file.is_file() else []
        out, found = [], False
        for line in lines:
            match = _LINE.match(line.strip())
            if match and match["key"] == key:
                if found:
                    continue
                line, found = f"{key}={value}", True
            out.append(line)
        if not found:
            out.append(f"{key}={value}")
        write_atomic(self.env_file, "\n".join(out) + "\n", mode=0o600, fix="set LAB_ENV_FILE")
