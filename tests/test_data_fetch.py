"""`taiyi data fetch`: the real downloading code against a loopback HTTP server.

The server serves the real files beside the checkout (../shared/data) under the paths of the
registry's source URLs (and a zip built from them where a source ships one), so `--mirror
http://127.0.0.1:PORT` exercises exactly what a user with network runs. The CBLUE sets come from
a local folder, as a user who downloaded them from Tianchi gives it. Faults are injected on the
server (a dropped connection, a 404, a corrupted file), in the environment (a proxy that is not
there, a read-only folder) and in the one write routine (a full disk, Ctrl-C).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import socket
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from taiyi_bench.harness import fetch
from taiyi_bench.harness.apps.cli import main as taiyi_main
from taiyi_bench.harness.apps.data_check import check_data_dir
from taiyi_bench.harness.loading import load_split
from taiyi_bench.harness.paths import SAMPLES_DIR
from taiyi_bench.harness.registry import PAPER_SETS, get_spec, iter_specs, validate

PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                   "no_proxy", "NO_PROXY")


# ------------------------------------------------------------------------------ the server
class LoopbackServer:
    """Serves `routes` (URL path -> bytes) with HTTP Range support; faults are per path."""

    def __init__(self, routes: dict[str, bytes]):
        self.routes = routes
        self.requests: list[tuple[str, str | None]] = []
        self.missing: set[str] = set()  # 404
        self.drop_once: set[str] = set()  # half the body, then the connection closes
        self.corrupt: set[str] = set()  # one byte changed
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):  # noqa: N802 - the http.server API
                path = urlsplit(self.path).path
                asked = self.headers.get("Range")
                server.requests.append((path, asked))
                if path in server.missing or path not in server.routes:
                    self.send_error(404, "Not Found")
                    return
                data = server.routes[path]
                if path in server.corrupt:
                    data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
                start = int(re.match(r"bytes=(\d+)-", asked).group(1)) if asked else 0
                body = data[start:]
                self.send_response(206 if asked else 200)
                if asked:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if path in server.drop_once:
                    server.drop_once.discard(path)
                    body = body[: len(body) // 2]
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def reset(self) -> None:
        self.requests.clear()
        self.missing.clear(), self.drop_once.clear(), self.corrupt.clear()

    def asked(self, path: str) -> list[str | None]:
        return [rng for got, rng in self.requests if got == path]


def _url_path(url: str) -> str:
    return urlsplit(url).path


def _file_url(spec_key: str, name: str, source_name: str | None = None) -> str:
    spec = get_spec(spec_key)
    source = next(s for s in spec.sources if source_name in (None, s.name) and name in s.files.values())
    member = next(m for m, target in source.files.items() if target == name)
    return source.url + member


@pytest.fixture(scope="module")
def server(shared_data_dir, tmp_path_factory):
    """Every downloadable source file present in ../shared/data, under its URL's path."""
    routes: dict[str, bytes] = {}
    for spec in iter_specs():
        for source in fetch.downloadable(spec):
            local = {member: shared_data_dir / spec.data_subdir / name for member, name in source.files.items()}
            if source.archive == "zip":  # built here from the real files, as the release ships them
                archive = tmp_path_factory.mktemp("archives") / Path(_url_path(source.url)).name
                with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
                    for member, path in local.items():
                        bundle.write(path, member)
                routes[_url_path(source.url)] = archive.read_bytes()
                continue
            for member, path in local.items():
                if path.is_file():
                    routes[_url_path(source.url + member)] = path.read_bytes()
    loopback = LoopbackServer(routes)
    yield loopback
    loopback.httpd.shutdown()


@pytest.fixture
def loopback(server, monkeypatch):
    server.reset()
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return server


@pytest.fixture(scope="module")
def cblue_folder(shared_data_dir, tmp_path_factory) -> Path:
    """A user's unpacked CBLUE download (links to the real files; nothing is copied)."""
    folder = tmp_path_factory.mktemp("cblue")
    for spec in iter_specs():
        for source in spec.sources:
            if source.manual:
                for member, name in source.files.items():
                    real = shared_data_dir / spec.data_subdir / name
                    if real.is_file():
                        (folder / member).parent.mkdir(parents=True, exist_ok=True)
                        (folder / member).symlink_to(real)
    return folder


