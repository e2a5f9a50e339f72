#!/bin/bash
# Wheels for a lent GPU machine (Python 3.12, PyTorch there, no package index), into .whl/ (git-ignored).
# stable-retro's wheel (123 MB) is over the 64 MiB a call may carry, so it travels unpacked with only the
# Atari 2600, NES and Genesis cores and the Boxing, SMB and Airstriker integrations (22 MB).
# The checkout travels too: results/ (about 80 MB) must be moved out of the tree for the call, e.g.
#   mv results /tmp/results_aside   (call the device, carry .whl)   mv /tmp/results_aside results
# On the machine:  bash scripts/device_check.sh   (installs these, then runs the checks; see that file)
set -euo pipefail
cd "$(dirname "$0")/.."
P="--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
   --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
ver() { .venv/bin/python -c "import importlib.metadata as m; print(m.version('$1'))"; }
rm -rf .whl && mkdir -p .whl/site /tmp/retrodojo_whl
for p in stable-retro gymnasium stable-baselines3 sb3-contrib ale-py neat-python farama-notifications pydantic \
         pydantic_core annotated-types typing-inspection platformdirs typing_extensions; do
  python3 -m pip download -q --no-deps $P -d /tmp/retrodojo_whl "$p==$(ver "$p")"
done
python3 -m pip download -q --no-deps $P -d /tmp/retrodojo_whl gym-super-mario-bros==7.4.0
mv /tmp/retrodojo_whl/*.whl .whl/ && mv .whl/stable_retro-*.whl /tmp/retrodojo_whl/
(cd .whl/site && unzip -q /tmp/retrodojo_whl/stable_retro-*.whl)
find .whl/site/stable_retro/cores -type f ! -name 'stella*' ! -name 'fceumm*' ! -name 'genesis_plus_gx*' -delete
find .whl/site/stable_retro/data/stable -mindepth 1 -maxdepth 1 -type d \
     ! -name 'Boxing-Atari2600*' ! -name 'SuperMarioBros-Nes*' ! -name 'Airstriker-Genesis*' -exec rm -rf {} +
rm -rf /tmp/retrodojo_whl
du -sh .whl
