"""The PeBR response format: its prompts (instruction, Jinja template), rendering and parsing; scoring: rewards/."""
