"""The suite runs as the command line does: float64 on and the XLA:CPU scheduler flag set for the
whole test process (``pedjax.cli._common.configure_process`` without the compilation cache).
Importing pedjax itself sets neither (tests/test_precision.py checks that in a fresh process)."""
import os

os.environ.setdefault("PEDJAX_CACHE_DIR", "off")

from pedjax.cli._common import configure_process  # noqa: E402

configure_process()
