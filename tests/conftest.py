"""The suite runs as the command line does: float64 on and the XLA:CPU scheduler flag set for the
whole test process (``pedjax.cli._common.configure_process`` without the compilation cache).
Importing pedjax itself sets neither (tests/test_precision.py checks that in a fresh process).

After every test, JAX's compiled programs are dropped when the process holds more than a quarter
of the kernel's memory-map limit (``pedjax._executables.relieve``): a worker compiles thousands of
programs, ~5 mappings each, and at the limit XLA crashes in its next compilation. A quarter, not
the library's half: one test can add ~18 000 mappings before it ends (the float32 fidelity
fixtures, measured), and nothing looks at the count inside it but the entry points."""
import os

os.environ.setdefault("PEDJAX_CACHE_DIR", "off")

from pedjax.cli._common import configure_process  # noqa: E402

configure_process()


import pytest  # noqa: E402

from pedjax import _executables  # noqa: E402


@pytest.fixture(autouse=True)
def _memory_map_headroom():
    yield
    _executables.relieve(headroom=0.25)
