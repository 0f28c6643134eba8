"""The client: one DEALER socket to the coordinator, one request at a time (as the Swift client)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import AsyncIterator, Iterator, Optional, Sequence, Union

import zmq
import zmq.asyncio

from . import stagebeam_pb2 as pb

PROTOCOL_VERSION = pb.PROTOCOL_VERSION_CURRENT
# The oldest version this client also speaks: the coordinator answers in the highest both speak.
OLDEST_PROTOCOL_VERSION = pb.PROTOCOL_VERSION_OLDEST_SUPPORTED
HEARTBEAT_S = 0.5

_METHODS = {"stage": pb.METHOD_STAGE, "best-of-n": pb.METHOD_BEST_OF_N, "sentence": pb.METHOD_SENTENCE, "greedy": pb.METHOD_GREEDY,
            "stage-beam": pb.METHOD_STAGE_BEAM, "swires": pb.METHOD_SWIRES}
_TOURNAMENTS = {"random": pb.TOURNAMENT_RANDOM, "bracket": pb.TOURNAMENT_BRACKET}
_JUDGE_MODES = {"logprob": pb.VERDICT_MODE_LOGPROB, "generate": pb.VERDICT_MODE_GENERATE}
_STAGES = {"summary": pb.STAGE_SUMMARY, "caption": pb.STAGE_CAPTION, "reasoning": pb.STAGE_REASONING,
           "conclusion": pb.STAGE_CONCLUSION}
# A sampling message carries its temperature as given (0 = greedy): one that sets only top-p sends
# the reference's temperature with it; a top_p of 0 means the recommended one (SubmitJob.sampling).
_REFERENCE_TEMPERATURE = 0.6


class StagebeamError(Exception):
    """An `Error` from the coordinator: `code` is the ErrorCode's name without its prefix, e.g. "no_worker"."""

    def __init__(self, error: "pb.Error"):
        self.code = pb.ErrorCode.Name(error.code).removeprefix("ERROR_CODE_").lower()
        self.message = error.message
        self.job_id = error.job_id
        super().__init__(f"{self.code}: {self.message}")


class JobFailed(StagebeamError):
    """A job that ran and failed, or was cancelled; `result` is its JobResult (`result.status`
    tells JOB_STATUS_FAILED from JOB_STATUS_CANCELLED)."""

    def __init__(self, result: "pb.JobResult"):
        super().__init__(result.error)
        self.result = result


