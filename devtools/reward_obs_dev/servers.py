"""Real Prometheus and Alertmanager processes on loopback, for the live test and the
bench: free ports, private data directories, readiness waits, and the HTTP API.

Every server listens on 127.0.0.1 only (Alertmanager's cluster listener is switched
off: it would otherwise bind 0.0.0.0:9094). `stop()` is safe to call twice and kills a
server that does not exit on SIGTERM.
"""
from __future__ import annotations

import json
import shutil
import signal
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from reward_obs.tools.prometheus_history import http_json

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError(f"none of {', '.join(names)} is installed (scripts/install-tools.sh installs them)")


def prometheus_version() -> str:
    result = subprocess.run([binary("prometheus"), "--version"], capture_output=True, text=True)
    first = (result.stdout + result.stderr).split("\n")[0]
    return first.replace("prometheus, version ", "").split(" ")[0]


class _Server:
    name = "server"
    ready_path = "/-/ready"

    def __init__(self, workdir: Path, log_name: str):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / log_name
        self._log = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 60.0) -> _Server:
        for _attempt in range(3):  # the free port can be taken between pick and bind
            self._log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, cwd=self.workdir)
            if self._wait_ready(timeout):
                return self
            self.stop()
            if "address already in use" not in self.log_path.read_text(errors="replace"):
                break
            self.port = free_port()
        raise RuntimeError(f"{self.name} did not become ready; log:\n{self.log()}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        return False

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


class Prometheus(_Server):
    name = "prometheus"

    def __init__(self, workdir: Path, config: dict, rule_files: dict[str, str] | None = None,
                 extra_args: tuple[str, ...] = (), executable: str | None = None):
        super().__init__(workdir, "prometheus.log")
        self.executable = executable  # a given build; else the one on PATH
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.config_path = self.workdir / "prometheus.yml"
        self._config = config
        self._write_config(rule_files or {})
        self.extra_args = tuple(extra_args)

    def _write_config(self, rule_files: dict[str, str]) -> None:
        paths = []
        for name, text in rule_files.items():
            path = self.workdir / name
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        self.config_path.write_text(json.dumps({**self._config, "rule_files": paths}, indent=1), encoding="utf-8")

    def reload_rules(self, rule_files: dict[str, str], timeout: float = 60.0) -> None:
        """Load these rule files instead (SIGHUP, as an operator's reload does) and wait
        until the server lists exactly their groups."""
        self._write_config(rule_files)
        expected = sorted(g["name"] for text in rule_files.values() for g in yaml.safe_load(text)["groups"])
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while sorted(g["name"] for g in self.rule_groups()) != expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not load the reloaded rules; log:\n{self.log()}")
            time.sleep(0.5)

    def command(self) -> list[str]:
        return [self.executable or binary("prometheus"), f"--config.file={self.config_path}", f"--storage.tsdb.path={self.data_dir}",
                f"--web.listen-address={LOOPBACK}:{self.port}", "--log.level=warn", *self.extra_args]

    # -- HTTP API

    def api(self, path: str, **params) -> dict:
        result = http_json(f"{self.url}/api/v1/{path}", params or None)
        if result.get("status") != "success":
            raise RuntimeError(f"{path}: {result}")
        return result["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.api("query", **params)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        return self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}")["result"]

    def alerts(self) -> list[dict]:
        return http_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]

    def rule_groups(self) -> list[dict]:
        return http_json(f"{self.url}/api/v1/rules")["data"]["groups"]


class Alertmanager(_Server):
    name = "alertmanager"

    def __init__(self, workdir: Path, config_text: str):
        super().__init__(workdir, "alertmanager.log")
        self.config_path = self.workdir / "alertmanager.yml"
        self.config_path.write_text(config_text, encoding="utf-8")
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(exist_ok=True)

    def command(self) -> list[str]:
        return [binary("alertmanager", "prometheus-alertmanager"), f"--config.file={self.config_path}",
                f"--storage.path={self.data_dir}", f"--web.listen-address={LOOPBACK}:{self.port}",
                "--cluster.listen-address=", "--log.level=warn"]


