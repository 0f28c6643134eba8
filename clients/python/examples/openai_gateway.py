#!/usr/bin/env python3
"""Uses the official `openai` package against `stagebeam gateway`: lists the models, asks a question
about an image (a data URL) with stage-level search options as extra body fields, then the same request
streamed; the streamed deltas must concatenate to the non-streamed answer. Not part of `make test`.

    python clients/python/examples/openai_gateway.py --base-url http://127.0.0.1:8000/v1 \
        --image examples/count.png --question "How many red objects are there?"
"""

import argparse
import base64
import mimetypes
import sys

import openai


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--api-key", default="unused", help="a key of the gateway's --api-keys-file, if it has one")
    parser.add_argument("--question", default="How many red objects are there?")
    parser.add_argument("--image", default=None)
    parser.add_argument("--beam", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, timeout=600)
    models = [model.id for model in client.models.list()]
    print("models:", models)

    content = [{"type": "text", "text": args.question}]
    if args.image:
        kind = mimetypes.guess_type(args.image)[0] or "image/png"
        with open(args.image, "rb") as f:
            url = f"data:{kind};base64,{base64.b64encode(f.read()).decode()}"
        content.append({"type": "image_url", "image_url": {"url": url}})
    request = dict(model=models[0] if models else "stagebeam", messages=[{"role": "user", "content": content}],
                   seed=args.seed, extra_body={"beam": args.beam, "method": "stage", "tournament": "bracket"})

    completion = client.chat.completions.create(**request)
    answer = completion.choices[0].message.content
    print(answer)
    print("usage:", completion.usage.model_dump() if completion.usage else None)

    deltas = []
    for chunk in client.chat.completions.create(stream=True, **request):
        if chunk.choices and chunk.choices[0].delta.content:
            deltas.append(chunk.choices[0].delta.content)
            print(f"  delta {len(deltas)}: {chunk.choices[0].delta.content.strip()[:60]!r}")
    failures = []
    if "".join(deltas) != answer:
        failures.append("the streamed deltas do not concatenate to the non-streamed answer")

    try:
        client.chat.completions.create(model=request["model"], messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}])
        failures.append("an http image URL was accepted")
    except openai.BadRequestError as error:
        print("http image URL refused:", error.status_code, error.body)

    for failure in failures:
        print("FAIL:", failure, file=sys.stderr)
    print("openai package: ok" if not failures else f"openai package: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
