"""Real-PBX test harness: a test Asterisk instance, SIPp phones and carrier (AMI tap: ami_tap).

Plain classes, so both the pytest fixtures (conftest.py) and the transcript capture script
(capture_transcripts.py) use them. Nothing here is a mock: every call is real SIP and RTP
through the real Asterisk, started by the project's own `hotline pbx` commands.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from asterisk_conf.paths import PbxPaths, pbx_paths
from crm_core.settings import Settings, env_name

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "tests" / "sipp"
CALLER_MOBILE = "13905581234"
AGENTS = [
    {"username": "zhang", "display_name": "张三", "phone_interface": "PJSIP/1001"},
    {"username": "li", "display_name": "李四", "phone_interface": "PJSIP/1002"},
]


def pbx_test_settings(instance: str | None = None, offset: int | None = None) -> Settings:
    """An instance on its own ports, clear of a dev PBX on 5060/5038 (`make run`).

    HOTLINE_TEST_PBX_INSTANCE and HOTLINE_TEST_PBX_OFFSET let two test runs share a machine.
    """
    instance = instance or os.environ.get("HOTLINE_TEST_PBX_INSTANCE", "pytest")
    if offset is None:
        offset = int(os.environ.get("HOTLINE_TEST_PBX_OFFSET", "20000"))
    return Settings().replace(
        pbx_instance=instance,
        sip_port=5060 + offset,
        ami_port=5038 + offset,
        carrier_port=5070 + offset,
        fastagi_port=4573 + offset,  # nothing listens here unless a test says so
        agent_phone_base_port=5080 + offset,
        rtp_start_port=6000 + offset,
        rtp_end_port=6999 + offset,
        ami_secret="pytest-ami-secret",
    )


def settings_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment that makes `hotline` load exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.pop("DATABASE_URL", None)
    for item in dataclasses.fields(Settings):
        env[env_name(item.name)] = str(getattr(settings, item.name))
    env.update(overrides)
    return env


@functools.cache
def sipp_data_dir() -> Path:
    """Where Debian's sip-tester keeps g711a.pcap and the dtmf_2833_*.pcap files."""
    listing = subprocess.run(
        ["dpkg", "-L", "sip-tester"], capture_output=True, text=True, check=True
    ).stdout
    audio = next(line for line in listing.splitlines() if line.endswith("/g711a.pcap"))
    return Path(audio).parent


def missing_tools() -> list[str]:
    return [t for t in ("sipp", "debootstrap", "espeak-ng", "sox") if shutil.which(t) is None]


