#!/usr/bin/env python3
"""Run the ETSI NGSI-LD conformance test suite against a fresh `smartregion` broker.

The suite is never part of this repository. It is looked up at ``$NGSI_LD_SUITE_DIR``
(default ``.conformance/suite``, git-ignored) and must be at commit ``1d442dc``. Everything the
runner creates lives under ``.conformance/`` (git-ignored): the suite's venv, a throwaway working
copy of the suite, and the results. See docs/conformance.md.

Stdlib only, so it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.server
import os
import shlex
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conformance_mqtt as mqtt
import conformance_report as report

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / ".conformance"
SUITE_COMMIT = "1d442dc"
SUITE_REPO = "https://github.com/marek-mraz/ngsi-ld-test-suite"
# Where the suite's own test contexts claim to live; the broker cannot reach it (no internet),
# so every occurrence is pointed at our local copy of resources/jsonld-contexts/.
FORGE_CONTEXTS = (
    "https://forge.etsi.org/rep/cim/ngsi-ld-test-suite/-/raw/develop/resources/jsonld-contexts/"
)
COMPOUND_CONTEXT = "ngsi-ld-test-suite-compound.jsonld"
# The same compound context, as published by EGM for v1.8 (used by the orderBy samples).
EGM_COMPOUND = (
    "https://easy-global-market.github.io/ngsild-api-data-models/ngsildTestSuite/"
    "ngsildTestSuiteV1.8-compound.jsonld"
)
# Third-party contexts the jsonldContext tests use only as "some remote context that gets
# cached"; offline they are replaced by empty stand-ins served locally (--no-standins: keep).
STANDIN_CONTEXTS = (
    "http://smartdatamodels.org/context.jsonld",
    "https://fiware.github.io/data-models/context.jsonld",
    "https://fiware.github.io/NGSI-LD_TestSuite/ldContext/testContext.jsonld",
)
STANDIN_DIR = "offline-standins"
# The suite's Mosquitto configurations (for its docker image; see scripts/conformance_mqtt.py).
MOSQUITTO_CONFIGS = "resources/mqttUtils/mosquitto"
# Only what robot needs: TP (tests), resources (keywords, variables.py), libraries, data.
COPIED_DIRS = ("TP", "resources", "libraries", "data")
REWRITTEN_SUFFIXES = {".robot", ".resource", ".json", ".jsonld", ".geojson", ".py", ".txt"}
LOOPBACK_NAMES = "127.0.0.1,localhost,0.0.0.0,::1"

SUITE_MISSING = f"""\
The ETSI NGSI-LD test suite was not found at {{path}}.
It is never committed here; fetch it once (commit {SUITE_COMMIT}, an import of the ETSI suite):

  git clone {SUITE_REPO}.git .conformance/suite
  git -C .conformance/suite checkout {SUITE_COMMIT}

or, from a local mirror (a bare git directory or another clone):

  git clone --no-checkout /path/to/mirror .conformance/suite
  git -C .conformance/suite checkout {SUITE_COMMIT}

(a mirror without large blobs may print "unable to read sha1 file of results-*/output.xml";
those are the fork's stored results, not needed.) Or point NGSI_LD_SUITE_DIR at an existing
checkout of {SUITE_COMMIT}; relative paths are taken from the repository root.
"""


def log(msg: str) -> None:
    """Progress messages go to stderr so stdout stays the report."""
    print(f"[conformance] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- the suite


def suite_dir() -> Path:
    """The suite checkout, from NGSI_LD_SUITE_DIR (relative to the repository root)."""
    raw = os.environ.get("NGSI_LD_SUITE_DIR", ".conformance/suite")
    path = Path(raw).expanduser()
    return path if path.is_absolute() else ROOT / path


def check_suite(path: Path, strict: bool) -> str:
    """Exit with instructions if the suite is absent; return its commit (or 'unknown')."""
    if (
        not (path / "TP" / "NGSI-LD").is_dir()
        or not (path / "resources" / "variables.py").is_file()
    ):
        sys.stderr.write(SUITE_MISSING.format(path=path))
        raise SystemExit(2)
    proc = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    commit = proc.stdout.strip() if proc.returncode == 0 else "unknown"
    if not commit.startswith(SUITE_COMMIT):
        msg = f"suite at {path} is at commit {commit}, expected {SUITE_COMMIT}"
        if strict:
            raise SystemExit(f"{msg} (run: git -C {path} checkout {SUITE_COMMIT})")
        log(f"WARNING: {msg}; results may not be comparable")
    return commit[:12]


def ensure_venv(suite: Path, venv: Path, refresh: bool) -> Path:
    """Create or refresh the suite's venv from its requirements.txt; return its robot binary."""
    requirements = suite / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / ".requirements.sha256"
    robot = venv / "bin" / "robot"
    if not refresh and robot.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return robot
    python = os.environ.get("NGSI_LD_SUITE_PYTHON", sys.executable)
    log(f"creating the suite venv at {venv} ({python})")
    if refresh and venv.exists():
        shutil.rmtree(venv)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--quiet", "-r", str(requirements)],
        check=True,
    )
    stamp.write_text(digest + "\n")
    return robot


