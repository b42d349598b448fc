"""A rehearsal of the real path, end to end, on stand-in files: ``bench rehearse`` (``nox -s
rehearse``).

Stand-in archives with the real ones' names and member layout (``xlsa17.zip`` holding
``xlsa17/data/<DS>/...`` for APY, AWA2, CUB, SUN; ``cvpr18xian.zip`` holding
``cvpr18xian/data/<DS>/...`` for FLO and CUB's sentences) are made from the embedded synthetic
generator at ``scale`` times the real split sizes (class embeddings, splits and class lists from
the real metadata where ``VSBOOST_REAL_META`` points at an xlsa17 root, synthetic otherwise). A
lock that pins them, marked ``"rehearsal": true``, replaces datasets.lock; a local HTTPS server
(127.0.0.1 only, a self-signed certificate the client is told to trust through
``REQUESTS_CA_BUNDLE``) serves them, started and stopped by its PID. Then the real commands run
one after the other, each in its own process: ``bench data fetch`` -> ``bench data verify`` ->
``bench sweep`` (paper profile, all datasets and rows, a few generator epochs) -> ``bench
report`` -> ``bench check`` -> ``bench claims``. Records made on files verified against a
rehearsal lock are of data kind ``rehearsal`` (bench.sweep): labelled REHEARSAL in every
report, never compared with or mixed into real records. Each stage prints its wall time and
the peak memory of its process.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import click

from bench.options import SectionedCommand, debug_option, option
from vsboost import settings
from vsboost.config import DATASETS, ROWS

# The archive each dataset's files come from and the top folder they sit under in it (the
# fetcher finds members by their <DS>/<file> suffix, as in the real archives).
TOP = {"xlsa17.zip": "xlsa17/data", "cvpr18xian.zip": "cvpr18xian/data"}
REAL_META_ENV = "VSBOOST_REAL_META"
SERVER_WAIT_S = 30  # choice: how long the server may take to say its port
# choice: below the real sizes (the CI-sized variant), episodes the small stand-in splits can fill
# (the paper's need 64 images per class) and networks small enough for seconds per training; the
# full-size rehearsal keeps the paper profile's shapes.
CI_SETS = ["k_shot=2", "steps_per_epoch=1", "cls_epochs=2", "hidden=128", "enc_dim=128",
           "syn_num=20"]


def build(work: Path, scale: float, real_meta: Path | None, port: int, real_lock: Path) -> None:
    """Stand-in files, their two archives (in ``work/served``, which the server on ``port``
    serves) and the lock pinning them (``work/datasets.lock``), after ``real_lock``'s layout."""
    from bench import datasets
    from vsboost import synthetic

    files = work / "stand-in"
    shutil.rmtree(files, ignore_errors=True)
    synthetic.write(files, DATASETS, scale=scale, seed=0, real_meta=real_meta)
    lock = datasets.read_lock(real_lock)  # which file belongs to which archive
    served = work / "served"
    served.mkdir(parents=True, exist_ok=True)
    members: dict[str, list[str]] = {name: [] for name in lock["archives"]}
    for rel, entry in lock["files"].items():
        if (files / rel).is_file():
            members[entry["archive"]].append(rel)
    out = {"schema": 1, "rehearsal": True,
           "about": "REHEARSAL lock written by bench rehearse: it pins stand-in files, never the "
                    "paper's; records made on them are of data kind rehearsal",
           "archives": {}, "files": {}}
    for name, rels in members.items():
        zpath = served / name
        with zipfile.ZipFile(zpath, "w", zipfile.ZIP_STORED) as z:
            for rel in sorted(rels):
                z.write(files / rel, f"{TOP[name]}/{rel}")
        out["archives"][name] = {"url": f"https://127.0.0.1:{port}/{name}",
                                 "size": zpath.stat().st_size,
                                 "sha256": datasets.sha256(zpath),
                                 "provenance": "REHEARSAL stand-in"}
        for rel in rels:
            out["files"][rel] = {**lock["files"][rel], "size": (files / rel).stat().st_size,
                                 "sha256": datasets.sha256(files / rel),
                                 "provenance": "REHEARSAL stand-in"}
    (work / "datasets.lock").write_text(json.dumps(out, indent=1) + "\n")
    sizes = ", ".join(f"{n} {a['size'] / 2**20:.0f} MiB" for n, a in out["archives"].items())
    print(f"archives: {sizes}", flush=True)


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (valid one day) and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vsboost rehearsal")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def serve(folder: str, cert: str, key: str, port_file: str) -> None:
    """The server process: ``folder`` over HTTPS on 127.0.0.1, its port written to
    ``port_file`` once it listens."""
    import functools
    import http.server
    import ssl

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=folder)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


def start_server(work: Path, cert: Path, key: Path) -> tuple[subprocess.Popen, int]:
    port_file = work / "port"
    port_file.unlink(missing_ok=True)
    log = open(work / "server.log", "wb")  # noqa: SIM115 - the server process keeps it
    proc = subprocess.Popen([sys.executable, "-m", "bench.rehearsal", "serve",
                             str(work / "served"), str(cert), str(key), str(port_file)],
                            stdout=log, stderr=log,
                            env=_env(os.environ))
    deadline = time.monotonic() + SERVER_WAIT_S
    while not port_file.is_file() or not port_file.read_text().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(proc)
            raise click.ClickException(f"the rehearsal's HTTPS server did not start; see "
                                       f"{work / 'server.log'}")
        time.sleep(0.1)
    return proc, int(port_file.read_text())


