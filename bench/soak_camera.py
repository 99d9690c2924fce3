"""A looping IP camera for the soak (bench/soak.py): a video clip served for ever as
MJPEG over HTTP, at the clip's own frame rate.

The clip is decoded and JPEG-encoded once; every connection is sent the frame of one
shared timeline (frame ``floor((now - start) * fps) mod N``), as a live camera does: a
client that reconnects joins the picture where it is, not at the clip's start, and a
slow client misses frames instead of being sent a backlog. The same wire format as
tests/integration/mjpeg.py (``multipart/x-mixed-replace``), which OpenCV's FFmpeg reads.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

JPEG_QUALITY = 90


def encode_clip(video: Path) -> tuple[list[bytes], float]:
    """Every frame of ``video`` as JPEG bytes, and the clip's frame rate."""
    capture = cv2.VideoCapture(str(video))
    fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
    frames: list[bytes] = []
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            done, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not done:
                raise RuntimeError(f"{video}: cannot encode frame {len(frames)} as JPEG")
            frames.append(jpeg.tobytes())
    finally:
        capture.release()
    if not frames:
        raise RuntimeError(f"{video}: no frames could be decoded")
    return frames, fps


class LoopingMjpegCamera:
    """``frames`` (JPEG bytes) served in a loop at ``fps`` on 127.0.0.1:``port``."""

    def __init__(self, frames: list[bytes], fps: float, port: int) -> None:
        if not frames or fps <= 0:
            raise ValueError("need at least one frame and a positive frame rate")
        self.frames, self.fps, self.port = frames, fps, port
        self.connections = 0  # how many times a client connected (the daemon's reconnects)
        self.frames_sent = 0
        self._start = time.monotonic()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    @property
    def loop_s(self) -> float:
        return len(self.frames) / self.fps

    def start(self) -> None:
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                with camera._lock:
                    camera.connections += 1
                with contextlib.suppress(OSError):
                    camera._stream(self)

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="soak-camera", daemon=True).start()

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        period = 1.0 / self.fps
        tick = int((time.monotonic() - self._start) * self.fps)
        while not self._stopped.is_set():
            due = self._start + tick * period
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif wait < -1.0:  # fell behind (a stalled reader): rejoin the timeline
                tick = int((time.monotonic() - self._start) * self.fps)
                continue
            jpeg = self.frames[tick % len(self.frames)]
            handler.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
            handler.wfile.write(f"Content-Length: {len(jpeg)}\r\n\r\n".encode())
            handler.wfile.write(jpeg + b"\r\n")
            with self._lock:
                self.frames_sent += 1
            tick += 1
        handler.connection.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._stopped.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
