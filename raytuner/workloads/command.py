"""Any program as a trainable: ``trainable: {command: [python, train.py, --lr, "{lr}"]}``.

Each trial runs the program once, without a shell: ``{name}`` placeholders in its arguments
are filled from the trial's config, and the whole config is also given as JSON in
``$RAYTUNER_CONFIG`` and the file ``$RAYTUNER_CONFIG_FILE``. The program reports by printing
metrics on stdout (one JSON object per line, or ``key=value`` pairs behind
``metrics_prefix``); every other line goes to the trial's ``output.log``. It may write a
checkpoint into ``$RAYTUNER_CHECKPOINT_DIR`` before printing a report, and finds the one it
resumes from in ``$RAYTUNER_RESTORE_DIR``. A trial stopped early (ASHA, PBT, stop
conditions, the end of the run) gets SIGTERM, then SIGKILL after ``stop_grace_s``; so does
the program of a trial whose actor dies without stopping it (see :mod:`.reaper`). When the
program exits, its trial ends: what it left running in its process group is stopped the same
way, and output still held open by a process it detached (``setsid``, a daemon) is no longer
read; that process is left alone, as the reaper leaves it.

The Ray Tune class (:class:`CommandRunner`) is built on first use, so validating a spec
does not import Ray Tune.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import json
import os
import queue
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from raytuner.errors import Location, SpecError
from raytuner.results.records import RAY_RESULT_KEYS
from raytuner.space.model import Choice, Constant, Nested, Node, Space
from raytuner.spec.command_options import PLACEHOLDER, CommandTrainable, placeholders
from raytuner.workloads import reaper

if TYPE_CHECKING:
    from raytuner.spec.loader import Experiment
    from raytuner.workloads import TrainableBuild

PYTHON_NAMES = frozenset({"python", "python3"})
LOG_FILE = "output.log"
CONFIG_FILE = "config.json"
TAIL_LINES = 6
TAIL_CHARS = 600
EXIT_DRAIN_S = 1.0  # after the program exits, how long its output may take to close
READ_POLL_S = 0.2  # how often a reader waiting for output checks whether it was abandoned
PIPE_MAX_BYTES = 1 << 20  # the most a pipe holds (Linux's pipe-max-size) when its output is abandoned
_INT = re.compile(r"^[+-]?\d+$")


class CommandFailed(RuntimeError):
    """The program failed (exit status, unreadable report, missing config value); one line."""


# ---------------------------------------------------------------------------- placeholders


def lookup(config: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``a.b.c`` in a nested config.

    Raises:
        KeyError: with a message naming the missing key and the keys that are there.
    """
    node: Any = config
    for depth, part in enumerate(dotted.split(".")):
        if not isinstance(node, Mapping) or part not in node:
            where = ".".join(dotted.split(".")[:depth]) or "the config"
            keys = ", ".join(map(str, node)) if isinstance(node, Mapping) else f"a {type(node).__name__}"
            raise KeyError(f"{{{dotted}}}: {where} has no key '{part}' (it has: {keys or 'nothing'})")
        node = node[part]
    return node


