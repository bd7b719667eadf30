"""Fuzzing dtorch-run's config handling: seeded random mutations of the shipped configs (text and values) each
end, in-process, within 5 s with exit 0 under --dry-run or exit 2 and a `dtorch-run: ...` message — never a
traceback or a hang."""
from __future__ import annotations

import pathlib
import random
import shutil
import signal
import time

import pytest
import yaml

from dtorch.launcher import cli

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))
CASES = 120
_VALUES = [0, -1, 1, 2, 3, 2**31, 2**32, 2**40, 2**64, 10**20, -(10**20), 0.5, -0.0, 1e308, float("inf"),
           float("nan"), True, False, None, "", "x", "a\0b", "${env:HOME}", "${env:NO_SUCH_DTORCH_VAR}",
           "${nope}", "../../etc", "/dev/zero", "30:00", "yes", [], [1, 2], [[[]]], {}, {"a": 1}, {1: 2},
           "\u202e\U0001f600", "x" * 10_000]
_CHARS = list(":-[]{}&*!?'\"\t\n#%@`|>,\\ ") + ["\0", "\x85", "\ufeff", "<<: *a", "&a ", "*a", "!!str ",
                                                  "!!python/object:os.system ", "? ", "{{", "]]"]


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))


def _mutate_values(text: str, rng: random.Random) -> str:
    doc = yaml.safe_load(text) or {}
    for _ in range(rng.randint(1, 3)):
        paths = list(_paths(doc)) or [("name",)]
        path = rng.choice(paths)
        node = doc
        for k in path[:-1]:
            node = node[k]
        op = rng.random()
        if op < 0.6:
            node[path[-1]] = rng.choice(_VALUES)
        elif op < 0.75:
            del node[path[-1]]
        elif op < 0.9:
            node[str(path[-1])[:-1] + "x"] = node.pop(path[-1])       # a typo of the key
        else:
            node[path[-1]] = {"k": rng.choice(_VALUES)}
    return yaml.safe_dump(doc, allow_unicode=True)


def _mutate_text(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 4)):
        op, at = rng.random(), rng.randrange(len(chars) + 1)
        if op < 0.4:
            chars.insert(at, rng.choice(_CHARS))
        elif op < 0.6 and chars:
            del chars[min(at, len(chars) - 1)]
        elif op < 0.75:
            chars = chars[:at]                                          # truncated
        elif op < 0.9:
            lines = "".join(chars).split("\n")
            i = rng.randrange(len(lines))
            lines.insert(i, lines[rng.randrange(len(lines))])           # a duplicated line
            chars = list("\n".join(lines))
        else:
            chars.insert(at, " " * rng.randint(1, 6))                  # indentation shifted
    return "".join(chars)


def _mutate_mildly(text: str, rng: random.Random) -> str:
    """Changes a user makes on purpose: a number nudged within its range, a comment, a blank line."""
    doc = yaml.safe_load(text) or {}
    numbers = [p for p in _paths(doc) if isinstance(_get(doc, p), (int, float)) and not isinstance(_get(doc, p), bool)
               and _get(doc, p) > 0]
    if numbers and rng.random() < 0.7:
        path = rng.choice(numbers)
        node = _get(doc, path[:-1])
        node[path[-1]] = node[path[-1]] + 1 if isinstance(node[path[-1]], int) else node[path[-1]] / 2
        return yaml.safe_dump(doc, allow_unicode=True)
    lines = text.split("\n")
    lines.insert(rng.randrange(len(lines) + 1), rng.choice(["# a comment", "", "   # indented comment"]))
    return "\n".join(lines)


def _get(doc, path):
    for k in path:
        doc = doc[k]
    return doc


def _case(i: int, folder: pathlib.Path) -> tuple[pathlib.Path, list[str]]:
    rng = random.Random(i)
    for name in SHIPPED:
        shutil.copy(ROOT / "configs" / name, folder / name)
    target = folder / rng.choice([n for n in SHIPPED if n != "base.yaml"] + ["base.yaml"] * (i % 4 == 0))
    text = target.read_text(encoding="utf-8")
    mutate = [_mutate_text, _mutate_values, _mutate_mildly][i % 3]
    mutated = mutate(text, rng)
    target.write_bytes(b"\xff" + mutated.encode() if i % 7 == 6 else mutated.encode("utf-8", "surrogatepass"))
    args = [str(folder / ("digits_mlp.yaml" if target.name == "base.yaml" else target.name)), "--dry-run"]
    if i % 5 == 0:
        args += ["--nproc", str(rng.choice([1, 2, 0, -3, 2**20, 2**20 + 1, 10**20]))]
    if i % 4 == 0:
        args += ["--set", f"train.seed={rng.choice(_VALUES[:16])}"]
    return target, args


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


@pytest.mark.parametrize("i", range(CASES))
def test_mutated_config_exits_0_or_2_with_a_message(tmp_path, monkeypatch, capsys, i):
    target, args = _case(i, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, 5.0)
    start = time.monotonic()
    try:
        rc = cli.main(args)
    except SystemExit as e:          # argparse's usage errors
        rc = e.code
    except _Hang:
        pytest.fail(f"case {i} ({target.name}) did not finish within 5 s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    out, err = capsys.readouterr()
    assert time.monotonic() - start < 5
    assert rc in (0, 2), (rc, err)
    assert "Traceback" not in out + err
    if rc == 0:
        assert "# command:" in out or "would run as one rank" in out
        cfg = yaml.safe_load(out.split("# command:")[0].split("# inside")[0])
        assert cfg["name"] and cfg["job"]
    else:
        lines = err.strip().splitlines()
        assert lines and all(line.startswith(("dtorch-run: ", "usage: ", "dtorch-run ", "  ")) for line in lines)
    assert not any(p.is_dir() for p in tmp_path.iterdir())  # a dry run creates nothing


def test_fuzz_reaches_both_outcomes(tmp_path, monkeypatch, capsys):
    """The mutations are neither all harmless nor all fatal (so the test above tests both paths)."""
    monkeypatch.chdir(tmp_path)
    outcomes = []
    for i in range(CASES):
        folder = tmp_path / str(i)
        folder.mkdir()
        _, args = _case(i, folder)
        try:
            outcomes.append(cli.main(args))
        except SystemExit as e:
            outcomes.append(e.code)
        capsys.readouterr()
    assert outcomes.count(0) >= CASES // 8 and outcomes.count(2) >= CASES // 2
