"""Turn the measurements in data/reports/*.json into the tables people read: data/reports/README.md and README.md's.

    python -m benchmarks.report

No figure in the docs is typed by hand: each comes from a JSON file that a command wrote, and each table says which
command, when and on which machine. The README's tables sit between ``<!-- report:NAME -->`` and
``<!-- /report:NAME -->`` markers and are replaced on every run; a missing measurement is named, not invented.

The measurements (``make report`` runs them all, about an hour and a half on a 2-core machine):
- quality.json: ``python -m benchmarks.compare_detectors --suite --detectors SPEC... --report FILE``
- chains.json: ``python -m benchmarks.compare_detectors --detectors SPEC... --variants upright --report FILE`` with
  the chains an operator or a user chooses between (CHAINS)
- peer-quality.json, peer-speed.json: ``python -m benchmarks.peer --out data/reports quality --suite`` and ``speed``
- video-slips.json: ``python -m benchmarks.video_slips --deface out/peer/venv/bin/deface --report FILE``
- passes.json: ``python -m benchmarks.ledger --report FILE`` (the ledger of the default's passes)
- benchmarks.json: ``OVERLOAD=short VIDEO_BENCH=short FUZZ_BENCH=short python -m pytest benchmarks -q
  --benchmark-json=data/reports/benchmarks.json`` (the bot, video and fuzzing benchmarks' short forms, as
  ``make report``)
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.compare_detectors import suite_table

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "data" / "reports"
README = ROOT / "README.md"
PEER = "deface 1.5.0"
SEE_REPORT = "Command, machine and date of each run: [data/reports/README.md](data/reports/README.md)."
# The suite's rows in the README: a family of variants is shown by its worst member.
FAMILIES = {
    "upright photos": ("upright",),
    "selfies and portraits (face fills 65 or 85 % of the frame; 400, 1280, 2560 px)": tuple(
        f"closeup-{fill}-{height}" for fill in (65, 85) for height in (400, 1280, 2560)
    ),
    "tilted 25 degrees either way": ("tilted-left", "tilted-right"),
    "dark (gamma 2.5, sensor noise)": ("dark",),
    "black and white": ("grey",),
    "sent through Telegram (1280 px, JPEG 80)": ("telegram",),
    "faces cut in half by the border": ("border",),
}


def load(name: str) -> dict[str, Any] | None:
    path = REPORTS / name
    return json.loads(path.read_text()) if path.exists() else None


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


def seconds(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f} s"


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def worst(
    summaries: dict[str, dict[str, float]], variants: Sequence[str], key: str, lowest: bool = True
) -> float | None:
    values = [summaries[v][key] for v in variants if v in summaries]
    if not values:
        return None
    return min(values) if lowest else max(values)


def quality_table(stamped: bool = True) -> str:
    """The default against deface, on the upright photos and every family of variants (its worst member); with the
    runs' stamps (command, machine, date) where ``stamped``, else a pointer to the page that has them."""
    ours, peer = load("quality.json"), load("peer-quality.json")
    if ours is None:
        return "Not measured yet: `make report`."
    default = ours["default"]
    theirs = peer["variants"] if peer else {}
    rows = []
    for family, variants in FAMILIES.items():
        rows.append(
            [
                family,
                percent(worst(default, variants, "covered")),
                percent(worst(theirs, variants, "covered")),
                percent(worst(default, variants, "fully_anonymized")),
                percent(worst(theirs, variants, "fully_anonymized")),
                percent(worst(default, variants, "overpainting", lowest=False)),
                percent(worst(theirs, variants, "overpainting", lowest=False)),
            ]
        )
    head = [
        "photos",
        "faces covered",
        PEER,
        "photos with every face covered",
        PEER,
        "painted outside faces",
        PEER,
    ]
    if not stamped:
        return table(head, rows) + "\n\n" + SEE_REPORT
    notes = [f"photo-anon: {ours['generated']}"]
    if peer:
        notes.append(f"{PEER}: {peer['generated']}")
    return table(head, rows) + "\n\n" + "\n".join(f"- {note}" for note in notes)


def suite_details() -> str:
    """Every spec of the quality report on every variant, in the comparison's own table."""
    ours = load("quality.json")
    if ours is None:
        return "Not measured yet."
    return f"{ours['generated']}\n\n" + suite_table(ours["summaries"])


# The chains people choose between, what each is for, in chains.json's run: the default, the one whose weights allow
# commercial use, and the second look (/strict).
CHAINS = {
    "backup:scrfd,yunet,haar": "the default",
    "backup:yunet,haar": "MIT weights (commercial use)",
    "strict": "the second look: /strict, `--detector strict`",
}


