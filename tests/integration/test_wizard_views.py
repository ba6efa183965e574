"""The clinician pages: topic list, wizard steps, recommendation, print view and error pages.

Driven through the Django test client against the shipped topic published as release 1. The
expected texts come from docs/lumbar-metastasis-contract.md (public example cases).
"""

from __future__ import annotations

import gzip
import re
from urllib.parse import urlencode

import pytest
from django.contrib.staticfiles import finders

from decisions import engine
from decisions.knowledge.publishing import publish
from decisions.knowledge.served import snapshot_for
from tests.pages import Element, parse

# What a reader of the step looks at (see tests/pages.py for Element).


def question_heading(page: Element) -> str:
    return page.by_id("current-step").text


def choice_buttons(page: Element) -> list[tuple[str, str, str]]:
    return [(b.attrs["name"], b.attrs["value"], b.text) for b in page.find_all("button", type="submit")]


def change_links(page: Element) -> list[str]:
    return [a.attrs["href"] for a in page.find_all("a") if a.text.startswith("Change")]


def hidden_inputs(page: Element) -> list[tuple[str, str]]:
    return [(i.attrs["name"], i.attrs["value"]) for i in page.find_all("input", type="hidden")]


def problem_links(page: Element) -> dict[str, str]:
    return page.by_id("main").links()


@pytest.fixture(autouse=True)
def _shipped_topic_is_published(published_shipped):
    return published_shipped


# --- the public example cases ------------------------------------------------------------------

CASE_MR = (
    "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive"
    "&mri_access=available&contrast_risks=none&pregnant=no"
)
CASE_MSCC = "/t/lumbar-metastasis/?age_group=adult&neuro=yes&cancer=known&mri_access=available&pregnant=no"
CASE_MSCC_NO_MRI = (
    "/t/lumbar-metastasis/?age_group=adult&neuro=yes&cancer=known&mri_access=contraindicated&pregnant=no"
)
CASE_MSCC_MRI_LATE = (
    "/t/lumbar-metastasis/?age_group=adult&neuro=yes&cancer=known&mri_access=unavailable_in_time&pregnant=no"
)
CASE_NO_MRI = (
    "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive"
    "&mri_access=contraindicated&contrast_risks=none&pregnant=no"
)
CASE_GADOLINIUM_REACTION = (
    "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive"
    "&mri_access=available&contrast_risks=gad_reaction&pregnant=no"
)
CASE_KIDNEY_AND_GADOLINIUM_REACTION = (
    "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive"
    "&mri_access=available&contrast_risks=kidney&contrast_risks=gad_reaction&pregnant=no"
)
CASE_IODINATED_REACTION = (
    "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive"
    "&mri_access=available&contrast_risks=iodinated_reaction&pregnant=no"
)
CASE_CORD_SIGNS = (
    "/t/lumbar-metastasis/?age_group=adult&neuro=yes&cancer=none&neuro_level=cord_or_unclear"
    "&mri_access=available&contrast_risks=none&pregnant=no"
)
CASE_CAUDA_EQUINA = (
    "/t/lumbar-metastasis/?age_group=adult&neuro=yes&cancer=none&neuro_level=cauda_equina"
    "&mri_access=available&contrast_risks=none&pregnant=no"
)
CASE_NO_RED_FLAGS = "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=none"
CASE_CHILD = "/t/lumbar-metastasis/?age_group=child&neuro=no"
CASE_CHILD_NEURO = "/t/lumbar-metastasis/?age_group=child&neuro=yes"

MRI_LUMBAR_WITH_CONTRAST = "MRI lumbar spine without and with IV contrast"
MRI_LUMBAR = "MRI lumbar spine without IV contrast"
MRI_SPINE = "MRI whole spine without IV contrast"
MRI_LUMBAR_GADOLINIUM_ONLY = "MRI lumbar spine with IV contrast only"
MRI_LEVELS = "MRI of the spinal levels the examination points to, without IV contrast"
MRI_LEVELS_WITH_CONTRAST = "MRI of the spinal levels the examination points to, without and with IV contrast"
CT_SPINE = "CT whole spine without IV contrast"
CT_FALLBACK = "NICE: CT if MRI is contraindicated"

PUBLIC_CASES = [
    # url, what the headline must say, urgency label (None: no urgency badge), must be excluded
    pytest.param(CASE_MR, MRI_SPINE, "Within 1 week", [], id="suspected-metastasis"),
    pytest.param(CASE_MSCC, MRI_SPINE, "Within 24 hours", [], id="mscc"),
    pytest.param(
        CASE_NO_MRI,
        CT_SPINE,
        "Within 1 week",
        [MRI_SPINE, MRI_LUMBAR_WITH_CONTRAST, MRI_LUMBAR, "MRI lumbar spine with IV contrast only"],
        id="mri-contraindicated",
    ),
    pytest.param(CASE_MSCC_NO_MRI, CT_SPINE, "Within 24 hours", [MRI_SPINE], id="mscc-mri-contraindicated"),
    pytest.param(CASE_MSCC_MRI_LATE, MRI_SPINE, "Within 24 hours", [], id="mscc-mri-unavailable-in-time"),
    pytest.param(
        CASE_GADOLINIUM_REACTION,
        MRI_SPINE,
        "Within 1 week",
        [MRI_LUMBAR_WITH_CONTRAST, MRI_LUMBAR_GADOLINIUM_ONLY],
        id="gadolinium-reaction",
    ),
    pytest.param(
        CASE_NO_RED_FLAGS,
        "Imaging is usually not appropriate for uncomplicated low back pain",
        "No imaging indicated now",
        [],
        id="no-red-flags",
    ),
    pytest.param(
        CASE_CHILD,
        "A child or young person is outside this adult pathway",
        "Referral: outside this pathway",
        [],
        id="paediatric",
    ),
    pytest.param(
        CASE_CHILD_NEURO,
        "A child or young person with new neurological symptoms or signs",
        "Immediately",
        [],
        id="paediatric-neuro",
    ),
]


# --- home --------------------------------------------------------------------------------------


def test_the_home_page_links_the_topic_and_names_its_release_number(client):
    page = parse(client.get("/"))

    card = page.find("li", class_="card")
    assert card.links() == {"Suspected lumbar spine metastasis (adults)": "/t/lumbar-metastasis/"}
    assert "Release 1" in card.text


# --- wizard steps ------------------------------------------------------------------------------


def test_the_first_question_asks_the_age_with_one_button_per_choice(client):
    response = client.get("/t/lumbar-metastasis/")
    page = parse(response)

    assert response.status_code == 200
    assert question_heading(page) == "How old is the patient?"
    assert "Question 1" in page.find("legend").text
    assert choice_buttons(page) == [
        ("age_group", "adult", "18 or older"),
        ("age_group", "child", "Under 18"),
    ]
    assert change_links(page) == []
    assert hidden_inputs(page) == []


def test_answered_steps_are_listed_with_change_links_that_keep_every_answer(client):
    page = parse(client.get("/t/lumbar-metastasis/?age_group=adult&neuro=no"))

    answers = [li.text for li in page.find_all("li", class_="answer")]
    assert len(answers) == 2
    assert answers[0].startswith("How old is the patient? 18 or older")
    assert answers[1].startswith("Does the patient have new neurological symptoms or signs? No")
    assert change_links(page) == [
        "/t/lumbar-metastasis/?age_group=adult&neuro=no&change=age_group",
        "/t/lumbar-metastasis/?age_group=adult&neuro=no&change=neuro",
    ]
    assert question_heading(page) == "Does the patient have a cancer history?"
    assert "Question 3" in page.find("legend").text
    assert [value for _, value, _ in choice_buttons(page)] == ["known", "suspected", "none"]
    assert hidden_inputs(page) == [("age_group", "adult"), ("neuro", "no")]