def submit_job(
    question: str,
    image: Union[str, bytes, None] = None,
    *,
    job_id: str = "",
    method: Optional[str] = None,
    beam: Optional[int] = None,
    search_stages: Optional[Sequence[str]] = None,
    tournament: Optional[str] = None,
    judge_mode: Optional[str] = None,
    seed: int = 0,
    max_stage_tokens: Optional[int] = None,
    judge_max_tokens: Optional[int] = None,
    temperature: Optional[float] = None,
    top_p: Optional[float] = None,
    judge_temperature: Optional[float] = None,
    judge_both_orders: bool = False,
    force_tags: Optional[bool] = None,
    record_search: bool = False,
    stream_events: bool = False,
    deadline_s: Optional[float] = None,
    detached: bool = False,
    owner: str = "",
    stream_tokens: bool = False,
    token_interval_s: Optional[float] = None,
    candidates: Optional[int] = None,
    keep: Optional[int] = None,
    retraces: Optional[int] = None,
    z: Optional[float] = None,
    reward_mean: Optional[float] = None,
    reward_std: Optional[float] = None,
) -> "pb.SubmitJob":
    """A SubmitJob with `stagebeam submit`'s option names; options left None stay unset, so the
    coordinator fills them from the model's recommended settings (else the search's defaults).
    `image` is a file path or the encoded file's bytes. `deadline_s`: the job fails with
    deadline_exceeded when it has not finished this long after the coordinator accepted it.
    `detached`: the job runs on when this client goes away (otherwise it is cancelled). `owner`: a
    name to list the job under (`Client.jobs(owner)`). `candidates`, `keep` (stage-beam, swires),
    `retraces`, `z`, `reward_mean` and `reward_std` (swires; the last two together) are `submit`'s
    --candidates, --keep, --retraces, --z, --reward-mean and --reward-std; `search_stages` (stage) is
    --search-stages, as a list of stage names. `stream_tokens` (with
    `stream_events`): also JobEvents of kind `candidate_text` with the candidates' text while workers
    generate it, a piece at most every `token_interval_s` per request (None: the coordinator's 0.25 s)."""
    job = pb.SubmitJob(question=question, job_id=job_id or str(uuid.uuid4()), seed=seed,
                       judge_both_orders=judge_both_orders, record_search=record_search, stream_events=stream_events,
                       detached=detached, owner=owner)
    if deadline_s is not None:
        if not deadline_s > 0:
            raise ValueError(f"deadline_s must be > 0; got {deadline_s!r}")
        job.deadline_ms = deadline_s * 1000
    job.stream_candidate_text = stream_tokens
    if token_interval_s is not None:
        if not token_interval_s > 0:
            raise ValueError(f"token_interval_s must be > 0; got {token_interval_s!r}")
        job.candidate_text_interval_ms = token_interval_s * 1000
    if isinstance(image, (str, os.PathLike)):
        with open(image, "rb") as f:
            job.image = f.read()
    elif image is not None:
        job.image = bytes(image)
    if method is not None:
        job.method = _choice("method", method, _METHODS)
    if beam is not None:
        job.beam = beam
    if search_stages is not None:
        if not search_stages:
            raise ValueError(f"search_stages must name at least one of {', '.join(_STAGES)}")
        job.search_stages.extend(_choice("search_stages", stage, _STAGES) for stage in search_stages)
    if tournament is not None:
        job.tournament = _choice("tournament", tournament, _TOURNAMENTS)
    if judge_mode is not None:
        job.verdict_mode = _choice("judge_mode", judge_mode, _JUDGE_MODES)
    if max_stage_tokens is not None:
        job.max_stage_tokens = max_stage_tokens
    if judge_max_tokens is not None:
        job.max_verdict_tokens = judge_max_tokens
    if force_tags is not None:
        job.force_tags = force_tags  # sets the oneof: presence tells "false" from "unset (true)"
    if temperature is not None or top_p is not None:
        job.sampling.CopyFrom(pb.Sampling(temperature=_REFERENCE_TEMPERATURE if temperature is None else temperature, top_p=top_p or 0))
    if judge_temperature is not None:
        job.judge_sampling.CopyFrom(pb.Sampling(temperature=judge_temperature, top_p=top_p or 0))
    if candidates is not None:
        job.candidates = candidates
    if keep is not None:
        job.keep = keep
    if retraces is not None:
        job.retraces = retraces  # sets the oneof: 0 retraces is a choice, not "unset"
    if z is not None:
        job.reward_z = z
    if (reward_mean is None) != (reward_std is None):
        raise ValueError("give reward_mean and reward_std together")
    if reward_mean is not None:
        job.reward_distribution.CopyFrom(pb.RewardDistribution(mean=reward_mean, std=reward_std))
    return job


def _choice(name: str, value: str, table: dict) -> int:
    if value not in table:
        raise ValueError(f"{name} must be one of {', '.join(table)}; got {value!r}")
    return table[value]


def _frame(**body) -> bytes:
    return pb.Envelope(protocol_version=PROTOCOL_VERSION, min_protocol_version=OLDEST_PROTOCOL_VERSION, **body).SerializeToString()


def _heartbeat() -> bytes:
    return _frame(heartbeat=pb.Heartbeat())


def _socket(context: zmq.Context, endpoint: str) -> zmq.Socket:
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.IDENTITY, f"client-py-{uuid.uuid4().hex[:12]}".encode())
    socket.connect(endpoint)
    return socket