def render(value: Any) -> str:
    """A config value as one argument: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def fill(text: str, config: Mapping[str, Any]) -> str:
    """``text`` with each ``{name}`` replaced by its config value (``{{``/``}}`` are braces).

    Raises:
        KeyError: a placeholder names no config value.
    """

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        if match.group(1) is None:  # refused when the spec was validated
            raise KeyError(f"{text!r}: a lone '{token}'")
        return render(lookup(config, match.group(1)))

    return PLACEHOLDER.sub(replace, text)


# ---------------------------------------------------------------------------- metrics lines


class MetricsLineError(ValueError):
    """A line behind the metrics prefix that is neither key=value pairs nor a JSON object, or a
    report whose keys raytuner cannot take."""


def scalar(text: str) -> Any:
    """``key=value`` values: integers, floats (nan, inf too), true/false, else the text."""
    if _INT.match(text):
        return int(text)
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return float(text)
    except ValueError:
        return text


def parse_metrics(line: str, prefix: str | None) -> dict[str, Any] | None:
    """The metrics on one stdout line, or None if it is ordinary output.

    Without a prefix, a line holding a JSON object is a report. With one, only lines that
    start with it are, and what follows is a JSON object or ``key=value`` pairs separated
    by spaces or commas.

    Raises:
        MetricsLineError: a line behind the prefix that does not parse, or a report with an
            empty key or one of Ray Tune's own (``training_iteration``, ``timestamp``...).
    """
    text = line.strip()
    if prefix is None:
        if not (text.startswith("{") and text.endswith("}")):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return _checked_keys(value, text) if isinstance(value, dict) and value else None
    if not text.startswith(prefix):
        return None
    rest = text[len(prefix) :].strip()
    if rest.startswith("{"):
        try:
            value = json.loads(rest)
        except ValueError as exc:
            raise MetricsLineError(f"a JSON object after {prefix!r} does not parse ({exc}): {text[:200]!r}") from exc
        if not isinstance(value, dict) or not value:
            raise MetricsLineError(f"expected a non-empty JSON object after {prefix!r}: {text[:200]!r}")
        return _checked_keys(value, text)
    metrics: dict[str, Any] = {}
    for pair in filter(None, re.split(r"[\s,]+", rest)):
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise MetricsLineError(f"expected key=value pairs after {prefix!r}, found {pair!r} in {text[:200]!r}")
        metrics[key] = scalar(raw)
    if not metrics:
        raise MetricsLineError(f"a line starts with {prefix!r} but holds no key=value pairs: {text[:200]!r}")
    return _checked_keys(metrics, text)


def _checked_keys(metrics: dict[str, Any], text: str) -> dict[str, Any]:
    """``metrics``, unless a key is empty or one Ray Tune fills in itself.

    Ray keeps a reported ``training_iteration`` or ``timestamp`` in place of its own (rows
    numbered as the program says, a text timestamp failing the trial) and raytuner keeps none
    of its keys as metrics: such a report is refused rather than half taken.
    """
    for key in metrics:
        if not str(key).strip():
            raise MetricsLineError(f"a metric has an empty name: {text[:200]!r}")
        if key in RAY_RESULT_KEYS or str(key).startswith("__"):
            raise MetricsLineError(
                f"{key!r} is one of Ray Tune's own result keys, which it fills in itself; report it under "
                f"another name (e.g. 'step'): {text[:200]!r}"
            )
    return metrics


# ---------------------------------------------------------------------------- validation


def _space_has(node: Node, parts: list[str]) -> bool:
    if not parts:
        return True
    if isinstance(node, Nested):
        child = dict(node.items).get(parts[0])
        return child is not None and _space_has(child, parts[1:])
    if isinstance(node, Choice):
        return any(_space_has(option, parts) for option in node.options)
    if isinstance(node, Constant) and isinstance(node.value, Mapping):
        value: Any = node.value
        for part in parts:
            if not isinstance(value, Mapping) or part not in value:
                return False
            value = value[part]
        return True
    return False


def _placeholder_sources(options: CommandTrainable) -> list[tuple[tuple[str | int, ...], str]]:
    sources: list[tuple[tuple[str | int, ...], str]] = [
        (("trainable", "command", i), word) for i, word in enumerate(options.command)
    ]
    sources += [(("trainable", "env", name), text) for name, text in options.env.items()]
    if options.workdir is not None:
        sources.append((("trainable", "workdir"), options.workdir))
    return sources


def check(options: CommandTrainable, experiment: Experiment, locate: Callable[[Any], Location]) -> None:
    """Refuse placeholders the space cannot fill and a program that cannot be found.

    Raises:
        SpecError: naming the placeholder (and the space's parameters) or the program.
    """
    space: Space = experiment.space
    for path, text in _placeholder_sources(options):
        for name in placeholders(text):
            if not _space_has(space.root, name.split(".")):
                params = ", ".join(key for key, _ in space.root.items) or "no parameters"
                raise SpecError(
                    f"placeholder {{{name}}} names no parameter of the space (it has: {params}); "
                    "write {{ and }} for literal braces",
                    locate(path),
                )
    if options.workdir is not None and placeholders(options.workdir):
        return  # the folder differs per trial: the program is looked for when it starts
    folder = experiment.base_dir / (options.workdir or ".")
    program = options.command[0]
    if placeholders(program):
        return
    if program in PYTHON_NAMES:
        script = options.command[1] if len(options.command) > 1 else ""
        looks_like_script = script.endswith(".py") and not script.startswith("-") and not placeholders(script)
        if looks_like_script and not (folder / script).is_file():
            raise SpecError(
                f"the script '{script}' is not in {folder} (the program's working directory: "
                "the spec's folder, or trainable.workdir)",
                locate(("trainable", "command", 1)),
            )
        return
    if "/" in program:
        executable = folder / program
        if not executable.is_file():
            raise SpecError(f"the program '{program}' is not in {folder}", locate(("trainable", "command", 0)))
        if not os.access(executable, os.X_OK):
            raise SpecError(
                f"the program '{program}' is not executable (chmod +x, or run it with its interpreter: "
                f"[sh, {program}, ...])",
                locate(("trainable", "command", 0)),
            )
        return
    if shutil.which(program) is None:
        raise SpecError(f"the program '{program}' is not found on PATH", locate(("trainable", "command", 0)))


# ---------------------------------------------------------------------------- the launch plan


@dataclass(frozen=True)
class Launch:
    """Everything a trial needs to start the program; sent to the workers with the class."""

    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    workdir: str | None
    base_dir: str  # the spec's folder on the driver
    base_rel: str | None  # the same, relative to the driver's working directory (remote nodes)
    metrics_prefix: str | None
    stop_grace_s: float
    checkpoint: bool

    def base_on_this_node(self) -> Path:
        """The spec's folder here: the driver's path, or its copy in Ray's working_dir."""
        base = Path(self.base_dir)
        if base.is_dir() or self.base_rel is None:
            return base
        origin = os.environ.get("TUNE_ORIG_WORKING_DIR")
        copy = Path(origin, self.base_rel) if origin else None
        return copy if copy is not None and copy.is_dir() else base


def build(options: CommandTrainable, experiment: Experiment) -> TrainableBuild:
    """A Ray Tune ``Trainable`` class running ``options.command`` per trial (actors reusable)."""
    from raytuner.workloads import TrainableBuild

    base = experiment.base_dir.resolve()
    try:
        relative = os.path.relpath(base, Path.cwd().resolve())
    except ValueError:  # another drive
        relative = ".."
    base_rel = None if relative.startswith("..") else relative
    launch = Launch(
        command=tuple(options.command),
        env=tuple(options.env.items()),
        workdir=options.workdir,
        base_dir=str(base),
        base_rel=base_rel,
        metrics_prefix=options.metrics_prefix,
        stop_grace_s=options.stop_grace_s,
        checkpoint=options.checkpoint,
    )
    # trial folders are named after the class: the script's name says more than "python"
    program = options.command[0]
    script = options.command[1] if program in PYTHON_NAMES and len(options.command) > 1 else program
    label = re.sub(r"\W+", "_", Path(script).stem).strip("_") if not placeholders(script) else ""
    label = label or "command"
    cls = type(label, (trainable_class(),), {"launch": launch, "__module__": __name__})
    return TrainableBuild(cls, True, label)


# ---------------------------------------------------------------------------- the running program


def _tail(lines: deque[str]) -> str:
    text = " | ".join(line.strip() for line in lines if line.strip())
    return text if len(text) <= TAIL_CHARS else "..." + text[-TAIL_CHARS:]


def _lines(stream: IO[bytes], abandoned: threading.Event) -> Iterator[str]:
    """The lines of a pipe as text mode reads them (UTF-8, bad bytes replaced, ``\\r\\n`` and
    ``\\r`` ending lines), until its end; or, once ``abandoned`` is set, until what is in it now
    has been read. Closes the pipe.

    A process the program detached (``setsid``) may hold the pipe open long after the program
    has exited, and a blocked read could not be given up: this one polls.
    """
    fd = stream.fileno()
    decoder = io.IncrementalNewlineDecoder(codecs.getincrementaldecoder("utf-8")(errors="replace"), translate=True)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    pending, left = "", PIPE_MAX_BYTES
    try:
        while True:
            if abandoned.is_set():
                if left <= 0 or not poller.poll(0):
                    return
            elif not poller.poll(READ_POLL_S * 1000):
                continue
            chunk = os.read(fd, 65536)
            if abandoned.is_set():
                left -= len(chunk)
            *ends, rest = decoder.decode(chunk, final=not chunk).split("\n")
            for end in ends:
                yield pending + end + "\n"
                pending = ""
            pending += rest
            if not chunk:
                if pending:
                    yield pending
                return
    finally:
        stream.close()


def _signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            entries.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)