def test_the_step_form_submits_by_get_to_the_topic_so_it_works_without_javascript(client):
    page = parse(client.get("/t/lumbar-metastasis/?age_group=adult"))

    form = page.find("form", class_="step")
    assert form.attrs["method"] == "get"
    assert form.attrs["action"] == "/t/lumbar-metastasis/"
    assert form.attrs["hx-get"] == "/t/lumbar-metastasis/"


def test_change_links_keep_the_earlier_answers_whatever_the_order_of_the_query_string(client):
    # Found while writing these tests: the Change link of the second step kept '?neuro=no' (the
    # answer being changed) and dropped the age. Fixed by answering in question order.
    response = client.get("/t/lumbar-metastasis/?neuro=no&age_group=adult", headers={"HX-Request": "true"})
    page = parse(response)

    assert question_heading(page) == "Does the patient have a cancer history?"
    assert change_links(page) == [
        "/t/lumbar-metastasis/?age_group=adult&neuro=no&change=age_group",
        "/t/lumbar-metastasis/?age_group=adult&neuro=no&change=neuro",
    ]
    assert hidden_inputs(page) == [("age_group", "adult"), ("neuro", "no")]
    assert response["HX-Push-Url"] == "/t/lumbar-metastasis/?age_group=adult&neuro=no"


def test_an_oddly_ordered_link_does_not_change_the_page_others_get(client):
    # The renderings are cached per sorted answers: the first visitor's order must not leak.
    client.get("/t/lumbar-metastasis/?neuro=no&age_group=adult")

    page = parse(client.get("/t/lumbar-metastasis/?age_group=adult&neuro=no"))

    assert change_links(page) == [
        "/t/lumbar-metastasis/?age_group=adult&neuro=no&change=age_group",
        "/t/lumbar-metastasis/?age_group=adult&neuro=no&change=neuro",
    ]


def test_a_pinned_release_is_kept_by_the_form_and_the_change_links(client):
    page = parse(client.get("/t/lumbar-metastasis/?age_group=adult&release=1"))

    assert ("release", "1") in hidden_inputs(page)
    assert change_links(page) == ["/t/lumbar-metastasis/?age_group=adult&release=1&change=age_group"]
    assert page.links()["Start again"] == "/t/lumbar-metastasis/?release=1"


def test_patient_factor_questions_follow_once_the_scenario_is_known(client):
    page = parse(client.get("/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive"))

    assert question_heading(page) == "Can the patient have MRI?"
    assert "So far: Suspected spinal metastasis, no neurological signs" in page.text
    assert "within 1 week" in page.find("aside", class_="provisional").find("p", class_="urgency").text


# --- htmx --------------------------------------------------------------------------------------


def test_an_htmx_request_gets_only_the_wizard_fragment_and_the_url_to_push(client):
    response = client.get("/t/lumbar-metastasis/?age_group=adult&neuro=no", headers={"HX-Request": "true"})
    html = response.content.decode()

    assert response.status_code == 200
    assert 'id="wizard"' in html
    assert "<html" not in html
    assert "site-header" not in html
    assert response["HX-Push-Url"] == "/t/lumbar-metastasis/?age_group=adult&neuro=no"
    assert "Does the patient have a cancer history?" in html
    assert "HX-Request" in response["Vary"]


def test_an_htmx_request_for_a_recommendation_pushes_its_canonical_url(client):
    response = client.get(CASE_MR, headers={"HX-Request": "true"})

    assert response["HX-Push-Url"] == CASE_MR
    assert 'id="headline"' in response.content.decode()
    assert "<html" not in response.content.decode()


def test_a_normal_request_gets_the_full_page_and_the_response_varies_on_hx_request(client):
    response = client.get("/t/lumbar-metastasis/?age_group=adult&neuro=no")
    html = response.content.decode()

    assert html.lstrip().startswith("<!doctype html>")
    assert "<html" in html
    assert 'id="wizard"' in html
    assert "HX-Push-Url" not in response
    assert "HX-Request" in [v.strip() for v in response["Vary"].split(",")]


def test_a_history_restore_request_gets_the_full_page(client):
    response = client.get(
        "/t/lumbar-metastasis/?age_group=adult&neuro=no",
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )

    assert response.status_code == 200
    assert "<html" in response.content.decode()
    assert "site-header" in response.content.decode()
    assert "HX-Push-Url" not in response


# --- the recommendation ------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "headline", "urgency", "excluded"), PUBLIC_CASES)
def test_each_public_example_case_shows_its_recommendation_in_the_headline(
    client, url, headline, urgency, excluded
):
    response = client.get(url)
    page = parse(response)

    assert response.status_code == 200
    assert headline in page.by_id("headline").text
    banner = page.find("div", class_="headline").find("p", class_="urgency").text
    assert urgency.lower() in banner.lower()
    emergency = urgency in ("Immediately", "Within 24 hours")
    assert banner.startswith("⚠ Emergency") is emergency
    shown = [h.text for h in page.find_all("h4")]
    excluded_names = [
        li.find("strong").text
        for li in page.find_all("li")
        if "excluded" in li.parent.attrs.get("class", "").split()
    ]
    assert excluded_names == excluded
    assert not set(shown) & set(excluded)
    if excluded:
        assert "Excluded for this patient" in page.text


@pytest.mark.parametrize(
    "url",
    [
        CASE_MR,
        CASE_MSCC,
        CASE_NO_MRI,
        CASE_MSCC_NO_MRI,
        CASE_GADOLINIUM_REACTION,
        CASE_KIDNEY_AND_GADOLINIUM_REACTION,
        CASE_NO_RED_FLAGS,
        CASE_CHILD,
        CASE_CHILD_NEURO,
    ],
)
def test_the_headline_names_the_engines_first_choice(client, url):
    answers: dict[str, str] = {}
    for pair in url.split("?")[1].split("&"):
        key, value = pair.split("=")
        answers[key] = f"{answers[key]}{engine.ANSWER_SEPARATOR}{value}" if key in answers else value
    recommendation = engine.recommend(snapshot_for("lumbar-metastasis"), answers)

    headline = parse(client.get(url)).by_id("headline").text

    if recommendation.recommended:
        assert headline.startswith(recommendation.first_choice.name)
    elif recommendation.first_choice:
        assert headline.startswith("Best available: " + recommendation.first_choice.name)
    else:
        assert headline.startswith(recommendation.scenario.summary)


@pytest.mark.parametrize("url", [CASE_NO_MRI, CASE_MSCC_NO_MRI])
def test_when_mri_is_contraindicated_whole_spine_ct_is_recommended_with_the_fallback_first_line(client, url):
    page = parse(client.get(url))

    shown = [h.text for h in page.find_all("h4")]
    assert shown[0] == CT_SPINE
    assert not [name for name in shown if name.startswith("MRI")]
    assert "Recommended" in [h.text for h in page.find_all("h3")]
    assert page.find_all(id="first-tier-lost") == []
    assert "No recommended option remains" not in page.text
    fallback = page.find("p", class_="fallback").text
    assert fallback.startswith("MRI is contraindicated for this patient")
    assert fallback.endswith(CT_FALLBACK + ".")
    # The fallback line comes first in the headline box, before the first choice.
    headline_box = page.find("div", class_="headline")
    paragraphs = [p.attrs.get("id") for p in headline_box.find_all("p") if p.attrs.get("id")]
    assert paragraphs.index("fallback") < paragraphs.index("headline")
    assert page.by_id("headline").text.startswith(CT_SPINE)
    assert "Best available" not in page.by_id("headline").text
    # The CT caveat: a CT without visible compression does not rule it out.
    card = next(li for li in page.find_all("li", class_="procedure") if li.find("h4").text == CT_SPINE)
    assert "does not rule out epidural disease or cord compression" in card.text


