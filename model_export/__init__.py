"""model_export: turns a trained Siamese face encoder into a verified int8 TFLite bundle.

Runs on a workstation (or the Pi). Needs the ``export`` extra (TensorFlow), imported only
inside the commands that use it.
"""

from edge import __version__

__all__ = ["__version__"]
