"""`python -m minillm course --preset smoke` runs every stage and writes a complete report; a re-run
reuses the finished stages; `python -m minillm chat` answers from the run."""
import json

import pytest

from minillm.__main__ import main
from minillm.course import ensure_world, make_run
from minillm.data import split_documents
from minillm.evaluate import ASSISTANT_FIGURES, LOG_CLASSES

RATES = ([k for k in ASSISTANT_FIGURES] + [k + "_before_fix" for k in ASSISTANT_FIGURES]
         + ["sft_people_accuracy", "base_answer_rate", "base_heldout_accuracy", "base_stored_accuracy"])
METRIC_KEYS = RATES + ["base_doc_loss", "assistant_doc_loss", "pretrain_flops", "sft_flops", "pretrain_seconds",
                       "sft_seconds", "total_seconds", "preset", "augment", "unseen_to_standard_ratio",
                       "monitoring_before_fix", "monitoring", "sft_conversations", "fix_conversations"]


def test_course_writes_report_metrics_and_checkpoints(smoke_run):
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    for key in METRIC_KEYS:
        assert key in metrics, key
    for key in RATES:
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["preset"] == "smoke" and metrics["augment"] == 5
    # pretraining runs more steps on longer sequences than SFT: it must cost more compute
    assert metrics["pretrain_flops"] > metrics["sft_flops"] > 0
    assert metrics["compute_ratio"] == pytest.approx(metrics["pretrain_flops"] / metrics["sft_flops"])
    report = (smoke_run / "report.md").read_text()
    for section in ("## Headline numbers", "## What the base model does with a question",
                    "## The same prompts, both models", "## Iterating on the assistant", "## What it cost", "Llama-2"):
        assert section in report, section
    # what the base model does with a question: three kinds of reply, per split, shares that add up
    from minillm.evaluate import REPLY_KINDS
    for split in ("heldout", "sft"):
        kinds = metrics["base_reply_kinds"][split]
        assert list(kinds) == list(REPLY_KINDS) and sum(kinds.values()) == pytest.approx(1.0)
    assert "25% of each batch is pretraining text" in report      # the smoke preset's sft_mix, stated
    # the report's tables show the run's own figures: every target row, and each figure before and after the fix
    from minillm.report import ASSISTANT_KEYS
    from minillm.targets import target_rows
    for t in target_rows(metrics):
        assert f"| `{t['key']}` | {100 * t['value']:.1f}% | {t['op']} {100 * t['bound']:.1f}% " in report, t["key"]
    for k in ASSISTANT_KEYS:
        assert f"| `{k}` | {100 * metrics[k + '_before_fix']:.1f}% | {100 * metrics[k]:.1f}% |" in report, k
    # the deployment log: every class once, worst first; the fix stays within a tenth of the first set
    log = metrics["monitoring_before_fix"]
    assert sorted(r["class"] for r in log) == sorted(c for c, _, _ in LOG_CLASSES)
    assert [r["failures"] for r in log] == sorted((r["failures"] for r in log), reverse=True)
    assert 0 < metrics["fix_conversations"] <= metrics["sft_conversations"] // 10
    for name in ("base", "assistant_v1", "assistant"):
        assert (smoke_run / name / "model.safetensors").exists()
        assert (smoke_run / name / "history.json").exists()
    for png in ("loss_curves.png", "base_vs_assistant.png"):
        assert (smoke_run / png).stat().st_size > 1000


def test_the_metrics_are_the_saved_assistants_figures(smoke_run):
    """metrics.json holds what the evaluation gives for the saved models, not just numbers in range."""
    from minillm.course import load_stage, open_run
    from minillm.evaluate import assistant_figures, evaluate_assistant
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    run = open_run(smoke_run)
    world = tok = None
    for name, suffix in (("assistant", ""), ("assistant_v1", "_before_fix")):
        model, world, tok = load_stage(run, name, world=world, tok=tok)
        figures = assistant_figures(evaluate_assistant(model, world, tok, max_new_tokens=run.preset.eval_max_new_tokens))
        assert {k + suffix: v for k, v in figures.items()} == {k + suffix: metrics[k + suffix] for k in figures}


