"""``pedjax finetune``: the ground truth of one (model, task) pair over the lr × wd grid."""
from __future__ import annotations

from pathlib import Path

from ..models import nets
from ..models.finetune import METRICS, MODES, RESULT_FILE, FinetuneConfig, finetune


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune a model on a task over the lr x wd grid (ground truth)",
        description="Fine-tune MODEL (+ linear head) on TASK over the 4x4 lr x wd grid in one vmapped program; "
        "writes OUT/result.json (best-of-grid score averaged over seeds, with provenance). "
        "Rerunning the same command resumes an interrupted sweep.",
    )
    p.add_argument("--model", required=True, help=f"architecture: {', '.join(nets.names())}")
    p.add_argument("--params", default=None, help="pretrained backbone parameters (Flax msgpack, nets.save_params); default: random init per seed")
    p.add_argument("--task", required=True, help="registered task (see `pedjax tasks`), tfds:NAME or folder:PATH")
    p.add_argument("--out", required=True, help="output folder (checkpoints, seeds/*.json, result.json)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")
    p.add_argument("--steps", type=int, default=500, help="optimizer steps per configuration (default 500)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--mode", choices=MODES, default="full", help="full fine-tune or linear probe (default full)")
    p.add_argument("--metric", choices=METRICS, default="accuracy", help="best-of-grid criterion (default accuracy)")
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (default 100)")
    p.add_argument("--clip-norm", type=float, default=None,
                   help="clip each step's gradient to this global L2 norm (default: no clipping; the v2 zoo's ground truth uses 1.0)")
    p.add_argument("--fashion-root", default=None, help="Fashion-MNIST IDX folder (default $PEDJAX_FASHION_MNIST or the Debian path)")
    p.add_argument("--data-dir", default=None, help="TFDS data_dir for tfds:NAME tasks")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_finetune)


def _cmd_finetune(args) -> int:
    module = nets.create(args.model)
    params = nets.load_params(args.params) if args.params else None
    config = FinetuneConfig(
        steps=args.steps, batch_size=args.batch_size, seeds=tuple(args.seeds), mode=args.mode,
        metric=args.metric, checkpoint_every=args.checkpoint_every, clip_norm=args.clip_norm,
    )
    res = finetune(
        module, args.task, args.out, params=params, config=config, model_name=args.model,
        params_file=args.params, progress=not args.no_progress, fashion_root=args.fashion_root, data_dir=args.data_dir,
    )
    best = res["best_of_mean_grid"]
    print(
        f"{res['model']} on {res['task']}: {res['metric']} {res['score']:.4f} ± {res['score_std']:.4f} "
        f"(best of {len(config.grid)} configs, {len(config.seeds)} seed(s); best mean config lr={best['lr']:g} wd={best['wd']:g})"
    )
    print(f"wrote {Path(args.out) / RESULT_FILE}")
    return 0
