import sys

from telugu_s2s.training.cli import main

sys.exit(main())