def test_excluded_procedures_are_listed_with_the_reason(client):
    page = parse(client.get(CASE_NO_MRI))

    excluded = page.find("ul", class_="excluded").text
    assert (
        "MRI lumbar spine without and with IV contrast (ACR: usually appropriate): MRI is contraindicated "
        "for this patient" in excluded
    )
    assert (
        "MRI lumbar spine without IV contrast (ACR: usually appropriate): MRI is contraindicated" in excluded
    )
    # A NICE recommendation keeps NICE's words, never an ACR label.
    assert (
        "MRI whole spine without IV contrast (NICE: whole-spine MRI within 1 week): MRI is contraindicated"
        in excluded
    )


def test_caveats_for_the_patients_answers_are_shown(client):
    page = parse(client.get(CASE_GADOLINIUM_REACTION))

    caveats = page.find("ul", class_="caveats").text
    assert (
        "Previous moderate or severe allergic-like reaction to gadolinium: MRI with contrast is left out"
        in (caveats)
    )
    assert (
        "Excluded: MRI lumbar spine without and with IV contrast; MRI lumbar spine with IV contrast only"
        in (caveats)
    )
    assert "a normal radiograph does not exclude metastasis" in caveats


@pytest.mark.parametrize(
    ("url", "words"),
    [
        (CASE_MSCC_MRI_LATE, "contact the MSCC coordinator now to arrange whole-spine MRI within 24 hours"),
        (
            CASE_CORD_SIGNS.replace("available", "unavailable_in_time"),
            "arrange transfer now for emergency MRI",
        ),
        (CASE_CAUDA_EQUINA.replace("available", "unavailable_in_time"), "arrange transfer now"),
    ],
)
def test_a_critical_next_step_shows_at_the_top_beside_the_urgency(client, url, words):
    page = parse(client.get(url))

    box = page.find("div", class_="headline")
    (step,) = box.find_all("div", class_="critical-step")
    assert step.attrs["role"] == "alert"
    assert step.text.startswith("⛔ Critical MRI cannot be done here in time")
    assert words in step.text
    # Once, at the top: not repeated among the other next steps, and MRI stays first (nothing excluded).
    assert all(
        "MRI cannot be done here in time" not in li.text
        for li in page.find_all("li")
        if li.parent.attrs.get("class") == "next-steps small"
    )
    assert page.by_id("headline").text.startswith("MRI")
    assert page.find_all("ul", class_="excluded") == []


def test_no_critical_step_shows_when_mri_is_available(client):
    assert parse(client.get(CASE_MSCC)).find_all("div", class_="critical-step") == []


def test_why_this_recommendation_has_a_row_for_each_answer(client):
    page = parse(client.get(CASE_GADOLINIUM_REACTION))

    rows = [[td.text for td in tr.find_all("td")] for tr in page.find("details", class_="why").find_all("tr")]
    rows = [row for row in rows if row]
    assert [row[:2] for row in rows] == [
        ["How old is the patient?", "18 or older"],
        ["Does the patient have new neurological symptoms or signs?", "No"],
        [
            "Does the patient have a cancer history?",
            "Known cancer: current or past diagnosis, including cancer in remission or treated",
        ],
        [
            "Does the spinal pain have features that suggest metastasis?",
            "Suggests metastasis: one or more of these features",
        ],
        [
            "Can the patient have MRI?",
            "Yes: MRI is available in the time required and there is no contraindication",
        ],
        [
            "Any of these contrast risks? Tick all that apply.",
            "Previous moderate or severe allergic-like reaction to gadolinium",
        ],
        ["Is the patient pregnant?", "No"],
    ]
    assert rows[5][2] == (
        "excludes MRI lumbar spine without and with IV contrast, MRI lumbar spine with IV contrast only; "
        "adds a caveat"
    )


def test_why_this_recommendation_lists_every_ticked_contrast_risk_in_one_row(client):
    page = parse(client.get(CASE_KIDNEY_AND_GADOLINIUM_REACTION))

    rows = [[td.text for td in tr.find_all("td")] for tr in page.find("details", class_="why").find_all("tr")]
    (contrast,) = [
        row for row in rows if row and row[0] == "Any of these contrast risks? Tick all that apply."
    ]
    assert contrast[1] == (
        "Reduced kidney function, not on dialysis: eGFR below 30 or acute kidney injury; "
        "Previous moderate or severe allergic-like reaction to gadolinium"
    )


def test_what_would_change_this_lists_every_other_answer_with_a_link(client):
    page = parse(client.get(CASE_GADOLINIUM_REACTION))

    entries = page.find("details", class_="what-if").find_all("li")
    # Every other answer of the seven questions: 1 + 1 + 2 + 1 + 3 (the retired MRI answer is not
    # offered) + 4 (none instead; or kidney, dialysis, iodinated reaction ticked as well) + 1.
    assert len(entries) == 13
    assert all(len(entry.find_all("a")) == 1 for entry in entries)
    no_mri = next(
        e for e in entries if "“Can the patient have MRI?” were No: MRI is contraindicated" in e.text
    )
    assert no_mri.find("a").attrs["href"] == (
        "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive"
        "&mri_access=contraindicated&contrast_risks=gad_reaction&pregnant=no"
    )
    assert "first choice becomes CT whole spine without IV contrast (NICE: CT if MRI is contraindicated)" in (
        no_mri.text
    )
    assert not [e for e in entries if "older answer" in e.text]
    also_kidney = next(e for e in entries if "were also “Reduced kidney function" in e.text)
    assert also_kidney.find("a").attrs["href"] == (
        "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive"
        "&mri_access=available&contrast_risks=kidney&contrast_risks=gad_reaction&pregnant=no"
    )
    child = next(e for e in entries if "were Under 18" in e.text)
    assert child.find("a").attrs["href"] == "/t/lumbar-metastasis/?age_group=child&neuro=no"
    assert "outside this pathway" in child.text


def test_a_what_would_change_link_leads_to_the_recommendation_it_promises(client):
    page = parse(client.get(CASE_GADOLINIUM_REACTION))
    entries = page.find("details", class_="what-if").find_all("li")
    no_mri = next(
        e for e in entries if "“Can the patient have MRI?” were No: MRI is contraindicated" in e.text
    )

    target = parse(client.get(no_mri.find("a").attrs["href"]))

    assert target.by_id("headline").text.startswith(CT_SPINE)
    assert "Recommended" in [h.text for h in target.find_all("h3")]


def test_the_permalink_pins_release_1_and_reproduces_the_page(client):
    page = parse(client.get(CASE_GADOLINIUM_REACTION))

    permalink = page.find("a", class_="permalink").attrs["href"]
    assert permalink == CASE_GADOLINIUM_REACTION + "&release=1"
    assert "Release 1, published" in page.find("section", class_="about").text
    again = parse(client.get(permalink))
    assert again.by_id("headline").text == page.by_id("headline").text


def test_the_print_link_points_to_the_print_view_with_the_same_answers(client):
    page = parse(client.get(CASE_GADOLINIUM_REACTION))

    links = page.find("section", class_="about").links()
    assert links["Print view"] == CASE_GADOLINIUM_REACTION.replace(
        "/t/lumbar-metastasis/?", "/t/lumbar-metastasis/print/?"
    )


