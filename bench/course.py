"""The course's numbers for a preset, over several seeds: runs the course for each seed (or reuses a finished
run) and prints every figure per seed, the mean and the range, beside its target. A target is met when the
mean meets it and no seed falls more than SEED_SLACK short of it (the targets: minillm.targets).

    python bench/course.py                      # seeds 0 1 2 of the default preset (runs/cpu, runs/cpu-seed1, ...)
    python bench/course.py --seeds 0            # one seed
    python bench/course.py --ablation           # also one biography per person (runs/cpu-augment1)
    python bench/course.py --preset gpu --fresh
    python bench/course.py --set pretrain.optimizer=muon pretrain.max_steps=800   # a changed preset, in its own runs
    python bench/course.py --set world.answered_share=0.5                         # a changed world
    python bench/course.py --set preset.sft_pack=0                                # a Preset field (no packed rows)
    python bench/course.py --set model.n_layer=6 model.n_embd=160                 # another shape of network

A finished stage is reused only when it is still current (the course's own staleness checks), so after a
change to the code or the data the affected stages retrain; evaluation always runs again.
"""

import argparse
import dataclasses
import shutil
import statistics

from minillm.targets import TARGETS, meets, within_seed_slack
from minillm.config import get_preset
from minillm.course import make_run, run_course
from minillm.report import ASSISTANT_KEYS
from minillm.world import WorldConfig

COURSE_TARGETS = {t.key: (t.op, t.bound) for t in TARGETS if t.scope == "course"}   # a course run's targets


def figures(results: list[dict]) -> list[tuple[str, list[float], str]]:
    """(name, value per seed, target text) for every figure the report shows."""
    keys = list(ASSISTANT_KEYS) + ["unseen_to_standard_ratio", "sft_people_accuracy", "base_answer_rate",
                                   "base_stored_accuracy", "scope_answer_rate_before_fix"]
    keys += [k + "_before_fix" for k in ASSISTANT_KEYS if k + "_before_fix" not in keys]
    rows = []
    for k in keys:
        op, b = COURSE_TARGETS.get(k, (None, None))
        rows.append((k, [r[k] for r in results], f"{op} {b:.0%}" if op else ""))
    return rows


# what --set accepts for a yes/no field
YES_NO = {"1": True, "true": True, "True": True, "0": False, "false": False, "False": False}


def changed(preset, settings: list[str]):
    """(preset, world changes) from "pretrain.max_steps=800"-style settings: pretrain.* and sft.* change
    the preset's TrainConfigs, model.* its GPTConfig, preset.* the Preset's own fields (sft_mix, sft_pack,
    ...), world.* the WorldConfig fields a run passes on (Run.world_changes)."""
    world = {}
    for s in settings:
        key, _, value = s.partition("=")
        part, _, name = key.partition(".")
        if part not in ("pretrain", "sft", "model", "world", "preset") or not value:
            raise SystemExit(f"--set {s!r}: write PART.FIELD=VALUE with PART pretrain, sft, model, world or "
                             "preset, e.g. pretrain.max_steps=800")
        cfg = WorldConfig() if part == "world" else preset if part == "preset" else getattr(preset, part)
        if name not in {f.name for f in dataclasses.fields(cfg)}:
            raise SystemExit(f"--set {s!r}: {type(cfg).__name__} has no field {name!r}")
        kind = type(getattr(cfg, name))
        if kind not in (int, float, str, bool):
            raise SystemExit(f"--set {s!r}: {name} is not a number, a word or a yes/no setting (a training's "
                             "fields are set as pretrain.FIELD=VALUE or sft.FIELD=VALUE)")
        if kind is bool and value not in YES_NO:
            raise SystemExit(f"--set {s!r}: {name} is a yes/no setting: write {key}=1 or {key}=0")
        value = (value if kind is str else YES_NO[value] if kind is bool
                 else kind(float(value)) if kind in (int, float) else value)
        if part == "world":
            world[name] = value
        elif part == "preset":
            preset = dataclasses.replace(preset, **{name: value})
        else:
            try:
                preset = dataclasses.replace(preset, **{part: dataclasses.replace(cfg, **{name: value})})
            except ValueError as e:      # a value the config rejects (a width the heads do not divide, ...)
                raise SystemExit(f"--set {s!r}: {e}") from None
    return preset, world


