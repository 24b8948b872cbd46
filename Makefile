# Two commands on a fresh machine: `make demo` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := work/demo

.PHONY: demo test install data bench bench-online bench-serve accuracy clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the package's metadata changes; the package itself is installed editable.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,ray]'
	touch $@

install: $(VENV)/.installed

demo: install
	rm -rf $(DEMO)
	$(BIN)/spamclf preprocess --data data/sample --out $(DEMO)/split --seed 1 -q
	$(BIN)/spamclf train --data $(DEMO)/split/train.jsonl --models $(DEMO)/models -q > $(DEMO)/train.json
	@echo "== evaluation on the held-out test split =="
	$(BIN)/spamclf evaluate --models $(DEMO)/models --data $(DEMO)/split/test.jsonl -q
	@echo "== a few predictions =="
	$(BIN)/spamclf predict --models $(DEMO)/models data/sample/spam/spam-2_00332.2b6d5012de45ae27edbda7f94c54636e.txt data/sample/spam/spam-1_00001.7848dde101aa985090474a91ec93fcf0.txt data/sample/ham/hard-ham-1_00057.ccb4ce3e080b3a2957b7b257d85b850c.txt data/sample/ham/easy-ham-1_00001.7c53336b37003a9286aba55d2945844c.txt

test: install
	$(BIN)/python -m pytest -q

# Speed next to bogofilter (if on PATH) and scikit-learn, then Ray scoring with 1 and 2 workers:
# about 10 min on 2 cores. CORPUS=dir to use another corpus.
CORPUS ?= data/spamassassin
bench: install
	$(BIN)/python -m benchmarks.speed --corpus $(CORPUS)
	$(BIN)/python -m benchmarks.ray_throughput --corpus $(CORPUS)

# Online filtering, TREC-style: every message scored, then learned, by spamclf, bogofilter and spamprobe
# (if on PATH), in Date order and a seeded order, from empty and after the first 10%; the batch baseline;
# one `spamclf learn` beside `sa-learn`. LIMIT=N for the first N messages of each stream.
bench-online: install
	$(BIN)/python -m benchmarks.online --corpus $(CORPUS) $(if $(LIMIT),--limit $(LIMIT))

# spamclf serve and its client beside bogofilter -p and spamc -> spamd: latency, 16-client throughput
# against batch predict, a reload under load, hostile requests. About 5 min on 2 cores.
bench-serve: install
	$(BIN)/python -m benchmarks.serve --corpus $(CORPUS)

# 80/20 split and 5-fold CV for the default and seed configs, bogofilter and scikit-learn: about 25 min on 2 cores.
accuracy: install
	$(BIN)/python -m benchmarks.accuracy --corpus $(CORPUS) --repeat

data: install
	$(BIN)/python -m spamclf.spamassassin_corpus fetch data/spamassassin

clean:
	rm -rf $(VENV) work *.egg-info .pytest_cache
