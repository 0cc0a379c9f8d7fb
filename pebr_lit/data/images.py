"""Image references in records: normalise the forms datasets store, and decode them to RGB PIL images.

A reference is held in one of three normal forms (``ImageRef``):
  - ``str``: a file path (absolute once a loader has resolved it against its ``image_root``);
  - ``bytes``: encoded image bytes (PNG, JPEG, ...), from Parquet / ``datasets`` or a ``data:`` URL;
  - ``PIL.Image.Image``: an image already in memory (``datasets`` with a decoding ``Image`` feature).
``normalise_ref`` accepts the raw forms and raises ``ValueError("<problem>. <what to do>")``;
``data.records`` adds the file, row and field to that message.

Left out on purpose: resizing and processor-specific pre-processing (the policy's processor does it),
and any knowledge of records, rows or files.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
from pathlib import Path
from typing import Any

from PIL import Image

ImageRef = str | bytes | Image.Image

_DATA_URL_RE = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,", re.IGNORECASE)

# Magic numbers -> MIME type, so that a written data URL names the real format.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)

#: What to do about an image path outside the image root (said once, by every message that refuses one).
OUTSIDE_ROOT_FIX = (
    "Keep images under the image root, point data.init_args.image_root (--image-root) at a folder holding them, "
    "or set allow_outside_root: true (--allow-outside-root) if the files are trusted"
)
_FORMS = "give a path string, image bytes, a {'bytes': ..., 'path': ...} dict or a 'data:image/...;base64,' URL"


def is_data_url(text: str) -> bool:
    """Whether ``text`` is a base64 image data URL (``data:image/<type>;base64,<payload>``)."""
    return bool(_DATA_URL_RE.match(text))


def decode_data_url(text: str) -> bytes:
    """The image bytes inside a base64 data URL; ``ValueError`` if the payload is not valid base64."""
    match = _DATA_URL_RE.match(text)
    if match is None:
        raise ValueError("not a 'data:image/<type>;base64,' URL. Write the prefix exactly like that")
    payload = "".join(text[match.end() :].split())  # line-wrapped base64 is common in hand-made files
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"invalid base64 in data URL ({e}). Re-encode the image with base64.b64encode") from None
    if not data:
        raise ValueError("data URL holds no bytes. Encode the image file's bytes after 'base64,'")
    return data


def mime_type(data: bytes) -> str:
    """The MIME type of encoded image bytes, guessed from their first bytes ("image/png" when unknown)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    return "image/png"


def encode_data_url(data: bytes) -> str:
    """A base64 data URL holding ``data``; the inverse of ``decode_data_url``."""
    return f"data:{mime_type(data)};base64,{base64.b64encode(data).decode('ascii')}"


def png_bytes(image: Image.Image) -> bytes:
    """``image`` encoded as PNG (lossless, so writing an in-memory image loses nothing)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def normalise_ref(value: Any, image_root: Path | None, confine: bool = False) -> ImageRef:
    """One raw image reference in normal form; relative paths are joined to ``image_root`` when given.

    Data URLs become bytes; ``{"bytes": b, "path": p}`` dicts (Hugging Face's ``Image`` feature) become
    ``b`` when present, else the path ``p``. With ``confine`` (and an ``image_root``), a path that leaves
    the root (``..``, or an absolute path elsewhere) is refused; the check is on the path's text after
    normalisation, so a symlink placed inside the root is followed. Raises ``ValueError("<problem>. <what to do>")``.
    """
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        if len(value) == 0:
            raise ValueError(f"empty bytes. {_FORMS}")
        return bytes(value)
    if isinstance(value, dict):
        if value.get("bytes") is not None:
            return normalise_ref(value["bytes"], image_root, confine)
        if value.get("path") is not None:
            return normalise_ref(value["path"], image_root, confine)
        raise ValueError(f"dict without 'bytes' or 'path' (keys: {sorted(map(str, value))}). {_FORMS}")
    if isinstance(value, str):
        if is_data_url(value):
            return decode_data_url(value)
        if value.lower().startswith("data:"):
            raise ValueError("data URL is not 'data:image/<type>;base64,...'. Use a base64 image data URL")
        if not value.strip():
            raise ValueError(f"empty path. {_FORMS}")
        if "\x00" in value:
            raise ValueError(f"path holds a NUL character. {_FORMS}")
        path = Path(value)
        if image_root is not None and not path.is_absolute():
            path = image_root / path
        if confine and image_root is not None and not is_inside(path, image_root):
            resolved = os.path.normpath(os.path.abspath(path))
            shown = repr(value) if resolved == value else f"{value!r} (= {resolved})"
            raise ValueError(
                f"image path {shown} is outside the image root {os.path.abspath(image_root)}. {OUTSIDE_ROOT_FIX}"
            )
        return str(path)
    if value is None:
        raise ValueError(f"missing image (null). {_FORMS}")
    raise ValueError(f"unsupported image reference of type {type(value).__name__}. {_FORMS}")


def is_inside(path: str | Path, root: str | Path) -> bool:
    """Whether ``path`` lies in ``root`` once both are made absolute and ``..`` is folded (symlinks not resolved)."""
    path, root = os.path.normpath(os.path.abspath(path)), os.path.normpath(os.path.abspath(root))
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` in RGB; transparent pixels become white, not black, as most VLM pipelines expect."""
    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def open_rgb(ref: ImageRef) -> Image.Image:
    """Decode a normal-form reference to an RGB image fully read into memory.

    Raises ``FileNotFoundError`` for a missing path and ``ValueError("<problem>. <what to do>")`` for
    bytes or a file that is not a readable image.
    """
    if isinstance(ref, Image.Image):
        return to_rgb(ref)
    if isinstance(ref, str) and not Path(ref).is_file():
        raise FileNotFoundError(ref)
    try:
        # Opening the path (not a file object we hold) lets PIL close it once load() has read the pixels.
        with Image.open(ref if isinstance(ref, str) else io.BytesIO(ref)) as image:
            image.load()
            return to_rgb(image)
    # PIL raises OSError subclasses for bad data, but also SyntaxError/ValueError from some plugins.
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        what = f"file {ref}" if isinstance(ref, str) else f"{len(ref)} bytes"
        problem = f"cannot decode image from {what} ({type(e).__name__}: {e})"
        raise ValueError(f"{problem}. Re-save it as PNG or JPEG") from None