def stop_server(proc: subprocess.Popen) -> None:
    """Stop the server by its PID, and wait for it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def _env(base) -> dict:
    root = str(Path(__file__).resolve().parents[1])
    path = base.get("PYTHONPATH")
    return {**base, "PYTHONPATH": root + (os.pathsep + path if path else "")}


def stage(title: str, args: list[str], env: dict, ok=(0,)) -> int:
    """Run one stage's command in its own process; print its wall time and peak memory."""
    click.echo(f"== {title}: {' '.join(args)}")
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    peak_mib = usage.ru_maxrss / 1024  # Linux: kilobytes
    click.echo(f"== {title}: exit {proc.returncode}, {wall:.1f} s, peak memory "
               f"{peak_mib:.0f} MiB")
    if proc.returncode not in ok:
        raise click.ClickException(f"rehearsal stage {title!r} exited {proc.returncode}")
    return proc.returncode


@click.command("rehearse", cls=SectionedCommand)
@option("--scale", type=click.FloatRange(min=0.01, max=1.0), default=1.0, section="Rehearsal",
        help="Stand-in split sizes as a fraction of the real ones (1.0: the real sizes; 0.05: "
             "the CI-sized variant the test suite runs).")
@option("--epochs", type=click.IntRange(min=1), default=1, section="Rehearsal",
        help="Generator epochs of each training (the paper profile otherwise).")
@option("--seeds", type=click.IntRange(min=2), default=2, section="Rehearsal",
        help="Seeds per (dataset, row): Table 4's paired intervals need two.")
@option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
        section="Rehearsal", help="Where the sweep trains; auto = CUDA when available.")
@option("--work", type=click.Path(path_type=Path), default=Path("rehearsal"),
        section="Rehearsal", help="Folder for the archives, data, results and reports.")
@option("--real-meta", type=click.Path(path_type=Path), default=None, section="Rehearsal",
        show_default=f"${REAL_META_ENV}, else synthetic metadata",
        help="An xlsa17 root whose real class embeddings, splits and class lists to use.")
@debug_option
def rehearse(scale: float, epochs: int, seeds: int, device: str, work: Path,
             real_meta: Path | None) -> None:
    """Rehearse the real path on stand-in data over local HTTPS, labelled REHEARSAL.

    Stand-in archives in the real layout, a lock pinning them, a local HTTPS server, then fetch,
    verify, a short paper-profile sweep of every dataset and row, report, check and claims, each
    stage timed with its peak memory; every record and report says REHEARSAL."""
    real_meta = real_meta or (Path(os.environ[REAL_META_ENV])
                              if os.environ.get(REAL_META_ENV) else None)
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    for sub in ("data", "archives", "results", "reports"):  # a rehearsal starts from nothing
        shutil.rmtree(work / sub, ignore_errors=True)
    real_lock = settings.lock().resolve()  # the lock the rehearsal's stand-ins copy the layout of
    lock_path = work / "datasets.lock"
    lock_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    # Every stage in its own process, this one kept small: a child's peak memory counts what
    # its parent held when it started.
    cert, key = certificate(work)
    (work / "served").mkdir(exist_ok=True)
    server, port = start_server(work, cert, key)
    click.echo(f"== server: https://127.0.0.1:{port}/ (PID {server.pid})")
    meta = str(real_meta) if real_meta else ""
    env = _env({**os.environ, "VSBOOST_LOCK": str(lock_path),
                "VSBOOST_DATA": str(work / "data"), "VSBOOST_ARCHIVES": str(work / "archives"),
                "VSBOOST_RESULTS": str(work / "results"),
                "VSBOOST_REPORTS": str(work / "reports"), "REQUESTS_CA_BUNDLE": str(cert)})
    bench = [sys.executable, "-m", "bench"]
    try:
        click.echo(f"== build: stand-in files at scale {scale} "
                   f"({'real metadata from ' + meta if meta else 'synthetic metadata'})")
        stage("build", [sys.executable, "-m", "bench.rehearsal", "build", str(work), str(scale),
                        meta, str(port), str(real_lock)], env)
        stage("fetch", [*bench, "data", "fetch"], env)
    finally:
        stop_server(server)
        click.echo(f"== server: stopped (PID {server.pid})")
    stage("verify", [*bench, "data", "verify"], env)
    sets = [f"gan_epochs={epochs}"]
    if scale < 1:
        sets += CI_SETS
    sets = [x for kv in sets for x in ("--set", kv)]
    stage("reproduce", [*bench, "sweep", "--profile", "paper", "--datasets", ",".join(DATASETS),
                        "--rows", ",".join(ROWS), "--seeds", str(seeds), "--device", device,
                        "--name", "rehearsal", "--features", "none", *sets], env)
    stage("report", [*bench, "report", "--name", "rehearsal"], env)
    # exit 1 is a verdict (cells below the paper, a claim contradicted), not a failure
    stage("check", [*bench, "check", "--name", "rehearsal", "--allow-deviations", "--seeds",
                    str(seeds)], env, ok=(0, 1))
    stage("claims", [*bench, "claims", "--name", "rehearsal", "--expected-seeds", str(seeds)],
          env, ok=(0, 1))
    click.echo(f"== rehearsal done in {time.perf_counter() - t0:.0f} s: reports in "
               f"{work / 'reports' / 'rehearsal'} (REHEARSAL, not the paper's data)")


if __name__ == "__main__":  # the server and build stages' processes (rehearse starts them)
    if sys.argv[1] == "serve":
        serve(*sys.argv[2:6])
    else:
        folder, scale, real, port, real_lock = sys.argv[2:7]
        build(Path(folder), float(scale), Path(real) if real else None, int(port),
              Path(real_lock))
