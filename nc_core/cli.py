"""The command line, the contract other tools call: ``python -m nc_core scan|reverse ...``.

``scan`` prints one JSON object with ``--format json`` (model, verdict, anomaly_index, flagged,
seconds, classes); ``reverse`` writes mask, pattern and fusion PNGs and a result JSON; ``repair``
writes the repaired ``.keras`` model and a JSON of its before/after figures and re-scan verdict. A finished
run exits 0 whatever the verdict; bad input exits 2 with one line on stderr; Ctrl-C during a scan
cancels it, prints and writes the classes that finished, and exits 130.

    $ python -m nc_core scan sample_models/signs_backdoored.keras sample_models/signs_data.npz --format json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from nc_core.detection.detect import DetectionRule
from nc_core.detection.probe import PROBE_MIN_CLASSES
from nc_core.errors import InvalidParameterError, NCError
from nc_core.optimise.config import CleanseConfig
from nc_core.reports.columns import text_table

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_CANCELLED = 0, 1, 2, 130


def _class_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"classes must be comma-separated integers, not {text!r}") from None


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option is one ``error:`` line and exit 2 like every other bad input."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    launched = Path(sys.argv[0]).name
    prog = "python -m nc_core" if launched in ("__main__.py", "-c", "") else launched
    parser = _OneLineParser(prog=prog, description="Find backdoors in Keras image classifiers (Neural Cleanse).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("model", help="a .keras or .h5 image classifier (loaded in safe mode)")
        sub.add_argument("data", help="clean samples: .npz (x, y, class_names), a .zip or folder of class folders")
        sub.add_argument("--epochs", type=int, help="most epochs per class (product default 60)")
        sub.add_argument("--batch-size", type=int, help="mini-batch size (default 32)")
        sub.add_argument("--learning-rate", type=float, help="Adam learning rate (default 0.1)")
        sub.add_argument("--method", choices=["neural-cleanse", "plain"], default="neural-cleanse")
        sub.add_argument("--engine", choices=["keras", "legacy"], default="keras")
        sub.add_argument("--pixel-range", help="0-1, 0-255, -1-1 or meanstd:M/S (default: guessed)")
        sub.add_argument("--max-samples", type=int, help="use at most this many clean samples")
        sub.add_argument("--seed", type=int, help="seed of the random start (default 0)")
        sub.add_argument("--original", action="store_true", help="the paper's defaults (1000 epochs, patience 5/25)")
        sub.add_argument("--quiet", action="store_true", help="no progress on stderr")

    scan = commands.add_parser("scan", help="reverse-engineer every class and flag outliers")
    common(scan)
    scan.add_argument("--classes", type=_class_list, help="comma-separated class ids (default: all)")
    scan.add_argument("--out", type=Path, help="folder for report.json and per-class PNGs")
    scan.add_argument("--format", choices=["json", "text"], default="text")
    scan.add_argument("--report", type=Path, help="also write a self-contained HTML report to this file")
    scan.add_argument(
        "--screen-epochs",
        type=int,
        help="epochs of the first pass every class gets; only classes that could change the verdict "
        f"then get the full schedule (product default {CleanseConfig().screen_epochs}; "
        "0: the full schedule for every class)",
    )
    scan.add_argument(
        "--probe-epochs",
        type=int,
        help=f"with {PROBE_MIN_CLASSES} classes or more, every class first gets this many epochs and only a "
        "random sample plus the targets most easily reached are screened "
        f"(product default {CleanseConfig().probe_epochs}; 0: screen every class)",
    )
    scan.add_argument(
        "--threads",
        type=int,
        help="optimise this many classes side by side on CPU threads (default 0: one per core, "
        "at most 4; the results do not change)",
    )
    scan.add_argument(
        "--classes-per-step",
        type=int,
        help="optimise this many classes in one batched step (default 1; for GPUs, see README)",
    )
    scan.add_argument(
        "--ray",
        metavar="WHERE",
        help="run the classes as Ray tasks, one CPU and one TensorFlow thread each, with the same results: "
        "'local' (a Ray cluster on this machine, on 127.0.0.1 only, one worker per core), 'local:N' (N "
        "workers), or a running cluster's address as audit's --ray-address takes it ('auto', HOST:6379, "
        "ray://HOST:10001; see the README's 'One model over a Ray cluster'); not with --classes-per-step "
        "or --engine legacy",
    )
    _margin_arguments(scan)
    _rule_arguments(scan)

    reverse = commands.add_parser("reverse", help="reverse-engineer one target class")
    common(reverse)
    reverse.add_argument("--target", type=int, required=True, help="target class id")
    reverse.add_argument("--out", type=Path, required=True, help="folder for the PNGs and result.json")
    _repair_parser(commands)
    audit = commands.add_parser("audit", help="scan every model of a manifest, on local cores or a Ray cluster")
    audit.add_argument(
        "manifest", help="CSV or JSON lines of model,data[,label][,targets], or a folder of models with one data file"
    )
    audit.add_argument(
        "--root",
        type=Path,
        help="the folder every path in the manifest must stay inside (default: the manifest's own folder)",
    )
    audit.add_argument("--remove-upload", type=Path, help=argparse.SUPPRESS)  # the dashboard's: its upload, once copied
    audit.add_argument(
        "--ray-address",
        help="join a Ray cluster ('auto' or ray://host:port; see the README for "
        "what a cluster needs); default: a local one on 127.0.0.1",
    )
    audit.add_argument("--workers", type=int, help="local Ray workers (default: one per core)")
    audit.add_argument("--epochs", type=int, help="most epochs per class (product default 60)")
    audit.add_argument("--screen-epochs", type=int, help="epochs of the screen every class gets (default 10)")
    audit.add_argument("--max-samples", type=int, help="use at most this many clean samples per model")
    audit.add_argument("--seed", type=int, help="seed of the random starts (default 0)")
    audit.add_argument("--format", choices=["json", "text"], default="text")
    audit.add_argument("--quiet", action="store_true", help="no progress on stderr")
    _margin_arguments(audit)
    _rule_arguments(audit)
    return parser


def _margin_arguments(parser: argparse.ArgumentParser) -> None:
    """The max-margin detector's options (nc_core.detection.margin), shared by scan and audit."""
    config = CleanseConfig()
    parser.add_argument(
        "--margin-steps",
        type=int,
        help=f"Adam steps of the max-margin test, run beside Neural Cleanse (default "
        f"{config.margin_steps}; 0: Neural Cleanse alone)",
    )
    parser.add_argument(
        "--margin-starts",
        type=int,
        help=f"random starts per class of the max-margin test (default {config.margin_starts})",
    )


