"""Command line: `python -m gpm_core {train,evaluate,status,denoise,capacity,stability} ...`
(also installed as `gpm`).

    python -m gpm_core train configs/table1_omniglot_gpm.toml --profile quick --seed 0
    python -m gpm_core evaluate runs/table1_omniglot_gpm/quick-seed0
    python -m gpm_core evaluate results/table1_omniglot_gpm/quick-seed0.json
    python -m gpm_core status

A subcommand is a (configure(parser), run(args) -> exit code) pair in COMMANDS; add one
with `register_command`. Known failures print one line, "error: <what>; <what to do>",
and exit with one of EXIT_CODES (printed by --help, tabled in the README).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Callable

import torch

from .analyses import capacity, denoise, stability
from .artifacts import ArtifactWriteError, ResultConflictError
from .config import ConfigError, apply_overrides, load_config
from .datasets import DataCorruptError, DatasetNotFoundError
from .evaluate import evaluate_run, format_metrics
from .report.status import status_markdown
from .runs import CheckpointError, ConfigMismatchError
from .train import TrainingDiverged, train, write_result

COMMANDS: dict[str, tuple[str, Callable, Callable]] = {}

# exit code -> (exception types, meaning); 0 is success, 130 an interrupt (Ctrl-C).
EXIT_CODES = {
    2: ((ConfigError,), "bad config, --set override or argument (--profile, --device, --results-dir)"),
    3: ((TrainingDiverged,), "training diverged (non-finite loss, metric or gradient); last good checkpoint kept"),
    4: ((DatasetNotFoundError, DataCorruptError), "dataset missing or damaged (GPM_DATA)"),
    5: ((CheckpointError, ConfigMismatchError, ResultConflictError, ArtifactWriteError, FileNotFoundError),
        "checkpoint, run folder or result file: unreadable, of another config, seed or\n"
        "       --threads, locked by another run, a result of another config in the way\n"
        "       (--overwrite), not writable or disk full, or no trained run where one is needed"),
}
EPILOG = "exit codes:\n  0    done\n" + "".join(f"  {c}    {m}\n" for c, (_, m) in EXIT_CODES.items()) + \
    "  130  interrupted (Ctrl-C); re-run the same command to resume\n"


def register_command(name: str, help: str, configure: Callable, run: Callable) -> None:
    """Add (or replace) subcommand `name`: configure(subparser), run(args) -> int."""
    COMMANDS[name] = (help, configure, run)


def _configure_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="an experiment file, e.g. configs/table1_omniglot_gpm.toml")
    p.add_argument("--profile", default="paper",
                   help="a [profiles.X] table of the config (e.g. quick, cpu, cpu_long, an ablation arm), or "
                        "paper: the file without a profile table (default paper)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, noise and data order (default 0)")
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default: cuda if there is one)")
    p.add_argument("--run-dir", default=None, help="checkpoint folder (default runs/<experiment>/<profile>-seed<N>)")
    p.add_argument("--results-dir", default="results", help="where the result JSON goes (default results)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a result JSON of another config at this run's path (refused otherwise)")
    p.add_argument("--fresh", action="store_true", help="discard the run's checkpoint and start from step 0")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config field, e.g. --set train.steps=100 (repeatable)")
    p.add_argument("--threads", type=_threads, default=None,
                   help="torch CPU threads, >= 1 (default: torch's choice); a CPU run resumes only with "
                        "the thread count it started with")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _threads(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a thread count; pass an integer >= 1, or leave "
                                         f"--threads out for torch's choice")
    return n


def _run_train(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.profile)
    if args.overrides:
        cfg = apply_overrides(cfg, args.overrides)
    result = train(cfg, seed=args.seed, device=args.device, run_dir=args.run_dir,
                   results_dir=args.results_dir, fresh=args.fresh, progress=not args.no_progress,
                   overwrite=args.overwrite)
    print(f"{cfg.experiment} ({cfg.profile}, seed {args.seed}): {result['steps']} steps in "
          f"{result['train_time_s']:.1f} s, final training loss {result['final_loss']:.4f}")
    print(format_metrics(result["metrics"]))
    if result.get("deviation"):
        print(f"deviation: {result['deviation']}")
    print(f"wrote {result['path']}")
    return 0


def _configure_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run directory (runs/<experiment>/<profile>-seed<N>) or a result JSON")
    p.add_argument("--device", default="auto", help="cpu | cuda | auto")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--write", action="store_true", help="rewrite the run's result JSON (from a run directory, or the JSON's metrics in place)")
    p.add_argument("--overwrite", action="store_true",
                   help="with --write from a run directory: replace a result JSON of another config")


def _run_evaluate(args) -> int:
    from_run_dir = Path(args.run).is_dir()
    evaluate_run(args.run, device=args.device, write=args.write and not from_run_dir)
    if args.write and from_run_dir:  # rebuilt from the checkpoint, as at the end of training
        print(f"wrote {write_result(args.run, device=args.device, results_dir=args.results_dir, overwrite=args.overwrite)}")
    return 0


def _configure_status(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results-dir", default=None, help="default: the repository's results/")


def _run_status(args) -> int:
    if args.results_dir is not None and not Path(args.results_dir).is_dir():
        raise ConfigError(f"--results-dir {args.results_dir} is not a folder; pass the folder that holds "
                          f"<experiment>/<profile>-seed<N>.json (default: the repository's results/)")
    with warnings.catch_warnings():  # status names the files it skipped itself
        warnings.simplefilter("ignore")
        print(status_markdown(results_dir=args.results_dir))
    return 0


register_command("train", "train (or resume) one run and write its result JSON", _configure_train, _run_train)
register_command("evaluate", "re-score a run on the fixed test episodes", _configure_evaluate, _run_evaluate)
register_command("status", "what of both papers is reproduced so far", _configure_status, _run_status)
register_command("denoise", "denoising by iterative reading (GPM Table 2, Figs. 2/7/8; DKM Fig. 3)",
                 denoise.configure, denoise.run)
register_command("capacity", "capacity: bound vs episode length (GPM Fig. 4, DKM Fig. 2 right)",
                 capacity.configure, capacity.run)
register_command("stability", "how close a GPM checkpoint is to the Ben-Cohen divergence limit",
                 stability.configure, stability.run)


def _exit_code(e: BaseException) -> int | None:
    for code, (types, _) in EXIT_CODES.items():
        if isinstance(e, types):
            return code
    return None


def main(argv: list[str] | None = None) -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="python -m gpm_core", description=__doc__.split("\n")[0],
                                     epilog=EPILOG, formatter_class=raw)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help, configure, _) in COMMANDS.items():
        configure(sub.add_parser(name, help=help, description=help, epilog=EPILOG, formatter_class=raw))
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command][2](args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        code = _exit_code(e)
        if code is None:
            raise
        print(f"error: {e}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
