"""``pedjax zoo build|list`` and ``pedjax pretrain``: the model zoo and its ground truth."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from ..zoo import (
    ARCHITECTURES,
    DEFAULT_WORK,
    DEFAULT_ZOO,
    TINY_CONFIG,
    TINY_MEMBERS,
    TINY_V2_CONFIG,
    TINY_V2_MEMBERS,
    TINY_V2_WORK,
    TINY_WORK,
    TRUTH_FILE,
    V1_CONFIG,
    V1_MEMBERS,
    V1_WORK,
    V3_CONFIG,
    V3_MEMBERS,
    BuildConfig,
    MemberSpec,
    add_member,
    create_module,
    read_manifest,
)
from ..zoo.spec import PARAM_FORMATS
from . import printing


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("zoo", help="build or list the self-supervised model zoo",
                              description="The model zoo pretrained on the Fashion-MNIST source split (docs/zoo.md).")
    sub = p.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND")
    sub.required = True

    b = sub.add_parser("build", help="pretrain the zoo and fine-tune its ground truth (resumable: rerun to continue)",
                       description="Pretrain every member the zoo lacks, then fine-tune every (member, task) pair the "
                       "ground-truth table lacks. Each member and each pair is saved as soon as it is done; rerunning "
                       "the same command continues where it stopped.")
    b.add_argument("--zoo", default=None, help="zoo folder (default: the shipped pedjax/assets/zoo; WORK/zoo with --tiny or --v1)")
    b.add_argument("--work", default=None, help=f"checkpoints and fine-tuning runs (default {DEFAULT_WORK}; {TINY_V2_WORK} with --tiny; "
                   f"{V1_WORK} / {TINY_WORK} with --v1)")
    b.add_argument("--members", nargs="+", default=None, help="build only these members of the spec")
    b.add_argument("--tiny", action="store_true", help="the CI chain's configuration: tiny members, a few steps, 2 tasks")
    b.add_argument("--v1", action="store_true",
                   help=f"the first zoo's spec ({len(V1_MEMBERS)} members, {len(V1_CONFIG.tasks)} tasks, {len(V1_CONFIG.ft_seeds)} seeds, "
                   "4 x 4 grid, whole-pair ground truth), which shipped before benchmark v2; with --tiny: its 2-member chain")
    b.add_argument("--v3", action="store_true",
                   help="benchmark v3 (the default: the shipped ground truth is v3's): the shipped zoo's members and protocol "
                   "on the v2 tasks plus the glyph and emoji domains; builds the missing units (resumable: rerun, or shard it)")
    b.add_argument("--max-units", type=int, default=None,
                   help="stop after fine-tuning this many ground-truth units (a session's share); rerun to continue")
    b.add_argument("--shard", default=None, metavar="I/N",
                   help="be worker I of N building one zoo over a shared folder (e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT): "
                   "members are claimed run by run, ground-truth units split by a stable hash modulo N, each claimed atomically; "
                   "a dead worker's claims are taken over by the next run (docs/zoo.md, \"A build that scales out\")")
    b.add_argument("--claim-timeout", type=float, default=None, metavar="SECONDS",
                   help="with --shard: a claim from another host whose heartbeat (every 30 s) is older than this is stale "
                   "(default 900); a claim from this host is stale as soon as its pid is gone")
    b.add_argument("--steps", type=int, default=None, help="pretraining steps per member")
    b.add_argument("--batch-size", type=int, default=None, help="pretraining batch size")
    b.add_argument("--tasks", nargs="+", default=None, help="ground-truth tasks")
    b.add_argument("--ft-steps", type=int, default=None, help="fine-tuning steps per configuration")
    b.add_argument("--seeds", type=int, nargs="+", default=None, help="fine-tuning seeds")
    b.add_argument("--format", choices=PARAM_FORMATS, default=None, help="parameter storage (default orbax)")
    b.add_argument("--no-truth", action="store_true", help="pretrain only")
    b.add_argument("--truth-only", action="store_true", help="ground truth only (the members must exist)")
    b.add_argument("--fashion-root", default=None)
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=_cmd_build)

    ls = sub.add_parser("list", help="list the members of a zoo")
    ls.add_argument("--zoo", default=None, help="zoo folder (default: the shipped zoo)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_cmd_list)

    pp = subparsers.add_parser("pretrain", help="pretrain one backbone on the Fashion-MNIST source split",
                               description="Pretrain ARCH with METHOD on the source split (resumable: rerun to continue); "
                               "report the linear probe; optionally add the result to a zoo.")
    pp.add_argument("--arch", required=True, help=f"architecture: {', '.join(sorted(ARCHITECTURES))}")
    pp.add_argument("--arch-kwargs", default="{}", help='JSON keyword arguments, e.g. \'{"channels": [8, 16]}\'')
    pp.add_argument("--method", required=True, help="pretraining method: simclr byol barlow vicreg rotation dae supervised random")
    pp.add_argument("--out", required=True, help="run folder (checkpoints, final.msgpack, pretrain.json)")
    pp.add_argument("--steps", type=int, default=2000)
    pp.add_argument("--batch-size", type=int, default=128)
    pp.add_argument("--lr", type=float, default=1e-3)
    pp.add_argument("--seed", type=int, default=0)
    pp.add_argument("--checkpoint-every", type=int, default=200)
    pp.add_argument("--source-n", type=int, default=45000, help="pretrain on the first N source images")
    pp.add_argument("--add-to", default=None, metavar="ZOO", help="also add the result to this zoo folder")
    pp.add_argument("--name", default=None, help="member name (default ARCH-METHOD)")
    pp.add_argument("--fashion-root", default=None)
    pp.add_argument("--no-progress", action="store_true")
    pp.set_defaults(func=_cmd_pretrain)


def config_from_args(args) -> tuple[tuple[MemberSpec, ...], BuildConfig]:
    if getattr(args, "v3", False) and (args.tiny or args.v1):
        raise ValueError("--v3: builds into the shipped zoo; not with --tiny or --v1")
    if getattr(args, "v1", False):
        members = TINY_MEMBERS if args.tiny else V1_MEMBERS
        config = TINY_CONFIG if args.tiny else V1_CONFIG
    elif args.tiny:
        members, config = TINY_V2_MEMBERS, TINY_V2_CONFIG
    else:  # the shipped zoo's spec: v2's members and protocol on the v3 tasks (a v2-only aggregate would drop them)
        members, config = V3_MEMBERS, V3_CONFIG
    if args.members:
        known = {m.name: m for m in members}
        bad = [n for n in args.members if n not in known]
        if bad:
            raise ValueError(f"--members: unknown member(s) {bad}; the spec has {list(known)}")
        members = tuple(known[n] for n in args.members)
    over = {}
    for arg, fld in (("steps", "steps"), ("batch_size", "batch_size"), ("ft_steps", "ft_steps"), ("format", "params_format")):
        v = getattr(args, arg, None)
        if v is not None:
            over[fld] = v
    if args.tasks:
        over["tasks"] = tuple(args.tasks)
    if args.seeds:
        over["ft_seeds"] = tuple(args.seeds)
    return members, dataclasses.replace(config, **over) if over else config


def _cmd_build(args) -> int:
    if args.no_truth and args.truth_only:
        raise ValueError("--no-truth, --truth-only: choose at most one")
    members, config = config_from_args(args)
    if args.max_units is not None and (args.v1 or args.max_units < 1):
        raise ValueError("--max-units: a positive number of units (the --v1 ground truth is built pair by pair, not in units)")
    default_work = (TINY_WORK if args.tiny else V1_WORK) if args.v1 else (TINY_V2_WORK if args.tiny else DEFAULT_WORK)
    work = Path(args.work) if args.work else default_work
    # only the shipped spec goes into the shipped assets unless asked to
    zoo_dir = Path(args.zoo) if args.zoo else (work / "zoo" if args.tiny or args.v1 else DEFAULT_ZOO)
    progress = not args.no_progress
    from ..zoo.build import DEFAULT_CLAIM_TIMEOUT, Shard, build

    shard = None
    if args.shard is not None:
        if args.v1:
            raise ValueError("--shard: the --v1 ground truth is built pair by pair, not in units; shard the v2/v3 specs")
        shard = Shard.parse(args.shard, args.claim_timeout if args.claim_timeout is not None else DEFAULT_CLAIM_TIMEOUT)
    elif args.claim_timeout is not None:
        raise ValueError("--claim-timeout: only with --shard")
    out = build(zoo_dir, work, members, config, truth=not args.no_truth, pretrain=not args.truth_only,
                progress=progress, fashion_root=args.fashion_root, max_units=args.max_units, shard=shard)
    rep = out.get("members")
    if rep is not None:
        print(f"zoo {zoo_dir}: built {len(rep['built'])}, already there {len(rep['skipped'])}")
        if rep["below_bar"]:
            print(f"pedjax zoo build: error: member(s) below the linear-probe sanity bar {config.sanity_bar}: {rep['below_bar']}",
                  file=sys.stderr)
            return 1
    if "truth" in out:
        print(f"ground truth: {zoo_dir / TRUTH_FILE}")
    return 0


def _cmd_list(args) -> int:
    root = Path(args.zoo) if args.zoo else DEFAULT_ZOO
    manifest = read_manifest(root)
    truth_path = root / TRUTH_FILE
    truth = json.loads(truth_path.read_text()) if truth_path.is_file() else None
    if args.json:
        printing.print_json({"zoo": str(root), "members": manifest["members"], "truth": truth and truth["datasets"]})
        return 0
    printing.zoo_table(root, manifest, truth)
    if truth and truth.get("per_seed"):
        from ..rank import judging

        rows = []
        for task, per in truth["per_seed"].items():
            done = {m: v for m, v in per.items() if v and all(x is not None for x in v)}
            ceiling = judging.noise_ceiling(done)["ceiling"] if len(done) > 1 else None
            rows.append({"task": task, "done": len(done), "members": len(per), "seeds": len(truth.get("seeds", [])), "ceiling": ceiling})
        printing.truth_table(rows, judging.MIN_CEILING)
    if truth:
        printing.text(f"ground truth ({truth['score_definition']}): {truth_path}")
    b = manifest.get("build")
    if b:
        state = {True: "complete", False: f"{b.get('truth_units_done')}/{b.get('truth_units_total')} ground-truth units", None: "built"}[b.get("complete")]
        printing.text(f"build: {state}; {b['total_hours']:.2f} h of wall time (pretraining {b['pretrain_seconds'] / 60:.0f} min, "
                      f"ground truth {b['truth_seconds'] / 60:.0f} min)")
        printing.text(f"built on {b['machine']}")
    return 0


def _cmd_pretrain(args) -> int:
    try:
        arch_kwargs = json.loads(args.arch_kwargs)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--arch-kwargs: not valid JSON ({exc.msg})") from None
    if not isinstance(arch_kwargs, dict):
        raise ValueError("--arch-kwargs: a JSON object, e.g. '{\"channels\": [8, 16]}'")
    name = args.name or f"{args.arch}-{args.method}"
    spec = MemberSpec(name, args.arch, args.method, arch_kwargs, seed=args.seed)
    config = BuildConfig(source_n=args.source_n, heldout=min(5000, 50000 - args.source_n), probe_train=min(5000, args.source_n),
                         checkpoint_every=args.checkpoint_every, steps=args.steps, batch_size=args.batch_size, lr=args.lr)
    from ..zoo.build import SourceData, member_fingerprint, pretrain_member

    create_module(args.arch, arch_kwargs)  # validate before loading data
    source = SourceData.load(config, args.fashion_root)
    out = pretrain_member(spec, config, args.out, source, progress=not args.no_progress)
    r = source.ranges
    flag = "ok" if out["passed"] else f"below the sanity bar {config.sanity_bar}"
    print(f"{name}: final loss {out['record'].get('final_loss')}; linear probe {out['probe']['accuracy']:.3f} on held-out "
          f"source images train[{r['heldout'][0]}:{r['heldout'][1]}] (chance 0.1; {flag}); parameters: {Path(args.out) / 'final.msgpack'}")
    if args.add_to:
        fp = member_fingerprint(spec, config, source.sha1)
        add_member(args.add_to, spec, out["params"], source_mean=out["source_mean"], source_std=out["source_std"],
                   probe=out["probe"], record=out["record"], fingerprint=fp, params_format=config.params_format, config=config)
        print(f"added {name} to the zoo at {args.add_to}")
    return 0 if out["passed"] else 1
