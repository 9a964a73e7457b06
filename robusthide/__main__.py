import sys

from robusthide.cli.main import main

sys.exit(main())
