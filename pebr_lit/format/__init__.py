"""The PeBR response format: its instruction, rendering and parsing of responses; scoring is in rewards/."""
