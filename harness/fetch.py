"""`taiyi data fetch`, the library part: get a set's files from the sources its registry entry
records (`DatasetSpec.sources`), verify each against the registry's sha256, and place it where
the readers look (`<data dir>/<data_subdir>/<file name>`). What users see (mirrors, proxies
through urllib, the cache, `--allow-unverified`) is in the README's "Data" section.

What it guarantees:
- Nothing is written in the data directory before it verified: a download goes to the cache as
  `<name>.part` (resumed with an HTTP Range request), an archive member is extracted inside the
  cache, and a verified file is copied into the set's folder under a temporary name and moved
  into place. A reader never sees half a file, after Ctrl-C or a full disk included.
- A file whose sha256 differs from the registry's is moved aside in the cache
  (`*.rejected-<sha256>`) and named, never used. One the registry has no sha256 for is fetched
  only with `allow_unverified`, and the sha256 seen is recorded in the data directory's
  `taiyi-fetch.json` (the registry can adopt it once someone has checked the file).
- A set lands whole or not at all, and one failing set does not stop the others. An unreachable
  proxy or a full disk (`FetchAborted`) stops the run: every set would fail alike.
- A source whose licence needs registration (`Source.manual`) is never downloaded: only a copy the
  user put in a local mirror folder is verified and placed.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import os
import shutil
import tarfile
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from taiyi_bench.harness.atomic_files import atomic_write_text, atomic_write_with
from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.provenance import file_sha256
from taiyi_bench.harness.registry import DatasetSpec, Source, iter_specs, specs_for_selection

MANIFEST = "taiyi-fetch.json"  # in the data directory: what fetch placed, from where, with which sha256
CHUNK = 1 << 20
ATTEMPTS = 3  # per URL; each attempt after the first resumes where the last one stopped
USER_AGENT = "taiyi-bench-fetch"
_FULL_DISK = (errno.ENOSPC, errno.EDQUOT)

# (what is being downloaded, bytes so far, total bytes or None): drives a progress bar.
ProgressCallback = Callable[[str, int, "int | None"], None]


class FetchError(Exception):
    """A file could not be fetched; the message names the URL or the file."""


class FetchAborted(Exception):
    """A fault every set would share (an unreachable proxy, a full disk): the run stops."""


@dataclass
class SetResult:
    """What `Fetcher.fetch` did for one set. Names are file names of the set's folder."""

    spec: DatasetSpec
    placed: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)  # already in place with the right sha256
    refused: list[str] = field(default_factory=list)  # no sha256 in the registry, not allowed
    unverified: dict[str, str] = field(default_factory=dict)  # placed without a registry sha256: the one seen
    manual_missing: list[str] = field(default_factory=list)  # manual files found in no local folder
    replaced: list[Path] = field(default_factory=list)  # files that were in the way, kept aside
    sources: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class _Got:
    path: Path  # the complete file, in the cache or a local mirror folder
    origin: str  # the URL (or local file) it came from, for messages and the manifest
    aside: Path | None  # the cache file to move aside if it fails verification (None: not ours)


def select_sets(names: Iterable[str] | None) -> list[DatasetSpec]:
    """Sets by key, task name, group, pattern (as `--tasks`), display name or folder name; all
    sets for none. ConfigError for a name that matches nothing."""
    by_name = {alias.casefold(): spec.key for spec in iter_specs() for alias in (spec.display_name, spec.data_subdir)}
    keys = [by_name.get(name.casefold(), name) for name in (names or [])]
    try:
        return specs_for_selection(keys)
    except KeyError as err:
        raise ConfigError(err.args[0]) from None


def downloadable(spec: DatasetSpec) -> list[Source]:
    return [source for source in spec.sources if not source.manual]


def fetchability(spec: DatasetSpec) -> str:
    """How `taiyi data fetch` gets the set: "yes", "manual", or how many of its files have no
    registry sha256 ("unverified": fetched only with --allow-unverified)."""
    names = {name for source in downloadable(spec) for name in source.files.values()}
    if not names:
        return "manual"
    unverified = len(names - set(spec.sha256))
    if not unverified:
        return "yes"
    return "unverified only" if unverified == len(names) else f"yes (+{unverified} unverified)"


