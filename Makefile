# Semantic Segmentation from Scratch — the two commands a reader needs:
#   make book    build the rendered book into _build/html, and its Chinese edition into _build/html/zh
#   make test    run the whole test suite (library, notebooks, book build, browser)
# and, for authors:
#   make notebooks   rebuild notebooks/*.ipynb from notebooks/src/*.py and re-execute them in place
#   make bench       run the benchmark suite (python -m segedu bench)
#   make experiments run and store the named experiments (python -m segedu.experiments; hours on a CPU)
#   make pretrained  retrain the reference models side by side (python -m segedu.pretrained; about 1.5 h on 2 cores)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# CPU wheel of PyTorch for CI and laptops. The package itself never pins torch (that would
# replace Colab's CUDA build); override with `make TORCH_SPEC=torch ...` to take another build.
TORCH_SPEC ?= torch==2.13.0
PYTEST_WORKERS ?= 2
# Threads per test process (each pytest worker and each notebook kernel it starts). Two workers
# with PyTorch's default of one OpenMP thread per core oversubscribe a 2-core machine, and spinning
# OpenMP threads then wait on each other: in CI a 2-minute notebook cell took 13 minutes. One
# thread per worker keeps every core busy with useful work.
TEST_THREADS ?= 1
# The chapters re-train one run of each stored experiment (segedu.experiments.reproduce); under
# make test a live run that differs from its stored row is an error, on any machine.
TEST_ENV := OMP_NUM_THREADS=$(TEST_THREADS) MKL_NUM_THREADS=$(TEST_THREADS) SEGEDU_STRICT_REPRODUCE=1

.PHONY: all book test test-lib test-notebooks notebooks bench experiments pretrained i18n install clean help

help:
	@sed -n '1,8p' Makefile

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Re-install only when the package metadata changes.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[book,test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

install: $(VENV)/.installed

# Both editions: English in _build/html, Chinese (中文版) in _build/html/zh (tools/i18n.py book).
book: install
	$(PY) tools/i18n.py book --path-output .
	@echo "open _build/html/index.html (English) or _build/html/zh/index.html (中文版)"

test: install
	$(TEST_ENV) $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -p no:cacheprovider --nbval-lax --durations=15 tests notebooks

test-lib: install
	$(TEST_ENV) $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not browser" tests

test-notebooks: install
	$(TEST_ENV) $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --nbval-lax notebooks

notebooks: install
	$(PY) tools/py2nb.py
	$(PY) tools/run_notebooks.py

bench: install
	$(PY) -m segedu bench

experiments: install
	$(PY) -m segedu.experiments

clean:
	rm -rf _build .pytest_cache

# The reference models (segedu/pretrained/weights): one thread each, trained side by side; each
# writes its float16 weights and its record (command, seconds, machine, held-out scores).
pretrained: install
	OMP_NUM_THREADS=1 $(PY) -m segedu.pretrained train unet-isbi2012 --force > pretrained-unet-isbi2012.log 2>&1 & \
	OMP_NUM_THREADS=1 $(PY) -m segedu.pretrained train unet-camvid --force > pretrained-unet-camvid.log 2>&1; \
	wait; tail -n 3 pretrained-*.log

# The Chinese edition's catalogues (locales/zh_CN): re-extract the English and merge it in (new
# messages empty, changed ones fuzzy), then show what is left to translate.
i18n: install
	$(PY) tools/i18n.py update
	$(PY) tools/i18n.py check || true
