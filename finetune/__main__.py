"""`python -m taiyi_bench.finetune RECIPE ...` = `taiyi finetune RECIPE ...`; what `accelerate launch -m taiyi_bench.finetune` runs."""

from __future__ import annotations

import sys

from taiyi_bench.finetune.cli import main

if __name__ == "__main__":
    sys.exit(main())
