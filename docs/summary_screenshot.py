"""Regenerate docs/summary.png: the summary page of Calderdale's report on the bundled sample.

    make docs-images        (or: .venv/bin/python docs/summary_screenshot.py)

Runs `cdp-metrics report --la E08000033 --targets examples/targets.csv --trend quarterly --html FILE`,
keeps the page's summary section (the tiles and the spine chart) and takes a screenshot of it in headless
Chromium (Debian's `chromium`; set CHROMIUM to use another). Nothing is fetched: the page is self-contained.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "summary.png"
COMMAND = ["report", "--la", "E08000033", "--targets", "examples/targets.csv", "--trend", "quarterly"]
WINDOW = "1200,1540"  # wide enough for four tiles a row; tall enough for the summary, with a margin


def main() -> int:
    browser = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        print("docs/summary_screenshot.py: no Chromium found (apt-get install chromium, or set CHROMIUM)",
              file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "calderdale.html"
        subprocess.run([sys.executable, "-m", "cdp_metrics", *COMMAND, "--html", str(page), "--quiet",
                        "-f", "json", "-o", os.devnull], cwd=ROOT, check=True)
        text = page.read_text(encoding="utf-8")
        end = text.index("</section>") + len("</section>")
        summary = Path(tmp) / "summary.html"
        summary.write_text(text[:end] + "</body></html>\n", encoding="utf-8")
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--hide-scrollbars", f"--user-data-dir={Path(tmp) / 'profile'}",
                        f"--window-size={WINDOW}", f"--screenshot={OUT}", summary.as_uri()],
                       check=True, capture_output=True, timeout=120)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
