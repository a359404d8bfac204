"""Small results of registry queries: tag and repository listings, referrers, rate limits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from regpeek.formats.digest import Digest
from regpeek.formats.jsonable import JsonResult
from regpeek.formats.manifest import Descriptor

__all__ = ["Listing", "RateLimit", "Referrers"]


@dataclass(frozen=True)
class Listing:
    """Names from a paginated listing (tags of a repository, or repositories of a registry)."""

    source: str
    names: list[str]
    pages: int

    def to_dict(self, key: str) -> dict[str, Any]:
        return {"source": self.source, key: self.names, "count": len(self.names), "pages": self.pages}


@dataclass(frozen=True)
class Referrers(JsonResult):
    """Manifests whose ``subject`` is an image, and how they were found ("api" or "tag")."""

    subject: Digest
    manifests: list[Descriptor]
    via: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": str(self.subject),
            "via": self.via,
            "referrers": [
                {
                    "digest": str(entry.digest),
                    "media_type": entry.media_type,
                    "artifact_type": entry.artifact_type,
                    "size": entry.size,
                    "annotations": dict(entry.annotations),
                }
                for entry in self.manifests
            ],
        }


_QUOTA_RE = re.compile(r"^\s*(\d+)\s*(?:;\s*w\s*=\s*(\d+))?")


def _quota(value: str | None) -> tuple[int | None, int | None]:
    """``"100;w=21600"`` -> ``(100, 21600)``."""
    match = _QUOTA_RE.match(value or "")
    if not match:
        return None, None
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


@dataclass(frozen=True)
class RateLimit(JsonResult):
    """Docker Hub style ``ratelimit-limit`` / ``ratelimit-remaining`` headers, when a registry sends them.

    >>> RateLimit.from_headers({"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600"}).remaining
    76
    """

    limit: int | None
    remaining: int | None
    window_seconds: int | None
    source: str | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit:
        lowered = {key.lower(): value for key, value in headers.items()}
        limit, window = _quota(lowered.get("ratelimit-limit"))
        remaining, remaining_window = _quota(lowered.get("ratelimit-remaining"))
        return cls(limit, remaining, window or remaining_window, lowered.get("docker-ratelimit-source"))

    @property
    def reported(self) -> bool:
        return self.limit is not None or self.remaining is not None

    def describe(self) -> str:
        if not self.reported:
            return "no limit reported"
        window = (
            f" per {self.window_seconds // 3600}h"
            if self.window_seconds and self.window_seconds % 3600 == 0
            else (f" per {self.window_seconds}s" if self.window_seconds else "")
        )
        parts = [f"limit {self.limit}{window}" if self.limit is not None else "limit unknown"]
        if self.remaining is not None:
            parts.append(f"remaining {self.remaining}")
        if self.source:
            parts.append(f"source {self.source}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "remaining": self.remaining,
            "window_seconds": self.window_seconds,
            "source": self.source,
            "reported": self.reported,
        }
