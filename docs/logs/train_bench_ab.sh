#!/bin/bash
# interleaved A/B of the train bench: old = 7ad4123 (before the network trait), new = HEAD
OLD=${OLD:?the train bench binary built at 7ad4123 (target/release/deps/train-*)}
NEW=${NEW:?the train bench binary built at the commit under test}
for r in 1 2 3 4 5; do
  for v in old new; do
    if [ $v = old ]; then B=$OLD; L="old (7ad4123)"; else B=$NEW; L="new ($(git rev-parse --short HEAD))"; fi
    echo "== round $r: $L $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    ($B --bench --noplot 2>&1 | grep -A1 '^train_epoch' | grep -v '^--')
  done
done
