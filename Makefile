# retrodojo: `make demo` (the main job) and `make test` (the suite) each create .venv and install on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.retrodojo-installed

.PHONY: install demo test bench results lint tensorboard clean

# torch first, pinned: the CPU build on this machine; an unpinned torch pulls gigabytes of CUDA packages.
# gym-super-mario-bros only for the SMB ROM file it ships: --no-deps keeps nes-py and gym out.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,ray,tune,watch]'
	$(PY) -m pip install -q --no-deps gym-super-mario-bros==7.4.0
	@touch $(STAMP)

install: $(STAMP)
	@$(VENV)/bin/retrodojo roms bundled

demo: install
	$(VENV)/bin/retrodojo demo --minutes 5

test: install
	$(VENV)/bin/pytest -q --durations=15

bench: install
	$(PY) benchmarks/env_throughput.py
	$(PY) benchmarks/ppo_throughput.py
	$(PY) benchmarks/neat_generation.py

# docs/results.md's tables and plots, remade from the committed record (results/) and benchmark files
results: install
	$(VENV)/bin/retrodojo report docs/results.md
	$(PY) scripts/plot_neat_progress.py results/smb_neat results/smb_neat_nocur \
	    --names "with the curriculum" "without (curriculum=null)" --out docs/neat_progress_curriculum.png
	rm -rf models/eval/bk2 && $(VENV)/bin/retrodojo evaluate models/smb_neat_1-1 --episodes 1 --bk2 > /dev/null
	$(PY) scripts/level_map.py models/eval/bk2/*/Level1-1-000.bk2 --mark "NEAT (smb_neat seed 1, 57 min)=3006" \
	    --mark "PPO (smb_ppo seed 1, 1M frames, greedy)=583" \
	    --mark "PPO (smb_ppo_curriculum seed 1, 5M frames, greedy)=3038" --out docs/smb_level_map.png

lint: install
	$(VENV)/bin/ruff check .

tensorboard: install
	$(VENV)/bin/tensorboard --logdir runs

clean:
	rm -rf $(VENV) build *.egg-info
