"""The training loop: schedule, determinism, exact resume, evaluation, checkpoints, compile fallback."""
import json
import math

import pytest
import torch

from minillm.checkpoint import load_checkpoint
from minillm.data import pretrain_batch, sft_batch
from minillm.device import choose_runtime
from minillm.model import GPT, GPTConfig
from minillm.train import NonFiniteLoss, TrainConfig, lr_at, train

CFG = GPTConfig(vocab_size=32, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.1)
# a learnable stream: counting modulo 32 with the occasional random token
STREAM = torch.arange(4000) % 32
STREAM[torch.randint(4000, (200,), generator=torch.Generator().manual_seed(0))] = 7


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def runtime():
    return choose_runtime("cpu", "fp32")


def get_batch(i):
    return pretrain_batch(STREAM, 8, CFG.block_size, torch.Generator().manual_seed(1000 + i))


def make_model(seed=0, cfg=CFG):
    torch.manual_seed(seed)
    return GPT(cfg)


def tcfg(**kw):
    base = dict(max_steps=20, batch_size=8, learning_rate=3e-3, warmup_steps=3, log_interval=5)
    return TrainConfig(**{**base, **kw})


def losses(history):
    return [(h["step"], h["loss"], h["lr"]) for h in history if "loss" in h]


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_lr_schedule():
    cfg = TrainConfig(max_steps=100, batch_size=1, learning_rate=1.0, min_lr_ratio=0.1, warmup_steps=10)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(4, cfg) == pytest.approx(0.5)
    assert lr_at(9, cfg) == pytest.approx(1.0)  # warmup ends at the peak
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(55, cfg) == pytest.approx(0.55)  # halfway through the cosine: midway between peak and floor
    assert lr_at(99, cfg) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 89 / 90)))
    assert lr_at(100, cfg) == pytest.approx(0.1) and lr_at(500, cfg) == pytest.approx(0.1)
    lrs = [lr_at(s, cfg) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))  # monotone decay
    short = TrainConfig(max_steps=100, batch_size=1, learning_rate=1.0, lr_decay_steps=50, warmup_steps=0)
    assert lr_at(50, short) == pytest.approx(0.1)
    assert lr_at(0, TrainConfig(max_steps=100, batch_size=1, learning_rate=1.0)) == pytest.approx(0.2)  # auto warmup: 5 steps


def test_trains_and_reports(runtime):
    model = make_model()
    seen = []
    result = train(model, get_batch, tcfg(max_steps=30), runtime, progress=False, on_log=lambda h: seen.append(len(h)))
    h = result.history
    assert [e["step"] for e in h] == [1, 5, 10, 15, 20, 25, 30]
    assert seen == [1, 2, 3, 4, 5, 6, 7]
    assert h[-1]["loss"] < h[0]["loss"] - 1.0  # it learns
    assert h[0]["loss"] == pytest.approx(math.log(32), abs=0.3)  # starts near uniform
    assert set(h[0]) == {"step", "loss", "lr", "tokens", "tokens_per_s", "mfu", "elapsed"}
    assert all(e["mfu"] is None for e in h)  # CPU without a measured peak: unknown
    assert all(e["tokens_per_s"] > 0 for e in h)
    assert result.tokens == 30 * 8 * 16 == h[-1]["tokens"]
    assert result.flops == pytest.approx(model.flops_per_token(training=True, seq_len=16) * result.tokens)
    assert result.seconds > 0 and result.model is model and not model.training


def test_mfu_with_measured_peak(runtime):
    result = train(make_model(), get_batch, tcfg(max_steps=5, peak_flops=1e9), runtime, progress=False)
    e = result.history[-1]
    assert e["mfu"] == pytest.approx(result.model.flops_per_token(seq_len=16) * e["tokens_per_s"] / 1e9)


def test_deterministic(runtime):
    a = train(make_model(), get_batch, tcfg(), runtime, progress=False)
    b = train(make_model(), get_batch, tcfg(), runtime, progress=False)
    assert losses(a.history) == losses(b.history)
    assert same_weights(a.model, b.model)
    c = train(make_model(), get_batch, tcfg(seed=7), runtime, progress=False)  # other dropout draws
    assert losses(c.history) != losses(a.history)


