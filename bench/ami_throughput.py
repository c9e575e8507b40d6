"""Maximum sustained AMI events/s through AmiClient before handling lags 1 s behind.

A fake AMI server in its own process replays the real transcript events
(tests/fixtures/ami/*.txt) at a fixed rate, in 10 ms batches, each batch followed by a
``BenchMark`` event carrying its send time (CLOCK_MONOTONIC is shared by processes). The
client's handler does a little of what the call tracker does (header look-ups) and measures
the lag of every marker. The rate climbs until the lag exceeds 1 s or the client falls behind;
the highest rate that held is the figure.

    .venv/bin/python bench/ami_throughput.py [--seconds 4] [--start 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cti.ami_client import AmiClient, AmiEvent, AmiServer  # noqa: E402
from cti.ami_frames import FrameDecoder  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "ami"
SECRET = "bench"
LAG_LIMIT_NS = 1_000_000_000
TICK = 0.01


def transcript_events() -> list[bytes]:
    """The raw wire bytes of every event in the fixtures (no replies, no list items)."""
    frames: list[bytes] = []
    for path in sorted(FIXTURES.glob("*.txt")):
        for chunk in path.read_bytes().split(b"\r\n\r\n"):
            if chunk.startswith(b"Event: ") and b"\r\nActionID: " not in chunk:
                frames.append(chunk + b"\r\n\r\n")
    return frames


# -- the fake server (child process) --------------------------------------------------------


def serve(port: int) -> None:
    asyncio.run(_serve_forever(port))


async def _serve_forever(port: int) -> None:
    events = transcript_events()
    server = await asyncio.start_server(
        lambda r, w: _session(r, w, events), "127.0.0.1", port, reuse_address=True
    )
    async with server:
        await server.serve_forever()


async def _session(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, events: list[bytes]
) -> None:
    writer.write(b"Asterisk Call Manager/11.0.0\r\n")
    decoder = FrameDecoder()
    streams: set[asyncio.Task[None]] = set()  # streamed beside the reads: Pings still answered
    while data := await reader.read(65536):
        for frame in decoder.feed(data, 0):
            action, aid = frame.headers.get("Action"), frame.headers.get("ActionID", "")
            ok = f"Response: Success\r\nActionID: {aid}\r\n"
            if action == "BenchRun":
                writer.write(f"{ok}\r\n".encode())
                rate, seconds = int(frame.headers["Rate"]), float(frame.headers["Seconds"])
                task = asyncio.create_task(_stream(writer, events, rate, seconds))
                streams.add(task)
                task.add_done_callback(streams.discard)
            elif action == "Logoff":
                writer.write(f"Response: Goodbye\r\nActionID: {aid}\r\n\r\n".encode())
            else:
                writer.write(f"{ok}Ping: Pong\r\n\r\n".encode())
    writer.close()


async def _stream(
    writer: asyncio.StreamWriter, events: list[bytes], rate: int, seconds: float
) -> None:
    began = time.monotonic()
    sent = 0
    index = 0
    while (elapsed := time.monotonic() - began) < seconds:
        due = int(rate * elapsed) - sent
        if due > 0:
            batch = []
            for _ in range(due):
                batch.append(events[index])
                index = (index + 1) % len(events)
            mark = f"Event: BenchMark\r\nSent: {time.monotonic_ns()}\r\n\r\n".encode()
            writer.write(b"".join(batch) + mark)
            sent += due
            await writer.drain()
        await asyncio.sleep(TICK)
    writer.write(f"Event: BenchDone\r\nSent: {sent}\r\n\r\n".encode())
    await writer.drain()


# -- the measuring client ---------------------------------------------------------------------


class Meter:
    def __init__(self) -> None:
        self.handled = 0
        self.max_lag_ns = 0
        self.done: asyncio.Future[int] | None = None
        self.calls: dict[str, str] = {}

    def on_event(self, event: AmiEvent) -> None:
        self.handled += 1
        if event.name == "BenchMark":
            self.max_lag_ns = max(self.max_lag_ns, time.monotonic_ns() - int(event["Sent"]))
        elif event.name == "BenchDone":
            if self.done is not None and not self.done.done():
                self.done.set_result(int(event["Sent"]))
        else:  # about what the tracker does per event
            linkedid = event.get("Linkedid")
            if linkedid:
                self.calls[linkedid] = event.name

    def reset(self) -> None:
        self.handled = 0
        self.max_lag_ns = 0
        self.done = asyncio.get_running_loop().create_future()


async def run_step(client: AmiClient, meter: Meter, rate: int, seconds: float) -> tuple[bool, str]:
    meter.reset()
    began = time.monotonic()
    await client.action("bench", {"Action": "BenchRun", "Rate": str(rate), "Seconds": str(seconds)})
    assert meter.done is not None
    try:
        async with asyncio.timeout(seconds + 30):
            sent = await meter.done
    except TimeoutError:
        return False, "never caught up"
    took = time.monotonic() - began
    lag = meter.max_lag_ns / 1e9
    achieved = sent / took
    held = meter.max_lag_ns < LAG_LIMIT_NS
    return held, f"offered {rate:>7,}/s  handled {achieved:>9,.0f}/s  max lag {lag * 1000:8.1f} ms"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def decoder_only_rate() -> float:
    """Frames/s through FrameDecoder alone, best of three (the machine is shared)."""
    data = b"".join(transcript_events()) * 20
    rates = []
    for _ in range(3):
        began = time.perf_counter()
        decoder = FrameDecoder()
        count = 0
        for offset in range(0, len(data), 65536):
            count += len(decoder.feed(data[offset : offset + 65536], 0))
        rates.append(count / (time.perf_counter() - began))
    return max(rates)


async def measure(seconds: float, start_rate: int) -> int:
    port = free_port()
    child = multiprocessing.get_context("spawn").Process(target=serve, args=(port,), daemon=True)
    child.start()
    meter = Meter()
    server = AmiServer("bench", "127.0.0.1", port, "bench", SECRET)
    client = AmiClient([server], meter.on_event, ping_interval=2.0, ping_timeout=3.0)
    best = 0
    try:
        await client.start()
        await client.wait_connected("bench", 30)
        rate = start_rate
        while rate <= 1_000_000:
            held, line = await run_step(client, meter, rate, seconds)
            print(("held  " if held else "LAGGED") + "  " + line, flush=True)
            if not held or not client.connected("bench"):
                break
            best = rate
            rate = int(rate * 1.5)
    finally:
        await client.stop()
        child.terminate()
        child.join(5)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each rate step")
    parser.add_argument("--start", type=int, default=2000, help="first offered rate (events/s)")
    args = parser.parse_args()
    print(f"transcript events: {len(transcript_events())}; decoder alone: "
          f"{decoder_only_rate():,.0f} frames/s")  # fmt: skip
    best = asyncio.run(measure(args.seconds, args.start))
    print(f"max sustained AMI events/s through AmiClient (lag < 1 s): {best:,}")


if __name__ == "__main__":
    main()
