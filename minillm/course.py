"""The whole course as a pipeline: world -> tokenizer -> base model -> assistant -> fix -> report.

Each stage is one function that builds its artifact under a run folder, or loads it when it is
already there, so re-running resumes instead of starting over. `python -m minillm course` calls `run_course`;
a notebook calls the one stage it teaches and gets the earlier ones from the cache with `ensure_*`.
The training loop itself is minillm.train's, the report (report.md, metrics.json, figures) minillm.report's.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import time
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from minillm import distributed
from minillm.checkpoint import load_checkpoint, read_config
from minillm.config import Preset, get_preset, world_config
from minillm.data import corpus_tokens, pretrain_batches, sft_batches, sft_conversations, sft_examples
from minillm.device import Runtime, choose_runtime
from minillm.evaluate import assistant_figures, document_loss, evaluate_assistant, evaluate_base, monitor
from minillm.model import GPT
from minillm.tokenizer import Tokenizer
from minillm.train import train
from minillm.world import World, WorldConfig


@dataclass
class Run:
    """Where a course run lives and how it is sized. The run folder:

        runs/<preset>/world/           the generated world (jsonl files)
        runs/<preset>/tokenizer/       the BPE tokenizer
        runs/<preset>/base/            the pretrained base model (safetensors + config + history)
        runs/<preset>/assistant_v1/    SFT on the first fine-tuning set (a first guideline: no out-of-scope requests)
        runs/<preset>/assistant/       SFT again, from the base, with the deployment log's fix added (the "released"
                                       assistant)
        runs/<preset>/report.md, metrics.json, *.png
    """
    out: Path
    preset: Preset
    runtime: Runtime
    augment: int | None = None   # biographies per person (None: the world preset's default)
    seed: int = 0
    progress: bool = True
    world_changes: dict = field(default_factory=dict)   # WorldConfig fields that differ from the preset's world

    def path(self, name: str) -> Path:
        return self.out / name


def make_run(preset: str | None = None, out=None, *, augment: int | None = None, seed: int = 0,
             root="runs", device: str | None = None, progress: bool = True, world_changes: dict | None = None) -> Run:
    """A run of `preset` in `out` (default: root/<preset>[-augment<N>][-seed<N>][-world_<field><value>...],
    the folder names bench/course.py gives the same changes)."""
    p = get_preset(preset)
    world_changes = dict(world_changes or {})
    unknown = sorted(set(world_changes) - {f.name for f in fields(WorldConfig)})
    if unknown:
        raise ValueError(f"world_changes: WorldConfig has no field {unknown[0]!r}")
    if out is None:
        out = Path(root) / (p.name + (f"-augment{augment}" if augment is not None else "")
                            + (f"-seed{seed}" if seed else "")
                            + "".join(f"-world_{k}{v}".replace(".", "_") for k, v in world_changes.items()))
    return Run(Path(out), p, choose_runtime(device), augment, seed, progress, world_changes)


def open_run(folder, preset: str | None = None, *, device: str | None = None) -> Run:
    """An existing run folder as the Run that made it: the seed and every world setting its saved world was
    generated with (make_run's defaults would make another world there and drop this one's tokenizer)."""
    saved = World.load(Path(folder) / "world").config
    run = make_run(preset, folder, seed=saved.seed, device=device, progress=False)
    default = world_config(run.preset, None, saved.seed)
    run.world_changes = {f.name: getattr(saved, f.name) for f in fields(saved)
                         if getattr(saved, f.name) != getattr(default, f.name)}
    return run


def _log(run: Run, msg: str):
    if run.progress:
        print(msg, flush=True)


def _record_seconds(run: Run, stage: str, seconds: float):
    """Wall time of each stage, kept in timings.json so a resumed run still reports the whole cost."""
    f = run.path("timings.json")
    timings = json.loads(f.read_text()) if f.exists() else {}
    timings[stage] = seconds
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(timings, indent=1) + "\n")
    return timings


# ----------------------------------------------------------------------------------------------
# world and tokenizer

def ensure_world(run: Run) -> World:
    """The run's world: loaded when it was generated with this version's configuration, else generated
    (a world from an older version keeps its old fine-tuning set sizes otherwise; if its documents change
    too, the tokenizer is trained again, and the base model with it, by the stages' data check). Under
    torchrun, rank 0 generates and saves it and the other processes load it."""
    with distributed.main_first():
        return _load_or_generate_world(run)


def _load_or_generate_world(run: Run) -> World:
    d = run.path("world")
    config = replace(world_config(run.preset, run.augment, run.seed), **run.world_changes)
    saved = World.load(d) if (d / "world.json").exists() else None
    if saved is not None and saved.config == config:
        return saved
    t0 = time.perf_counter()
    world = World.generate(config)
    if saved is not None:
        _log(run, "world: generated with other settings than this version's; generating it again")
        if world.documents() != saved.documents():
            shutil.rmtree(run.path("tokenizer"), ignore_errors=True)
    world.save(d)
    _record_seconds(run, "world", time.perf_counter() - t0)
    _log(run, f"world: {world.describe()}")
    return world


def ensure_tokenizer(run: Run, world: World) -> Tokenizer:
    with distributed.main_first():     # rank 0 trains and saves it, the other processes load it
        return _ensure_tokenizer(run, world)


def _ensure_tokenizer(run: Run, world: World) -> Tokenizer:
    """Loaded when it was trained on this world's documents as this version writes them, else trained (a
    world loaded from its settings regenerates its documents, and a changed generator changes them: the
    base model is then trained again too, by its data check)."""
    d = run.path("tokenizer")
    docs = world.documents()
    corpus_id = data_fingerprint(docs, run.preset.vocab_size)
    if (d / "tokenizer.json").exists():
        trained_on = d / "trained_on.json"
        saved_id = json.loads(trained_on.read_text()).get("corpus_id") if trained_on.exists() else None
        tok = Tokenizer.load(d)
        if saved_id == corpus_id:
            return tok
        if saved_id is None:         # a run from before the check: train it again and keep it if it is the same
            same = Tokenizer.train(docs, run.preset.vocab_size).fingerprint == tok.fingerprint
            if same:
                trained_on.write_text(json.dumps({"corpus_id": corpus_id}) + "\n")
                return tok
        _log(run, "tokenizer: trained on other text than this run's corpus now; training it again")
    t0 = time.perf_counter()
    tok = Tokenizer.train(docs, run.preset.vocab_size)
    tok.save(d)
    (d / "trained_on.json").write_text(json.dumps({"corpus_id": corpus_id}) + "\n")
    _record_seconds(run, "tokenizer", time.perf_counter() - t0)
    _log(run, f"tokenizer: {tok.vocab_size} tokens, trained in {time.perf_counter() - t0:.1f}s")
    return tok


# ----------------------------------------------------------------------------------------------
# training stages

def data_fingerprint(*parts) -> str:
    """A short hash of what a stage trains on (token ids, conversations, mix): equal data, equal id."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.numpy().tobytes() if isinstance(part, torch.Tensor) else json.dumps(part).encode())
    return h.hexdigest()[:16]


