"""python -m starling"""

import sys

from starling.cli import main

sys.exit(main())
