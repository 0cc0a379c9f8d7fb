"""Prompts: the user turn built from a question, chosen by ``class_path`` (pebr-lit's instruction or a Jinja file).

A ``Prompt`` turns a question and its image count into the user turn's messages (Hugging Face's
multimodal format, ``format.response.build_messages``). ``InstructionPrompt`` (the default everywhere)
puts pebr-lit's ``INSTRUCTION`` before the question; ``TemplatePrompt`` renders a Jinja file whose
``{{ content }}`` is the question, as EasyR1 reads its ``format_prompt`` (the file's text stripped, then
rendered), so the authors' ``pebr_format.jinja`` can be used as they ship it.

Images: when the rendered text holds ``image_marker`` (default ``"<image>"``, as in the authors' data),
image ``k`` goes where marker ``k`` stands and no marker text reaches the model; without a marker the
images come first. Benchmarks' own ``IMAGE_SLOT`` marks keep working under every prompt.

Left out on purpose: tokenisation (``data.collate``) and naming the row of a bad prompt (``data.collate``
turns ``ImageCountError`` into a ``RecordError``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta

from pebr_lit.format.response import IMAGE_SLOT, INSTRUCTION, ImageCountError, build_messages, build_user_text

#: The image marker of the authors' data (and LLaVA-style data in general).
IMAGE_MARKER = "<image>"


class Prompt:
    """Base of the prompt classes: question + image count -> the user turn's messages.

    Args:
        image_marker: Text in the rendered prompt that marks where an image goes, one per image in order;
            null = never look for one (a literal marker then stays text).
    """

    def __init__(self, image_marker: str | None = IMAGE_MARKER) -> None:
        if image_marker is not None and not image_marker.strip():
            raise ValueError(
                f"{type(self).__name__}.image_marker={image_marker!r}: an empty marker matches everywhere. "
                'Use "<image>" or null for none.'
            )
        self.image_marker = image_marker

    def text(self, question: str) -> str:
        """The user turn's text for ``question``, before images are placed."""
        raise NotImplementedError(f"{type(self).__name__} must define text(question).")

    def describe(self) -> dict[str, Any]:
        """What made the prompt, for results files (``modules.evaluation``): class and settings."""
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}", "image_marker": self.image_marker}

    def messages(self, question: str, num_images: int) -> list[dict[str, Any]]:
        """The user turn: image ``k`` at marker ``k`` when the text holds markers, else every image first.

        Raises ``ImageCountError`` when the markers (plus any ``IMAGE_SLOT``) are not one per image.
        """
        text = self.text(question)
        marker = self.image_marker
        if marker and marker in text:
            found = text.count(marker)
            text = text.replace(marker, IMAGE_SLOT)
            slots = text.count(IMAGE_SLOT)  # a benchmark's own slots count as places too
            if slots != num_images:
                others = f" and {slots - found} image slot(s)" if slots != found else ""
                raise ImageCountError(
                    f"the prompt holds {found} image marker(s) {marker!r}{others} for {num_images} image(s)",
                    f"write one {marker!r} per image in prompt order, or none to put every image first",
                )
        return build_messages(text, num_images, instruction="")


class InstructionPrompt(Prompt):
    """pebr-lit's own prompt: a format instruction, a blank line, then the question (the paper's order).

    Args:
        instruction: Format instruction placed before each question ("" for the bare question).
        image_marker: Text marking where an image goes, one per image; null = never look for one.
    """

    def __init__(self, instruction: str = INSTRUCTION, image_marker: str | None = IMAGE_MARKER) -> None:
        super().__init__(image_marker)
        self.instruction = instruction

    def text(self, question: str) -> str:
        return build_user_text(question, self.instruction)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "instruction": self.instruction}


class TemplatePrompt(Prompt):
    """A Jinja template file rendered with ``content`` = the question, as EasyR1 renders ``format_prompt``.

    Args:
        template: Path of a Jinja file that holds ``{{ content }}`` where the question goes (e.g. the
            authors' ``examples/format_prompt/pebr_format.jinja``); its text is stripped before rendering.
        image_marker: Text marking where an image goes, one per image; null = never look for one.
    """

    def __init__(self, template: str, image_marker: str | None = IMAGE_MARKER) -> None:
        super().__init__(image_marker)
        path = Path(template).expanduser()
        where = f"TemplatePrompt.template={template!r}"
        if not path.is_file():
            raise ValueError(f"{where}: no such file. Give the path of a Jinja file that holds {{{{ content }}}}.")
        try:
            raw = path.read_bytes()
            source = raw.decode("utf-8").strip()
            names = meta.find_undeclared_variables(jinja2.Environment().parse(source))
        except UnicodeDecodeError as e:
            raise ValueError(f"{where}: not UTF-8 text ({e.reason}). Save the template as UTF-8.") from None
        except jinja2.TemplateSyntaxError as e:
            raise ValueError(
                f"{where}: Jinja syntax error at line {e.lineno} ({e.message}). Fix the template."
            ) from None
        if "content" not in names:
            raise ValueError(
                f"{where}: the template never uses {{{{ content }}}}, so the question would not reach the model. "
                "Add {{ content }} where the question goes."
            )
        self.template = template
        #: sha256 of the file's bytes: results name the template's text, not only its path.
        self.sha256 = hashlib.sha256(raw).hexdigest()
        self._source = source
        self._compiled: jinja2.Template | None = None

    def text(self, question: str) -> str:
        if self._compiled is None:
            self._compiled = jinja2.Template(self._source)
        return self._compiled.render(content=question)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "template": self.template, "sha256": self.sha256}

    def __getstate__(self) -> dict[str, Any]:
        # A compiled jinja2 Template does not pickle; DataLoader workers recompile from the source.
        return {**self.__dict__, "_compiled": None}
