"""The same TSDB and rule files under several Prometheus binaries, one after another: each
group's median evaluationTime (/api/v1/rules) over some minutes, and the resident memory.

    python bench/prometheus-versions/compare.py KEPT_DATA_DIR RULES[,RULES...] MINUTES \
        /usr/bin/prometheus /opt/prom-3.5.3/bin/prometheus \
        /opt/prom-3.5.3/bin/prometheus=--enable-feature=concurrent-rule-eval > results.json

KEPT_DATA_DIR is a TSDB that `reward-obs bench --keep DIR` left (DIR/prometheus-<pools>/data);
each binary gets a fresh copy of it. `BINARY=FLAG,FLAG` adds flags. The first evaluation
of a group is dropped (cold caches) when there are others.
"""
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def measure(binary: str, flags: list[str], kept: Path, rule_files: list[str], minutes: int, work: Path) -> dict:
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(kept, data)
    config = work / "prometheus.yml"
    config.write_text("global: {evaluation_interval: 1m}\nrule_files:\n"
                      + "".join(f"  - {Path(f).resolve()}\n" for f in rule_files))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(work / "prometheus.log", "w") as log:
        proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={data}",
                                 "--storage.tsdb.retention.time=400d", f"--web.listen-address=127.0.0.1:{port}",
                                 *flags], stdout=subprocess.DEVNULL, stderr=log)
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2)
                    break
                except OSError:
                    time.sleep(1)
            times: dict[str, list[float]] = {}
            seen = set()
            t0 = time.time()
            while time.time() - t0 < minutes * 60:
                time.sleep(20)
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/rules", timeout=30) as r:
                    groups = json.load(r)["data"]["groups"]
                for g in groups:
                    key = (g["name"], g.get("lastEvaluation"))
                    if key in seen or not g.get("lastEvaluation", "").startswith("2"):
                        continue  # not evaluated yet: Go's zero time
                    seen.add(key)
                    times.setdefault(g["name"], []).append(g["evaluationTime"] * 1000)
            status = Path(f"/proc/{proc.pid}/status").read_text()
            rss = int(status.split("VmRSS:")[1].split()[0]) // 1024
        finally:
            proc.terminate()
            proc.wait()
    return {"rss_mib": rss, "groups": {name: {"median_ms": round(statistics.median(v[1:] or v), 1), "evaluations": len(v)}
                                       for name, v in sorted(times.items())}}


def main() -> None:
    kept, rule_files, minutes = Path(sys.argv[1]), sys.argv[2].split(","), int(sys.argv[3])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in sys.argv[4:]:
            binary, _, flags = spec.partition("=")
            results[spec] = measure(binary, [f for f in flags.split(",") if f], kept, rule_files, minutes, Path(tmp))
            print(spec, results[spec]["rss_mib"], "MiB", file=sys.stderr, flush=True)
    json.dump(results, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
