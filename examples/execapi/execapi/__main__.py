import sys

from execapi import main

sys.exit(main())
