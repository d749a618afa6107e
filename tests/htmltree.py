"""A small element tree from HTML (stdlib parser) for checking pages through their DOM, and a remote-resource scan."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
#: attributes whose value the browser fetches
FETCHED = {"src", "href", "srcset", "poster", "data", "action", "formaction", "xlink:href", "background"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def iter(self, tag: str | None = None):
        if tag is None or self.tag == tag:
            yield self
        for child in self.children:
            yield from child.iter(tag)

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        return [e for e in self.iter(tag) if all(e.has(k.rstrip("_"), v) for k, v in attrs.items())]

    def has(self, key: str, value: str) -> bool:
        actual = self.attrs.get(key)
        return actual is not None and (value in actual.split() if key == "class" else actual == value)

    def text(self) -> str:
        return " ".join(" ".join(self.texts + [c.text() for c in self.children]).split())


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].texts.append(data)


def parse(html: str) -> Element:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


def rows(table: Element) -> list[list[str]]:
    return [[cell.text() for cell in tr.children if cell.tag in ("td", "th")] for tr in table.iter("tr")]


def remote_references(html: str) -> list[str]:
    """Every URL the page would fetch that is not inline (data:) or in-page (#...)."""
    found = []
    for element in parse(html).iter():
        for key, value in element.attrs.items():
            if key in FETCHED and value and not value.startswith(("data:", "#")):
                found.append(f"<{element.tag} {key}={value[:80]}>")
    for style in parse(html).iter("style"):
        found += [f"css url({u[:80]})" for u in re.findall(r"url\(\s*['\"]?([^'\")]+)", style.text())
                  if not u.startswith("data:")]
        found += [f"css @import {m[:80]}" for m in re.findall(r"@import\s+([^;]+)", style.text())]
    return found


def injected(dom: Element, tags: set[str], attrs: set[str]) -> list[str]:
    """What a page holds that its writer never writes: elements outside ``tags``, attributes outside ``attrs`` and any
    ``on...`` handler (the marks of text that was not escaped)."""
    found = []
    for element in dom.iter():
        if element.tag not in tags:
            found.append(f"element <{element.tag}>")
        found += [f"attribute {k} on <{element.tag}>" for k in element.attrs
                  if k not in attrs or k.startswith("on")]
    return found
