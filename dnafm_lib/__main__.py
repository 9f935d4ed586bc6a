import sys

from dnafm_lib.cli import main

sys.exit(main())
