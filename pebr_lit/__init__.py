"""pebr-lit: PeBR-R1 trained with PyTorch Lightning; each sub-package owns one concern (see its docstring)."""