class _Exchange:
    """What one request's replies mean, shared by both clients: events, the result, errors, and
    "unknown" heartbeats (the coordinator restarted) that call for a resubmission. A submission
    reads events and the result; any other request the one body that answers it (`want`, about
    `job_id` when it names a job)."""

    def __init__(self, job: Optional["pb.SubmitJob"] = None, *, want: str = "", job_id: str = ""):
        self.job = job
        self.want = want
        self.job_id = job.job_id if job is not None else job_id

    def read(self, frames: list) -> tuple:
        """("event", JobEvent) | ("result", JobResult) | ("answer", the wanted body) | ("resubmit", None) | ("", None)."""
        envelope = pb.Envelope()
        envelope.ParseFromString(frames[-1])
        kind = envelope.WhichOneof("body")
        if kind == "error" and (not self.job_id or envelope.error.job_id in ("", self.job_id)):
            raise StagebeamError(envelope.error)
        if self.job is None:
            if kind == self.want and (kind != "job_result" or envelope.job_result.job_id == self.job_id):
                return "answer", getattr(envelope, kind)
            if kind == "heartbeat" and not envelope.heartbeat.known and self.want == "job_result":
                return "resubmit", None  # a GetJob that waits, lost by a restarted coordinator
            return "", None
        if kind == "job_event" and envelope.job_event.job_id == self.job.job_id:
            return "event", envelope.job_event
        if kind == "job_result" and envelope.job_result.job_id == self.job.job_id:
            if envelope.job_result.status != pb.JOB_STATUS_SUCCEEDED:
                raise JobFailed(envelope.job_result)
            return "result", envelope.job_result
        if kind == "heartbeat" and not envelope.heartbeat.known:
            return "resubmit", None
        return "", None


class Client:
    """A blocking client. `timeout_s` bounds each request (None: wait as long as the job takes)."""

    def __init__(self, endpoint: str, timeout_s: Optional[float] = None, context: Optional[zmq.Context] = None):
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._socket = _socket(context or zmq.Context.instance(), endpoint)
        self._waited = False  # submitted or waited for a job: the coordinator counts this client

    def close(self) -> None:
        """Closes the socket; after a job, says goodbye first, so that the coordinator cancels this
        client's jobs not submitted `detached` at once (not after its client timeout)."""
        if self._waited:
            self._socket.send(_frame(disconnect=pb.Disconnect(reason="client closed")))
        self._socket.close(linger=100 if self._waited else 0)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def submit(self, question: str, image: Union[str, bytes, None] = None, **options) -> "pb.JobResult":
        """Runs a job and returns its JobResult (raises JobFailed or StagebeamError)."""
        for kind, value in self._run(submit_job(question, image, **options)):
            if kind == "result":
                return value
        raise StagebeamError(pb.Error(code=pb.ERROR_CODE_INTERNAL, message="no result"))

    def events(self, question: str, image: Union[str, bytes, None] = None, **options) -> Iterator:
        """Runs a job with events: yields each JobEvent as it comes, then the JobResult."""
        options["stream_events"] = True
        for kind, value in self._run(submit_job(question, image, **options)):
            if kind in ("event", "result"):
                yield value

    def status(self) -> "pb.StatusReply":
        return self._ask(_Exchange(want="status_reply"), _frame(status_request=pb.StatusRequest()))

    def result(self, job_id: str, wait: bool = False, record_search: bool = False) -> "pb.JobResult":
        """Job `job_id` by id alone: its JobResult when finished (any status, from the journal after a
        coordinator restart); while it is not, with `wait` its final JobResult, else its progress
        (status JOB_STATUS_QUEUED or JOB_STATUS_RUNNING). StagebeamError "unknown_job" for an id the
        coordinator does not know."""
        self._waited = self._waited or wait
        request = _frame(get_job=pb.GetJob(job_id=job_id, wait=wait, record_search=record_search))
        return self._ask(_Exchange(want="job_result", job_id=job_id), request)

    def cancel(self, job_id: str, reason: str = "") -> "pb.JobResult":
        """Cancels job `job_id`; returns its final JobResult (JOB_STATUS_CANCELLED, or what it had
        reached when it finished first)."""
        request = _frame(cancel_job=pb.CancelJob(job_id=job_id, reason=reason))
        return self._ask(_Exchange(want="job_result", job_id=job_id), request)

    def jobs(self, owner: str = "") -> "pb.JobList":
        """The jobs of `owner` (SubmitJob.owner), or with none those submitted from this client."""
        return self._ask(_Exchange(want="job_list"), _frame(list_jobs=pb.ListJobs(owner=owner)))

    def _ask(self, exchange: _Exchange, request: bytes):
        self._socket.send(request)
        for kind, value in self._replies(exchange, resend=request):
            if kind == "answer":
                return value
        raise StagebeamError(pb.Error(code=pb.ERROR_CODE_INTERNAL, message="no answer"))

    def _run(self, job: "pb.SubmitJob") -> Iterator:
        self._waited = True
        submission = _frame(submit_job=job)
        self._socket.send(submission)
        yield from self._replies(_Exchange(job), resend=submission)

    def _replies(self, exchange: _Exchange, resend: Optional[bytes]) -> Iterator:
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        last_beat = time.monotonic()
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise TimeoutError(f"no answer from {self.endpoint} within {self.timeout_s} s")
            if now - last_beat >= HEARTBEAT_S:
                self._socket.send(_heartbeat())
                last_beat = now
            if not self._socket.poll(int(HEARTBEAT_S * 1000)):
                continue
            kind, value = exchange.read(self._socket.recv_multipart())
            if kind == "resubmit" and resend is not None:
                self._socket.send(resend)  # resubmission is idempotent
            elif kind:
                yield kind, value
                if kind in ("result", "answer"):
                    return


