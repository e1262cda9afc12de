import sys

from agentflow import main

sys.exit(main())
