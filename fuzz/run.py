"""Run one fuzz target under atheris (libFuzzer) with its seed corpus; report what it finds.

    .venv/bin/python fuzz/run.py TARGET [--runs N] [--max-seconds S] [INPUT ...] [-- FLAGS]

TARGET is a module name in ``fuzz/targets`` (``sniff``, ``links``...) or a path to a ``.py``
file with ``test_one_input(data: bytes)``. The seed corpus ``fuzz/corpus/TARGET`` is copied into
a working folder first, so inputs found on the way never land in the repository (``--corpus``
keeps the working folder). Given INPUT files, each is run once instead (to reproduce a finding).
Flags after ``--`` go to libFuzzer as they are (``-max_len=65536``, ``-dict=...``, ``-jobs=2``).

Exit status: 0 when nothing was found, 1 for a finding (an exception the target does not
expect, a hang past ``--timeout`` or memory past ``--rss-limit-mb``), 2 for bad usage. The
input that caused a finding is saved in ``--artifacts`` (by default a new temporary folder)
and its path is printed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

FUZZ_DIR = Path(__file__).resolve().parent
REPO = FUZZ_DIR.parent
TARGETS_DIR = FUZZ_DIR / "targets"
CORPUS_DIR = FUZZ_DIR / "corpus"
SCRATCH_ENV = "SAFEEYE_FUZZ_SCRATCH"  # see fuzz/targets/_support.py
# libFuzzer's names for the inputs it saves, by what went wrong.
_FINDING_PREFIXES = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-")


def target_names() -> list[str]:
    """The targets in ``fuzz/targets``, sorted."""
    return sorted(p.stem for p in TARGETS_DIR.glob("*.py") if not p.stem.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return _child(argv[1], argv[2:])
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    args = _parser().parse_intermixed_args(argv)
    target_file = _target_file(args.target)
    if target_file is None:
        print(f"fuzz: no target {args.target!r}; targets: {', '.join(target_names())}")
        return 2
    name = target_file.stem
    with tempfile.TemporaryDirectory(prefix="safeeye-fuzz-") as work_text:
        work = Path(work_text)
        artifacts = args.artifacts or Path(tempfile.mkdtemp(prefix=f"safeeye-fuzz-{name}-"))
        artifacts.mkdir(parents=True, exist_ok=True)
        before = set(artifacts.iterdir())
        flags = [
            f"-timeout={args.timeout}",
            f"-rss_limit_mb={args.rss_limit_mb}",
            f"-artifact_prefix={artifacts}{os.sep}",
            *extra,
        ]
        if args.inputs:
            flags += [str(Path(p).resolve()) for p in args.inputs]
        else:
            corpus = args.corpus or work / "corpus"
            _seed(corpus, CORPUS_DIR / name)
            flags += [f"-runs={args.runs}", f"-max_total_time={args.max_seconds}", str(corpus)]
        env = {**os.environ, SCRATCH_ENV: str(work / "scratch")}
        command = [sys.executable, str(Path(__file__).resolve()), "--child", str(target_file)]
        # A hard stop well past libFuzzer's own limits, for a hang libFuzzer cannot interrupt.
        budget = None
        if not args.inputs and args.max_seconds > 0:
            budget = args.max_seconds + 3 * args.timeout + 60
        try:
            status = subprocess.run([*command, *flags], env=env, timeout=budget).returncode
        except subprocess.TimeoutExpired:
            status = -1
            print(f"fuzz: {name}: still running after {budget} s; stopped")
        found = sorted(set(artifacts.iterdir()) - before, key=lambda p: p.stat().st_mtime)
        findings = [p for p in found if p.name.startswith(_FINDING_PREFIXES)]
    if status == 0 and not findings:
        if args.artifacts is None:
            shutil.rmtree(artifacts, ignore_errors=True)
        print(f"fuzz: {name}: no finding")
        return 0
    for path in findings:
        print(f"fuzz: {name}: FINDING {path}")
        print(f"fuzz: reproduce with: {sys.executable} fuzz/run.py {args.target} {path}")
    if not findings:
        given = f" with {' '.join(map(str, args.inputs))}" if args.inputs else ""
        print(f"fuzz: {name}: FINDING{given} (exit status {status}; see the log above)")
    return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fuzz/run.py", description="Run one safeeye fuzz target under atheris."
    )
    parser.add_argument("target", help=f"one of: {', '.join(target_names())}; or a .py file")
    parser.add_argument("inputs", nargs="*", help="run only these inputs, once each")
    parser.add_argument("--runs", type=int, default=-1, help="inputs to try (-1: no limit)")
    parser.add_argument("--max-seconds", type=int, default=60, help="total time (0: no limit)")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    parser.add_argument("--rss-limit-mb", type=int, default=2048, help="memory of the process")
    parser.add_argument("--artifacts", type=Path, help="folder for the inputs of findings")
    parser.add_argument("--corpus", type=Path, help="keep the working corpus in this folder")
    return parser


def _target_file(target: str) -> Path | None:
    if target.endswith(".py"):
        path = Path(target).resolve()
        return path if path.is_file() else None
    path = TARGETS_DIR / f"{target}.py"
    return path if target in target_names() and path.is_file() else None


def _seed(corpus: Path, seeds: Path) -> None:
    """Copy the seed corpus into the working corpus (files already there are kept)."""
    corpus.mkdir(parents=True, exist_ok=True)
    if seeds.is_dir():
        for seed in sorted(seeds.iterdir()):
            if seed.is_file() and not (corpus / seed.name).exists():
                shutil.copyfile(seed, corpus / seed.name)


def _child(target_file: str, flags: list[str]) -> int:
    """Import the target with safeeye's modules instrumented, then hand over to libFuzzer."""
    import atheris

    sys.path.insert(0, str(REPO))  # the targets import ``fuzz.targets._support``
    with atheris.instrument_imports(include=["safeeye"]):
        module = _load(Path(target_file))
    atheris.Setup([sys.argv[0], *flags], module.test_one_input)
    atheris.Fuzz()  # libFuzzer ends the process
    return 0


def _load(path: Path) -> ModuleType:
    if path.parent == TARGETS_DIR:
        return importlib.import_module(f"fuzz.targets.{path.stem}")
    spec = importlib.util.spec_from_file_location(f"fuzz_target_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"fuzz: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    sys.exit(main())