def context_rewrites(contexts_url: str, standins: bool) -> dict[str, str]:
    """Remote context URL (or prefix) -> local URL, for the working copy."""
    rewrites = {FORGE_CONTEXTS: contexts_url, EGM_COMPOUND: contexts_url + COMPOUND_CONTEXT}
    if standins:
        for remote in STANDIN_CONTEXTS:
            rewrites[remote] = f"{contexts_url}{STANDIN_DIR}/{remote.split('://', 1)[1]}"
    return rewrites


def prepare_work_copy(suite: Path, work: Path, rewrites: dict[str, str], contexts_url: str) -> int:
    """Copy what robot needs to a throwaway dir, pointing remote contexts at local copies.

    The payloads under data/ (and the compound context itself) hard-code the forge URL, so a
    `--variable` override alone cannot keep the broker off the internet. The checkout itself is
    never modified. Returns the number of files rewritten.
    """
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for name in COPIED_DIRS:
        shutil.copytree(suite / name, work / name, symlinks=True)
    rewritten = 0
    for path in work.rglob("*"):
        if path.suffix not in REWRITTEN_SUFFIXES or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        new = text
        for remote, local in rewrites.items():
            new = new.replace(remote, local)
        if new != text:
            path.write_text(new, encoding="utf-8", errors="surrogateescape")
            rewritten += 1
    served = work / "resources" / "jsonld-contexts"
    for local in rewrites.values():
        if local.startswith(f"{contexts_url}{STANDIN_DIR}/"):
            standin = served / local[len(contexts_url) :]
            standin.parent.mkdir(parents=True, exist_ok=True)
            standin.write_text('{"@context": {}}\n', encoding="utf-8")
    return rewritten


def resolve_targets(work: Path, targets: list[str]) -> list[str]:
    """Map area labels, paths below TP/NGSI-LD or suite-relative paths to suite-relative paths."""
    if not targets:
        return [folder for _, folder in report.AREAS]
    labels = {label.lower(): folder for label, folder in report.AREAS}
    resolved: list[str] = []
    for t in targets:
        t = t.strip().rstrip("/")
        candidates = [labels.get(t.lower(), ""), t, f"TP/NGSI-LD/{t}"]
        candidates += [f"TP/NGSI-LD/ContextInformation/{t}"]
        hit = next((c for c in candidates if c and (work / c).exists()), None)
        if hit is None:
            raise SystemExit(f"no such area or path in the suite: {t}")
        resolved.append(hit)
    return resolved


# --------------------------------------------------------------------------- local servers


