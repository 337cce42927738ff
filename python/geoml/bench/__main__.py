"""``python -m geoml.bench <family> [--quick] ...`` (the same as ``geoml bench``)."""

import sys

from . import main

sys.exit(main())
