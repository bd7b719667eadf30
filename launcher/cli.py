"""dtorch-run: the command line. Exit status 0 success, 2 config or usage error, 1 job failure.

    dtorch-run CONFIG.yaml [--set key.path=value ...] [--nproc N] [--resume [RUN_DIR]] [--dry-run]
    dtorch-run [--nproc N] SCRIPT.py [ARGS ...]       (a plain training script, as torchrun runs it)
    dtorch-run submit CONFIG.yaml [--set ...] [--dry-run]
    dtorch-run status|cancel|logs JOBID
    dtorch-run schema
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import compose, config, configs, launch, rank_watch, schema, script, submit, yamlio
from .errors import ConfigError

BUNDLED_CONFIGS = Path(configs.__file__).parent  # configs/*.yaml, installed as package data

USAGE_ERROR, JOB_FAILED = 2, 1
LAUNCH_TIME = time.time()
SUBCOMMANDS = ("run", "submit", "status", "cancel", "logs", "schema")


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML config file, or the name of a bundled one (digits_mlp, gpt_char, ...)")
    p.add_argument("--set", "-s", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a key; VALUE is typed as YAML (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and the command, then exit")


def parser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"dtorch-run{'' if command == 'run' else ' ' + command}",
                                description=__doc__.split("\n\n")[0])
    if command in ("run", "submit"):
        _config_args(p)
    if command == "run":
        p.add_argument("--nproc", "-n", type=int, help="ranks to start (overrides distributed.nproc)")
        p.add_argument("--resume", nargs="?", const=launch.LATEST, metavar="RUN_DIR",
                       help="continue in RUN_DIR (default: this config's newest run directory) from its "
                            "latest checkpoint")
    if command in ("status", "cancel", "logs"):
        p.add_argument("job_id", help="Slurm job id")
    if command == "logs":
        p.add_argument("--output-dir", default="runs", help="where `submit` put the logs (output_dir)")
    return p


def config_path(name: str) -> Path:
    """A path as given, or for a bare name the bundled config NAME(.yaml) (configs/ of the installed dtorch)."""
    path = Path(name)
    if path.exists() or "/" in name:
        return path
    for candidate in (BUNDLED_CONFIGS / name, BUNDLED_CONFIGS / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    return path


def load(args: argparse.Namespace) -> dict:
    sets = list(args.set)
    if getattr(args, "nproc", None) is not None:
        sets.append(f"distributed.nproc={args.nproc}")
    path = config_path(args.config)
    return config.validate(compose.compose(path, sets), str(path))


def _check_job_exists(cfg: dict) -> None:
    if launch.bundled_job_missing(cfg["job"]):
        raise ConfigError(f"job: {cfg['job']!r} names {launch.job_module(cfg['job'])}, which does not exist")


def _run_forwarding_signals(cmd: list[str], env: dict[str, str], scan_output: bool = False,
                            ) -> tuple[int, rank_watch.OutputScan | None]:
    """Run the launch command; SIGUSR1/SIGTERM sent to us (e.g. by Slurm) go on to it.

    ``scan_output``: its stdout passes through a ``rank_watch.OutputScan`` (mpiexec's reports of dead ranks).
    """
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE if scan_output else None)
    scan = rank_watch.OutputScan(child.stdout) if scan_output else None
    if scan is not None:
        scan.start()
    forward = lambda signum, frame: child.send_signal(signum)
    previous = {s: signal.signal(s, forward) for s in (signal.SIGUSR1, signal.SIGTERM)}
    try:
        return child.wait(), scan
    except KeyboardInterrupt:  # the terminal sent SIGINT to mpiexec too; let it finish tearing down
        return child.wait(), scan
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if scan is not None:
            scan.join(timeout=5)


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load(args)
    env = dict(os.environ)
    mode = launch.detect(env)
    if mode == launch.WORKER:
        if args.dry_run:
            print(yamlio.dump(cfg), end="")
            print("# inside an MPI/Slurm launch: this process would run as one rank")
            return 0
        from . import worker  # imports dtorch and MPI: only on ranks

        return worker.run(cfg, env)
    run_dir = launch.resume_dir(cfg, args.resume, env) if args.resume else None
    run_dir = run_dir or launch.run_dir_for(cfg, env)
    saved = run_dir / "config.yaml"
    cmd = launch.launch_command(mode, cfg["distributed"]["nproc"], saved, env)
    spent = launch.spent_step_commands(env) if mode == launch.SRUN else []
    extra_env = launch.rank_env(cfg, run_dir, env)
    extra_env["DTORCH_LAUNCH_TIME"] = repr(LAUNCH_TIME)  # the jobs report the time to their first step
    if sys.stdout.isatty():  # the ranks' stdout is a pipe to mpiexec/srun: tell them about the terminal
        extra_env["DTORCH_PROGRESS_BAR"] = "1"
        extra_env["COLUMNS"] = str(shutil.get_terminal_size().columns)
    if args.dry_run:
        print(yamlio.dump(cfg), end="")
        print("# command:")
        for step in spent:
            print(shlex.join(step))
        print(shlex.join([f"{k}={v}" for k, v in extra_env.items()] + cmd))
        return 0
    _check_job_exists(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    saved.write_text(yamlio.dump(cfg), encoding="utf-8")
    print(f"dtorch-run: {cfg['name']}: {cfg['distributed']['nproc']} ranks via {mode}, run directory {run_dir}",
          file=sys.stderr, flush=True)
    for step in spent:
        subprocess.run(step, stdout=subprocess.DEVNULL)
    rank_watch.clear(run_dir)
    return run_watched(cmd, {**env, **extra_env}, mode, run_dir, cfg["distributed"]["nproc"],
                       f"{cfg['name']} failed ({{mode}} exit status {{rc}}); run directory {run_dir}")


def run_watched(cmd: list[str], env: dict[str, str], mode: str, run_dir: Path, nproc: int, failed: str) -> int:
    """Run the ranks, watching their pids under mpiexec; on failure name the rank that ended the job (from the
    ranks' pid and exit records in ``run_dir``), then ``failed`` (formatted with ``mode`` and ``rc``)."""
    watch = rank_watch.PidWatch(run_dir, nproc) if mode == launch.MPIEXEC else None
    if watch is not None:
        watch.start()
    rc, scan = _run_forwarding_signals(cmd, env, scan_output=mode == launch.MPIEXEC)
    if watch is not None:
        watch.stop()
    if rc == 0:
        return 0
    dead = rank_watch.dead_ranks_message(run_dir, scan.found, watch.ended) if scan and watch else None
    for line in (dead or "").splitlines():
        print(f"dtorch-run: {line}", file=sys.stderr)
    print(f"dtorch-run: {failed.format(mode=mode, rc=rc)}", file=sys.stderr)
    return JOB_FAILED


def cmd_submit(args: argparse.Namespace) -> int:
    cfg = load(args)
    submit.check_for_slurm(cfg)
    config_file, script_file, script = submit.plan(cfg, Path.cwd())
    if args.dry_run:
        print(script, end="")
        print(f"# command: sbatch --parsable {shlex.quote(str(script_file))}")
        return 0
    _check_job_exists(cfg)
    try:
        job_id = submit.submit(cfg, config_file, script_file, script)
    except RuntimeError as e:
        print(f"dtorch-run: {e}", file=sys.stderr)
        return JOB_FAILED
    print(job_id)
    return 0


def dispatch(argv: list[str]) -> int:
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else "run"
    rest = argv[1:] if argv and argv[0] in SUBCOMMANDS else argv
    if command == "run" and script.is_script(rest):  # dtorch-run [--nproc N] train.py ARGS: torchrun's way
        return script.cmd_script(rest, run_watched)
    args = parser(command).parse_args(rest)
    if command == "run":
        return cmd_run(args)
    if command == "submit":
        return cmd_submit(args)
    if command == "schema":
        print(schema.markdown(), end="")
        return 0
    if not args.job_id.replace("_", "").isdigit():
        raise ConfigError(f"{args.job_id!r} is not a Slurm job id")
    if command == "status":
        return submit.status(args.job_id)
    if command == "cancel":
        return submit.cancel(args.job_id)
    return submit.logs(args.job_id, Path(args.output_dir))


def main(argv: list[str] | None = None) -> int:
    """Console entry point (`dtorch-run`, `python -m dtorch.launcher`)."""
    try:
        return dispatch(sys.argv[1:] if argv is None else argv)
    except ConfigError as e:
        for problem in e.problems:
            print(f"dtorch-run: {problem}", file=sys.stderr)
        return USAGE_ERROR
