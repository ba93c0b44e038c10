"""Run sample events through the real `sam local invoke` (a container per invoke) against a local
stack this process starts: moto in server mode and the Buy with Prime sandbox, both bound to the
address Lambda containers reach (the Docker bridge's gateway), each sample on a fresh moto state
seeded like the in-process invoke (devtools/local_invoke.py).

The env file is generated per sample with the real table name, secret ARN, bus and sandbox
endpoints. SAM passes a function only the variables the template declares, so the AWS endpoint
(moto) lives in the image instead: the cached root file system imported with AWS_ENDPOINT_URL set.
ExampleConsumerFunction's broker is served in this process behind a SigV4-checking function URL
(as in the in-process invoke); the consumer itself runs in its container.

    python -m devtools.sam_local.invoke --bind 172.29.93.1 events/health.json ...

prints one JSON object: sample name -> answer (what the in-process `invoke` returns).
"""

# ruff: noqa: S603, S607 - fixed commands: ip, nsenter, dockerd, docker, apt-get, debootstrap, tar, pip, sam
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devtools.sam_local.image import CACHE, ROOT, import_image, recipe_key, rootfs_tarball
from devtools.template import load_template

SAM = ROOT / ".venv-sam" / "bin" / "sam"
VENV_BIN = ROOT / ".venv" / "bin"
REGION, ACCOUNT = "us-east-1", "123456789012"
KEYS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local-invoke"}
MOTO_PORT, SANDBOX_PORT = 4566, 4567  # fixed: the image holds them (a private namespace's ports)


