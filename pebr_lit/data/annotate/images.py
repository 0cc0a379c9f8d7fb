"""Images as an OpenAI-compatible teacher expects them: base64 data URLs, resized to a longest-side limit.

An encoded image (a file or bytes) in a format every vision API reads (PNG, JPEG, WebP, GIF) and within
the limit is sent as it is; anything larger is shrunk (aspect kept) and anything else re-encoded, as PNG
(lossless) for images that came as PNG and JPEG (quality 90) otherwise, to keep requests small.

Left out on purpose: decoding references (``data.images``) and tiling or cropping for the teacher.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from pebr_lit.data.images import ImageRef, encode_data_url, mime_type, to_rgb

#: MIME types sent without re-encoding.
PASSED = ("image/png", "image/jpeg", "image/webp", "image/gif")


def image_data_url(ref: ImageRef, max_side: int | None = 1024) -> str:
    """A base64 data URL for one normal-form image reference; ``max_side`` = longest side in pixels (null = none).

    Raises ``OSError``/``ValueError`` for a missing or undecodable image (the caller names the row)."""
    data: bytes | None = None
    if isinstance(ref, Image.Image):
        image = ref
    else:
        data = ref if isinstance(ref, bytes) else Path(ref).read_bytes()
        image = Image.open(io.BytesIO(data))
    fits = max_side is None or max(image.size) <= max_side
    if data is not None and fits and mime_type(data) in PASSED:
        image.verify()  # a truncated file fails here, not at the teacher
        return encode_data_url(data)
    was_png = data is None or mime_type(data) == "image/png"
    image = to_rgb(image)
    if not fits:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG" if was_png else "JPEG", **({} if was_png else {"quality": 90}))
    return encode_data_url(buffer.getvalue())
