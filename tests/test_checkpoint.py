"""Checkpoints: exact round trip (tied embedding, optimizer, RNG), atomic saves, and clear errors."""
import json
from types import SimpleNamespace

import pytest
import torch

from minillm import checkpoint
from minillm.checkpoint import CheckpointError, load_checkpoint, load_training_state, load_weights, save_checkpoint
from minillm.model import GPT, GPTConfig

CFG = GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.1)


pytestmark = pytest.mark.usefixtures("one_thread")


def make_model(seed=0):
    torch.manual_seed(seed)
    return GPT(CFG)


def trained(seed=0, steps=2):
    """A model and its AdamW after a few steps, so the optimizer has state worth saving."""
    model = make_model(seed)
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    for _ in range(steps):
        x = torch.randint(64, (2, 16))
        _, loss = model(x, x)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return model, opt


def forget_hashes(folder):
    config = json.loads((folder / "config.json").read_text())
    del config["sha256"]
    (folder / "config.json").write_text(json.dumps(config))


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_round_trip(tmp_path):
    model, _ = trained()
    tok = SimpleNamespace(fingerprint="abc123")
    path = save_checkpoint(tmp_path / "base", model, step=7, tokenizer=tok, metrics={"loss": 1.5}, extra={"phase": "pretrain"})
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["base"]  # no temporary folders left behind
    loaded, meta = load_checkpoint(path, tokenizer=tok)
    assert same_weights(model, loaded)
    assert loaded.lm_head.weight.data_ptr() == loaded.transformer.wte.weight.data_ptr()  # re-tied
    assert meta["step"] == 7 and meta["metrics"] == {"loss": 1.5} and meta["extra"] == {"phase": "pretrain"}
    assert meta["tokenizer_fingerprint"] == "abc123"
    assert GPTConfig(**meta["model_config"]) == CFG
    x = torch.randint(64, (1, 16))
    model.eval(), loaded.eval()
    assert torch.equal(model(x)[0], loaded(x)[0])


