"""Test helpers importable by ``class_path`` from subprocesses started by the tests (e.g. DDP ranks)."""
