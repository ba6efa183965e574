"""Convert a topic between database rows and its text document (the format: docs/topic-format.md).

Export is deterministic (sorted keys, content-owner order) so export → import → export is
byte-identical. Import is atomic: any bad entry rolls the whole file back and is named.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from functools import partial
from typing import Any, TypeVar, cast

import pydantic
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import IntegrityError, models, transaction

from decisions import engine
from decisions.knowledge.document_schema import (
    BranchTarget,
    ChoiceEntry,
    OrderCode,
    RatingEntry,
    TopicDocument,
    TopicMeta,
    When,
    type_problem,
)
from decisions.knowledge.models import (
    BodyRegion,
    Branch,
    Caveat,
    Choice,
    ChoiceCode,
    Finding,
    Modality,
    NextStep,
    Procedure,
    ProcedureCode,
    Question,
    Rating,
    Reference,
    RoutingNode,
    Scenario,
    Topic,
)

# HTI-1 source attributes: which data elements the algorithm uses.
SOURCE_ATTRIBUTE_FLAGS = tuple(engine.SOURCE_ATTRIBUTE_LABELS)


M = TypeVar("M", bound=models.Model)


class DocumentError(ValueError):
    """A topic document that cannot be imported; the message names the entry."""


def dumps(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def loads(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise DocumentError(f"not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise DocumentError("a topic document is a JSON object")
    if document.get("format") != engine.DOCUMENT_FORMAT:
        raise DocumentError(f"format must be {engine.DOCUMENT_FORMAT!r}, found {document.get('format')!r}")
    if not isinstance(document.get("topic"), dict):
        raise DocumentError("topic: missing or not an object")
    return document


# --- export -----------------------------------------------------------------------------------


def _keys(related: Any) -> list[str]:
    return sorted(obj.key for obj in related.all())


def export_topic(topic: Topic) -> dict[str, Any]:
    """The topic's draft as its document, with every shared procedure, finding and reference it cites."""
    questions = list(topic.questions.prefetch_related("choices__caveats", "choices__codes"))
    scenarios = list(
        topic.scenarios.prefetch_related(
            "urgency_references",
            "caveats",
            "ratings__procedure",
            "ratings__references",
            "ratings__findings",
            "next_steps__references",
            "next_steps__when_choice__question",
        )
    )
    nodes = list(
        topic.routing_nodes.select_related("question").prefetch_related(
            "branches__choice", "branches__next_node", "branches__scenario"
        )
    )
    # Caveats belong to the topic: another topic's caveat is never exported here.
    caveats = list(topic.caveats.prefetch_related("references", "procedures"))
    findings = _findings_cited(topic, scenarios)
    references = _references_cited(topic, caveats, scenarios, findings)
    return {
        "format": engine.DOCUMENT_FORMAT,
        "topic": _export_topic_meta(topic),
        "references": [_export_reference(r) for r in sorted(references, key=lambda r: r.key)],
        "caveats": [_export_caveat(c) for c in sorted(caveats, key=lambda c: c.key)],
        "procedures": _export_procedures(_procedures_rated(topic, scenarios), caveats),
        "findings": [_export_finding(f) for f in sorted(findings, key=lambda f: f.key)],
        "questions": [_export_question(q) for q in questions],
        "routing": [_export_routing_node(n) for n in nodes],
        "scenarios": [_export_scenario(s) for s in scenarios],
    }


def _procedures_rated(topic: Topic, scenarios: Iterable[Scenario]) -> list[Procedure]:
    """The topic's procedures and those its ratings name (shared rows), by key, with their codes."""
    keys = {p.key for p in topic.procedures.all()}
    for scenario in scenarios:
        keys.update(rating.procedure.key for rating in scenario.ratings.all())
    return sorted(Procedure.objects.filter(key__in=keys).prefetch_related("codes"), key=lambda p: p.key)


def _findings_cited(topic: Topic, scenarios: Iterable[Scenario]) -> list[Finding]:
    keys = {f.key for f in topic.findings.all()}
    for scenario in scenarios:
        for rating in scenario.ratings.all():
            keys.update(f.key for f in rating.findings.all())
    return list(Finding.objects.filter(key__in=keys).select_related("reference", "procedure"))