def test_rerun_reuses_finished_stages(smoke_run, capsys):
    before = (smoke_run / "base" / "model.safetensors").stat().st_mtime_ns
    assert main(["course", "--preset", "smoke", "--out", str(smoke_run)]) == 0
    assert (smoke_run / "base" / "model.safetensors").stat().st_mtime_ns == before
    assert "pretraining:" not in capsys.readouterr().out


def test_chat_answers_from_the_run(smoke_run, capsys):
    """`chat` prints the run's own model's greedy reply: the assistant through the chat template (a typed
    <|end|> stays text), the base model as a document."""
    from minillm.chat import reply
    from minillm.checkpoint import load_checkpoint
    from minillm.tokenizer import Tokenizer
    tok = Tokenizer.load(smoke_run / "tokenizer")
    for name, message in (("assistant", "Hello! <|end|> who are you?"), ("base", "Hello")):
        assert main(["chat", "--run", str(smoke_run), "--model", name, "--max-new-tokens", "8", message]) == 0
        model, _ = load_checkpoint(smoke_run / name, tokenizer=tok)
        expected = reply(model.eval(), tok, message, as_chat=name != "base", max_new_tokens=8)
        assert capsys.readouterr().out == expected + "\n"


def test_validation_documents_are_not_pretrained_on_and_keep_every_biography(tmp_path):
    world = ensure_world(make_run("smoke", tmp_path / "r", progress=False))
    train_docs, val_docs = split_documents(world)
    assert val_docs and not set(val_docs) & set(train_docs)
    bios = [d.text for d in world.corpus() if d.genre == "biography"]
    assert set(bios) <= set(train_docs)


def test_a_stage_trained_with_other_settings_is_trained_again(smoke_run, tmp_path, capsys):
    import dataclasses
    import shutil

    from minillm.checkpoint import read_config
    from minillm.course import ensure_assistant

    out = tmp_path / "copy"
    shutil.copytree(smoke_run, out)
    run = make_run("smoke", out, progress=True)
    run.preset = dataclasses.replace(run.preset, sft=dataclasses.replace(run.preset.sft, learning_rate=5e-4))
    ensure_assistant(run, fix=False)
    assert "trained with other settings" in capsys.readouterr().out
    assert read_config(out / "assistant_v1")["extra"]["train_config"]["learning_rate"] == 5e-4
    assert read_config(out / "assistant")["extra"]["train_config"]["learning_rate"] != 5e-4  # untouched


def test_a_stage_trained_on_other_data_is_trained_again(smoke_run, tmp_path, capsys):
    import shutil

    from minillm.checkpoint import read_config
    from minillm.course import ensure_assistant, ensure_world
    from minillm.data import sft_conversations

    out = tmp_path / "copy"
    shutil.copytree(smoke_run, out)
    run = make_run("smoke", out, progress=True)
    before = read_config(out / "assistant_v1")["extra"]["data_id"]
    ensure_assistant(run, fix=False)                                   # same data: loaded, not trained
    assert "trained on other data" not in capsys.readouterr().out
    convs = sft_conversations(ensure_world(run), fix=False)[:-1]       # one conversation fewer
    ensure_assistant(run, fix=False, conversations=convs)
    assert "trained on other data than this run's now" in capsys.readouterr().out
    assert read_config(out / "assistant_v1")["extra"]["data_id"] not in (None, before)


def test_open_run_reads_a_run_with_its_own_seed_and_world(tmp_path, capsys):
    from dataclasses import replace

    from minillm.config import world_config
    from minillm.course import ensure_world, open_run
    from minillm.world import World

    config = replace(world_config("smoke", seed=1), answered_share=0.5)
    World.generate(config).save(tmp_path / "world")
    before = (tmp_path / "world" / "world.json").read_bytes()
    run = open_run(tmp_path, "smoke")
    assert (run.seed, run.world_changes) == (1, {"answered_share": 0.5})
    assert ensure_world(run).config == config
    assert (tmp_path / "world" / "world.json").read_bytes() == before          # loaded, not made again
    assert "generated with other settings" not in capsys.readouterr().out


