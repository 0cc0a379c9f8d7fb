"""``python -m pebr_lit.demo``: run the demo driver."""

import sys

from pebr_lit.demo.driver import main

sys.exit(main())
