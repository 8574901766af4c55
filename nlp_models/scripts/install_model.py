"""Copy a trained pipeline (model-best) into models/<lang>/<name>, without training leftovers."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer


def main(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"{target}: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    typer.run(main)
