"""Files the stack uploads, built byte-for-byte reproducibly so synth output never drifts.

The deployer zip uses fixed timestamps and permissions (a plain `zip` would embed mtimes, changing
`source_code_hash` on every synth and making the second plan report changes). The sample data is
generated from a fixed seed: a small binary-classification set in the CSV layout the SageMaker
XGBoost container expects (label first, no header).
"""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

from mlpipe.core.paths import LAMBDA_SOURCE_DIR

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def build_lambda_zip(destination: Path, source_dir: Path = LAMBDA_SOURCE_DIR) -> Path:
    """Zip every .py file of `source_dir` (sorted, fixed metadata) into `destination`."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in source_dir.rglob("*.py") if "__pycache__" not in p.parts)
    if not files:
        raise FileNotFoundError(f"no Python sources in {source_dir}")
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source_dir).as_posix(), date_time=FIXED_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return destination


def sample_rows(count: int, seed: int) -> list[str]:
    """Rows of `label,f1,f2,f3,f4` where the label depends on the features (learnable, not noise)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        features = [rng.uniform(-1.0, 1.0) for _ in range(4)]
        score = 1.5 * features[0] - 0.8 * features[1] + 0.5 * features[2] * features[3] + rng.gauss(0, 0.2)
        label = 1 if score > 0 else 0
        rows.append(",".join([str(label)] + [f"{x:.4f}" for x in features]))
    return rows


def write_sample_data(directory: Path) -> dict[str, Path]:
    """Write train.csv (400 rows) and validation.csv (100 rows); return channel -> path."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {"train": (400, 7), "validation": (100, 11)}
    written = {}
    for channel, (count, seed) in files.items():
        path = directory / f"{channel}.csv"
        path.write_text("\n".join(sample_rows(count, seed)) + "\n", encoding="ascii")
        written[channel] = path
    return written