def test_the_summary_box_holds_the_engines_summary_text(client):
    answers = {
        "age_group": "adult",
        "neuro": "no",
        "cancer": "known",
        "pain": "suggestive",
        "mri_access": "available",
        "contrast_risks": "gad_reaction",
        "pregnant": "no",
    }
    expected = engine.summary_text(engine.recommend(snapshot_for("lumbar-metastasis"), answers))

    textarea = parse(client.get(CASE_GADOLINIUM_REACTION)).by_id("summary-text")

    assert textarea.raw_text == expected
    assert textarea.raw_text.startswith(
        "Imaging: MRI whole spine without IV contrast (NICE: whole-spine MRI within 1 week)."
    )
    assert "Urgency: within 1 week." in textarea.raw_text
    assert "readonly" in textarea.attrs


def test_references_are_numbered_and_link_to_their_doi(client):
    page = parse(client.get(CASE_MR))

    references = page.find("section", class_="references")
    items = references.find_all("li")
    assert [li.attrs["id"] for li in items] == [f"ref-{n}" for n in range(1, len(items) + 1)]
    links = references.links()
    assert links["doi:10.1016/j.jacr.2021.08.002"] == "https://doi.org/10.1016/j.jacr.2021.08.002"
    assert links["doi:10.1097/BRS.0b013e3181e16ae2"] == "https://doi.org/10.1097/BRS.0b013e3181e16ae2"
    doi_links = [href for href in links.values() if href.startswith("https://doi.org/")]
    assert len(doi_links) >= 5


def test_every_citation_points_at_a_reference_on_the_page(client):
    page = parse(client.get(CASE_MR))

    ids = {li.attrs.get("id") for li in page.find("section", class_="references").find_all("li")}
    citations = {a.attrs["href"][1:] for a in page.find_all("a", class_="cite")}
    assert citations
    assert citations <= ids


def test_a_child_without_signs_gets_a_referral_with_its_own_urgency_never_no_imaging(client):
    page = parse(client.get(CASE_CHILD))

    assert page.find_all("h4") == []
    assert page.by_id("headline").text.startswith("A child or young person is outside this adult pathway")
    banner = page.find("div", class_="headline").find("p", class_="urgency")
    assert banner.text == "↗ Referral: outside this pathway"
    assert "urgency-referral" in banner.attrs["class"].split()
    summary = page.by_id("summary-text").raw_text
    assert "Urgency: outside this pathway: refer." in summary
    for words in ("no imaging", "no urgency", "none recommended"):
        assert words not in page.text.lower()
        assert words not in summary.lower()


def test_a_child_with_neurological_signs_is_an_emergency_referral_on_the_first_screen(client):
    page = parse(client.get(CASE_CHILD_NEURO))

    box = page.find("div", class_="headline")
    assert "headline-emergency" in box.attrs["class"].split()
    banner = box.find("p", class_="urgency")
    assert banner.text == "⚠ Emergency: image immediately"
    assert banner.attrs["role"] == "alert"
    assert "contact the on-call paediatric team now" in page.by_id("headline").text
    assert page.find_all("h4") == []
    assert "Urgency: immediately." in page.by_id("summary-text").raw_text
    for words in ("no imaging", "no urgency", "no recommended option remains"):
        assert words not in page.text.lower()


# --- the print view ----------------------------------------------------------------------------


def test_the_print_view_shows_the_headline_and_no_site_chrome(client):
    response = client.get(CASE_MSCC.replace("/t/lumbar-metastasis/?", "/t/lumbar-metastasis/print/?"))
    page = parse(response)

    assert response.status_code == 200
    assert page.find("p", class_="headline").text.startswith(
        "MRI whole spine without IV contrast (NICE: whole-spine MRI within 24 hours) — within 24 hours"
    )
    assert page.find("p", class_="urgency").text == "⚠ Emergency: image within 24 hours"
    assert page.find_all("header") == []
    assert page.find_all("footer") == []
    assert "Reproduce: http://testserver" + CASE_MSCC + "&release=1" in page.text


def test_the_print_view_of_unfinished_answers_links_back_to_the_questions(client):
    page = parse(client.get("/t/lumbar-metastasis/print/?age_group=adult"))

    assert "The answers are not complete yet." in page.text
    assert page.links()["Return to the questions"] == "/t/lumbar-metastasis/?age_group=adult"


def test_the_print_view_shows_question_prompts_and_answer_labels_not_keys(client):
    page = parse(
        client.get("/t/lumbar-metastasis/print/" + CASE_KIDNEY_AND_GADOLINIUM_REACTION.split("/", 3)[3])
    )

    answers = next(p for p in page.find_all("p") if p.text.startswith("Answers:")).text
    assert "How old is the patient? 18 or older" in answers
    assert "Can the patient have MRI? Yes: MRI is available in the time required" in answers
    assert (
        "Any of these contrast risks? Tick all that apply. Reduced kidney function, not on dialysis: eGFR "
        "below 30 or acute kidney injury; Previous moderate or severe allergic-like reaction to gadolinium"
    ) in answers
    for key in ("age_group", "mri_access", "contrast_risks", "gad_reaction", "suggestive", "="):
        assert key not in answers


def test_the_print_view_of_a_child_without_signs_says_referral_never_no_imaging(client):
    page = parse(client.get("/t/lumbar-metastasis/print/?age_group=child&neuro=no"))

    assert page.find("p", class_="urgency").text == "↗ Referral: outside this pathway"
    answers = next(p for p in page.find_all("p") if p.text.startswith("Answers:")).text
    assert answers == (
        "Answers: How old is the patient? Under 18; "
        "Does the patient have new neurological symptoms or signs? No."
    )
    assert "no imaging" not in page.text.lower() and "no urgency" not in page.text.lower()


# --- revision 3: the public example cases of docs/lumbar-metastasis-contract.md ---------------

CONTRACT_CASES = [
    # url, scenario title, first choice (None: no procedure), urgency banner
    pytest.param(
        CASE_MR,
        "Suspected spinal metastasis, no neurological signs",
        MRI_SPINE,
        "◷ Urgent: image within 1 week",
        id="suspected-metastasis",
    ),
    pytest.param(
        CASE_MSCC,
        "Suspected metastatic spinal cord compression (MSCC)",
        MRI_SPINE,
        "⚠ Emergency: image within 24 hours",
        id="mscc",
    ),
    pytest.param(
        CASE_MSCC_NO_MRI,
        "Suspected metastatic spinal cord compression (MSCC)",
        CT_SPINE,
        "⚠ Emergency: image within 24 hours",
        id="mscc-mri-contraindicated",
    ),
    pytest.param(
        CASE_MSCC_MRI_LATE,
        "Suspected metastatic spinal cord compression (MSCC)",
        MRI_SPINE,
        "⚠ Emergency: image within 24 hours",
        id="mscc-mri-unavailable-in-time",
    ),
    pytest.param(
        CASE_MSCC_NO_MRI.replace("contraindicated", "not_possible"),
        "Suspected metastatic spinal cord compression (MSCC)",
        CT_SPINE,
        "⚠ Emergency: image within 24 hours",
        id="mscc-mri-not-possible-old-link",
    ),
    pytest.param(
        CASE_NO_MRI,
        "Suspected spinal metastasis, no neurological signs",
        CT_SPINE,
        "◷ Urgent: image within 1 week",
        id="suspected-metastasis-mri-contraindicated",
    ),
    pytest.param(
        CASE_KIDNEY_AND_GADOLINIUM_REACTION,
        "Suspected spinal metastasis, no neurological signs",
        MRI_SPINE,
        "◷ Urgent: image within 1 week",
        id="kidney-and-gadolinium-reaction",
    ),
    pytest.param(
        CASE_IODINATED_REACTION,
        "Suspected spinal metastasis, no neurological signs",
        MRI_SPINE,
        "◷ Urgent: image within 1 week",
        id="iodinated-reaction",
    ),
    pytest.param(
        CASE_CORD_SIGNS,
        "Signs pointing to the spinal cord, or an unclear level, no known or suspected cancer",
        MRI_LEVELS,
        "⚠ Emergency: image immediately",
        id="cord-signs-no-cancer",
    ),
    pytest.param(
        CASE_CAUDA_EQUINA,
        "Suspected cauda equina syndrome, no known or suspected cancer",
        MRI_LUMBAR,
        "⚠ Emergency: image immediately",
        id="neuro-deficit-no-cancer",
    ),
    pytest.param(
        CASE_NO_RED_FLAGS,
        "No cancer suspected and no neurological signs",
        None,
        "ℹ No imaging indicated now",
        id="no-red-flags",
    ),
    pytest.param(
        CASE_CHILD_NEURO,
        "Under 18 with new neurological symptoms or signs: emergency referral",
        None,
        "⚠ Emergency: image immediately",
        id="paediatric-neuro",
    ),
    pytest.param(
        CASE_CHILD,
        "Under 18 without new neurological signs: paediatric referral",
        None,
        "↗ Referral: outside this pathway",
        id="paediatric",
    ),
]


