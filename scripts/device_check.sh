#!/bin/bash
# On a lent GPU machine, from the checkout's root, with .whl/ made by scripts/device_prep.sh carried:
#   bash scripts/device_check.sh            CUDA checks of the deep RL agents, then the SB3-side tests
#   PARITY_SEEDS="3" bash scripts/device_check.sh   the same beside parity runs of those seeds (both stacks)
#   PARITY_SEEDS="1" PARITY_FRAMES=10000000 CHECKS=0 bash scripts/device_check.sh   parity runs alone, longer
# A parity run's linear schedules span PARITY_FRAMES (default 2M), so a longer run is a new run, not a resumed one.
# (CHECKS=0 alone skips the checks.) The parity runs get SIGINT 40 s before BUDGET_S seconds (default 500),
# write their checkpoints and stop; then it packs what they made into $OUT: parity.tgz (run folders),
# ckpt.tar.* (the newest checkpoint of each unfinished run, about 20 MB each: at most 64 MB comes back, so
# 3 runs at most), logs.tgz. Give the call's timeout_s some 30 s more than BUDGET_S.
#   EXTRA='$RD train ...; ...' bash scripts/device_check.sh   also runs EXTRA (bash, with $RD and the wheels'
# PYTHONPATH) beside the parity runs: when theirs stop, the command EXTRA is then running gets SIGINT (retrodojo's
# trainer sets its own handler, writes its checkpoint and stops; a command that sets none ignores it, as bash
# starts background commands; the rest of the list goes on), and what still runs 30 s later is killed. Its
# output comes back in logs.tgz as extra.log; what it writes under $OUT/extra/ comes back as extra.tgz, without
# checkpoints/ folders (a call returns only shallow folders, and at most 64 MB: a run's tb/ would not come back).
export PYTHONUNBUFFERED=1
T0=$(date +%s)
DEADLINE=$(( T0 + ${BUDGET_S:-500} ))
tl() { local r=$(( DEADLINE - $(date +%s) )); [ $r -lt 5 ] && r=5; [ $r -gt $1 ] && r=$1; echo $r; }
tp() { local r=$(( $(tl 100000) - 40 )); [ $r -lt 5 ] && r=5; echo $r; }  # the parity runs' share
rm -rf /tmp/parity /tmp/cuda  # a warm machine's earlier call must not be packed again
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
  # --foreground: the trainer alone gets SIGINT and stops its workers itself after the checkpoint
  ( timeout --foreground -k 60 -s INT $(tp) python3 benchmarks/atari_parity.py --side reference --seeds $s --frames ${PARITY_FRAMES:-2000000} \
      --out /tmp/parity > $OUT/parity_reference_s$s.log 2>&1; echo "rc=$?" >> $OUT/parity_reference_s$s.log ) &
  ( timeout --foreground -k 60 -s INT $(tp) $RD train boxing_ppo --seed $s --runs-dir /tmp/parity --name parity_retrodojo \
      --set budget.frames=${PARITY_FRAMES:-2000000} --set eval.every_frames=250000 --set eval.episodes=10 \
      --set eval.deterministic=false --set checkpoint.every_frames=500000 > $OUT/parity_retrodojo_s$s.log 2>&1
    echo "rc=$?" >> $OUT/parity_retrodojo_s$s.log ) &
done
if [ -n "${EXTRA:-}" ]; then
  mkdir -p $OUT/extra
  ( export RD; bash -c "$EXTRA" > $OUT/extra.log 2>&1 & pid=$!
    # bash holds a SIGINT until its child ends: the child (the trainer) is the one to get it
    ( sleep $(tp); pkill -INT -P $pid; sleep 30; pkill -KILL -P $pid; kill -KILL $pid ) 2> /dev/null & stopper=$!
    wait $pid; echo "rc=$?" >> $OUT/extra.log; kill $stopper 2> /dev/null ) &
fi
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
  # an unfinished run's newest checkpoint, to resume on the CPU machine (its meta.json says "finished" when done)
  (cd /tmp && for r in parity/parity_*/*/; do
     grep -q '"status": "finished"' "$r"meta.json 2>/dev/null && continue
     ls -d "$r"checkpoint "$r"checkpoints/* 2>/dev/null | tail -n 1
   done > /tmp/ckpt.list)
  if [ -s /tmp/ckpt.list ]; then
    (cd /tmp && tar cf /tmp/ckpt.tar -T /tmp/ckpt.list) && split -b 15m /tmp/ckpt.tar $OUT/ckpt.tar.
    [ $(stat -c %s /tmp/ckpt.tar) -gt $(( 60 * 1024 * 1024 )) ] && echo "ckpt.tar is over 60 MB: it will not all come back" >&2
  fi
fi
(cd $OUT && tar czf logs.tgz *.log && rm -f *.log)
if [ -d $OUT/extra ]; then
  (cd $OUT && tar czf extra.tgz --exclude=checkpoints extra; rm -rf extra)
  [ $(stat -c %s $OUT/extra.tgz) -gt $(( 40 * 1024 * 1024 )) ] && echo "extra.tgz is over 40 MB: with the rest it may not come back" >&2
fi
ls -la $OUT; echo "done after $(( $(date +%s) - T0 )) s"
