"""The study report: run folders in, one self-contained HTML page and a Markdown twin out.

Entry point: :func:`mtpeft.evaluation.report.build.build_report`. This package imports nothing
on import, so that :mod:`mtpeft.evaluation.calibration` can use its figure helpers without a cycle.
"""
