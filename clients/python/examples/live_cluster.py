#!/usr/bin/env python3
"""Exercises stagebeam_client against a running coordinator: status, a blocking submit, the same job
streamed through events() (same seed: same answer), the same with the candidates' text streamed
(same answer; each candidate's pieces concatenate to its text as generated), the result fetched by id, a job cancelled while it
runs and one past its deadline, the client's job list, and the asyncio client. Exits non-zero on any
mismatch. Not part of `make test` (CI needs no Python); see docs/clients.md.

    python clients/python/examples/live_cluster.py --coordinator tcp://127.0.0.1:5555 \
        --image examples/count.png --question "How many red objects are there?"
"""

import argparse
import asyncio
import json
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stagebeam_client import AsyncClient, Client, JobFailed, StagebeamError, stagebeam_pb2 as pb  # noqa: E402


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

        # The candidates' text while it is written: pieces per (step, candidate, attempt), which
        # concatenate to the search record's raw text of each candidate; the answer is unchanged.
        pieces = {}
        streamed = None
        for item in client.events(args.question, args.image, stream_tokens=True, token_interval_s=0.05, **options):
            if isinstance(item, pb.JobEvent) and item.WhichOneof("kind") == "candidate_text":
                text = item.candidate_text
                key = (item.step, text.index)
                attempt, so_far = pieces.get(key, (0, ""))
                pieces[key] = (text.attempt, text.text if text.attempt > attempt else so_far + text.text)
            elif isinstance(item, pb.JobResult):
                streamed = item
        if streamed is None or streamed.answer != result.answer:
            failures.append(f"events(stream_tokens=True) answered {streamed and streamed.answer!r}, submit() {result.answer!r}")
        else:
            raw = {}

            def collect(value, unit=None):
                if isinstance(value, dict):
                    unit = value.get("unit", unit)
                    if "raw_text" in value and "index" in value and unit is not None:
                        raw[(unit, value["index"])] = value["raw_text"]
                    for child in value.values():
                        collect(child, unit)
                elif isinstance(value, list):
                    for child in value:
                        collect(child, unit)

            collect(json.loads(streamed.search_record_json))
            texts = {key: text for key, (_, text) in pieces.items()}
            expected = {key: text for key, text in raw.items() if text}
            print(f"candidate text: {sum(len(t) for t in texts.values())} characters of {len(texts)} candidates streamed")
            if texts != expected:
                failures.append(f"streamed candidate text differs from the record for {sorted(set(texts.items()) ^ set(expected.items()))[:2]}")

        fetched = client.result(result.job_id)
        if fetched.answer != result.answer or fetched.status != pb.JOB_STATUS_SUCCEEDED:
            failures.append(f"result({result.job_id}) gave {pb.JobStatus.Name(fetched.status)} {fetched.answer!r}")
        print(f"result by id: {fetched.answer!r} · prompt tokens {fetched.counts.candidate_prompt_tokens} "
              f"(reused {fetched.counts.candidate_reused_prefix_tokens}) · judge prompt tokens {fetched.counts.judge_prompt_tokens} "
              f"· judge generated tokens {fetched.counts.judge_generated_tokens}")
        try:
            client.result("no-such-job")
            failures.append("an unknown job id was answered")
        except StagebeamError as error:
            if error.code != "unknown_job":
                failures.append(f"unknown job: expected unknown_job, got {error.code}")

        # A job cancelled from this client while a second one waits for it (the waiter hears
        # JobFailed with status cancelled), and one past its deadline.
        long_options = dict(options, beam=max(args.beam, 4), max_stage_tokens=256, seed=args.seed + 1)
        job_id = f"live-cancel-{uuid.uuid4().hex[:8]}"
        heard = []

        def wait_for_it():
            with Client(args.coordinator, timeout_s=args.timeout_s) as waiter:
                try:
                    heard.append(waiter.submit(args.question, args.image, job_id=job_id, **long_options))
                except JobFailed as failed:
                    heard.append(failed.result)

        waiting = threading.Thread(target=wait_for_it)
        waiting.start()
        time.sleep(0.5)
        cancelled = client.cancel(job_id, reason="live_cluster.py")
        waiting.join()
        print(f"cancel: {pb.JobStatus.Name(cancelled.status)} · {cancelled.error.message}")
        if cancelled.status not in (pb.JOB_STATUS_CANCELLED, pb.JOB_STATUS_SUCCEEDED):
            failures.append(f"cancel gave {pb.JobStatus.Name(cancelled.status)}")
        if not heard or heard[0].status != cancelled.status:
            failures.append(f"the waiting client heard {heard and pb.JobStatus.Name(heard[0].status)}")
        try:
            client.submit(args.question, args.image, **dict(long_options, seed=args.seed + 2, deadline_s=0.2))
            failures.append("a job with a 0.2 s deadline succeeded")
        except StagebeamError as error:
            print(f"deadline: {error}")
            if error.code != "deadline_exceeded":
                failures.append(f"deadline: expected deadline_exceeded, got {error.code}")
        listed = [info.job_id for info in client.jobs().jobs]
        if result.job_id not in listed:
            failures.append(f"jobs() does not list {result.job_id}: {listed}")

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
