"""One training loop for both phases: pretraining and supervised fine-tuning (SFT).

Pretraining and SFT are the same algorithm, next-token prediction with AdamW; only the batches
differ (SFT batches carry -1 targets where the loss is masked). So there is one loop, `train`, in the
spirit of nanoGPT's train.py. Only the loop is here: the batches come from minillm.data, the optimizer from
the model (Muon: minillm.optim), the device and precision from minillm.device, the processes from minillm.distributed.
"""
import csv
import io
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from minillm import distributed
from minillm.checkpoint import load_training_state, load_weights, read_config, save_checkpoint
from minillm.device import Runtime, peak_flops


@dataclass
class TrainConfig:
    max_steps: int
    batch_size: int  # rows per micro-batch; the caller's get_batch makes them (recorded for the report)
    learning_rate: float = 1e-3
    min_lr_ratio: float = 0.1  # the cosine decays to learning_rate * min_lr_ratio
    warmup_steps: int | None = None  # None: 5% of the decay length
    lr_decay_steps: int | None = None  # None: max_steps (set it to stop early on the same schedule)
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 = no clipping
    grad_accum: int = 1  # micro-batches per optimizer step
    eval_interval: int = 0  # 0 = evaluate only at the end
    checkpoint_interval: int = 0  # 0 = checkpoint only at the end (needs out_dir)
    log_interval: int = 10
    compile: bool | None = None  # None = auto: on for CUDA, off on CPU/MPS (see below)
    seed: int = 1337
    peak_flops: float | None = None  # FLOP/s to compute MFU against (CPU: pass measure_matmul_flops())
    optimizer: str = "adamw"  # "muon": Muon for the blocks' matrices, AdamW for the rest (minillm.optim)
    muon_lr: float = 0.02  # Muon's peak rate; it follows the same warmup and decay as learning_rate


@dataclass
class TrainResult:
    model: torch.nn.Module
    history: list  # dicts: step, loss, lr, tokens, tokens_per_s, mfu, elapsed (+ eval metrics)
    seconds: float  # wall time of all training so far (including a run this one resumed)
    tokens: int  # tokens trained on
    flops: float  # model.flops_per_token() * tokens: the compute this training cost


# what the loop itself keeps in a checkpoint's "extra", beside the caller's facts
_LOOP_EXTRA = ("train_config", "tokens", "flops", "seconds")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, then cosine decay to min_lr."""
    decay_steps = cfg.lr_decay_steps or cfg.max_steps
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else max(1, decay_steps // 20)
    min_lr = cfg.learning_rate * cfg.min_lr_ratio
    if step < warmup:  # warmup: Adam's moment estimates are poor at first, so take small steps
        return cfg.learning_rate * (step + 1) / warmup
    if step >= decay_steps:
        return min_lr
    progress = (step - warmup) / max(1, decay_steps - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.learning_rate - min_lr)


def history_csv(history: list) -> str:
    """The history as CSV text, one row per logged step, columns in order of first appearance."""
    columns = list(dict.fromkeys(k for row in history for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    return out.getvalue()


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite: the run stops there, before anything is saved from it."""


def _check_finite(loss_sum: torch.Tensor, step: int, runtime: Runtime) -> None:
    """Stop at a non-finite loss with one line naming the step, the device and the precision.

    A NaN loss trains on silently (AdamW turns every weight NaN), so it is caught here. On a CPU the check
    costs nothing (its ops are synchronous); on a GPU `.item()` would make the host wait every step, so
    there the summed losses are read at log and checkpoint steps only (see the loop)."""
    if torch.isfinite(loss_sum).all():
        return
    raise NonFiniteLoss(
        f"the training loss became {loss_sum.item()} by step {step} on {runtime.device} in {runtime.precision}; "
        "the checkpoints already saved are kept. Try --device cpu (or MINILLM_DEVICE=cpu), or "
        "MINILLM_PRECISION=fp32, or a lower learning rate")


def _first_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


