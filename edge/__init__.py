"""edge-face: face recognition for edge devices.

Nothing heavy is imported here: the CLI's ``--help`` must work with only the runtime
dependencies, and the daemon loads its models when it starts, not at import time.
"""

__version__ = "0.1.0"
