"""GET /api/v1/topics/ and GET /api/v1/topics/<topic>/: the published topics and their form schema.

Keys and values come from docs/lumbar-metastasis-contract.md (the public contract, clinical
revision 3).
"""

from decisions.knowledge.publishing import publish

JSON = "application/json"


def test_the_topic_list_names_each_published_topic_with_its_release_and_review_dates(
    client, published_shipped
):
    response = client.get("/api/v1/topics/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith(JSON)
    [topic] = response.json()["topics"]
    assert topic["key"] == "lumbar-metastasis"
    assert topic["title"] == "Suspected lumbar spine metastasis (adults)"
    assert topic["release"] == {"version": 1, "published_at": published_shipped.published_at.isoformat()}
    assert set(topic) >= {"last_reviewed", "next_review_due", "scope", "bottom_line"}


def test_the_topic_list_is_empty_before_anything_is_published(client, db):
    response = client.get("/api/v1/topics/")

    assert response.status_code == 200
    assert response.json() == {"topics": []}


def test_the_topic_list_leaves_out_a_topic_that_is_only_a_draft(client, published_shipped, synthetic):
    from decisions.knowledge.document import import_document

    import_document(synthetic)

    keys = [topic["key"] for topic in client.get("/api/v1/topics/").json()["topics"]]

    assert keys == ["lumbar-metastasis"]


def test_the_topic_list_takes_review_dates_from_a_sign_off_never_from_dates_typed_on_the_topic(
    client, published_shipped
):
    from decisions.knowledge.models import Topic

    Topic.objects.filter(key="lumbar-metastasis").update(
        last_reviewed="2026-01-15", next_review_due="2099-01-01"
    )
    publish(Topic.objects.get(key="lumbar-metastasis"), summary="Typed review dates")
    after = client.get("/api/v1/topics/").json()["topics"][0]

    assert after["release"]["version"] == 2
    assert (after["last_reviewed"], after["next_review_due"], after["clinical_review"]) == (None, None, None)


def test_the_topic_schema_lists_every_question_with_its_choices_in_order(client, published_shipped):
    response = client.get("/api/v1/topics/lumbar-metastasis/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith(JSON)
    questions = response.json()["questions"]
    # The retired `mri_access=not_possible` is still accepted (old links) but no longer offered.
    assert [(q["key"], q["role"], q["multiple"], [c["key"] for c in q["choices"]]) for q in questions] == [
        ("age_group", "routing", False, ["adult", "child"]),
        ("neuro", "routing", False, ["yes", "no"]),
        ("cancer", "routing", False, ["known", "suspected", "none"]),
        ("neuro_level", "routing", False, ["cauda_equina", "cord_or_unclear"]),
        ("pain", "routing", False, ["suggestive", "degenerative"]),
        (
            "mri_access",
            "patient_factor",
            False,
            ["available", "device", "contraindicated", "unavailable_in_time"],
        ),
        (
            "contrast_risks",
            "patient_factor",
            True,
            ["none", "kidney", "dialysis", "gad_reaction", "iodinated_reaction"],
        ),
        ("pregnant", "patient_factor", False, ["no", "yes"]),
    ]
    for question in questions:
        assert set(question) == {"key", "role", "prompt", "help_text", "multiple", "choices"}
        assert question["prompt"]
        assert all(
            set(choice) == {"key", "label", "exclusive"} and choice["label"] for choice in question["choices"]
        )
    # "None of these" stands alone; no other choice anywhere is exclusive.
    exclusive = [(q["key"], c["key"]) for q in questions for c in q["choices"] if c["exclusive"]]
    assert exclusive == [("contrast_risks", "none")]


def test_the_topic_schema_lists_the_procedures_with_modality_region_contrast_radiation_and_codes(
    client, published_shipped
):
    procedures = {p["key"]: p for p in client.get("/api/v1/topics/lumbar-metastasis/").json()["procedures"]}

    assert set(procedures) == {
        "mri-lumbar-wo-w",
        "mri-lumbar-wo",
        "mri-lumbar-w",
        "mri-spine-wo",
        "mri-spine-wo-w",
        "mri-spine-levels-wo",
        "mri-spine-levels-wo-w",
        "ct-spine-wo",
        "ct-spine-levels-wo",
        "ct-lumbar-wo",
        "ct-lumbar-w",
        "ct-lumbar-wo-w",
        "ct-myelography-lumbar",
        "xr-lumbar",
        "bone-scan-spect",
        "fdg-pet-ct",
    }
    assert procedures["mri-lumbar-wo-w"] == {
        "key": "mri-lumbar-wo-w",
        "name": procedures["mri-lumbar-wo-w"]["name"],
        "modality": "MR",
        "region": "lumbar",
        "contrast": "without_and_with",
        "contrast_agent": "gadolinium",
        "rrl": 0,
        "radiation": "RRL 0 (0 mSv)",
        "ionising": False,
        "strengths": procedures["mri-lumbar-wo-w"]["strengths"],
        "limitations": procedures["mri-lumbar-wo-w"]["limitations"],
        "codes": {"loinc": "24967-2"},
    }
    assert "lumbar spine only" in procedures["mri-lumbar-wo-w"]["limitations"]
    assert procedures["ct-myelography-lumbar"]["rrl"] == 4
    assert procedures["ct-lumbar-w"]["contrast_agent"] == "iodinated"
    assert procedures["mri-spine-wo"]["region"] == "whole_spine"
    assert procedures["mri-spine-wo"]["codes"] == {"loinc": "30854-4"}
    assert (procedures["ct-spine-wo"]["rrl"], procedures["ct-spine-wo"]["ionising"]) == (None, True)
    assert procedures["mri-lumbar-w"]["contrast_agent"] == "gadolinium"
    assert procedures["ct-lumbar-wo-w"]["contrast_agent"] == "iodinated"
    for key in ("mri-spine-levels-wo", "mri-spine-levels-wo-w", "ct-spine-levels-wo"):
        assert procedures[key]["region"] == "levels"
    assert procedures["mri-spine-levels-wo-w"]["modality"] == "MR"
    assert procedures["ct-spine-levels-wo"]["modality"] == "CT"


def test_the_topic_schema_lists_the_scenarios_with_their_urgency(client, published_shipped):
    scenarios = client.get("/api/v1/topics/lumbar-metastasis/").json()["scenarios"]

    assert {s["key"]: s["urgency"] for s in scenarios} == {
        "mscc": "within_24_hours",
        "suspected-metastasis": "within_1_week",
        "neuro-deficit-no-cancer": "immediate",
        "cord-signs-no-cancer": "immediate",
        "clinical-review": "not_indicated",
        "no-red-flags": "not_indicated",
        "paediatric-neuro": "immediate",
        "paediatric": "referral",  # never "no urgency" for a child
    }
    assert all(set(s) == {"key", "title", "urgency"} and s["title"] for s in scenarios)


def test_the_topic_schema_names_its_release_and_the_latest_one(client, published_shipped):
    topic = client.get("/api/v1/topics/lumbar-metastasis/").json()

    assert topic["key"] == "lumbar-metastasis"
    assert topic["release"] == {"version": 1, "published_at": published_shipped.published_at.isoformat()}
    assert topic["latest_version"] == 1


def test_the_topic_schema_of_a_pinned_release_stays_as_it_was_published(client, published_shipped):
    from decisions.knowledge.models import Question

    changed = Question.objects.filter(topic__key="lumbar-metastasis", key="pregnant").update(
        prompt="Could the patient be pregnant?"
    )
    assert changed == 1
    draft_not_shown = client.get("/api/v1/topics/lumbar-metastasis/").json()
    publish(published_shipped.topic, summary="Pregnancy question reworded")

    latest = client.get("/api/v1/topics/lumbar-metastasis/").json()
    pinned = client.get("/api/v1/topics/lumbar-metastasis/?release=1").json()

    def prompt(topic):
        return next(q["prompt"] for q in topic["questions"] if q["key"] == "pregnant")

    assert prompt(draft_not_shown) == prompt(pinned) != "Could the patient be pregnant?"
    assert prompt(latest) == "Could the patient be pregnant?"
    assert (latest["release"]["version"], latest["latest_version"]) == (2, 2)
    assert (pinned["release"]["version"], pinned["latest_version"]) == (1, 2)


def test_a_head_request_answers_like_get_without_a_body(client, published_shipped):
    response = client.head("/api/v1/topics/lumbar-metastasis/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith(JSON)
    assert response.content == b""
