"""Which faces of a frame are worth the encoder (issue 23): the encoder is the daemon's
dearest step (about 110 ms a face on one Pi 4 core), and a face seen in 30 frames a
second does not need 30 embeddings to be named once.

Per track (``edge.tracker``), an embedding is taken:

- on the track's first view, and on the first view after a gap (the track was missed in
  the frames before: whoever is there now may be someone else);
- while the track is **undecided** (no name won, no ``unknown`` given) or **in doubt** (a
  re-check did not name its person): every ``recheck_s`` seconds, or at once when a view
  is clearly better than every view embedded so far (:func:`better`);
- once **decided** as unknown: on a clearly better view (the face turned to the camera),
  and every ``unknown_check_s`` (a re-check that names someone makes the track undecided
  again, so it is re-checked every ``recheck_s`` until k of n agree or the name fades);
- once **recognized**: every ``identity_check_s`` only (a stranger stepping into the
  person's place is caught there, ``edge.tracker``).

A budget (``max_embeds_per_s``, a token bucket in frame time, 0 = none) goes first to
undecided and doubtful tracks, then to the largest faces; a face left out waits for the
next frame. Time is the frames' own timestamps, so a clip read faster than real time is
scheduled as it would be live.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.decision import FaceQuality
from edge.types import TrackState

#: a view is "clearly better" when its face is this much larger ...
BETTER_SIZE = 1.25
#: ... or this much sharper (variance of the Laplacian) ...
BETTER_SHARPNESS = 1.5
#: ... or this much more frontal (yaw, in inter-eye distances), without being much smaller
BETTER_YAW = 0.15
#: a sharper or more frontal view must keep this share of the best view's size
KEEP_SIZE = 0.8
#: intervals are met this much early (seconds): frame times are sums of float periods
SLACK_S = 1e-3


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    enabled: bool = True  # False: every face of every frame is embedded (the old loop)
    max_embeds_per_s: float = 8.0  # the budget; 0: unlimited
    recheck_s: float = 0.1  # an undecided or doubtful track's re-check interval
    identity_check_s: float = 2.0  # a named track's re-check interval
    unknown_check_s: float = 0.5  # an unknown track's re-check interval

    def __post_init__(self) -> None:
        if self.max_embeds_per_s < 0:
            raise ValueError(f"max_embeds_per_s must be >= 0, got {self.max_embeds_per_s}")
        if min(self.recheck_s, self.identity_check_s, self.unknown_check_s) < 0:
            raise ValueError("re-check intervals must be >= 0")


@dataclass(frozen=True, slots=True)
class View:
    """One face of a frame as the schedule sees it: its track and how good it is."""

    track_id: int
    quality: FaceQuality
    state: TrackState  # the track's
    regained: bool = False  # the track was missed in the frame before


def better(view: FaceQuality, best: FaceQuality) -> bool:
    """Is ``view`` clearly better than ``best`` (the best view embedded so far)? Larger by
    a quarter, or sharper by half or more frontal by 0.15 while keeping 80% of the size."""
    if view.size_px >= BETTER_SIZE * best.size_px:
        return True
    if view.size_px < KEEP_SIZE * best.size_px:
        return False
    return (
        view.sharpness >= BETTER_SHARPNESS * best.sharpness
        or abs(view.yaw) <= abs(best.yaw) - BETTER_YAW
    )


def merge_best(a: FaceQuality, b: FaceQuality) -> FaceQuality:
    """The best of two views on each signal (what a later view must beat)."""
    return FaceQuality(max(a.size_px, b.size_px), max(a.sharpness, b.sharpness),
                       min(a.yaw, b.yaw, key=abs))  # fmt: skip


@dataclass(slots=True)
class _Seen:
    last: float  # when this track was last embedded
    best: FaceQuality  # the best of its embedded views, signal by signal


@dataclass(slots=True)
class EmbedSchedule:
    """The per-track schedule and the budget: ``pick`` which views of a frame to embed,
    ``embedded`` what was, ``forget`` tracks that ended."""

    settings: ScheduleSettings = field(default_factory=ScheduleSettings)
    _tracks: dict[int, _Seen] = field(default_factory=dict)
    _tokens: float | None = None  # None: the bucket starts full on the first frame
    _clock: float | None = None

    def wants(self, view: View, now: float) -> bool:
        """Would this view be embedded, budget aside?"""
        s = self.settings
        seen = self._tracks.get(view.track_id)
        if not s.enabled or seen is None or view.state == "new" or view.regained:
            return True
        since = now - seen.last + SLACK_S
        if view.state in ("undecided", "doubt"):
            return since >= s.recheck_s or better(view.quality, seen.best)
        if view.state == "unknown":
            return since >= s.unknown_check_s or better(view.quality, seen.best)
        return since >= s.identity_check_s

    def pick(self, views: list[View], now: float) -> list[int]:
        """The indices of ``views`` to embed now, in the order the budget served them."""
        wanted = [i for i, v in enumerate(views) if self.wants(v, now)]
        if not self.settings.enabled:
            return wanted
        urgent = ("new", "undecided", "doubt")
        wanted.sort(key=lambda i: (views[i].state not in urgent, -views[i].quality.size_px))
        rate = self.settings.max_embeds_per_s
        if rate <= 0:
            return wanted
        cap = max(1.0, rate)
        if self._tokens is None or self._clock is None:
            self._tokens = cap
        else:
            self._tokens = min(cap, self._tokens + max(0.0, now - self._clock) * rate)
        self._clock = now
        granted = wanted[: int(self._tokens)]
        self._tokens -= len(granted)
        return granted

    def embedded(self, view: View, now: float) -> None:
        """``view`` was embedded at ``now``."""
        seen = self._tracks.get(view.track_id)
        if seen is None or view.state == "new":
            self._tracks[view.track_id] = _Seen(now, view.quality)
        else:
            seen.last, seen.best = now, merge_best(seen.best, view.quality)

    def forget(self, live: set[int]) -> None:
        """Drop what is kept of tracks no longer in ``live``."""
        for track_id in [t for t in self._tracks if t not in live]:
            del self._tracks[track_id]
