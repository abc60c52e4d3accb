"""An HTML page parsed for the report tests: elements with their enclosing ids and text."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

VOID = {"meta", "input", "br", "hr", "img", "link", "col", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parents: tuple[str, ...]  # ids and classes of the enclosing elements, outermost first
    text: list[str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class Page(HTMLParser):
    """Every element with its attributes, enclosing ids and text; checks tags balance."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.open: list[Element] = []
        self.feed(text)
        self.close()
        assert not self.open, f"unclosed: {[e.tag for e in self.open]}"

    def _enter(self, tag: str, attrs: list[tuple[str, str | None]]) -> Element:
        values = {k: v or "" for k, v in attrs}
        marks = tuple(m for e in self.open for m in (f"#{e.attrs.get('id', '')}", e.tag))
        element = Element(tag, values, marks)
        self.elements.append(element)
        return element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = self._enter(tag, attrs)
        if tag not in VOID:
            self.open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._enter(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1].tag == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        for element in self.open:
            element.text.append(data)

    def find(self, tag: str, inside: str = "", cls: str = "") -> list[Element]:
        return [e for e in self.elements if e.tag == tag
                and (not inside or f"#{inside}" in e.parents)
                and (not cls or cls in e.classes)]

    def by_id(self, ident: str) -> Element:
        (found,) = [e for e in self.elements if e.attrs.get("id") == ident]
        return found

    def text_of(self, ident: str) -> str:
        return "".join(self.by_id(ident).text)


def assert_self_contained(page: Page, page_dir: Path) -> None:
    assert not page.find("script") and not page.find("link") and not page.find("img")
    for element in page.elements:
        for name in ("src", "href"):
            value = element.attrs.get(name)
            if value is None:
                continue
            assert "//" not in value and not value.startswith("/"), value
            assert (page_dir / unquote(value)).exists(), f"broken link {value}"
