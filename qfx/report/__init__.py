"""A run folder's ``results.json`` -> ``report.md``, ``report.html`` and PNG plots (``qfx report``, ``qfx demo``).

``results.json`` holds sections written by the commands: ``train`` (``qfx train``), ``plan`` (``qfx hls
--record``: the hardware plan, per layer and in total), ``verify`` and ``synth`` (``qfx verify/synth --record``),
or, from ``qfx demo``, ``meta``, ``accuracy``, ``sweep`` and ``variants`` (one per deployed model, each with its
formats, verification chain, resources and, when recorded, its plan; the demo records the fully parallel plan
beside it, ``plan_parallel``, and the report compares the two). Whatever is present is shown.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict
from pathlib import Path

import jinja2

from qfx.backends.hls.generate import hls_root
from qfx.report.plan import plan_comparison, plan_line, plan_summary, plan_table
from qfx.report.plots import plot_accuracy, plot_binary_points, plot_plan, plot_resources
from qfx.report.table import Table
from qfx.safety import md_text

__all__ = ["Table", "plan_summary", "record", "synth_summary", "write_report"]


def record(path: Path, section: str, data: object) -> None:
    """Set ``section`` of the JSON file ``path`` (a run's results.json) to ``data``, keeping the other sections.

    The read-modify-write holds a lock on the file, so concurrent ``--record`` runs never lose each other's
    sections; the file is replaced atomically."""
    from qfx.guard import locked

    with locked(path):
        results = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"generator": "qfx"}
        results[section] = data
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(results, indent=2) + "\n")
        os.replace(tmp, path)


def synth_summary(result) -> dict:
    """A :class:`qfx.synth.SynthReport` as the JSON a results.json holds."""
    return {
        "family": result.family,
        "board": result.board.name if result.board else None,
        "total": asdict(result.total),
        "layers": {name: asdict(c) for name, c in result.layers.items()},
        "utilization": result.utilization,
        "yosys_s": result.yosys_s,
    }


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _variants(results: dict) -> dict[str, dict]:
    """Deployed models by key: the demo's ``variants``, or one made of the train/verify/synth sections."""
    if results.get("variants"):
        return results["variants"]
    train = results.get("train", {})
    single = {
        "title": (
            f"{train.get('model', 'model')} W={train.get('width', '?')}"
            + (f" K-hot K={train['khot']}" if train.get("khot") else "")
        )
        if train
        else (results.get("plan") or {}).get("graph", "model"),
        "formats": {"calibrated": train.get("calibrated", []), "learned": train.get("learned", [])},
        "verify": results.get("verify"),
        "synth": results.get("synth"),
        "plan": results.get("plan"),
    }
    return {"model": single} if any(single[k] for k in ("verify", "synth", "plan")) or train else {}


def _accuracy_table(results: dict) -> Table | None:
    rows = results.get("accuracy")
    if rows:
        return Table(["model", "method", "width", "test accuracy (%)"], [
            [r.get("model", ""), r["method"], str(r["width"] or "float32"), _pct(r["accuracy"])] for r in rows
        ], align_right=2)  # fmt: skip
    train = results.get("train")
    if train:
        acc = train["accuracy"]
        return Table(["model", "method", "width", "test accuracy (%)"], [
            [train["model"], method, "float32" if method == "float" else str(train["width"]), _pct(value)]
            for method, value in acc.items()
        ], align_right=2)  # fmt: skip
    return None


def _formats_table(variant: dict) -> Table | None:
    formats = variant.get("formats") or {}
    learned = formats.get("learned") or []
    if not learned:
        return None
    calibrated = {r["name"]: r["format"] for r in formats.get("calibrated", [])}
    rows = [[r["name"], calibrated.get(r["name"], ""), r["format"], str(r["int_bits"]), str(r["frac_bits"])]
            for r in learned]  # fmt: skip
    return Table(["tensor", "calibrated (PTQ)", "learned (QAT)", "integer bits", "fraction bits"], rows, 3)


def _verify_table(chain: dict | None) -> Table | None:
    if not chain:
        return None
    rows = []
    for r in chain["links"]:
        status = "reference" if r["link"] == chain["reference"] else str(r["mismatches"])
        note = f" ({r['note']})" if r.get("note") else ""
        rows.append([r["link"], r["runs_on"] + note, str(r["vectors"]), str(r["codes"]), status,
                     f"{r['seconds']:.1f}"])  # fmt: skip
    return Table(["link", "runs on", "vectors", "codes compared", "mismatches", "time (s)"], rows, 2)


def _synth_table(synth: dict | None) -> Table | None:
    if not synth:
        return None
    keys = ["lut", "ff", "carry", "dsp", "bram"]
    rows = [[name, *(f"{c.get(k, 0):g}" for k in keys)] for name, c in synth["layers"].items()]
    rows.append(["**total**", *(f"{synth['total'].get(k, 0):g}" for k in keys)])
    if synth.get("board") and synth.get("utilization"):
        u = synth["utilization"]
        rows.append([f"% of {synth['board']}", f"{u['lut']:.2f}%", f"{u['ff']:.2f}%", "", f"{u['dsp']:.2f}%",
                     f"{u['bram']:.2f}%"])  # fmt: skip
    return Table(["layer", "LUT", "FF", "CARRY", "DSP", "BRAM"], rows)


def _plan_comparison(variant: dict) -> Table | None:
    """The chosen plan beside the fully parallel one (``qfx demo`` records both), else None."""
    if not (variant.get("plan") and variant.get("plan_parallel")):
        return None
    return plan_comparison([("chosen plan (fits the board)" if variant["plan"]["fits"] else "chosen plan",
                             variant["plan"]), ("fully parallel", variant["plan_parallel"])])  # fmt: skip


def _sections(results: dict, folder: Path) -> dict:
    """Everything the templates show, with the plots written into ``folder/plots``."""
    plots_dir = folder / "plots"
    plots_dir.mkdir(exist_ok=True)
    variants = _variants(results)
    plots = {}
    if any((v.get("formats") or {}).get("learned") for v in variants.values()):
        plots["binary_points"] = plot_binary_points(variants, plots_dir / "binary_points.png")
    if results.get("sweep"):
        float_acc = next((r["accuracy"] for r in results.get("accuracy", []) if r["method"] == "float"), None)
        plots["accuracy"] = plot_accuracy(results["sweep"], float_acc, plots_dir / "accuracy_vs_width.png")
    if any(v.get("synth") for v in variants.values()):
        plots["resources"] = plot_resources(variants, plots_dir / "resources.png")
    if any(v.get("plan") for v in variants.values()):
        plots["plan"] = plot_plan(variants, plots_dir / "plan.png")
    chains = [v["verify"] for v in variants.values() if v.get("verify")]
    total_codes = sum(
        link["codes"] for chain in chains for link in chain["links"]
        if link["mismatches"] is not None and link["link"] != chain["reference"]
    )  # fmt: skip
    sweep = results.get("sweep") or []
    return {
        "meta": results.get("meta", {}),
        "accuracy": _accuracy_table(results),
        "sweep": Table(["method", "width", "test accuracy (%)"],
                       [[r["method"], str(r["width"]), _pct(r["accuracy"])] for r in sweep]) if sweep else None,
        "variants": [
            {"title": v["title"], "files": v.get("files", {}), "formats": _formats_table(v),
             "verify": _verify_table(v.get("verify")), "verify_ok": (v.get("verify") or {}).get("ok"),
             "synth": _synth_table(v.get("synth")), "synth_meta": v.get("synth"),
             "plan": plan_table(v["plan"]) if v.get("plan") else None,
             "plan_line": plan_line(v["plan"]) if v.get("plan") else "",
             "plan_comparison": _plan_comparison(v)}
            for v in variants.values()
        ],
        "all_ok": bool(chains) and all(chain["ok"] for chain in chains),
        "chains": len(chains),
        "total_codes": total_codes,
        "plots": {k: os.path.relpath(p, folder) for k, p in plots.items()},
        "timings": results.get("timings", {}),
    }  # fmt: skip


def _tidy_markdown(text: str) -> str:
    """Headings get a blank line before and after; no run of blank lines longer than one."""
    text = re.sub(r"(?m)^(#+ .*)$", r"\n\1\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(hls_root() / "templates" / "report"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=jinja2.select_autoescape(["html.j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = md_text  # strings from results.json in report.md
    return env


def write_report(folder: str | os.PathLike) -> list[Path]:
    """Render ``folder/results.json`` into ``report.md``, ``report.html`` and ``plots/*.png``; returns the paths."""
    folder = Path(folder)
    source = folder / "results.json"
    try:
        results = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{source} not found: give a folder written by `qfx demo` or `qfx train`") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source} is not valid JSON ({exc})") from None
    if not isinstance(results, dict) or results.get("generator") != "qfx":
        raise ValueError(f"{source} was not written by QFX")
    context = _sections(results, folder)
    env = _environment()
    written = []
    for template, name in (("report.md.j2", "report.md"), ("report.html.j2", "report.html")):
        path = folder / name
        tmp = folder / f".{name}.tmp"
        text = env.get_template(template).render(**context)
        if name.endswith(".md"):
            text = _tidy_markdown(text)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    return written + [folder / p for p in context["plots"].values()]
