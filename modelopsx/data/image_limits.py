"""How large an image the data tools decode, checked on the header before any pixel is.

A PNG or JPEG header can declare any size: 50000 x 50000 fits in a few hundred bytes, and decoding it takes
gigabytes (a decompression bomb). Importers and `validate` read the header first and refuse an image that
declares more than MAX_IMAGE_PIXELS, Pillow's own bomb threshold (about 9,500 x 9,500, far above any
pedestrian dataset's frames), before OpenCV or Pillow decode it.
"""

from __future__ import annotations

import io
from pathlib import Path

MAX_IMAGE_PIXELS = 89_478_485  # PIL.Image.MAX_IMAGE_PIXELS's default


class ImageTooLarge(ValueError):
    """The image header declares more pixels than the tools decode."""


def header_size(source: Path | bytes) -> tuple[int, int]:
    """(width, height) as the header declares them, nothing decoded; ImageTooLarge over the limit. An
    unreadable header raises what Pillow raises (UnidentifiedImageError, OSError, ...)."""
    from PIL import Image

    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with Image.open(handle) as img:
            width, height = img.size
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(
            f"the image header declares more than twice the limit of {MAX_IMAGE_PIXELS:,} pixels ({exc}); "
            "refused before decoding"
        ) from None
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageTooLarge(
            f"the image header declares {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{MAX_IMAGE_PIXELS:,}; refused before decoding, as a decompression bomb would be"
        )
    return int(width), int(height)
