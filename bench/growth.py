"""Growth benchmark: the integrity check and the publish impact as a topic grows.

Builds synthetic topics from the shipped one (content marked "Synthetic", never shown to anyone):
extra patient-factor questions of three choices each (no effect / excludes one procedure
attribute / adds one of three shared synthetic caveats), and a synthetic routing step in front
that leads to 14 copies of shipped scenarios (20 scenarios in all). Prints, per number of extra
questions, the answer combinations (by arithmetic: enumerating 12 extra questions would run the
engine 10^7 times), the answer classes, and the seconds of the integrity check and of the publish
impact (against the same topic with one rating and one caveat changed); then the large topic's
times as a ratio of the shipped topic's, and one recommendation on the large topic.
Target: review (integrity + impact) of the large topic under 1 s. Times are CPU seconds of this
process (best of 5): the machine may be shared, and wall time would measure the neighbours.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from decisions import engine  # noqa: E402
from decisions.engine import answer_classes, changes, integrity  # noqa: E402

SHIPPED = ROOT / "decisions" / "data" / "lumbar-metastasis.json"
ATTRIBUTES = [a.value for a in engine.Attribute]
TODAY = date(2026, 12, 1)


def synthetic_topic(document: dict[str, Any], *, extra_questions: int, scenarios: int = 20) -> dict[str, Any]:
    """The shipped topic with `extra_questions` synthetic factor questions and `scenarios` in all."""
    topic = copy.deepcopy(document)
    reference = topic["references"][0]["key"]
    topic["caveats"] += [
        {
            "key": f"synthetic-caveat-{i}",
            "severity": "info",
            "text": f"Synthetic caveat {i}.",
            "references": [reference],
        }
        for i in range(3)
    ]
    for i in range(extra_questions):
        topic["questions"].append(
            {
                "key": f"synthetic_factor_{i}",
                "role": "patient_factor",
                "prompt": f"Synthetic factor question {i}?",
                "help_text": "",
                "choices": [
                    {"key": "none", "label": "Synthetic: no"},
                    {
                        "key": "excludes",
                        "label": "Synthetic: excludes",
                        "excludes": ATTRIBUTES[i % len(ATTRIBUTES)],
                        "exclusion_reason": f"Synthetic factor {i}.",
                    },
                    {"key": "caveat", "label": "Synthetic: caveat", "caveats": [f"synthetic-caveat-{i % 3}"]},
                ],
            }
        )
    shipped_scenarios = [s for s in topic["scenarios"] if s.get("ratings")]
    copies = scenarios - len(topic["scenarios"])
    branches: dict[str, dict[str, str]] = {"shipped": {"node": topic["topic"]["start_node"]}}
    choices = [{"key": "shipped", "label": "Synthetic: the shipped questions"}]
    for i in range(max(copies, 0)):
        original = shipped_scenarios[i % len(shipped_scenarios)]
        key = f"synthetic-scenario-{i}"
        topic["scenarios"].append(
            {**copy.deepcopy(original), "key": key, "title": f"Synthetic scenario {i}", "next_steps": []}
        )
        branches[f"s{i}"] = {"scenario": key}
        choices.append({"key": f"s{i}", "label": f"Synthetic scenario {i}"})
    topic["questions"].append(
        {
            "key": "synthetic_route",
            "role": "routing",
            "prompt": "Synthetic routing question?",
            "choices": choices,
        }
    )
    topic["routing"].append({"key": "synthetic-start", "question": "synthetic_route", "branches": branches})
    topic["topic"]["start_node"] = "synthetic-start"
    return topic


def own_caveats(document: dict[str, Any], extra_questions: int) -> dict[str, Any]:
    """The same topic where each synthetic question adds a caveat of its own (the hard case for
    classes by full effect: 2^12 caveat sets; the impact follows each caveat on its own)."""
    topic = copy.deepcopy(document)
    reference = topic["references"][0]["key"]
    for i in range(extra_questions):
        topic["caveats"].append(
            {"key": f"own-caveat-{i}", "severity": "info", "text": f"Synthetic caveat of question {i}."}
            | {"references": [reference]}
        )
        question = next(q for q in topic["questions"] if q["key"] == f"synthetic_factor_{i}")
        question["choices"][2]["caveats"] = [f"own-caveat-{i}"]
    return topic


def edited(document: dict[str, Any]) -> dict[str, Any]:
    """The same topic with one rating's category and one caveat's text changed (a small publish)."""
    after = copy.deepcopy(document)
    rating = next(s for s in after["scenarios"] if s["key"] == "mscc")["ratings"][0]
    rating["category"], rating["score"] = "may_be_appropriate", None
    after["caveats"][0]["text"] += " (synthetic edit)"
    return after


def seconds(function: Any, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        function()
        best = min(best, time.process_time() - start)
    return best


def measure(document: dict[str, Any]) -> tuple[int, int, int, float, float]:
    """Combinations, effect classes, classes by exclusions, integrity and impact CPU seconds."""
    before, after = engine.build_snapshot(document), engine.build_snapshot(edited(document))
    combinations = answer_classes.combination_count(before)
    classes = len(answer_classes.answer_classes(before))
    coarse = len(answer_classes.answer_classes(before, exclusions_only=True))
    check = seconds(lambda: integrity.check(document, today=TODAY))
    review = seconds(lambda: changes.impact(before, after))
    return combinations, classes, coarse, check, review


def main() -> None:
    shipped = json.loads(SHIPPED.read_text(encoding="utf-8"))
    print("Shipped topic plus N synthetic 3-choice factor questions (impact: one rating, one caveat edited)")
    print(
        f"{'extra questions':>15} {'combinations':>14} {'effect classes':>14} {'by exclusions':>13}"
        f" {'integrity s':>11} {'impact s':>9}"
    )
    base = measure(shipped)
    print(f"{'shipped':>15} {base[0]:>14,} {base[1]:>14,} {base[2]:>13,} {base[3]:>11.3f} {base[4]:>9.3f}")
    for extra in (0, 2, 4, 6, 7, 12):
        document = synthetic_topic(shipped, extra_questions=extra, scenarios=len(shipped["scenarios"]))
        combinations, classes, coarse, check, review = measure(document)
        print(f"{extra:>15} {combinations:>14,} {classes:>14,} {coarse:>13,} {check:>11.3f} {review:>9.3f}")

    large = synthetic_topic(shipped, extra_questions=12, scenarios=20)
    combinations, classes, coarse, check, review = measure(large)
    print("\nLarge topic (shipped + 12 synthetic factor questions x 3 choices, 20 scenarios):")
    print(f"  {combinations:,} answer combinations in {classes:,} effect classes ({coarse:,} by exclusions)")
    print(f"  integrity check {check:.3f} s = {check / base[3]:.1f} x the shipped topic's")
    print(f"  publish impact  {review:.3f} s = {review / base[4]:.1f} x the shipped topic's")
    verdict = "OK" if check + review < 1 else "OVER TARGET"
    print(f"  review (integrity + impact) {check + review:.3f} s (target < 1 s): {verdict}")

    hard = own_caveats(large, 12)
    before, after = engine.build_snapshot(hard), engine.build_snapshot(edited(hard))
    check = seconds(lambda: integrity.check(hard, today=TODAY))
    review = seconds(lambda: changes.impact(before, after))
    print(f"  the same, each synthetic question with a caveat of its own: integrity {check:.3f} s,")
    print(f"  impact {review:.3f} s, review {check + review:.3f} s")

    snapshot = engine.build_snapshot(large)
    answers = next(iter(engine.complete_answer_sets(snapshot)))
    one = seconds(lambda: engine.recommendation_json(engine.recommend(snapshot, answers)), repeat=20)
    shipped_snapshot = engine.build_snapshot(shipped)
    shipped_answers = next(iter(engine.complete_answer_sets(shipped_snapshot)))
    base_one = seconds(
        lambda: engine.recommendation_json(engine.recommend(shipped_snapshot, shipped_answers)), repeat=20
    )
    print(
        f"  one recommendation (engine + JSON) {one * 1000:.2f} ms"
        f" = {one / base_one:.1f} x the shipped topic's"
    )


if __name__ == "__main__":
    main()