def _rule_arguments(parser: argparse.ArgumentParser) -> None:
    """The detection rule's options (nc_core.detection.detect), shared by scan and audit."""
    rule = DetectionRule()
    parser.add_argument(
        "--threshold",
        type=float,
        default=rule.threshold,
        help="log-L1 index above which a class stands out (default %(default)g, the paper's; "
        "down to threshold/sqrt(2) for masks far below --max-l1-ratio)",
    )
    parser.add_argument(
        "--max-l1-ratio",
        type=float,
        default=rule.max_ratio,
        help="flag only masks at most this share of the median L1 (default %(default)g)",
    )
    parser.add_argument(
        "--min-compactness",
        type=float,
        default=rule.min_compactness,
        help="a mask with at least this share of its L1 in its two best small windows looks "
        "injected (default %(default)g)",
    )
    parser.add_argument(
        "--extreme-ratio",
        type=float,
        default=rule.extreme_ratio,
        help="masks at most this share of the median are flagged whatever their shape (default %(default)g)",
    )
    parser.add_argument(
        "--max-boundary",
        type=float,
        default=rule.max_boundary,
        help="a compact mask's edge is at most this many times a solid square's of the same L1 (default %(default)g)",
    )
    parser.add_argument(
        "--margin-p",
        type=float,
        default=rule.margin_p,
        help="the max-margin test flags a class whose p-value is below this (default %(default)g, MM-BD's)",
    )


def _rule(args: argparse.Namespace) -> DetectionRule:
    """The rule the options name, or a one-line error for values it cannot use."""
    if (
        args.threshold <= 0
        or args.max_boundary <= 0
        or not all(0 < v <= 1 for v in (args.max_l1_ratio, args.min_compactness, args.extreme_ratio))
    ):
        raise InvalidParameterError(
            "--threshold and --max-boundary must be above 0, and --max-l1-ratio, "
            "--min-compactness and --extreme-ratio in (0, 1]."
        )
    if not 0 < args.margin_p < 1:
        raise InvalidParameterError(f"--margin-p must be between 0 and 1, not {args.margin_p:g}.")
    return DetectionRule(
        args.threshold, args.max_l1_ratio, args.min_compactness, args.extreme_ratio, args.max_boundary, args.margin_p
    )


