"""Reading the pages content owners and clinicians see: forms, headlines, plain text."""

import re
from html import unescape
from html.parser import HTMLParser
from urllib.parse import urlencode

TOPIC = "lumbar-metastasis"

# The public case "suspected metastasis": release 1 recommends MRI with and without contrast first.
PUBLIC_CASE = {
    "age_group": "adult",
    "neuro": "no",
    "cancer": "known",
    "pain": "suggestive",
    "mri_access": "available",
    "gadolinium": "none",
    "pregnant": "no",
}
PUBLIC_QUERY = urlencode(PUBLIC_CASE)

MRI_WITH_AND_WITHOUT = "MRI lumbar spine without and with IV contrast"
MRI_WITHOUT = "MRI lumbar spine without IV contrast"
MRI_WHOLE_SPINE = "MRI whole spine without IV contrast"


class _Forms(HTMLParser):
    """Every form of a page, with the name/value pairs a browser would submit for it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[str, list[tuple[str, str]]]] = []
        self._fields: list[tuple[str, str]] | None = None
        self._select: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._fields = []
            self.forms.append((attrs.get("id") or "", self._fields))
        if self._fields is None or "disabled" in attrs:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in {"submit", "button", "image", "reset", "file"}:
                return
            if kind in {"checkbox", "radio"} and "checked" not in attrs:
                return
            self._fields.append((name, attrs.get("value") or ("on" if kind == "checkbox" else "")))
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self._fields.append((self._select, attrs.get("value", "")))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_data(self, data):
        if self._textarea:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "form":
            self._fields = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea and self._fields is not None:
            # Browsers drop the newline that follows <textarea>, as Django's widget adds one.
            self._fields.append((self._textarea, "".join(self._text).removeprefix("\n")))
            self._textarea = None


def form_data(html: str, form_id: str = "", *, containing: str = "") -> dict[str, list[str]]:
    """What submitting a form would send, as the lists Client.post accepts.

    The form is found by its id, or as the first form with a field named `containing`.
    """
    parser = _Forms()
    parser.feed(html)
    for found_id, fields in parser.forms:
        names = {name for name, _ in fields}
        if (form_id and found_id == form_id) or (containing and containing in names):
            data: dict[str, list[str]] = {}
            for name, value in fields:
                data.setdefault(name, []).append(value)
            return data
    raise AssertionError(f"no form {form_id or 'with a field ' + containing!r} on the page")


def has_form(html: str, form_id: str) -> bool:
    parser = _Forms()
    parser.feed(html)
    return any(found_id == form_id for found_id, _ in parser.forms)


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self._stack: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._stack.append([])
        elif tag == "tr" and self._stack:
            self._stack[-1].append([])
        elif tag in ("td", "th") and self._stack:
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._stack and self._stack[-1]:
            self._stack[-1][-1].append(re.sub(r"\s+", " ", "".join(self._cell)).strip())
            self._cell = None
        elif tag == "table" and self._stack:
            self.tables.append(self._stack.pop())


def table_rows(html: str) -> list[list[str]]:
    """The text of every table row of the page, cell by cell."""
    parser = _Tables()
    parser.feed(html)
    return [row for table in parser.tables for row in table]


def answers_text(answers: dict[str, str]) -> str:
    """Answers as the impact table shows them: key=value, comma separated."""
    return ", ".join(f"{key}={value}" for key, value in answers.items())


def headline(html: str) -> str:
    """The recommendation's first choice as the clinician reads it (the headline's bold text)."""
    match = re.search(r'id="headline">.*?<strong>(.*?)</strong>', html, re.S)
    assert match, "the page shows no recommendation headline"
    return unescape(match.group(1)).strip()


def text_of(html: str) -> str:
    """The page's visible text with tags removed and white space collapsed."""
    without_tags = re.sub(r"<[^>]+>", " ", html)
    return re.sub(r"\s+", " ", unescape(without_tags)).strip()


# The shipped topic's questions and answers as the clinician reads them (for clicking through).
PROMPTS = {
    "age_group": "How old is the patient?",
    "neuro": "Does the patient have new neurological symptoms or signs?",
    "cancer": "Does the patient have a cancer history?",
    "pain": "Does the spinal pain have features that suggest metastasis?",
    "mri_access": "Can the patient have MRI?",
    "gadolinium": "Any concern about contrast and kidney function, or a previous reaction to gadolinium?",
    "pregnant": "Is the patient pregnant?",
}
LABELS = {
    ("age_group", "adult"): "18 or older",
    ("age_group", "child"): "Under 18",
    ("neuro", "yes"): "Yes: new neurological symptoms or signs",
    ("neuro", "no"): "No",
    ("cancer", "known"): "Known cancer: current or past diagnosis",
    ("cancer", "none"): "No: no cancer diagnosis and no suspicion of it",
    ("pain", "suggestive"): "Suggests metastasis: one or more of these features",
    ("mri_access", "available"): "Yes: MRI is available and there is no contraindication",
    ("mri_access", "not_possible"): (
        "No: absolute contraindication, cannot tolerate it, or not available in the time required"
    ),
    ("gadolinium", "none"): "No concern",
    ("gadolinium", "prior_reaction"): "Previous moderate or severe allergic-like reaction to gadolinium",
    ("pregnant", "no"): "No",
}