@dataclass
class _Report:
    metrics: dict[str, Any]
    snapshot: Path | None  # a copy of the checkpoint folder taken when the line was read


class Program:
    """One run of the program: its process group, output readers and report queue."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], launch: Launch, log: Path, scratch: Path):
        self.argv = argv
        self.launch = launch
        self.scratch = scratch
        self.checkpoint_dir = Path(env["RAYTUNER_CHECKPOINT_DIR"]) if "RAYTUNER_CHECKPOINT_DIR" in env else None
        self.reports: queue.Queue[_Report | MetricsLineError | None] = queue.Queue()
        self.stdout_tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.stderr_tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.lines = 0
        self.terminated = False
        self._abandoned = threading.Event()  # set: the readers stop once the pipes are empty
        self._signature: tuple[tuple[str, int, int], ...] = ()
        self._snapshots = 0
        self._log = open(log, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._log_lock = threading.Lock()
        try:
            self.process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group: signals reach its children too
                bufsize=0,  # read by _lines, from the pipes themselves
            )
        except OSError as exc:
            self._log.close()
            raise CommandFailed(f"cannot start {self.display()} in {cwd}: {exc.strerror or exc}") from exc
        # if the actor dies without close() (killed, its node lost), this ends the group
        self._guard = reaper.guard(self.process.pid, launch.stop_grace_s)
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        threading.Thread(target=self._end_leftovers, daemon=True).start()

    def display(self) -> str:
        text = shlex.join(self.argv)
        return repr(text if len(text) <= 160 else text[:157] + "...")

    def _write_log(self, stream: str, line: str) -> None:
        with self._log_lock:
            self._log.write(line if stream == "out" else f"[stderr] {line}")
            if not line.endswith("\n"):
                self._log.write("\n")
            self._log.flush()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        try:
            for line in _lines(self.process.stdout, self._abandoned):
                try:
                    metrics = parse_metrics(line, self.launch.metrics_prefix)
                except MetricsLineError as exc:
                    self._write_log("out", line)
                    self.reports.put(exc)
                    continue
                if metrics is None:
                    self.lines += 1
                    self.stdout_tail.append(line)
                    self._write_log("out", line)
                else:
                    self.reports.put(_Report(metrics, self._snapshot()))
        finally:
            self.reports.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in _lines(self.process.stderr, self._abandoned):
            self.stderr_tail.append(line)
            self._write_log("err", line)

    def _end_leftovers(self) -> None:
        """Once the program exits, stop what it left running in its group, and stop reading.

        A child it started in the background keeps its stdout open, so the trial would wait
        for the end of that output forever; the program's exit ends the trial instead. A child
        in a session of its own (``setsid``) is out of the group's reach: its output is
        abandoned, and it is left running.
        """
        self.process.wait()
        self._threads[0].join(timeout=EXIT_DRAIN_S)
        if any(thread.is_alive() for thread in self._threads):  # someone still holds the output open
            reaper.end_group(self.process.pid, self.launch.stop_grace_s)
            self._abandoned.set()

    def _snapshot(self) -> Path | None:
        """Copy the checkpoint folder if the program changed it since the last report."""
        if self.checkpoint_dir is None:
            return None
        try:
            signature = _signature(self.checkpoint_dir)
            if not signature or signature == self._signature:
                return None
            self._snapshots += 1
            target = self.scratch / f"snapshot-{self._snapshots}"
            shutil.copytree(self.checkpoint_dir, target)
        except OSError:  # the program is rewriting it right now: the next report will carry it
            return None
        self._signature = signature
        return target

    def next_report(self) -> _Report | None:
        """The next report, or None once the program has exited after its last one.

        Raises:
            CommandFailed: the program exited with an error, or printed a bad metrics line.
        """
        item = self.reports.get()
        if isinstance(item, MetricsLineError):
            self.terminate()
            raise CommandFailed(f"{self.display()} printed a metrics line raytuner cannot take: {item}")
        if item is not None:
            return item
        status = self.process.wait()
        self._threads[1].join(timeout=5)
        if status != 0:
            raise CommandFailed(f"{self.display()} {self._status(status)}; {self._stderr()}")
        return None

    def _status(self, status: int) -> str:
        if status < 0:
            try:
                name = signal.Signals(-status).name
            except ValueError:
                name = f"signal {-status}"
            return f"was killed by {name} (exit status {status})"
        return f"exited with status {status}"

    def _stderr(self) -> str:
        tail = _tail(self.stderr_tail)
        return f"stderr ends: {tail}" if tail else "no output on stderr"

    def no_metrics_error(self) -> CommandFailed:
        """The error for a program that exited cleanly without a single report."""
        prefix = self.launch.metrics_prefix
        wanted = f"lines starting with {prefix!r}" if prefix else "a line holding one JSON object"
        if self.lines:
            printed = f"its last stdout lines were: {_tail(self.stdout_tail)}"
            if prefix is None and any("=" in line for line in self.stdout_tail):
                printed += " (for key=value lines, set trainable.metrics_prefix)"
        else:
            printed = "it printed nothing on stdout"
        return CommandFailed(
            f"{self.display()} exited with status 0 without printing any metrics ({wanted}); "
            f"{printed}; {self._stderr()}"
        )

    def terminate(self) -> None:
        """SIGTERM to the program's process group, SIGKILL after the grace period."""
        if self.process.poll() is None:
            self.terminated = True
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=self.launch.stop_grace_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait()
        for thread in self._threads:
            thread.join(timeout=2)

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def close(self) -> None:
        self.terminate()
        self._abandoned.set()  # the readers close the pipes
        for thread in self._threads:
            thread.join(timeout=2)
        with self._log_lock:
            self._log.close()
        if self._guard is not None:
            self._guard.release()


