"""Save and load checkpoints: safetensors + JSON, written atomically, never unpickled.

A checkpoint is minillm's own folder: a model's weights and config, and for a training checkpoint everything
needed to resume (the training loop, minillm.train, writes and resumes them). minillm.hf converts one to the
Hugging Face format (GPT-2's) and reads that format back.
"""
import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path

import torch
from safetensors.torch import load, save_file

from minillm.model import GPT, GPTConfig

# No pickle. torch.save/torch.load pickle Python objects, and loading a pickle can run arbitrary
# code; safetensors holds only tensors and JSON holds only data, so loading a checkpoint someone
# sent you is safe.

FORMAT = "minillm-checkpoint"
VERSION = 1


class CheckpointError(Exception):
    """A checkpoint could not be saved or loaded; the message names the file and the fix.

    Clear errors: a missing, truncated or mismatched file raises CheckpointError naming the file and what to
    do about it."""


# ---------------------------------------------------------------------------- saving

def _weights_without_duplicates(model):
    """State dict with each shared tensor stored once, plus {duplicate name: stored name}.

    safetensors refuses tensors that share memory; the GPT ties the token embedding to the output
    layer, so one of the two names is recorded as an alias of the other and re-tied on load.
    """
    tensors, aliases, seen = {}, {}, {}
    for name, t in model.state_dict().items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride())
        if key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            tensors[name] = t.detach().to("cpu").contiguous()
    return tensors, aliases


def _optimizer_to_files(optimizer):
    """Split optimizer.state_dict() into flat tensors (safetensors) and the rest (JSON)."""
    sd = optimizer.state_dict()
    tensors, plain = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{idx}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                plain.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "state": plain}


def _rng_tensors():
    """The random-number generators' states, as tensors (dropout draws from these)."""
    rng = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            rng[f"rng.cuda.{i}"] = state
    return rng


def _write_json(path, obj):
    path.write_text(json.dumps(obj, indent=2, default=_json_default))


def _json_default(value):
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, (torch.dtype, torch.device, Path)):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint's JSON: pass plain numbers, strings, lists and dicts")


def _sha256(file: Path) -> str:
    return hashlib.sha256(file.read_bytes()).hexdigest()


def _fsync(path: Path) -> None:
    """Flush a file's bytes to the disk through a handle that may write: on Windows os.fsync needs one."""
    with open(path, "r+b") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable. Only POSIX systems can open a folder for fsync; Windows (no
    O_DIRECTORY) makes the rename itself durable, so there is nothing to do."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError:   # some file systems (network shares) refuse it; the files themselves are on disk
        pass
    finally:
        os.close(fd)