@pytest.mark.parametrize(("url", "title", "first", "banner"), CONTRACT_CASES)
def test_each_contract_case_shows_its_scenario_first_choice_and_urgency_banner(
    client, url, title, first, banner
):
    response = client.get(url)
    page = parse(response)

    assert response.status_code == 200
    box = page.find("div", class_="headline")
    assert box.find("p", class_="urgency").text == banner
    assert f"Clinical scenario: {title}." in box.text
    headline = page.by_id("headline").text
    cards = [h.text for h in page.find_all("h4")]
    if first is None:
        assert cards == []
    else:
        assert headline.startswith(first)
        assert cards[0] == first
        assert "Best available" not in headline
    if banner.startswith("⚠ Emergency"):
        assert "headline-emergency" in box.attrs["class"].split()
        assert "No recommended option remains" not in page.text


@pytest.mark.parametrize(
    "url", [CASE_MSCC_NO_MRI, CASE_NO_MRI, CASE_MSCC_NO_MRI.replace("contraindicated", "not_possible")]
)
def test_a_contraindication_recommends_whole_spine_ct_with_its_caveat_and_excludes_every_mri(client, url):
    page = parse(client.get(url))

    assert page.find("p", class_="fallback").text.endswith("NICE: CT if MRI is contraindicated.")
    recommended = page.find("h3", class_="h5")
    assert recommended.text == "Recommended"
    first_card = recommended.parent.find("li", class_="procedure")
    assert first_card.find("h4").text == CT_SPINE
    assert "A CT that shows no compression does not rule out epidural disease" in first_card.text
    excluded = [li.find("strong").text for li in page.find("ul", class_="excluded").find_all("li")]
    assert excluded and all(name.startswith("MRI") for name in excluded)
    assert not [h.text for h in page.find_all("h4") if h.text.startswith("MRI")]


def test_mri_unavailable_in_time_keeps_mri_first_excludes_nothing_and_says_how_to_get_it(client):
    page = parse(client.get(CASE_MSCC_MRI_LATE))

    assert page.by_id("headline").text.startswith(MRI_SPINE)
    assert page.find_all("ul", class_="excluded") == []
    assert page.find_all(id="fallback") == []
    step = page.find("div", class_="headline").find("div", class_="critical-step").text
    assert "contact the MSCC coordinator now" in step and "at another centre if needed" in step


def test_kidney_and_a_gadolinium_reaction_exclude_every_gadolinium_mri_without_the_agent_caveat(client):
    page = parse(client.get(CASE_KIDNEY_AND_GADOLINIUM_REACTION))

    excluded = [li.find("strong").text for li in page.find("ul", class_="excluded").find_all("li")]
    assert excluded == [MRI_LUMBAR_WITH_CONTRAST, MRI_LUMBAR_GADOLINIUM_ONLY]
    assert page.by_id("headline").text.startswith(MRI_SPINE)
    assert "without IV contrast" in page.by_id("headline").text
    caveats = page.find("ul", class_="caveats").text
    # No listed procedure takes gadolinium: the kidney answer's gadolinium-agent advice is not shown,
    # its iodinated advice is (on the iodinated CT only), and the reaction explains its exclusion.
    assert "group II gadolinium agent" not in page.text
    assert "give IV normal saline prophylaxis before IV iodinated contrast" in caveats
    assert "Concerns: CT lumbar spine with IV contrast" in caveats
    assert "MRI with contrast is left out" in caveats


def test_an_iodinated_contrast_reaction_concerns_the_iodinated_procedures_only(client):
    page = parse(client.get(CASE_IODINATED_REACTION))

    assert page.by_id("headline").text.startswith(MRI_SPINE)
    assert page.find_all("ul", class_="excluded") == []
    (caveat,) = [
        li
        for li in page.find("ul", class_="caveats").find_all("li")
        if "reaction to iodinated contrast" in li.text
    ]
    assert "Concerns: CT lumbar spine with IV contrast; CT myelography lumbar spine" in caveat.text


def test_cord_level_signs_get_mri_of_the_indicated_levels_rated_the_same(client):
    page = parse(client.get(CASE_CORD_SIGNS))

    headline = page.by_id("headline").text
    assert headline.startswith(f"{MRI_LEVELS} or {MRI_LEVELS_WITH_CONTRAST}")
    assert "rated the same; neither is preferred" in headline
    assert "lumbar" not in headline.lower()


def test_the_cauda_equina_page_has_no_metastasis_wording(client):
    page = parse(client.get(CASE_CAUDA_EQUINA))

    assert page.by_id("headline").text.startswith(f"{MRI_LUMBAR} or {MRI_LUMBAR_WITH_CONTRAST}")
    recommendation = page.find("section", class_="recommendation")
    box = recommendation.find("div", class_="headline").text.lower()
    assert "metasta" not in box.replace("outside the metastasis pathway", "")


# --- revision 3: old links -------------------------------------------------------------------


def test_an_old_mri_not_possible_link_reads_as_contraindicated_and_asks_which_applies(client):
    response = client.get(
        "/t/lumbar-metastasis/?age_group=adult&neuro=yes&cancer=known&mri_access=not_possible&pregnant=no"
    )
    page = parse(response)

    assert response.status_code == 200
    assert page.by_id("headline").text.startswith(CT_SPINE)
    assert page.find("p", class_="fallback").text.startswith(
        "MRI is not possible for this patient (older answer"
    )
    caveats = page.find("ul", class_="caveats").text
    assert '"Not possible" is an older answer' in caveats
    assert "check which applies" in caveats


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("gadolinium=none", "contrast_risks=none"),
        ("gadolinium=kidney", "contrast_risks=kidney"),
        ("gadolinium=prior_reaction", "contrast_risks=gad_reaction"),
    ],
)
def test_an_old_gadolinium_link_answers_as_the_contrast_risk_it_became(client, old, new):
    old_url = CASE_MR.replace("contrast_risks=none", old)
    new_url = CASE_MR.replace("contrast_risks=none", new)

    old_response = client.get(old_url)
    old_page, new_page = parse(old_response), parse(client.get(new_url))

    assert old_response.status_code == 200
    assert old_page.by_id("headline").text == new_page.by_id("headline").text
    assert old_page.by_id("summary-text").raw_text == new_page.by_id("summary-text").raw_text
    assert old_page.find("a", class_="permalink").attrs["href"] == new_url + "&release=1"
    assert old_page.find_all("p", class_="not-used") == []
    pushed = client.get(old_url, headers={"HX-Request": "true"})
    assert pushed["HX-Push-Url"] == new_url


