"""Regenerate the settings table of README.md from app/settings.py: each field's docstring becomes its
meaning; a default already written in the table is kept (some are prose, e.g. "number of CPUs").

    .venv/bin/python scripts/readme_settings.py
"""

from __future__ import annotations

import ast
import itertools
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = "| variable | default | meaning |"


def docstrings() -> dict[str, str]:
    tree = ast.parse((ROOT / "app" / "settings.py").read_text())
    settings = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    docs = {}
    for field, doc in itertools.pairwise(settings.body):
        if not (isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)):
            continue
        if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant):
            docs[field.target.id] = " ".join(str(doc.value.value).split())
    return docs


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from app.settings import Settings

    readme = (ROOT / "README.md").read_text()
    documented = {m[1]: m[0].split("|")[2].strip() for m in re.finditer(r"^\| `ASR_(\w+)` \|.*$", readme, re.M)}
    docs = docstrings()
    rows = []
    for name, field in Settings.model_fields.items():
        key = name.upper()
        default = documented.get(key) or ("`number of CPUs`" if field.default_factory else f"`{field.default}`")
        rows.append(f"| `ASR_{key}` | {default} | {docs.get(name, '')} |")
    start = readme.index(HEADER)
    lines = readme[start:].split("\n")
    end = 2
    while end < len(lines) and lines[end].startswith("| `ASR_"):
        end += 1
    (ROOT / "README.md").write_text(readme[:start] + "\n".join(lines[:2] + rows + lines[end:]))


if __name__ == "__main__":
    main()
