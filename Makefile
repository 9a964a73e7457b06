# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
# CPU wheel of torch; GPU users: see README ("CUDA").
TORCH   ?= torch==2.13.0
STAMP   := $(VENV)/.installed

.PHONY: demo test lint bench clean photos

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev,jxl]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/robusthide demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=15

lint: $(STAMP)
	$(BIN)/ruff check robusthide tests

photos: $(STAMP)
	$(BIN)/robusthide data photos data/photos

clean:
	rm -rf $(VENV) build *.egg-info