def test_an_old_gadolinium_link_on_the_mscc_path_lists_the_answer_as_not_used(client):
    response = client.get(CASE_MSCC + "&gadolinium=kidney")
    page = parse(response)

    assert response.status_code == 200
    assert page.by_id("headline").text.startswith(MRI_SPINE)
    assert "Not used" in page.find("p", class_="not-used").text


def test_an_old_child_link_without_neuro_asks_about_neurological_signs(client):
    response = client.get("/t/lumbar-metastasis/?age_group=child")
    page = parse(response)

    assert response.status_code == 200
    assert question_heading(page) == "Does the patient have new neurological symptoms or signs?"
    assert [value for _, value, _ in choice_buttons(page)] == ["yes", "no"]
    assert hidden_inputs(page) == [("age_group", "child")]


def test_an_old_link_with_signs_and_no_cancer_asks_where_the_signs_point(client):
    response = client.get("/t/lumbar-metastasis/?age_group=adult&neuro=yes&cancer=none")
    page = parse(response)

    assert response.status_code == 200
    assert question_heading(page) == "Where do the new neurological signs point?"
    assert [value for _, value, _ in choice_buttons(page)] == ["cauda_equina", "cord_or_unclear"]


def test_an_old_link_with_signs_no_cancer_and_patient_factors_still_asks_the_level(client):
    response = client.get(
        "/t/lumbar-metastasis/?age_group=adult&neuro=yes&cancer=none&mri_access=available"
        "&gadolinium=none&pregnant=no"
    )
    page = parse(response)

    assert response.status_code == 200
    assert question_heading(page) == "Where do the new neurological signs point?"


# --- revision 3: the contrast risks checkboxes ---------------------------------------------------

CONTRAST_STEP = (
    "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive&mri_access=available"
)


def test_the_contrast_risks_question_is_one_fieldset_of_checkboxes_with_an_exclusive_none(client):
    page = parse(client.get(CONTRAST_STEP))

    assert question_heading(page) == "Any of these contrast risks? Tick all that apply."
    form = page.find("form", class_="step")
    assert form.attrs["method"] == "get" and form.attrs["action"] == "/t/lumbar-metastasis/"
    fieldset = form.find("fieldset")
    boxes = fieldset.find_all("input", type="checkbox")
    assert [(b.attrs["name"], b.attrs["value"]) for b in boxes] == [
        ("contrast_risks", "none"),
        ("contrast_risks", "kidney"),
        ("contrast_risks", "dialysis"),
        ("contrast_risks", "gad_reaction"),
        ("contrast_risks", "iodinated_reaction"),
    ]
    assert ["data-exclusive" in b.attrs for b in boxes] == [True, False, False, False, False]
    labels = {label.attrs["for"]: label.text for label in fieldset.find_all("label")}
    assert labels[boxes[0].attrs["id"]] == "None of these"
    assert all(b.attrs["id"] in labels for b in boxes)
    assert not any("checked" in b.attrs for b in boxes)
    assert [b.text for b in fieldset.find_all("button", type="submit")] == ["Continue"]
    assert ("mri_access", "available") in hidden_inputs(page)


def test_ticking_two_contrast_risks_submits_them_as_a_repeated_parameter(client):
    response = client.get(CONTRAST_STEP + "&contrast_risks=kidney&contrast_risks=gad_reaction")
    page = parse(response)

    assert response.status_code == 200
    assert question_heading(page) == "Is the patient pregnant?"
    assert [pair for pair in hidden_inputs(page) if pair[0] == "contrast_risks"] in (
        [("contrast_risks", "kidney"), ("contrast_risks", "gad_reaction")],
        [("contrast_risks", "kidney+gad_reaction")],
    )


def test_none_of_these_with_another_contrast_risk_is_a_400_that_says_so(client):
    page = assert_helpful_problem(
        client.get(CONTRAST_STEP + "&contrast_risks=none&contrast_risks=kidney"),
        400,
        "“None of these” (none) cannot be combined with other answers",
        "contrast_risks",
    )

    assert problem_links(page)["Start this topic again"] == "/t/lumbar-metastasis/"


# --- revision 3: "Change" keeps the later answers ------------------------------------------------


def test_changing_pregnant_asks_it_again_keeping_every_other_answer(client):
    page = parse(client.get(CASE_MR + "&change=pregnant"))

    assert question_heading(page) == "Is the patient pregnant?"
    current = [b for b in page.find_all("button", type="submit") if "aria-current" in b.attrs]
    assert [(b.attrs["value"], b.text) for b in current] == [("no", "No (current answer)")]
    assert hidden_inputs(page) == [
        ("age_group", "adult"),
        ("neuro", "no"),
        ("cancer", "known"),
        ("pain", "suggestive"),
        ("mri_access", "available"),
        ("contrast_risks", "none"),
        ("tidy", "1"),
    ]


def test_submitting_a_changed_pregnancy_answer_keeps_the_others_and_redirects_to_the_canonical_url(client):
    response = client.get(
        "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive&mri_access=available"
        "&contrast_risks=none&tidy=1&pregnant=yes"
    )

    assert response.status_code == 302
    assert response["Location"] == CASE_MR.replace("pregnant=no", "pregnant=yes")


def test_changing_neuro_from_no_to_yes_drops_pain_and_keeps_mri_access(client):
    page = parse(client.get(CASE_MR + "&change=neuro"))
    assert question_heading(page) == "Does the patient have new neurological symptoms or signs?"
    kept = hidden_inputs(page)
    assert ("tidy", "1") in kept and ("pain", "suggestive") in kept and ("neuro", "no") not in kept

    response = client.get("/t/lumbar-metastasis/?" + urlencode([*kept, ("neuro", "yes")]))

    assert response.status_code == 302
    assert response["Location"] == CASE_MSCC
    page = parse(client.get(response["Location"]))
    assert page.by_id("headline").text.startswith(MRI_SPINE)


def test_changing_a_question_the_answers_do_not_reach_goes_to_the_canonical_url(client):
    response = client.get(CASE_MSCC + "&change=pain")

    assert response.status_code == 302
    assert response["Location"] == CASE_MSCC


def test_the_change_link_of_a_contrast_risks_answer_ticks_the_current_answers(client):
    page = parse(client.get(CASE_KIDNEY_AND_GADOLINIUM_REACTION + "&change=contrast_risks"))

    ticked = [b.attrs["value"] for b in page.find_all("input", type="checkbox") if "checked" in b.attrs]
    assert ticked == ["kidney", "gad_reaction"]
    assert ("pregnant", "no") in hidden_inputs(page)
    assert [name for name, _ in hidden_inputs(page)].count("contrast_risks") == 0


def test_answered_patient_factors_are_listed_with_change_links_before_the_recommendation_is_complete(client):
    # The step counter and the list of answers should count every answered question, the patient
    # factors too, so that an answered MRI question can be changed from the contrast step.
    page = parse(client.get(CONTRAST_STEP))

    answers = [li.text for li in page.find_all("li", class_="answer")]
    assert len(answers) == 5
    assert answers[4].startswith("Can the patient have MRI?")
    assert "Question 6" in page.find("legend").text


# --- revision 3: no child is told "no imaging" or "no urgency" -----------------------------------