@dataclass
class _Progress:
    """What a run has done: fresh, or read back from the checkpoint it resumes. tokens, flops and history
    grow as this call trains; start and seconds stay what they were when it began."""
    start: int = 0              # the first step still to train
    tokens: int = 0
    flops: float = 0.0
    seconds: float = 0.0        # wall time before this call
    history: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def _resume(out_dir, model, optimizer, scaler, extra: dict | None) -> _Progress:
    """The weights, optimizer moments, RNG state and counters of the run saved in out_dir, loaded in place."""
    load_weights(out_dir, model)
    start = load_training_state(out_dir, optimizer, scaler)["step"]
    saved = read_config(out_dir).get("extra", {})
    # the caller's facts win over the saved ones; the loop's own (train_config, counters) are rewritten on save
    kept = {k: v for k, v in saved.items() if k not in _LOOP_EXTRA}
    history = json.loads((Path(out_dir) / "history.json").read_text())
    return _Progress(start=start, tokens=saved.get("tokens", 0), flops=saved.get("flops", 0.0),
                     seconds=saved.get("seconds", 0.0), history=history, extra={**kept, **(extra or {})})


def _wrap(model, cfg: TrainConfig, runtime: Runtime, procs: int, steps_left: bool):
    """(eager, forward): the model as every process trains it (DDP with several), and the same compiled
    when torch.compile is on and available (forward is eager otherwise)."""
    eager = model
    if procs > 1:   # DDP averages the gradients across processes during backward (it starts from rank 0's weights)
        from torch.nn.parallel import DistributedDataParallel
        device = runtime.device
        one_gpu = [device.index] if device.type == "cuda" and device.index is not None else None
        eager = DistributedDataParallel(model, device_ids=one_gpu)
    # torch.compile fuses the small elementwise ops (GELU, LayerNorm, softmax) into few kernels.
    # On CUDA that is a clear win. On CPU it gained from nothing to ~1.45x depending on the model's
    # shape - nothing for the `cpu` preset's model (bench/train_throughput.py measures it) - and
    # costs up to a minute of compiling, so on CPU it is opt-in (compile=True).
    use_compile = cfg.compile if cfg.compile is not None else runtime.device_type == "cuda"
    if use_compile and steps_left:
        try:
            return eager, torch.compile(eager)
        except Exception as e:
            warnings.warn(f"torch.compile unavailable ({_first_line(e)}); training eagerly", RuntimeWarning)
    return eager, eager


def _due(done: int, cfg: TrainConfig, evaluating: bool) -> tuple[bool, bool, bool]:
    """(log, evaluate, checkpoint): what the end of step `done` (counted from 1) is due; the last step does all."""
    last = done == cfg.max_steps
    return (done == 1 or done % cfg.log_interval == 0 or last,
            evaluating and (bool(cfg.eval_interval and done % cfg.eval_interval == 0) or last),
            bool(cfg.checkpoint_interval and done % cfg.checkpoint_interval == 0) or last)


def _forward_backward(fwd, get_batch, step: int, cfg: TrainConfig, runtime: Runtime, scaler):
    """Accumulate gradients over grad_accum micro-batches; return the step's mean loss (a tensor) and its shape."""
    device = runtime.device
    loss_sum = torch.zeros((), device=device)
    for micro in range(cfg.grad_accum):
        x_all, y_all = get_batch(step * cfg.grad_accum + micro)
        x, y = distributed.shard(x_all, y_all)   # this process's rows (all of them with one process)
        weight = distributed.share_weight(y_all, y)   # 1 with one process; see distributed.share_weight
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with runtime.autocast():
            _, loss = fwd(x, y)
        loss = loss * weight / cfg.grad_accum  # the gradient of the whole batch's mean, over all micro-batches
        scaler.scale(loss).backward()
        loss_sum += loss.detach()  # no .item() here: it would make the CPU wait for the GPU every step
    return loss_sum, x_all.shape


def _gradients(forward, eager, optimizer, get_batch, step, cfg, runtime, scaler):
    """(loss, shape, forward) of a step's forward and backward passes, through the compiled model when there is
    one. torch.compile often fails only when its first batch arrives (no C++ compiler, unsupported platform):
    then the step is redone eagerly, from the same random state, and forward is the eager model from then on."""
    if forward is eager:
        return (*_forward_backward(eager, get_batch, step, cfg, runtime, scaler), eager)
    device = runtime.device
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    try:
        return (*_forward_backward(forward, get_batch, step, cfg, runtime, scaler), forward)
    except Exception as e:
        warnings.warn(f"torch.compile failed ({_first_line(e)}); training eagerly", RuntimeWarning)
        optimizer.zero_grad(set_to_none=True)
        torch.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state(cuda_rng, device)
        return (*_forward_backward(eager, get_batch, step, cfg, runtime, scaler), eager)


