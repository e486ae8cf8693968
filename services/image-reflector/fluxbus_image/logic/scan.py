"""When an ImageRepository is scanned and what a scan records, as image-reflector-controller does.

Pure: no I/O.

- `should_scan`: scan when never scanned, after a failure, on a new reconcile request, a new
  canonical image name, a changed exclusion list, an empty tag store, or when
  the interval has passed (less than a second left counts as passed);
  otherwise wait for the rest of the interval.
- `tags_checksum`: Flux's `lastScanResult.revision`, the Adler-32 checksum (in
  decimal) of the tag list as Go's `json.Marshal` writes it.
- `latest_tags`: the 10 tags Flux shows, byte-wise descending.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

LATEST_TAGS_COUNT = 10
"""Tags kept in `status.lastScanResult.latestTags` (Flux's latestTagsCount)."""
MIN_WAIT = 1.0
"""Less than this left of the interval scans now (Flux: `when < time.Second`)."""


@dataclass(frozen=True)
class ScanDecision:
    scan: bool
    wait: float
    """Seconds until the next scan is due (the full interval after a scan)."""
    reason: str
    """Why the scan happens (Flux's wording), "" when it does not."""


def should_scan(
    *,
    interval: float,
    last_scan_age: float | None,
    reconcile_requested: bool,
    canonical_changed: bool,
    exclusions_changed: bool,
    tags_stored: bool,
    last_failed: bool = False,
) -> ScanDecision:
    """Decide whether to scan now; `last_scan_age` is None when never scanned.

    `last_failed`: the object is not Ready (the last scan failed), so the retry
    the runtime schedules with backoff scans again.
    """
    if last_scan_age is None:
        return ScanDecision(True, interval, "first scan")
    if last_failed:
        return ScanDecision(True, interval, "retrying after a failure")
    if reconcile_requested:
        return ScanDecision(True, interval, "reconcile requested")
    if canonical_changed:
        return ScanDecision(True, interval, "new image name")
    if exclusions_changed:
        return ScanDecision(True, interval, "updated exclusion list")
    if not tags_stored:
        return ScanDecision(True, interval, "no tags in database")
    left = interval - last_scan_age
    if left < MIN_WAIT:
        return ScanDecision(True, interval, "triggered by interval")
    return ScanDecision(False, left, "")


def tags_checksum(tags: Sequence[str]) -> str:
    """Adler-32 (decimal) of the JSON array of tags, as Flux's tag database computes it."""
    # Go's json.Marshal escapes <, > and & as \\u003c etc.; ensure_ascii=False keeps
    # other characters as UTF-8 like Go does.
    data = json.dumps(list(tags), separators=(",", ":"), ensure_ascii=False)
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return str(zlib.adler32(data.encode()))


def latest_tags(tags: Sequence[str], count: int = LATEST_TAGS_COUNT) -> list[str]:
    """The first `count` tags in byte-wise descending order (Flux's `latestTags`)."""
    return sorted(tags, key=lambda t: t.encode(), reverse=True)[:count]
