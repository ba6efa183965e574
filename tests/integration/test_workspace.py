"""The content owners' workspace: the topic-first admin home, a topic's map, the guided new topic."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from decisions.engine import integrity
from decisions.knowledge.models import (
    Branch,
    Caveat,
    Choice,
    Procedure,
    Question,
    Rating,
    Reference,
    RoutingNode,
    Scenario,
    Topic,
)
from decisions.knowledge.publishing import check_topic, publish
from decisions.workspace import overview
from tests.pages import text_of

pytestmark = pytest.mark.django_db

KEY = "synthetic-guided"


def management(prefix: str, total: int) -> dict[str, str]:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def step1_data(**overrides: str) -> dict[str, str]:
    return {
        "title": "Synthetic guided topic",
        "key": KEY,
        "scope": "For tests only.",
        "bottom_line": "",
        "owner": "Test team",
        "developer": "Test team",
        "funding_source": "None",
        "next_review_due": "2099-01-01",
        **overrides,
    }


def step2_data(**overrides: str) -> dict[str, str]:
    data = {
        **management("q", 3),
        **management("s", 4),
        "q-0-prompt": "Synthetic question 1?",
        "q-0-key": "sq1",
        "q-0-role": "routing",
        "q-0-answer_1": "Yes",
        "q-0-answer_2": "No",
        "q-1-prompt": "Synthetic question 2?",
        "q-1-key": "sq2",
        "q-1-role": "routing",
        "q-1-answer_1": "Yes",
        "q-1-answer_2": "No",
        "q-2-role": "routing",
        "s-0-title": "Synthetic scenario A",
        "s-0-key": "sa",
        "s-0-urgency": "routine",
        "s-1-title": "Synthetic scenario B",
        "s-1-key": "sb",
        "s-1-urgency": "routine",
        "s-2-title": "Synthetic scenario C",
        "s-2-key": "sc",
        "s-2-urgency": "not_indicated",
    }
    data.update(overrides)
    return data


def step3_data(topic: Topic, html: str) -> dict[str, str]:
    q1 = topic.questions.get(key="sq1")
    q2 = topic.questions.get(key="sq2")
    scenario = {s.key: s.pk for s in topic.scenarios.all()}
    return {
        "fingerprint": re.search(r'name="fingerprint" value="([0-9a-f]+)"', html).group(1),
        "first": str(q1.pk),
        f"lead_{q1.choices.get(key='yes').pk}": f"scenario:{scenario['sa']}",
        f"lead_{q1.choices.get(key='no').pk}": f"question:{q2.pk}",
        f"lead_{q2.choices.get(key='yes').pk}": f"scenario:{scenario['sb']}",
        f"lead_{q2.choices.get(key='no').pk}": f"scenario:{scenario['sc']}",
    }


def step4_data(topic: Topic, **overrides: str) -> dict[str, str]:
    scenario = {s.key: s.pk for s in topic.scenarios.all()}
    data = {
        **management("proc", 2),
        "source-key": "SYN-REF-1",
        "source-kind": "study",
        "source-citation": "Synthetic reference for tests.",
        "source-url": "https://example.org/synthetic",
        "proc-0-name": "Synthetic scan A",
        "proc-0-key": "synthetic-scan-a",
        "proc-0-modality": "XR",
        "proc-0-region": "lumbar",
        "proc-0-contrast": "none",
        "proc-0-rrl": "1",
        "proc-1-name": "Synthetic scan B",
        "proc-1-key": "synthetic-scan-b",
        "proc-1-modality": "MR",
        "proc-1-region": "lumbar",
        "proc-1-contrast": "none",
        "proc-1-rrl": "0",
        f"grid-rate_{scenario['sa']}_new0": "usually_appropriate",
        f"grid-rate_{scenario['sa']}_new1": "may_be_appropriate",
        f"grid-rate_{scenario['sb']}_new1": "usually_appropriate",
        f"grid-rate_{scenario['sc']}_new0": "usually_not_appropriate",
        "caveat-text": "Synthetic caveat text.",
        "caveat-key": "synthetic-caveat",
        "caveat-severity": "warning",
        "caveat-scenarios": str(scenario["sa"]),
    }
    data.update(overrides)
    return data


def make_guided_topic(client: Client) -> Topic:
    response = client.post("/admin/workspace/new/", step1_data())
    topic = Topic.objects.get(key=KEY)
    assert response["Location"] == f"/admin/workspace/topic/{topic.pk}/questions/"
    response = client.post(f"/admin/workspace/topic/{topic.pk}/questions/", step2_data())
    assert response["Location"] == f"/admin/workspace/topic/{topic.pk}/routing/"
    html = client.get(f"/admin/workspace/topic/{topic.pk}/routing/").content.decode()
    response = client.post(f"/admin/workspace/topic/{topic.pk}/routing/", step3_data(topic, html))
    assert response["Location"] == f"/admin/workspace/topic/{topic.pk}/ratings/"
    response = client.post(f"/admin/workspace/topic/{topic.pk}/ratings/", step4_data(topic))
    assert response["Location"] == f"/admin/workspace/topic/{topic.pk}/map/", text_of(
        response.content.decode()
    )
    return Topic.objects.get(pk=topic.pk)


def counts() -> dict[str, int]:
    models = [Topic, Question, Choice, Scenario, RoutingNode, Branch, Rating, Procedure, Reference, Caveat]
    return {model.__name__: model.objects.count() for model in models}


# --- the guided path ----------------------------------------------------------------------------


def test_the_guided_path_makes_a_topic_that_passes_the_integrity_check(editor_client):
    topic = make_guided_topic(editor_client)

    problems = check_topic(topic)
    assert not integrity.has_errors(problems), [str(p) for p in problems]
    assert topic.start_node.key == "sq1"
    assert {
        (b.node.key, b.choice.key): (b.next_node and b.next_node.key, b.scenario and b.scenario.key)
        for b in Branch.objects.filter(node__topic=topic)
    } == {
        ("sq1", "yes"): (None, "sa"),
        ("sq1", "no"): ("sq2", None),
        ("sq2", "yes"): (None, "sb"),
        ("sq2", "no"): (None, "sc"),
    }
    rating = Rating.objects.get(scenario__key="sa", scenario__topic=topic, procedure__key="synthetic-scan-a")
    assert rating.category == "usually_appropriate"
    assert [r.key for r in rating.references.all()] == ["SYN-REF-1"]
    caveat = Caveat.objects.get(key="synthetic-caveat")
    assert caveat.topic == topic
    assert [s.key for s in caveat.scenarios.all()] == ["sa"]
    # Every row made has its version and its history, naming the editor.
    question = topic.questions.get(key="sq1")
    assert question.version > 0
    assert question.history.first().history_user.username == "editor"


def test_the_guided_topic_publishes(editor_client):
    topic = make_guided_topic(editor_client)

    release = publish(topic, summary="Synthetic")

    assert release.version == 1
    assert [q["key"] for q in release.content["questions"]] == ["sq1", "sq2"]


def test_a_published_topic_is_not_changed_by_the_guided_path(editor_client):
    topic = make_guided_topic(editor_client)
    publish(topic, summary="Synthetic")

    for step in ("questions", "routing", "ratings"):
        response = editor_client.post(f"/admin/workspace/topic/{topic.pk}/{step}/", {})
        assert response.status_code == 409
        assert "is published" in text_of(response.content.decode())


def test_staff_without_a_role_cannot_use_the_workspace(staff_client, published_shipped):
    topic = published_shipped.topic
    for url in ("/admin/workspace/new/", f"/admin/workspace/topic/{topic.pk}/map/"):
        assert staff_client.get(url).status_code == 403
    assert staff_client.post("/admin/workspace/new/", step1_data()).status_code == 403
    assert not Topic.objects.filter(key=KEY).exists()


def test_anonymous_visitors_are_sent_to_the_login_page(anonymous_client):
    response = anonymous_client.get("/admin/workspace/new/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/workspace/new/"


@pytest.fixture
def staff_client(db, django_user_model) -> Client:
    """Staff with admin access but no role."""
    client = Client()
    client.force_login(django_user_model.objects.create_user("sam-staff", is_staff=True))
    return client


@pytest.fixture
def anonymous_client() -> Client:
    return Client()


@pytest.fixture
def viewer_client(db, django_user_model):
    user = django_user_model.objects.create_user("viewer", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_topic"))
    client = Client()
    client.force_login(user)
    return client


def test_a_viewer_sees_the_map_but_not_the_guided_path(viewer_client, published_shipped):
    assert viewer_client.get(f"/admin/workspace/topic/{published_shipped.topic.pk}/map/").status_code == 200
    assert viewer_client.get("/admin/workspace/new/").status_code == 403


# --- bad input to each step: a 4xx with the error in words, nothing half-made --------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"title": ""}, "Give the topic a title"),
        ({"key": "Not A Slug"}, "Use lowercase letters"),
        ({"next_review_due": "someday"}, "Enter a valid date"),
    ],
)
def test_step_1_refuses_bad_input_in_words(editor_client, overrides, message):
    response = editor_client.post("/admin/workspace/new/", step1_data(**overrides))

    assert response.status_code == 400
    assert message in text_of(response.content.decode())
    assert not Topic.objects.exists()


def test_step_1_refuses_a_key_in_use(editor_client, published_shipped):
    response = editor_client.post("/admin/workspace/new/", step1_data(key="lumbar-metastasis"))

    assert response.status_code == 400
    assert "A topic with this key already exists" in text_of(response.content.decode())


@pytest.fixture
def step1_topic(editor_client) -> Topic:
    editor_client.post("/admin/workspace/new/", step1_data())
    return Topic.objects.get(key=KEY)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"q-0-answer_2": ""}, "“Synthetic question 1?” needs at least two answers"),
        ({"q-0-answer_2_key": "yes"}, "Two answers of “Synthetic question 1?” have the key “yes”"),
        ({"q-1-key": "sq1"}, "already has a question with the key “sq1”"),
        ({"q-0-key": "Bad Key!"}, "The key “Bad Key!” of the question"),
        ({"q-0-prompt": ""}, "Write the question as the clinician reads it"),
        ({"q-0-role": "oracle"}, "Select a valid choice"),
        ({"s-0-title": "", "s-0-summary": "A summary without a title"}, "Give the scenario a title"),
        ({"s-1-key": "sa"}, "already has a scenario with the key “sa”"),
        ({"q-TOTAL_FORMS": "nonsense"}, "ManagementForm data is missing or has been tampered with"),
    ],
)
def test_step_2_refuses_bad_input_and_makes_nothing(editor_client, step1_topic, overrides, message):
    before = counts()

    response = editor_client.post(
        f"/admin/workspace/topic/{step1_topic.pk}/questions/", step2_data(**overrides)
    )

    assert response.status_code == 400
    assert message in text_of(response.content.decode())
    assert counts() == before


def test_step_2_says_so_when_a_key_is_taken_while_it_saves(editor_client, step1_topic, monkeypatch):
    from decisions.workspace import views

    original = views._saved

    def taken_meanwhile(obj):
        if isinstance(obj, Scenario):  # the questions are saved; then someone takes the key
            Scenario.objects.create(topic=obj.topic, key=obj.key, title="Someone else's")
        return original(obj)

    monkeypatch.setattr(views, "_saved", taken_meanwhile)

    response = editor_client.post(f"/admin/workspace/topic/{step1_topic.pk}/questions/", step2_data())

    assert response.status_code == 409
    assert "someone saved a piece with the same key at the same moment" in text_of(response.content.decode())
    assert not Question.objects.filter(topic=step1_topic).exists()


def test_step_2_refuses_an_empty_page(editor_client, step1_topic):
    data = {**management("q", 1), **management("s", 1), "q-0-role": "routing"}

    response = editor_client.post(f"/admin/workspace/topic/{step1_topic.pk}/questions/", data)

    assert response.status_code == 400
    assert "Write at least one question with its answers" in text_of(response.content.decode())


@pytest.fixture
def step2_topic(editor_client, step1_topic) -> Topic:
    editor_client.post(f"/admin/workspace/topic/{step1_topic.pk}/questions/", step2_data())
    return step1_topic


def routing_page(client: Client, topic: Topic) -> str:
    return client.get(f"/admin/workspace/topic/{topic.pk}/routing/").content.decode()


def test_step_3_names_every_answer_left_without_a_destination(editor_client, step2_topic):
    data = step3_data(step2_topic, routing_page(editor_client, step2_topic))
    q2 = step2_topic.questions.get(key="sq2")
    data[f"lead_{q2.choices.get(key='no').pk}"] = ""
    before = counts()

    response = editor_client.post(f"/admin/workspace/topic/{step2_topic.pk}/routing/", data)

    assert response.status_code == 400
    assert "Choose where the answer “No” to “Synthetic question 2?” leads." in text_of(
        response.content.decode()
    )
    assert counts() == before


def test_step_3_refuses_answers_that_go_round_in_a_circle(editor_client, step2_topic):
    data = step3_data(step2_topic, routing_page(editor_client, step2_topic))
    q1 = step2_topic.questions.get(key="sq1")
    q2 = step2_topic.questions.get(key="sq2")
    data[f"lead_{q2.choices.get(key='no').pk}"] = f"question:{q1.pk}"
    before = counts()

    response = editor_client.post(f"/admin/workspace/topic/{step2_topic.pk}/routing/", data)

    assert response.status_code == 400
    assert "go round in a circle: Synthetic question 1? → Synthetic question 2? → Synthetic question 1?" in (
        text_of(response.content.decode())
    )
    assert counts() == before


def test_step_3_refuses_a_destination_that_is_not_offered(editor_client, step2_topic, published_shipped):
    data = step3_data(step2_topic, routing_page(editor_client, step2_topic))
    other = Scenario.objects.get(key="mscc")  # another topic's scenario
    q1 = step2_topic.questions.get(key="sq1")
    data[f"lead_{q1.choices.get(key='yes').pk}"] = f"scenario:{other.pk}"
    data["first"] = "999999"

    response = editor_client.post(f"/admin/workspace/topic/{step2_topic.pk}/routing/", data)

    assert response.status_code == 400
    assert "Select a valid choice" in text_of(response.content.decode())
    assert not RoutingNode.objects.filter(topic=step2_topic).exists()


def test_step_3_refuses_a_save_based_on_a_page_someone_changed_since(editor_client, step2_topic):
    html = routing_page(editor_client, step2_topic)
    data = step3_data(step2_topic, html)
    editor_client.post(f"/admin/workspace/topic/{step2_topic.pk}/routing/", data)  # someone else saves
    choice = step2_topic.questions.get(key="sq1").choices.get(key="yes")
    data[f"lead_{choice.pk}"] = f"scenario:{step2_topic.scenarios.get(key='sc').pk}"

    response = editor_client.post(f"/admin/workspace/topic/{step2_topic.pk}/routing/", data)

    assert response.status_code == 409
    assert "someone changed this topic's questions or routing" in text_of(response.content.decode())
    assert Branch.objects.get(node__topic=step2_topic, choice=choice).scenario.key == "sa"


def test_step_3_asks_why_a_patient_factor_excludes(editor_client, step1_topic):
    data = step2_data(
        **{
            "q-2-prompt": "Synthetic factor?",
            "q-2-key": "sf",
            "q-2-role": "patient_factor",
            "q-2-answer_1": "Fine",
            "q-2-answer_2": "Not fine",
        }
    )
    editor_client.post(f"/admin/workspace/topic/{step1_topic.pk}/questions/", data)
    form = step3_data(step1_topic, routing_page(editor_client, step1_topic))
    choice = Choice.objects.get(question__topic=step1_topic, question__key="sf", key="not-fine")
    form[f"excludes_{choice.pk}"] = "needs_mri"

    response = editor_client.post(f"/admin/workspace/topic/{step1_topic.pk}/routing/", form)

    assert response.status_code == 400
    assert "Say why “Not fine” excludes procedures" in text_of(response.content.decode())
    form[f"reason_{choice.pk}"] = "Synthetic reason"
    response = editor_client.post(f"/admin/workspace/topic/{step1_topic.pk}/routing/", form)
    assert response.status_code == 302
    choice.refresh_from_db()
    assert (choice.excludes, choice.exclusion_reason) == ("needs_mri", "Synthetic reason")


@pytest.fixture
def step3_topic(editor_client, step2_topic) -> Topic:
    data = step3_data(step2_topic, routing_page(editor_client, step2_topic))
    editor_client.post(f"/admin/workspace/topic/{step2_topic.pk}/routing/", data)
    return step2_topic


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"source-key": "", "source-citation": "", "source-url": ""},
            "Choose the reference these ratings come from",
        ),
        ({"source-key": "bad key"}, "Use capitals, digits and hyphens"),
        ({"source-citation": ""}, "Write the new reference's citation"),
        ({"proc-0-contrast": "with"}, "Give the contrast agent exactly when contrast is used"),
        ({"proc-1-name": "", "proc-1-key": ""}, "New procedure 2 is not filled in above"),
        ({"proc-0-rrl": "9"}, "Ensure this value is less than or equal to 5"),
        ({"caveat-scenarios": ""}, "Tick the scenarios where clinicians should read this caveat"),
        ({"caveat-text": "", "caveat-key": "", "caveat-scenarios": "42"}, "Select a valid choice"),
    ],
)
def test_step_4_refuses_bad_input_and_makes_nothing(editor_client, step3_topic, overrides, message):
    before = counts()

    response = editor_client.post(
        f"/admin/workspace/topic/{step3_topic.pk}/ratings/", step4_data(step3_topic, **overrides)
    )

    assert response.status_code == 400
    assert message in text_of(response.content.decode())
    assert counts() == before


def test_step_4_refuses_a_reference_key_the_library_has(editor_client, step3_topic, published_shipped):
    before = counts()

    response = editor_client.post(
        f"/admin/workspace/topic/{step3_topic.pk}/ratings/",
        step4_data(step3_topic, **{"source-key": "ACR-LBP-2021"}),
    )

    assert response.status_code == 400
    assert "The library already has a reference ACR-LBP-2021: choose it above instead." in text_of(
        response.content.decode()
    )
    assert counts() == before


def test_step_4_rates_library_procedures_citing_a_library_reference(
    editor_client, step3_topic, published_shipped
):
    reference = Reference.objects.get(key="ACR-LBP-2021")
    procedure = Procedure.objects.get(key="xr-lumbar")
    sa = step3_topic.scenarios.get(key="sa")
    data = {
        **management("proc", 2),
        "source-existing": str(reference.pk),
        f"grid-rate_{sa.pk}_{procedure.pk}": "may_be_appropriate",
    }

    response = editor_client.post(f"/admin/workspace/topic/{step3_topic.pk}/ratings/", data)

    assert response.status_code == 302
    rating = Rating.objects.get(scenario=sa)
    assert (rating.procedure, list(rating.references.all())) == (procedure, [reference])


# --- the admin home ----------------------------------------------------------------------------


def test_the_home_starts_from_topics_with_their_state_problems_and_links(editor_client, published_shipped):
    topic = published_shipped.topic
    Rating.objects.filter(scenario__topic=topic).first().delete()  # an unpublished change

    response = editor_client.get("/admin/")

    html = response.content.decode()
    text = text_of(html)
    assert response.status_code == 200
    row = re.search(r'<table class="topics">.*?</table>', html, re.S).group(0)
    row_text = text_of(row)
    assert "Suspected lumbar spine metastasis (adults)" in row_text
    assert "Unpublished changes (1 since release 1)" in row_text
    assert "Release 1," in row_text
    assert "1 change to review" in row_text
    assert f'href="/admin/workspace/topic/{topic.pk}/map/"' in row
    assert f'href="/admin/decisions/topic/{topic.pk}/publish/"' in row
    assert 'href="/admin/workspace/new/"' in html
    assert re.search(r'<details class="all-tables">\s*<summary>All tables</summary>', html)
    assert text.index("Topics") < text.index("All tables")


def test_the_home_counts_problems_by_severity(editor_client, synthetic_topic):
    Branch.objects.filter(node__topic=synthetic_topic, node__key="second", choice__key="no").delete()
    problems = check_topic(synthetic_topic)
    errors = sum(p.severity == integrity.ERROR for p in problems)

    row = text_of(
        re.search(
            r'<table class="topics">.*?</table>', editor_client.get("/admin/").content.decode(), re.S
        ).group(0)
    )

    assert errors >= 1
    assert f"{errors} error" in row
    assert "Never published" in row


# --- the map -----------------------------------------------------------------------------------


def test_the_map_shows_every_question_answer_and_scenario_of_the_shipped_topic(
    editor_client, published_shipped, shipped_document
):
    topic = published_shipped.topic

    html = editor_client.get(f"/admin/workspace/topic/{topic.pk}/map/").content.decode()
    text = text_of(html)

    for question in shipped_document["questions"]:
        assert question["prompt"] in text
        for choice in question["choices"]:
            assert choice["label"] in text
    for scenario in shipped_document["scenarios"]:
        assert scenario["title"] in text
        section = re.search(
            rf'<section class="scenario-card" id="scenario-{scenario["key"]}".*?</section>', html, re.S
        )
        for rating in scenario["ratings"]:
            row = Rating.objects.get(
                scenario__topic=topic, scenario__key=scenario["key"], procedure__key=rating["procedure"]
            )
            assert f"/admin/decisions/rating/{row.pk}/change/" in section.group(0)


def test_the_map_marks_an_answer_that_leads_nowhere_beside_it_with_a_link(editor_client, published_shipped):
    topic = published_shipped.topic
    Branch.objects.filter(node__topic=topic, node__key="pain", choice__key="degenerative").delete()
    node = RoutingNode.objects.get(topic=topic, key="pain")

    html = editor_client.get(f"/admin/workspace/topic/{topic.pk}/map/").content.decode()

    answer = re.search(
        r'<li class="answer">\s*<a href="[^"]+">[^<]*degenerative[^<]*</a>.*?</li>', html, re.S | re.I
    )
    assert answer, "the degenerative answer is not on the map"
    assert "leads nowhere" in answer.group(0)
    assert f'href="/admin/decisions/routingnode/{node.pk}/change/">fix it here' in answer.group(0)


# --- admin_url: problems resolve to the page where they are fixed --------------------------------


def test_admin_url_resolves_every_kind_of_subject(published_shipped):
    topic = published_shipped.topic
    choice = Choice.objects.get(question__topic=topic, question__key="neuro", key="yes")
    branch = Branch.objects.get(node__topic=topic, node__key="start", choice__key="adult")
    rating = Rating.objects.get(scenario__topic=topic, scenario__key="mscc", procedure__key="mri-spine-wo")
    step = Scenario.objects.get(topic=topic, key="mscc").next_steps.all()[1]
    expected = {
        ("topic", ""): f"/admin/decisions/topic/{topic.pk}/change/",
        ("question", "neuro"): f"/admin/decisions/question/{choice.question.pk}/change/",
        ("choice", "neuro/yes"): f"/admin/decisions/choice/{choice.pk}/change/",
        ("node", "start"): f"/admin/decisions/routingnode/{branch.node.pk}/change/",
        ("branch", "start/adult"): f"/admin/decisions/branch/{branch.pk}/change/",
        ("branch", "start/nobody"): f"/admin/decisions/routingnode/{branch.node.pk}/change/",
        ("scenario", "mscc"): f"/admin/decisions/scenario/{rating.scenario.pk}/change/",
        ("rating", "mscc/mri-spine-wo"): f"/admin/decisions/rating/{rating.pk}/change/",
        ("next_step", "mscc/1"): f"/admin/decisions/nextstep/{step.pk}/change/",
        (
            "procedure",
            "xr-lumbar",
        ): f"/admin/decisions/procedure/{Procedure.objects.get(key='xr-lumbar').pk}/change/",
        ("reference", "ACR-LBP-2021"): (
            f"/admin/decisions/reference/{Reference.objects.get(key='ACR-LBP-2021').pk}/change/"
        ),
        ("caveat", "pregnancy-ionising"): (
            f"/admin/decisions/caveat/{Caveat.objects.get(topic=topic, key='pregnancy-ionising').pk}/change/"
        ),
    }
    for subject, url in expected.items():
        assert overview.admin_url(topic, subject) == url, subject
    assert overview.admin_url(topic, ("question", "no-such-question")) is None
    assert overview.admin_url(topic, ("oracle", "x")) is None


@pytest.mark.parametrize(
    ("where", "message", "subject"),
    [
        ("topic", "no next review date set", ("topic", "")),
        ("questions[neuro]", "needs at least two choices", ("question", "neuro")),
        ("questions[neuro].choices[yes]", "key is used twice", ("choice", "neuro/yes")),
        ("routing[start]", "unreachable from the start node", ("node", "start")),
        (
            "routing[pain]",
            "answer pain=degenerative leads nowhere (no branch)",
            ("branch", "pain/degenerative"),
        ),
        (
            "routing[start].branches[adult]",
            "must lead to exactly one node or scenario",
            ("branch", "start/adult"),
        ),
        ("scenarios[mscc].ratings[xr-lumbar]", "rating has no reference", ("rating", "mscc/xr-lumbar")),
        ("scenarios[mscc].next_steps[2]", "next step has no reference", ("next_step", "mscc/2")),
        ("references[ACR-VCF]", "no DOI, PMID or URL", ("reference", "ACR-VCF")),
        ("document", "bad document", None),
    ],
)
def test_problems_without_a_subject_are_placed_by_their_code_path(where, message, subject):
    assert overview.subject_of(integrity.Problem("error", where, message)) == subject


def test_a_problem_that_carries_its_subject_is_placed_by_it():
    class WithSubject:
        severity = "error"
        where = "routing[start]"
        message = "anything"
        subject = ("branch", "start/adult")

    assert overview.subject_of(WithSubject()) == ("branch", "start/adult")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", "/admin/workspace/new/", "GET, HEAD, POST"),
        ("delete", "/admin/workspace/new/", "GET, HEAD, POST"),
        ("post", "/admin/workspace/topic/{pk}/map/", "GET, HEAD"),
    ],
)
def test_another_method_is_a_405_naming_the_allowed_ones_and_changes_nothing(
    editor_client, published_shipped, method, path, allowed
):
    before = counts()
    response = getattr(editor_client, method)(path.format(pk=published_shipped.topic.pk))

    assert response.status_code == 405
    assert response["Allow"] == allowed
    assert counts() == before


def test_a_loop_is_named_from_the_question_asked_first_whatever_the_primary_keys():
    # "10" sorts before "9" as text: the loop must still start at the first question (pk 9).
    from decisions.workspace.forms import _cycle

    assert _cycle({"9": {"10"}, "10": {"9"}}, ["9", "10"]) == ["9", "10", "9"]


def test_the_map_says_how_many_procedures_an_answer_excludes_in_good_grammar(
    editor_client, published_shipped, shipped_document
):
    """Issue 19: the map read "excludes procedures that needs mri"."""
    topic = published_shipped.topic
    mri = [p for p in shipped_document["procedures"] if p["modality"] == "MR"]
    gadolinium = [p for p in shipped_document["procedures"] if p["contrast_agent"] == "gadolinium"]
    assert (len(mri), len(gadolinium)) == (7, 4)  # counted in the shipped file

    text = text_of(editor_client.get(f"/admin/workspace/topic/{topic.pk}/map/").content.decode())

    assert "→ excludes 7 procedures that need MRI" in text
    assert "→ excludes 4 procedures that use gadolinium contrast" in text
    assert "needs mri" not in text.lower().replace("1 procedure that needs mri", "")


def test_the_map_names_a_single_excluded_procedure_in_the_singular(editor_client, synthetic_topic):
    text = text_of(editor_client.get(f"/admin/workspace/topic/{synthetic_topic.pk}/map/").content.decode())

    assert "→ excludes 1 procedure that needs MRI" in text  # the synthetic topic's one MR procedure
