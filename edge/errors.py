"""Typed exceptions of the library. Only the CLI turns them into messages and exit codes."""

from __future__ import annotations


class EdgeError(Exception):
    """Base class of every error edge-face raises on purpose."""


class ConfigError(EdgeError):
    """The configuration is invalid. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
