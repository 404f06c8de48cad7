"""The model registry: which model decides (the champion), which runs beside it in shadow
(the challenger), and an audit of every change. A JSON file:

    {"format": "payplane-fraud-registry/1",
     "champion": {"version": "...", "kind": "gbdt" | "logistic", "path": "...",
                  "sha256": "..."},
     "shadow": {...} | null,
     "audit": [{"at": "...Z", "actor": "...", "action": "shadow" | "promote" |
                "clear_shadow", "version": "...", "previous": "...", "reason": "..."}]}

A gbdt entry points at an artefact directory (learned.py) and records its manifest digest;
a logistic entry at a hand-set model file (model.py). Every change names who made it and
why, and is refused unless the model it names loads and passes its integrity check.
Promotion is only ever an explicit call: the shadow becomes champion, the champion it
replaces is kept in the audit.

    python -m checkout.fraud.registry REGISTRY show
    python -m checkout.fraud.registry REGISTRY shadow PATH --actor A --reason R
    python -m checkout.fraud.registry REGISTRY promote --actor A --reason R
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .learned import ArtefactError, LearnedModel
from .model import DEFAULT_MODEL_PATH, FraudModel, ModelError

__all__ = ["Entry", "Registry", "RegistryError", "entry_for", "main"]

FORMAT = "payplane-fraud-registry/1"


class RegistryError(ValueError):
    """A registry change is refused, or the registry file is unreadable (names why)."""


@dataclass(frozen=True)
class Entry:
    version: str
    kind: str  # gbdt | logistic
    path: str
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {
            "version": self.version,
            "kind": self.kind,
            "path": self.path,
            "sha256": self.sha256,
        }

    def load(self) -> LearnedModel | FraudModel:
        """The model, checked against the digest recorded when it was registered."""
        current = entry_for(self.path)
        if current.sha256 != self.sha256:
            raise RegistryError(
                f"{self.path}: changed since it was registered as {self.version} "
                "(digest differs): register it again"
            )
        if self.kind == "gbdt":
            return LearnedModel.load(self.path)
        return FraudModel.load(self.path)


def entry_for(path: str | Path) -> Entry:
    """An entry for a model on disk (an artefact directory or a hand-set JSON file),
    refused unless it loads."""
    p = Path(path)
    try:
        if p.is_dir():
            learned = LearnedModel.load(p)
            return Entry(learned.version, "gbdt", str(p), str(learned.manifest["sha256"]))
        hand = FraudModel.load(p)
    except (ArtefactError, ModelError) as exc:
        raise RegistryError(f"{p}: refused: {exc}") from exc
    return Entry(hand.version, "logistic", str(p), hashlib.sha256(p.read_bytes()).hexdigest())


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Registry:
    champion: Entry
    shadow: Entry | None = None
    audit: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def new(cls, champion: str | Path = DEFAULT_MODEL_PATH) -> Registry:
        return cls(entry_for(champion))

    @classmethod
    def load(cls, path: str | Path) -> Registry:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RegistryError(f"{path}: {exc}") from exc
        if data.get("format") != FORMAT:
            raise RegistryError(f"{path}: not a {FORMAT} file")
        shadow = data.get("shadow")
        return cls(
            champion=Entry(**data["champion"]),
            shadow=Entry(**shadow) if shadow else None,
            audit=list(data.get("audit", [])),
        )

    def save(self, path: str | Path) -> None:
        body = {
            "format": FORMAT,
            "champion": self.champion.to_json(),
            "shadow": self.shadow.to_json() if self.shadow else None,
            "audit": self.audit,
        }
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(body, indent=2) + "\n")
        tmp.replace(path)  # readers never see half a registry

    def _note(
        self, at: float, actor: str, action: str, version: str, reason: str, previous: str = ""
    ) -> None:
        if not actor or not reason:
            raise RegistryError(f"{action}: an actor and a reason are required")
        self.audit.append(
            {
                "at": _iso(at),
                "actor": actor,
                "action": action,
                "version": version,
                "previous": previous,
                "reason": reason,
            }
        )

    def set_shadow(
        self, path: str | Path, actor: str, reason: str, at: float | None = None
    ) -> Entry:
        entry = entry_for(path)
        if entry.version == self.champion.version:
            raise RegistryError(f"{entry.version} is the champion already")
        self._note(
            time.time() if at is None else at,
            actor,
            "shadow",
            entry.version,
            reason,
            self.shadow.version if self.shadow else "",
        )
        self.shadow = entry
        return entry

    def clear_shadow(self, actor: str, reason: str, at: float | None = None) -> None:
        if self.shadow is None:
            raise RegistryError("no shadow model to clear")
        self._note(
            time.time() if at is None else at, actor, "clear_shadow", self.shadow.version, reason
        )
        self.shadow = None

    def promote(self, actor: str, reason: str, at: float | None = None) -> Entry:
        """The shadow becomes the champion (checked to still load as registered)."""
        if self.shadow is None:
            raise RegistryError("promote: no shadow model to promote")
        try:
            self.shadow.load()
        except (ArtefactError, ModelError) as exc:
            raise RegistryError(f"promote: {exc}") from exc
        self._note(
            time.time() if at is None else at,
            actor,
            "promote",
            self.shadow.version,
            reason,
            self.champion.version,
        )
        self.champion, self.shadow = self.shadow, None
        return self.champion

    def describe(self) -> str:
        lines = [
            f"champion: {self.champion.version} ({self.champion.kind}) {self.champion.path}",
            "shadow:   "
            + (
                f"{self.shadow.version} ({self.shadow.kind}) {self.shadow.path}"
                if self.shadow
                else "none"
            ),
        ]
        for a in self.audit[-10:]:
            lines.append(
                f"  {a['at']} {a['actor']}: {a['action']} {a['version']}"
                f"{' (was ' + a['previous'] + ')' if a['previous'] else ''}: "
                f"{a['reason']}"
            )
        return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m checkout.fraud.registry",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("registry")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("show")
    sh = sub.add_parser("shadow")
    sh.add_argument("path")
    pr = sub.add_parser("promote")
    for p in (sh, pr):
        p.add_argument("--actor", required=True)
        p.add_argument("--reason", required=True)
    args = ap.parse_args(argv)
    try:
        path = Path(args.registry)
        reg = Registry.load(path) if path.exists() else Registry.new()
        if args.command == "shadow":
            reg.set_shadow(args.path, args.actor, args.reason)
            reg.save(path)
        elif args.command == "promote":
            reg.promote(args.actor, args.reason)
            reg.save(path)
    except RegistryError as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 2
    print(reg.describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