def _repair_parser(commands) -> None:
    from nc_core.repair.config import REPAIR_METHODS, RepairConfig

    default = RepairConfig()
    repair = commands.add_parser("repair", help="remove the backdoor a scan found (unlearning or pruning)")
    repair.add_argument("model", help="the scanned .keras or .h5 model (loaded in safe mode)")
    repair.add_argument("data", help="labelled clean samples (.npz, .zip or folder); part is held out for the figures")
    source = repair.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="id of a scan run in the dashboard's store ($NC_DATA_DIR, default ./nc_data)")
    source.add_argument("--report", type=Path, help="report.json written by scan --out")
    repair.add_argument("--out", type=Path, required=True, help="where to write the repaired model (.keras)")
    repair.add_argument("--json", type=Path, help="where to write the figures (default: next to --out, .json)")
    repair.add_argument("--method", choices=REPAIR_METHODS, default=default.method)
    repair.add_argument("--epochs", type=int, default=default.epochs, help="fine-tune epochs per round")
    repair.add_argument("--learning-rate", type=float, default=default.learning_rate)
    repair.add_argument(
        "--stamp-share",
        type=float,
        default=default.stamp_share,
        help="share of the images stamped with a reversed trigger (paper: 0.2)",
    )
    repair.add_argument("--rounds", type=int, default=default.max_rounds, help="most unlearn-and-reverse rounds")
    repair.add_argument(
        "--holdout",
        type=float,
        default=default.holdout_share,
        help="share of each class held out for the before/after figures",
    )
    repair.add_argument("--seed", type=int, default=default.seed)
    repair.add_argument(
        "--max-accuracy-drop",
        type=float,
        default=default.max_accuracy_drop,
        help="clean accuracy the repair may cost on held-out samples; past it the command exits 1",
    )
    repair.add_argument("--force", action="store_true", help="repair even though the scan's verdict is not backdoored")
    repair.add_argument(
        "--trigger-card", type=Path, help="a model card (JSON) describing the real trigger, to measure it"
    )
    repair.add_argument("--trigger-mask", type=Path, help="the real trigger's mask as an image (white = trigger)")
    repair.add_argument("--trigger-pattern", type=Path, help="the real trigger's pattern as an image")
    repair.add_argument("--trigger-target", type=int, help="the class the real trigger sends inputs to")
    repair.add_argument("--no-rescan", action="store_true", help="skip the scan of the repaired model")
    repair.add_argument("--max-samples", type=int, help="use at most this many clean samples")
    repair.add_argument("--format", choices=["json", "text"], default="text")
    repair.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _config(args: argparse.Namespace):
    base = CleanseConfig.original() if args.original else CleanseConfig()
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "method": args.method,
        "engine": args.engine,
        "screen_epochs": getattr(args, "screen_epochs", None),
        "probe_epochs": getattr(args, "probe_epochs", None),
        "classes_per_step": getattr(args, "classes_per_step", None),
        "threads": getattr(args, "threads", None),
        "margin_steps": getattr(args, "margin_steps", None),
        "margin_starts": getattr(args, "margin_starts", None),
    }
    return base.replace(**{k: v for k, v in overrides.items() if v is not None})


def _progress_printer(quiet: bool):
    if quiet:
        return None
    live = sys.stderr.isatty()

    def show(event) -> None:
        if event.kind == "epoch" and live:
            m = event.metrics
            print(
                f"\rclass {event.target} ({event.class_index + 1}/{event.num_classes})  epoch {event.epoch:4d}  "
                f"ASR {m['asr']:.3f}  L1 {m['l1']:8.2f}  lambda {m['lam']:.2e}  [{event.fraction:5.1%}]",
                end="",
                file=sys.stderr,
                flush=True,
            )
        elif event.kind == "class_done":
            line = (
                f"class {event.target} ({event.class_index + 1}/{event.num_classes}) done: "
                f"L1 {event.metrics['l1']:.2f}  ASR {event.metrics['asr']:.3f}  [{event.fraction:5.1%}]"
            )
            # On a terminal the line overwrites the live epoch line; piped, it is a plain log line.
            print(f"\r{line}{' ' * 30}" if live else line, file=sys.stderr, flush=True)

    return show


