"""Image checks before training: does a reference exist, does its header decode, is its size usable.

``image_problem`` reads what it can cheaply: the header (format and size) always, ``verify()`` (PNG chunk
checksums up to the end marker), a JPEG's end-of-image marker, and a full decode of small images
(``FULL_DECODE_PIXELS``), where it costs a few milliseconds. A large JPEG with damage inside its data but
an intact end is therefore only found when it is decoded (in the DataLoader, where ``Record.load_images``
names its row). Sizes: the authors drop images whose shortest side is under 28 px (``MIN_SIDE``);
``min_pixels``/``max_pixels`` refuse an area outside those bounds (they are refusal bounds, not the
processor's resize bounds of the same name, which resize anything in between).

Left out on purpose: records, rows and files (``data.validation`` names them), resizing (the processor).
"""

from __future__ import annotations

import io
import os
import warnings

from PIL import Image

from pebr_lit.data.images import ImageRef

#: The authors' floor: an image whose width or height is under this many pixels is dropped.
MIN_SIDE = 28
#: Images up to this many pixels are decoded fully at the check (a few ms each); larger ones header-only.
FULL_DECODE_PIXELS = 512 * 512
#: Bytes of a JPEG's tail searched for the end-of-image marker (some writers pad after it).
_JPEG_TAIL = 1024

_REPLACE = "Replace the image (re-save it as PNG or JPEG) or drop the row"


def image_problem(
    ref: ImageRef, min_side: int = MIN_SIDE, min_pixels: int | None = None, max_pixels: int | None = None
) -> tuple[str, str] | None:
    """``(problem, what to do)`` when a normal-form reference is missing, unreadable or of a refused size; else None."""
    if isinstance(ref, Image.Image):
        return _size_problem(ref.size, min_side, min_pixels, max_pixels)
    if isinstance(ref, str) and not os.path.isfile(ref):
        return f"image file not found: {ref}", "Check the path and the image_root it is relative to"
    what = f"file {ref}" if isinstance(ref, str) else f"{len(ref)} image bytes"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # a bomb is a bad row, not a warning
            size, fmt = _check_decodes(ref)
    # PIL raises OSError subclasses for bad data, but also SyntaxError/ValueError from some plugins.
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as e:
        return f"cannot decode image from {what} ({type(e).__name__}: {e})", _REPLACE
    if fmt == "JPEG" and b"\xff\xd9" not in _tail(ref):
        return f"image from {what} is truncated (JPEG without its end-of-image marker)", _REPLACE
    return _size_problem(size, min_side, min_pixels, max_pixels)


def _check_decodes(ref: str | bytes) -> tuple[tuple[int, int], str]:
    """The image's size and format; raises what PIL raises for a file it cannot read."""
    source = ref if isinstance(ref, str) else io.BytesIO(ref)
    with Image.open(source) as image:
        size, fmt = image.size, image.format
        image.verify()  # checksums and structure; the image cannot be used after this
    if size[0] * size[1] <= FULL_DECODE_PIXELS:
        with Image.open(ref if isinstance(ref, str) else io.BytesIO(ref)) as image:
            image.load()
    return size, fmt or ""


def _tail(ref: str | bytes) -> bytes:
    if isinstance(ref, bytes):
        return ref[-_JPEG_TAIL:]
    with open(ref, "rb") as f:
        f.seek(max(0, os.fstat(f.fileno()).st_size - _JPEG_TAIL))
        return f.read()


def _size_problem(
    size: tuple[int, int], min_side: int, min_pixels: int | None, max_pixels: int | None
) -> tuple[str, str] | None:
    width, height = size
    if min(width, height) < min_side:
        return (
            f"{width}x{height} px: shortest side under {min_side} px (the authors drop such images)",
            "Replace the image with a larger one or drop the row",
        )
    if min_pixels is not None and width * height < min_pixels:
        return f"{width}x{height} px = {width * height} pixels, under min_pixels={min_pixels}", "Replace the image"
    if max_pixels is not None and width * height > max_pixels:
        return (
            f"{width}x{height} px = {width * height} pixels, over max_pixels={max_pixels}",
            "Downscale the image or raise max_pixels",
        )
    return None
