"""Run revision 3's clinical invariants on release 2 as it was published, to show what they catch.

Release 2 is its content (decisions/data/previous/lumbar-metastasis.2.json) with the engine of
its time, read from git history (the last commit before revision 3), so this needs a clone with
history. Not part of the suite: a one-off audit whose figures are quoted in the closing note.

    .venv/bin/python bench/invariants_release2.py [COMMIT]
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELEASE_2_ENGINE_COMMIT = "d100c66"  # main just before clinical revision 3


def old_engine(commit: str):  # type: ignore[no-untyped-def]
    source = subprocess.run(
        ["git", "show", f"{commit}:decisions/engine.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "engine_release2.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("engine_release2", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["engine_release2"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    commit = sys.argv[1] if len(sys.argv) > 1 else RELEASE_2_ENGINE_COMMIT
    engine = old_engine(commit)
    sys.path.insert(0, str(ROOT))
    from tests.unit import test_clinical_invariants as invariants

    invariants.engine = engine  # the checks call the engine's own summary and JSON
    engine.ANSWER_SEPARATOR = "+"
    document = json.loads((ROOT / "decisions/data/previous/lumbar-metastasis.2.json").read_text())
    snapshot = engine.build_snapshot(document)
    cases = [(a, engine.recommend(snapshot, a)) for a in engine.complete_answer_sets(snapshot)]
    print(f"release 2: {len(cases)} complete answer combinations")
    for check in invariants.INVARIANTS:
        failing = 0
        example = ""
        for answers, recommendation in cases:
            found = check(answers, recommendation)
            if check is invariants.unavailable_in_time_never_excludes_mri and answers.get("mri_access") == (
                "not_possible"
            ):
                # Release 2 had one answer for "contraindicated" and "no scanner in time".
                found = check({**answers, "mri_access": "unavailable_in_time"}, recommendation)
            if found:
                failing += 1
                example = example or f"{answers}: {found[0]}"
        line = f"{check.__name__}: {failing} of {len(cases)} fail"
        print(line + (f"\n    e.g. {example}" if example else ""))


if __name__ == "__main__":
    main()
