#!/usr/bin/env python3
"""Time two commands in alternation, so that drift in the machine's speed (which on
this VM moves a median by 30 % between runs minutes apart) falls on both alike.

  interleave.py --runs N --pause S --block B [--settle S] --out FILE --a CMD_A --b CMD_B

Paced: N rounds; in each, both commands run once after a pause of S seconds (the
order alternates round to round). Back to back: N // B rounds; in each, every command
runs once untimed and then B times back to back, each block after a pause of
--settle seconds (default 1): what the other command's block left running (dockerd's
containerd and its clean-up go on for a while after its last run) would otherwise
land on the first runs of the next block. Commands are split like a shell
would (shlex) and run without a shell. Writes the samples and their medians (seconds)
to FILE as JSON, and prints the medians and the ratio A / B.
"""
import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time


def run(argv):
    t = time.perf_counter()
    subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--pause", type=float, default=0.2)
    p.add_argument("--block", type=int, default=10)
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--out", required=True)
    p.add_argument("--a", required=True, help="the first command")
    p.add_argument("--b", required=True, help="the second command")
    a = p.parse_args()
    cmds = [shlex.split(a.a), shlex.split(a.b)]
    if not all(cmds):
        sys.exit("interleave.py: empty command")
    paced = [[], []]
    for i in range(a.runs):
        for k in ((0, 1) if i % 2 == 0 else (1, 0)):
            time.sleep(a.pause)
            paced[k].append(run(cmds[k]))
    b2b = [[], []]
    for i in range(max(1, a.runs // a.block)):
        for k in ((0, 1) if i % 2 == 0 else (1, 0)):
            time.sleep(a.settle)
            run(cmds[k])
            b2b[k].extend(run(cmds[k]) for _ in range(a.block))
    med = lambda xs: statistics.median(xs)
    out = {
        "commands": [" ".join(c) for c in cmds],
        "paced_seconds": paced,
        "back_to_back_seconds": b2b,
        "paced_median_seconds": [med(x) for x in paced],
        "back_to_back_median_seconds": [med(x) for x in b2b],
        "ratio_paced": med(paced[0]) / med(paced[1]),
        "ratio_back_to_back": med(b2b[0]) / med(b2b[1]),
    }
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"paced: {med(paced[0]) * 1000:.1f} ms vs {med(paced[1]) * 1000:.1f} ms, ratio {out['ratio_paced']:.3f}")
    print(f"back to back: {med(b2b[0]) * 1000:.1f} ms vs {med(b2b[1]) * 1000:.1f} ms, ratio {out['ratio_back_to_back']:.3f}")


if __name__ == "__main__":
    main()
