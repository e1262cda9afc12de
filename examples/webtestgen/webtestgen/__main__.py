import sys

from webtestgen import main

sys.exit(main())
