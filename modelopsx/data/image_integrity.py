"""Whether encoded image bytes are a whole, decodable image: JPEG and PNG structure walked to their end
(a truncated JPEG often still decodes), the declared size checked before decoding, then a full decode."""

from __future__ import annotations

from modelopsx.data.image_limits import ImageTooLarge, header_size


class JpegStructureError(ValueError):
    """The bytes break JPEG's segment structure (not merely cut short)."""


def jpeg_end(data: bytes) -> int | None:
    """Offset just past the JPEG's EOI marker, or None if the data ends first (truncated).

    Raises JpegStructureError where a marker should be and is not.

    Walks the segment structure (lengths skip APPn payloads such as EXIF thumbnails, whose own EOI must not
    count) and scans entropy-coded data for the next real marker (FF 00 is stuffing, FF D0..D7 are restarts).
    """
    n, pos = len(data), 2
    while pos < n:
        if data[pos] != 0xFF:
            raise JpegStructureError(f"byte {pos} should start a marker")
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            return None
        marker = data[pos]
        if marker == 0x00:
            raise JpegStructureError(f"invalid marker at byte {pos}")
        pos += 1
        if marker == 0xD9:
            return pos
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if pos + 2 > n:
            return None
        pos += int.from_bytes(data[pos : pos + 2], "big")
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next marker
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    return None
                following = data[pos + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                    pos += 1
                    continue
                break
    return None


def png_end(data: bytes) -> int | None:
    """Offset just past the PNG's IEND chunk, or None if the chunk list is cut short."""
    n, pos = len(data), 8
    while pos + 8 <= n:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if pos > n:
            return None
        if kind == b"IEND":
            return pos
    return None


def check_image_bytes(data: bytes) -> tuple[str | None, str | None, tuple[int, int] | None]:
    """(error, warning, (width, height)) for encoded image bytes; decodes fully with OpenCV.

    A truncated JPEG often still decodes (libjpeg pads the missing rows with grey), so JPEG and PNG files must
    also be structurally complete (EOI marker / IEND chunk reached).
    """
    if not data:
        return "empty file (0 bytes)", None, None
    import cv2
    import numpy as np

    warning = None
    end: int | None = len(data)
    if data[:3] == b"\xff\xd8\xff":
        try:
            end = jpeg_end(data)
        except JpegStructureError as exc:  # libjpeg tolerates some junk: let the decoder decide
            warning, end = f"irregular JPEG structure ({exc})", None
        else:
            if end is None:
                return "truncated or corrupt JPEG (end-of-image marker FF D9 never reached)", None, None
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        end = png_end(data)
        if end is None:
            return "truncated PNG (data ends before the IEND chunk)", None, None
    if end is not None and data[end:].strip(b"\x00\r\n "):
        warning = f"{len(data) - end} extra byte(s) after the end of the image"
    try:
        header_size(data)
    except ImageTooLarge as exc:
        return str(exc), None, None
    except Exception:  # noqa: BLE001 - a header Pillow cannot read: the decoder below judges the image
        pass
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # e.g. OpenCV's own pixel limit, for a format Pillow does not read
        return f"not a decodable image ({str(exc).strip().splitlines()[-1]})", None, None
    if image is None or image.size == 0:
        return "not a decodable image (corrupt or unsupported format)", None, None
    return None, warning, (int(image.shape[1]), int(image.shape[0]))