def _references_cited(
    topic: Topic, caveats: Iterable[Caveat], scenarios: Iterable[Scenario], findings: Iterable[Finding]
) -> list[Reference]:
    """The topic's references and every one its content cites (a reference may be shared)."""
    keys = {r.key for r in topic.references.all()}
    keys.update(r.key for r in topic.bottom_line_references.all())
    for caveat in caveats:
        keys.update(r.key for r in caveat.references.all())
    for scenario in scenarios:
        keys.update(r.key for r in scenario.urgency_references.all())
        for rating in scenario.ratings.all():
            keys.update(r.key for r in rating.references.all())
        for step in scenario.next_steps.all():
            keys.update(r.key for r in step.references.all())
    keys.update(f.reference.key for f in findings)
    return list(Reference.objects.filter(key__in=keys))


def _export_topic_meta(topic: Topic) -> dict[str, Any]:
    return {
        "key": topic.key,
        "title": topic.title,
        "scope": topic.scope,
        "bottom_line": topic.bottom_line,
        "bottom_line_references": _keys(topic.bottom_line_references),
        "owner": topic.owner,
        "last_reviewed": _iso(topic.last_reviewed),
        "next_review_due": _iso(topic.next_review_due),
        "start_node": topic.start_node.key if topic.start_node else "",
        "developer": topic.developer,
        "funding_source": topic.funding_source,
        **{name: getattr(topic, name) for name in SOURCE_ATTRIBUTE_FLAGS},
    }


def _export_reference(reference: Reference) -> dict[str, Any]:
    return {
        "key": reference.key,
        "kind": reference.kind,
        "citation": reference.citation,
        "authors": reference.authors,
        "title": reference.title,
        "journal": reference.journal,
        "year": reference.year,
        "doi": reference.doi,
        "pmid": reference.pmid,
        "url": reference.url,
        "note": reference.note,
    }


def _export_caveat(caveat: Caveat) -> dict[str, Any]:
    return {
        "key": caveat.key,
        "severity": caveat.severity,
        "text": caveat.text,
        "applies_to": caveat.applies_to,
        "references": _keys(caveat.references),
    }


def _export_procedures(procedures: Iterable[Procedure], caveats: Iterable[Caveat]) -> list[dict[str, Any]]:
    # The file lists a procedure's caveats on the procedure; the database holds them on the caveat.
    caveat_keys: dict[str, list[str]] = {}
    for caveat in caveats:
        for procedure in caveat.procedures.all():
            caveat_keys.setdefault(procedure.key, []).append(caveat.key)
    return [
        {
            "key": p.key,
            "name": p.name,
            "modality": p.modality_id,
            "region": p.region_id,
            "contrast": p.contrast,
            "contrast_agent": p.contrast_agent,
            "rrl": p.rrl,
            "loinc": p.loinc,
            "strengths": p.strengths,
            "limitations": p.limitations,
            "caveats": sorted(caveat_keys.get(p.key, [])),
            "codes": [{"system": c.system, "code": c.code} for c in p.codes.all()],
        }
        for p in procedures
    ]


def _export_finding(finding: Finding) -> dict[str, Any]:
    return {
        "key": finding.key,
        "procedure": finding.procedure.key if finding.procedure else "",
        "reference": finding.reference.key,
        "text": finding.text,
        "order": finding.order,
    }


def _export_question(question: Question) -> dict[str, Any]:
    return {
        "key": question.key,
        "role": question.role,
        "prompt": question.prompt,
        "help_text": question.help_text,
        "multiple": question.multiple,
        "replaces": question.replaces,
        "choices": [_export_choice(c) for c in question.choices.all()],
    }


def _export_choice(choice: Choice) -> dict[str, Any]:
    return {
        "key": choice.key,
        "label": choice.label,
        "excludes": choice.excludes,
        "exclusion_reason": choice.exclusion_reason,
        "caveats": _keys(choice.caveats),
        "age_min": choice.age_min,
        "age_max": choice.age_max,
        "exclusive": choice.exclusive,
        "retired": choice.retired,
        "replaces": choice.replaces,
        "from_history": choice.from_history,
        "codes": [
            {"resource": code.resource, "system": code.system, "code": code.code}
            for code in choice.codes.all()
        ],
    }


def _export_routing_node(node: RoutingNode) -> dict[str, Any]:
    return {
        "key": node.key,
        "question": node.question.key,
        "branches": {b.choice.key: _branch_target(b) for b in node.branches.all()},
    }


