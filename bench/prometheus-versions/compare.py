"""The same TSDB and rule files under several Prometheus binaries, one after another: each
group's median evaluationTime (/api/v1/rules) over some minutes, and the resident memory.

    .venv/bin/python bench/prometheus-versions/compare.py KEPT_DATA_DIR RULES[,RULES...] MINUTES \
        /usr/bin/prometheus /opt/prom-3.5.3/bin/prometheus \
        /opt/prom-3.5.3/bin/prometheus=--enable-feature=concurrent-rule-eval > results.json

KEPT_DATA_DIR is a TSDB that `reward-obs bench --keep DIR` left (DIR/prometheus-<pools>/data);
each binary gets a fresh copy of it. `BINARY=FLAG,FLAG` adds flags. The first evaluation
of a group is dropped (cold caches) when there are others.
"""
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from reward_obs_dev.servers import Prometheus


def measure(binary: str, flags: list[str], kept: Path, rule_files: list[str], minutes: int, work: Path) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    prom = Prometheus(work, {"global": {"evaluation_interval": "1m"}},
                      {f"rules-{i}.yaml": Path(f).read_text(encoding="utf-8") for i, f in enumerate(rule_files)},
                      extra_args=("--storage.tsdb.retention.time=400d", *flags),
                      executable=str(Path(shutil.which(binary) or binary).resolve()))  # the server runs in `work`
    shutil.copytree(kept, prom.data_dir, dirs_exist_ok=True)
    prom.start(timeout=300)
    try:
        times: dict[str, list[float]] = {}
        seen = set()
        t0 = time.time()
        while time.time() - t0 < minutes * 60:
            time.sleep(20)
            for g in prom.rule_groups():
                last = g.get("lastEvaluation") or ""
                if not last or last.startswith("0001-") or (g["name"], last) in seen:
                    continue  # not evaluated yet (Go's zero time), or already counted
                seen.add((g["name"], last))
                times.setdefault(g["name"], []).append(g["evaluationTime"] * 1000)
        status = Path(f"/proc/{prom.proc.pid}/status").read_text()
        rss = int(status.split("VmRSS:")[1].split()[0]) // 1024
    finally:
        prom.stop()
    return {"rss_mib": rss, "groups": {name: {"median_ms": round(statistics.median(v[1:] or v), 1), "evaluations": len(v)}
                                       for name, v in sorted(times.items())}}


def main() -> None:
    kept, rule_files, minutes = Path(sys.argv[1]), sys.argv[2].split(","), int(sys.argv[3])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in sys.argv[4:]:
            binary, _, flags = spec.partition("=")
            results[spec] = measure(binary, [f for f in flags.split(",") if f], kept, rule_files, minutes, Path(tmp) / "run")
            print(spec, results[spec]["rss_mib"], "MiB", file=sys.stderr, flush=True)
    json.dump(results, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
