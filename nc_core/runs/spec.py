"""What a stored run was asked to do, as one typed, validated value per job kind.

A run's settings travel from a page or the CLI to the store (JSON in its row), to the worker and
to every view that shows the run. Read as a dict by string key, one new setting touched a dozen
files; here it is one field. ``ScanSpec`` holds a scan's or a reverse run's settings (the
optimiser's ``CleanseConfig`` and the ``DetectionRule`` nested), ``RepairSpec`` a repair's. Both
write the very JSON the store has always held, so older runs and bundles read unchanged.

    >>> spec = ScanSpec(config=CleanseConfig(epochs=5), classes=(3,), model_file="model.keras")
    >>> ScanSpec.from_settings(spec.to_settings()) == spec
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from nc_core.detection.detect import DetectionRule
from nc_core.optimise.config import CleanseConfig
from nc_core.repair.config import RepairConfig


@dataclass(frozen=True)
class ScanSpec:
    """A scan or reverse run: how to optimise (``config``), how to judge (``rule``), which classes
    (all when ``None``), and the files and facts the run was started with.

    ``audit``, ``label`` and ``targets`` are set for a scan an audit started: its audit's id, and
    what the manifest says of the model. ``ray``, where set, runs the classes as Ray tasks there
    (``local:N`` or a cluster's address, :class:`~nc_core.optimise.cluster.RayCluster`).
    """

    config: CleanseConfig = field(default_factory=CleanseConfig)
    rule: DetectionRule = field(default_factory=DetectionRule)
    classes: tuple[int, ...] | None = None
    max_samples: int | None = None
    pixel_range: str | None = None
    class_names: tuple[str, ...] = ()
    clean_accuracy: float | None = None
    model_file: str = ""
    data_file: str = ""
    audit: str | None = None
    label: str | None = None
    targets: tuple[int, ...] = ()
    ray: str | None = None

    def replace(self, **changes) -> ScanSpec:
        return replace(self, **changes)

    def to_settings(self) -> dict:
        """The run's settings as the store keeps them (the rule's fields at the top level)."""
        settings = {
            "config": self.config.to_dict(),
            "classes": None if self.classes is None else list(self.classes),
            "pixel_range": self.pixel_range,
            "max_samples": self.max_samples,
            **self.rule.to_dict(),
            "class_names": list(self.class_names),
            "clean_accuracy": self.clean_accuracy,
            "model_file": self.model_file,
            "data_file": self.data_file,
        }
        if self.audit is not None:
            settings.update(audit=self.audit, label=self.label, targets=list(self.targets))
        if self.ray is not None:
            settings["ray"] = self.ray
        return settings

    @classmethod
    def from_settings(cls, settings: dict) -> ScanSpec:
        """A stored run's spec; settings a run made before a field existed take its default."""
        config = settings.get("config") or {}
        known = {f.name for f in fields(CleanseConfig)}
        classes = settings.get("classes")
        accuracy = settings.get("clean_accuracy")
        return cls(
            config=CleanseConfig(**{k: v for k, v in config.items() if k in known}),
            rule=DetectionRule.from_settings(settings),
            classes=None if classes is None else tuple(int(c) for c in classes),
            max_samples=settings.get("max_samples"),
            pixel_range=settings.get("pixel_range") or None,
            class_names=tuple(str(n) for n in settings.get("class_names") or ()),
            clean_accuracy=None if accuracy is None else float(accuracy),
            model_file=str(settings.get("model_file") or ""),
            data_file=str(settings.get("data_file") or ""),
            audit=settings.get("audit"),
            label=settings.get("label"),
            targets=tuple(int(t) for t in settings.get("targets") or ()),
            ray=str(settings["ray"]) if settings.get("ray") else None,
        )


@dataclass(frozen=True)
class RepairSpec:
    """A repair run: the scan it repairs (``scan``: that run's spec, whose model, data, classes and
    rule the re-scan reuses), its id, the repair's settings, and the real trigger's model card."""

    scan: ScanSpec
    source_run: str
    repair: RepairConfig = field(default_factory=RepairConfig)
    force: bool = False
    trigger_card: dict | None = None

    def to_settings(self) -> dict:
        return {
            **self.scan.to_settings(),
            "source_run": self.source_run,
            "repair": self.repair.to_dict(),
            "force": self.force,
            "trigger_card": self.trigger_card,
        }

    @classmethod
    def from_settings(cls, settings: dict) -> RepairSpec:
        known = {f.name for f in fields(RepairConfig)}
        return cls(
            scan=ScanSpec.from_settings(settings),
            source_run=str(settings.get("source_run") or ""),
            repair=RepairConfig(**{k: v for k, v in (settings.get("repair") or {}).items() if k in known}),
            force=bool(settings.get("force")),
            trigger_card=settings.get("trigger_card"),
        )


def spec_for(kind: str, settings: dict) -> ScanSpec | RepairSpec:
    """The typed spec of a stored run of ``kind`` (``scan``, ``reverse`` or ``repair``)."""
    return RepairSpec.from_settings(settings) if kind == "repair" else ScanSpec.from_settings(settings)