def verdict(values: list[float], op: str, bound: float) -> str:
    mean = statistics.mean(values)
    worst = min(values) if op == ">=" else max(values)
    return "met" if meets(mean, op, bound) and within_seed_slack(worst, op, bound) else "MISSED"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default=None, help="default: MINILLM_PRESET, else by hardware (cpu without a GPU)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--ablation", action="store_true", help="also one biography per person (the first seed)")
    ap.add_argument("--fresh", action="store_true", help="retrain instead of reusing finished runs")
    ap.add_argument("--set", nargs="+", default=[], metavar="PART.FIELD=VALUE",
                    help="change the preset's training (pretrain.*, sft.*: e.g. pretrain.max_steps=800), its "
                         "network (model.*: e.g. model.n_layer=6), its own fields (preset.*: e.g. "
                         "preset.sft_pack=0) or its world (world.*: e.g. world.answered_share=0.5); runs go to "
                         "their own folders, runs/<preset>-<changes>")
    args = ap.parse_args()
    label = "-".join(a.replace("=", "").replace(".", "_") for a in args.set)

    def make(**kw):
        run = make_run(args.preset, **kw)
        if label:
            run.out = run.out.with_name(run.out.name + "-" + label)
            run.preset, run.world_changes = changed(run.preset, args.set)
        return run

    def result(run):
        if args.fresh and run.out.exists():
            shutil.rmtree(run.out)
        return run_course(run)

    results = [result(make(seed=s)) for s in args.seeds]
    m, preset = results[0], get_preset(results[0]["preset"])
    print(f"\npreset {m['preset']}, seeds {' '.join(map(str, args.seeds))}, {m['params'] / 1e6:.2f}M parameters, "
          f"{m['augment']} biographies per person")
    head = "".join(f"{'seed ' + str(s):>9s}" for s in args.seeds)
    print(f"  {'figure':44s}{head}{'mean':>9s}{'range':>15s}   target")
    for name, values, target in figures(results):
        rng = f"{min(values):.1%}-{max(values):.1%}"
        mark = f" ({verdict(values, *COURSE_TARGETS[name])})" if name in COURSE_TARGETS else ""
        print(f"  {name:44s}" + "".join(f"{v:9.1%}" for v in values)
              + f"{statistics.mean(values):9.1%}{rng:>15s}   {target}{mark}")
    for key, fmt in (("compute_ratio", "{:.1f}x"), ("pretrain_seconds", "{:.0f} s"), ("sft_seconds", "{:.0f} s"),
                     ("total_seconds", "{:.0f} s")):
        values = [r[key] for r in results]
        print(f"  {key:44s}" + "".join(f"{fmt.format(v):>9s}" for v in values)
              + f"{fmt.format(statistics.mean(values)):>9s}")
    # a seed run beside other work records its slowed time, so the fastest seed is the course's time
    print(f"  whole course: {min(r['total_seconds'] for r in results) / 60:.1f} min on the fastest seed "
          f"(target <= {preset.expected_minutes:g} min on {preset.hardware} with nothing else running)")
    print("  deployment log of the first assistant (seed %d), worst class first:" % args.seeds[0])
    for row in m["monitoring_before_fix"]:
        print(f"    {row['class']:28s} {row['n']:5d} messages  {row['rate']:6.1%} handled  {row['failures']:4d} failures")
    if args.ablation:
        a = result(make(seed=args.seeds[0], augment=1))
        print(f"\nablation: {a['augment']} biography per person (seed {a['seed']})")
        for t in [t for t in TARGETS if t.scope == "augment1"]:       # the one-biography run's targets
            print(f"  {t.key:44s}{a[t.key]:9.1%}   {t.op} {t.bound:.0%}")


if __name__ == "__main__":
    main()
