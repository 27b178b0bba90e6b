"""The decoder study's check after the fact: uniform on PP attachment, r̄ = 8, at 1e-3 and 3e-3 on the CPU and at 1e-3 on the
GPU, beside the published GPU runs (uniform at its swept 3e-3, and the methods that beat it). Prints the markdown
table and the paired differences (Student t 95 % CI over the seeds both sides have) of
pp-rate-check-cpu/README.md and pp-rate-check-gpu/README.md in records.jsonl.gz.

    python experiments/decoder-checks/pp_uniform_rate_summary.py CPU_RESULTS GPU_RESULTS DECODER_RESULTS

(the folders pp-rate-check-cpu/, pp-rate-check-gpu/ of this study's archive and decoder/ of the decoder study's,
unpacked with experiments/archive.py)
"""

import glob
import json
import sys

from adarank.compare.report import paired_stats
def load(pattern):
    out = {}
    for f in glob.glob(pattern):
        with open(f) as fh:
            r = json.load(fh)
        out[r['seed']] = 100 * r['test_score']
    return out
if len(sys.argv) != 4:
    sys.exit("usage: pp_uniform_rate_summary.py CPU_RESULTS GPU_RESULTS DECODER_RESULTS")
root, gpu_root, decoder = sys.argv[1:4]
cpu1 = load(f'{root}/lr1e-3/runs/*.json')
cpu3 = load(f'{root}/lr3e-3/runs/*.json')
gpu1 = load(f'{gpu_root}/lr1e-3/runs/*.json')
gpu3 = load(f'{decoder}/runs/ppattach__all-linear__r8__uniform__s*.json')
gpu = {m: load(f'{decoder}/runs/ppattach__all-linear__r8__{m}__s*.json')
       for m in ['adarank-floor', 'adarank-exact', 'adarank-fisher', 'eva', 'eva-ranks', 'adalora']}
seeds = sorted(set(cpu1) | set(cpu3) | set(gpu3) | set(gpu1))
print('| seed | CPU 1e-3 | CPU 3e-3 | GPU 1e-3 | GPU 3e-3 (published) |')
print('|---|---|---|---|---|')
for s in seeds:
    cells = [f"{d[s]:.1f}" if s in d else "–" for d in (cpu1, cpu3, gpu1, gpu3)]
    print(f"| {s} | " + " | ".join(cells) + " |")
def pair(a, b):
    common = sorted(set(a) & set(b))
    st = paired_stats([a[s] - b[s] for s in common])
    return f"n={st.n} {st.mean:+.2f} [{st.lo:+.2f}, {st.hi:+.2f}]"
print('CPU 1e-3 - CPU 3e-3:', pair(cpu1, cpu3))
print('CPU 3e-3 - GPU 3e-3:', pair(cpu3, gpu3))
print('CPU 1e-3 - GPU 3e-3:', pair(cpu1, gpu3))
print('GPU 1e-3 - GPU 3e-3:', pair(gpu1, gpu3))
print('GPU 1e-3 - CPU 1e-3:', pair(gpu1, cpu1))
for m, d in gpu.items():
    print(f'GPU {m} - CPU 1e-3 uniform:', pair(d, cpu1), '| vs GPU uniform 1e-3:', pair(d, gpu1),
          '| vs GPU uniform 3e-3:', pair(d, gpu3))
