"""What the tests share besides fixtures: paths, the fixture corpus, server processes, threads."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SEEDS = ROOT / "seeds"
