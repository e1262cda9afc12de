import sys

from pypipe import main

sys.exit(main())