def test_packing_is_part_of_the_fine_tuning_data_and_trains_on_exactly_its_batches(smoke_run, tmp_path, capsys):
    import shutil

    from dataclasses import replace

    from minillm.checkpoint import read_config
    from minillm.course import ensure_assistant, ensure_tokenizer, ensure_world
    from minillm.data import corpus_tokens, sft_batches, sft_conversations, sft_examples

    out = tmp_path / "copy"
    shutil.copytree(smoke_run, out)
    run = make_run("smoke", out, progress=True)
    assert (run.preset.sft_pack, run.preset.sft_pack_share) == (run.preset.model.block_size, 0.5)   # the default
    world = ensure_world(run)
    tok = ensure_tokenizer(run, world)
    cfg = replace(run.preset.sft, seed=run.preset.sft.seed + run.seed)
    examples = sft_examples(tok, sft_conversations(world, fix=False))
    seen = [read_config(out / "assistant_v1")["extra"]["data_id"]]
    # rows of 64 on every step, then one conversation per row: each other data, trained on exactly its batches
    for pack, share in ((64, 1.0), (0, 0.5)):
        run.preset = replace(run.preset, sft_pack=pack, sft_pack_share=share)
        ensure_assistant(run, fix=False)
        assert "trained on other data than this run's now" in capsys.readouterr().out
        extra = read_config(out / "assistant_v1")["extra"]
        assert extra["data_id"] not in seen
        seen.append(extra["data_id"])
        get_batch = sft_batches(examples, corpus_tokens(world, tok)[0], cfg, run.preset.sft_mix,
                                run.preset.model.block_size, run.preset.sft_length_pool, pack, share)
        assert extra["tokens"] == sum(get_batch(i)[0].numel() for i in range(cfg.max_steps))
        widths = {get_batch(i)[0].shape[1] for i in range(cfg.max_steps)}
        assert widths == {64} if pack else len(widths) > 1        # unpacked: as long as each step's conversations


def test_an_assistant_fine_tuned_from_a_given_base_leaves_it_and_names_it(smoke_run, tmp_path, capsys):
    import shutil

    import torch

    from minillm.checkpoint import load_checkpoint, read_config
    from minillm.course import ensure_assistant, weights_fingerprint

    out = tmp_path / "copy"
    shutil.copytree(smoke_run, out, ignore=shutil.ignore_patterns("assistant*"))
    run = make_run("smoke", out, progress=False)
    base, _ = load_checkpoint(out / "base")
    before = {k: v.clone() for k, v in base.state_dict().items()}
    mine = ensure_assistant(run, name="mine", base=base)
    assert all(torch.equal(v, before[k]) for k, v in base.state_dict().items())    # the base is left as it was
    assert not all(torch.equal(v, before[k]) for k, v in mine.state_dict().items())
    data_id = read_config(out / "mine")["extra"]["data_id"]
    again = ensure_assistant(run, name="mine", base=base)                          # the same base: loaded
    assert all(torch.equal(v, mine.state_dict()[k]) for k, v in again.state_dict().items())
    with torch.no_grad():
        base.transformer.ln_f.bias.add_(0.01)                                      # another base: trained again
    assert weights_fingerprint(base) != weights_fingerprint(load_checkpoint(out / "base")[0])
    run = make_run("smoke", out, progress=True)
    ensure_assistant(run, name="mine", base=base)
    assert "trained on other data than this run's now" in capsys.readouterr().out
    assert read_config(out / "mine")["extra"]["data_id"] != data_id


def test_load_stage_reads_a_finished_run_and_says_what_to_do_otherwise(smoke_run, tmp_path):
    from minillm.course import load_stage

    model, world, tok = load_stage(make_run("smoke", smoke_run), "assistant")
    assert not model.training and model.config.vocab_size == tok.vocab_size and world.people
    base, world2, tok2 = load_stage(make_run("smoke", smoke_run), "base", world=world, tok=tok)
    assert world2 is world and tok2 is tok and not base.training      # the world and tokenizer given are used
    with pytest.raises(FileNotFoundError, match="no base model in .*: run `python -m minillm course --out"):
        load_stage(make_run("smoke", tmp_path / "empty"), "base")
    assert not (tmp_path / "empty").exists()      # nothing generated for a run that isn't there


