import sys

from qa_orchestrator import main

sys.exit(main())
