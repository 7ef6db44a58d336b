"""The bench scripts behind notebook 08 and bench/RESULTS.md run on a finished run and print their tables.
(Their figures mean something only on the cpu preset; here they run on the smoke run.)"""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from minillm.config import get_preset
from minillm.world import ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent


def bench(script: str, *args) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_unknown_people_prints_surprise_probe_and_confidence(smoke_run):
    out = bench("unknown_people.py", "--run", smoke_run)
    assert "surprise tells held-out from made-up (evaluation) names with AUROC" in out
    probe_rows = [l for l in out.splitlines() if l.strip()[:1].isdigit() and l.strip().endswith("%")]
    assert len(probe_rows) == 2                     # one per block of the smoke model
    assert "answer only above" in out and "turns away 90% of made-up people" in out


def test_teach_familiarity_reports_before_and_after(smoke_run):
    base = smoke_run / "base" / "model.safetensors"
    before = base.stat().st_mtime_ns
    out = bench("teach_familiarity.py", "--run", smoke_run, "--steps", 4, "--repeats", 2)
    rows = [l.split() for l in out.splitlines() if l.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["0", "4"]
    assert all(r[-1].endswith("%") for r in rows)
    assert base.stat().st_mtime_ns == before        # it continues training a copy in memory; the run is only read


def test_name_context_and_fix_sweep_run(smoke_run):
    assert "after the question" in bench("name_context.py", "--run", smoke_run)
    out = bench("fix_sweep.py", "--run", smoke_run, "--sizes", 3)
    assert out.splitlines()[-1].split()[0] == "3"
    assert (smoke_run / "fix_sweep_3" / "model.safetensors").exists()


def test_chat_context_prints_each_question_in_its_chat_alone_moved_and_named(smoke_run):
    lines = bench("chat_context.py", "--run", smoke_run).splitlines()
    assert lines[0].endswith("assistant_v1: held-out people, right")
    labels = [line[:42].strip() for line in lines[1:]]
    assert labels[:6] == ["after small talk, in its chat", "the same questions alone",
                          "alone, moved to the chat's positions", "pronoun follow-up, in its chat",
                          "the same chat, with the name", "that question alone"]
    moved = [int(label.rsplit(" ", 1)[1]) for label in labels[6:]]     # the smoke context has room for less
    assert [label.rsplit(" ", 1)[0] for label in labels[6:]] == ["standard questions, moved by"] * 4
    assert moved[0] == 0 and moved == sorted(moved) and moved[-1] <= 100
    assert all(line.endswith("%") and 0 <= float(line.split()[-1][:-1]) <= 100 for line in lines[1:])


def test_chat_context_moves_positions_and_puts_them_back():
    import importlib.util

    import torch
    from minillm.model import GPT, GPTConfig
    spec = importlib.util.spec_from_file_location("chat_context", ROOT / "bench" / "chat_context.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=32, block_size=16, n_layer=1, n_head=1, n_embd=8)).eval()
    x = torch.tensor([[1, 2, 3]])
    wpe = model.transformer.wpe.weight
    with torch.no_grad():
        before = model(x)[0]
        with mod.positions_moved(model, 5):
            moved = model(x)[0]
            wte = model.transformer.wte(x)
            assert torch.equal(model.transformer.wpe(torch.arange(3)) + wte, wte + wpe[5:8])
        assert torch.equal(model(x)[0], before) and not torch.allclose(moved, before)


def test_teach_familiarity_then_finetune_prints_both_assistants(smoke_run):
    out = bench("teach_familiarity.py", "--run", smoke_run, "--steps", 2, "--repeats", 1, "--everyone", "--finetune")
    lines = out.splitlines()
    assert "fine-tuned from it:" in out
    assert lines[-2].split()[:2] == ["first", "set"] and lines[-1].split()[:3] == ["with", "the", "fix"]
    assert all(v.endswith("%") for v in lines[-1].split()[3:])


def test_course_bench_set_changes_the_preset():
    import importlib.util
    from minillm.config import get_preset
    spec = importlib.util.spec_from_file_location("bench_course", ROOT / "bench" / "course.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    p, world = mod.changed(get_preset("smoke"), ["pretrain.max_steps=7", "pretrain.optimizer=muon",
                                                  "sft.learning_rate=2e-3", "world.answered_share=0.5"])
    assert (p.pretrain.max_steps, p.pretrain.optimizer, p.sft.learning_rate) == (7, "muon", 2e-3)
    assert world == {"answered_share": 0.5}
    assert get_preset("smoke").pretrain.max_steps != 7                 # the preset itself is unchanged
    with pytest.raises(SystemExit, match="TrainConfig has no field 'nope'"):
        mod.changed(p, ["pretrain.nope=1"])
    with pytest.raises(SystemExit, match="WorldConfig has no field 'size'"):
        mod.changed(p, ["world.size=3"])
    with pytest.raises(SystemExit, match="write PART.FIELD=VALUE"):
        mod.changed(p, ["layers.n_layer=2"])
    deeper, _ = mod.changed(p, ["model.n_layer=6", "model.n_embd=48"])          # the network's shape
    assert (deeper.model.n_layer, deeper.model.n_embd, deeper.model.n_head, deeper.pretrain) == (6, 48, p.model.n_head, p.pretrain)
    with pytest.raises(SystemExit, match="GPTConfig has no field 'layers'"):
        mod.changed(p, ["model.layers=6"])
    with pytest.raises(SystemExit, match=r"--set 'model.n_embd=63': n_embd \(63\) must be divisible by n_head"):
        mod.changed(p, ["model.n_embd=63"])
    assert mod.changed(p, ["world.thanks_between_questions=1"])[1] == {"thanks_between_questions": True}
    assert mod.changed(p, ["world.thanks_between_questions=0"])[1] == {"thanks_between_questions": False}
    with pytest.raises(SystemExit, match="thanks_between_questions is a yes/no setting: write "
                                         "world.thanks_between_questions=1 or world.thanks_between_questions=0"):
        mod.changed(p, ["world.thanks_between_questions=yes"])
    packed, _ = mod.changed(p, ["preset.sft_pack=128", "preset.sft_mix=0.25"])   # the preset's own fields
    assert (packed.sft_pack, packed.sft_mix, packed.sft) == (128, 0.25, p.sft)
    with pytest.raises(SystemExit, match="Preset has no field 'packing'"):
        mod.changed(p, ["preset.packing=1"])
    with pytest.raises(SystemExit, match="Preset has no field 'vocab_size'"):     # a property, not a field
        mod.changed(p, ["preset.vocab_size=512"])
    with pytest.raises(SystemExit, match="sft is not a number, a word or a yes/no setting"):
        mod.changed(p, ["preset.sft=1"])


def test_custom_formats_prints_format_and_facts_per_guideline(smoke_run):
    out = bench("custom_formats.py", "--run", smoke_run)
    rows = {line[:20].strip(): line[20:].split() for line in out.splitlines()[1:]}
    assert list(rows) == ["pirate", "json, name first", "json, value first"]
    assert all(len(r) == 2 and all(v.endswith("%") for v in r) for r in rows.values())


def test_checkpoint_integrity_prints_the_hashing_cost():
    out = bench("checkpoint_integrity.py", "--presets", "smoke", "--repeats", 1)
    header, row = out.splitlines()
    assert header.split()[:6] == ["preset", "params", "files", "hash", "save", "load"]
    assert row.split()[0] == "smoke" and row.endswith("%")


def test_thread_policy_measures_every_policy_quiet_and_loaded():
    out = bench("thread_policy.py", "--steps", 1, "--warmup", 0)
    import os
    import re
    rows = [l.split() for l in out.splitlines()[2:]]
    cores = os.cpu_count()
    want = [(str(cores), "default"), (str(cores), "PASSIVE"), (str(cores), "minillm")]     # one thread per core
    want += [("1", "default"), ("1", "PASSIVE")] if cores > 1 else []
    assert [(r[0], r[1]) for r in rows] == want
    # minillm's row says which wait it chose when quiet and beside the busy process
    assert re.fullmatch(r"\((default|PASSIVE)/(default|PASSIVE)\)", rows[2][2])
    for r in rows:
        rates = [float(r[i - 1]) for i, w in enumerate(r) if w == "st/s"]
        assert len(rates) == 2 and min(rates) > 0 and r[-1].endswith("%")


def test_attention_compares_readable_and_fused_and_names_the_kernel():
    out = bench("attention.py", "--device", "cpu", "--lengths", 32, 64, "--n-embd", 32, "--n-head", 2, "--batch", 1,
                "--warmup", 0, "--repeats", 1)
    rows = [l.split() for l in out.splitlines() if l.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["32", "64"]
    for r in rows:
        assert r[1].endswith("ms") and r[2].endswith("ms") and r[3].endswith("x")
        assert r[-1] in ("flash", "memory-efficient", "cuDNN", "math")     # what the profiler saw SDPA run


def test_train_throughput_gpu_mode_runs_its_three_ways_on_a_cpu():
    out = bench("train_throughput.py", "--device", "cpu", "--model", "tiny", "--no-compile", "--steps", 1,
                "--warmup", 1)
    rows = [l.split() for l in out.splitlines() if l.split()[:1] and l.split()[0] in ("bf16", "fp32", "fp16")]
    assert [(r[0], r[1]) for r in rows] == [("bf16", "sdpa"), ("fp32", "manual"), ("fp16", "sdpa")]
    assert "no loss scaler" in " ".join(rows[0]) and "fell 0x" in " ".join(rows[2])


def test_exercise_answers_prints_the_mask_variants_the_few_shot_base_and_each_fix(smoke_run):
    out = bench("exercise_answers.py", "--run", smoke_run, "--sizes", 3)
    early, _, out = out.partition("05 exercises 1 and 2: ")
    # the chapters that take seconds: 00's three tiny runs, 01's tokenizers, 03's two learning rates and counts
    rows = early.splitlines()
    assert rows[0].startswith("00 exercises 1 and 4: ")
    runs = [r.split() for r in rows[2:5]]
    assert [r[:-4] for r in runs] == [["text"], ["text"], ["random", "bytes"]]
    assert [r[-4] for r in runs] == ["fp32", "bf16", "fp32"]
    assert all(abs(float(r[-2]) - math.log(256)) < 0.1 for r in runs)        # each starts at chance, ln 256
    assert rows[5].startswith("01 exercise 1: ") and [r.split()[1] for r in rows[6:9]] == ["512:", "1024:", "2048:"]
    assert all(r.endswith(" bytes per token") or r.endswith("too little text for this many merges") for r in rows[6:9])
    assert rows[6].endswith(" bytes per token")                              # 512 tokens: even smoke's world has the text
    assert rows[9].startswith("01 exercise 2: ") and rows[9].endswith("with a hundred copies in the documents")
    assert rows[10].startswith("03 exercise 1: ") and all(r.startswith("  learning rate ") for r in rows[11:13])
    assert len(rows[11].split(": ")[1].split(", ")) == 3
    assert rows[13].startswith("03 exercise 2: ") and all("passes =" in r for r in rows[14:16])
    assert rows[16].startswith("03 exercise 3: ") and "n=64 " in rows[16] and "n=2048 " in rows[16]
    assert rows[17].startswith("04 exercise 2: ") and " name-first probes, greedy right " in rows[17]
    lines = ("05 exercises 1 and 2: " + out).splitlines()
    assert lines[0].startswith("05 exercises 1 and 2: ") and lines[2].split()[:3] == ["with", "the", "mask"]
    assert lines[3].split()[:3] == ["without", "the", "mask"] and lines[4].split()[:3] == ["no", "target", "on"]
    assert all(len([c for c in line.split() if c.endswith("%")]) == 3 for line in lines[2:5])
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    assert lines[5].startswith("06 exercise 2: the first assistant on the held-out questions, ")
    quarter, whole = lines[5].split(", ", 1)[1].split("; ")
    assert quarter.startswith(f"{get_preset('smoke').sft.max_steps // 4} steps: answers ")
    assert f"right {100 * metrics['heldout_accuracy_before_fix']:.1f}%" in whole     # all the steps: the first assistant
    assert (smoke_run / "assistant_v1_short" / "model.safetensors").exists()
    assert lines[6].startswith("06 exercise 4: ") and "10 samples at temperature 1.0 state the true date" in lines[6]
    sampled = [l for l in lines if l.startswith("07 exercise 2: ")]
    assert len(sampled) == 1 and sampled[0].count("temperature ") == 3
    # the greedy row is the run's own held-out accuracy: the same questions, the same scoring
    greedy = float(sampled[0].split("temperature 0 ")[1].split("%")[0]) / 100
    assert greedy == pytest.approx(metrics["heldout_accuracy_before_fix"], abs=5e-4)
    by_attribute = lines.index(next(l for l in lines if l.startswith("07 exercise 4: ")))
    attributes = lines[by_attribute + 1:by_attribute + 6]
    assert [l.split()[0] for l in attributes] == list(ATTRIBUTES) and all(" stored " in l for l in attributes)
    asked = sum(int(l.split()[4]) for l in attributes)
    assert sum(int(l.split()[2]) for l in attributes) == round((1 - metrics["heldout_accuracy_before_fix"]) * asked)
    assert lines[by_attribute + 6].startswith("  facts the probe misses: ")
    start = next(i for i, l in enumerate(lines) if l.startswith("07 exercise 1"))
    out = "\n".join(l for l in lines[start:by_attribute] if not l.startswith("07 exercise 2: "))
    out += "\n" + "\n".join(lines[by_attribute + 7:])
    assert "answered questions in front" in out.splitlines()[0] and out.startswith("07 exercise 1, the base model with")
    rows = [l.split() for l in out.splitlines() if l.startswith("  ") and l.strip().endswith("%")]
    assert rows[0][0] == "3" and rows[1][0].isdigit() and rows[1][1:3] == ["single-turn", "only"]
    assert [" ".join(r[:3]) for r in rows[2:]] == ["the first assistant", "the released assistant", "the first +"]
    assert "50 steps on the fix alone" in " ".join(rows[4])
    assert all(len([c for c in r if c.endswith("%")]) == 5 for r in rows)
    assert (smoke_run / "scope_k3" / "model.safetensors").exists() and (smoke_run / "patch50" / "model.safetensors").exists()
