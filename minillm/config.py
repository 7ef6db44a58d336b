"""Presets: one name picks the size of everything - the world, the tokenizer, the model, both trainings.

    smoke  tests and CI: every cell runs, in seconds; the numbers mean nothing
    cpu    the real lesson on a laptop: 200 people, ~2M parameters, the whole course in <= 15 min on 2 cores
    gpu    one CUDA GPU: 2,000 people and a ~27M-parameter model in <= 10 min

The preset is chosen by argument, else by the environment variable MINILLM_PRESET (the tests set
it to "smoke"), else by the hardware: "gpu" when CUDA is available, otherwise "cpu".

A preset is plain data (small dataclasses), so a student can copy one and change a field:
    p = get_preset("cpu"); p = dataclasses.replace(p, pretrain=dataclasses.replace(p.pretrain, max_steps=200))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch

from minillm.model import GPTConfig
from minillm.train import TrainConfig
from minillm.world import WorldConfig

PRESETS = ("smoke", "cpu", "gpu")


@dataclass(frozen=True)
class Preset:
    name: str
    world: WorldConfig         # people, places, documents and fine-tuning set sizes
    model: GPTConfig           # model.vocab_size is also the BPE vocabulary the tokenizer is trained to
    pretrain: TrainConfig
    sft: TrainConfig
    sft_mix: float             # share of each SFT batch that is pretraining text (keeps stored facts from eroding)
    expected_minutes: float    # whole course, on the hardware the preset is made for
    hardware: str = ""
    eval_max_new_tokens: int = 48   # the length limit of an evaluated reply (profiles get more, minillm.evaluate)
    sft_length_pool: int = 256  # SFT batches group conversations of similar length (data.sft_batch); 0: random
    sft_pack: int = 0           # N > 0: SFT rows of N tokens packed with whole conversations (data.sft_batches); 0: one per row
    sft_pack_share: float = 1.0  # with sft_pack: the share of fine-tuning steps packed, evenly spread; the others one conversation per row

    @property
    def vocab_size(self) -> int:
        """The tokenizer's vocabulary, special tokens included: one row of the model's embedding table each."""
        return self.model.vocab_size


def _presets() -> dict[str, Preset]:
    smoke = Preset(
        name="smoke",
        world=WorldConfig(n_people=20, n_countries=3, n_cities=6, n_universities=4, n_companies=6, n_majors=6,
                          n_news=12, n_stories=6, n_forum=16, n_quizzes=4, n_small_talk=10,
                          n_qa_threads=8, qa_thread_switch=0.3),
        model=GPTConfig(vocab_size=384, block_size=128, n_layer=2, n_head=2, n_embd=64, dropout=0.0),
        pretrain=TrainConfig(max_steps=120, batch_size=16, learning_rate=3e-3, log_interval=10),
        sft=TrainConfig(max_steps=40, batch_size=16, learning_rate=1e-3, log_interval=10),
        sft_mix=0.25, expected_minutes=1, hardware="any", eval_max_new_tokens=24, sft_pack=128, sft_pack_share=0.5,
    )
    cpu = Preset(
        name="cpu",
        world=WorldConfig(n_people=200, n_countries=6, n_cities=30, n_universities=20, n_companies=30, n_majors=20,
                          n_news=30, n_stories=12, n_forum=80, n_quizzes=20, n_small_talk=80,
                          # answered Q&A threads about fine-tuning people, with follow-ups (three in ten about
                          # another person): conversations as the internet shows them (bench/RESULTS.md, three
                          # seeds against the same preset without them: follow-ups +5.9, unseen wordings +6.6;
                          # 200 threads did not add to it)
                          n_qa_threads=100, qa_thread_switch=0.3),
        model=GPTConfig(vocab_size=1024, block_size=256, n_layer=4, n_head=4, n_embd=192, dropout=0.0),
        # 1,320 steps: the threads add a tenth to the corpus, so each biography is still read as often
        pretrain=TrainConfig(max_steps=1320, batch_size=16, learning_rate=3e-3, log_interval=10, checkpoint_interval=100),
        sft=TrainConfig(max_steps=600, batch_size=32, learning_rate=5e-4, log_interval=10),
        sft_mix=0.5, expected_minutes=15, hardware="2 CPU cores",
        # every other fine-tuning step packs its conversations into context-long rows, so questions are also
        # learned later in a chat (bench/RESULTS.md, six paired runs: after small talk +7.7, asked first +0.3)
        sft_pack=256, sft_pack_share=0.5,
    )
    gpu = Preset(
        name="gpu",
        world=WorldConfig(n_people=2000, n_countries=10, n_cities=60, n_universities=40, n_companies=60, n_majors=30,
                          n_news=300, n_stories=120, n_forum=800, n_quizzes=200, n_small_talk=200),
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


def world_config(preset: str | Preset | None = None, augment: int | None = None, seed: int = 0) -> WorldConfig:
    """A preset's world (by name, or a Preset) with another seed, and `augment` biographies per person when
    given (1 = the lesson's single-biography run)."""
    world = (preset if isinstance(preset, Preset) else get_preset(preset)).world
    return replace(world, seed=seed, **({} if augment is None else {"bios_per_person": augment}))
