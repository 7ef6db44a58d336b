"""`python -m minillm chat` against a finished smoke run: it finds the run by itself, fails with one line
and status 2 when there is nothing to talk to, keeps a long conversation's whole recent turns within the
context (saying so once), and never prints a special token."""
import fnmatch
import io
import subprocess
import sys

import pytest

from minillm.__main__ import main
from minillm.model import GPT
from minillm.tokenizer import Tokenizer

QUESTION = "Where was Geten Banek born?"
NO_RUN = "run `python -m minillm course` first, or pass --run with a run folder"
LONG = "Where does Geten Banek work, and which city was he born in? Tell me all about it."   # 44 tokens (smoke)


@pytest.fixture
def in_tmp_with_run(smoke_run, tmp_path, monkeypatch):
    """cwd = a fresh folder whose runs/smoke is the smoke run, as after `python -m minillm course`."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "smoke").symlink_to(smoke_run, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def prompts(monkeypatch):
    """Every prompt GPT.stream is given: (ids, max_new_tokens, block_size)."""
    seen, stream = [], GPT.stream

    def spy(self, idx, max_new_tokens, **kwargs):
        seen.append((idx[0].tolist(), max_new_tokens, self.config.block_size))
        return stream(self, idx, max_new_tokens, **kwargs)

    monkeypatch.setattr(GPT, "stream", spy)
    return seen


@pytest.mark.parametrize("model", ["assistant", "base"])
def test_one_shot_without_run_finds_the_run_under_runs(in_tmp_with_run, capsys, model):
    assert main(["chat", "--model", model, QUESTION]) == 0
    out, err = capsys.readouterr()
    assert out.strip() and "<|" not in out
    assert f"[{model} model from runs/smoke/{model}]" in err


def test_a_missing_run_or_model_is_one_line_and_status_2(smoke_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["chat", QUESTION]) == 2
    assert capsys.readouterr() == ("", f"no finished run with the assistant model under runs/: {NO_RUN}\n")
    assert main(["chat", "--run", "no/such/run", QUESTION]) == 2
    assert capsys.readouterr() == ("", f"no finished run in no/such/run: {NO_RUN}\n")
    # a run that has only reached pretraining: no assistant/ yet
    partial = tmp_path / "runs" / "partial"
    partial.mkdir(parents=True)
    for part in ("tokenizer", "base"):
        (partial / part).symlink_to(smoke_run / part, target_is_directory=True)
    assert main(["chat", "--run", str(partial), QUESTION]) == 2
    assert capsys.readouterr() == ("", f"{partial} has no assistant model yet: finish the run with "
                                       "`python -m minillm course`, or pass --model base\n")
    assert main(["chat", QUESTION]) == 2              # runs/ has a run, but none with an assistant
    assert "no finished run with the assistant model under runs/" in capsys.readouterr().err
    assert main(["chat", "--run", str(partial), "--model", "base", QUESTION]) == 0


def test_the_command_line_exits_2_without_a_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "minillm", "chat", "--run", "no/such/run", QUESTION], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert (p.returncode, p.stdout, p.stderr) == (2, "", f"no finished run in no/such/run: {NO_RUN}\n")


def test_a_message_longer_than_the_context(in_tmp_with_run, capsys):
    assert main(["chat", "word " * 300]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines()[-1].startswith("your message is ")
    assert err.splitlines()[-1].endswith(" tokens; this model reads at most 60: shorten it")   # 128 - 64 - 4


def test_interactive_drops_the_oldest_whole_turns_and_goes_on(in_tmp_with_run, capsys, monkeypatch, prompts):
    # 16-token replies leave 112 of the 128 for the conversation: the 4th message no longer fits with all
    # before it, the 6th neither (still one note); the one too long alone is refused and the loop goes on
    turns = [LONG, QUESTION, "word " * 300, LONG, "Thanks!", LONG]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(turns) + "\n\n"))
    assert main(["chat", "--max-new-tokens", "16"]) == 0
    out, err = capsys.readouterr()
    assert "<|" not in out and out.count("assistant> ") == 5
    assert err.count("dropping the oldest turns") == 1
    assert "[the conversation is longer than the model's 128-token context: dropping the oldest turns]" in err
    tok = Tokenizer.load(in_tmp_with_run / "runs" / "smoke" / "tokenizer")
    n = len(tok.encode(turns[2].strip()))
    assert [line for line in err.splitlines() if line.startswith("your message is ")] == [
        f"your message is {n} tokens; this model reads at most 108: shorten it"]                  # 128 - 16 - 4
    B, U, A = tok.bos_id, tok.user_id, tok.assistant_id
    assert all(len(ids) + new <= block for ids, new, block in prompts)          # room for the whole reply
    for (ids, _, _), message in zip(prompts, [m for m in turns if m != turns[2]]):
        assert ids[:2] == [B, U] and ids[-1] == A and ids.count(U) == ids.count(A)  # whole exchanges only
        assert ids[-len(tok.encode(message)) - 2:-2] == tok.encode(message)          # ending with the newest
    # how many user turns each prompt holds: the first exchange is dropped for the 3rd prompt, the rest kept
    assert [ids.count(U) for ids, _, _ in prompts[:4]] == [1, 2, 2, 3]


def test_max_new_tokens_beyond_the_context_is_clamped(in_tmp_with_run, capsys, prompts):
    assert main(["chat", "--max-new-tokens", "500", QUESTION]) == 0
    assert "replies stop at 64 tokens" in capsys.readouterr().err
    assert [new for _, new, _ in prompts] == [64]


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as e:
        main(["chat", "--help"])
    assert e.value.code == 0
    assert f'python -m minillm chat "{QUESTION}"' in capsys.readouterr().out


def run_cli(*args, env=None, cwd=None):
    """The command as a user types it: (exit status, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-m", "minillm", *args], cwd=cwd, capture_output=True, text=True,
                       timeout=300, env={**__import__("os").environ, **(env or {})})
    return p.returncode, p.stdout, p.stderr