@contextmanager
def writing_folder(path) -> Iterator[Path]:
    """A folder to write into, beside `path`, that becomes `path` when the block ends without an error.

    Every file is flushed to disk first, then two renames swap it in: the old folder steps aside, the
    new one takes its name, then the old one goes. A kill between the two renames leaves the old folder
    at `.name.old` (load_checkpoint finds it there). On an error the new folder goes and `path` stays as
    it was. The checkpoints and the Hugging Face export (minillm.hf) are both written this way.

    Atomic: a run killed mid-save (Ctrl-C, a closed laptop, a full disk) leaves the previous checkpoint intact
    instead of a half-written one. Durable on every system: each file is flushed to disk through a handle
    opened for writing (Windows refuses to fsync a read-only one) before the rename, and the folder itself
    where the system allows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp"
    old = path.parent / f".{path.name}.old"
    if tmp.exists():  # left by a save that was killed: it never became the folder
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        for f in tmp.iterdir():  # the bytes on disk before the rename makes them "the" folder
            _fsync(f)
        if old.exists():
            shutil.rmtree(old)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not path.exists():  # failed between the renames: put the old one back
            os.replace(old, path)
        raise


def save_checkpoint(path_dir, model, *, step=0, tokenizer=None, metrics=None, optimizer=None, scaler=None,
                    extra=None, files=None) -> Path:
    """Write a checkpoint folder atomically and return its path. A checkpoint is a folder:

        model.safetensors      the weights (the tied embedding stored once, re-tied on load)
        config.json            model config (GPTConfig fields), tokenizer fingerprint, step, metrics, extra
        optimizer.safetensors  (training checkpoints) AdamW moments and every other tensor needed to
                               resume: the random-number generator states (dropout draws from them)
        trainer_state.json     (training checkpoints) step, optimizer settings, loss-scaler state

    With `optimizer` (and `scaler`) it is a training checkpoint that `load_training_state` can
    resume from. `files` maps extra file names to text written into the folder with the rest
    (the training loop stores history.json and history.csv this way, so they match the weights).
    """
    path = Path(path_dir)
    model = getattr(model, "_orig_mod", model)  # a torch.compile'd model saves as the model it wraps
    with writing_folder(path) as tmp:
        tensors, aliases = _weights_without_duplicates(model)
        save_file(tensors, tmp / "model.safetensors", metadata={"aliases": json.dumps(aliases)})
        if optimizer is not None:
            opt_tensors, opt_plain = _optimizer_to_files(optimizer)
            save_file({**opt_tensors, **_rng_tensors()}, tmp / "optimizer.safetensors")
        config = {
            "format": FORMAT,
            "version": VERSION,
            "model_config": asdict(model.config),
            "tokenizer_fingerprint": getattr(tokenizer, "fingerprint", None),
            "step": int(step),
            "metrics": metrics or {},
            "extra": extra or {},
            "sha256": {f.name: _sha256(f) for f in sorted(tmp.glob("*.safetensors"))},
        }
        _write_json(tmp / "config.json", config)
        if optimizer is not None:
            state = {
                "step": int(step),
                "optimizer": opt_plain,
                "scaler": scaler.state_dict() if scaler is not None else {},
            }
            _write_json(tmp / "trainer_state.json", state)
        for name, text in (files or {}).items():
            (tmp / name).write_text(text)
    return path


# ---------------------------------------------------------------------------- loading

def _resolve(path_dir) -> Path:
    """The checkpoint folder, or the previous one if a save was killed half-way through its swap."""
    path = Path(path_dir)
    old = path.parent / f".{path.name}.old"
    if not path.exists() and old.exists():
        warnings.warn(f"{path} is missing but {old} exists (a save was interrupted); loading the previous checkpoint from it")
        return old
    if not path.is_dir():
        raise CheckpointError(
            f"no checkpoint folder at {path}: check the path, or train/save a model there first "
            "(save_checkpoint or train(..., out_dir=...))"
        )
    return path


def _read_json(file: Path) -> dict:
    if not file.exists():
        raise CheckpointError(f"{file} is missing: the checkpoint is incomplete; save it again (or copy the whole folder)")
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{file} is not valid JSON ({e}); the file is damaged: restore it or save the checkpoint again") from None


def _read_safetensors(file: Path) -> dict:
    """The tensors of `file`, checked against the SHA-256 its folder's config.json recorded (a checkpoint
    saved before hashes were recorded is read unchecked): a flipped bit or a file swapped from another run is
    named instead of loaded."""
    if not file.exists():
        raise CheckpointError(f"{file} is missing: the checkpoint is incomplete; save it again (or copy the whole folder)")
    data = file.read_bytes()
    config = file.parent / "config.json"
    expected = (_read_json(config).get("sha256") or {}).get(file.name) if config.exists() else None
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise CheckpointError(f"{file}: the weights changed since they were saved (SHA-256 differs from "
                              "config.json): restore the file from a copy or retrain")
    try:
        return load(data)
    except Exception as e:  # safetensors raises its own error types for truncated or garbled files
        raise CheckpointError(
            f"{file} is truncated or corrupt ({type(e).__name__}: {e}); "
            "re-copy the file or save the checkpoint again"
        ) from None


def _weights_metadata(file: Path) -> dict:
    from safetensors import safe_open
    try:
        with safe_open(file, "pt") as f:
            return f.metadata() or {}
    except Exception:
        return {}


def read_config(path_dir) -> dict:
    """config.json of a checkpoint (model config, step, metrics, tokenizer fingerprint, extra)."""
    return _read_json(_resolve(path_dir) / "config.json")


def load_weights(path_dir, model) -> None:
    """Load a checkpoint's weights into an existing model, checking every name and shape first."""
    path = _resolve(path_dir)
    file = path / "model.safetensors"
    tensors = _read_safetensors(file)
    aliases = json.loads(_weights_metadata(file).get("aliases", "{}"))
    model = getattr(model, "_orig_mod", model)
    for name, target in aliases.items():
        if target in tensors:
            tensors[name] = tensors[target]
    load_tensors(model, tensors, file)


