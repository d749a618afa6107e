"""The report page's parts as a reader sees them: the training loss curve (``loss_svg``) read back from its SVG text,
and what the page shows of a run folder."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from afcot_report.page import loss_svg

from .htmltree import Element, parse

#: steps that do not start at 0, losses whose lowest is not 0 and whose range is not 1
LOSSES = [(10, 2.5), (20, 4.5), (30, 1.5), (40, 0.5)]


@dataclass
class Chart:
    """The parts of a loss chart: its box, the drawn line, its dots, its two axes and its labels."""

    svg: Element
    width: float
    height: float
    line: list[tuple[float, float]]
    dots: list[tuple[float, float]]
    x_axis: dict[str, float]
    y_axis: dict[str, float]
    texts: list[Element]

    def labels(self) -> list[tuple[str, float, float]]:
        """The loss labels (text, x, baseline y), from the bottom of the chart up."""
        found = []
        for t in self.texts:
            try:
                float(t.text())
            except ValueError:
                continue
            found.append((t.text(), float(t.attrs["x"]), float(t.attrs["y"])))
        return sorted(found, key=lambda label: -label[2])

    def text(self, content: str) -> Element:
        (found,) = [t for t in self.texts if t.text() == content]
        return found


def chart(losses, **size) -> Chart:
    (svg,) = parse(loss_svg(losses, **size)).find_all("svg")
    x0, y0, width, height = (float(v) for v in svg.attrs["viewbox"].split())
    assert (x0, y0) == (0, 0)
    (polyline,) = svg.find_all("polyline")
    line = [(float(x), float(y)) for x, y in (p.split(",") for p in polyline.attrs["points"].split())]
    dots = [(float(c.attrs["cx"]), float(c.attrs["cy"])) for c in svg.find_all("circle")]
    axes = [{k: float(line.attrs[k]) for k in ("x1", "y1", "x2", "y2")} for line in svg.find_all("line")]
    (y_axis,) = [a for a in axes if a["x1"] == a["x2"]]
    (x_axis,) = [a for a in axes if a["x1"] != a["x2"]]
    return Chart(svg, width, height, line, dots, x_axis, y_axis, svg.find_all("text"))


def inside(c: Chart, x: float, y: float) -> bool:
    return 0 <= x <= c.width and 0 <= y <= c.height


def test_the_loss_curve_runs_from_the_first_step_at_the_left_to_the_last_at_the_right():
    c = chart(LOSSES)
    assert len(c.line) == len(LOSSES) and all(inside(c, x, y) for x, y in c.line)
    xs = [x for x, _ in c.line]
    assert xs[0] == c.y_axis["x1"] == c.x_axis["x1"]  # the first step on the loss axis
    assert xs[-1] == c.x_axis["x2"]  # the last step at the right end of the step axis
    for (step, _), x in zip(LOSSES, xs, strict=True):  # steps evenly spread: step 20 a third of the way
        assert x == pytest.approx(xs[0] + (step - 10) / 30 * (xs[-1] - xs[0]), abs=0.11)


def test_the_highest_loss_is_at_the_top_of_the_loss_axis_and_the_lowest_on_the_step_axis():
    c = chart(LOSSES)
    ys = [y for _, y in c.line]
    top, bottom = c.y_axis["y1"], c.y_axis["y2"]
    assert top < bottom and c.x_axis["y1"] == c.x_axis["y2"] == bottom  # the axes meet at the bottom left
    assert ys[1] == top and ys[3] == bottom  # 4.5 the highest, 0.5 the lowest
    for (_, loss), y in zip(LOSSES, ys, strict=True):  # a loss's height is in proportion: 2.5 halfway up
        assert y == pytest.approx(bottom - (loss - 0.5) / 4 * (bottom - top), abs=0.11)
    assert all(inside(c, a[f"x{i}"], a[f"y{i}"]) for a in (c.x_axis, c.y_axis) for i in (1, 2))


def test_each_logged_step_has_a_dot_on_the_line():
    c = chart(LOSSES)
    assert c.dots == c.line


def test_the_loss_labels_read_lowest_halfway_and_highest_up_the_loss_axis_left_of_it():
    c = chart(LOSSES)
    labels = c.labels()
    assert [text for text, _, _ in labels] == ["0.5", "2.5", "4.5"]
    levels = [c.y_axis["y2"], (c.y_axis["y1"] + c.y_axis["y2"]) / 2, c.y_axis["y1"]]
    for (_, x, y), level in zip(labels, levels, strict=True):
        assert 0 < x < c.y_axis["x1"] and inside(c, x, y)
        assert 0 < y - level <= 5.5  # the baseline a little below its level: the text is centred on it
    assert all(t.attrs.get("text-anchor") == "end" for t in c.texts if t.text() in ("0.5", "2.5", "4.5"))


def test_the_step_labels_name_the_first_and_last_step_under_the_ends_of_the_step_axis():
    c = chart(LOSSES)
    first, last, title = c.text("step 10"), c.text("step 40"), c.text("step")
    assert float(first.attrs["x"]) == c.x_axis["x1"] and first.attrs.get("text-anchor", "start") == "start"
    assert float(last.attrs["x"]) == c.x_axis["x2"] and last.attrs["text-anchor"] == "end"
    assert title.attrs["text-anchor"] == "middle"
    assert abs(float(title.attrs["x"]) - (c.x_axis["x1"] + c.x_axis["x2"]) / 2) <= 12  # under the axis' middle
    for label in (first, last, title):
        x, y = float(label.attrs["x"]), float(label.attrs["y"])
        assert inside(c, x, y) and y > c.x_axis["y1"]
    assert float(title.attrs["y"]) > float(first.attrs["y"]) == float(last.attrs["y"])  # the title below them


def test_the_chart_holds_no_text_but_its_labels():
    c = chart(LOSSES)
    assert "".join(c.svg.texts).strip() == ""
    assert sorted(t.text() for t in c.texts) == ["0.5", "2.5", "4.5", "step", "step 10", "step 40"]
    assert all(not e.texts or e.tag == "text" for e in c.svg.iter())


def test_a_flat_curve_is_a_level_line_on_the_step_axis_under_a_loss_axis_one_unit_tall():
    c = chart([(1, 3.0), (2, 3.0), (3, 3.0)])
    assert [y for _, y in c.line] == [c.x_axis["y1"]] * 3
    assert [x for x, _ in c.line] == [c.x_axis["x1"], (c.x_axis["x1"] + c.x_axis["x2"]) / 2, c.x_axis["x2"]]
    assert [text for text, _, _ in c.labels()] == ["3", "3.5", "4"]


def test_a_single_logged_step_is_one_point_at_the_corner_of_the_axes():
    c = chart([(7, 1.25)])
    assert c.line == c.dots == [(c.y_axis["x1"], c.x_axis["y1"])]
    assert c.text("step").attrs["text-anchor"] == "middle"
    assert len([t for t in c.texts if t.text() == "step 7"]) == 2
    assert [text for text, _, _ in c.labels()] == ["1.25", "1.75", "2.25"]


def test_the_chart_is_640_by_260_by_default_and_its_view_box_follows_a_given_size():
    (svg,) = parse(loss_svg(LOSSES)).find_all("svg")
    assert (svg.attrs["width"], svg.attrs["height"], svg.attrs["viewbox"]) == ("640", "260", "0 0 640 260")
    c = chart(LOSSES, width=300, height=150)
    assert (c.width, c.height) == (300, 150)
    assert all(inside(c, x, y) for x, y in c.line) and c.line[-1][0] == c.x_axis["x2"] <= 300
    assert c.line[1][1] == c.y_axis["y1"] and c.line[3][1] == c.x_axis["y1"] <= 150
