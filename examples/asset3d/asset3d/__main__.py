import sys

from asset3d import main

sys.exit(main())
