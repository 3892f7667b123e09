"""`python -m reward_obs.cli`."""
import sys

from reward_obs.cli import main

sys.exit(main())
