"""The error family: every message names the file (or source) and says what is wrong."""

from __future__ import annotations

from pathlib import Path


class FeedhubError(Exception):
    """A problem a user can act on; ``str()`` is the whole message."""


class ConfigError(FeedhubError):
    """The configuration cannot be used. The CLI exits with status 2."""

    def __init__(self, path: Path | str, key: str | None, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {problem}")


class PostError(FeedhubError):
    """A post file cannot be published; the reason is shown to the operator."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")