class AsyncClient:
    """The asyncio client (zmq.asyncio): `await submit(...)`, `async for x in events(...)`, `await status()`."""

    def __init__(self, endpoint: str, timeout_s: Optional[float] = None, context: Optional[zmq.asyncio.Context] = None):
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._socket = _socket(context or zmq.asyncio.Context.instance(), endpoint)
        self._waited = False

    def close(self) -> None:
        """As `Client.close` (the goodbye is queued without waiting; linger lets it leave)."""
        if self._waited:
            self._socket.send(_frame(disconnect=pb.Disconnect(reason="client closed")))
        self._socket.close(linger=100 if self._waited else 0)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()

    async def submit(self, question: str, image: Union[str, bytes, None] = None, **options) -> "pb.JobResult":
        async for kind, value in self._run(submit_job(question, image, **options)):
            if kind == "result":
                return value
        raise StagebeamError(pb.Error(code=pb.ERROR_CODE_INTERNAL, message="no result"))

    async def events(self, question: str, image: Union[str, bytes, None] = None, **options) -> AsyncIterator:
        options["stream_events"] = True
        async for kind, value in self._run(submit_job(question, image, **options)):
            if kind in ("event", "result"):
                yield value

    async def status(self) -> "pb.StatusReply":
        return await self._ask(_Exchange(want="status_reply"), _frame(status_request=pb.StatusRequest()))

    async def result(self, job_id: str, wait: bool = False, record_search: bool = False) -> "pb.JobResult":
        """As `Client.result`."""
        self._waited = self._waited or wait
        request = _frame(get_job=pb.GetJob(job_id=job_id, wait=wait, record_search=record_search))
        return await self._ask(_Exchange(want="job_result", job_id=job_id), request)

    async def cancel(self, job_id: str, reason: str = "") -> "pb.JobResult":
        """As `Client.cancel`."""
        request = _frame(cancel_job=pb.CancelJob(job_id=job_id, reason=reason))
        return await self._ask(_Exchange(want="job_result", job_id=job_id), request)

    async def jobs(self, owner: str = "") -> "pb.JobList":
        """As `Client.jobs`."""
        return await self._ask(_Exchange(want="job_list"), _frame(list_jobs=pb.ListJobs(owner=owner)))

    async def _ask(self, exchange: _Exchange, request: bytes):
        await self._socket.send(request)
        async for kind, value in self._replies(exchange, resend=request):
            if kind == "answer":
                return value
        raise StagebeamError(pb.Error(code=pb.ERROR_CODE_INTERNAL, message="no answer"))

    async def _run(self, job: "pb.SubmitJob") -> AsyncIterator:
        self._waited = True
        submission = _frame(submit_job=job)
        await self._socket.send(submission)
        async for item in self._replies(_Exchange(job), resend=submission):
            yield item

    async def _replies(self, exchange: _Exchange, resend: Optional[bytes]) -> AsyncIterator:
        loop = asyncio.get_running_loop()
        deadline = None if self.timeout_s is None else loop.time() + self.timeout_s
        last_beat = loop.time()
        while True:
            now = loop.time()
            if deadline is not None and now >= deadline:
                raise TimeoutError(f"no answer from {self.endpoint} within {self.timeout_s} s")
            if now - last_beat >= HEARTBEAT_S:
                await self._socket.send(_heartbeat())
                last_beat = now
            if not await self._socket.poll(int(HEARTBEAT_S * 1000)):
                continue
            kind, value = exchange.read(await self._socket.recv_multipart())
            if kind == "resubmit" and resend is not None:
                await self._socket.send(resend)
            elif kind:
                yield kind, value
                if kind in ("result", "answer"):
                    return