def load_tensors(model, tensors: dict, file) -> None:
    """Load named tensors (read from `file`) into model, after checking that every name is there, every shape
    fits and every value is finite; a CheckpointError names the file and the tensor otherwise. Weights must be
    finite: a NaN written into one tensor would otherwise load silently and make every generation garbage."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{file} does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}; "
            "the weights come from a different model architecture than the one being loaded into"
        )
    for name, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"{file}: tensor {name!r} holds NaN or infinite values; the model diverged "
                                  "before it was saved or the file was damaged: restore it or retrain")
        if tuple(t.shape) != tuple(expected[name].shape):
            raise CheckpointError(
                f"{file}: tensor {name!r} has shape {tuple(t.shape)} but the model expects "
                f"{tuple(expected[name].shape)}; the weights and the model config (config.json) come from "
                "different models: save the checkpoint again, or build the model with the config it was trained with"
            )
    with torch.no_grad():
        model.load_state_dict(tensors, strict=True)


def load_checkpoint(path_dir, *, device="cpu", tokenizer=None):
    """Build the GPT a checkpoint describes and load its weights -> (model, meta).

    meta: step, metrics, tokenizer_fingerprint, extra, model_config. With `tokenizer`, its
    fingerprint must match the one the model was trained with (other ids mean other tokens).
    """
    path = _resolve(path_dir)
    config = _read_json(path / "config.json")
    if config.get("format") != FORMAT or not isinstance(config.get("model_config"), dict):
        raise CheckpointError(
            f"{path / 'config.json'} is not a minillm checkpoint config (no 'format': '{FORMAT}' / 'model_config'); "
            "point load_checkpoint at a folder written by save_checkpoint"
        )
    known = {f.name for f in fields(GPTConfig)}
    unknown = sorted(set(config["model_config"]) - known)
    if unknown:
        raise CheckpointError(
            f"{path / 'config.json'}: model_config has fields this version of minillm does not know: {unknown}; "
            "load it with the minillm version that saved it"
        )
    try:
        model_config = GPTConfig(**config["model_config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path / 'config.json'}: invalid model_config ({e}); fix the file or save the checkpoint again") from None
    saved_fp = config.get("tokenizer_fingerprint")
    if tokenizer is not None and saved_fp is not None and tokenizer.fingerprint != saved_fp:
        raise CheckpointError(
            f"{path / 'config.json'}: the model was trained with tokenizer {saved_fp} but the tokenizer "
            f"passed is {tokenizer.fingerprint}; token ids would mean different text: load the tokenizer the "
            "model was trained with"
        )
    model = GPT(model_config)
    load_weights(path, model)
    model.to(device)
    meta = {
        "step": config.get("step", 0),
        "metrics": config.get("metrics", {}),
        "tokenizer_fingerprint": saved_fp,
        "extra": config.get("extra", {}),
        "model_config": config["model_config"],
    }
    return model, meta


def load_training_state(path_dir, optimizer, scaler=None) -> dict:
    """Restore optimizer (and loss-scaler) state and the RNG states -> dict(step, ...).

    The optimizer must be built over the model's parameters in the same order as when saved
    (model.configure_optimizers does that) and the weights loaded with load_weights.
    """
    path = _resolve(path_dir)
    state = _read_json(path / "trainer_state.json")
    tensors = _read_safetensors(path / "optimizer.safetensors")
    opt_state = {}
    for name, t in tensors.items():
        if name.startswith("optimizer."):
            _, idx, key = name.split(".", 2)
            opt_state.setdefault(int(idx), {})[key] = t
    for idx, values in state["optimizer"]["state"].items():
        opt_state.setdefault(int(idx), {}).update(values)
    groups = state["optimizer"]["param_groups"]
    for g in groups:  # JSON turned tuples (betas) into lists
        for k, v in g.items():
            if k != "params" and isinstance(v, list):
                g[k] = tuple(v)
    try:
        optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as e:
        raise CheckpointError(
            f"{path / 'optimizer.safetensors'} does not fit this optimizer ({e}); build the optimizer with "
            "model.configure_optimizers on the same model, or start training without resume"
        ) from None
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(tensors["rng.cpu"])
    cuda_keys = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    cuda_states = [tensors[k] for k in cuda_keys]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    return {"step": state["step"], "scaler": state.get("scaler", {})}
