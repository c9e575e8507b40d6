"""Server-side SVG charts: escaped labels, round axes, gaps, no inline styles."""

from __future__ import annotations

from agent_desktop.common.charts import Series, _nice_max, bar_chart, line_chart


def test_axis_tops_are_round() -> None:
    assert [_nice_max(v) for v in (0, 0.3, 1, 7, 12, 26, 480)] == [1, 0.5, 1, 10, 20, 50, 500]


def test_bar_chart_escapes_labels_and_draws_one_bar_per_value() -> None:
    svg = str(bar_chart("c1", "各大区<b>", ["华东", "<script>"], [Series("平均", [2.5, None])]))
    assert svg.startswith('<svg id="c1"') and svg.count('class="bar"') == 1
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;" in svg
    assert "style=" not in svg and "华东" in svg


def test_line_chart_skips_missing_points() -> None:
    svg = str(line_chart("c2", "趋势", ["03-01", "03-02", "03-03"], [Series("华东", [1, None, 3])]))
    assert svg.count("<circle") == 2 and "<polyline" in svg and "华东 03-03: 3" in svg


def test_empty_charts_still_render() -> None:
    assert "<svg" in str(bar_chart("c3", "空", [], []))
    assert "<svg" in str(line_chart("c4", "空", [], []))