class _CommandMixin:
    """The Ray Tune ``Trainable`` hooks; combined with ``ray.tune.Trainable`` on first use."""

    launch: Launch
    config: dict[str, Any]
    trial_id: str
    trial_name: str
    logdir: str
    _storage: Any

    def setup(self, config: dict[str, Any]) -> None:
        self._program: Program | None = None
        self._scratch: Path | None = None
        self._restore_dir: Path | None = None
        self._snapshot: Path | None = None
        self._reported = 0

    # ------------------------------------------------------------------ Ray hooks

    def step(self) -> dict[str, Any]:
        from ray.tune.result import RESULT_DUPLICATE, SHOULD_CHECKPOINT

        if self._program is None:
            self._program = self._start()
        report = self._program.next_report()
        if report is None:
            if self._reported == 0:
                raise self._program.no_metrics_error()
            # the program ended on its own: Ray ends the trial on its last report
            return {RESULT_DUPLICATE: True, SHOULD_CHECKPOINT: False}
        self._reported += 1
        result = dict(report.metrics)
        if report.snapshot is not None:
            if self._snapshot is not None:
                shutil.rmtree(self._snapshot, ignore_errors=True)
            self._snapshot = report.snapshot
            result[SHOULD_CHECKPOINT] = True
        return result

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        source = self._snapshot or self._restore_dir
        if source is not None:
            shutil.copytree(source, checkpoint_dir, dirs_exist_ok=True)

    def load_checkpoint(self, checkpoint: Any) -> None:
        self._stop_program()
        scratch = self._scratch_dir()
        target = scratch / f"restore-{len(list(scratch.glob('restore-*'))) + 1}"
        shutil.copytree(str(checkpoint), target)
        self._restore_dir = target

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        self._shutdown()
        self.setup(new_config)
        return True

    def cleanup(self) -> None:
        self._shutdown()

    # ------------------------------------------------------------------ helpers

    def _scratch_dir(self) -> Path:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="raytuner-command-"))
        return self._scratch

    def _trial_folder(self) -> Path:
        """The trial's folder in the experiment (local storage), else Ray's trial working dir."""
        folder = Path(self.logdir)
        storage = self._storage
        if storage is not None:
            try:
                import pyarrow.fs

                if isinstance(storage.storage_filesystem, pyarrow.fs.LocalFileSystem):
                    folder = Path(storage.trial_fs_path)
            except Exception:  # noqa: BLE001 - fall back to Ray's working directory
                pass
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _start(self) -> Program:
        launch = self.launch
        config = self.config
        try:
            argv = [fill(word, config) for word in launch.command]
            user_env = {name: fill(text, config) for name, text in launch.env}
            workdir = launch.base_on_this_node() / fill(launch.workdir or ".", config)
        except KeyError as exc:
            raise CommandFailed(f"cannot fill the command from this trial's config: {exc.args[0]}") from exc
        if argv[0] in PYTHON_NAMES:
            argv[0] = sys.executable
        workdir.mkdir(parents=True, exist_ok=True)
        trial = self._trial_folder()
        scratch = self._scratch_dir()
        config_text = json.dumps(config, default=str)
        (trial / CONFIG_FILE).write_text(config_text)

        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"  # reports arrive as they are printed, not at exit
        from raytuner.execution.devices import trial_gpu_ids

        gpus = trial_gpu_ids()  # the GPUs raytuner spread this trial to, else those Ray gave it
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        env.update(user_env)
        env.update(
            {
                "RAYTUNER_CONFIG": config_text,
                "RAYTUNER_CONFIG_FILE": str(trial / CONFIG_FILE),
                "RAYTUNER_TRIAL_ID": self.trial_id,
                "RAYTUNER_TRIAL_NAME": self.trial_name,
                "RAYTUNER_TRIAL_DIR": str(trial),
                "RAYTUNER_GPU_IDS": ",".join(gpus),
            }
        )
        env.pop("RAYTUNER_RESTORE_DIR", None)
        env.pop("RAYTUNER_CHECKPOINT_DIR", None)
        if launch.checkpoint:
            checkpoint_dir = scratch / f"checkpoint-{len(list(scratch.glob('checkpoint-*'))) + 1}"
            checkpoint_dir.mkdir()
            env["RAYTUNER_CHECKPOINT_DIR"] = str(checkpoint_dir)
            if self._restore_dir is not None:
                env["RAYTUNER_RESTORE_DIR"] = str(self._restore_dir)
        return Program(argv, workdir, env, launch, trial / LOG_FILE, scratch)

    def _stop_program(self) -> None:
        if self._program is not None:
            self._program.close()
            self._program = None
        self._reported = 0

    def _shutdown(self) -> None:
        self._stop_program()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


_CLASS: list[type] = []


def trainable_class() -> type:
    """``CommandRunner``: the ``ray.tune.Trainable`` subclass, made once per process."""
    if not _CLASS:
        from ray.tune import Trainable

        cls = type("CommandRunner", (_CommandMixin, Trainable), {"__module__": __name__})
        cls.__doc__ = "Runs the spec's command once per trial (see raytuner.workloads.command)."
        _CLASS.append(cls)
    return _CLASS[0]


def __getattr__(name: str) -> Any:
    # pickle finds the class by name on the workers without importing Ray Tune here first
    if name == "CommandRunner":
        return trainable_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
