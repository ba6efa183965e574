"""Reading the pages content owners and clinicians see: elements, forms, headlines, plain text.

Pages are parsed with BeautifulSoup (Python's own html.parser underneath, so a <textarea> keeps
the newline Django's widget writes after its tag, as the page source has it); CSS selectors come
from soupsieve.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from bs4 import BeautifulSoup, Tag
from django.http import HttpResponse

# The public example case "suspected metastasis" (docs/lumbar-metastasis-contract.md) in the
# answers of release 1's questions: its `gadolinium` question became `contrast_risks` in clinical
# revision 3, which reads this old answer as "none". The shipped topic recommends MRI whole spine
# without IV contrast first; a draft that rates that "May be appropriate" puts MRI lumbar spine
# without and with IV contrast first (tests/workflow/test_publish_flow.py).
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


class Element:
    """One element of a page, read as a person reads it: `text` collapses white space.

    `find` and `find_all` take a tag name and attributes (`class_` matches one class among
    several); `select` and `select_one` take a CSS selector. `find` and `select_one` fail the test
    when nothing matches, naming what was looked for.
    """

    def __init__(self, tag: Tag) -> None:
        self._tag = tag

    def __repr__(self) -> str:
        return f"<{self.tag} {self.attrs}>"

    @property
    def tag(self) -> str:
        return self._tag.name

    @property
    def attrs(self) -> dict[str, str]:
        """Attribute values as written (a class list joined by spaces); "" for a bare attribute."""
        return {
            name: " ".join(value) if isinstance(value, list) else str(value)
            for name, value in self._tag.attrs.items()
        }

    @property
    def parent(self) -> Element | None:
        return Element(self._tag.parent) if self._tag.parent is not None else None

    @property
    def raw_text(self) -> str:
        """The text below this element as written, white space and all (a script's or style's own
        text only when asked of that element itself: the text of a page or section leaves them out)."""
        return self._tag.get_text()

    @property
    def text(self) -> str:
        return " ".join(self.raw_text.split())

    def iter(self) -> Iterator[Element]:
        """Every element below this one, in the order of the page."""
        for found in self._tag.descendants:
            if isinstance(found, Tag):
                yield Element(found)

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        # Matched as BeautifulSoup matches them: a class among several, other attributes exactly.
        wanted: dict[str, Any] = {
            ("class" if name == "class_" else name): value for name, value in attrs.items()
        }
        return [Element(found) for found in self._tag.find_all(tag, attrs=wanted) if isinstance(found, Tag)]

    def find(self, tag: str | None = None, **attrs: str) -> Element:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag or '*'}> with {attrs} on the page"
        return found[0]

    def select(self, selector: str) -> list[Element]:
        return [Element(found) for found in self._tag.select(selector)]

    def select_one(self, selector: str) -> Element:
        found = self._tag.select_one(selector)
        assert found is not None, f"nothing matches {selector!r} on the page"
        return Element(found)

    def by_id(self, element_id: str) -> Element:
        return self.find(id=element_id)

    def links(self) -> dict[str, str]:
        """Link text -> href, for every link below this element."""
        return {a.text: a.attrs.get("href", "") for a in self.find_all("a")}


def parse(page: str | HttpResponse) -> Element:
    """The page as a tree of elements, from its HTML or from the response that carries it."""
    html = page if isinstance(page, str) else page.content.decode()
    return Element(BeautifulSoup(html, "html.parser"))


def text_of(html: str) -> str:
    """The page's visible text (no tags, scripts or styles), white space collapsed."""
    return " ".join(BeautifulSoup(html, "html.parser").get_text(" ").split())


def headline(html: str) -> str:
    """The recommendation's first choice as the clinician reads it (the headline's bold text)."""
    found = BeautifulSoup(html, "html.parser").select_one("#headline strong")
    assert found is not None, "the page shows no recommendation headline"
    return found.get_text().strip()


# --- forms ----------------------------------------------------------------------------------------

# Buttons are sent only when pressed, files are not read here.
_NOT_SENT = {"submit", "button", "image", "reset", "file"}


def _submitted(form: Tag) -> list[tuple[str, str]]:
    """The name/value pairs a browser sends for the form, in the order of its fields."""
    fields: list[tuple[str, str]] = []
    for field in form.find_all(["input", "select", "textarea"]):
        if not isinstance(field, Tag):
            continue
        name = field.get("name")
        if not isinstance(name, str) or not name or field.has_attr("disabled"):
            continue
        value = field.get("value")
        value = value if isinstance(value, str) else ""
        if field.name == "input":
            kind = str(field.get("type", "text")).lower()
            if kind in _NOT_SENT or (kind in {"checkbox", "radio"} and not field.has_attr("checked")):
                continue
            fields.append((name, value or ("on" if kind == "checkbox" else "")))
        elif field.name == "select":
            options = [o for o in field.find_all("option") if isinstance(o, Tag)]
            chosen = [o for o in options if o.has_attr("selected")]
            if not chosen and options and not field.has_attr("multiple"):
                chosen = options[:1]  # a single select with nothing marked sends its first option
            for option in chosen:
                option_value = option.get("value")
                fields.append((name, option_value if isinstance(option_value, str) else option.get_text()))
        else:
            # Browsers drop the newline that follows <textarea>, as Django's widget adds one.
            fields.append((name, field.get_text().removeprefix("\n")))
    return fields


def form_data(html: str, form_id: str = "", *, containing: str = "") -> dict[str, list[str]]:
    """What submitting a form would send, as the lists Client.post accepts.

    The form is found by its id, or as the first form with a field named `containing`.
    """
    for form in BeautifulSoup(html, "html.parser").find_all("form"):
        if not isinstance(form, Tag):
            continue
        fields = _submitted(form)
        if (form_id and form.get("id") == form_id) or (containing and containing in dict(fields)):
            data: dict[str, list[str]] = {}
            for name, value in fields:
                data.setdefault(name, []).append(value)
            return data
    raise AssertionError(f"no form {form_id or 'with a field ' + containing!r} on the page")


def has_form(html: str, form_id: str) -> bool:
    return BeautifulSoup(html, "html.parser").find("form", id=form_id) is not None


# --- tables ---------------------------------------------------------------------------------------


def table_rows(html: str) -> list[list[str]]:
    """The text of every table row of the page, cell by cell (a nested table's rows are its own)."""
    rows = []
    for table in BeautifulSoup(html, "html.parser").find_all("table"):
        if not isinstance(table, Tag):
            continue
        for row in table.find_all("tr"):
            if isinstance(row, Tag) and row.find_parent("table") is table:
                cells = [cell for cell in row.find_all(["td", "th"]) if isinstance(cell, Tag)]
                rows.append(
                    [" ".join(cell.get_text().split()) for cell in cells if cell.find_parent("tr") is row]
                )
    return rows
