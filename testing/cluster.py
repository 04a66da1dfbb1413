"""The distributed bot's parts as real processes for the tests and benchmarks: a redis-server of Debian's package on a
free port (no persistence, its own temporary directory), worker machines (`python -m bot.worker`) and fronts
(`python -m bot`), each with its log in a file the test can read."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis import Redis

from bot.cluster import keys
from bot.settings import BotSettings
from testing.fake_telegram import TOKEN
from testing.paths import ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: object, timeout: float, what: str) -> None:
    give_up = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > give_up:
            raise TimeoutError(f"{what} within {timeout:.0f} s")
        time.sleep(0.05)


@dataclass(frozen=True)
class Certificates:
    """A certificate authority and the server certificate it signed for 127.0.0.1, as PEM files."""

    ca: Path
    certificate: Path
    key: Path


def make_certificates(directory: Path) -> Certificates:
    """A throw-away CA and a certificate for a Redis on 127.0.0.1 (and localhost), made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is missing: apt-get install openssl")
    files = Certificates(directory / "ca.crt", directory / "redis.crt", directory / "redis.key")
    ca_key, request, extensions = directory / "ca.key", directory / "redis.csr", directory / "redis.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    sign = ["-CA", files.ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "1", "-extfile", extensions]
    for command in (
        ["req", "-x509", *new_key, "-days", "1", "-keyout", ca_key, "-out", files.ca, "-subj", "/CN=test CA"],
        ["req", *new_key, "-keyout", files.key, "-out", request, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", request, *sign, "-out", files.certificate],
    ):
        subprocess.run([openssl, *map(str, command)], check=True, capture_output=True)
    files.key.chmod(0o600)
    return files


class RedisServer:
    """A real redis-server; restartable on the same port, as an operator's Redis would be. With `tls` it speaks
    only TLS (rediss://, the client checking the server against the CA); with `password` it asks for one."""

    def __init__(self, directory: Path, *, tls: Certificates | None = None, password: str | None = None) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.fail("redis-server is missing: apt-get install redis-server (.ci/run installs it)")
        self.executable = executable
        self.directory = directory
        self.tls = tls
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        login = f":{self.password}@" if self.password else ""
        if self.tls is None:
            return f"redis://{login}127.0.0.1:{self.port}/{db}"
        return f"rediss://{login}127.0.0.1:{self.port}/{db}?ssl_ca_certs={self.tls.ca}"

    def start(self) -> RedisServer:
        listen = ["--port", str(self.port)]
        if self.tls is not None:
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"]
            listen += ["--tls-cert-file", str(self.tls.certificate), "--tls-key-file", str(self.tls.key)]
            listen += ["--tls-ca-cert-file", str(self.tls.ca)]
        if self.password is not None:
            listen += ["--requirepass", self.password]
        private = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen([self.executable, *listen, *private], stdout=subprocess.DEVNULL)
        client = self.client()
        wait_until(lambda: self._answers(client), 10, "redis-server did not start")
        client.close()
        return self

    @staticmethod
    def _answers(client: Redis) -> bool:
        try:
            return bool(client.ping())
        except OSError:
            return False
        except Exception:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def client(self, db: int = 0) -> Redis:
        return Redis.from_url(self.url(db))


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of the test module's own, in a temporary directory, stopped after the module."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


def clean_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any of the bot's settings, plus `settings`."""
    env = {key: value for key, value in os.environ.items() if key.lower() not in BotSettings.model_fields}
    env.update(PYTHONPATH=str(ROOT), **settings)
    return env


class Process:
    """A `python -m ...` child whose stderr goes to a log file."""

    def __init__(self, module: str, log: Path, env: dict[str, str], cwd: Path) -> None:
        self.module, self.log_path, self.env, self.cwd = module, log, env, cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module], env=self.env, cwd=self.cwd, stderr=log, stdout=log
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 30) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def worker(redis_url: str, directory: Path, name: str, processes: int = 1, **settings: str) -> Process:
    env = clean_environment(REDIS_URL=redis_url, WORKERS=str(processes), **settings)
    return Process("bot.worker", directory / f"{name}.log", env, directory).start()


def front(redis_url: str, telegram_url: str, directory: Path, name: str = "front", **settings: str) -> Process:
    env = clean_environment(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=telegram_url, REDIS_URL=redis_url, **settings)
    return Process("bot", directory / f"{name}.log", env, directory).start()


def wait_for_workers(redis: Redis, processes: int, timeout: float = 120) -> None:
    """Until the worker machines have loaded their models and announced `processes` processes in all."""

    def announced() -> bool:
        alive = redis.zrangebyscore(keys.WORKERS, time.time(), "+inf")
        machines = redis.hmget(keys.WORKER_INFO, alive) if alive else []
        return sum(json.loads(machine)["processes"] for machine in machines if machine) >= processes

    wait_until(announced, timeout, f"{processes} worker process(es) did not announce themselves")
