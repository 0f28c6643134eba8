#!/usr/bin/env python3
"""Exercises stagebeam_client against a running coordinator: status, a blocking submit, the same job
streamed through events() (same seed: same answer), and the asyncio client. Exits non-zero on any
mismatch. Not part of `make test` (CI needs no Python); see docs/clients.md.

    python clients/python/examples/live_cluster.py --coordinator tcp://127.0.0.1:5555 \
        --image examples/count.png --question "How many red objects are there?"
"""

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stagebeam_client import AsyncClient, Client, StagebeamError, stagebeam_pb2 as pb  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--coordinator", default="tcp://127.0.0.1:5555")
    parser.add_argument("--question", default="How many red objects are there?")
    parser.add_argument("--image", default=None)
    parser.add_argument("--beam", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout-s", type=float, default=300)
    args = parser.parse_args()
    options = dict(beam=args.beam, seed=args.seed, record_search=True)
    failures = []

    with Client(args.coordinator, timeout_s=args.timeout_s) as client:
        status = client.status()
        print(f"status: {len(status.workers)} workers ({', '.join(sorted({w.model_name for w in status.workers}))}), "
              f"protocol {status.protocol_version}")
        started = time.monotonic()
        result = client.submit(args.question, args.image, **options)
        print(f"submit: {result.answer!r} · {result.counts.candidates} candidates · {result.counts.judge_calls} judge calls "
              f"· {time.monotonic() - started:.1f} s")

        winners = []
        final = None
        for item in client.events(args.question, args.image, **options):
            if isinstance(item, pb.JobEvent):
                if item.WhichOneof("kind") == "winner":
                    winners.append((pb.Stage.Name(item.stage), item.winner.text))
                    print(f"  event: {pb.Stage.Name(item.stage)} winner {item.winner.index}: {item.winner.text.strip()[:60]!r}")
            else:
                final = item
        if final is None or final.answer != result.answer:
            failures.append(f"events() ended with {final and final.answer!r}, submit() answered {result.answer!r}")
        if [stage.text for stage in final.stages] != [stage.text for stage in result.stages]:
            failures.append("events() and submit() chose different stage texts for the same seed")
        if len(winners) != 4:
            failures.append(f"expected 4 stage winners, got {len(winners)}")

        try:
            client.submit("   ", None)
            failures.append("an empty question was accepted")
        except StagebeamError as error:
            print(f"empty question refused: {error}")
            if error.code != "invalid_argument":
                failures.append(f"empty question: expected invalid_argument, got {error.code}")

    async def run_async():
        async with AsyncClient(args.coordinator, timeout_s=args.timeout_s) as client:
            await client.status()
            events = [item async for item in client.events(args.question, args.image, **options)]
            return events[-1]

    async_result = asyncio.run(run_async())
    print(f"async: {async_result.answer!r}")
    if async_result.answer != result.answer:
        failures.append(f"AsyncClient answered {async_result.answer!r}, Client {result.answer!r}")

    for failure in failures:
        print("FAIL:", failure, file=sys.stderr)
    print("python client: ok" if not failures else f"python client: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