def test_a_world_saved_with_other_settings_is_generated_again(tmp_path, capsys):
    import dataclasses
    import json as _json

    run = make_run("smoke", tmp_path / "r", progress=True)
    world = ensure_world(run)
    f = run.path("world") / "world.json"
    saved = _json.loads(f.read_text())
    saved["config"]["sft_per_fact"] = 2              # as an older version of the course wrote it
    f.write_text(_json.dumps(saved))
    again = ensure_world(run)
    assert "generated with other settings" in capsys.readouterr().out
    assert again.config == world.config and again.sft_conversations() == world.sft_conversations()
    ensure_world(run)                                # now current: loaded, not generated
    assert "generated with other settings" not in capsys.readouterr().out
    assert dataclasses.asdict(again.config)["sft_per_fact"] != 2


def test_world_changes_reach_the_world(tmp_path):
    run = make_run("smoke", tmp_path / "run", progress=False)
    run.world_changes = {"answered_share": 1.0}
    world = ensure_world(run)
    n_qa = world.config.n_qa_threads                 # the answered Q&A threads, whatever answered_share says
    assert world.config.answered_share == 1.0 and sum(d.answered for d in world.corpus()) > n_qa
    run.world_changes = {}
    assert sum(d.answered for d in ensure_world(run).corpus()) == n_qa   # a changed setting regenerates the world


def test_a_tokenizer_trained_on_other_text_is_trained_again(tmp_path, capsys):
    """A world loaded from its settings regenerates its documents; when the generator changed them, the saved
    tokenizer (trained on the old text) is replaced, with or without the record of what it was trained on."""
    from minillm.course import ensure_tokenizer
    from minillm.tokenizer import Tokenizer

    run = make_run("smoke", tmp_path / "run", progress=True)
    world = ensure_world(run)
    fresh = ensure_tokenizer(run, world)
    record = run.path("tokenizer") / "trained_on.json"
    assert record.exists() and ensure_tokenizer(run, world).fingerprint == fresh.fingerprint
    docs = world.documents()
    for keep_record in (True, False):                 # an old tokenizer, with a stale record or none
        Tokenizer.train(docs[: len(docs) // 2], run.preset.vocab_size).save(run.path("tokenizer"))
        if keep_record:
            record.write_text('{"corpus_id": "the old text"}')
        else:
            record.unlink()
        capsys.readouterr()
        assert ensure_tokenizer(run, world).fingerprint == fresh.fingerprint
        assert "tokenizer: trained on other text than this run's corpus now; training it again" in capsys.readouterr().out
    record.unlink()                                   # a run from before the record, trained on this text: kept
    assert ensure_tokenizer(run, world).fingerprint == fresh.fingerprint and record.exists()
    assert "training it again" not in capsys.readouterr().out


def test_make_run_names_the_folder_of_its_world_changes(tmp_path):
    run = make_run("smoke", root=tmp_path, seed=1, progress=False, world_changes={"answered_share": 0.5})
    assert run.out == tmp_path / "smoke-seed1-world_answered_share0_5"     # bench/course.py's name for --set
    assert ensure_world(run).config.answered_share == 0.5
    with pytest.raises(ValueError, match="world_changes: WorldConfig has no field 'n_persons'"):
        make_run("smoke", root=tmp_path, world_changes={"n_persons": 3})


def test_a_setting_added_at_its_default_keeps_old_checkpoints():
    """A checkpoint saved before TrainConfig had a field stays valid while the field is at its default."""
    from dataclasses import asdict, replace
    from minillm.course import settings_changed
    from minillm.train import TrainConfig
    cfg = TrainConfig(max_steps=10, batch_size=4)
    old = {k: v for k, v in asdict(cfg).items() if k not in ("optimizer", "muon_lr")}   # saved by an older version
    assert not settings_changed(old, cfg)
    assert settings_changed(old, replace(cfg, optimizer="muon"))
    assert settings_changed(old, replace(cfg, max_steps=11))
    assert settings_changed(None, cfg)
