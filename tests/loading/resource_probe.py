"""Run one loader on one file in a fresh process and report what it cost, as one JSON line.

Used by tests/loading/test_resource_limits.py: peak memory is the process's high-water mark (VmHWM,
reset through /proc/self/clear_refs) during the loader minus its resident size before it, after
the imports and one warm-up load of a shipped sample, so TensorFlow's own footprint is not
counted; bytes written are /proc/self/io's ``wchar`` (every write() call, temporary files too).

    python tests/loading/resource_probe.py inputs MODEL DATA
    python tests/loading/resource_probe.py data DATA 28x28x1
    python tests/loading/resource_probe.py bundle BUNDLE STORE_DIR
"""

import json
import sys
import time
from pathlib import Path


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _written() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def main(kind: str, *args: str) -> None:
    from nc_core.errors import NCError
    from nc_core.loading.data import load_data
    from nc_core.loading.inputs import load_inputs
    from nc_core.runs.store import RunStore

    samples = Path(__file__).resolve().parents[2] / "sample_models"
    load_inputs(samples / "mnist_clean.keras", samples / "mnist_data.npz")  # warm TensorFlow up first
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark restarts from here
    base_rss = _status_kb("VmRSS")
    base_written, base_cpu = _written(), time.process_time()
    error = None
    try:
        if kind == "inputs":
            load_inputs(args[0], args[1])
        elif kind == "data":
            load_data(args[0], tuple(int(v) for v in args[1].split("x")))
        elif kind == "bundle":
            RunStore(args[1]).import_bundle(Path(args[0]).read_bytes())
        else:
            raise SystemExit(f"unknown kind {kind!r}")
    except NCError as caught:
        error = str(caught)
    print(
        json.dumps(
            {
                "error": error,
                "extra_mb": (_status_kb("VmHWM") - base_rss) / 1024,
                "written_mb": (_written() - base_written) / 1024**2,
                "cpu_s": time.process_time() - base_cpu,
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