def test_loading_never_unpickles(tmp_path, monkeypatch):
    model, opt = trained()
    save_checkpoint(tmp_path / "c", model, optimizer=opt)

    def no_pickle(*a, **k):
        raise AssertionError("torch.load must not be used")

    monkeypatch.setattr(torch, "load", no_pickle)
    load_checkpoint(tmp_path / "c")
    load_training_state(tmp_path / "c", make_model().configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu"))


def test_training_state_round_trip(tmp_path):
    model, opt = trained(steps=3)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    torch.manual_seed(123)
    torch.rand(3)
    rng_before = torch.get_rng_state()
    save_checkpoint(tmp_path / "c", model, step=3, optimizer=opt, scaler=scaler, files={"note.txt": "hi"})
    assert (tmp_path / "c" / "note.txt").read_text() == "hi"
    expected_next = torch.rand(5)

    fresh = make_model(seed=1)
    fresh_opt = fresh.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    load_weights(tmp_path / "c", fresh)
    state = load_training_state(tmp_path / "c", fresh_opt, scaler)
    assert state["step"] == 3
    assert torch.equal(torch.rand(5), expected_next)  # RNG restored to the saved point
    assert torch.equal(torch.get_rng_state(), torch.get_rng_state()) and rng_before.dtype == torch.uint8
    assert same_weights(model, fresh)
    a, b = opt.state_dict(), fresh_opt.state_dict()
    assert a["param_groups"] == [{**g, "betas": tuple(g["betas"])} for g in b["param_groups"]]
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        for k in a["state"][i]:
            assert torch.equal(a["state"][i][k], b["state"][i][k])


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt"
    first, opt = trained(seed=0)
    save_checkpoint(path, first, step=1, optimizer=opt)
    second, opt2 = trained(seed=1)

    calls = []
    real_save_file = checkpoint.save_file

    def dies_on_second_file(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 2:  # model.safetensors written, then the process "dies" on optimizer.safetensors
            raise OSError("disk full")
        real_save_file(tensors, filename, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", dies_on_second_file)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, second, step=2, optimizer=opt2)
    monkeypatch.undo()
    loaded, meta = load_checkpoint(path)
    assert meta["step"] == 1 and same_weights(first, loaded)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]

    # dying between the two renames of the swap: the old checkpoint is put back
    real_replace = checkpoint.os.replace
    n = []

    def dies_on_second_rename(src, dst):
        n.append(src)
        if len(n) == 2:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", dies_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, second, step=2, optimizer=opt2)
    monkeypatch.undo()
    loaded, meta = load_checkpoint(path)
    assert meta["step"] == 1 and same_weights(first, loaded)

    # a process killed outright between the renames leaves only `.ckpt.old`: loading finds it
    checkpoint.os.replace(path, tmp_path / ".ckpt.old")
    with pytest.warns(UserWarning, match="a save was interrupted"):
        loaded, meta = load_checkpoint(path)
    assert meta["step"] == 1
    save_checkpoint(path, second, step=2)  # and the next save cleans up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert load_checkpoint(path)[1]["step"] == 2


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(CheckpointError, match=r"no checkpoint folder at .*nowhere: check the path"):
        load_checkpoint(tmp_path / "nowhere")
    save_checkpoint(tmp_path / "c", make_model())
    (tmp_path / "c" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors is missing: the checkpoint is incomplete"):
        load_checkpoint(tmp_path / "c")
    (tmp_path / "c" / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config\.json is missing"):
        load_checkpoint(tmp_path / "c")
    save_checkpoint(tmp_path / "d", make_model())  # no optimizer saved -> cannot resume training from it
    with pytest.raises(CheckpointError, match=r"trainer_state\.json is missing"):
        load_training_state(tmp_path / "d", make_model().configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu"))


def test_truncated_weights(tmp_path):
    save_checkpoint(tmp_path / "c", make_model())
    f = tmp_path / "c" / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: the weights changed since they were saved"):
        load_checkpoint(tmp_path / "c")
    forget_hashes(tmp_path / "c")      # a checkpoint from before hashes were recorded
    with pytest.raises(CheckpointError, match=r"model\.safetensors is truncated or corrupt .*save the checkpoint again"):
        load_checkpoint(tmp_path / "c")
    f.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match=r"model\.safetensors is truncated or corrupt"):
        load_checkpoint(tmp_path / "c")


def test_invalid_config_json(tmp_path):
    save_checkpoint(tmp_path / "c", make_model())
    (tmp_path / "c" / "config.json").write_text('{"format": "minillm-checkpoint", ')
    with pytest.raises(CheckpointError, match=r"config\.json is not valid JSON"):
        load_checkpoint(tmp_path / "c")
    (tmp_path / "c" / "config.json").write_text('{"hello": 1}')
    with pytest.raises(CheckpointError, match=r"config\.json is not a minillm checkpoint config"):
        load_checkpoint(tmp_path / "c")


def test_shape_mismatch(tmp_path):
    save_checkpoint(tmp_path / "c", make_model())
    cfg_file = tmp_path / "c" / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["model_config"]["vocab_size"] = 65
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: tensor 'transformer\.wte\.weight' has shape \(64, 32\) but the model expects \(65, 32\)"):
        load_checkpoint(tmp_path / "c")
    cfg["model_config"]["n_layer"] = 3
    cfg["model_config"]["vocab_size"] = 64
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"does not match the model: missing \['transformer\.h\.2\."):
        load_checkpoint(tmp_path / "c")
    cfg["model_config"]["n_heads"] = 3
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"fields this version of minillm does not know: \['n_heads'\]"):
        load_checkpoint(tmp_path / "c")


def test_tokenizer_fingerprint(tmp_path):
    save_checkpoint(tmp_path / "c", make_model(), tokenizer=SimpleNamespace(fingerprint="aaaa"))
    with pytest.raises(CheckpointError, match=r"trained with tokenizer aaaa but the tokenizer passed is bbbb"):
        load_checkpoint(tmp_path / "c", tokenizer=SimpleNamespace(fingerprint="bbbb"))
    load_checkpoint(tmp_path / "c", tokenizer=SimpleNamespace(fingerprint="aaaa"))
    load_checkpoint(tmp_path / "c")  # no tokenizer given: nothing to check


def test_a_flipped_bit_is_named_not_loaded(tmp_path):
    model, opt = trained()
    save_checkpoint(tmp_path / "c", model, optimizer=opt)
    recorded = json.loads((tmp_path / "c" / "config.json").read_text())["sha256"]
    assert sorted(recorded) == ["model.safetensors", "optimizer.safetensors"]
    for name in recorded:
        f = tmp_path / "c" / name
        good = f.read_bytes()
        flipped = bytearray(good)
        flipped[len(good) - 100] ^= 0x01          # one bit of one tensor's data
        f.write_bytes(bytes(flipped))
        with pytest.raises(CheckpointError, match=rf"{name}: the weights changed since they were saved \(SHA-256 "
                                                  r"differs from config\.json\): restore the file from a copy or retrain"):
            load_checkpoint(tmp_path / "c")
            load_training_state(tmp_path / "c", make_model().configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu"))
        f.write_bytes(good)
    load_checkpoint(tmp_path / "c")


def test_a_checkpoint_saved_before_hashes_still_loads(tmp_path):
    model = make_model()
    save_checkpoint(tmp_path / "c", model)
    forget_hashes(tmp_path / "c")
    assert same_weights(load_checkpoint(tmp_path / "c")[0], model)


def test_non_finite_weights_are_rejected_with_the_tensor_name(tmp_path):
    model = make_model()
    with torch.no_grad():
        model.transformer.h[1].mlp.c_fc.weight[3, 5] = float("nan")
    save_checkpoint(tmp_path / "c", model)
    with pytest.raises(CheckpointError, match=r"tensor 'transformer\.h\.1\.mlp\.c_fc\.weight' holds NaN or "
                                              r"infinite values; .*restore it or retrain"):
        load_checkpoint(tmp_path / "c")


def test_saves_work_where_fsync_refuses_read_only_handles(tmp_path, monkeypatch):
    """Windows: os.fsync needs a handle opened for writing (Errno 9 otherwise), and a folder cannot be
    opened for fsync at all (no O_DIRECTORY). Simulated here on POSIX."""
    import errno
    import os
    fcntl = pytest.importorskip("fcntl")      # POSIX reads a descriptor's access mode; on Windows the real thing runs
    real_fsync = os.fsync

    def windows_fsync(fd):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            raise OSError(errno.EBADF, "Bad file descriptor")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", windows_fsync)
    monkeypatch.delattr(os, "O_DIRECTORY")
    with open(tmp_path / "x", "wb"), open(tmp_path / "x", "rb") as read_only:   # the simulation does refuse
        with pytest.raises(OSError, match="Bad file descriptor"):
            os.fsync(read_only.fileno())
    model, opt = trained()
    save_checkpoint(tmp_path / "c", model, optimizer=opt, files={"history.json": "[]"})
    save_checkpoint(tmp_path / "c", model, optimizer=opt, files={"history.json": "[]"})    # over an old one
    assert same_weights(load_checkpoint(tmp_path / "c")[0], model)
