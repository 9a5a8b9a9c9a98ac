"""napari-cnnjpeg: JPEG made better with convolutional networks.

A CNN pre-processes an image before a standard JPEG encoder, the JPEG bytes are
stored in a ``.cjpg`` file, and a CNN post-processes the decoded JPEG.
"""

from .codec import decode, encode, imread, imwrite, info, read_plane, restore
from .errors import CjpgError
from .nn.models import available_models, default_model, model_summary

__version__ = "0.1.0"

__all__ = [
    "CjpgError", "available_models", "decode", "default_model", "encode", "imread", "imwrite", "info",
    "model_summary", "read_plane", "restore",
]