def sam_build(arch: str = "x86_64") -> Path:
    """`sam build` of a copy of template.yaml for `arch` (this machine's: the arm64 wheels cannot
    be imported on x86_64), reused while the template and src/ are unchanged. Returns its template."""
    template: dict[str, Any] = load_template()
    template.setdefault("Globals", {}).setdefault("Function", {})["Architectures"] = [arch]
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            properties = resource["Properties"]
            properties["CodeUri"] = str((ROOT / properties["CodeUri"]).resolve())
            properties.pop("Architectures", None)
    work = CACHE / f"build-{arch}"
    work.mkdir(parents=True, exist_ok=True)
    source = work / "template.json"
    text = json.dumps(template, indent=1)
    digest = hashlib.sha256(text.encode())
    for path in sorted((ROOT / "src").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    build_dir, stamp = work / "build", work / "build" / ".fingerprint"
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return build_dir / "template.yaml"
    source.write_text(text, encoding="utf-8")
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "LAMBDA_ARCH": arch}
    env["SAM_CLI_TELEMETRY"] = "0"
    log = work / "build.log"
    with log.open("wb") as out:
        done = subprocess.run(
            [str(SAM), "build", "-t", str(source), "-b", str(build_dir), "--parallel"],
            check=False,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if done.returncode != 0:
        raise RuntimeError("sam build failed:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
    stamp.write_text(digest.hexdigest())
    return build_dir / "template.yaml"


def lambda_image(bind: str, arch: str = "x86_64") -> str:
    """The local image with AWS_ENDPOINT_URL (moto) and the sandbox's loopback relay baked in (SAM
    passes a function no variable the template does not declare; the settings accept plain http
    for loopback only); its own repository per recipe and address (SAM reuses
    `<repo>:rapid-<arch>` whatever the base's tag)."""
    env = {"AWS_ENDPOINT_URL": f"http://{bind}:{MOTO_PORT}", "LOCAL_FORWARD": f"{SANDBOX_PORT}={bind}:{SANDBOX_PORT}"}
    key = hashlib.sha256(f"{recipe_key(arch)} {sorted(env.items())}".encode()).hexdigest()[:12]
    repository = f"bwp-sam-local-{arch.replace('_', '-')}-{key}"
    present = subprocess.run(["docker", "image", "inspect", f"{repository}:latest"], check=False, capture_output=True)
    if present.returncode == 0:
        return f"{repository}:latest"
    return import_image(rootfs_tarball(arch), repository, env=env)


@contextmanager
def local_stack(bind: str, client_id: str, client_secret: str) -> Iterator[tuple[Any, Any]]:
    """moto (fixed port: the image holds its address) and the sandbox, bound to `bind`."""
    from devtools.local_stack.moto_server import SerialisedMotoServer
    from sandbox.server import BuyWithPrimeSandbox

    moto = SerialisedMotoServer(ip_address=bind, port=MOTO_PORT)
    moto.start()
    relay = socket.create_server((bind, SANDBOX_PORT))  # the containers' way to the loopback sandbox
    threading.Thread(target=_relay, args=(relay, ("127.0.0.1", SANDBOX_PORT)), daemon=True).start()
    try:
        with BuyWithPrimeSandbox(client_id=client_id, client_secret=client_secret, port=SANDBOX_PORT) as sandbox:
            yield moto, sandbox
    finally:
        relay.close()
        moto.stop()


def _relay(listener: socket.socket, target: tuple[str, int]) -> None:
    def pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    while True:
        try:
            client, _ = listener.accept()
            upstream = socket.create_connection(target, timeout=10)
        except OSError:
            if listener.fileno() < 0:
                return  # closed: the stack stopped
            continue
        upstream.settimeout(None)
        threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()


def invoke_all(samples: list[Path], bind: str, template: Path, *, stream_logs: bool = False) -> dict[str, Any]:
    """Every sample through `sam local invoke`; `template` is `sam_build()`'s (built beforehand,
    outside the namespace: the build downloads wheels)."""
    import boto3
    import requests

    from devtools.local_invoke import (
        EVENTS,
        _seed_sample_installation,
        _stored_summary,
        function_env,
        function_for,
        seed_local_resources,
    )

    os.environ.update({**KEYS, "AWS_DEFAULT_REGION": REGION})
    answers: dict[str, Any] = {}
    client_id, client_secret = "amzn1.application-oa2-client.local", secrets.token_urlsafe(24)
    with (
        local_stack(bind, client_id, client_secret) as (_, sandbox),
        tempfile.TemporaryDirectory(prefix="bwp-sam-invoke-") as scratch,
    ):
        endpoint = f"http://{bind}:{MOTO_PORT}"
        os.environ["AWS_ENDPOINT_URL"] = endpoint  # this process's clients (the in-process broker)
        image = lambda_image(bind)
        for sample in samples:
            requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
            function = function_for(sample)
            dynamodb = boto3.client("dynamodb")
            local_names = seed_local_resources(client_id, client_secret)
            endpoints = {  # in a container, its loopback port is relayed to the sandbox's here
                "BWP_AUTHORIZE_URL": sandbox.authorize_url,
                "BWP_TOKEN_URL": sandbox.token_url,
                "BWP_GRAPHQL_URL": sandbox.graphql_url,
            }
            overrides = json.loads((EVENTS / "env.json").read_text(encoding="utf-8")).get(function, {})
            _seed_sample_installation(dynamodb, local_names["InstallationsTable"], sandbox)
            with _broker_url(function, local_names, endpoints, bind) as broker_url:
                if broker_url:
                    overrides = {**overrides, "TOKEN_BROKER_URL": broker_url}
                env = function_env(function, local_names, {**endpoints, **overrides})
                env_file = Path(scratch) / f"{sample.stem}.env.json"
                env_file.write_text(json.dumps({function: env}, indent=1), encoding="utf-8")
                answer = sam_local_invoke(template, function, sample, env_file, image, stream_logs=stream_logs)
            if function == "EventsFunction":
                answer = {"response": answer, "stored": _stored_summary(dynamodb, local_names["InstallationsTable"])}
            answers[sample.stem] = answer
    return answers


@contextmanager
def _broker_url(function: str, local_names: dict[str, str], endpoints: dict[str, str], bind: str) -> Iterator[str]:
    """For the example consumer: TokenBrokerFunction in this process behind a function URL on
    `bind` that checks the consumer's SigV4 signature (made with the keys SAM passes it)."""
    if function != "ExampleConsumerFunction":
        yield ""
        return
    from broker import dependencies
    from broker import handler as broker
    from devtools.apigw import LambdaContext
    from devtools.function_url import LocalFunctionUrl
    from devtools.local_invoke import function_env
    from devtools.template import function_timeout

    deps = dependencies.Dependencies(function_env("TokenBrokerFunction", local_names, endpoints))
    url = LocalFunctionUrl(
        "TokenBrokerFunction",
        secrets={KEYS["AWS_ACCESS_KEY_ID"]: KEYS["AWS_SECRET_ACCESS_KEY"]},
        region=REGION,
        account_id=ACCOUNT,
        host=bind,
    )
    timeout = function_timeout("TokenBrokerFunction")
    url.serve(lambda e: broker.handle(e, deps, LambdaContext("TokenBrokerFunction", timeout)))
    try:
        yield url.url
    finally:
        url.stop()


def sam_local_invoke(
    template: Path, function: str, event: Path, env_file: Path, image: str, *, stream_logs: bool = False
) -> Any:
    command = [str(SAM), "local", "invoke", function, "-t", str(template), "-e", str(event)]
    command += ["--env-vars", str(env_file), "--invoke-image", image, "--skip-pull-image", "--region", REGION]
    env = {**os.environ, **KEYS, "SAM_CLI_TELEMETRY": "0"}
    env.pop("AWS_ENDPOINT_URL", None)  # SAM itself talks to no AWS service here
    started = time.monotonic()
    done = subprocess.run(command, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if stream_logs:
        print(f"--- {event.name} ({time.monotonic() - started:.1f} s)\n{done.stderr}", file=sys.stderr)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"sam local invoke {function} {event.name} failed ({done.returncode}):\n{done.stderr[-4000:]}"
        )
    return json.loads(lines[-1])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", help="the Docker bridge's gateway address")
    parser.add_argument("--logs", action="store_true", help="print each invoke's SAM and function logs")
    parser.add_argument("--in-process", action="store_true", help="the in-process answers instead (no container)")
    parser.add_argument("--output", type=Path, help="write the answers here (stdout carries the logs)")
    parser.add_argument("--template", type=Path, help="sam_build()'s template (default: build it now)")
    parser.add_argument("samples", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.in_process:
        from devtools.local_invoke import invoke

        os.environ.pop("AWS_ENDPOINT_URL", None)
        answers = {sample.stem: invoke(sample) for sample in args.samples}
    else:
        if not args.bind:
            parser.error("--bind is required")
        answers = invoke_all(args.samples, args.bind, args.template or sam_build(), stream_logs=args.logs)
    text = json.dumps(answers, indent=2)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
    sys.exit(main(sys.argv[1:]))
