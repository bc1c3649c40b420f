# Shortcuts; the scripts are what works on a fresh machine (where make may be missing).
.PHONY: demo test bench lint packages lock
demo:
	scripts/demo
test:
	scripts/test
bench:
	scripts/bootstrap && .venv/bin/python bench/run.py
lint:
	scripts/bootstrap && .venv/bin/ruff check . && .venv/bin/ruff format --check .
packages:
	scripts/packages
lock:
	scripts/bootstrap && .venv/bin/python packaging/lock
