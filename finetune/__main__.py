"""`python -m finetune RECIPE ...` = `taiyi finetune RECIPE ...`; what `accelerate launch -m finetune` runs."""

from __future__ import annotations

import sys

from finetune.cli import main

if __name__ == "__main__":
    sys.exit(main())
