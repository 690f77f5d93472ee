#!/usr/bin/env bash
# bench_embed.sh — `armo embed` on the CPU against the reference's one-at-a-time
# Hugging Face extraction (profiling/bench_embed_hf.py), same random-weight
# Llama-3-shaped checkpoint (written by `armo bench --keep`, the Llama-3
# tokenizer copied in), same synthetic pairs; checks that both give the same
# hidden rows.  Needs python3 with torch, transformers, safetensors, numpy.
#   usage: profiling/bench_embed.sh BUILD_DIR [PAIRS=32] [HIDDEN=512] [LAYERS=4] [THREADS=2]
set -euo pipefail
B=$1; N=${2:-32}; H=${3:-512}; L=${4:-4}; T=${5:-2}
PY=${PYTHON:-python3}
W=$(mktemp -d /tmp/armo-bench-embed.XXXXXX)
trap 'rm -rf "$W"' EXIT
"$B/armo" bench --device cpu --layers "$L" --hidden "$H" --sequences 2 --workdir "$W" --keep \
  --threads "$T" --quiet > /dev/null 2> "$W/bench.err" || { cat "$W/bench.err"; exit 1; }
M=$(ls -d "$W"/armo-bench-*)
cp "$B"/models/tiny-armorm/tokenizer*.json "$M"/
"$PY" - "$N" > "$W/pairs.jsonl" <<'PY'
import json, random, sys
random.seed(15)
words = ("the a model reward answer question data because river quiet simple careful light "
         "numbers garden explains clearly helpful honest short long code python result").split()
say = lambda n: " ".join(random.choice(words) for _ in range(n)).capitalize() + "."
for i in range(int(sys.argv[1])):
    print(json.dumps({"id": i, "prompt": say(random.randint(40, 160)),
                      "chosen": say(random.randint(30, 200)), "rejected": say(random.randint(30, 200))}))
PY
echo "== armo embed (CPU, $T threads; hidden $H, $L layers) =="
/usr/bin/time -f "%e s wall" "$B/armo" embed --model "$M" --input "$W/pairs.jsonl" --output "$W/emb" \
  --threads "$T" --quiet
echo "== reference: Hugging Face, one conversation per forward =="
"$PY" "$(dirname "$0")/bench_embed_hf.py" --model "$M" --input "$W/pairs.jsonl" --armo-emb "$W/emb" \
  --threads "$T"
