#!/usr/bin/env python3
"""Medians of a soak's series over windows of minutes, from the CSV `hawker-bench soak` writes.

    python3 bench/soak_windows.py bench/runs/soak.csv             # every 5 minutes
    python3 bench/soak_windows.py fresh.csv --every 8 --from 2    # one window, minutes 2-10

The run's own summary compares only its first and last sixth; this shows the level in between
(memory's level past the warm-up and its peaks, the p99 and CPU per order minute by minute).
Windows are the aged show's samples; the fresh control show's turns (the `show` column, in runs
since it was added) get lines of their own, without memory, which is sampled from the aged
server only. The first sample of each turn is left out of both.
"""
import argparse, csv, statistics

COLUMNS = ['p99_ms', 'server_cpu_ms_per_order', 'disk_kib_per_order', 'rss_mib', 'orders_per_s']

args = argparse.ArgumentParser()
args.add_argument('csv')
args.add_argument('--every', type=float, default=5, help='window length in minutes')
args.add_argument('--from', dest='start', type=float, default=0, help='first minute')
a = args.parse_args()

rows = [r for r in csv.DictReader(open(a.csv)) if float(r['at_s']) / 60 > a.start]
print('minutes           ' + ''.join(f'{c:>26}' for c in COLUMNS) + f'{"highest rss_mib":>18}')
for show in ['aged', 'fresh']:
    windows = {}
    for r in rows:
        if r.get('show', 'aged') == show and r.get('settling', '0') == '0':
            windows.setdefault(int((float(r['at_s']) / 60 - a.start - 1e-9) // a.every), []).append(r)
    for i, w in sorted(windows.items()):
        lo = a.start + i * a.every
        # Memory is sampled from the aged server only: a fresh row leaves it blank.
        med = [f'{statistics.median(float(r[c]) for r in w):>26.3f}'
               if show == 'aged' or c != 'rss_mib' else f'{"-":>26}' for c in COLUMNS]
        top = f'{max(float(r["rss_mib"]) for r in w):>18.1f}' if show == 'aged' else f'{"-":>18}'
        print(f'{lo:5.0f}-{lo + a.every:<5.0f} {show:<6}' + ''.join(med) + top)