def _optimizer_step(model, optimizer, scaler, cfg: TrainConfig):
    """Clip the gradient norm, step, and free the gradients."""
    if cfg.grad_clip:
        scaler.unscale_(optimizer)  # clip the true gradients, not the fp16-scaled ones
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)  # frees the gradients instead of writing zeros into them


class _Meter:
    """Throughput since the last log line and the wall time of the whole run. Time spent logging, evaluating
    and saving is left out of tokens/s: `restart` after them."""

    def __init__(self, model, peak: float | None, seconds_before: float):
        self.model, self.peak, self.seconds_before = model, peak, seconds_before
        self.flops_per_token = {}   # by sequence length (SFT batches are shorter than block_size)
        self.t_start = self.t_log = time.perf_counter()
        self.tokens_since_log = 0

    def count(self, state: _Progress, shape, grad_accum: int) -> None:
        """Add one optimizer step of micro-batches of `shape` (B, T) to the run's tokens and FLOPs."""
        B, T = shape
        if T not in self.flops_per_token:
            self.flops_per_token[T] = self.model.flops_per_token(training=True, seq_len=T)
        n = B * T * grad_accum
        state.tokens += n
        state.flops += self.flops_per_token[T] * n
        self.tokens_since_log += n
        self.last_T = T

    def elapsed(self) -> float:
        return self.seconds_before + time.perf_counter() - self.t_start

    def log_row(self, done: int, loss_value: float, lr: float, state: _Progress, scaler) -> dict:
        """The history's row for step `done`: its loss, rate, throughput and MFU since the last log."""
        now = time.perf_counter()
        tokens_per_s = self.tokens_since_log / max(now - self.t_log, 1e-9)
        flops = self.flops_per_token[self.last_T]
        return {"step": done, "loss": loss_value, "lr": lr, "tokens": state.tokens, "tokens_per_s": tokens_per_s,
                "mfu": flops * tokens_per_s / self.peak if self.peak else None,
                "elapsed": self.seconds_before + now - self.t_start,
                **({"loss_scale": scaler.get_scale()} if scaler.is_enabled() else {})}  # fp16: falls on overflow

    def restart(self) -> None:
        self.t_log, self.tokens_since_log = time.perf_counter(), 0


def _evaluate(model, eval_fn, runtime: Runtime) -> dict:
    """eval_fn(model) in eval mode, without gradients, on its own copy of the RNG state (eval may sample;
    training's dropout draws stay unchanged)."""
    device = runtime.device
    model.eval()
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad(), runtime.autocast():
        metrics = eval_fn(model)
    model.train()
    return metrics


def _add_metrics(history: list, done: int, metrics: dict) -> None:
    """Evaluation metrics into the history: into step `done`'s row when that step was logged, else a row of their own."""
    if history and history[-1]["step"] == done:
        history[-1].update(metrics)
    else:
        history.append({"step": done, **metrics})


def _save(out_dir, model, optimizer, scaler, tokenizer, state: _Progress, cfg: TrainConfig, *, step: int,
          seconds: float):
    """A checkpoint a run resumes from: weights, optimizer and RNG state, the history, the caller's facts and the
    loop's counters."""
    history = state.history
    last = {k: v for k, v in history[-1].items() if isinstance(v, (int, float))} if history else {}
    extra = {**state.extra, "train_config": asdict(cfg), "tokens": state.tokens, "flops": state.flops,
             "seconds": seconds}
    save_checkpoint(out_dir, model, step=step, tokenizer=tokenizer, metrics=last, optimizer=optimizer, scaler=scaler,
                    extra=extra,
                    files={"history.json": json.dumps(history, indent=1), "history.csv": history_csv(history)})