def _export_scenario(scenario: Scenario) -> dict[str, Any]:
    return {
        "key": scenario.key,
        "title": scenario.title,
        "summary": scenario.summary,
        "urgency": scenario.urgency,
        "urgency_note": scenario.urgency_note,
        "urgency_note_without_mri": scenario.urgency_note_without_mri,
        "urgency_references": _keys(scenario.urgency_references),
        "order_rationale": scenario.order_rationale,
        "no_safe_imaging": scenario.no_safe_imaging,
        "caveats": _keys(scenario.caveats),
        "ratings": [_export_rating(r) for r in scenario.ratings.all()],
        "next_steps": [_export_next_step(n) for n in scenario.next_steps.all()],
    }


def _export_rating(rating: Rating) -> dict[str, Any]:
    return {
        "procedure": rating.procedure.key,
        "scale": rating.scale,
        "statement": rating.statement,
        "fallback_for": rating.fallback_for,
        "category": rating.category,
        "score": rating.score,
        "rationale": rating.rationale,
        "references": _keys(rating.references),
        "findings": _keys(rating.findings),
        "needs_verification": rating.needs_verification,
        "strengths": rating.strengths,
        "limitations": rating.limitations,
    }


def _export_next_step(step: NextStep) -> dict[str, Any]:
    when = step.when_choice
    return {
        "text": step.text,
        "references": _keys(step.references),
        "when": {"question": when.question.key, "choice": when.key} if when else None,
        "applies_to": step.applies_to,
        "unless": step.unless,
        "critical": step.critical,
    }


def _branch_target(branch: Branch) -> dict[str, str]:
    if branch.next_node is not None:
        return {"node": branch.next_node.key}
    assert branch.scenario is not None  # the database allows exactly one of the two
    return {"scenario": branch.scenario.key}


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


# --- import -----------------------------------------------------------------------------------


def parse_document(document: Mapping[str, Any]) -> TopicDocument:
    """The document's members as typed entries, or DocumentError naming the first of the wrong type."""
    try:
        return TopicDocument.model_validate(document)
    except pydantic.ValidationError as error:
        raise DocumentError(type_problem(error)) from None


@contextmanager
def _entry(where: str) -> Iterator[None]:
    """Name the entry in any error raised while importing it."""
    try:
        yield
    except DocumentError as error:
        raise DocumentError(f"{where}: {error}") from error
    except ValidationError as error:
        details = (
            "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
            if hasattr(error, "error_dict")
            else " ".join(error.messages)
        )
        raise DocumentError(f"{where}: {details}") from error
    except IntegrityError as error:
        raise DocumentError(f"{where}: {error}") from error


def _lookup(model: type[M], where: str, **lookup: Any) -> M:
    try:
        return model._default_manager.get(**lookup)
    except ObjectDoesNotExist:
        value = next(iter(lookup.values()))
        raise DocumentError(f"unknown {model._meta.verbose_name} {value!r}") from None


def _known(model: type[models.Model], field: str, value: str) -> str:
    """A modality code or region key the database has; those are added in the admin, not by a file."""
    if not model._default_manager.filter(**{field: value}).exists():
        noun = str(model._meta.verbose_name)
        raise DocumentError(
            f"unknown {noun} {value!r}: add it under {str(model._meta.verbose_name_plural).capitalize()} "
            "in the admin first, or use one that exists"
        )
    return value


def _save(model: type[M], lookup: dict[str, Any], values: dict[str, Any]) -> M:
    """Create or update one row, validated like the admin validates it."""
    obj = model._default_manager.filter(**lookup).first() or model(**lookup)
    for name, value in values.items():
        setattr(obj, name, value)
    obj.full_clean(validate_unique=False, validate_constraints=True)
    obj.save()
    return obj


def _refs(model: type[M], keys: list[str], kind: str) -> list[M]:
    objects = {cast(Any, o).key: o for o in model._default_manager.filter(key__in=keys)}
    for key in keys:
        if key not in objects:
            raise DocumentError(f"unknown {kind[:-1] if kind.endswith('s') else kind} {key!r}")
    return [objects[key] for key in keys]


