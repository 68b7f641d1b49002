"""Two processes on localhost (jax.distributed, gloo CPU collectives) score one target set from
streamed statistics: each reads its own row range, the statistics are all-reduced, both
processes get the same scores, equal to the in-memory ones."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

_WORKER = r"""
import json, sys
import numpy as np
from pedjax import streaming
streaming.distributed.initialize(f"localhost:{sys.argv[1]}", num_processes=2, process_id=int(sys.argv[2]))
import jax, pedjax
d = sys.argv[3]
stats = {"m": (np.load(d + "/mean.npy"), np.load(d + "/std.npy"))}
eng = streaming.Engine(devices="global", block_rows=300)
assert eng.n_proc == 2 and eng.n_dev == 2, streaming.distributed.process_info()
static, moved = streaming.score_stream({"m": d + "/f.npy"}, d + "/y.npy", ["logme", "sfda", "gbc", "hscore"],
                                       ped=pedjax.PEDConfig(), source_stats=stats, devices=eng, with_and_without_ped=True)
print("RESULT", json.dumps({"process": jax.process_index(), "range": eng.row_range(2101),
                            "static": {m: v["m"] for m, v in static.items()}, "moved": {m: v["m"] for m, v in moved.items()}}))
streaming.distributed.shutdown()
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_on_localhost(tmp_path):
    import pedjax

    rng = np.random.default_rng(0)
    N, D, C = 2101, 10, 4
    y = rng.permutation(np.arange(N) % C) + 10
    X = (rng.normal(size=(N, D)) + 0.4 * rng.normal(size=(C, D))[y - 10] + 1.0).astype(np.float32)
    mean, std = rng.normal(size=D), rng.uniform(0.5, 2.0, D)
    for name, a in (("f", X), ("y", y), ("mean", mean), ("std", std)):
        np.save(tmp_path / f"{name}.npy", a)
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    port = _free_port()
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    procs = [subprocess.Popen([sys.executable, str(script), str(port), str(p), str(tmp_path)], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, out[-2000:] + err[-4000:]
        outs.append(json.loads(next(l for l in out.splitlines() if l.startswith("RESULT"))[len("RESULT "):]))
    assert [o["range"] for o in outs] == [[0, 1050], [1050, 2101]]
    assert outs[0]["static"] == outs[1]["static"] and outs[0]["moved"] == outs[1]["moved"]  # the same scores
    cfg = pedjax.PEDConfig()
    for m, got in outs[0]["static"].items():
        ref = pedjax.score_zoo({"m": X}, y, m)["m"]
        ref_ped = pedjax.score_zoo({"m": X}, y, m, ped=cfg, source_stats={"m": (mean, std)})["m"]
        assert abs(ref - got) / abs(ref) <= 1e-9, (m, ref, got)
        assert abs(ref_ped - outs[0]["moved"][m]) / abs(ref_ped) <= 1e-9, (m, "ped", ref_ped, outs[0]["moved"][m])