@pytest.mark.parametrize(
    "url",
    [
        CASE_MR,
        CASE_MSCC,
        CASE_MSCC_NO_MRI,
        CASE_MSCC_MRI_LATE,
        CASE_NO_MRI,
        CASE_KIDNEY_AND_GADOLINIUM_REACTION,
        CASE_IODINATED_REACTION,
        CASE_CORD_SIGNS,
        CASE_CAUDA_EQUINA,
        CASE_NO_RED_FLAGS,
        "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=degenerative",
    ],
)
def test_what_would_change_this_never_says_no_imaging_or_no_urgency_of_a_child(client, url):
    page = parse(client.get(url))

    entries = page.find("details", class_="what-if").find_all("li")
    (child,) = [e for e in entries if "were Under 18" in e.text]
    if "neuro=yes" in url:
        assert child.find("a").attrs["href"] == "/t/lumbar-metastasis/?age_group=child&neuro=yes"
        assert "emergency referral" in child.text
    else:
        assert child.find("a").attrs["href"] == "/t/lumbar-metastasis/?age_group=child&neuro=no"
        assert "outside this pathway" in child.text
    for words in ("no imaging", "no urgency", "none recommended"):
        assert words not in child.text.lower()


@pytest.mark.parametrize("url", [CASE_CHILD, CASE_CHILD_NEURO, "/t/lumbar-metastasis/?age_group=child"])
def test_no_child_page_says_no_imaging_or_no_urgency(client, url):
    page = parse(client.get(url))

    text = page.by_id("main").text.lower()
    for words in ("no imaging", "no urgency", "none recommended"):
        assert words not in text


# --- bad input ---------------------------------------------------------------------------------


def assert_helpful_problem(response, status: int, *phrases: str) -> Element:
    page = parse(response)
    assert response.status_code == status
    problem = page.find("div", class_="problem")
    for phrase in phrases:
        assert phrase in problem.text
    assert problem_links(page)["See all topics"] == "/"
    return page


def test_an_unknown_question_is_a_400_that_names_it(client):
    page = assert_helpful_problem(client.get("/t/lumbar-metastasis/?foo=bar"), 400, "unknown question 'foo'")

    assert problem_links(page)["Start this topic again"] == "/t/lumbar-metastasis/"


def test_an_unknown_choice_is_a_400_that_lists_the_valid_choices(client):
    page = assert_helpful_problem(
        client.get("/t/lumbar-metastasis/?age_group=elderly"), 400, "'elderly'", "valid choices: adult, child"
    )

    assert problem_links(page)["Start this topic again"] == "/t/lumbar-metastasis/"


def test_an_answer_to_a_question_this_path_can_no_longer_reach_is_a_400(client):
    page = assert_helpful_problem(
        client.get("/t/lumbar-metastasis/?age_group=adult&neuro=no&neuro_level=cauda_equina"),
        400,
        "question 'neuro_level' is not asked with these answers",
    )

    assert problem_links(page)["Start this topic again"] == "/t/lumbar-metastasis/"


def test_answers_to_questions_still_ahead_are_kept_and_used_when_the_path_gets_there(client):
    # What an EHR link or a SMART launch knows from the record: cancer history, not yet the signs.
    response = client.get("/t/lumbar-metastasis/?age_group=adult&cancer=known&pregnant=no")

    assert response.status_code == 200
    page = parse(response)
    assert {("cancer", "known"), ("pregnant", "no")} <= set(hidden_inputs(page))
    known_ahead = page.find("p", class_="known-ahead").text
    assert known_ahead.startswith("Already answered, used when the questions get there:")
    assert "Known cancer" in known_ahead
    # Answering the next question goes on without asking again what is known.
    after = client.get("/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pregnant=no")
    assert after.status_code == 200
    assert "cancer" not in question_heading(parse(after)).lower()
    assert ("neuro", "no") in hidden_inputs(parse(after))


def test_an_answer_to_a_question_after_a_referral_outcome_is_a_400(client):
    assert_helpful_problem(
        client.get("/t/lumbar-metastasis/?age_group=child&neuro=no&cancer=known"), 400, "'cancer'"
    )


def test_a_question_answered_twice_is_a_400(client):
    page = assert_helpful_problem(
        client.get("/t/lumbar-metastasis/?age_group=adult&age_group=child"),
        400,
        "question 'age_group' takes one answer, not several",
    )

    assert problem_links(page)["Start this topic again"] == "/t/lumbar-metastasis/"


def test_a_release_that_is_not_a_number_is_a_400(client):
    page = assert_helpful_problem(
        client.get("/t/lumbar-metastasis/?release=abc"), 400, "'abc'", "release number"
    )

    assert problem_links(page)["Start this topic again"] == "/t/lumbar-metastasis/"


def test_a_release_that_does_not_exist_is_a_404_with_a_link_to_the_latest(client):
    page = assert_helpful_problem(
        client.get("/t/lumbar-metastasis/?age_group=adult&release=99"), 404, "no release 99"
    )

    assert problem_links(page)["Open the latest release with these answers"] == (
        "/t/lumbar-metastasis/?age_group=adult"
    )


def test_an_unknown_topic_is_a_404_with_a_link_to_the_topics(client):
    page = assert_helpful_problem(client.get("/t/nope/"), 404, "'nope'")

    assert "Start this topic again" not in problem_links(page)


def test_the_print_view_refuses_bad_answers_the_same_way(client):
    assert_helpful_problem(client.get("/t/lumbar-metastasis/print/?foo=bar"), 400, "unknown question 'foo'")
    assert_helpful_problem(
        client.get("/t/lumbar-metastasis/print/?age_group=adult&release=99"), 404, "no release 99"
    )


def test_an_htmx_request_with_bad_answers_gets_the_problem_in_place_of_the_wizard(client):
    response = client.get("/t/lumbar-metastasis/?foo=bar", headers={"HX-Request": "true"})

    content = response.content.decode()
    assert response.status_code == 400
    assert "<html" not in content
    assert 'id="wizard"' in content and "foo" in content and 'href="/"' in content
    assert "HX-Push-Url" not in response


def test_posting_to_the_wizard_is_not_allowed(client):
    response = client.post("/t/lumbar-metastasis/", {"age_group": "adult"})

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_a_post_to_the_wizard_gets_a_page_with_a_link_to_start_again(client):
    # Found while writing these tests: the 405 used to be an empty page.
    page = assert_helpful_problem(client.post("/t/lumbar-metastasis/", {"age_group": "adult"}), 405, "POST")

    assert problem_links(page)["Start this topic again"] == "/t/lumbar-metastasis/"


def test_a_post_to_the_print_view_gets_a_405_page_too(client):
    assert_helpful_problem(client.post("/t/lumbar-metastasis/print/"), 405, "POST")


@pytest.mark.parametrize(
    "url",
    [
        "/t/lumbar-metastasis/?release=",
        "/t/lumbar-metastasis/?release=0",
        "/t/lumbar-metastasis/?release=-1",
        "/t/lumbar-metastasis/?release=1.5",
        "/t/lumbar-metastasis/?release=99999999999999999999999999",
        "/t/lumbar-metastasis/?release=1&release=99",
        "/t/lumbar-metastasis/?age_group=",
        "/t/lumbar-metastasis/?age_group=%00",
        "/t/lumbar-metastasis/?=adult",
        "/t/lumbar-metastasis/?age_group=adult&neuro=no&neuro=no",
        CASE_MR + "&extra=1",
        CASE_CHILD + "&cancer=known",
        CASE_CHILD + "&neuro_level=cauda_equina",
        CASE_MR.replace("contrast_risks=none", "contrast_risks=none&contrast_risks=kidney"),
        CASE_MR.replace("mri_access=available", "mri_access=available&mri_access=device"),
        "/t/lumbar-metastasis/print/?release=abc",
        "/t/nope/print/",
        "/t/nope/?release=1",
    ],
)
def test_malformed_links_get_a_helpful_4xx_page_never_a_server_error(client, url):
    response = client.get(url)

    assert response.status_code in (400, 404)
    assert problem_links(parse(response))["See all topics"] == "/"