def _fetch(*args: str) -> int:
    return taiyi_main(["data", "fetch", *args])


def _files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("taiyi data fetch:")]


# ------------------------------------------------------------------------------ the registry
def test_every_set_has_a_verified_source_or_a_documented_manual_route():
    verified, manual, unverified = [], [], []
    for spec in iter_specs():
        validate(spec)
        names = spec.files[spec.eval_split]
        needed = [names] if isinstance(names, str) else list(names)
        offered = {name for source in fetch.downloadable(spec) for name in source.files.values()}
        with_sum = offered & set(spec.sha256)
        # "all": the reader needs every file; "first_present": any one of the alternatives does.
        covered = set(needed) <= with_sum if spec.file_policy == "all" else bool(set(needed) & with_sum)
        if covered:
            verified.append(spec.key)
            # every file a verified source offers for the evaluation split has a checksum
            assert all(name in spec.sha256 for name in needed if name in offered and spec.file_policy == "all")
        elif any(source.manual for source in spec.sources):
            manual.append(spec.key)
            assert spec.how_to_get and all(source.url.startswith("https://") for source in spec.sources)
        else:
            unverified.append(spec.key)
            assert offered >= set(needed) and "--allow-unverified" in spec.how_to_get
        for source in spec.sources:
            if "raw.githubusercontent.com" in source.url:  # pinned: a moved branch cannot change the bytes
                assert re.search(r"/[0-9a-f]{40}/", source.url), source.url
    assert sorted(manual) == ["cmeee", "cmeie", "kuake_qic"]
    assert unverified == ["chemdner"]
    assert len(verified) == len(PAPER_SETS) - 4
    chemdner = get_spec("chemdner")
    assert "data/BC4CHEMD/" in chemdner.sources[0].url and not chemdner.sha256
    assert [chemdner.expected[s].units for s in ("train", "dev", "test")] == [30682, 30639, 26364]
    assert fetch.fetchability(chemdner) == "unverified only" and fetch.fetchability(get_spec("cmeee")) == "manual"


def test_data_list_has_licence_and_fetchable_columns(capsys):
    assert taiyi_main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "licence" in out and "fetchable" in out and "manual" in out and "unverified only" in out
    assert taiyi_main(["data", "list", "--sources"]) == 0
    out = capsys.readouterr().out
    assert "data/BC4CHEMD/" in out and "tianchi" in out and "CDR_Data.zip" in out


