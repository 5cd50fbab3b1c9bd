"""The inspect report: PNG pictures and one self-contained index.html beside them (relative
links, no network, no server). A small script at the end of the page counts the pictures
that loaded and any script error, and shows the count in the page's footer."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from comp import pictures
from comp.inspect.stats import REGIONS, Clue, region_mask
from comp.metrics import confusion, per_class_accuracy
from comp.runs import RunDir
from comp.workspace import write_text

CHECK = """<p id="check">pictures: checking...</p>
<script>
var errors = 0;
window.addEventListener("error", function () { errors += 1; });
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  var p = document.getElementById("check");
  p.setAttribute("data-images", images.length);
  p.setAttribute("data-loaded", loaded.length);
  p.setAttribute("data-errors", errors);
  p.textContent = "pictures: " + loaded.length + " of " + images.length + " loaded";
});
</script>"""


class Page:
    def __init__(self, folder: Path, *, title: str) -> None:
        self.folder, self.title = folder, title
        self.parts: list[str] = []

    def _plt(self) -> Any:
        return pictures.pyplot()

    def _save(self, fig: Any, name: str) -> str:
        pictures.save_figure(fig, self.folder / name)
        return name

    def _section(self, title: str, body: str) -> None:
        self.parts.append(f"<h2>{html.escape(title)}</h2>\n{body}")

    @staticmethod
    def _img(name: str, alt: str) -> str:
        return f'<img src="{html.escape(name)}" alt="{html.escape(alt)}">'

    @staticmethod
    def _table(frame: pd.DataFrame) -> str:
        return frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0)

    # 1. averages ------------------------------------------------------------------------------
    def averages(self, means: np.ndarray, differences: np.ndarray, classes: list[str],
                 counts: np.ndarray) -> None:
        k = len(classes)
        fig, axes = self._plt().subplots(2, k, figsize=(2.6 * k, 5.6), squeeze=False)
        limit = float(np.abs(differences).max()) or 1.0
        for c in range(k):
            image = means[c].astype(np.uint8)
            axes[0][c].imshow(image[..., 0] if image.shape[-1] == 1 else image,
                              cmap="gray" if image.shape[-1] == 1 else None)
            axes[0][c].set_title(f"mean {classes[c]} ({int(counts[c]):,})", fontsize=9)
            shown = axes[1][c].imshow(differences[c], cmap="RdBu_r", vmin=-limit, vmax=limit)
            axes[1][c].set_title(f"{classes[c]} minus the rest", fontsize=9)
            for ax in (axes[0][c], axes[1][c]):
                ax.axis("off")
        fig.colorbar(shown, ax=axes[1][-1], shrink=0.8, label="brightness difference")
        name = self._save(fig, "averages.png")
        self._section("Average image per class", (
            "<p>The mean image of each class, and below it the class's mean brightness minus "
            "the other classes' (red: brighter in this class, blue: darker).</p>"
            + self._img(name, "average images")))

    # 3. examples --------------------------------------------------------------------------------
    def examples(self, images_of: Any, ids: np.ndarray, y: np.ndarray, decided: np.ndarray,
                 prob: np.ndarray, classes: list[str], *, top: int) -> None:
        """`images_of(idx)`: the pixels of those rows (only the shown ones are read)."""
        k = len(classes)
        images = []
        for c in range(k):
            score = prob[:, c]
            groups = []
            for label, mask, order in (
                    ("true positives", (y == c) & (decided == c), -score),
                    ("false positives", (y != c) & (decided == c), -score),
                    ("false negatives", (y == c) & (decided != c), score),
                    ("true negatives", (y != c) & (decided != c), score)):
                idx = np.nonzero(mask)[0]
                idx = idx[np.argsort(order[idx], kind="stable")][:top]
                x = dict(zip(idx.tolist(), images_of(idx), strict=True))
                groups.append([(x[int(i)], f"{label}\n{ids[i]} {classes[y[i]]}\np({classes[c]})="
                                f"{score[i]:.2f}") for i in idx])
            name = f"examples_{c}.png"
            pictures.montage(groups, f"class {classes[c]}: most confident true positives, "
                             "false positives, false negatives, true negatives (rows)",
                             self.folder / name)
            images.append(self._img(name, f"examples of {classes[c]}"))
            if k == 2:
                break  # class 0's table is class 1's read the other way round
        self._section("Most confident right and wrong", (
            "<p>Out-of-fold: each image was predicted by a model that did not train on it, "
            "and decided as the submitted rule decides it. "
            f"Rows: the {top} most confident true positives, false positives, false "
            "negatives and true negatives.</p>" + "".join(images)))

    # 4. distributions -------------------------------------------------------------------------
    def distributions(self, y: np.ndarray, decided: np.ndarray, prob: np.ndarray,
                      classes: list[str], *, threshold: Any, curve: Any, target: str | None,
                      target_pred: np.ndarray) -> None:
        plt, k = self._plt(), len(classes)
        matrix = confusion(y, decided, k)
        counts = {"real (out-of-fold images)": np.bincount(y, minlength=k),
                  "predicted (out-of-fold)": np.bincount(decided, minlength=k)}
        if target is not None:
            counts[f"predicted ({target})"] = np.bincount(target_pred, minlength=k)
        fig, ax = plt.subplots(figsize=(6.5, 3.2))
        width = 0.8 / len(counts)
        for j, (label, values) in enumerate(counts.items()):
            ax.bar(np.arange(k) + j * width, values / max(values.sum(), 1), width, label=label)
        ax.set_xticks(np.arange(k) + 0.4 - width / 2, classes)
        ax.set_ylabel("share")
        ax.legend(fontsize=8)
        distribution = self._save(fig, "distribution.png")
        pictures.confusion_plot(matrix, classes, self.folder / "confusion.png",
                                "out-of-fold confusion matrix")
        recall = per_class_accuracy(matrix)
        table = pd.DataFrame({"class": classes, "real": counts["real (out-of-fold images)"],
                              "predicted": counts["predicted (out-of-fold)"],
                              "accuracy": recall})
        body = [self._img(distribution, "class distribution"),
                self._img("confusion.png", "confusion matrix"), self._table(table),
                f"<p>Balanced accuracy out-of-fold: {np.nanmean(recall):.4f}.</p>"]
        fig, axes = plt.subplots(1, 2 if curve is not None else 1, figsize=(10, 3.6),
                                 squeeze=False)
        if curve is not None:
            thresholds, scores = curve
            finite = np.isfinite(thresholds)
            ax = axes[0][0]
            ax.plot(thresholds[finite], scores[finite], lw=1)
            ax.axvline(threshold.value, color="C3", label=f"chosen {threshold.value:.3f}")
            ax.axvspan(threshold.value - threshold.spread, threshold.value + threshold.spread,
                       color="C3", alpha=0.15, label=f"bootstrap band +-{threshold.spread:.3f}")
            ax.set_xlabel("threshold on p(class 1)")
            ax.set_ylabel("balanced accuracy")
            ax.set_xlim(0, 1)
            ax.legend(fontsize=8)
        ax = axes[0][-1]
        confidence = prob[:, 1] if k == 2 else prob.max(axis=1)
        hit = (y == 1) if k == 2 else (prob.argmax(axis=1) == y)
        bins = np.linspace(0, 1, 11)
        which = np.clip(np.digitize(confidence, bins) - 1, 0, 9)
        filled = [b for b in range(10) if (which == b).any()]
        ax.plot([0, 1], [0, 1], ":", color="gray")
        ax.plot([confidence[which == b].mean() for b in filled],
                [hit[which == b].mean() for b in filled], "o-")
        ax.set_xlabel("predicted p(class 1)" if k == 2 else "confidence of the top class")
        ax.set_ylabel("observed share of class 1" if k == 2 else "share right")
        ax.set_title("reliability", fontsize=9)
        body.append(self._img(self._save(fig, "threshold.png"), "threshold and reliability"))
        self._section("Class distribution, confusion, threshold, calibration", "".join(body))

    # 2. saliency --------------------------------------------------------------------------------
    def saliency_panels(self, panels: list[tuple[str, np.ndarray, list[str],
                                                 dict[str, np.ndarray]]]) -> None:
        plt, body = self._plt(), []
        for p, (title, images, captions, maps) in enumerate(panels):
            rows = 1 + len(maps)
            fig, axes = plt.subplots(rows, len(images), figsize=(1.9 * len(images), 2 * rows),
                                     squeeze=False)
            for c, image in enumerate(images):
                shown = image[..., 0] if image.shape[-1] == 1 else image
                axes[0][c].imshow(shown, cmap="gray" if image.shape[-1] == 1 else None)
                axes[0][c].set_title(captions[c], fontsize=7)
                for r, (method, values) in enumerate(maps.items(), start=1):
                    axes[r][c].imshow(shown, cmap="gray" if image.shape[-1] == 1 else None)
                    axes[r][c].imshow(values[c], cmap="jet", alpha=0.5)
                    axes[r][c].set_title(method, fontsize=7)
            for ax in axes.ravel():
                ax.axis("off")
            fig.suptitle(title, fontsize=9)
            body.append(self._img(self._save(fig, f"saliency_{p}.png"), title))
        self._section("Saliency: where the model looks", (
            "<p>Gradient: how much each pixel moves the score of the image's true class; "
            "SmoothGrad: the same averaged over noisy copies; Grad-CAM: the last "
            "convolutional block's evidence (models with convolutions).</p>" + "".join(body)))

    def mean_saliency(self, means: list[tuple[str, np.ndarray, int]]) -> None:
        if not means:
            return
        fig, axes = self._plt().subplots(1, len(means), figsize=(2.8 * len(means), 3),
                                         squeeze=False)
        h, w = means[0][1].shape
        eyes = region_mask("eyes", h, w)
        for ax, (label, values, n) in zip(axes[0], means, strict=True):
            ax.imshow(values, cmap="inferno")
            ax.contour(eyes, levels=[0.5], colors="white", linewidths=0.6)
            ax.set_title(f"{label} (mean of {n})", fontsize=9)
            ax.axis("off")
        name = self._save(fig, "mean_saliency.png")
        peaks = []
        for label, values, _ in means:
            r, c = np.unravel_index(int(np.argmax(values)), values.shape)
            where = [n for n in REGIONS if n != "whole" and region_mask(n, h, w)[r, c]]
            peaks.append(f"{html.escape(label)}: peak at row {r}, column {c}"
                         f" ({', '.join(where) or 'no named region'})")
        self._section("Mean saliency per class", (
            "<p>Where, on average, the evidence lies (each map scaled to its own maximum, "
            "then averaged; the white outline is the eye region).</p>"
            + self._img(name, "mean saliency") + "<ul>" + "".join(
                f"<li>{p}</li>" for p in peaks) + "</ul>"))

    # 5. learning curves -----------------------------------------------------------------------
    def learning_curves(self, runs: list[RunDir]) -> None:
        fig, axes = self._plt().subplots(1, 2, figsize=(10, 3.6))
        for r, run in enumerate(runs):
            for m, member in enumerate(run.members()):
                if not member.history.exists():
                    continue
                history = pd.read_csv(member.history)
                label = run.name + (" (each fold)" if run.cross_fitted else "")
                for ax, metric in zip(axes, ("val_balanced_accuracy", "val_loss"), strict=True):
                    if metric in history:
                        ax.plot(history["epoch"], history[metric], color=f"C{r}", alpha=0.8,
                                lw=1, marker="o", ms=2, label=label if m == 0 else None)
        for ax, title in zip(axes, ("validation balanced accuracy", "validation loss"),
                             strict=True):
            ax.set_xlabel("epoch")
            ax.set_title(title, fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        name = self._save(fig, "learning_curves.png")
        self._section("Learning curves", "<p>Per model (each fold's model of a cross-fitted "
                      "run in its run's colour).</p>" + self._img(name, "learning curves"))

    # 6. clues ---------------------------------------------------------------------------------
    def clues(self, ranked: list[Clue], named: dict[str, np.ndarray], y: np.ndarray,
              classes: list[str], *, shown: int = 4) -> None:
        table = pd.DataFrame([{"statistic": c.statistic, "class": c.target,
                               "balanced accuracy alone": c.balanced_accuracy,
                               "class is": c.direction, "threshold": c.threshold,
                               "effect size (d)": c.effect}
                              for c in ranked[:20]])
        best = ranked[:shown]
        fig, axes = self._plt().subplots(1, len(best), figsize=(3.2 * len(best), 2.8),
                                         squeeze=False)
        for ax, clue in zip(axes[0], best, strict=True):
            values = named[clue.statistic]
            for c, label in enumerate(classes):
                ax.hist(values[y == c], bins=30, alpha=0.5, density=True, label=label)
            ax.axvline(clue.threshold, color="black", lw=0.8)
            ax.set_title(f"{clue.statistic}\n({clue.balanced_accuracy:.3f})", fontsize=8)
            ax.legend(fontsize=7)
        name = self._save(fig, "clues.png")
        self._section("What does each class look like? Clues from image statistics", (
            "<p>Simple named statistics of the pixels, each scored by the balanced accuracy "
            "of the best single threshold on it (0.5: no signal). Regions are fractions of "
            "the face crop: " + ", ".join(f"{n} {REGIONS[n]}" for n in REGIONS if n != "whole")
            + " (rows top-bottom, columns left-right).</p>" + self._table(table)
            + self._img(name, "distributions of the top statistics")))

    def write(self, used: dict[str, str]) -> Path:
        notes = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in used.items())
        document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}}
img{{max-width:100%;display:block;margin:0.5em 0}}
table{{border-collapse:collapse;font-size:0.85em}}td,th{{padding:2px 8px;text-align:right}}
</style></head><body>
<h1>{html.escape(self.title)}</h1>
<p>Images used:</p><ul>{notes}</ul>
{chr(10).join(self.parts)}
{CHECK}
</body></html>
"""
        path = self.folder / "index.html"
        write_text(path, document)
        return path