def test_a_release_written_with_a_superscript_or_foreign_digit_is_a_400(client):
    # Found while writing these tests: str.isdigit() accepted '²', which int() rejects (a 500).
    assert_helpful_problem(client.get("/t/lumbar-metastasis/?release=%C2%B2"), 400, "release number")
    assert_helpful_problem(client.get("/t/lumbar-metastasis/?release=%D9%A1"), 400, "release number")


# --- releases ----------------------------------------------------------------------------------


def test_an_old_permalink_keeps_its_recommendation_after_a_new_release(client, published_shipped):
    from decisions.knowledge.models import Rating

    changed = Rating.objects.filter(
        scenario__topic__key="lumbar-metastasis",
        scenario__key="suspected-metastasis",
        procedure__key="mri-spine-wo",
    ).update(category="may_be_appropriate")
    assert changed == 1
    second = publish(published_shipped.topic, summary="Whole-spine MRI moved down")
    assert second.version == 2

    old = parse(client.get(CASE_GADOLINIUM_REACTION + "&release=1"))
    new = parse(client.get(CASE_GADOLINIUM_REACTION))

    assert old.by_id("summary-text").raw_text.startswith(
        "Imaging: MRI whole spine without IV contrast (NICE: whole-spine MRI within 1 week)."
    )
    notice = old.find("div", role="note")
    assert "You are viewing release 1" in notice.text
    assert "A newer release (2) exists" in notice.text
    assert notice.links() == {"see the current recommendation": CASE_GADOLINIUM_REACTION}
    assert "Release 1, published" in old.find("section", class_="about").text
    assert new.by_id("summary-text").raw_text.startswith(
        "Imaging: MRI lumbar spine without IV contrast (ACR: usually appropriate)."
    )
    assert "Release 2, published" in new.find("section", class_="about").text
    assert new.find_all("div", role="note") == []
    assert new.find("a", class_="permalink").attrs["href"] == CASE_GADOLINIUM_REACTION + "&release=2"


def test_a_permalink_to_the_latest_release_shows_no_notice(client):
    page = parse(client.get(CASE_MR + "&release=1"))

    assert page.find_all("div", role="note") == []
    assert page.by_id("headline").text.startswith(MRI_SPINE)


# --- database queries --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/t/lumbar-metastasis/?age_group=adult&neuro=no",
        CASE_GADOLINIUM_REACTION,
        CASE_GADOLINIUM_REACTION.replace("/t/lumbar-metastasis/?", "/t/lumbar-metastasis/print/?"),
    ],
)
def test_a_page_takes_at_most_one_query_once_the_release_is_cached(
    client, django_assert_max_num_queries, url
):
    assert client.get(url).status_code == 200  # builds the snapshot cache

    with django_assert_max_num_queries(1):
        response = client.get(url)

    assert response.status_code == 200


# --- front-end weight --------------------------------------------------------------------------


def test_the_recommendation_page_with_its_styles_and_scripts_is_under_100_kb_compressed(client):
    response = client.get(CASE_GADOLINIUM_REACTION)
    page = parse(response)
    assets = [link.attrs["href"] for link in page.find_all("link", rel="stylesheet")]
    assets += [script.attrs["src"] for script in page.find_all("script") if script.attrs.get("src")]
    assert len(assets) >= 4  # Bootstrap, app.css, htmx, app.js

    sizes = {"page": len(gzip.compress(response.content, compresslevel=9))}
    for url in assets:
        assert url.startswith("/static/"), url
        path = finders.find(url.removeprefix("/static/"))
        assert path, f"{url} is not in any static directory"
        with open(path, "rb") as handle:
            sizes[url] = len(gzip.compress(handle.read(), compresslevel=9))

    assert sum(sizes.values()) < 100 * 1024, sizes


# --- security headers --------------------------------------------------------------------------


def csp_directives(response) -> dict[str, list[str]]:
    directives = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/", {}),
        ("/t/lumbar-metastasis/", {}),
        ("/t/lumbar-metastasis/?age_group=adult", {"HX-Request": "true"}),
        (CASE_GADOLINIUM_REACTION, {}),
        (CASE_GADOLINIUM_REACTION.replace("/t/lumbar-metastasis/?", "/t/lumbar-metastasis/print/?"), {}),
        ("/t/lumbar-metastasis/?foo=bar", {}),
    ],
)
def test_every_page_sends_a_strict_content_security_policy_and_safety_headers(client, url, headers):
    response = client.get(url, headers=headers)

    directives = csp_directives(response)
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]
    assert "'unsafe-inline'" not in directives["style-src"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/t/lumbar-metastasis/?age_group=adult",
        CASE_GADOLINIUM_REACTION,
        CASE_GADOLINIUM_REACTION.replace("/t/lumbar-metastasis/?", "/t/lumbar-metastasis/print/?"),
        "/t/lumbar-metastasis/?foo=bar",
    ],
)
def test_scripts_carry_the_responses_nonce_and_nothing_inline_would_be_blocked(client, url):
    response = client.get(url)
    page = parse(response)
    nonces = [
        v.removeprefix("'nonce-").rstrip("'")
        for v in csp_directives(response)["script-src"]
        if v.startswith("'nonce-")
    ]
    scripts = page.find_all("script")

    assert scripts
    inline = [s for s in scripts if not s.attrs.get("src") and s.raw_text.strip()]
    assert inline == [], "no inline script is expected"
    # Every script is allowed by the policy, one by one: it carries the response's own nonce, or
    # it is a file of ours ('self'). Cached pages carry no nonce at all (their bytes are shared).
    for script in scripts:
        if "nonce" in script.attrs:
            assert nonces == [script.attrs["nonce"]]
        else:
            assert script.attrs["src"].startswith("/static/"), script.attrs
    assert len(nonces) <= 1
    handlers = [(e.tag, name) for e in page.iter() for name in e.attrs if name.startswith("on")]
    assert handlers == [], "inline event handlers are blocked by the policy"
    styled = [e.tag for e in page.iter() if "style" in e.attrs]
    assert styled == [], "style attributes are blocked by style-src 'self'"
    assert page.find_all("style") == []


# --- no patient identifiers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/t/lumbar-metastasis/",
        "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known",
        "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive&mri_access=available",
        CASE_GADOLINIUM_REACTION,
        CASE_CHILD,
    ],
)
def test_the_wizard_has_no_field_where_patient_details_could_be_typed(client, url):
    page = parse(client.get(url))

    # Checkboxes carry a choice key each (the contrast risks); nothing else takes input.
    typed = [i.attrs for i in page.find_all("input") if i.attrs.get("type") not in ("hidden", "checkbox")]
    assert typed == []
    for box in page.find_all("input", type="checkbox"):
        assert box.attrs["name"] == "contrast_risks"
        assert re.fullmatch(r"[a-z_]+", box.attrs["value"])
    assert page.find_all("select") == []
    assert [e.tag for e in page.iter() if "contenteditable" in e.attrs] == []
    textareas = page.find_all("textarea")
    assert all(t.attrs.get("id") == "summary-text" and "readonly" in t.attrs for t in textareas)
    if "pregnant=" in url or url == CASE_CHILD:
        assert len(textareas) == 1
    else:
        assert textareas == []


def test_the_answers_in_the_url_are_only_choice_keys(client):
    page = parse(client.get("/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive"))

    for name, value in hidden_inputs(page) + [(n, v) for n, v, _ in choice_buttons(page)]:
        assert re.fullmatch(r"[a-z_]+", name)
        assert re.fullmatch(r"[a-z_]+", value)