def test_eval_merged_and_does_not_disturb_training(runtime):
    def eval_fn(model):
        assert not model.training and not torch.is_grad_enabled()
        torch.rand(100)  # eval that draws random numbers (sampling) ...
        x, y = get_batch(10**6)
        return {"val_loss": model(x, y)[1].item()}

    a = train(make_model(), get_batch, tcfg(eval_interval=10), runtime, progress=False, eval_fn=eval_fn)
    b = train(make_model(), get_batch, tcfg(), runtime, progress=False)
    assert losses(a.history) == losses(b.history)  # ... leaves training's random draws unchanged
    assert [e["step"] for e in a.history if "val_loss" in e] == [10, 20]
    assert all(e["val_loss"] > 0 for e in a.history if "val_loss" in e)


def test_checkpoint_and_history_files(runtime, tmp_path):
    result = train(make_model(), get_batch, tcfg(), runtime, progress=False, out_dir=tmp_path / "run")
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["config.json", "history.csv", "history.json", "model.safetensors", "optimizer.safetensors",
                     "trainer_state.json"]
    assert json.loads((tmp_path / "run" / "history.json").read_text()) == result.history
    csv_lines = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert csv_lines[0].startswith("step,loss,lr,tokens") and len(csv_lines) == 1 + len(result.history)
    loaded, meta = load_checkpoint(tmp_path / "run")
    assert meta["step"] == 20 and meta["metrics"]["loss"] == result.history[-1]["loss"]
    assert meta["extra"]["tokens"] == result.tokens
    assert same_weights(loaded, result.model)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_resume_after_interrupt_is_exact(runtime, tmp_path, optimizer):
    tcfg = lambda **kw: globals()["tcfg"](optimizer=optimizer, **kw)  # noqa: E731
    full = train(make_model(), get_batch, tcfg(), runtime, progress=False)

    def dies_at_step_13(i):
        if i == 13:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the run
        return get_batch(i)

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(make_model(), dies_at_step_13, tcfg(checkpoint_interval=4), runtime, progress=False, out_dir=out)
    assert json.loads((out / "config.json").read_text())["step"] == 12  # last checkpoint before the interrupt

    # resume into a freshly initialised (different) model: everything comes from the checkpoint
    resumed = train(make_model(seed=99), get_batch, tcfg(checkpoint_interval=4), runtime, progress=False,
                    out_dir=out, resume=True)
    assert losses(resumed.history) == losses(full.history)
    assert same_weights(resumed.model, full.model)
    assert resumed.tokens == full.tokens


def test_resume_after_max_steps_is_exact(runtime, tmp_path):
    full = train(make_model(), get_batch, tcfg(lr_decay_steps=20), runtime, progress=False)
    out = tmp_path / "run"
    first = train(make_model(), get_batch, tcfg(max_steps=10, lr_decay_steps=20), runtime, progress=False, out_dir=out)
    assert losses(first.history) == losses(full.history)[:3]
    resumed = train(make_model(), get_batch, tcfg(lr_decay_steps=20), runtime, progress=False, out_dir=out, resume=True)
    assert losses(resumed.history) == losses(full.history)
    assert same_weights(resumed.model, full.model)
    # resuming a finished run trains nothing more
    again = train(make_model(), get_batch, tcfg(lr_decay_steps=20), runtime, progress=False, out_dir=out, resume=True)
    assert same_weights(again.model, full.model) and again.history == resumed.history


def test_resume_saves_the_new_config_and_the_callers_extra(runtime, tmp_path):
    """A run resumed with a changed TrainConfig and new facts saves those, not the first run's; facts the
    caller does not pass again are kept."""
    from minillm.checkpoint import read_config
    out = tmp_path / "run"
    train(make_model(), get_batch, tcfg(max_steps=10, lr_decay_steps=20), runtime, progress=False, out_dir=out,
          extra={"data": "first", "kept": 1})
    first = read_config(out)["extra"]
    train(make_model(), get_batch, tcfg(lr_decay_steps=20), runtime, progress=False, out_dir=out, resume=True,
          extra={"data": "second"})
    saved = read_config(out)["extra"]
    assert first["train_config"]["max_steps"] == 10 and saved["train_config"]["max_steps"] == tcfg().max_steps
    assert saved["data"] == "second" and saved["kept"] == 1
    assert saved["tokens"] > first["tokens"] and saved["seconds"] >= first["seconds"]


def test_interrupt_from_on_log_then_resume(runtime, tmp_path):
    full = train(make_model(), get_batch, tcfg(), runtime, progress=False)

    def stop_at_15(history):
        if history[-1]["step"] == 15:
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(make_model(), get_batch, tcfg(checkpoint_interval=5), runtime, progress=False, out_dir=out, on_log=stop_at_15)
    resumed = train(make_model(), get_batch, tcfg(checkpoint_interval=5), runtime, progress=False, out_dir=out, resume=True)
    assert losses(resumed.history) == losses(full.history)
    assert same_weights(resumed.model, full.model)


