"""Checks that stop a baseline run with a clear message BEFORE any work (model loading, training,
lm-eval start-up): an unknown model name or path, a model reference lm-eval's argument syntax
cannot carry, a missing API key, an unreachable endpoint, an endpoint that refuses the key or
does not answer JSON, a damaged adapter, a backend that cannot run here.

Every check is cheap and offline-safe: local paths are looked at on disk, Hub names in the local
Hugging Face cache (`try_to_load_from_cache`); only when a name is not cached and offline mode
is off do we ask the Hub, with a short timeout, whether it exists.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.integrity import adapter_problems
from taiyi_bench.harness.lmeval.preflight import HUB_ID, looks_like_path, offline_mode
from taiyi_bench.harness.local_models import LOCAL_MODELS, LOCAL_PREFIX
from taiyi_bench.harness.model_args_check import model_arg_problem

DEFAULT_TIMEOUT_S = 3.0


class PreflightError(ConfigError):
    """A run cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from. `location` is a directory (local kinds) or a Hub repo id."""

    requested: str
    kind: Literal["builtin", "path", "hub"]
    location: str


def resolve_model(name: str) -> ModelSource:
    """Classify a model name; raises PreflightError for a missing local path or a malformed name.

    `local:<name>` is built/located through taiyi_bench.harness.local_models; an existing directory is a
    path; `org/name` is a Hub id. Anything else is rejected here rather than by a stack trace
    from deep inside transformers.
    """
    name = name.strip()
    if not name:
        raise PreflightError("no model given")
    problem = model_arg_problem("model", name)
    if problem:  # the location is passed on as pretrained=<it>: it must be one key=value item
        raise PreflightError(problem)
    if name.startswith(LOCAL_PREFIX):
        key = name[len(LOCAL_PREFIX):]
        if key not in LOCAL_MODELS:
            raise PreflightError(f"unknown local model {name!r}; local models: {', '.join(LOCAL_PREFIX + k for k in LOCAL_MODELS)}")
        try:
            return ModelSource(name, "builtin", str(LOCAL_MODELS[key].folder()))
        except (FileNotFoundError, ImportError) as exc:
            raise PreflightError(f"local model {name!r} is not available: {exc}") from exc
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise PreflightError(f"model path {path} is a file; give the model directory")
        return ModelSource(name, "path", str(path.resolve()))
    if looks_like_path(name) or not HUB_ID.match(name):
        raise PreflightError(
            f"model {name!r} is neither an existing directory nor a Hugging Face model id (org/name): "
            f"{path} does not exist"
        )
    return ModelSource(name, "hub", name)


def check_model_available(source: ModelSource, *, revision: str | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> None:
    """Raise PreflightError unless the model can be loaded here.

    A directory must hold a config.json (or a .gguf file). A Hub id must be in the local cache,
    or - when offline mode is off - known to the Hub (asked once, with `timeout`).
    """
    if source.kind in ("builtin", "path"):
        folder = Path(source.location)
        if not (folder / "config.json").is_file() and not any(folder.glob("*.gguf")):
            raise PreflightError(f"{folder} is not a model directory (no config.json or .gguf file)")
        return
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(source.location, "config.json", revision=revision)
    if isinstance(cached, str):
        return
    if offline_mode():
        raise PreflightError(
            f"model {source.location!r} is not in the local Hugging Face cache and offline mode is on "
            "(HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE), so it cannot be resolved. Download it first "
            f"(`huggingface-cli download {source.location}`) or give a local directory."
        )
    _ask_hub(source.location, revision, timeout)


def _ask_hub(repo_id: str, revision: str | None, timeout: float) -> None:
    from huggingface_hub import HfApi
    from huggingface_hub.utils import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        HfApi().model_info(repo_id, revision=revision, timeout=timeout)
    except GatedRepoError as exc:
        raise PreflightError(
            f"model {repo_id!r} is gated on the Hub: accept its licence on huggingface.co and export HF_TOKEN"
        ) from exc
    except RepositoryNotFoundError as exc:
        raise PreflightError(
            f"model {repo_id!r} does not exist on the Hugging Face Hub (or is private: export HF_TOKEN), "
            "and it is not a local directory"
        ) from exc
    except RevisionNotFoundError as exc:
        raise PreflightError(f"model {repo_id!r} has no revision {revision!r}") from exc
    except HfHubHTTPError as exc:
        raise PreflightError(f"the Hugging Face Hub refused model {repo_id!r}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - any network failure means the same thing here
        raise PreflightError(
            f"model {repo_id!r} is not in the local Hugging Face cache and the Hub could not be reached "
            f"({type(exc).__name__}: {exc}). Download it where there is network, or give a local directory."
        ) from exc


def check_api_key(env_name: str, config_name: str = "") -> None:
    """The API key must be in the environment variable the config names. Its value is never shown."""
    if not os.environ.get(env_name, "").strip():
        where = f" (config {config_name}: endpoint.api_key_env)" if config_name else ""
        raise PreflightError(f"the API key environment variable ${env_name} is not set or empty{where}; export it first")


def check_endpoint(base_url: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
    """The endpoint must accept a TCP connection and answer HTTP (any status: 401/404/405 still
    prove a server is there). No credentials are sent."""
    parsed = urlparse(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise PreflightError(f"endpoint {base_url!r} is not an http(s) URL")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        raise PreflightError(
            f"endpoint {base_url} is unreachable: cannot connect to {parsed.hostname}:{port} within {timeout:g}s ({exc})"
        ) from exc
    request = urllib.request.Request(base_url, method="GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310 - scheme checked above
            pass
    except urllib.error.HTTPError:
        return  # the server answered
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PreflightError(f"endpoint {base_url} accepted a connection but did not answer HTTP within {timeout:g}s ({exc})") from exc


# The test request: one token, greedy. It is what lm-eval sends a moment later, so it proves the
# URL, the key and the model name at the cost of a few tokens.
_PROBE_MESSAGES = [{"role": "user", "content": "Reply with the single word OK."}]


def check_chat_endpoint(
    base_url: str, model: str, api_key_env: str, *, timeout: float = DEFAULT_TIMEOUT_S, config_name: str = ""
) -> None:
    """Send one 1-token chat completion, as lm-eval will, and stop on an answer lm-eval cannot use:
    the key refused (401/403), no such URL or model (404), a server error (5xx), or an answer that
    is not chat-completions JSON (a web page, a proxy's login page). Other refusals (400, 429:
    the request shape or a rate limit) prove the server and the key, and pass."""
    where = f" (config {config_name})" if config_name else ""
    body = json.dumps({"model": model, "messages": _PROBE_MESSAGES, "max_tokens": 1, "temperature": 0}).encode()
    request = urllib.request.Request(  # noqa: S310 - check_endpoint checked the scheme
        base_url, data=body, method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {os.environ.get(api_key_env, '')}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=max(timeout, 30.0)) as response:  # noqa: S310
            status, content_type, payload = response.status, response.headers.get("Content-Type", ""), response.read(1 << 20)
    except urllib.error.HTTPError as exc:
        status, content_type, payload = exc.code, exc.headers.get("Content-Type", "") if exc.headers else "", exc.read(1 << 16)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PreflightError(f"endpoint {base_url} did not answer a 1-token test request ({exc}){where}") from exc
    detail = _error_detail(payload)
    if status in (401, 403):
        raise PreflightError(
            f"endpoint {base_url} refused the API key in ${api_key_env} (HTTP {status}{detail}){where}: "
            "check that the key is valid and meant for this server"
        )
    if status == 404:
        raise PreflightError(
            f"endpoint {base_url} answered HTTP 404 for model {model!r}{detail}{where}: check endpoint.base_url "
            "(the full .../chat/completions URL) and the model name"
        )
    if status >= 500:
        raise PreflightError(f"endpoint {base_url} failed a 1-token test request (HTTP {status}{detail}){where}")
    if 200 <= status < 300:
        try:
            answer = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            answer = None
        if not isinstance(answer, dict) or "choices" not in answer:
            shown = content_type.split(";")[0] or "no content type"
            raise PreflightError(
                f"endpoint {base_url} answered HTTP {status} with {'JSON without choices' if isinstance(answer, dict) else shown}, "
                f"not a chat completion{where}: it is not an OpenAI-compatible chat-completions URL"
            )


def _error_detail(payload: bytes) -> str:
    """`: <message>` from an OpenAI-style error body, else ""."""
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
    if message is None and isinstance(data, dict):
        message = data.get("detail") if isinstance(data.get("detail"), str) else None
    return f": {' '.join(str(message).split())[:200]}" if message else ""


def check_adapter_reference(setting: str, value: str) -> None:
    """An adapter given in model_args (`peft=`): a local folder must hold a complete adapter (a
    `taiyi finetune` stage adapter with its marker); a Hub id is left to lm-eval."""
    path = Path(value).expanduser()
    if path.exists() or looks_like_path(value):
        problems = adapter_problems(path)
        if problems:
            raise PreflightError(f"{setting}: " + "; ".join(problems))


def check_backend(backend: str) -> None:
    """Backends with hard requirements that fail late inside lm-eval: say so now."""
    if backend == "vllm":
        if importlib.util.find_spec("vllm") is None:
            raise PreflightError("backend vllm needs the vllm package: pip install 'taiyi-bench[vllm]'")
        import torch

        if not torch.cuda.is_available():
            raise PreflightError("backend vllm needs a CUDA GPU; none is visible here (use the hf backend on CPU)")
    if backend in ("local-chat-completions", "openai-chat-completions"):
        missing = [m for m in ("aiohttp", "tenacity", "requests") if importlib.util.find_spec(m) is None]
        if missing:
            raise PreflightError(f"backend {backend} needs {', '.join(missing)}: pip install 'taiyi-bench[api]'")