# ------------------------------------------------------------------------------ the whole fetch
def test_fetch_from_a_loopback_mirror_gives_a_folder_data_check_passes(loopback, cblue_folder, tmp_path, capsys):
    dest, cache = tmp_path / "taiyi-data", tmp_path / "cache"
    args = ["--to", str(dest), "--cache", str(cache), "--mirror", loopback.base, "--mirror", str(cblue_folder)]
    started = time.perf_counter()
    assert _fetch(*args) == 0
    seconds = time.perf_counter() - started
    out, err = capsys.readouterr()
    assert _errors(err) == []
    report = check_data_dir(dest)
    found = [s.spec.key for s in report.sets if s.found]
    assert set(PAPER_SETS) - set(found) == {"chemdner"} and report.exit_code() == 0
    assert all(r.status in ("ok", "missing") for s in report.sets for r in s.splits)
    # What the oracle scoring reads: every present split loads with the registry's counts.
    for s in report.sets:
        for r in s.splits:
            if r.status == "ok" and not r.variant:
                assert len(load_split(s.spec.key, r.split, dest)) == s.spec.expected[r.split].units
    assert "12/13 sets found" in out and "CHEMDNER: not fetched" in out
    with capsys.disabled():
        print(f"\n[fetch+check of {len(found)} sets from a loopback mirror: {seconds:.1f} s]")
    assert seconds < 60
    # Only the readers' files and the manifest: no temporary or partial file anywhere.
    placed = _files_under(dest)
    assert not [name for name in placed if name.endswith((".tmp", ".part")) or "/." in f"/{name}"]
    manifest = json.loads((dest / fetch.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["bc5cdr_re"]["CDR_TestSet.PubTator.txt"]["source"] == "cdr-zip"
    assert all(entry["verified"] for files in manifest.values() for entry in files.values())

    # A second fetch downloads nothing, into the same folder or, from the cache, into a new one.
    asked = len(loopback.requests)
    assert _fetch(*args) == 0
    assert _fetch("--to", str(tmp_path / "again"), "--cache", str(cache), "--mirror", loopback.base,
                  "--mirror", str(cblue_folder), "--no-check") == 0
    assert len(loopback.requests) == asked
    assert "already in place, sha256 verified" in capsys.readouterr().out
    assert taiyi_main(["data", "check", str(tmp_path / "again")]) == 0


def test_a_manual_set_says_where_to_get_it_and_downloads_nothing(loopback, tmp_path, capsys):
    assert _fetch("cmeee", "--to", str(tmp_path / "d"), "--cache", str(tmp_path / "c"),
                  "--mirror", loopback.base, "--no-check") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert loopback.requests == [] and _files_under(tmp_path / "d") == []
    assert "CMeEE-V2: not downloaded (CBLUE / Tianchi terms of use (registration required))" in out
    assert "https://tianchi.aliyun.com/dataset/95414" in out
    assert f"put CMeEE-V2_train.json, CMeEE-V2_dev.json into {tmp_path / 'd' / 'CMeEE-V2'}/" in out
    assert "dev 5,000 units (sentence), 26,081 gold (sha256 CMeEE-V2_dev.json 440469ca5710…)" in out


# ------------------------------------------------------------------------------ faults
def test_a_dropped_connection_is_resumed_and_the_checksum_holds(loopback, tmp_path):
    path = _url_path(_file_url("ncbi_disease", "train.tsv"))
    loopback.drop_once.add(path)
    assert _fetch("ncbi_disease", "--to", str(tmp_path / "d"), "--cache", str(tmp_path / "c"),
                  "--mirror", loopback.base, "--no-check") == 0
    first, resumed = loopback.asked(path)
    assert first is None and re.fullmatch(r"bytes=\d+-", resumed) and int(resumed[6:-1]) > 0
    placed = tmp_path / "d" / "NCBI-disease" / "train.tsv"
    assert hashlib.sha256(placed.read_bytes()).hexdigest() == get_spec("ncbi_disease").sha256["train.tsv"]


def test_a_404_fails_its_set_only_and_names_it_and_the_url(loopback, tmp_path, capsys):
    url = _file_url("hoc", "test.tsv")
    loopback.missing.add(_url_path(url))
    dest = tmp_path / "d"
    assert _fetch("hoc", "pubmedqa", "--to", str(dest), "--cache", str(tmp_path / "c"),
                  "--mirror", loopback.base, "--no-check") == 1
    (line,) = _errors(capsys.readouterr().err)
    assert line.startswith("taiyi data fetch: error: HoC: test.tsv: ") and loopback.base + _url_path(url) in line
    assert "HTTP 404" in line
    assert _files_under(dest / "HoC") == [] and _files_under(dest / "PubMedQA") == ["ori_pqal.json", "test_ground_truth.json"]


def test_a_zip_that_is_not_there_falls_back_to_the_mirror_source(loopback, tmp_path, capsys):
    zip_url = get_spec("bc5cdr_re").sources[0].url
    loopback.missing.add(_url_path(zip_url))
    dest = tmp_path / "d"
    assert _fetch("bc5cdr_re", "--to", str(dest), "--cache", str(tmp_path / "c"), "--mirror", loopback.base,
                  "--no-check") == 0
    assert "(slm-ner)" in capsys.readouterr().out and len(_files_under(dest / "BC5CDR-CDR-RE")) == 3


def test_a_corrupted_file_is_refused_kept_aside_and_named(loopback, tmp_path, capsys):
    url = _file_url("pubmedqa", "ori_pqal.json")
    loopback.corrupt.add(_url_path(url))
    dest, cache = tmp_path / "d", tmp_path / "c"
    assert _fetch("pubmedqa", "--to", str(dest), "--cache", str(cache), "--mirror", loopback.base, "--no-check") == 1
    (line,) = _errors(capsys.readouterr().err)
    assert line.startswith("taiyi data fetch: error: PubMedQA: ori_pqal.json from ") and url.split("/", 3)[3] in line
    assert "is not the registry's 8b3276be8942" in line and "nothing placed" in line
    aside = Path(re.search(r"kept aside as (\S+),", line).group(1))
    assert aside.is_file() and aside.name.startswith("ori_pqal.json.rejected-") and aside.is_relative_to(cache)
    assert _files_under(dest) == []  # the good file of the set is not placed either: a set lands whole
    loopback.corrupt.clear()  # the next run downloads it again (the bad copy is never used)
    assert _fetch("pubmedqa", "--to", str(dest), "--cache", str(cache), "--mirror", loopback.base, "--no-check") == 0


def test_a_proxy_that_is_not_there_is_one_clear_message(loopback, tmp_path, capsys, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
    dest = tmp_path / "d"
    assert _fetch("hoc", "pubmedqa", "--to", str(dest), "--cache", str(tmp_path / "c"), "--mirror", loopback.base) == 1
    (line,) = _errors(capsys.readouterr().err)
    assert line.startswith(f"taiyi data fetch: error: HoC: cannot connect to the proxy http://127.0.0.1:{port} "
                           "(from $http_proxy) to get http://127.0.0.1:")
    assert "no_proxy" in line and loopback.requests == [] and _files_under(dest) == []
    # no_proxy is honoured
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert _fetch("pubmedqa", "--to", str(dest), "--cache", str(tmp_path / "c"), "--mirror", loopback.base,
                  "--no-check") == 0


def test_a_read_only_target_is_refused_before_any_download(loopback, tmp_path, capsys, monkeypatch):
    dest = tmp_path / "read-only"
    dest.mkdir()
    dest.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: say the folder is read-only as the OS would
        real = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == dest else real(path, mode, **kw))
    try:
        assert _fetch("pubmedqa", "--to", str(dest), "--cache", str(tmp_path / "c"), "--mirror", loopback.base) == 1
    finally:
        dest.chmod(0o755)
    (line,) = _errors(capsys.readouterr().err)
    assert line == f"taiyi data fetch: error: --to {dest}: cannot write there ({dest} is not writable); choose another folder"
    assert loopback.requests == [] and _files_under(dest) == []


def test_a_full_disk_stops_with_one_message_and_no_partial_file(loopback, tmp_path, capsys, monkeypatch):
    dest, cache = tmp_path / "d", tmp_path / "c"
    args = ("bc5cdr_chem", "ncbi_disease", "--to", str(dest), "--cache", str(cache), "--mirror", loopback.base, "--no-check")

    def full(handle, chunk):
        raise OSError(errno.ENOSPC, "No space left on device", handle.name)

    with monkeypatch.context() as patched:  # while downloading into the cache
        patched.setattr(fetch, "_append", full)
        assert _fetch(*args) == 1
    (line,) = _errors(capsys.readouterr().err)
    assert line.startswith("taiyi data fetch: error: BC5CDR-Chem: cannot write ") and ".part: No space left on device" in line
    assert "stopped, nothing half-written" in line and _files_under(dest) == []

    assert _fetch(*args) == 0  # the disk has room again: the cache fills; now full while placing
    shutil_dest = tmp_path / "d2"
    with monkeypatch.context() as patched:
        patched.setattr(fetch, "_append", full)
        assert _fetch(*args[:2], "--to", str(shutil_dest), *args[4:]) == 1
    (line,) = _errors(capsys.readouterr().err)
    assert f"cannot write {shutil_dest / 'BC5CDR-Chem' / 'train.tsv'}: No space left on device" in line
    assert _files_under(shutil_dest) == []  # the temporary file was removed: nothing half-written


def test_ctrl_c_during_a_download_leaves_nothing_half_written_and_a_rerun_finishes(loopback, tmp_path, capsys, monkeypatch):
    dest, cache = tmp_path / "d", tmp_path / "c"
    args = ("bc5cdr_chem", "--to", str(dest), "--cache", str(cache), "--mirror", loopback.base, "--no-check")
    monkeypatch.setattr(fetch, "CHUNK", 64 * 1024)
    calls = []
    real_append = fetch._append

    def interrupted(handle, chunk):
        calls.append(len(chunk))
        if len(calls) == 5:
            raise KeyboardInterrupt
        real_append(handle, chunk)

    with monkeypatch.context() as patched:
        patched.setattr(fetch, "_append", interrupted)
        assert _fetch(*args) == 130
    err = capsys.readouterr().err
    url = loopback.base + _url_path(_file_url("bc5cdr_chem", "train.tsv"))
    assert f"taiyi data fetch: interrupted while fetching BC5CDR-Chem train.tsv from {url}; nothing half-written" in err
    assert _files_under(dest) == []
    partial = Path(re.search(r"the partial download (\S+) is resumed", err).group(1))
    assert partial.is_file() and partial.stat().st_size == 4 * 64 * 1024
    assert _fetch(*args) == 0  # the rerun resumes from the partial file and finishes
    assert loopback.asked(_url_path(url))[-1] == f"bytes={4 * 64 * 1024}-"
    assert _files_under(dest / "BC5CDR-Chem") == ["devel.tsv", "test.tsv", "train.tsv"]


# ------------------------------------------------------------------------------ no checksum known
def test_a_file_without_a_registry_checksum_needs_allow_unverified_and_its_checksum_is_recorded(
    loopback, tmp_path, capsys
):
    # CHEMDNER's IOB files were never read here: the samples stand in for them on the server.
    spec = get_spec("chemdner")
    for member, name in spec.sources[0].files.items():
        loopback.routes[_url_path(spec.sources[0].url + member)] = (SAMPLES_DIR / spec.data_subdir / name).read_bytes()
    dest = tmp_path / "d"
    args = ("chemdner", "--to", str(dest), "--cache", str(tmp_path / "c"), "--mirror", loopback.base, "--no-check")
    try:
        assert _fetch(*args) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "CHEMDNER: not fetched, the registry has no sha256 for train.tsv, devel.tsv, test.tsv;" in out
        assert "--allow-unverified" in out and loopback.requests == [] and _files_under(dest) == []

        assert _fetch(*args, "--allow-unverified") == 0
        out = " ".join(capsys.readouterr().out.split())
        digest = hashlib.sha256((SAMPLES_DIR / "CHEMDNER" / "test.tsv").read_bytes()).hexdigest()
        assert (f"CHEMDNER: test.tsv has no sha256 in the registry; accepted (--allow-unverified) with sha256 {digest}, "
                f"recorded in {dest / fetch.MANIFEST}") in out
        recorded = json.loads((dest / fetch.MANIFEST).read_text(encoding="utf-8"))["chemdner"]["test.tsv"]
        assert recorded["sha256"] == digest and recorded["verified"] is False
        assert recorded["from"] == loopback.base + _url_path(_file_url("chemdner", "test.tsv"))
        # The recorded checksum counts as known next time: nothing is fetched again.
        assert _fetch(*args) == 0 and "already in place" in capsys.readouterr().out
    finally:
        for member in spec.sources[0].files:
            loopback.routes.pop(_url_path(spec.sources[0].url + member), None)


def test_an_offline_cluster_uses_a_local_folder_of_downloads(shared_data_dir, tmp_path, capsys, monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    downloads = tmp_path / "downloads"
    spec = get_spec("bc5cdr_re")
    zipped = spec.sources[0]
    downloads.mkdir()
    with zipfile.ZipFile(downloads / "CDR_Data.zip", "w") as bundle:  # saved under its own name
        for member, name in zipped.files.items():
            bundle.write(shared_data_dir / spec.data_subdir / name, member)
    pubmedqa = get_spec("pubmedqa").sources[0]
    for name in pubmedqa.files:  # saved as HOST/PATH (what `wget -x` makes)
        parts = urlsplit(pubmedqa.url + name)
        target = downloads / parts.netloc / parts.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(shared_data_dir / "PubMedQA" / name)
    dest = tmp_path / "d"
    assert _fetch("bc5cdr_re", "pubmedqa", "hoc", "--to", str(dest), "--cache", str(tmp_path / "c"),
                  "--mirror", str(downloads), "--no-check") == 1
    (line,) = _errors(capsys.readouterr().err)  # HoC was not downloaded: named, with where it was looked for
    assert line.startswith("taiyi data fetch: error: HoC: train.tsv: https://raw.githubusercontent.com/") and str(downloads) in line
    assert len(_files_under(dest / "BC5CDR-CDR-RE")) == 3 and len(_files_under(dest / "PubMedQA")) == 2