def _write_scan_outputs(report, out: Path) -> None:
    from nc_core.reports.images import save_trigger_images

    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(report.to_json())
    (out / "summary.json").write_text(json.dumps(report.summary(), indent=2))
    for result in report.results:
        save_trigger_images(result.mask, result.pattern, out / "classes", prefix=f"{result.target:03d}_")


def _text_summary(report) -> str:
    lines = [
        f"model: {report.model}   data: {report.data}   pixel range: {report.pixel_range}",
        report.headline,
        f"verdict: {report.verdict.upper()}   score: {report.score:.2f}   anomaly index: {report.anomaly_index:.2f}   "
        f"flagged: {report.flagged or 'none'}   median L1: {report.median:.2f}   MAD: {report.mad:.2f}",
        f"why: {report.verdict_reason}",
    ]
    lines += text_table(report)
    if report.screened:
        lines.append(
            f"note: {len(report.screened)} class(es) were only screened ({report.config.get('screen_epochs')} "
            f"epochs), too far from the flag line to change the verdict; they are judged by their L1 times "
            f"{report.budget_scale:.2f}, the shrink measured on classes run in full"
        )
    if report.probed:
        lines.append(
            f"note: {len(report.probed)} of {len(report.rows)} class(es) were only probed "
            f"({report.config.get('probe_epochs')} epochs): neither in the random sample the median is measured "
            "on nor among the targets most easily reached, so not judged"
        )
    if report.standing_out:
        lines.append(
            f"note: class(es) {report.standing_out} stand out (log index > {report.threshold:g}) but are not "
            f"far smaller (<= {report.max_ratio:g} of the median) with a compact mask (in two windows, with a short edge): naturally easy "  # noqa: E501
            "targets, not flagged"
        )
    lines.append(
        f"{len(report.rows)} classes, {report.steps} optimisation steps, in {report.seconds:.1f} s"
        + (f" on {report.ran_on}" if report.ran_on else "")
        + ("  (cancelled)" if report.cancelled else "")
    )
    return "\n".join(lines)


