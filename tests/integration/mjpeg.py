"""A tiny MJPEG-over-HTTP camera for tests: the kind of stream an IP camera serves."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np


class MjpegCamera:
    def __init__(self, frame: np.ndarray, port: int, fps: float = 15.0) -> None:
        ok, jpeg = cv2.imencode(".jpg", frame)
        assert ok
        self.jpeg, self.port, self.period = jpeg.tobytes(), port, 1.0 / fps
        self._server: ThreadingHTTPServer | None = None
        self._stopped = threading.Event()
        self._flowing = threading.Event()  # cleared: connections stay open, nothing is sent
        self._flowing.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> None:
        camera = self
        self._stopped.clear()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not camera._stopped.is_set():
                        camera._flowing.wait()
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                        self.wfile.write(f"Content-Length: {len(camera.jpeg)}\r\n\r\n".encode())
                        self.wfile.write(camera.jpeg + b"\r\n")
                        time.sleep(camera.period)
                except OSError:
                    return
                self.connection.shutdown(socket.SHUT_RDWR)

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stall(self) -> None:
        """The camera hangs: connections stay open and accepted, no frame comes."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def stop(self) -> None:
        """The camera goes away: streams end, new connections are refused."""
        self._flowing.set()
        self._stopped.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
