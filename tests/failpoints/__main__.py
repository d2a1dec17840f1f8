"""`python -m tests.failpoints <signoff args>`: the real CLI with a failpoint armed."""

import os

from bot.cli import main
from tests.failpoints import arm

if os.environ.get("SIGNOFF_FAILPOINT"):
    arm(os.environ["SIGNOFF_FAILPOINT"])
main()