def proxy_for(url: str) -> tuple[str, str] | None:
    """(proxy URL, the variable that set it) when urllib sends `url` through a proxy."""
    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.netloc):
        return None
    variable = next((name for name in (f"{parts.scheme}_proxy", f"{parts.scheme.upper()}_PROXY") if os.environ.get(name)),
                    f"{parts.scheme}_proxy")
    return proxy, variable


def _append(handle: BinaryIO, chunk: bytes) -> None:
    """The one write of every byte fetch stores (a test injects a full disk here)."""
    handle.write(chunk)


def _write_error(err: OSError, path: Path) -> FetchError | FetchAborted:
    message = f"cannot write {path}: {err.strerror or err}"
    return FetchAborted(message) if err.errno in _FULL_DISK else FetchError(message)


def _is_url(text: str) -> bool:
    return urlsplit(text).scheme in ("http", "https")


def _safe_relative(path: str) -> PurePosixPath:
    # Cache and extraction paths come from URLs and archive members: never outside their folder.
    parts = [part for part in PurePosixPath(path).parts if part not in ("", "/", ".", "..")]
    return PurePosixPath(*parts) if parts else PurePosixPath("index")


@dataclass
class Fetcher:
    """Fetches sets into `target`. `mirrors` (base URLs or local folders) replace the sources'
    hosts, tried in order; `source` keeps only the sources of that name."""

    target: Path
    cache: Path
    mirrors: Sequence[str] = ()
    source: str | None = None
    allow_unverified: bool = False
    timeout: float = 60.0
    progress: ProgressCallback | None = None
    current: str = ""  # what is being downloaded now (an interrupt message names it)
    partial: Path | None = None  # its partial file
    _opener: urllib.request.OpenerDirector = field(default_factory=urllib.request.build_opener, repr=False)

    # ------------------------------------------------------------------ one set
    def fetch(self, spec: DatasetSpec) -> SetResult:
        result = SetResult(spec)
        self.current, self.partial = "", None
        sources = [source for source in spec.sources if self.source in (None, source.name)]
        folder = self.target / spec.data_subdir
        recorded = self._manifest().get(spec.key, {})
        staged: dict[str, tuple[_Got, str, Source, str]] = {}
        for name in dict.fromkeys(name for source in sources for name in source.files.values()):
            known = spec.sha256.get(name)
            dest = folder / name
            if dest.is_file() and file_sha256(dest) in (known, recorded.get(name, {}).get("sha256")):
                result.present.append(name)
                continue
            candidates = [(source, member) for source in sources for member, target in source.files.items() if target == name]
            if known is None and not self.allow_unverified:
                # A manual file is only "refused" once the user has put a copy where fetch looks.
                found = any(not source.manual or self._local_copy(spec, member, name) for source, member in candidates)
                (result.refused if found else result.manual_missing).append(name)
                continue
            errors: list[str] = []
            for source, member in candidates:
                try:
                    got = self._obtain(spec, source, member, name)
                except FetchError as err:
                    errors.append(f"{name}: {err}")
                    continue
                if got is None:  # a manual source's file in no local mirror folder
                    continue
                try:
                    digest = file_sha256(got.path)
                except OSError as err:
                    errors.append(f"{name}: cannot read {got.path}: {err.strerror or err}")
                    continue
                if known is not None and digest != known:
                    errors.append(self._reject(name, got, digest, known))
                    continue
                staged[name] = (got, digest, source, member)
                break
            else:
                if errors:
                    result.error = f"{spec.display_name}: " + "; ".join(errors)
                    return result  # a set lands whole or not at all
                result.manual_missing.append(name)
        try:
            for name, (got, digest, source, _) in staged.items():
                result.replaced += self._place(got.path, folder / name, digest)
                result.placed.append(name)
                if name not in spec.sha256:
                    result.unverified[name] = digest
                result.sources = list(dict.fromkeys([*result.sources, source.name]))
            if staged:
                self._record(spec, {name: {"source": source.name, "member": member, "from": got.origin, "sha256": digest,
                                           "verified": name in spec.sha256, "license": source.license}
                                    for name, (got, digest, source, member) in staged.items()})
        except FetchError as err:
            result.error = f"{spec.display_name}: {err}"
        except OSError as err:
            result.error = f"{spec.display_name}: {_write_error(err, folder)}"
        return result

    # ------------------------------------------------------------------ getting one file
    def _obtain(self, spec: DatasetSpec, source: Source, member: str, name: str) -> _Got | None:
        if source.manual:  # never downloaded: only a copy the user placed in a local folder
            path = self._local_copy(spec, member, name)
            return None if path is None else _Got(path, str(path), None)
        if source.archive is None:
            return self._get(source.url + member, spec, name)
        archive = self._get(source.url, spec, PurePosixPath(urlsplit(source.url).path).name)
        return self._extract(archive, source, member)

    def _local_copy(self, spec: DatasetSpec, member: str, name: str) -> Path | None:
        """A manual source's file in a local mirror folder: as the download unpacks (`member`), in
        the set's folder, or loose."""
        for mirror in self.mirrors:
            if not _is_url(mirror):
                folder = Path(mirror).expanduser()
                for path in (folder / member, folder / spec.data_subdir / name, folder / name):
                    if path.is_file():
                        return path
        return None

    def _cache_path(self, url: str) -> Path:
        parts = urlsplit(url)
        return self.cache / "downloads" / _safe_relative(parts.netloc) / _safe_relative(parts.path)

    def _get(self, url: str, spec: DatasetSpec, label: str) -> _Got:
        """The complete file at `url`: from the cache, a local mirror folder, or downloaded into
        the cache (through a URL mirror when given)."""
        cached = self._cache_path(url)
        if cached.is_file():
            return _Got(cached, url, cached)
        errors = []
        for mirror in self.mirrors or [None]:
            if mirror is None or _is_url(mirror):
                where = url if mirror is None else mirror.rstrip("/") + urlsplit(url).path
                try:
                    self._download(where, cached, f"{spec.display_name} {label}")
                except FetchError as err:
                    errors.append(str(err))
                    continue
                return _Got(cached, where, cached)
            folder = Path(mirror).expanduser()
            parts = urlsplit(url)
            relative = _safe_relative(parts.path)
            for path in (folder / parts.netloc / relative, folder / relative, folder / relative.name):
                if path.is_file():
                    return _Got(path, str(path), None)
            errors.append(f"{url} is not in {folder} (as {parts.netloc}/{relative}, {relative} or {relative.name})")
        raise FetchError("; ".join(errors))

    def _download(self, url: str, dest: Path, label: str) -> None:
        """Download `url` to `dest` through `dest.part`, resuming what an earlier attempt or run
        left; `dest` appears only when the whole file arrived."""
        part = dest.with_name(dest.name + ".part")
        try:
            part.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise _write_error(err, part.parent) from None
        self.current, self.partial = f"{label} from {url}", part
        problem = ""
        for _ in range(ATTEMPTS):
            offset = part.stat().st_size if part.is_file() else 0
            headers = {"User-Agent": USER_AGENT} | ({"Range": f"bytes={offset}-"} if offset else {})
            try:
                with self._opener.open(urllib.request.Request(url, headers=headers), timeout=self.timeout) as response:
                    if offset and response.status != 206:
                        offset = 0  # the server ignored the range: start again
                    length = response.headers.get("Content-Length")
                    total = offset + int(length) if length and length.isdigit() else None
                    got = self._receive(response, part, offset, total, label)
                if total is None or got >= total:
                    break
                problem = f"the connection closed after {got:,} of {total:,} bytes"
            except HTTPError as err:
                if err.code == 416 and offset:  # nothing after the bytes we have: the part is whole
                    break
                raise FetchError(f"{url}: HTTP {err.code} {err.reason}") from None
            except (URLError, OSError, http.client.HTTPException) as err:
                reason = err.reason if isinstance(err, URLError) else err
                through = proxy_for(url)
                if through and isinstance(err, URLError) and isinstance(reason, OSError):
                    proxy, variable = through
                    raise FetchAborted(
                        f"cannot connect to the proxy {proxy} (from ${variable}) to get {url}: "
                        f"{getattr(reason, 'strerror', None) or reason}; fix or unset ${variable}, or list the host in $no_proxy"
                    ) from None
                problem = str(getattr(reason, "strerror", None) or reason) or type(reason).__name__
        else:
            raise FetchError(f"{url}: {problem} ({ATTEMPTS} attempts; the next run resumes from {part})")
        os.replace(part, dest)
        self.current, self.partial = "", None

    def _receive(self, response: http.client.HTTPResponse, part: Path, offset: int, total: int | None, label: str) -> int:
        got = offset
        try:
            handle = part.open("ab" if offset else "wb")
        except OSError as err:
            raise _write_error(err, part) from None
        with handle:
            if self.progress:
                self.progress(label, got, total)
            while chunk := response.read(CHUNK):
                try:
                    _append(handle, chunk)
                except OSError as err:
                    raise _write_error(err, part) from None
                got += len(chunk)
                if self.progress:
                    self.progress(label, got, total)
        return got

    def _extract(self, archive: _Got, source: Source, member: str) -> _Got:
        """The archive member as a file of its own, extracted once into the cache."""
        origin = f"{archive.origin} ({member})"
        base = archive.aside if archive.aside is not None else self._cache_path(source.url)
        dest = base.with_name(base.name + ".d") / _safe_relative(member)
        if dest.is_file():
            return _Got(dest, origin, archive.aside)
        try:
            if source.archive == "zip":
                with zipfile.ZipFile(archive.path) as bundle, bundle.open(member) as stream:
                    self._copy_into(stream, dest)
            else:
                with tarfile.open(archive.path, "r:gz") as bundle:
                    stream = bundle.extractfile(member)
                    if stream is None:
                        raise KeyError(member)
                    self._copy_into(stream, dest)
        except KeyError:
            raise FetchError(f"{archive.origin} has no member {member}") from None
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as err:
            aside = self._set_aside(archive.aside, "unreadable")
            kept = f"; kept aside as {aside}" if aside else ""
            raise FetchError(f"{archive.origin} is not a readable {source.archive} archive ({err}){kept}") from None
        return _Got(dest, origin, archive.aside)

    # ------------------------------------------------------------------ verifying and placing
    def _copy_into(self, stream: BinaryIO, dest: Path, digest: str | None = None) -> None:
        """Copy `stream` to `dest` atomically; with `digest`, refuse bytes that hash otherwise."""

        def writer(handle: BinaryIO) -> None:
            hasher = hashlib.sha256()
            while chunk := stream.read(CHUNK):
                hasher.update(chunk)
                try:
                    _append(handle, chunk)
                except OSError as err:
                    raise _write_error(err, dest) from None
            if digest is not None and hasher.hexdigest() != digest:
                raise FetchError(f"{dest}: the bytes changed while they were copied; nothing placed")

        try:
            atomic_write_with(dest, writer)
        except OSError as err:  # the folder or the temporary file cannot be made
            raise _write_error(err, dest) from None

    def _place(self, path: Path, dest: Path, digest: str) -> list[Path]:
        """Put a verified file at `dest`; a different file already there is kept aside, not lost."""
        replaced = []
        if dest.is_file():
            aside = dest.with_name(f"{dest.name}.replaced-{file_sha256(dest)[:12]}")
            os.replace(dest, aside)
            replaced.append(aside)
        with path.open("rb") as stream:
            self._copy_into(stream, dest, digest)
        return replaced

    def _set_aside(self, path: Path | None, why: str) -> Path | None:
        """Move a cache file (and what was extracted from it) out of the way; None for a file
        that is not the cache's (a local mirror's is left where it is)."""
        if path is None or not path.exists():
            return None
        aside = path.with_name(f"{path.name}.{why}")
        os.replace(path, aside)
        shutil.rmtree(path.with_name(path.name + ".d"), ignore_errors=True)
        return aside

    def _reject(self, name: str, got: _Got, digest: str, known: str) -> str:
        aside = self._set_aside(got.aside, f"rejected-{digest[:12]}")
        if aside is None and got.path.is_relative_to(self.cache):  # extracted from a local archive
            got.path.unlink(missing_ok=True)
        kept = f"kept aside as {aside}" if aside else f"left in {got.path}"
        return (f"{name} from {got.origin}: sha256 {digest[:12]}… is not the registry's {known[:12]}…; "
                f"{kept}, nothing placed")

    # ------------------------------------------------------------------ the manifest
    def _manifest(self) -> dict:
        try:
            data = json.loads((self.target / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _record(self, spec: DatasetSpec, files: dict[str, dict]) -> None:
        data = self._manifest()
        data[spec.key] = {**data.get(spec.key, {}), **files}
        try:
            atomic_write_text(self.target / MANIFEST, json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
        except OSError as err:
            raise _write_error(err, self.target / MANIFEST) from None
