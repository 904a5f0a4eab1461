# Two commands on a fresh machine: `make demo` and `make test`. Both bootstrap .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test unit lint typecheck layers test-reliability bench clean

# Python caches compiled modules only when allowed to: with PYTHONDONTWRITEBYTECODE set
# (some sandboxes set it), every test worker and every child process a test starts
# compiles the library and its dependencies again.
unexport PYTHONDONTWRITEBYTECODE

# uv installs the same packages as pip from the same pyproject.toml, about five times
# faster; modules are compiled as they are first imported.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/python -m uv pip install --quiet --python $(BIN)/python -e '.[dev,postgres,s3]'
	@touch $(STAMP)

# The real Claude Code transcripts beside the repository (read there, never copied);
# without them the demo imports a small transcript the project generates itself. The
# demo's store is ./agent_sessions.db, made fresh each time.
DEMO_DATA := ../shared/data/claude-code
DEMO_DB := agent_sessions.db

demo: $(STAMP)
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	$(BIN)/agent-sessions demo --store sqlite:///$(DEMO_DB) $(if $(wildcard $(DEMO_DATA)),--data $(DEMO_DATA))

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check agent_sessions tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

# The checks and the suite run side by side (make -j): the suite waits on databases,
# servers and child processes as much as it computes, and the checks fill that time.
test: $(STAMP)
	$(MAKE) --no-print-directory -j 4 lint typecheck layers unit

# Two workers, one per core. Four were faster here (11.5 min against 13) but starve
# the tests that watch an event loop or a process make progress; work stealing
# rebalances the long tests at the end of the run.
unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" -n 2 --dist worksteal

test-reliability: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python -m benchmarks
	$(BIN)/python benchmarks/append_scaling.py
	$(BIN)/python benchmarks/projection_catch_up.py
	$(BIN)/python benchmarks/migrate_v0_1_0.py
	$(BIN)/python benchmarks/replay.py --postgres postgresql://postgres@127.0.0.1:5432/test
	$(BIN)/python benchmarks/async_store.py
	$(BIN)/python benchmarks/last_events.py --postgres postgresql://postgres@127.0.0.1:5432/test
	$(BIN)/python benchmarks/adapter_openai_agents.py
	$(BIN)/python benchmarks/adapter_adk.py
	$(BIN)/python benchmarks/adapter_langgraph.py --postgres postgresql://postgres@127.0.0.1:5432/test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