CHAINS_COMMAND = (
    "python -m benchmarks.compare_detectors --detectors "
    + " ".join(f'"{spec}"' for spec in CHAINS)
    + " --variants upright --examples 0 --report data/reports/chains.json"
)


def chains_table(stamped: bool = True) -> str:
    """The chains of CHAINS side by side on the upright photos, from one run so that their times compare (stamped as
    ``quality_table``)."""
    chains = load("chains.json")
    if chains is None:
        return f"Not measured yet: `{CHAINS_COMMAND}`."
    upright = chains["summaries"]["upright"]
    rows = [
        [
            f"`{spec}`",
            purpose,
            percent(upright[spec]["covered"]),
            percent(upright[spec]["fully_anonymized"]),
            percent(upright[spec]["overpainting"]),
            seconds(upright[spec]["median_s"]),
        ]
        for spec, purpose in CHAINS.items()
        if spec in upright
    ]
    head = ["chain", "for", "faces covered", "photos with every face covered", "painted outside faces", "median s"]
    return table(head, rows) + "\n\n" + (chains["generated"] if stamped else SEE_REPORT)


def slips_table() -> str:
    """Faces that slip through in video, with tracking and without, and deface's video mode on the same clips."""
    slips = load("video-slips.json")
    if slips is None:
        return f"Not measured yet: `{SLIPS_COMMAND}`."
    rows = [
        [
            way,
            percent(figures["face_frames_covered"]),
            percent(figures["frames_all_covered"]),
            str(figures["slips"]),
            str(figures["slip_frames"]),
            percent(figures["painted_outside"]),
        ]
        for way, figures in slips["ways"].items()
    ]
    head = ["", "face-frames covered", "frames with every face covered", "slips", "slip frames", "painted outside"]
    return (
        f"{slips['clips']} clips of {slips['frames_per_clip']} frames made from the labelled photos, "
        f"{slips['face_frames']:,} face-frames of faces 20 px or taller (how: `benchmarks/video_slips.py`). "
        f"{slips['generated']}\n\n" + table(head, rows)
    )


SLIPS_COMMAND = (
    "python -m benchmarks.video_slips --deface out/peer/venv/bin/deface --report data/reports/video-slips.json"
)


def speed_table(stamped: bool = True) -> str:
    """Whole processes on the same photos: photo-anon against deface (stamped as ``quality_table``)."""
    speed = load("peer-speed.json")
    if speed is None:
        return "Not measured yet: `python -m benchmarks.peer --out data/reports speed`."
    medians = speed["median_s"]
    rows = [
        [tool, seconds(medians[tool], 1), ", ".join(f"{value:.1f}" for value in speed["rounds"][tool])]
        for tool in medians
    ]
    return (
        table([str(speed["photos"]), "median", "rounds (s)"], rows)
        + f"\n\nphoto-anon takes {speed['ratio']:.2f}x deface's time. "
        + (speed["generated"] if stamped else SEE_REPORT)
    )


LEDGER_COMMAND = "python -m benchmarks.ledger --report data/reports/passes.json"
# Short names of the variants, for the ledger's columns.
SHORT = {"upright": "upright", "tilted-left": "tilt L", "tilted-right": "tilt R", "telegram": "Telegram"}


def _short(variant: str) -> str:
    return SHORT.get(variant, variant.replace("closeup-", "close "))