def backfill(openmetrics_file: Path, data_dir: Path, max_block_duration: str | None = None) -> str:
    """`promtool tsdb create-blocks-from openmetrics` into a Prometheus data directory."""
    cmd = [binary("promtool"), "tsdb", "create-blocks-from", "openmetrics"]
    if max_block_duration:
        cmd.append(f"--max-block-duration={max_block_duration}")
    result = subprocess.run([*cmd, str(openmetrics_file), str(data_dir)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"promtool backfill failed: {result.stdout}{result.stderr}")
    return result.stdout


def backfill_recording_rules(prom: Prometheus, groups: list[dict], start: float, end: float, eval_interval: str = "60s") -> None:
    """Give recording rules their history, as one does when adding them to a running
    Prometheus: `promtool tsdb create-blocks-from rules` evaluates the groups over
    [start, end] against `prom`, then `prom` restarts with the new blocks in its data
    directory (Prometheus 2.39+ queries overlapping blocks and compacts them later)."""

    rule_path = prom.workdir / "recording-backfill.yaml"
    rule_path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False), encoding="utf-8")
    out_dir = prom.workdir / "recorded-blocks"
    result = subprocess.run([binary("promtool"), "tsdb", "create-blocks-from", "rules", f"--start={int(start)}", f"--end={int(end)}",
                             f"--url={prom.url}", f"--output-dir={out_dir}", f"--eval-interval={eval_interval}", "--quiet",
                             str(rule_path)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"promtool rules backfill failed: {result.stdout}{result.stderr}")
    prom.stop()
    for block in out_dir.iterdir():
        block.rename(prom.data_dir / block.name)
    out_dir.rmdir()
    prom.start(timeout=600)


class VictoriaMetrics(_Server):
    """Single-node VictoriaMetrics (Debian package victoria-metrics) on loopback.

    Retention of 100 years: the scenario worlds sit at a fixed past base time, and samples
    older than the retention are dropped on import. The rollup cache is off, so a query
    never returns a result computed before the data it reads was complete."""
    name = "victoria-metrics"
    ready_path = "/health"

    def __init__(self, workdir: Path, extra_args: tuple[str, ...] = ()):
        super().__init__(workdir, "victoria-metrics.log")
        self.data_dir = self.workdir / "data"
        self.extra_args = tuple(extra_args)

    def command(self) -> list[str]:
        return [binary("victoria-metrics"), f"-storageDataPath={self.data_dir}", f"-httpListenAddr={LOOPBACK}:{self.port}",
                "-retentionPeriod=100y", "-search.disableCache", "-loggerLevel=WARN", *self.extra_args]

    def force_flush(self) -> None:
        """`/internal/force_flush`: makes rows just written searchable now, not after the
        in-memory buffer's flush interval."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=60) as response:
            response.read()

    def export(self, match: str, start: float, end: float) -> list[dict]:
        """`/api/v1/export`: the raw samples of every series matching `match` in [start, end]."""
        params = urllib.parse.urlencode({"match[]": match, "start": f"{start:.3f}", "end": f"{end:.3f}"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{params}", timeout=300) as response:
            return [json.loads(line) for line in response.read().decode().splitlines() if line.strip()]


def victoriametrics_version() -> str:
    """The package's version (victoria-metrics -version prints nothing in Debian's build)."""
    result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "victoria-metrics"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else "unknown"


# ---------------------------------------------------------------- Prometheus remote write


# Prometheus' staleness marker: a NaN with this exact bit pattern (prometheus/model/value
# StaleNaN); a plain NaN is a sample, not the end of a series.
STALE_NAN_BITS = 0x7FF0000000000002


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _uvarint(number << 3 | 2) + _uvarint(len(payload)) + payload


def write_request(series: list[tuple[dict, list[tuple[int, float | None]]]]) -> bytes:
    """A remote-write WriteRequest (prompb/remote.proto, types.proto): per series its labels
    (sorted by name, as the protocol requires) and (timestamp ms, value) samples; value None
    is a staleness marker."""
    out = bytearray()
    for labels, samples in series:
        ts = bytearray()
        for name, value in sorted(labels.items()):
            ts += _field(1, _field(1, name.encode()) + _field(2, str(value).encode()))
        for stamp, value in samples:
            bits = STALE_NAN_BITS if value is None else struct.unpack("<Q", struct.pack("<d", float(value)))[0]
            sample = b"\x09" + struct.pack("<Q", bits) + b"\x10" + _uvarint(stamp & 0xFFFFFFFFFFFFFFFF)
            ts += _field(2, sample)
        out += _field(1, bytes(ts))
    return bytes(out)


def snappy_literal(data: bytes) -> bytes:
    """Snappy's block format with literals only: valid input for any snappy decoder (the
    format's own description, github.com/google/snappy format_description.txt), no
    compression, no dependency."""
    out = bytearray(_uvarint(len(data)))
    for i in range(0, len(data), 1 << 16):
        chunk = data[i:i + (1 << 16)]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 1 << 8:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2]) + n.to_bytes(2, "little")
        out += chunk
    return bytes(out)


def remote_write(url: str, series: list[tuple[dict, list[tuple[int, float | None]]]], batch: int = 200) -> None:
    """POST the series to a Prometheus remote-write endpoint, `batch` series a request."""
    for i in range(0, len(series), batch):
        body = snappy_literal(write_request(series[i:i + batch]))
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0"})
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                response.read()
        except urllib.error.HTTPError as e:
            # The receiver says which sample it refused and why; urllib's message does not.
            raise RuntimeError(f"remote write to {url}: HTTP {e.code}: {e.read().decode(errors='replace').strip()}") from None
