#!/bin/bash
# On a lent GPU machine, from the checkout's root, with .whl/ made by scripts/device_prep.sh carried:
#   bash scripts/device_check.sh            CUDA checks of the deep RL agents, then the SB3-side tests
#   PARITY_SEEDS="3" bash scripts/device_check.sh   the same beside parity runs of those seeds (both stacks)
#   PARITY_SEEDS="1" PARITY_FRAMES=10000000 CHECKS=0 bash scripts/device_check.sh   parity runs alone, longer
# A parity run's linear schedules span PARITY_FRAMES (default 2M), so a longer run is a new run, not a resumed one.
# Everything stops by itself inside BUDGET_S seconds (default 500) and packs what it made into $OUT:
# parity.tgz (run folders), ckpt.tar.* (their checkpoints, when a parity run did not finish), logs.tgz.
export PYTHONUNBUFFERED=1
T0=$(date +%s)
DEADLINE=$(( T0 + ${BUDGET_S:-500} ))
tl() { local r=$(( DEADLINE - $(date +%s) )); [ $r -lt 5 ] && r=5; [ $r -gt $1 ] && r=$1; echo $r; }
if ! ls .whl/*.whl > /dev/null 2>&1 || [ ! -d .whl/site/stable_retro ]; then
  echo "no wheels in .whl/: run scripts/device_prep.sh on the CPU machine first and name .whl in the call's carry" >&2
  exit 3
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 3
cp -r .whl/site/* /tmp/site/ && ln -sfn "$PWD/configs" /tmp/site/retrodojo_configs
export PYTHONPATH=/tmp/site:$PWD
RD="python3 -m experiments.cli"
nvidia-smi -L; nproc
python3 -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available())"
$RD roms bundled 2>&1 | tail -n 2
for s in ${PARITY_SEEDS:-}; do
  ( timeout -s INT $(tl 10000) python3 benchmarks/atari_parity.py --side reference --seeds $s --frames ${PARITY_FRAMES:-2000000} \
      --out /tmp/parity > $OUT/parity_reference_s$s.log 2>&1; echo "rc=$?" >> $OUT/parity_reference_s$s.log ) &
  ( timeout -s INT $(tl 10000) $RD train boxing_ppo --seed $s --runs-dir /tmp/parity --name parity_retrodojo \
      --set budget.frames=${PARITY_FRAMES:-2000000} --set eval.every_frames=250000 --set eval.episodes=10 \
      --set eval.deterministic=false --set checkpoint.every_frames=500000 > $OUT/parity_retrodojo_s$s.log 2>&1
    echo "rc=$?" >> $OUT/parity_retrodojo_s$s.log ) &
done
if [ "${CHECKS:-1}" != 0 ]; then
{
  for exp in boxing_ppo boxing_ppo_lstm boxing_a2c; do
    timeout -s INT $(tl 90) $RD train $exp --seed 1 --runs-dir /tmp/cuda --set budget.frames=40000 \
      --set eval.every_frames=20000 --set eval.episodes=1 --set checkpoint.every_frames=20000 2>&1 | tail -n 3
  done
  timeout -s INT $(tl 60) $RD train --resume "$(ls -d /tmp/cuda/boxing_ppo_lstm/*/ | head -n 1)" \
    --set budget.frames=60000 2>&1 | tail -n 2
  timeout $(tl 60) $RD evaluate /tmp/cuda/boxing_a2c/*/ --episodes 1 2>&1 | tail -n 2
  python3 - <<'PY'
import glob, json
from agents.base import load
for m in sorted(glob.glob("/tmp/cuda/*/*/meta.json")):
    d = json.load(open(m))
    print(m, d.get("status"), d.get("frames"), "resumes", d.get("resumes"))
for f in sorted(glob.glob("/tmp/cuda/*/*/final")):
    p = next(load(f).model.policy.parameters())
    print(f, "parameters on", p.device)
PY
} > $OUT/cuda.log 2>&1
cat $OUT/cuda.log
timeout $(tl 180) python3 -m pytest -q -p no:cacheprovider -n 4 tests/test_networks.py tests/test_recurrent_a2c.py \
  tests/test_safe_formats.py tests/test_training.py > $OUT/pytest.log 2>&1; echo "pytest rc=$?" >> $OUT/pytest.log
tail -n 5 $OUT/pytest.log
fi
wait
if [ -d /tmp/parity ]; then
  (cd /tmp && find parity -path '*checkpoint*' -prune -o -type f -print | tar czf $OUT/parity.tgz -T -)
  if grep -L "rc=0" $OUT/parity_*.log | grep -q .; then  # unfinished: their checkpoints resume on the CPU machine
    # the newest checkpoint of each run alone: 20 MB each, and at most 64 MB comes back
    (cd /tmp && { ls -d parity/parity_reference/*/checkpoint 2>/dev/null
                  for r in parity/parity_retrodojo/*/; do ls -d "$r"checkpoints/* | tail -n 1; done; } |
       tar cf /tmp/ckpt.tar -T -) && split -b 15m /tmp/ckpt.tar $OUT/ckpt.tar.
  fi
fi
(cd $OUT && tar czf logs.tgz *.log && rm -f *.log)
ls -la $OUT; echo "done after $(( $(date +%s) - T0 )) s"
