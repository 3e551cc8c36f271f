"""Error types of mconv and the exit codes the CLI maps them to (README, "Exit codes").

| code | meaning |
|---|---|
| 0 | converted (and verified, when verification ran) |
| 1 | internal error (a bug) |
| 2 | usage error (bad flags, missing file, missing input shape) |
| 3 | unsupported ops or attribute values for the frontend or a requested target |
| 4 | verification failed: outputs differ beyond ``--atol``/``--rtol`` |
| 5 | unreadable input: corrupt, truncated or wrong-format model file |
"""
from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_UNSUPPORTED = 3
EXIT_VERIFY = 4
EXIT_UNREADABLE = 5


class MconvError(Exception):
    """Base class of the errors mconv reports to the user as one line plus an exit code."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and hint as the single line the CLI prints."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(MconvError):
    """Bad flags, a missing file or a missing input shape (exit 2)."""

    exit_code = EXIT_USAGE


class UnreadableModelError(MconvError):
    """The model file is empty, truncated, corrupt or of the wrong format (exit 5)."""

    exit_code = EXIT_UNREADABLE


class VerificationError(MconvError):
    """Converted outputs differ from the source beyond the tolerance (exit 4)."""

    exit_code = EXIT_VERIFY


@dataclass
class Issue:
    """One unsupported op (or attribute value) found by the pre-flight scan.

    ``stage`` is ``"frontend:<name>"`` or ``"target:<name>"``; ``op`` the source op or IR op;
    ``code`` a stable reason code such as ``"no-converter"`` or ``"ncnn.batch"``.
    """

    stage: str
    op: str
    code: str
    reason: str
    nodes: list[str] = field(default_factory=list)
    hint: str = ""

    def as_dict(self) -> dict:
        return {"stage": self.stage, "op": self.op, "code": self.code, "reason": self.reason,
                "count": len(self.nodes), "nodes": list(self.nodes), "hint": self.hint}


class UnsupportedOpsError(MconvError):
    """Every unsupported op found by a scan, collected into one error (exit 3)."""

    exit_code = EXIT_UNSUPPORTED

    def __init__(self, issues: list[Issue]):
        self.issues = merge_issues(issues)
        n = sum(len(i.nodes) for i in self.issues)
        kinds = ", ".join(f"{i.op} x{len(i.nodes)} [{i.code}]" for i in self.issues)
        super().__init__(f"{n} unsupported node(s): {kinds}",
                         "see the list above; `mconv ops MODEL` shows the same scan")

    def details(self) -> list[str]:
        """One line per issue: stage, op, count, reason code, reason, node names, hint."""
        out = []
        for i in self.issues:
            names = ", ".join(i.nodes[:8]) + (" ..." if len(i.nodes) > 8 else "")
            line = f"{i.stage}: {i.op} x{len(i.nodes)} [{i.code}] {i.reason}; nodes: {names}"
            out.append(line + (f"; hint: {i.hint}" if i.hint else ""))
        return out


def merge_issues(issues: list[Issue]) -> list[Issue]:
    """Merge issues with the same stage, op, code and reason, keeping node order."""
    merged: dict[tuple, Issue] = {}
    for i in issues:
        key = (i.stage, i.op, i.code, i.reason)
        if key in merged:
            merged[key].nodes.extend(n for n in i.nodes if n not in merged[key].nodes)
        else:
            merged[key] = Issue(i.stage, i.op, i.code, i.reason, list(i.nodes), i.hint)
    return list(merged.values())