def test_an_unknown_preset_in_the_environment_is_one_line(tmp_path):
    assert run_cli("course", "--out", tmp_path / "r", env={"MINILLM_PRESET": "huge"}) == (
        2, "", "unknown preset 'huge'; choose one of smoke, cpu, gpu (by argument or the MINILLM_PRESET "
               "environment variable)\n")


@pytest.mark.parametrize("args, message", [
    (["course", "--augment", "0"], "python -m minillm course: argument --augment: must be a whole number of at "
                                   "least 1, got 0 (see python -m minillm course --help)"),
    (["course", "--preset", "big"], "python -m minillm course: argument --preset: invalid choice: 'big' (choose "
                                    "from *smoke*, *cpu*, *gpu*) (see python -m minillm course --help)"),
    (["chat", "--max-new-tokens", "-5", "hi"], "python -m minillm chat: argument --max-new-tokens: must be a whole "
                                               "number of at least 1, got -5 (see python -m minillm chat --help)"),
    (["chat", "--temperature", "-1", "hi"], "python -m minillm chat: argument --temperature: must be 0 or more, "
                                            "got -1 (see python -m minillm chat --help)"),
])
def test_a_bad_argument_is_one_line_and_status_2(args, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    out, err = capsys.readouterr()      # (how argparse quotes choices depends on the Python version: *)
    assert e.value.code == 2 and out == "" and fnmatch.fnmatchcase(err, message + "\n") and err.count("\n") == 1


def test_a_file_as_run_folder_and_a_missing_gpu_are_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["course", "--preset", "smoke", "--out", str(tmp_path / "notes.txt")]) == 2
    assert capsys.readouterr() == ("", f"--out {tmp_path / 'notes.txt'} is a file: pass a folder for the run "
                                       "(it is made if missing)\n")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    if not __import__("torch").cuda.is_available():
        assert main(["course", "--preset", "smoke", "--device", "cuda", "--out", str(tmp_path / "r")]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1
        assert err.startswith("device 'cuda' was asked for but torch sees no CUDA GPU")


def test_a_damaged_checkpoint_is_one_line(smoke_run, tmp_path, capsys):
    import shutil
    run = tmp_path / "copy"
    shutil.copytree(smoke_run, run, ignore=shutil.ignore_patterns("base", "assistant_v1"))
    weights = run / "assistant" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-64] ^= 0x01
    weights.write_bytes(bytes(data))
    assert main(["chat", "--run", str(run), QUESTION]) == 2
    assert capsys.readouterr() == ("", f"{weights}: the weights changed since they were saved (SHA-256 differs from "
                                       "config.json): restore the file from a copy or retrain\n")


def test_ctrl_c_stops_the_course_with_a_note_and_status_130(tmp_path, monkeypatch, capsys):
    import minillm.course

    def interrupted(run):
        raise KeyboardInterrupt

    monkeypatch.setattr(minillm.course, "run_course", interrupted)
    assert main(["course", "--preset", "smoke", "--out", str(tmp_path / "r")]) == 130
    assert capsys.readouterr().err == "\ninterrupted: run the same command again to continue where it stopped\n"


@pytest.mark.parametrize("command", ["course", "chat"])
def test_each_subcommand_help_shows_examples(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "examples:\n  python -m minillm " + command in out


def test_the_minillm_command_is_installed_and_runs_the_same_main():
    import sysconfig
    from pathlib import Path

    exe = Path(sysconfig.get_path("scripts")) / ("minillm.exe" if sys.platform == "win32" else "minillm")
    assert exe.exists(), "pip install -e . installs the `minillm` command (pyproject's [project.scripts])"
    p = subprocess.run([str(exe), "doctor", "--preset", "smoke"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and p.stdout.endswith("\nready for the course\n"), p.stdout + p.stderr
    p = subprocess.run([str(exe), "export", "--help"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "examples:\n  python -m minillm export" in p.stdout