def weights_fingerprint(model: GPT) -> str:
    """A short hash of a model's weights: which base an assistant was fine-tuned from, when it came from
    outside the run."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def settings_changed(saved: dict | None, cfg) -> bool:
    """Does cfg differ from the settings (asdict of a TrainConfig) a checkpoint was trained with? A field
    that TrainConfig gained since then counts as unchanged at its default value, so a run made by an older
    version stays valid until a setting it used really changes."""
    if saved is None:
        return True
    now = json.loads(json.dumps(asdict(cfg)))
    added = {f.name: f.default for f in fields(cfg) if f.name not in saved and f.default is not MISSING}
    return {**json.loads(json.dumps(added)), **saved} != now


def _drop_if_stale(run: Run, d: Path, cfg, data_id: str) -> None:
    """A checkpoint trained with another TrainConfig (a changed preset) or on other data (a changed
    world or SFT set) cannot be resumed or reused: start that stage over (rank 0 decides, under torchrun)."""
    if distributed.is_main():
        _delete_stale_checkpoint(run, d, cfg, data_id)
    distributed.barrier()


def _delete_stale_checkpoint(run: Run, d: Path, cfg, data_id: str) -> None:
    try:
        extra = read_config(d).get("extra", {})
    except Exception:
        return
    if settings_changed(extra.get("train_config"), cfg):
        _log(run, f"{d.name}: trained with other settings than the preset's now; training it again")
        shutil.rmtree(d)
    elif extra.get("data_id") != data_id:
        _log(run, f"{d.name}: trained on other data than this run's now; training it again")
        shutil.rmtree(d)


def _stage_done(d: Path, max_steps: int) -> bool:
    """A stage is done when its checkpoint reached the planned step."""
    try:
        return read_config(d).get("step") == max_steps and (d / "history.json").exists()
    except Exception:
        return False


def is_trained(run: Run, name: str) -> bool:
    """Has the stage `name` ("base", "assistant_v1", "assistant") finished in this run?"""
    cfg = run.preset.pretrain if name == "base" else run.preset.sft
    return _stage_done(run.path(name), cfg.max_steps)


def load_stage(run: Run, name: str, *, world: World | None = None,
               tok: Tokenizer | None = None) -> tuple[GPT, World, Tokenizer]:
    """A finished stage's model ("base", "assistant_v1", "assistant") in eval mode, with the run's world
    and tokenizer (pass the ones an earlier call returned, so they are not loaded again): for reading a run
    without training anything (the bench scripts)."""
    d = run.path(name)
    if not (d / "model.safetensors").exists():
        raise FileNotFoundError(f"no {name} model in {d}: run `python -m minillm course --out {run.out}` first")
    world = world or ensure_world(run)
    tok = tok or ensure_tokenizer(run, world)
    return load_checkpoint(d, device=run.runtime.device, tokenizer=tok)[0].eval(), world, tok


def stage_summary(d: Path) -> dict:
    """seconds, tokens and FLOPs a finished training stage recorded in its checkpoint."""
    cfg = read_config(d)
    extra = cfg.get("extra", {})
    return {"seconds": extra.get("seconds", 0.0), "tokens": extra.get("tokens", 0), "flops": extra.get("flops", 0.0),
            "step": cfg.get("step"), "history": json.loads((d / "history.json").read_text())}


def ensure_base(run: Run, world: World | None = None, tok: Tokenizer | None = None, *, on_log=None) -> GPT:
    """The pretrained base model: loaded if run/base is finished, else trained (resuming if interrupted)."""
    world = world or ensure_world(run)
    tok = tok or ensure_tokenizer(run, world)
    d = run.path("base")
    cfg = replace(run.preset.pretrain, seed=run.preset.pretrain.seed + run.seed)
    cfg = replace(cfg, eval_interval=cfg.eval_interval or max(cfg.max_steps // 5, 1))
    train_tokens, val_tokens = corpus_tokens(world, tok)
    data_id = data_fingerprint(train_tokens)
    _drop_if_stale(run, d, cfg, data_id)
    if _stage_done(d, cfg.max_steps):
        return load_checkpoint(d, device=run.runtime.device, tokenizer=tok)[0]
    mcfg = replace(run.preset.model, vocab_size=tok.vocab_size)
    torch.manual_seed(cfg.seed)
    model = GPT(mcfg)
    T = mcfg.block_size
    _log(run, f"pretraining: {model.num_params() / 1e6:.2f}M parameters, {len(train_tokens):,} tokens of text, "
              f"{cfg.max_steps} steps x {cfg.batch_size} x {T} tokens on {run.runtime.device_type} ({run.runtime.precision})")

    def eval_fn(m):
        return {"val_loss": document_loss(m, val_tokens, block_size=T, device=run.runtime.device, max_windows=16)}

    train(model, pretrain_batches(train_tokens, cfg, T), cfg, run.runtime, eval_fn=eval_fn, out_dir=d, resume=True,
          progress=run.progress, desc="pretrain", on_log=on_log, tokenizer=tok, extra={"data_id": data_id})
    return model


def ensure_assistant(run: Run, *, fix: bool = True, world: World | None = None, tok: Tokenizer | None = None,
                     mix: float | None = None, name: str | None = None,
                     conversations=None, base: GPT | None = None, on_log=None) -> GPT:
    """SFT from the base checkpoint. fix=False: the first SFT set (assistant_v1); fix=True: with the
    out-of-scope fix added (assistant). `mix` overrides the share of pretraining text
    in each batch; `conversations` replaces the SFT set (a student's own guideline); `base` is a base
    model to start from instead of the run's (a release loaded back with minillm.hf.load_pretrained),
    left as it is: a copy is fine-tuned."""
    world = world or ensure_world(run)
    tok = tok or ensure_tokenizer(run, world)
    name = name or ("assistant" if fix else "assistant_v1")
    d = run.path(name)
    cfg = replace(run.preset.sft, seed=run.preset.sft.seed + run.seed)
    examples = sft_examples(tok, conversations if conversations is not None else sft_conversations(world, fix=fix))
    train_tokens, _ = corpus_tokens(world, tok)
    mix = run.preset.sft_mix if mix is None else mix
    if base is None:
        model = ensure_base(run, world, tok)       # a fresh copy of the base (loaded, or trained just now)
        which = read_config(run.path("base"))["extra"]     # which base: a retrained base means a stale assistant
        which = [which["train_config"], which.get("data_id")]
    else:
        model = copy.deepcopy(base).to(run.runtime.device)
        which = [weights_fingerprint(base)]
    pool = run.preset.sft_length_pool
    pack, share = run.preset.sft_pack, run.preset.sft_pack_share
    data_id = data_fingerprint(examples, mix, train_tokens, which, *([{"length_pool": pool}] if pool else []),
                               *([{"pack": pack}] if pack else []), *([{"pack_share": share}] if pack and share < 1 else []))
    _drop_if_stale(run, d, cfg, data_id)
    if _stage_done(d, cfg.max_steps):
        return load_checkpoint(d, device=run.runtime.device, tokenizer=tok)[0]
    get_batch = sft_batches(examples, train_tokens, cfg, mix, model.config.block_size, pool, pack, share)
    _log(run, f"fine-tuning ({name}): {len(examples):,} conversations, {int(mix * 100)}% of each batch pretraining text")
    train(model, get_batch, cfg, run.runtime, out_dir=d, resume=True, progress=run.progress, desc=name,
          on_log=on_log, tokenizer=tok, extra={"data_id": data_id})
    return model


def run_course(run: Run) -> dict:
    """Every stage, then the report. Returns the metrics (also written to metrics.json)."""
    run.out.mkdir(parents=True, exist_ok=True)
    _log(run, f"course: preset {run.preset.name!r} -> {run.out}\n{run.runtime.summary()}")
    world = ensure_world(run)
    tok = ensure_tokenizer(run, world)
    base = ensure_base(run, world, tok)
    v1 = ensure_assistant(run, fix=False, world=world, tok=tok)
    assistant = ensure_assistant(run, fix=True, world=world, tok=tok)
    if not distributed.is_main():   # under torchrun, rank 0 evaluates and writes the report
        distributed.barrier()
        return {}
    try:
        return _evaluate_and_report(run, world, tok, base, v1, assistant)
    finally:
        distributed.barrier()


def _evaluate_and_report(run: Run, world: World, tok: Tokenizer, base: GPT, v1: GPT, assistant: GPT) -> dict:
    _log(run, "evaluating the base model and both assistants ...")
    t_eval = time.perf_counter()
    _, val_tokens = corpus_tokens(world, tok)
    T = run.preset.model.block_size
    dev = run.runtime.device
    limits = {"max_new_tokens": run.preset.eval_max_new_tokens, "device": dev}
    base_eval = evaluate_base(base, world, tok, **limits)
    v1_eval, final_eval = (evaluate_assistant(m, world, tok, **limits) for m in (v1, assistant))
    v1_log, final_log = (evaluate_assistant(m, world, tok, split="sft", **limits) for m in (v1, assistant))
    pre, sft_v1, sft = (stage_summary(run.path(n)) for n in ("base", "assistant_v1", "assistant"))
    first_set = world.sft_conversations()
    final, before = assistant_figures(final_eval), assistant_figures(v1_eval)
    metrics = {
        "preset": run.preset.name,
        "augment": world.config.bios_per_person,
        "seed": run.seed,
        "params": base.num_params(),
        **final,
        **{k + "_before_fix": v for k, v in before.items()},
        "sft_people_accuracy": final_log["standard"]["accuracy"],
        "base_answer_rate": base_eval["answer_rate"],
        "base_heldout_accuracy": base_eval["heldout"]["accuracy"],
        "base_reply_kinds": {s: base_eval[s]["kinds"] for s in ("heldout", "sft")},
        "base_stored_accuracy": base_eval["stored"]["accuracy"],
        "base_doc_loss": document_loss(base, val_tokens, block_size=T, device=dev),
        "assistant_doc_loss": document_loss(assistant, val_tokens, block_size=T, device=dev),
        "pretrain_flops": pre["flops"], "sft_flops": sft["flops"],
        "pretrain_tokens": pre["tokens"], "sft_tokens": sft["tokens"],
        "pretrain_seconds": pre["seconds"], "sft_seconds": sft["seconds"],
        "sft_v1_seconds": sft_v1["seconds"],
        "monitoring_before_fix": monitor(v1_log), "monitoring": monitor(final_log),
        "sft_conversations": len(first_set),
        "fix_conversations": world.default_scope_count(first_set),
    }
    timings = _record_seconds(run, "evaluation", time.perf_counter() - t_eval)
    # the whole course: every stage's own time (also when earlier stages were loaded from a previous run)
    metrics["total_seconds"] = (timings.get("world", 0) + timings.get("tokenizer", 0) + pre["seconds"]
                                + sft_v1["seconds"] + sft["seconds"] + timings["evaluation"])
    metrics["compute_ratio"] = metrics["pretrain_flops"] / max(metrics["sft_flops"], 1.0)
    metrics["unseen_to_standard_ratio"] = metrics["heldout_unseen_phrasing_accuracy"] / max(metrics["heldout_accuracy"], 1e-9)
    details = {"base": base_eval, "assistant_v1": v1_eval, "assistant": final_eval,
               "log_assistant_v1": v1_log, "log_assistant": final_log}
    from minillm.report import write_report  # plotting and markdown live apart from the pipeline
    write_report(run, metrics, details, {"pretrain": pre["history"], "sft_v1": sft_v1["history"],
                                         "sft": sft["history"]}, world=world, base=base, assistant=assistant, tok=tok)
    return metrics


def artifacts_dir() -> Path:
    """The git-ignored cache the notebooks share: MINILLM_ARTIFACTS when set (Colab's setup sets it), else
    <repo>/artifacts when minillm is a checkout, else ./artifacts. Relative to the working directory where it
    can be (`../artifacts` from notebooks/), so what a notebook prints names no folder of the machine it ran on."""
    repo = Path(__file__).resolve().parent.parent
    chosen = os.environ.get("MINILLM_ARTIFACTS", "").strip()
    path = Path(chosen) if chosen else (repo if (repo / "pyproject.toml").exists() else Path.cwd()) / "artifacts"
    try:
        return Path(os.path.relpath(path))
    except ValueError:          # Windows: another drive than the working directory's
        return path


def notebook_run(preset: str | None = None, **kwargs) -> Run:
    """The run every notebook shares (artifacts/<preset>/): a notebook loads what earlier ones built,
    or builds it with one call when it is missing."""
    return make_run(preset, root=artifacts_dir(), **kwargs)