# `train` reads top to bottom in phases, each a small function above it:
#
#     set up (optimizer, fp16 loss scaler) -> resume a saved run (_resume) -> wrap (DDP, torch.compile: _wrap)
#     -> each step: lr (linear warmup, then cosine decay)
#        -> forward/backward on grad_accum micro-batches (_gradients: autocast, loss scaled for fp16)
#        -> clip the gradient norm, AdamW (or Muon) step (_optimizer_step)
#        -> log, evaluate (_evaluate), checkpoint (_save) when due
#
# The caller supplies the data as `get_batch(i) -> (x, y)`, a pure function of the micro-step index
# i = step * grad_accum + micro. Because the batch depends only on i, and the checkpoint stores the
# weights, the optimizer moments and the random-number state (dropout), a run resumed from a
# checkpoint continues exactly as if it had never stopped.
def train(model, get_batch: Callable, cfg: TrainConfig, runtime: Runtime, *, eval_fn=None, out_dir=None,
          resume=False, progress=True, desc="train", on_log=None, tokenizer=None, extra: dict | None = None) -> TrainResult:
    """Train `model` for cfg.max_steps optimizer steps on batches from get_batch(i).

    eval_fn(model) -> metrics runs every cfg.eval_interval steps and at the end (eval mode, no gradients, its own
    RNG state). out_dir: checkpoint there; resume=True continues from it. on_log(history) runs after every logged
    step (a notebook redraws its plot there). extra: the caller's facts, kept in the checkpoint's "extra" beside the
    loop's counters (the course keeps its data's fingerprint there). Under torchrun each process trains on its
    share of every batch through DDP; only rank 0 shows progress, evaluates, calls on_log and saves, and every
    process returns once the last checkpoint is written. Returns a TrainResult; the model is left in eval mode.
    """
    # -- set up: the optimizer, the loss scaler (fp16 only), dropout's seed (a resume replaces it)
    device = runtime.device
    model.to(device)
    procs, main = distributed.world_size(), distributed.is_main()
    optimizer = model.configure_optimizers(cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2),
                                           runtime.device_type, optimizer=cfg.optimizer, muon_lr=cfg.muon_lr)
    scaler = runtime.make_scaler()  # passes everything through unless precision is fp16
    torch.manual_seed(cfg.seed)

    # -- resume a saved run, or start a new one; wrap for DDP and torch.compile
    if resume and out_dir is not None and (Path(out_dir) / "trainer_state.json").exists():
        state = _resume(out_dir, model, optimizer, scaler, extra)
    else:
        state = _Progress(extra=dict(extra or {}))
    eager, forward = _wrap(model, cfg, runtime, procs, steps_left=state.start < cfg.max_steps)

    model.train()
    bar = tqdm(total=cfg.max_steps, initial=state.start, desc=desc, disable=not (progress and main))
    if forward is not eager:
        bar.set_postfix_str("compiling (the first step takes a while)")
    meter = _Meter(model, cfg.peak_flops or peak_flops(runtime), state.seconds)   # the clock starts here
    unchecked = None  # the losses since the last finiteness check, summed on the device
    try:
        for step in range(state.start, cfg.max_steps):
            done = step + 1
            log_due, eval_due, checkpoint_due = _due(done, cfg, evaluating=eval_fn is not None and main)

            # -- the step: learning rate, forward and backward, the finiteness check, the update
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)   # Muon's groups run at their own scale
            loss, shape, forward = _gradients(forward, eager, optimizer, get_batch, step, cfg, runtime, scaler)
            unchecked = loss if unchecked is None else unchecked + loss   # NaN or inf anywhere stays non-finite
            if device.type == "cpu" or log_due or checkpoint_due:   # checkpoint steps too: never save NaN weights
                _check_finite(distributed.all_sum(unchecked.detach()), done, runtime)   # before the update
                unchecked = None
            _optimizer_step(model, optimizer, scaler, cfg)
            meter.count(state, shape, cfg.grad_accum)
            bar.update(1)

            # -- log, evaluate and save when due (on a GPU, the loss is read to the host only here)
            if log_due:
                loss_value = (distributed.all_sum(loss) / procs).item()   # the mean over every process's rows
                state.history.append(meter.log_row(done, loss_value, lr, state, scaler))
                bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
            if eval_due:
                _add_metrics(state.history, done, _evaluate(model, eval_fn, runtime))
            if (log_due or eval_due) and on_log is not None and main:
                on_log(state.history)
            saved = main and out_dir is not None and checkpoint_due
            if saved:
                _save(out_dir, model, optimizer, scaler, tokenizer, state, cfg, step=done, seconds=meter.elapsed())
            if log_due or eval_due or saved:
                meter.restart()
    finally:
        bar.close()
    distributed.barrier()   # the others wait until rank 0 has written the last checkpoint

    seconds = meter.elapsed() if state.start < cfg.max_steps else state.seconds
    model.eval()
    return TrainResult(model=model, history=state.history, seconds=seconds, tokens=state.tokens, flops=state.flops)
