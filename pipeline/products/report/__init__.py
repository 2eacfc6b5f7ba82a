"""The run report: :mod:`.data` reads what it shows from the run directory, :mod:`.figures` draws
it, :mod:`.page` writes the HTML page, the PNGs and the Markdown dataset card."""

from covr_datagen.pipeline.products.report.data import dataset_style, load_report_data
from covr_datagen.pipeline.products.report.page import ReportFiles, write_report

__all__ = ["ReportFiles", "dataset_style", "load_report_data", "write_report"]
