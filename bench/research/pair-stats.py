# Reads "reqA ticksA reqB ticksB" lines (one per pair of windows) from listener-pair.sh / process-pair.sh and prints
# the median of B's throughput over A's, its quartiles, and each side's CPU per request.
import os, statistics as st, sys
hz = os.sysconf("SC_CLK_TCK")
rows = [list(map(int, l.split())) for l in sys.stdin if l.strip()]
thr = [r[2] / r[0] for r in rows]
us = lambda req, t: sum(t) * 1e6 / hz / sum(req)
a, b = us([r[0] for r in rows], [r[1] for r in rows]), us([r[2] for r in rows], [r[3] for r in rows])
q = st.quantiles(thr, n=4)
print(f"B/A throughput median {st.median(thr)*100:.1f}% (quartiles {q[0]*100:.1f}-{q[2]*100:.1f}); CPU/req A {a:.2f} us, B {b:.2f} us (B-A {b-a:.2f})")