def test_grad_accum_matches_big_batch(runtime):
    cfg = GPTConfig(**{**CFG.__dict__, "dropout": 0.0})

    def big(i):
        return pretrain_batch(STREAM, 8, 16, torch.Generator().manual_seed(i))

    def half(i):  # micro-batch i is half of big batch i // 2
        x, y = big(i // 2)
        return x[(i % 2) * 4:(i % 2) * 4 + 4], y[(i % 2) * 4:(i % 2) * 4 + 4]

    a = train(make_model(cfg=cfg), big, tcfg(max_steps=10), runtime, progress=False)
    b = train(make_model(cfg=cfg), half, tcfg(max_steps=10, batch_size=4, grad_accum=2), runtime, progress=False)
    for (_, la, _), (_, lb, _) in zip(losses(a.history), losses(b.history)):
        assert la == pytest.approx(lb, rel=1e-4)
    assert a.tokens == b.tokens


def test_sft_batches_train(runtime):
    examples = [([1, 2, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 1, 1, 1, 1]), ([9, 10, 11, 12], [0, 0, 1, 1])]

    def sft(i):
        return sft_batch(examples, 8, CFG.block_size, torch.Generator().manual_seed(i))

    result = train(make_model(), sft, tcfg(max_steps=30), runtime, progress=False)
    assert result.history[-1]["loss"] < 0.5 * result.history[0]["loss"]


def test_compile_failure_falls_back_to_eager(runtime, monkeypatch):
    eager = train(make_model(), get_batch, tcfg(max_steps=10), runtime, progress=False)

    def broken_compile(model, *a, **k):
        def compiled(*args, **kwargs):
            torch.rand(10)  # fails after consuming random numbers, like a half-run first step
            raise RuntimeError("CppCompileError: no C++ compiler found\nlong traceback")
        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.warns(RuntimeWarning, match=r"torch.compile failed \(RuntimeError: CppCompileError: no C\+\+ compiler found\); training eagerly"):
        fallback = train(make_model(), get_batch, tcfg(max_steps=10, compile=True), runtime, progress=False)
    assert losses(fallback.history) == losses(eager.history)
    assert same_weights(fallback.model, eager.model)

    def compile_refuses(model, *a, **k):
        raise RuntimeError("Windows not yet supported for torch.compile")

    monkeypatch.setattr(torch, "compile", compile_refuses)
    with pytest.warns(RuntimeWarning, match="torch.compile unavailable"):
        train(make_model(), get_batch, tcfg(max_steps=2, compile=True), runtime, progress=False)


def test_plot_history(runtime):
    import matplotlib
    matplotlib.use("Agg")
    from minillm.plots import plot_history

    h = [{"step": 1, "loss": 3.0}, {"step": 10, "loss": 2.0, "val_loss": 2.5}, {"step": 20, "loss": 1.0, "val_loss": 1.5}]
    fig = plot_history(h)
    ax = fig.axes[0]
    assert [tuple(line.get_xdata()) for line in ax.lines] == [(1, 10, 20), (10, 20)]
    assert [tuple(line.get_ydata()) for line in ax.lines] == [(3.0, 2.0, 1.0), (2.5, 1.5)]
    fig = plot_history([("mask", h), ("no mask", h[:2])])
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["mask train", "mask validation", "no mask train",
                                                                            "no mask validation"]
    with pytest.raises(ValueError, match="empty history"):
        plot_history([])


def test_pipeline_fills_in_each_chapters_own_stages():
    import matplotlib
    matplotlib.use("Agg")
    from minillm.plots import CHAPTER_STAGES, STAGES, pipeline

    assert sorted(CHAPTER_STAGES) == list(range(10))
    assert {s for stages in CHAPTER_STAGES.values() for s in stages} == set(STAGES)   # every stage has a chapter
    for chapter, stages in CHAPTER_STAGES.items():
        texts = pipeline(chapter).axes[0].texts
        boxes = [t for t in texts if t.get_bbox_patch() is not None]
        assert [t.get_text() for t in boxes] == list(STAGES)
        assert [t.get_text() for t in boxes if t.get_color() == "white"] == [s for s in STAGES if s in stages]
        under = [t.get_text() for t in texts                                  # the chapters under each stage
                 if t.get_bbox_patch() is None and not isinstance(t, matplotlib.text.Annotation)]   # (not the arrows)
        assert len(under) == len(STAGES)
        assert all(f"{chapter:02d}" in under[STAGES.index(s)].split() for s in stages)
    with pytest.raises(ValueError, match="pipeline: no chapter 10; the chapters are 0 to 9"):
        pipeline(10)


def test_gpt_diagram_shows_the_configs_layers_and_shapes():
    """The boxes are the model's layers in forward order, the shapes are the config's, and the weights named
    in them are the model's (the head's matrix is the token embedding's)."""
    import matplotlib
    matplotlib.use("Agg")
    from minillm.plots import gpt_diagram

    config = GPTConfig(vocab_size=300, block_size=64, n_layer=3, n_head=2, n_embd=40)
    artists = gpt_diagram(config).axes[0].texts
    texts = [t.get_text() for t in artists]
    boxes = [t.get_text() for t in artists if t.get_bbox_patch() is not None]
    assert boxes == ["token ids", "token embedding + position embedding", "LayerNorm", "causal self-attention, 2 heads",
                     "+", "LayerNorm, MLP 40 -> 160 -> 40 (GELU)", "+", "final LayerNorm",
                     "linear head (the token embedding, reused)", "logits: a score for every next token"]
    assert "block x 3" in texts and "(300, 40) + (64, 40) -> (B, T, 40)" in texts and "40 -> 300: (B, T, 300)" in texts
    assert "q, k, v: 2 x (40 -> 20); out: 40 -> 40" in texts
    model = GPT(config)
    assert model.lm_head.weight is model.transformer.wte.weight                       # "reused"
    assert model.transformer.h[0].mlp.c_fc.out_features == 4 * config.n_embd           # "40 -> 160"


def test_mixed_precision_paths_train(monkeypatch):
    # bf16 autocast, and fp16 autocast with an enabled GradScaler (the T4 path), exercised on the CPU
    for precision in ("bf16", "fp16"):
        rt = choose_runtime("cpu", precision)
        assert rt.make_scaler().is_enabled() == (precision == "fp16")
        result = train(make_model(), get_batch, tcfg(max_steps=10), rt, progress=False)
        assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_fp16_step_that_overflows_is_skipped_and_the_scale_lowered(monkeypatch):
    """The T4 path on the CPU: fp16 autocast with an enabled GradScaler. A scale so large that the scaled
    gradients overflow makes the scaler skip that optimizer step (weights unchanged) and halve its scale;
    at an ordinary scale the step is taken."""
    rt = choose_runtime("cpu", "fp16")
    huge = 2.0 ** 127   # the loss (~3.5) times this is beyond fp32's largest number: the gradients are inf
    monkeypatch.setattr(type(rt), "make_scaler", lambda self: torch.amp.GradScaler("cpu", init_scale=huge))
    model = make_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train(model, get_batch, tcfg(max_steps=1, log_interval=1), rt, progress=False)
    assert math.isfinite(result.history[-1]["loss"])           # the loss itself is finite: only the scaled one is not
    assert result.history[-1]["loss_scale"] == huge / 2         # lowered (backoff_factor 0.5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())   # the step was skipped
    monkeypatch.setattr(type(rt), "make_scaler", lambda self: torch.amp.GradScaler("cpu", init_scale=2.0 ** 8))
    model = make_model()
    result = train(model, get_batch, tcfg(max_steps=1, log_interval=1), rt, progress=False)
    assert result.history[-1]["loss_scale"] == 2.0 ** 8         # no overflow: the scale stays
    assert not all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_nan_loss_stops_training_and_keeps_the_saved_checkpoint(runtime, tmp_path):
    """A loss that turns NaN at step 3 (as on a misbehaving device) stops the run with one line that names
    the step, device and precision and what to try; the checkpoint of step 2 is left as it was."""
    model = make_model()
    real_forward = model.forward
    calls = {"n": 0}

    def forward(x, y=None):
        logits, loss = real_forward(x, y)
        calls["n"] += 1
        return logits, (loss * float("nan") if calls["n"] == 3 else loss)
    model.forward = forward
    with pytest.raises(NonFiniteLoss) as e:
        train(model, get_batch, tcfg(max_steps=6, checkpoint_interval=2), runtime, out_dir=tmp_path, progress=False)
    message = str(e.value)
    assert "\n" not in message
    assert message == ("the training loss became nan by step 3 on cpu in fp32; the checkpoints already saved are "
                       "kept. Try --device cpu (or MINILLM_DEVICE=cpu), or MINILLM_PRECISION=fp32, or a lower "
                       "learning rate")
    _, meta = load_checkpoint(tmp_path)   # verifies the SHA-256 and that every weight is finite
    assert meta["step"] == 2
