"""Regenerate docs/workbook.png: one sheet of the bundled sample's report workbook, as LibreOffice prints it.

    make docs-images        # or: .venv/bin/python docs/workbook_image.py [SHEET]

Writes `cdp-metrics report --la E08000033 --targets examples/targets.csv --trend quarterly -o …xlsx`,
keeps one sheet (default "Unmet need") with gridlines and row and column headings turned on for
printing, converts it to PDF with LibreOffice (headless) and the page to PNG with pdftoppm, cropped to
the printed cells. Needs `soffice`, `pdftoppm` and `pdftotext` (Debian: `apt-get install
libreoffice-calc poppler-utils fonts-crosextra-carlito`; Carlito has Calibri's metrics, so columns
print as wide as Excel shows them).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import openpyxl

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "workbook.png"
DPI = 144
MARGIN = 8  # points around the printed cells


def main(sheet: str = "Unmet need") -> None:
    for tool in ("soffice", "pdftoppm", "pdftotext"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install libreoffice-calc poppler-utils fonts-crosextra-carlito")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        book_path = work / "report.xlsx"
        subprocess.run([sys.executable, "-m", "cdp_metrics", "report", "--la", "E08000033", "--targets",
                        str(ROOT / "examples" / "targets.csv"), "--trend", "quarterly", "-q", "-o", str(book_path)],
                       check=True, cwd=ROOT)
        book = openpyxl.load_workbook(book_path)
        for name in book.sheetnames:
            if name != sheet:
                del book[name]
        page = book[sheet]
        page.print_options.gridLines = True
        page.print_options.headings = True
        one = work / "sheet.xlsx"
        book.save(one)
        subprocess.run(["soffice", "--headless", "--norestore", f"-env:UserInstallation=file://{work}/profile",
                        "--convert-to", "pdf", "--outdir", str(work), str(one)],
                       check=True, capture_output=True, timeout=300)
        pdf = work / "sheet.pdf"
        x0, y0, x1, y1 = _extent(pdf)
        scale = DPI / 72
        box = [round((x0 - MARGIN) * scale), round((y0 - MARGIN) * scale),
               round((x1 - x0 + 2 * MARGIN) * scale), round((y1 - y0 + 2 * MARGIN) * scale)]
        subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-r", str(DPI), "-png", "-singlefile",
                        "-x", str(box[0]), "-y", str(box[1]), "-W", str(box[2]), "-H", str(box[3]),
                        str(pdf), str(work / "page")], check=True)
        shutil.copyfile(work / "page.png", OUT)
    print(f"wrote {OUT.relative_to(ROOT)}")


def _extent(pdf: Path) -> tuple[float, float, float, float]:
    """The box around every word printed on the first page (points), from pdftotext's word boxes."""
    html = subprocess.run(["pdftotext", "-f", "1", "-l", "1", "-bbox", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout
    boxes = [tuple(map(float, m)) for m in re.findall(
        r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)"', html)]
    if not boxes:
        sys.exit(f"{pdf}: nothing printed on the first page")
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


if __name__ == "__main__":
    main(*sys.argv[1:2])
