"""What a scan looks like to a person: mask and pattern pictures, Plotly figures, the HTML report.

Modules: :mod:`.images` (mask, pattern and fusion PNGs), :mod:`.figures` (the L1 bar chart and
curves the dashboard and the HTML report share) and :mod:`.html_report` (one self-contained file
that opens offline, with the triggered samples of :mod:`nc_core.detection.samples`). They only
draw what :class:`nc_core.detection.report.ScanReport` holds.

    >>> from nc_core.reports.html_report import render_html_report
"""
