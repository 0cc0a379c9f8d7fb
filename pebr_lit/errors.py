"""``ConfigError``: a bad setting (a missing or damaged file, a path that is not there), raised before work starts.

Its message is one line: the setting, its value, the problem and what to do. ``cli.py`` prints it alone (no
traceback, no jsonargparse dump of the whole config) and exits with status 2, wherever it was raised (a
module's ``__init__`` inside jsonargparse's instantiation included: the CLI looks down the exception's causes).

Left out on purpose: checking anything (each setting's owner raises it).
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting that cannot work as given; the message names it and says what to do."""
