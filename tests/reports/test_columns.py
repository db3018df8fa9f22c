"""One per-class table: the command line, the HTML report and the dashboard show the same columns,
in the same order, each figure printed the same way."""

import re

from nc_core.detection.report import make_report
from nc_core.reports.columns import CLASS_COLUMNS, class_rows, class_table, text_table
from nc_core.reports.html_report import render_html_report
from tests.helpers.results import sized_result


def report():
    results = [sized_result(0, 8, full=True, screen_l1=16, compact=True)] + [
        sized_result(k, 90 + 3 * k, full=(k < 6), screen_l1=150) for k in range(1, 10)
    ]
    return make_report(results, model="m.keras", data="d.npz", class_names=[f"c{k}" for k in range(10)])


def test_the_html_report_shows_every_column_and_the_cells_the_command_line_prints():
    scanned = report()
    page = render_html_report(scanned)
    table = page[page.index("<table>") : page.index("</table>")]
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", table)
    assert headers == [column.label for column in CLASS_COLUMNS]
    rows = re.findall(r"<tr class='[^']*'>(.*?)</tr>", table)
    first = class_rows(scanned)[0]
    assert re.findall(r"<td>([^<]*)</td>", rows[0]) == [column.text(first, scanned) for column in CLASS_COLUMNS]


def test_the_command_line_prints_a_header_and_one_line_per_class_smallest_judged_mask_first():
    scanned = report()
    lines = text_table(scanned)
    assert lines[0].split()[:3] == ["class", "name", "flagged"]
    assert [int(line.split()[0]) for line in lines[1:]] == [row.class_id for row in class_rows(scanned)]
    flagged = lines[1]
    assert flagged.split()[0] == "0" and "backdoor" in flagged and "neural-cleanse" in flagged
    assert "screened" in lines[-1]


def test_the_dashboard_table_holds_the_raw_values_under_the_same_labels():
    scanned = report()
    frame = class_table(scanned, names=["zero"] + [f"n{k}" for k in range(1, 10)])
    assert list(frame.columns) == [column.label for column in CLASS_COLUMNS]
    assert frame.iloc[0]["name"] == "zero" and frame.iloc[0]["mask L1"] == class_rows(scanned)[0].l1
    assert frame["judged L1"].is_monotonic_increasing
