"""Faces followed across frames, so that one encounter gives one event.

Each frame's faces are assigned to live tracks by box overlap (greedy, highest IoU first).
A track keeps the decisions (a person's name, or None) and distances of its last ``n``
votes (one per embedding of its face). The rules, per track:

- ``recognized``: a person is the decision in at least ``k`` of the track's last ``n``
  votes (frames without an embedding add nothing). One event per person
  per track; a win within ``cooldown_s`` of the last ``recognized`` event for that person
  on this camera (any track) publishes nothing but still counts as the track's event, so
  a long encounter never fires later in the same track.
- ``unknown``: the track has had at least ``unknown_after`` votes, no person
  has ever won k of n in it, and none of its last ``n`` decisions named anyone. At most
  one per track; one within ``unknown_cooldown_s`` of the camera's last ``unknown`` event
  publishes nothing and still counts. A track that was won by a person never fires
  ``unknown``; a track that fired ``unknown`` may later be ``recognized`` (the face turned
  towards the camera).
- A track unmatched for ``max_missed`` consecutive frames is dropped.
- **Identity:** a track joined by box overlap alone would carry a name to whoever steps
  into the person's place. Once a track has a name, ``k`` consecutive *usable* votes (a
  sharp, frontal enough face: ``Policy.usable``) that do not name its person end it, and a
  new track starts from those votes, so the newcomer is judged on its own (``unknown``,
  or another name). ``reset`` ends every track (a scene cut).

A vote is one embedding's decision. ``update`` votes for every face of every frame (the
old per-frame loop); the daemon instead calls ``follow`` for the frame's boxes, embeds
only the faces ``edge.schedule`` picks, and ``vote``s for those, so "k of n" counts
embeddings, not frames, and ``unknown_after`` counts votes.

A decision a cooldown keeps quiet is still a decision: ``quiet`` holds those of the last
``vote`` (the daemon keeps their sightings, publishes nothing).

Cooldowns run from the last *published* event. The clock is the ``now`` argument, so the
pipeline must call ``update`` once per frame, with an empty list when no face was found.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Literal

from edge.types import BBox, Match, RecognitionEvent, TrackState, TrackView

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    iou: float = 0.3  # box overlap needed to continue a track
    k: int = 3  # a person is recognized once named in k ...
    n: int = 5  # ... of the track's last n frames
    unknown_after: int | None = 8  # votes without any name before `unknown`; None: never
    cooldown_s: float = 60.0  # per person and camera, across tracks
    unknown_cooldown_s: float = 10.0  # per camera
    max_missed: int = 10  # consecutive unmatched frames before a track is dropped

    def __post_init__(self) -> None:
        if not 0 < self.iou <= 1:
            raise ValueError(f"iou must be in (0, 1], got {self.iou}")
        if not 1 <= self.k <= self.n:
            raise ValueError(f"expected 1 <= k <= n, got k={self.k}, n={self.n}")
        if self.unknown_after is not None and self.unknown_after < 1:
            raise ValueError(f"unknown_after must be >= 1 or None, got {self.unknown_after}")
        if self.cooldown_s < 0 or self.unknown_cooldown_s < 0:
            raise ValueError("cooldowns must be >= 0")
        if self.max_missed < 1:
            raise ValueError(f"max_missed must be >= 1, got {self.max_missed}")


@dataclass(slots=True)
class _Track:
    id: int
    votes: deque[tuple[str | None, float]]  # the last n votes: (name or None, distance)
    box: BBox = field(init=False)  # set by the first see()
    tau: float = 0.0
    seen: int = 0  # frames the face was found in
    checks: int = 0  # votes ever
    missed: int = 0
    regained: bool = False
    won: set[str] = field(default_factory=set)  # persons who won k of n (event or cooldown)
    unknown_done: bool = False
    doubts: list[tuple[str | None, float]] = field(default_factory=list)  # see Tracker

    def see(self, box: BBox) -> None:
        self.box = box
        self.regained = self.seen > 0 and self.missed > 0
        self.seen += 1
        self.missed = 0

    def add(self, match: Match) -> None:
        self.votes.append((match.person if match.known else None, match.distance))
        self.tau = match.tau
        self.checks += 1

    def state(self) -> TrackState:
        if self.doubts:
            return "doubt"
        if self.won:
            return "recognized"
        if self.unknown_done:  # named again in its window: voting again
            return "undecided" if any(p for p, _ in self.votes) else "unknown"
        return "undecided" if self.checks else "new"


class Tracker:
    """Tracks for one camera: ``update`` once per frame gives that frame's events (every
    face votes), or ``follow`` once per frame and ``vote`` for the faces embedded."""

    def __init__(self, settings: TrackerSettings, camera: str) -> None:
        self.settings = settings
        self.camera = camera
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._last_recognized: dict[str, float] = {}  # person -> time of the last event
        self._last_unknown: float | None = None
        self.quiet: list[RecognitionEvent] = []  # the last vote's decisions a cooldown kept quiet

    def tracks(self) -> int:
        """The number of live tracks."""
        return len(self._tracks)

    def live(self) -> set[int]:
        """The live tracks' ids."""
        return {t.id for t in self._tracks}

    def started(self) -> int:
        """The number of tracks started since this tracker was made."""
        return self._next_id - 1

    def update(self, faces: list[tuple[BBox, Match]], now: float) -> list[RecognitionEvent]:
        """Assign this frame's faces to tracks and return the events they complete."""
        views = self.follow([box for box, _ in faces])
        events: list[RecognitionEvent] = []
        for view, (_, match) in zip(views, faces, strict=True):
            events.extend(self.vote(view.track_id, match, now))
        return events

    def follow(self, boxes: list[BBox]) -> list[TrackView]:
        """Assign this frame's boxes to tracks (starting new ones), age and drop the
        tracks not seen; one view per box, in order."""
        assigned = self._assign(boxes)
        tracks: list[_Track] = []
        for face_index, box in enumerate(boxes):
            track = assigned.get(face_index) or self._new_track()
            track.see(box)
            tracks.append(track)
        seen_ids = {t.id for t in tracks}
        for track in self._tracks:
            if track.id not in seen_ids:
                track.missed += 1
        live = []
        for track in self._tracks:
            if track.missed < self.settings.max_missed:
                live.append(track)
            else:
                logger.debug(
                    "track %d on %s dropped after %d frames", track.id, self.camera, track.seen
                )
        self._tracks = live
        return [TrackView(t.id, t.state(), t.regained) for t in tracks]

    def vote(
        self, track_id: int, match: Match, now: float, usable: bool = True
    ) -> list[RecognitionEvent]:
        """One embedding's decision for a face of this frame (``follow`` gave its track);
        ``usable``: the face was sharp and frontal enough to trust (``Policy.usable``).
        Returns the events it completes."""
        self.quiet = []
        track = next((t for t in self._tracks if t.id == track_id), None)
        if track is None:
            raise KeyError(f"no live track {track_id} on {self.camera}")
        if track.won:
            track = self._check_identity(track, match, usable)
        track.add(match)
        return self._judge(track, now)

    def reset(self) -> None:
        """End every track (the scene changed: a camera cut, a moved camera)."""
        if self._tracks:
            logger.debug("%d tracks on %s ended by a scene cut", len(self._tracks), self.camera)
        self._tracks = []

    def _check_identity(self, track: _Track, match: Match, usable: bool) -> _Track:
        """A named track's re-check: k usable votes in a row that do not name its person
        end it, and a new track carries them on."""
        if match.known and match.person in track.won:
            track.doubts.clear()
            return track
        if not usable:
            return track
        if len(track.doubts) + 1 < self.settings.k:
            track.doubts.append((match.person if match.known else None, match.distance))
            return track
        logger.info(
            "track %d on %s no longer shows %s: a new track starts",
            track.id, self.camera, ", ".join(sorted(track.won)),
        )  # fmt: skip
        self._tracks.remove(track)
        newcomer = self._new_track()
        newcomer.box, newcomer.seen = track.box, 1
        for person, distance in track.doubts:
            newcomer.votes.append((person, distance))
            newcomer.checks += 1
        return newcomer

    def _assign(self, boxes: list[BBox]) -> dict[int, _Track]:
        pairs = [
            (box.iou(track.box), track.id, face_index, track)
            for face_index, box in enumerate(boxes)
            for track in self._tracks
        ]
        pairs = [p for p in pairs if p[0] >= self.settings.iou]
        # best overlap first; the sort is stable and the pairs were listed face by face,
        # tracks in id order: a tie goes to the earlier face, then to the older track
        pairs.sort(key=lambda p: -p[0])
        assigned: dict[int, _Track] = {}
        used: set[int] = set()
        for _, track_id, face_index, track in pairs:
            if face_index in assigned or track_id in used:
                continue
            assigned[face_index] = track
            used.add(track_id)
        return assigned

    def _new_track(self) -> _Track:
        track = _Track(self._next_id, deque(maxlen=self.settings.n))
        self._next_id += 1
        self._tracks.append(track)
        logger.debug("track %d on %s started", track.id, self.camera)
        return track

    def _judge(self, track: _Track, now: float) -> list[RecognitionEvent]:
        s = self.settings
        events: list[RecognitionEvent] = []
        votes = Counter(p for p, _ in track.votes if p is not None)
        # a frame adds one vote: only the person it names can newly reach k
        person = track.votes[-1][0]
        if person is not None and person not in track.won and votes[person] >= s.k:
            track.won.add(person)
            last = self._last_recognized.get(person)
            best = min(d for p, d in track.votes if p == person)
            if last is not None and 0 <= now - last < s.cooldown_s:  # a clock set back: not
                logger.info("%s on %s (track %d): within cooldown", person, self.camera, track.id)
                self.quiet.append(self._event(track, "recognized", person, best, now, log=False))
            else:
                self._last_recognized[person] = now
                events.append(self._event(track, "recognized", person, best, now))

        if (
            s.unknown_after is not None
            and not track.unknown_done
            and not track.won
            and track.checks >= s.unknown_after
            and not votes
        ):
            track.unknown_done = True
            last_unknown = self._last_unknown
            best = min(d for _, d in track.votes)
            if last_unknown is not None and 0 <= now - last_unknown < s.unknown_cooldown_s:
                logger.info("unknown on %s (track %d): within cooldown", self.camera, track.id)
                self.quiet.append(self._event(track, "unknown", None, best, now, log=False))
            else:
                self._last_unknown = now
                events.append(self._event(track, "unknown", None, best, now))
        return events

    def _event(
        self,
        track: _Track,
        kind: Literal["recognized", "unknown"],
        person: str | None,
        distance: float,
        now: float,
        log: bool = True,
    ) -> RecognitionEvent:
        if log:
            logger.info(
                "%s %s on %s (track %d, %d frames, distance %.3f)",
                kind, person or "-", self.camera, track.id, track.seen, distance,
            )  # fmt: skip
        return RecognitionEvent(
            event_id=uuid.uuid4().hex,
            type=kind,
            person=person,
            distance=distance,
            tau=track.tau,
            camera=self.camera,
            track_id=track.id,
            box=track.box,
            frames=track.seen,
            time=now,
        )
