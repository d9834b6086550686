# Two commands on a fresh clone: `make run` and `make test`. Only Python 3.11+ and make are needed.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench clean sample docs-images

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found (set PYTHON=python3.x, 3.11 or newer)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q src  # an editable install is not byte-compiled: saves ~30 ms per run
	@touch $(STAMP)

## run: set up, then every metric for every area of the bundled sample (Rich tables)
run: $(STAMP)
	$(BIN)/cdp-metrics report --format table

## test: set up, then the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest -q

## sample: regenerate the bundled synthetic extract (data/samples)
sample: $(STAMP)
	$(BIN)/cdp-metrics samples --out data/samples --people 30000 --seed 2023 --end 2024-03-31 --years 5 \
	  --la E08000033 --la E08000035 --la E08000034 --la E08000032 --la E08000039 --la E06000010 \
	  --la E08000003 --la E08000012 --la E06000052 --la E09000033 --la E08000025 --la E10000016

## docs-images: the README's pictures under docs/: the report's summary page (needs Chromium) and a
## sheet of the workbook (needs LibreOffice and poppler: see docs/workbook_image.py)
docs-images: $(STAMP)
	$(BIN)/python docs/summary_screenshot.py
	$(BIN)/python docs/workbook_image.py

## bench: timings against a bare read, DuckDB SQL and pandas, then the cross-check (several minutes)
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/run.py
	$(BIN)/python bench/run.py --scale
	$(BIN)/python bench/run.py --disclosure

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