def _date(value: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DocumentError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _when_choice(when: When | None, choices: Mapping[tuple[str, str], Choice]) -> Choice | None:
    """The answer a next step is tied to; none for null or {}."""
    if when is None or not when.model_fields_set:
        return None
    choice = choices.get((when.question, when.choice))
    if choice is None:
        raise DocumentError(f"when: no answer {when.question!r}={when.choice!r} in this topic")
    return choice


def import_document(document: Mapping[str, Any]) -> Topic:
    """Load a topic document into the draft, all or nothing."""
    if document.get("format") != engine.DOCUMENT_FORMAT:
        raise DocumentError(f"format must be {engine.DOCUMENT_FORMAT!r}")
    parsed = parse_document(document)
    with transaction.atomic():
        return _import(parsed)


def _import(document: TopicDocument) -> Topic:
    # Shared content first (a topic points at it), then the topic and its own content in the
    # order each part refers to the one before; last, what the file no longer lists is removed.
    _import_references(document)
    _import_procedures(document)
    _import_findings(document)
    topic, meta = _import_topic(document)
    caveats = _import_caveats(document, topic)
    questions, choices = _import_questions(document, topic, caveats)
    scenarios = _import_scenarios(document, topic, caveats, choices)
    nodes = _import_routing(document, topic, questions, choices, scenarios)
    with _entry(f"topic[{topic.key}]"):
        start = meta.start_node
        if start and start not in nodes:
            raise DocumentError(f"start_node {start!r} is not a routing node")
        topic.start_node = nodes.get(start) if start else None
        topic.save()
    _remove_unlisted(topic, nodes, scenarios, questions, caveats)
    return topic


Item = TypeVar("Item")


def _sync_children(
    related: Any,
    items: Iterable[Item],
    *,
    where: Callable[[Item], str],
    save: Callable[[Item], M],
    before_delete: Callable[[Any], object] | None = None,
) -> list[M]:
    """Save each child the file lists (an error names it), then delete the others of `related`.

    `before_delete` gets the queryset of children about to go, to clear what protects them.
    """
    saved = []
    for item in items:
        with _entry(where(item)):
            saved.append(save(item))
    stale = related.exclude(pk__in=[obj.pk for obj in saved])
    if before_delete is not None:
        before_delete(stale)
    stale.delete()
    return saved


def _import_references(document: TopicDocument) -> None:
    for item in document.references:
        with _entry(f"references[{item.key}]"):
            _save(
                Reference,
                {"key": item.key},
                item.model_dump(
                    include={
                        "kind",
                        "citation",
                        "authors",
                        "title",
                        "journal",
                        "year",
                        "doi",
                        "pmid",
                        "url",
                        "note",
                    }
                ),
            )


def _import_procedures(document: TopicDocument) -> None:
    for item in document.procedures:
        with _entry(f"procedures[{item.key}]"):
            procedure = _save(
                Procedure,
                {"key": item.key},
                {
                    **item.model_dump(
                        include={
                            "name",
                            "contrast",
                            "rrl",
                            "contrast_agent",
                            "loinc",
                            "strengths",
                            "limitations",
                        }
                    ),
                    "modality_id": _known(Modality, "code", item.modality),
                    "region_id": _known(BodyRegion, "key", item.region),
                },
            )
            _sync_children(
                procedure.codes,
                item.codes,
                where=lambda code: f"codes[{code.code}]",
                save=partial(_procedure_code, procedure),
            )


def _procedure_code(procedure: Procedure, code: OrderCode) -> ProcedureCode:
    return _save(ProcedureCode, {"procedure": procedure, "system": code.system, "code": code.code}, {})


def _import_findings(document: TopicDocument) -> None:
    for item in document.findings:
        with _entry(f"findings[{item.key}]"):
            _save(
                Finding,
                {"key": item.key},
                {
                    "text": item.text,
                    "reference": _lookup(Reference, "reference", key=item.reference),
                    "procedure": _lookup(Procedure, "procedure", key=item.procedure)
                    if item.procedure
                    else None,
                    "order": item.order or 0,
                },
            )


def _import_topic(document: TopicDocument) -> tuple[Topic, TopicMeta]:
    if "topic" not in document.model_fields_set:
        raise DocumentError("topic: missing or not an object")
    meta = document.topic
    with _entry(f"topic[{meta.key}]"):
        topic = _save(
            Topic,
            {"key": meta.key},
            {
                **meta.model_dump(
                    include={"title", "scope", "bottom_line", "owner", "developer", "funding_source"}
                ),
                **meta.model_dump(include=set(SOURCE_ATTRIBUTE_FLAGS)),
                "last_reviewed": _date(meta.last_reviewed),
                "next_review_due": _date(meta.next_review_due),
            },
        )
        topic.references.set(_refs(Reference, [r.key for r in document.references], "references"))
        topic.bottom_line_references.set(_refs(Reference, meta.bottom_line_references, "references"))
        topic.procedures.set(_refs(Procedure, [p.key for p in document.procedures], "procedures"))
        topic.findings.set(_refs(Finding, [f.key for f in document.findings], "findings"))
    return topic, meta


def _import_caveats(document: TopicDocument, topic: Topic) -> dict[str, Caveat]:
    """The topic's own caveats (another topic may use the same key for its own caveat)."""
    caveat_procedures: dict[str, list[Procedure]] = {}
    for procedure in document.procedures:
        for key in procedure.caveats:
            caveat_procedures.setdefault(key, []).append(_lookup(Procedure, "procedure", key=procedure.key))
    caveats: dict[str, Caveat] = {}
    for item in document.caveats:
        with _entry(f"caveats[{item.key}]"):
            caveat = _save(
                Caveat,
                {"topic": topic, "key": item.key},
                item.model_dump(include={"severity", "text", "applies_to"}),
            )
            caveat.references.set(_refs(Reference, item.references, "references"))
            caveat.procedures.set(caveat_procedures.pop(caveat.key, []))
            caveats[caveat.key] = caveat
    for key in caveat_procedures:
        raise DocumentError(f"procedures: unknown caveat {key!r}")
    return caveats


def _topic_caveats(caveats: Mapping[str, Caveat], keys: list[str]) -> list[Caveat]:
    for key in keys:
        if key not in caveats:
            raise DocumentError(f"unknown caveat {key!r}")
    return [caveats[key] for key in keys]


def _import_questions(
    document: TopicDocument, topic: Topic, caveats: Mapping[str, Caveat]
) -> tuple[dict[str, Question], dict[tuple[str, str], Choice]]:
    questions: dict[str, Question] = {}
    choices: dict[tuple[str, str], Choice] = {}
    for order, item in enumerate(document.questions):
        with _entry(f"questions[{item.key}]"):
            question = _save(
                Question,
                {"topic": topic, "key": item.key},
                {
                    **item.model_dump(include={"role", "prompt", "help_text", "multiple", "replaces"}),
                    "order": order,
                },
            )
            questions[question.key] = question
            saved = _sync_children(
                question.choices,
                enumerate(item.choices),
                where=lambda entry: f"choices[{entry[1].key}]",
                save=partial(_import_choice, question, caveats=caveats),
                # Routing protects the choices it uses; the file's routing replaces those branches.
                before_delete=lambda stale: Branch.objects.filter(choice__in=stale).delete(),
            )
            choices.update({(question.key, choice.key): choice for choice in saved})
    return questions, choices


def _import_choice(
    question: Question, entry: tuple[int, ChoiceEntry], *, caveats: Mapping[str, Caveat]
) -> Choice:
    order, item = entry
    choice = _save(
        Choice,
        {"question": question, "key": item.key},
        {**item.model_dump(exclude={"key", "caveats", "codes"}), "order": order},
    )
    choice.caveats.set(_topic_caveats(caveats, item.caveats))
    _sync_children(
        choice.codes,
        item.codes,
        where=lambda code: f"codes[{code.code}]",
        save=lambda code: _save(ChoiceCode, {"choice": choice, **code.model_dump()}, {}),
    )
    return choice


def _import_scenarios(
    document: TopicDocument,
    topic: Topic,
    caveats: Mapping[str, Caveat],
    choices: Mapping[tuple[str, str], Choice],
) -> dict[str, Scenario]:
    scenarios: dict[str, Scenario] = {}
    for order, item in enumerate(document.scenarios):
        with _entry(f"scenarios[{item.key}]"):
            scenario = _save(
                Scenario,
                {"topic": topic, "key": item.key},
                {
                    **item.model_dump(
                        include={
                            "title",
                            "summary",
                            "urgency",
                            "urgency_note",
                            "urgency_note_without_mri",
                            "order_rationale",
                            "no_safe_imaging",
                        }
                    ),
                    "order": order,
                },
            )
            scenario.urgency_references.set(_refs(Reference, item.urgency_references, "references"))
            scenario.caveats.set(_topic_caveats(caveats, item.caveats))
            scenarios[scenario.key] = scenario
            _sync_children(
                scenario.ratings,
                enumerate(item.ratings),
                where=lambda entry: f"ratings[{entry[1].procedure}]",
                save=partial(_import_rating, scenario),
            )
            # Next steps have no key of their own: the list in the file replaces the old one.
            scenario.next_steps.all().delete()
            for step_order, step_item in enumerate(item.next_steps):
                with _entry(f"next_steps[{step_order}]"):
                    step = _save(
                        NextStep,
                        {"scenario": scenario, "order": step_order},
                        {
                            **step_item.model_dump(include={"text", "applies_to", "unless", "critical"}),
                            "when_choice": _when_choice(step_item.when, choices),
                        },
                    )
                    step.references.set(_refs(Reference, step_item.references, "references"))
    return scenarios


def _import_rating(scenario: Scenario, entry: tuple[int, RatingEntry]) -> Rating:
    order, item = entry
    rating = _save(
        Rating,
        {"scenario": scenario, "procedure": _lookup(Procedure, "procedure", key=item.procedure)},
        {
            **item.model_dump(exclude={"procedure", "references", "findings"}),
            "scale": item.scale or Rating.Scale.ACR,
            "order": order,
        },
    )
    rating.references.set(_refs(Reference, item.references, "references"))
    rating.findings.set(_refs(Finding, item.findings, "findings"))
    return rating


def _import_routing(
    document: TopicDocument,
    topic: Topic,
    questions: Mapping[str, Question],
    choices: Mapping[tuple[str, str], Choice],
    scenarios: Mapping[str, Scenario],
) -> dict[str, RoutingNode]:
    """The routing nodes first (a branch may lead to any of them), then each node's branches."""
    nodes: dict[str, RoutingNode] = {}
    for order, item in enumerate(document.routing):
        with _entry(f"routing[{item.key}]"):
            if item.question not in questions:
                raise DocumentError(f"unknown question {item.question!r}")
            nodes[item.key] = _save(
                RoutingNode,
                {"topic": topic, "key": item.key},
                {"question": questions[item.question], "order": order},
            )
    for item in document.routing:
        with _entry(f"routing[{item.key}]"):
            node = nodes[item.key]
            _sync_children(
                node.branches,
                item.branches.items(),
                where=lambda entry: f"branches[{entry[0]}]",
                save=partial(_import_branch, node, choices=choices, nodes=nodes, scenarios=scenarios),
            )
    return nodes


def _import_branch(
    node: RoutingNode,
    entry: tuple[str, BranchTarget],
    *,
    choices: Mapping[tuple[str, str], Choice],
    nodes: Mapping[str, RoutingNode],
    scenarios: Mapping[str, Scenario],
) -> Branch:
    choice_key, target = entry
    choice = choices.get((node.question.key, choice_key))
    if choice is None:
        raise DocumentError(f"question {node.question.key!r} has no choice {choice_key!r}")
    if target.node and target.node not in nodes:
        raise DocumentError(f"unknown routing node {target.node!r}")
    if target.scenario and target.scenario not in scenarios:
        raise DocumentError(f"unknown scenario {target.scenario!r}")
    return _save(
        Branch,
        {"node": node, "choice": choice},
        {
            "next_node": nodes[target.node] if target.node else None,
            "scenario": scenarios[target.scenario] if target.scenario else None,
        },
    )


def _remove_unlisted(
    topic: Topic,
    nodes: Mapping[str, RoutingNode],
    scenarios: Mapping[str, Scenario],
    questions: Mapping[str, Question],
    caveats: Mapping[str, Caveat],
) -> None:
    """Whatever the file no longer lists leaves the draft (shared procedures and references stay)."""
    Branch.objects.filter(node__topic=topic).exclude(node__in=nodes.values()).delete()
    Branch.objects.filter(next_node__topic=topic).exclude(next_node__in=nodes.values()).delete()
    topic.routing_nodes.exclude(pk__in=[n.pk for n in nodes.values()]).delete()
    Branch.objects.filter(scenario__topic=topic).exclude(scenario__in=scenarios.values()).delete()
    topic.scenarios.exclude(pk__in=[s.pk for s in scenarios.values()]).delete()
    topic.questions.exclude(pk__in=[q.pk for q in questions.values()]).delete()
    topic.caveats.exclude(pk__in=[c.pk for c in caveats.values()]).delete()