def run_scan(args: argparse.Namespace) -> int:
    from nc_core.loading.inputs import load_inputs
    from nc_core.optimise.cluster import RayCluster

    rule = _rule(args)
    ray = RayCluster.parse(args.ray) if args.ray else None
    from nc_core.detection.scan import scan
    from nc_core.optimise.progress import CancelToken

    inputs = load_inputs(args.model, args.data, args.pixel_range, args.max_samples)
    token = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: token.cancel())
    try:
        triggered = {}
        report = scan(
            inputs.classifier,
            inputs.data,
            args.classes,
            _config(args),
            on_event=_progress_printer(args.quiet),
            cancel=token,
            model_name=inputs.model_name,
            rule=rule,
            on_samples=(lambda samples: triggered.update({samples.target: samples})) if args.report else None,
            ray=ray,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    if args.out:
        _write_scan_outputs(report, args.out)
    if args.report:
        from nc_core.reports.html_report import write_html_report

        write_html_report(report, args.report, triggered, inputs.data.class_names)
    print(json.dumps(report.summary()) if args.format == "json" else _text_summary(report))
    return EXIT_CANCELLED if report.cancelled else EXIT_OK


def run_reverse(args: argparse.Namespace) -> int:
    from nc_core.detection.report import result_to_dict
    from nc_core.loading.inputs import load_inputs
    from nc_core.optimise.runner import reverse_engineer
    from nc_core.reports.images import save_trigger_images

    inputs = load_inputs(args.model, args.data, args.pixel_range, args.max_samples)
    result = reverse_engineer(
        inputs.classifier, inputs.data, args.target, _config(args), on_event=_progress_printer(args.quiet)
    )
    args.out.mkdir(parents=True, exist_ok=True)
    save_trigger_images(result.mask, result.pattern, args.out)
    payload = {
        "model": inputs.model_name,
        "data": inputs.data.source,
        "pixel_range": inputs.data.pixel_range.label,
        **result_to_dict(result),
    }
    (args.out / "result.json").write_text(json.dumps(payload))
    print(
        f"class {result.target}: L1 {result.l1:.2f}, ASR {result.asr:.3f}, "
        f"{'reached' if result.reached_threshold else 'did NOT reach'} the ASR threshold; "
        f"{result.epochs} epochs in {result.seconds:.1f} s -> {args.out}"
    )
    return EXIT_OK


def _repair_report(args: argparse.Namespace):
    from nc_core.detection.report import ScanReport
    from nc_core.runs.store import RunStore, default_data_dir

    if args.run:
        store = RunStore(default_data_dir())
        record = store.get(args.run)
        report = store.load_report(args.run) if record.kind == "scan" and record.status == "done" else None
        if report is None:
            raise InvalidParameterError(f"Run {args.run!r} is not a finished scan ({record.kind}, {record.status}).")
        return report
    from nc_core.schema import check_document

    try:
        payload = json.loads(Path(args.report).read_text())
        check_document(payload, ScanReport, str(args.report))
        return ScanReport.from_dict(payload)
    except OSError as error:
        raise InvalidParameterError(
            f"Cannot read the report {str(args.report)!r}: {error.strerror or error}."
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InvalidParameterError(f"{str(args.report)!r} is not a scan report (write one with scan --out).") from None


def _known_trigger(args: argparse.Namespace, input_shape: tuple[int, int, int]):
    from nc_core.repair import trigger_from_card, trigger_from_images

    if args.trigger_card:
        try:
            card = json.loads(Path(args.trigger_card).read_text())
        except (OSError, ValueError):
            raise InvalidParameterError(f"{str(args.trigger_card)!r} is not a readable JSON model card.") from None
        return trigger_from_card(card, input_shape)
    images = (args.trigger_mask, args.trigger_pattern, args.trigger_target)
    if any(v is not None for v in images):
        if any(v is None for v in images):
            raise InvalidParameterError(
                "A real trigger needs --trigger-mask, --trigger-pattern and --trigger-target together."
            )
        return trigger_from_images(args.trigger_mask, args.trigger_pattern, args.trigger_target, input_shape)
    return None


def _repair_text(result) -> str:
    def cell(value):
        return "   -  " if value is None else f"{value:6.3f}"

    lines = [f"{'':52} {'before':>6} {'after':>6}"]
    lines += [f"{row['figure'][:52]:52} {cell(row['before'])} {cell(row['after'])}" for row in result.table()]
    removed = [r for r in result.rounds if r.removed]
    lines.append(
        f"removed {len(removed)} trigger(s) of class(es) {result.targets} in "
        f"{len({r.round for r in removed})} round(s), {result.method}, {result.seconds:.1f} s; "
        f"{result.samples_tuned} samples tuned, {result.samples_held_out} held out"
    )
    if not removed:
        lines.append(f"nothing stood out (every mask at least {result.bound:.1f} px): the model was left as it was")
    if result.rescan:
        lines.append(
            f"re-scan: {result.rescan.verdict.upper()}  flagged: {result.rescan.flagged or 'none'}  "
            f"score {result.rescan.score:.2f}"
        )
    return "\n".join(lines)


def run_repair(args: argparse.Namespace) -> int:
    from nc_core.loading.inputs import load_inputs
    from nc_core.loading.models import load_model
    from nc_core.optimise.progress import CancelToken
    from nc_core.repair import RepairConfig, repair, rescan

    if args.out.suffix.lower() != ".keras":
        raise InvalidParameterError(f"--out must name a .keras file, not {str(args.out)!r}.")
    report = _repair_report(args)
    config = RepairConfig(
        method=args.method,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        stamp_share=args.stamp_share,
        max_rounds=args.rounds,
        holdout_share=args.holdout,
        seed=args.seed,
        max_accuracy_drop=args.max_accuracy_drop,
    )
    inputs = load_inputs(args.model, args.data, report.pixel_range or None, args.max_samples)
    known = _known_trigger(args, inputs.info.input_shape)
    show = None if args.quiet else (lambda f, m: print(f"repair [{f:5.1%}] {m}", file=sys.stderr, flush=True))
    token = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: token.cancel())
    try:
        result = repair(
            load_model(args.model),
            inputs.data,
            report,
            config,
            known,
            args.force,
            inputs.info.outputs_probabilities,
            on_progress=show,
            cancel=token,
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result.model.save(args.out)
        if not args.no_rescan:
            rescan(
                result,
                inputs.data,
                report,
                inputs.info.outputs_probabilities,
                on_event=_progress_printer(args.quiet),
                cancel=token,
                model_name=args.out.name,
            )
    finally:
        signal.signal(signal.SIGINT, previous)
    figures = {
        "model": inputs.model_name,
        "repaired_model": str(args.out),
        **result.to_dict(),
        "accuracy_drop": result.accuracy_drop,
        "within_budget": result.within_budget,
    }
    (args.json or args.out.with_suffix(".json")).write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures) if args.format == "json" else _repair_text(result))
    if not result.within_budget:
        print(
            f"error: the repair cost {result.accuracy_drop:.1%} of clean accuracy on held-out samples, more than "
            f"its budget of {config.max_accuracy_drop:.1%} (--max-accuracy-drop); {args.out} is written for "
            "inspection, not for use.",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    return EXIT_OK


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def run_audit_command(args: argparse.Namespace) -> int:
    from nc_core.audit.manifest import read_manifest
    from nc_core.audit.runner import audit_settings, run_audit
    from nc_core.runs.store import RunStore, default_data_dir

    rule = _rule(args)
    entries = read_manifest(args.manifest, args.root)
    settings = audit_settings(
        args.epochs, args.screen_epochs, args.seed, args.max_samples, rule, args.margin_steps, args.margin_starts
    )

    def show(row, done: int, total: int) -> None:
        if not args.quiet:
            print(
                f"[{done}/{total} {done / total:4.0%}] {row.model}: {row.verdict or row.status}"
                + (f" {row.flagged}" if row.flagged else "")
                + (f" ({row.error})" if row.error else ""),
                file=sys.stderr,
                flush=True,
            )

    previous = signal.signal(signal.SIGTERM, _interrupt)  # a stop from the dashboard or a scheduler ends cleanly
    try:
        result = run_audit(
            entries,
            settings,
            RunStore(default_data_dir()),
            args.ray_address,
            args.workers,
            on_row=show,
            remove_upload=args.remove_upload,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(json.dumps(result.to_dict(), default=float) if args.format == "json" else _audit_text(result))
    return EXIT_OK


def _audit_text(result) -> str:
    lines = [
        f"audit {result.audit_id}: {len(result.rows)} models, {result.workers} worker(s), {result.seconds:.1f} s",
        f"{'model':<32} {'label':<10} {'verdict':<12} {'flagged':<10} {'score':>6} {'index':>6} {'seconds':>8}  run",
    ]
    for row in result.rows:
        lines.append(
            f"{row.model[:32]:<32} {row.label or '-':<10} {row.verdict or row.status:<12} "
            f"{','.join(map(str, row.flagged)) or '-':<10} {row.score:6.2f} {row.anomaly_index:6.2f} "
            f"{row.seconds:8.1f}  {row.run_id or row.error}"
        )
    metrics = result.metrics
    if metrics["models"]:
        lines.append(
            f"labelled: {metrics['models']}  accuracy {metrics['accuracy']:.1%}  backdoored with exactly their "
            f"targets {metrics['backdoored_exact']}/{metrics['backdoored']}  clean flagged "
            f"{metrics['false_positives']}/{metrics['clean']}  ROC-AUC {metrics['roc_auc']:.3f}"
        )
    return "\n".join(lines)


def silence_native_stderr() -> None:
    """Send what C++ libraries write to stderr (TensorFlow's start-up logs) to /dev/null.

    TensorFlow 2.21 prints CUDA and oneDNN notices at import whatever ``TF_CPP_MIN_LOG_LEVEL``
    says; callers of the CLI parse stderr, so Python's own stderr moves to a copy of the real one
    and only the C-level descriptor is silenced. ``NC_VERBOSE=1`` keeps everything.
    """
    if os.environ.get("NC_VERBOSE"):
        return
    sys.stderr.flush()
    real_stderr = os.dup(2)
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 2)
    sys.stderr = os.fdopen(real_stderr, "w", buffering=1)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    silence_native_stderr()
    from nc_core.runtime import configure_backend

    configure_backend()
    try:
        if args.command == "reverse" and args.out.exists() and not args.out.is_dir():
            raise InvalidParameterError(f"--out {args.out} exists and is not a folder.")
        commands = {"scan": run_scan, "reverse": run_reverse, "repair": run_repair, "audit": run_audit_command}
        return commands[args.command](args)
    except NCError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("\ncancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except Exception as error:  # a bug, not bad input: still one line, never a traceback
        print(f"error: unexpected failure ({type(error).__name__}: {error})", file=sys.stderr)
        return EXIT_FAILURE
