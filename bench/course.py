"""The course's numbers (DESIGN §5) for a preset: runs the course (or reuses a finished run) and prints
each figure beside its target, with the knowledge-augmentation ablation when asked.

    python bench/course.py                      # the cpu preset: runs/cpu (reused if finished)
    python bench/course.py --ablation           # also runs/cpu-augment1 (one biography per person)
    python bench/course.py --preset gpu --fresh
"""

import argparse
import json
import shutil

from minillm.course import make_run, run_course


def line(name, value, target=""):
    print(f"  {name:40s} {value:>10s}   {target}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ablation", action="store_true", help="also run with one biography per person")
    ap.add_argument("--fresh", action="store_true", help="retrain instead of reusing finished runs")
    args = ap.parse_args()

    runs = [make_run(args.preset, seed=args.seed)]
    if args.ablation:
        runs.append(make_run(args.preset, seed=args.seed, augment=1))
    results = []
    for run in runs:
        if args.fresh and run.out.exists():
            shutil.rmtree(run.out)
        results.append(run_course(run) if not (run.out / "metrics.json").exists() or args.fresh
                       else json.loads((run.out / "metrics.json").read_text()))

    m = results[0]
    print(f"\npreset {m['preset']}, seed {m['seed']}, {m['params'] / 1e6:.2f}M parameters, "
          f"{m['augment']} biographies per person")
    line("assistant held-out accuracy", f"{m['heldout_accuracy']:.1%}", ">= 90%")
    line("assistant accuracy, SFT people", f"{m['sft_people_accuracy']:.1%}")
    line("base model answer rate", f"{m['base_answer_rate']:.1%}", "<= 10%")
    line("assistant answer rate (format + stop)", f"{m['assistant_answer_rate']:.1%}", ">= 95%")
    line("base model stored (held-out bios)", f"{m['base_stored_accuracy']:.1%}")
    line("\"I don't know\" to fake people, before", f"{m['unknown_entity_idk_rate_before_fix']:.1%}")
    line("\"I don't know\" to fake people, after", f"{m['unknown_entity_idk_rate']:.1%}", ">= 90%")
    line("held-out accuracy before the fix", f"{m['heldout_accuracy_before_fix']:.1%}", "does not drop after it")
    line("document loss base / assistant", f"{m['base_doc_loss']:.3f}/{m['assistant_doc_loss']:.3f}")
    line("pretrain / SFT compute", f"{m['compute_ratio']:.1f}x", ">> 1")
    line("pretrain / SFT seconds", f"{m['pretrain_seconds']:.0f}/{m['sft_seconds']:.0f}")
    line("whole course", f"{m['total_seconds'] / 60:.1f} min", "<= 15 min (cpu preset, 2 cores)")
    if len(results) > 1:
        a = results[1]
        print(f"\nablation: {a['augment']} biography per person")
        line("assistant held-out accuracy", f"{a['heldout_accuracy']:.1%}", "<= 30%")
        line("base model stored (held-out bios)", f"{a['base_stored_accuracy']:.1%}", ">= 80%")


if __name__ == "__main__":
    main()