class _QuietThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class ContextHandler(http.server.SimpleHTTPRequestHandler):
    """Serves resources/jsonld-contexts; logs every request to a file."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".jsonld": "application/ld+json",
        ".json": "application/json",
    }
    log_path: Path

    def log_message(self, format: str, *args: object) -> None:
        with self.log_path.open("a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {self.address_string()} {format % args}\n")


class EgressGuardHandler(http.server.BaseHTTPRequestHandler):
    """A proxy that forwards nothing: it records each outbound attempt and refuses it.

    The broker and robot get HTTP(S)_PROXY pointing here with loopback in NO_PROXY, so any
    request that would leave the machine (e.g. fetching a core context from uri.etsi.org)
    shows up in egress.log instead of hanging on a missing network.
    """

    log_path: Path

    def _refuse(self) -> None:
        with self.log_path.open("a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {self.command} {self.path}\n")
        self.send_error(403, "conformance runner: outbound network access blocked")

    do_CONNECT = do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _refuse

    def log_message(self, format: str, *args: object) -> None:
        return


@contextlib.contextmanager
def serve(
    handler: type[http.server.BaseHTTPRequestHandler], port: int, **attrs: object
) -> Iterator[None]:
    """Run an HTTP server on 127.0.0.1:port in a thread for the duration of the block."""
    # A subclass per server, so two servers of one handler class keep their own attributes.
    bound = type(handler.__name__, (handler,), dict(attrs))
    server = _QuietThreadingServer(("127.0.0.1", port), bound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- the broker


def guarded_env(guard_port: int, disabled: bool) -> dict[str, str]:
    """The environment for a child process, its proxies pointing at an egress guard."""
    env = dict(os.environ)
    if not disabled:
        proxy = f"http://127.0.0.1:{guard_port}"
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env[name] = env[name.lower()] = proxy
        env["NO_PROXY"] = env["no_proxy"] = LOOPBACK_NAMES
    return env


def wait_healthy(base: str, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Poll GET /healthz until it answers 200."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited with code {proc.returncode} before /healthz")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.25)
    raise RuntimeError(f"broker not healthy after {timeout:.0f}s at {base}/healthz ({last})")


@contextlib.contextmanager
def broker(
    args: argparse.Namespace, env: dict[str, str], results: Path
) -> Iterator[tuple[str, str]]:
    """Start a fresh broker (new SQLite file) or use --broker-url; yield (base URL, description)."""
    if args.broker_url:
        base = args.broker_url.rstrip("/")
        wait_healthy(base, None, args.health_timeout)
        yield base, f"external {base}"
        return
    exe = os.environ.get("SMARTREGION_BIN", str(ROOT / ".venv" / "bin" / "smartregion"))
    if not Path(exe).exists() and shutil.which(exe) is None:
        raise SystemExit(
            f"broker executable not found: {exe} (run `make test` once, or set SMARTREGION_BIN)"
        )
    tmp = Path(tempfile.mkdtemp(prefix="smartregion-conformance-"))
    port = args.broker_port or free_port()
    cmd = [exe, "serve", "--anonymous-writes", "--database", f"sqlite:///{tmp}/conf.db"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), *args.broker_arg]
    # The suite's temporal pagination tests (020_13, 020_14, 021_15, 021_16) need an instance
    # limit between 20 and 40 per answer (its README, "Specific test requirements"); the
    # shipped default (10,000) is for real clients.
    env = {
        **env,
        "SMARTREGION_TEMPORAL_MAX_INSTANCES": env.get("SMARTREGION_TEMPORAL_MAX_INSTANCES", "30"),
    }
    log(
        f"starting broker: {' '.join(cmd)} (temporal_max_instances={env['SMARTREGION_TEMPORAL_MAX_INSTANCES']})"
    )
    with (results / "broker.log").open("wb") as out:
        # Own process group: stopping it stops uvicorn's workers too, and nothing else.
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp, start_new_session=True
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base, proc, args.health_timeout)
            yield base, f"smartregion serve (fresh {tmp}/conf.db)"
        except RuntimeError:
            tail = (results / "broker.log").read_text(errors="replace")[-3000:]
            sys.stderr.write(tail)
            raise
        finally:
            stop_process_group(proc)
            if args.keep_db:
                log(f"kept the broker database in {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)


def stop_process_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (graceful uvicorn shutdown), then SIGTERM, then SIGKILL, to the group we started."""
    for sig, grace in ((signal.SIGINT, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)


# --------------------------------------------------------------------------- robot


def robot_command(
    robot: Path,
    args: argparse.Namespace,
    results: Path,
    variables: dict[str, str],
    targets: list[str],
) -> list[str]:
    """The robot invocation; variables override resources/variables.py from the command line."""
    cmd = [str(robot), "--outputdir", str(results), "--name", "NGSI-LD conformance"]
    cmd += ["--consolewidth", "150", "--console", "verbose"]
    if args.dryrun:
        cmd.append("--dryrun")
    for name, value in variables.items():
        cmd += ["--variable", f"{name}:{value}"]
    for pattern in args.test:
        cmd += ["--test", pattern]
    for tag in args.include:
        cmd += ["--include", tag]
    return [*cmd, *args.robot_args, *targets]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    areas = ", ".join(label for label, _ in report.AREAS)
    p = argparse.ArgumentParser(
        prog="scripts/conformance.sh",
        description=__doc__.split("\n")[0],
        epilog=f"Areas: {areas}. Anything after `--` goes to robot unchanged.",
    )
    p.add_argument(
        "targets", nargs="*", help="areas, folders or .robot files (default: all target areas)"
    )
    p.add_argument(
        "--test", "-t", action="append", default=[], help="robot --test pattern (e.g. '019_01*')"
    )
    p.add_argument("--include", "-i", action="append", default=[], help="robot --include tag")
    p.add_argument("--broker-url", help="test an already running broker (base URL, no /ngsi-ld/v1)")
    p.add_argument(
        "--broker-port", type=int, default=0, help="port for the fresh broker (default: free)"
    )
    p.add_argument(
        "--broker-arg", action="append", default=[], help="extra argument for `smartregion serve`"
    )
    p.add_argument("--health-timeout", type=float, default=60.0)
    p.add_argument("--keep-db", action="store_true", help="keep the fresh broker's SQLite file")
    p.add_argument("--refresh-venv", action="store_true", help="recreate .conformance/venv")
    p.add_argument(
        "--strict-commit", action="store_true", help="fail unless the suite is at 1d442dc"
    )
    p.add_argument(
        "--dryrun", action="store_true", help="robot --dryrun: count tests, no broker needed"
    )
    p.add_argument(
        "--update-docs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="rewrite docs/conformance.md's results (default: only for a full run)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when any test fails")
    p.add_argument(
        "--no-standins",
        action="store_true",
        help="keep smartdatamodels.org/fiware.github.io context URLs (fail offline)",
    )
    p.add_argument("--no-egress-guard", action="store_true", help="do not set HTTP(S)_PROXY")
    argv = list(sys.argv[1:] if argv is None else argv)
    robot_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, robot_args = argv[:cut], argv[cut + 1 :]
    ns = p.parse_args(argv)
    ns.robot_args = robot_args
    return ns


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Prepare, start the servers and the broker, run robot, write the report."""
    args = parse_args(argv)
    # Turn SIGTERM (and SIGINT, even when a non-interactive shell ignored it) into exceptions,
    # so the `with` blocks stop the broker and the servers on the way out.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    suite = suite_dir()
    commit = check_suite(suite, args.strict_commit)
    CONF.mkdir(exist_ok=True)
    robot = ensure_venv(suite, CONF / "venv", args.refresh_venv)

    results = CONF / "results"
    if results.exists():
        shutil.rmtree(results)
    results.mkdir(parents=True)
    work = CONF / "work" / "suite"
    ctx_port = free_port()
    contexts_url = f"http://127.0.0.1:{ctx_port}/"
    rewrites = context_rewrites(contexts_url, not args.no_standins)
    rewritten = prepare_work_copy(suite, work, rewrites, contexts_url)
    targets = resolve_targets(work, args.targets)
    full_run = not args.targets and not args.test and not args.include and not args.robot_args
    log(f"suite {commit} copied to {work} ({rewritten} files now use {contexts_url})")

    # One guard per client, so the logs tell whether the broker or the suite tried to get out.
    broker_guard, robot_guard = free_port(), free_port()
    broker_env = guarded_env(broker_guard, args.no_egress_guard)
    robot_env = guarded_env(robot_guard, args.no_egress_guard)
    ctx_log = results / "context-server.log"
    broker_egress, robot_egress = results / "egress-broker.log", results / "egress-suite.log"
    for path in (ctx_log, broker_egress, robot_egress):
        path.touch()
    # Bind `directory` by subclassing: http.server passes (request, address, server) only.
    ctx_dir = str(work / "resources" / "jsonld-contexts")

    class BoundContextHandler(ContextHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=ctx_dir, **kw)  # type: ignore[arg-type]

    # The MQTT notification tests (058_*) start and stop their broker through docker; a
    # stand-in `docker` first on robot's PATH runs a throwaway local Mosquitto instead.
    mqtt_state = results / "mosquitto"
    mqtt_host, mqtt_port = mqtt.pick_mqtt_host()
    mosquitto = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if mosquitto is None:
        log("WARNING: mosquitto not installed; the MQTT notification tests (058_*) will fail")
    else:
        shim_bin = CONF / "work" / "bin"
        mqtt.install(
            shim_bin, mqtt_state, work / MOSQUITTO_CONFIGS, mqtt_host, mqtt_port, mosquitto
        )
        robot_env["PATH"] = f"{shim_bin}{os.pathsep}{robot_env.get('PATH', '')}"
        log(f"MQTT: Mosquitto stand-in on {mqtt_host}:{mqtt.DEFAULT_PORT} and :{mqtt_port}")

    started = time.time()
    rc = 0
    with (
        serve(BoundContextHandler, ctx_port, log_path=ctx_log),
        serve(EgressGuardHandler, broker_guard, log_path=broker_egress),
        serve(EgressGuardHandler, robot_guard, log_path=robot_egress),
    ):
        broker_cm = (
            broker(args, broker_env, results)
            if not args.dryrun
            else contextlib.nullcontext(("http://127.0.0.1:9", "none (dry run)"))
        )
        with broker_cm as (base, broker_desc):
            variables = {
                "url": f"{base}/ngsi-ld/v1",
                "temporal_api_url": f"{base}/ngsi-ld/v1",
                "ngsild_test_suite_context": contexts_url + COMPOUND_CONTEXT,
                # Mock servers the suite starts itself (notifications, context sources, a
                # context server): loopback, on ports that are free right now.
                "notification_server_host": "127.0.0.1",
                "notification_server_port": str(free_port()),
                "context_source_host": "127.0.0.1",
                "context_source_port": str(free_port()),
                "context_server_host": "127.0.0.1",
                "context_server_port": str(free_port()),
                # The suite's MQTT broker (058_*): a loopback address of its own, because
                # endpoints without a port mean 1883 there (see scripts/conformance_mqtt.py).
                "mqtt_broker_host": mqtt_host,
                "mqtt_broker_non_default_port": str(mqtt_port),
            }
            cmd = robot_command(robot, args, results, variables, targets)
            (results / "robot-command.txt").write_text(shlex.join(cmd) + "\n")
            log(f"running robot on {', '.join(targets)} (console: {results / 'console.log'})")
            try:
                with (results / "console.log").open("wb") as out:
                    rc = subprocess.run(
                        cmd,
                        cwd=work,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=robot_env,
                        check=False,
                    ).returncode
            finally:
                if mqtt_state.exists():
                    mqtt.stop_all(mqtt_state)
    elapsed = time.time() - started

    output_xml = results / "output.xml"
    if not output_xml.exists():
        log(f"robot produced no output.xml (exit {rc}); see {results / 'console.log'}")
        return 2
    served = [line for line in ctx_log.read_text().splitlines() if line.strip()]
    log(f"local context server answered {len(served)} requests")
    blocked = {}
    for who, path in (("broker", broker_egress), ("suite", robot_egress)):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        blocked[who] = len(lines)
        targets_hit = sorted({line.split(" ", 1)[1] for line in lines})
        log(f"blocked outbound attempts by the {who}: {len(lines)} {targets_hit[:10]}")

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        "suite": commit,
        "broker": broker_desc,
        "duration": f"{elapsed:.0f}s",
        "selection": "all target areas"
        if full_run
        else " ".join(args.targets + [f"--test {t}" for t in args.test]),
        "blocked outbound requests (broker/suite)": f"{blocked['broker']}/{blocked['suite']}",
    }
    if args.dryrun:
        meta["mode"] = "dry run (no requests sent)"
    update = full_run and not args.dryrun if args.update_docs is None else args.update_docs
    rargs = [
        str(output_xml),
        "--markdown",
        str(results / "report.md"),
        "--json",
        str(results / "summary.json"),
    ]
    rargs += [f"--meta={k}={v}" for k, v in meta.items()]
    if update:
        rargs += ["--doc", str(ROOT / "docs" / "conformance.md")]
    report.main(rargs)
    log(
        f"log: {results / 'log.html'}  report: {results / 'report.md'}"
        + ("  (docs/conformance.md updated)" if update else "")
    )
    if rc >= 252:
        log(f"robot exited with {rc} (error, not test failures)")
        return rc
    return 1 if args.strict and rc else 0


if __name__ == "__main__":
    raise SystemExit(main())