@dataclass
class PbxUnderTest:
    settings: Settings
    workdir: Path
    agents_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.agents_file = self.workdir / "agents.json"
        self.write_agents(AGENTS)
        # SIPp's media ports just above this instance's RTP range: test processes that run
        # side by side (the Makefile's lanes) each stay inside their own instances' ports.
        Sipp.media_ports_above(self.settings.rtp_end_port + 100)

    @property
    def paths(self) -> PbxPaths:
        return pbx_paths(self.settings)

    def write_agents(self, agents: list[dict[str, str]]) -> None:
        self.agents_file.write_text(json.dumps(agents, ensure_ascii=False), encoding="utf-8")

    def hotline(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run the real `hotline` CLI with this instance's settings (extra env overrides)."""
        return subprocess.run(
            [sys.executable, "-m", "agent_desktop.cli", *args],
            cwd=self.workdir,
            env=settings_env(self.settings, **env),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def start(self) -> None:
        done = self.hotline("pbx", "start", "--agents", str(self.agents_file))
        if done.returncode != 0:
            raise RuntimeError(f"hotline pbx start failed: {done.stdout}{done.stderr}")

    def stop(self) -> None:
        self.hotline("pbx", "stop")

    def cli(self, command: str) -> str:
        done = self.hotline("pbx", "cli", command)
        return done.stdout + done.stderr

    def channels(self) -> list[str]:
        out = self.cli("core show channels concise")
        return [line.split("!")[0] for line in out.splitlines() if "!" in line]

    def phone_port(self, endpoint: str) -> int:
        from asterisk_conf.agents import read_agents_file
        from asterisk_conf.validate import phone_ports

        return phone_ports(self.settings, read_agents_file(self.agents_file))[endpoint]


class Sipp:
    """One SIPp process in its own directory, with the sip-tester pcaps under ./pcap/."""

    _media_port = 30000  # until an instance is made (PbxUnderTest), which moves it
    _media_moved = False

    @classmethod
    def media_ports_above(cls, floor: int) -> None:
        """Never lower once moved: a later instance must not reuse ports still in use."""
        cls._media_port = max(cls._media_port if cls._media_moved else 0, floor)
        cls._media_moved = True

    def __init__(
        self,
        workdir: Path,
        scenario: str,
        args: list[str],
        ring_ms: int | None = None,
        dtmf: str = "1",
        keys: dict[str, str] | None = None,
        replace: dict[str, str] | None = None,
        out_of_call: str | None = None,
    ) -> None:
        """`keys`: more pcap/<name>.pcap links, name -> a DTMF key ("0"-"9", "pound",
        "star") or "silence"; `replace`: text substitutions in the scenario (pauses);
        `out_of_call`: a scenario for requests outside the main one's call (-oocsf)."""
        self.workdir = workdir
        (workdir / "pcap").mkdir(parents=True, exist_ok=True)
        self._link_pcaps(dtmf)
        for name, key in (keys or {}).items():
            target = "g711a" if key == "silence" else f"dtmf_2833_{key}"
            link = workdir / "pcap" / f"{name}.pcap"
            link.unlink(missing_ok=True)
            link.symlink_to(sipp_data_dir() / f"{target}.pcap")
        text = (SCENARIOS / scenario).read_text(encoding="utf-8")
        if ring_ms is not None:
            text = text.replace('timeout="2000"', f'timeout="{ring_ms}"')
        for old, new in (replace or {}).items():
            assert old in text, f"{scenario} has no {old!r}"
            text = text.replace(old, new)
        (workdir / scenario).write_text(text, encoding="utf-8")
        ooc: list[str] = []
        if out_of_call is not None:
            answer = (SCENARIOS / out_of_call).read_text(encoding="utf-8")
            if ring_ms is not None:
                answer = answer.replace('timeout="2000"', f'timeout="{ring_ms}"')
            (workdir / out_of_call).write_text(answer, encoding="utf-8")
            # SIPp 3.6 crashes when -oocsf comes before -sf.
            ooc = ["-oocsf", out_of_call]
        Sipp._media_port += 10
        command = [
            "sipp", *args, "-sf", scenario, *ooc, "-i", "127.0.0.1", "-mi", "127.0.0.1",
            "-mp", str(Sipp._media_port), "-cp", str(Sipp._media_port + 5),
            "-nostdin", "-trace_err", "-trace_msg",
        ]  # fmt: skip
        self.log = (workdir / "sipp.out").open("w")
        self.proc = subprocess.Popen(
            command,
            cwd=workdir,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def _link_pcaps(self, dtmf: str) -> None:
        data = sipp_data_dir()
        for name, target in (("audio", "g711a"), ("dtmf", f"dtmf_2833_{dtmf}")):
            link = self.workdir / "pcap" / f"{name}.pcap"
            link.unlink(missing_ok=True)
            link.symlink_to(data / f"{target}.pcap")

    def wait(self, timeout: float = 120) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def errors(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.workdir.glob("*_errors.log"))


def start_phone(
    pbx: PbxUnderTest, endpoint: str, answer_after_ms: int | None, workdir: Path
) -> Sipp:
    """A SIPp agent phone: rings, answers after answer_after_ms (None: never answers)."""
    scenario = "phone_noanswer.xml" if answer_after_ms is None else "phone_answer.xml"
    args = ["-p", str(pbx.phone_port(endpoint))]
    return Sipp(workdir / f"phone-{endpoint}", scenario, args, answer_after_ms)


def start_registered_phone(
    pbx: PbxUnderTest,
    extension: str,
    secret: str,
    workdir: Path,
    answer_after_ms: int = 2000,
    registered_s: int = 120,
) -> Sipp:
    """A handset that REGISTERs `extension` with its SIP secret (digest auth) from a port of
    its own, then answers the calls the PBX sends to that registration."""
    port = free_udp_port()
    args = [
        f"127.0.0.1:{pbx.settings.sip_port}", "-s", extension, "-au", extension, "-ap", secret,
        "-p", str(port), "-m", "1",
    ]  # fmt: skip
    return Sipp(
        workdir / f"handset-{extension}-{time.monotonic_ns()}",
        "phone_register.xml",
        args,
        answer_after_ms,
        replace={'milliseconds="120000"': f'milliseconds="{registered_s * 1000}"'},
        out_of_call="phone_answer_registered.xml",
    )


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_carrier_phone(pbx: PbxUnderTest, workdir: Path, answer_after_ms: int = 1000) -> Sipp:
    """The carrier as callee (click-to-dial): a UAS on the carrier's address that answers."""
    args = ["-p", str(pbx.settings.carrier_port)]
    return Sipp(workdir / "carrier-uas", "phone_answer.xml", args, answer_after_ms)


def place_call(
    pbx: PbxUnderTest,
    workdir: Path,
    caller: str = CALLER_MOBILE,
    hold_ms: int = 12000,
    dtmf: str = "1",
    caller_name: str = "",
) -> Sipp:
    """The carrier places one inbound call to the 400 number; hangs up hold_ms after answer."""
    s = pbx.settings
    args = [
        f"127.0.0.1:{s.sip_port}", "-s", s.hotline_number, "-p", str(s.carrier_port),
        "-key", "caller", caller, "-key", "caller_name", caller_name or caller,
        "-m", "1", "-d", str(hold_ms),
    ]  # fmt: skip
    return Sipp(workdir / f"carrier-{time.monotonic_ns()}", "carrier_call.xml", args, dtmf=dtmf)


@contextmanager
def listening_but_silent(host: str, port: int) -> Iterator[None]:
    """A FastAGI address that accepts connections and never answers: a hung service."""
    server = socket.create_server((host, port))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


@contextmanager
def tiny_fastagi(host: str, port: int, variables: dict[str, str]) -> Iterator[None]:
    """A FastAGI responder that sets fixed variables; used to capture the AGI success path."""
    server = socket.create_server((host, port))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as stream:
            while stream.readline().strip():
                pass  # the agi_* environment, ended by a blank line
            for name, value in variables.items():
                stream.write(f'SET VARIABLE {name} "{value}"\n'.encode())
                stream.flush()
                stream.readline()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        server.close()


def wav_facts(path: Path) -> tuple[float, float]:
    """(seconds, RMS on the 16-bit scale) of a PCM WAV, with stdlib wave and plain math."""
    import array
    import math
    import wave

    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise AssertionError(f"{path}: expected 16-bit samples")
        frames = wav.readframes(wav.getnframes())
        seconds = wav.getnframes() / wav.getframerate()
    samples = array.array("h", frames)
    if sys.byteorder == "big":
        samples.byteswap()
    rms = math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0
    return seconds, rms


def wait_for_wav(path: Path, timeout: float = 30) -> Path:
    """MixMonitor writes the WAV header sizes when it closes the file; wait for that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.stat().st_size > 44:
            header = path.read_bytes()[:44]
            if int.from_bytes(header[40:44], "little") > 0:
                return path
        time.sleep(0.2)
    raise AssertionError(f"recording {path} was not finished within {timeout}s")
