"""Presets: one name picks the size of everything - the world, the tokenizer, the model, both trainings.

    smoke  tests and CI: every cell runs, in seconds; the numbers mean nothing
    cpu    the real lesson on a laptop: ~2M parameters, the whole course in <= 15 min on 2 cores
    gpu    one CUDA GPU: a bigger world and a ~25M-parameter model in <= 10 min

The preset is chosen by argument, else by the environment variable MINILLM_PRESET (the tests set
it to "smoke"), else by the hardware: "gpu" when CUDA is available, otherwise "cpu".

A preset is plain data (small dataclasses), so a student can copy one and change a field:
    p = get_preset("cpu"); p = dataclasses.replace(p, pretrain=dataclasses.replace(p.pretrain, max_steps=200))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from minillm.model import GPTConfig
from minillm.train import TrainConfig

PRESETS = ("smoke", "cpu", "gpu")


@dataclass(frozen=True)
class Preset:
    name: str
    vocab_size: int            # BPE vocabulary, including the 4 special tokens
    model: GPTConfig           # vocab_size matches the field above
    pretrain: TrainConfig
    sft: TrainConfig
    sft_mix: float             # share of each SFT batch that is pretraining text (keeps stored facts from eroding)
    expected_minutes: float    # whole course, on the hardware the preset is made for
    hardware: str = ""
    eval_max_new_tokens: int = 48
    sft_length_pool: int = 256  # SFT batches group conversations of similar length (data.sft_batch); 0: random
    notes: dict = field(default_factory=dict)


def _presets() -> dict[str, Preset]:
    smoke = Preset(
        name="smoke", vocab_size=384,
        model=GPTConfig(vocab_size=384, block_size=128, n_layer=2, n_head=2, n_embd=64, dropout=0.0),
        pretrain=TrainConfig(max_steps=120, batch_size=16, learning_rate=3e-3, log_interval=10),
        sft=TrainConfig(max_steps=40, batch_size=16, learning_rate=1e-3, log_interval=10),
        sft_mix=0.25, expected_minutes=1, hardware="any", eval_max_new_tokens=24,
    )
    cpu = Preset(
        name="cpu", vocab_size=1024,
        model=GPTConfig(vocab_size=1024, block_size=256, n_layer=4, n_head=4, n_embd=192, dropout=0.0),
        pretrain=TrainConfig(max_steps=1200, batch_size=16, learning_rate=3e-3, log_interval=10, checkpoint_interval=100),
        sft=TrainConfig(max_steps=600, batch_size=32, learning_rate=5e-4, log_interval=10),
        sft_mix=0.5, expected_minutes=15, hardware="2 CPU cores",
    )
    gpu = Preset(
        name="gpu", vocab_size=4096,
        model=GPTConfig(vocab_size=4096, block_size=256, n_layer=8, n_head=8, n_embd=512, dropout=0.0),
        pretrain=TrainConfig(max_steps=3000, batch_size=64, learning_rate=1e-3, log_interval=25, checkpoint_interval=500),
        sft=TrainConfig(max_steps=500, batch_size=64, learning_rate=3e-4, log_interval=25),
        sft_mix=0.25, expected_minutes=10, hardware="one CUDA GPU (A100/H100 class)",
    )
    return {p.name: p for p in (smoke, cpu, gpu)}


def default_preset_name() -> str:
    """MINILLM_PRESET if set, else what the hardware suggests."""
    env = os.environ.get("MINILLM_PRESET", "").strip()
    if env:
        return env
    return "gpu" if torch.cuda.is_available() else "cpu"


def get_preset(name: str | None = None) -> Preset:
    name = name or default_preset_name()
    presets = _presets()
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)} "
                         "(by argument or the MINILLM_PRESET environment variable)")
    return presets[name]
