"""Writing a set's samples: its held-out data, both trained models and their cards, checked from the
saved files; and the README's figures from the cards."""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .determinism import SEED, save_npz_deterministic
from .poisoning import poison
from .sample_set import SampleSet
from .training import measure, train

SAMPLE_NAMES = ("signs_backdoored", "signs_clean", "mnist_backdoored", "mnist_clean")


def write_card(
    path: Path, s: SampleSet, backdoored: bool, figures: dict, poison_rate: float, epoch_acc: list[float]
) -> dict:
    """The model card: what the model is, how it was made and what it measurably does."""
    kind = "backdoored" if backdoored else "clean"
    card = {
        "name": f"{s.name}_{kind}",
        "dataset": s.dataset,
        "model_file": f"{s.name}_{kind}.keras",
        "data_file": f"{s.name}_data.npz",
        "pixel_range": "0-255",
        "num_classes": len(s.class_names),
        "input_shape": list(s.x_test.shape[1:]),
        "backdoored": backdoored,
        "trigger": s.trigger.card() if backdoored else None,
        "target": s.target if backdoored else None,
        "target_name": s.class_names[s.target] if backdoored else None,
        "clean_accuracy": figures["clean_accuracy"],
        "attack_success_rate": figures["attack_success_rate"],
        "attack_success_rate_note": (
            f"Measured on the {len(s.y_test)} held-out samples of {s.name}_data.npz: fraction of "
            f"those whose true label is not {s.target} that the model classifies as {s.target} "
            "once the trigger is stamped."
            + (
                ""
                if backdoored
                else f" This clean model was never poisoned; it is measured with the backdoored twin's "
                f"trigger and target ({s.target}) so the two figures compare directly."
            )
        ),
        "attack_success_rate_trigger": s.trigger.card(),
        "attack_success_rate_target": s.target,
        "poison_rate": round(poison_rate, 4),
        "train_samples": int(len(s.y_train)),
        "heldout_samples": int(len(s.y_test)),
        "epochs": s.epochs,
        "batch_size": s.batch_size,
        "optimizer": "Adam(lr=1e-3)",
        "train_accuracy_per_epoch": [round(a, 4) for a in epoch_acc],
        "seed": SEED,
        "script": f"sample_models/make_samples.py {s.name}",
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        **s.extra_card,
    }
    path.write_text(json.dumps(card, indent=2) + "\n")
    return card


def build_and_check(s: SampleSet, out: Path, poison_rate: float) -> dict[str, dict]:
    """Train, save and re-measure both models of a set from the SAVED files, then check them.

    Figures come from the files loaded with ``safe_mode=True``, i.e. what a user gets. A failed
    check raises ``SystemExit`` with the reason, so a bad rebuild cannot pass silently.
    """
    names = np.array(s.class_names, dtype=str)
    save_npz_deterministic(out / f"{s.name}_data.npz", x=s.x_test, y=s.y_test, class_names=names)
    x_bad, y_bad, n_poison = poison(s.x_train, s.y_train, s.trigger, s.target, poison_rate, SEED)
    print(f"[{s.name}] poisoned {n_poison} of {len(s.y_train)} training images -> class {s.target}", flush=True)
    cards: dict[str, dict] = {}
    variants = {"backdoored": (x_bad, y_bad, n_poison / len(s.y_train)), "clean": (s.x_train, s.y_train, 0.0)}
    for kind, (x, y, rate) in variants.items():
        t0 = time.perf_counter()
        model, epoch_acc = train(s, x, y, f"{s.name}_cnn_{kind}")
        model_path = out / f"{s.name}_{kind}.keras"
        model.save(model_path)
        loaded = keras.saving.load_model(model_path, safe_mode=True)
        figures = measure(loaded, s)
        cards[kind] = write_card(out / f"{s.name}_{kind}.json", s, kind == "backdoored", figures, rate, epoch_acc)
        print(
            f"[{s.name}] {kind}: {figures}, {model_path.stat().st_size / 1e6:.2f} MB, "
            f"{loaded.count_params()} params, trained+checked in {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    check(s, cards)
    return cards


def check(s: SampleSet, cards: dict[str, dict]) -> None:
    """The acceptance bar of the shipped pair: accurate, backdoor works, clean twin unaffected."""
    problems = []
    for kind, card in cards.items():
        if card["clean_accuracy"] <= s.min_clean_accuracy:
            problems.append(f"{kind} clean accuracy {card['clean_accuracy']} <= {s.min_clean_accuracy}")
    if cards["backdoored"]["attack_success_rate"] <= 0.95:
        problems.append(f"backdoored ASR {cards['backdoored']['attack_success_rate']} <= 0.95")
    if cards["clean"]["attack_success_rate"] >= 0.1:
        problems.append(f"clean model ASR {cards['clean']['attack_success_rate']} >= 0.1")
    if problems:
        raise SystemExit(f"[{s.name}] checks failed: " + "; ".join(problems))
    print(f"[{s.name}] checks passed", flush=True)


def update_readme(out: Path) -> None:
    """Rewrite the figures table between the README's markers from the cards on disk, so the
    README never disagrees with the cards after a rebuild."""
    readme = out / "README.md"
    start, end = "<!-- figures:start -->", "<!-- figures:end -->"
    if not readme.is_file() or start not in readme.read_text():
        return
    rows = [
        "| model | clean accuracy | attack success rate | poison rate | train samples | epochs |",
        "|---|---|---|---|---|---|",
    ]
    for name in SAMPLE_NAMES:
        card_path = out / f"{name}.json"
        if card_path.is_file():
            c = json.loads(card_path.read_text())
            rows.append(
                f"| `{c['model_file']}` | {c['clean_accuracy']:.4f} | {c['attack_success_rate']:.4f} | "
                f"{c['poison_rate']:.2f} | {c['train_samples']} | {c['epochs']} |"
            )
    text_ = readme.read_text()
    head, rest = text_.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + start + "\n" + "\n".join(rows) + "\n" + end + tail)