def passes_table() -> str:
    """The ledger: each pass, rule and member of the default, on the upright photos in full and on every variant in
    short (time share, faces and photos only it gives)."""
    ledger = load("passes.json")
    if ledger is None:
        return f"Not measured yet: `{LEDGER_COMMAND}`."
    variants = ledger["variants"]
    names = list(dict.fromkeys(name for figures in variants.values() for name in figures["parts"]))
    upright = variants.get("upright")
    parts = []
    if upright is not None:
        rows = []
        for name in names:
            part = upright["parts"].get(name)
            if part is None:
                continue
            measured_time = name not in ("edge rule", "black-and-white rule")
            rows.append(
                [
                    name,
                    percent(part["runs_percent"]) if measured_time else "every photo",
                    percent(part["time_percent"]) if measured_time else "–",
                    str(part["faces"]),
                    str(part["photos"]),
                    f"{part['paint_points']:+.2f}",
                ]
            )
        head = [
            "pass, rule or member",
            "runs on",
            "share of detection time",
            "faces only it covers",
            "photos only it completes",
            "paint it adds (points)",
        ]
        parts.append(
            f"Upright photos: {upright['cases']} photos, {upright['faces']} faces, detection "
            f"{upright['detect_seconds'] / max(1, upright['cases']):.3f} s per photo on average; "
            f"{upright['covered_percent']:.1f} % of faces covered, {upright['fully_anonymized_percent']:.1f} % of "
            "photos with every face covered.\n\n" + table(head, rows)
        )
    cells = []
    for name in names:
        row = [name]
        for figures in variants.values():
            part = figures["parts"].get(name)
            if part is None:
                row.append("–")
                continue
            spent = f"{part['time_percent']:.0f} % · " if part["runs"] else ""
            row.append(f"{spent}{part['faces']}/{part['photos']}")
        cells.append(row)
    totals = ["every face / photo"] + [
        f"{f['covered_percent']:.1f} / {f['fully_anonymized_percent']:.1f} %" for f in variants.values()
    ]
    seconds = ["detection s per case"] + [f"{f['detect_seconds'] / max(1, f['cases']):.3f}" for f in variants.values()]
    parts.append(
        "Every variant: share of detection time · faces / photos only it gives.\n\n"
        + table(["", *(_short(variant) for variant in variants)], [*cells, totals, seconds])
    )
    detector = ledger["detector"]
    standing_by = [m for m in detector.split(":")[-1].split(",") if m.split("[")[0] not in ledger["members"]]
    if ledger["policy"] == "backup" and standing_by:
        parts.append(
            f"`{detector}` is a backup chain: {', '.join(standing_by)} stand by for a machine without "
            f"{ledger['members'][0]}'s weights and run on no photo here."
        )
    return f"{ledger['generated']} Photos: {ledger['photos']}.\n\n" + "\n\n".join(parts)


# What `make report` runs: the bot, video and fuzzing benchmarks in their short forms (the table's "form" column
# says so).
BENCHMARKS_COMMAND = (
    "OVERLOAD=short VIDEO_BENCH=short FUZZ_BENCH=short python -m pytest benchmarks -q "
    "--benchmark-json=data/reports/benchmarks.json"
)


def benchmark_table() -> str:
    """Every pytest benchmark's own figures (extra_info), as the last `--benchmark-json` run recorded them."""
    run = load("benchmarks.json")
    if run is None:
        return f"Not measured yet: `{BENCHMARKS_COMMAND}`."
    machine = run.get("machine_info", {})
    cpu = machine.get("cpu", {}).get("brand_raw", "?")
    rows = []
    for bench in run["benchmarks"]:
        figures = ", ".join(f"{key} {value}" for key, value in bench.get("extra_info", {}).items())
        rows.append([f"`{bench['name']}`", seconds(bench["stats"]["median"], 3), figures])
    header = (
        f"Recorded {run.get('datetime', '?')[:16]} UTC on {cpu}, {machine.get('cpu', {}).get('count', '?')} cores, "
        f"Python {machine.get('python_version', '?')}, by `{BENCHMARKS_COMMAND}`."
    )
    return header + "\n\n" + table(["benchmark", "median", "figures"], rows)


# The README is a guide: its tables say where their runs are described rather than when they were made.
SECTIONS: dict[str, Callable[[], str]] = {
    "quality": lambda: quality_table(stamped=False),
    "speed": lambda: speed_table(stamped=False),
    "chains": lambda: chains_table(stamped=False),
}


def replace_sections(text: str, sections: dict[str, Callable[[], str]]) -> str:
    """The text with each ``<!-- report:NAME -->...<!-- /report:NAME -->`` block rendered anew."""
    for name, render in sections.items():
        body = render()
        pattern = re.compile(rf"(<!-- report:{name} -->\n).*?(\n<!-- /report:{name} -->)", re.DOTALL)
        text = pattern.sub(lambda match, body=body: match.group(1) + body + match.group(2), text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    del argv
    REPORTS.mkdir(parents=True, exist_ok=True)
    pages = [
        "# Measurements\n",
        "Made by `python -m benchmarks.report` from the JSON files beside this page; each table names the command "
        "that measured it, when, and on which machine.\n",
        "## Quality: the default against deface on the labelled photos and the suite\n",
        quality_table(),
        "\n## Every detector spec of the quality run\n",
        suite_details(),
        "\n## The chains to choose from, on the upright photos\n",
        chains_table(),
        "\n## The ledger of the default's passes: what each costs and buys\n",
        "What a pass buys is what the answer loses without its candidates; how: `benchmarks/ledger.py`.\n",
        passes_table(),
        "\n## Speed: whole processes against deface\n",
        speed_table(),
        "\n## Videos: faces that slip through\n",
        slips_table(),
        "\n## Benchmarks\n",
        benchmark_table(),
    ]
    (REPORTS / "README.md").write_text("\n".join(pages) + "\n")
    README.write_text(replace_sections(README.read_text(), SECTIONS))
    print(f"wrote {REPORTS / 'README.md'} and the tables of {README}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
