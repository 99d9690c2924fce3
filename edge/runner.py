"""The two threads of the daemon: capture (source -> hand-off) and processing
(hand-off -> pipeline), the watchdog pings, the frame-rate cap and the status ticks: every
``tick_s``, at once when the camera is lost or back (the source's ``ok``), and soon after
:meth:`Runner.tick_soon` (the broker has just connected).

Per-frame errors are logged (once per kind and minute, not per frame) and the loop goes
on; only a stop request or the end of a recording ends it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from edge.handoff import FrameHandoff
from edge.ports import FrameProcessor, FrameSource

logger = logging.getLogger(__name__)


class Runner:
    def __init__(
        self,
        source: FrameSource,
        pipeline: FrameProcessor,
        live: bool,
        stop: threading.Event,
        max_fps: float = 0.0,
        on_tick: Callable[[], None] = lambda: None,
        tick_s: float = 30.0,
        watchdog: Callable[[], None] = lambda: None,
    ) -> None:
        self.source, self.pipeline, self.stop = source, pipeline, stop
        self.handoff = FrameHandoff(drop_stale=live)
        self.min_interval = 1.0 / max_fps if max_fps > 0 else 0.0
        self.on_tick, self.tick_s, self.watchdog = on_tick, tick_s, watchdog
        self._errors: dict[str, float] = {}
        self._tick_soon = threading.Event()

    def tick_soon(self) -> None:
        """Tick at the next turn of the loop (within half a second); safe from any thread."""
        self._tick_soon.set()

    def _camera_ok(self) -> bool:
        return bool(getattr(self.source, "ok", True))

    def _capture(self) -> None:
        try:
            while not self.stop.is_set():
                frame = self.source.read()
                if frame is None:
                    logger.info("the source has no more frames")
                    break
                self.handoff.put(frame)
        except Exception:
            logger.exception("the camera thread failed")
        finally:
            self.handoff.end()

    def run(self) -> None:
        """Process frames until stopped or the recording ends."""
        capture = threading.Thread(target=self._capture, name="capture", daemon=True)
        capture.start()
        next_tick = time.monotonic() + self.tick_s
        last = 0.0
        camera_ok = self._camera_ok()
        while not self.stop.is_set() and not self.handoff.ended:
            frame = self.handoff.take(timeout=0.5)
            self.watchdog()
            if frame is not None:
                wait = self.min_interval - (time.monotonic() - last)
                if wait > 0 and self.stop.wait(wait):
                    break
                last = time.monotonic()
                try:
                    self.pipeline.process(frame)
                except Exception as exc:
                    self._log_error(exc)
            was_ok, camera_ok = camera_ok, self._camera_ok()
            if camera_ok != was_ok or self._tick_soon.is_set() or time.monotonic() >= next_tick:
                self._tick_soon.clear()
                next_tick = time.monotonic() + self.tick_s
                self.on_tick()
        self.source.close()  # also wakes a live source waiting to reconnect
        self.handoff.end()
        capture.join(timeout=2.0)

    def _log_error(self, exc: Exception) -> None:
        kind = type(exc).__name__
        now = time.monotonic()
        if now - self._errors.get(kind, -1e9) >= 60:
            self._errors[kind] = now
            logger.exception(
                "a frame failed (%s); going on (repeats of this error are logged once a minute)",
                kind,
            )
