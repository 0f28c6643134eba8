#!/usr/bin/env python3
"""What batching saves a reward worker: the same reward requests scored one at a time, then all at once.

Binds a ROUTER socket standing in for the coordinator and starts `stagebeam worker --roles reward` on it
(self-reward on --model, or a reward-only worker with --reward-model). Each round sends REQUESTS reward
requests of CANDIDATES candidates each, other questions and candidates as other jobs' requests would be:
first one at a time (each sent when the previous is answered: what a worker that scores every request on
its own does), then all at once (those that wait for the engine together are scored in one batch). Prints
the median seconds per round of each way, the speed-up, the batch sizes the worker reported, and checks
that every score has the same bits both ways. The first round of each way warms the worker and is not
counted.

    python scripts/bench/reward-batching.py [--requests 8] [--candidates 4] [--rounds 5]
        [--model models/stagebeam-shapes] [--reward-model models/stagebeam-shapes-reward] [--threads 2]

Needs pyzmq and protobuf (the Python client's dependencies); STAGEBEAM picks the executable (default:
the release build, else the debug build).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import zmq

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(root, "clients", "python"))
from stagebeam_client import stagebeam_pb2 as pb  # noqa: E402

QUESTIONS = [
    "How many red objects are there?",
    "Remove all large circles. How many objects are left?",
    "Are there fewer small red objects than large green objects?",
    "What shape is the largest blue object?",
    "Is there a triangle left of the green square?",
    "How many objects are not circles?",
    "What color is the small square?",
    "Are all the circles the same size?",
]
PLANS = [
    "I will find every object of the asked color, count them one by one, and give the number.",
    "First I list the objects in the image, then remove the ones the question names, then count the rest.",
    "I compare the two groups the question names by counting each of them separately.",
    "I look for the objects that match the description and read off the property the question asks about.",
    "The question needs a count: I go over the image from left to right and count what matches.",
    "I check the position of each object relative to the other one and answer yes or no.",
]


def envelope(**body):
    return pb.Envelope(protocol_version=pb.PROTOCOL_VERSION_CURRENT, min_protocol_version=1, **body).SerializeToString()


def reward_request(request_id, question_index, candidates):
    question = QUESTIONS[question_index % len(QUESTIONS)]
    request = pb.RewardRequest(
        request_id=request_id, job_id=f"job-{question_index}", stage=pb.STAGE_SUMMARY, question=question,
        assistant_prefixes=["<SUMMARY>"],
        verification="Is the SUMMARY above a sound plan for answering the question, without solving it? "
        f"Question: {question} Answer yes or no.",
        verdict_prefix="Correct:", choices=[" yes", " no"])
    for c in range(candidates):
        plan = PLANS[(question_index + c) % len(PLANS)]
        request.candidates.add(prefix_index=0, text=f"{plan} (plan {c + 1} for question {question_index + 1})</SUMMARY>")
    return request


class Coordinator:
    """The ROUTER end: answers the worker's heartbeats, sends requests, collects results."""

    def __init__(self):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.route = None

    def next(self, timeout_s=120):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.socket.poll(int((deadline - time.monotonic()) * 1000)):
                break
            route, frame = self.socket.recv_multipart()
            message = pb.Envelope.FromString(frame)
            kind = message.WhichOneof("body")
            if kind == "heartbeat":
                self.socket.send_multipart([route, envelope(heartbeat=pb.Heartbeat(known=True))])
            elif kind == "ready":
                self.route = route
                return message.ready
            elif kind == "error":
                raise RuntimeError(f"worker error: {message.error}")
            else:
                return getattr(message, kind)
        raise RuntimeError("no answer from the worker")

    def send(self, request):
        self.socket.send_multipart([self.route, envelope(reward_request=request)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", default=os.path.join(root, "models", "stagebeam-shapes"))
    parser.add_argument("--reward-model")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    binary = os.environ.get("STAGEBEAM") or next(
        (p for p in (os.path.join(root, ".build", b, "stagebeam") for b in ("release", "debug")) if os.access(p, os.X_OK)), None)
    if not binary:
        sys.exit("reward-batching.py: no stagebeam executable (swift build -c release --product stagebeam, or STAGEBEAM=...)")
    coordinator = Coordinator()
    credits = args.requests * args.candidates
    command = [binary, "worker", "--coordinator", coordinator.endpoint, "--roles", "reward", "--worker-id", "bench",
               "--max-batch", str(credits), "--threads", str(args.threads), "--model", args.model,
               "--heartbeat-ms", "100", "--liveness", "100"]
    if args.reward_model:
        command += ["--reward-model", args.reward_model]
    log = tempfile.TemporaryFile()
    worker = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = coordinator.next()
        scorer = f"{pb.RewardModelKind.Name(ready.reward_model_kind)} {ready.reward_model_name}"
        alone_seconds, batched_seconds, batch_sizes = [], [], []
        same = True
        for round_index in range(args.rounds + 1):
            requests = [reward_request(f"{round_index}-{k}-{uuid.uuid4().hex[:6]}", k, args.candidates) for k in range(args.requests)]
            alone = {}
            start = time.perf_counter()
            for request in requests:
                coordinator.send(request)
                result = coordinator.next()
                alone[result.request_id] = list(result.scores)
            elapsed_alone = time.perf_counter() - start
            start = time.perf_counter()
            for request in requests:
                coordinator.send(request)
            batched = {}
            sizes = []
            for _ in requests:
                result = coordinator.next()
                batched[result.request_id] = list(result.scores)
                sizes.append(result.batch_requests)
            elapsed_batched = time.perf_counter() - start
            same = same and batched == alone
            if round_index > 0:
                alone_seconds.append(elapsed_alone)
                batched_seconds.append(elapsed_batched)
                batch_sizes += sizes
        a, b = statistics.median(alone_seconds), statistics.median(batched_seconds)
        print(f"worker: {scorer} · {args.requests} requests × {args.candidates} candidates per round · "
              f"{args.rounds} rounds · {args.threads} threads · {binary}")
        print(f"one at a time: {a:.3f} s per round ({a / args.requests * 1000:.1f} ms per request)")
        print(f"all at once:   {b:.3f} s per round ({b / args.requests * 1000:.1f} ms per request) · "
              f"{a / b:.2f}× · requests per batch seen by a request: median {statistics.median(batch_sizes):.0f}, "
              f"max {max(batch_sizes)}")
        print("scores: same bits alone and batched" if same else "scores: DIFFERENT alone and batched")
        if not same:
            sys.exit(1)
    finally:
        worker.terminate()
        worker.wait()


if __name__ == "__main__":
    main()
