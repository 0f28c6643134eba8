"""A client of a stagebeam coordinator over ZeroMQ (pyzmq + the protobuf code generated from
proto/stagebeam.proto): submit a job and wait for its result, follow its events, ask for status.

    from stagebeam_client import Client
    with Client("tcp://127.0.0.1:5555") as client:
        result = client.submit("How many red objects are there?", image="examples/count.png", beam=4)
        print(result.answer)

`AsyncClient` is the same on asyncio.
"""

from .client import AsyncClient, Client, JobFailed, StagebeamError, submit_job

__all__ = ["AsyncClient", "Client", "JobFailed", "StagebeamError", "submit_job"]
