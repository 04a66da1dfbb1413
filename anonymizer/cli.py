"""``photo-anon``: anonymize photos, GIFs and videos on disk, inspect photos, and manage the detectors' model files.

A batch never stops for one bad file: each failure is one line on stderr and the exit code says whether any
failed (0 all good, 1 some failed, 2 bad usage). Defaults come from ``anonymizer.options`` so the command
line, the bot and the library agree.

Inputs are measured (stat) before they are read, and only regular files are read. Outputs never replace an
existing file without ``--overwrite``, are never written through a symbolic link, never readable by more people
than their input, and never left half written: each is written to a temporary file beside it and renamed over it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.metadata
import json
import logging
import math
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

import cv2
from tqdm import tqdm

import detectors
import filters
from anonymizer import options as defaults
from anonymizer.errors import AnonymizerError, ChoiceError, too_large
from anonymizer.formats import IMAGE_SUFFIXES, MEDIA_SUFFIXES, VIDEO_SUFFIXES, suffix_of
from anonymizer.media import MediaInfo, anonymize_media, output_format_of, probe
from anonymizer.options import MediaKind, Options, Result
from anonymizer.pipeline import detect, warm_up
from detectors import Chain, Detection, ModelMissingError
from detectors.download import DOWNLOADED, FAILED, download
from detectors.scrfd import ScrfdSettings

PROGRAM = "photo-anon"
DISTRIBUTION = "photo-anonymization"
OUTPUT_SUFFIX = ".anonymized"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake in the command line itself (exit code 2), as opposed to a file that failed."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``photo-anon``; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"{PROGRAM}: %(message)s", stream=sys.stderr)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our messages say what went wrong
    try:
        return args.run(args)
    except UsageError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ModelMissingError as error:
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Whoever read the output stopped (`photo-anon ... --json | head -1`): stop too, quietly, as command-line
        # tools do; what is still buffered for the closed pipe goes nowhere instead of raising again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description="Find every face in photos and make it unrecognizable.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    anonymize_parser = commands.add_parser(
        "anonymize",
        help="cover the faces in photos, GIFs and videos",
        description=f"Write each photo, GIF or video with its faces covered and no metadata, beside the input as "
        f"NAME{OUTPUT_SUFFIX}.EXT or into -o (videos as MP4, HEIC photos as JPEG).",
    )
    _add_inputs(anonymize_parser, "photos (JPEG, PNG, WebP, BMP, HEIC, AVIF), GIFs, videos (MP4, MOV, WebM, MKV)")
    anonymize_parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="output directory (keeps the inputs' names and sub-folders), or a file path for a single input",
    )
    anonymize_parser.add_argument(
        "--overwrite",
        action="store_true",
        help="let an output replace an existing file, even an input of the same path (refused otherwise)",
    )
    _add_detection_options(anonymize_parser)
    anonymize_parser.add_argument(
        "--filter",
        default=defaults.DEFAULT_FILTER,
        choices=filters.available(),
        help="how faces are covered: %(choices)s (default: %(default)s; blur can be undone in principle)",
    )
    anonymize_parser.add_argument(
        "--mask", default=defaults.DEFAULT_MASK, choices=("ellipse", "box"), help="default: %(default)s"
    )
    anonymize_parser.add_argument(
        "--margin",
        type=float,
        default=defaults.DEFAULT_MARGIN,
        help="grow each side of a face by this share of its size (default: %(default)s)",
    )
    anonymize_parser.add_argument(
        "--min-margin",
        type=float,
        default=defaults.DEFAULT_MIN_MARGIN,
        help="...and by at least this many pixels (default: %(default)s)",
    )
    anonymize_parser.add_argument(
        "--detect-every",
        type=int,
        default=defaults.DETECT_EVERY,
        metavar="N",
        help="GIFs and videos: search faces on every N-th frame of 30 per second and follow them in between "
        "(default: %(default)s)",
    )
    anonymize_parser.add_argument(
        "--detect-side",
        type=int,
        default=defaults.DETECT_SIDE,
        metavar="PX",
        help="GIFs and videos: search faces on frames shrunk to this longest side, 0 for full size "
        "(default: %(default)s)",
    )
    anonymize_parser.add_argument(
        "--keep",
        type=_face_numbers,
        action="append",
        metavar="N[,N...]",
        help="leave these faces uncovered, numbered as `photo-anon detect` lists them (reading order: top to "
        "bottom, left to right); one photo only",
    )
    anonymize_parser.add_argument(
        "--add",
        type=_region,
        action="append",
        metavar="X,Y,W,H",
        help="also cover this region (left, top, width, height in pixels of the upright photo), such as a face the "
        "detector missed, with the same filter, mask and margin; repeatable; photos only",
    )
    anonymize_parser.set_defaults(run=_run_anonymize)

    detect_parser = commands.add_parser("detect", help="list the faces in photos without changing them")
    _add_inputs(detect_parser, "photos")
    _add_detection_options(detect_parser)
    detect_parser.set_defaults(run=_run_detect)

    models_parser = commands.add_parser("models", help="download or list the detectors' model files")
    models_commands = models_parser.add_subparsers(required=True, metavar="ACTION")
    download_parser = models_commands.add_parser(
        "download",
        help="fetch the model files, verifying checksums",
        description="Fetch what can be fetched and say, file by file, what could not and why. Fails only when no "
        f"detector of the default chain ({defaults.DEFAULT_DETECTOR}) can run, or when a file named by --only "
        "could not be had.",
    )
    download_parser.add_argument(
        "--from",
        dest="source",
        metavar="DIR_OR_URL",
        help="a mirror directory or URL prefix instead of the official pinned URLs",
    )
    download_parser.add_argument(
        "--or-official",
        action="store_true",
        help="take files the --from mirror lacks from their official sources",
    )
    download_parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="file names or detector names (ssd, yunet, centerface, scrfd)"
    )
    download_parser.set_defaults(run=_run_models_download)
    list_parser = models_commands.add_parser("list", help="show which model files are present and verified")
    list_parser.set_defaults(run=_run_models_list)
    return parser


def _add_inputs(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help=f"files or directories: {what}")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file (JSON Lines)")


def _add_detection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--detector",
        default=defaults.DEFAULT_DETECTOR,
        help=f"a detector ({', '.join(detectors.available())}), a fallback chain such as 'ssd,haar' or "
        "'union:yunet,ssd,haar' (default: %(default)s)",
    )
    parser.add_argument("--threshold", type=_threshold, metavar="T", help=_THRESHOLD_HELP)


def _scrfd_default(setting: str) -> float:
    """A setting's default in SCRFD's settings, so the help text says what the detector does."""
    return float(getattr(ScrfdSettings(), setting))


_THRESHOLD_HELP = (
    "the score a face must reach, from 0 to 1 (default: each detector's own). A higher threshold never gives more "
    "faces. For SCRFD, the default detector, it is the score of a medium-size face: small faces need "
    f"{_scrfd_default('small_share'):g} of it, large ones a little more, and faces cut by the photo's edge "
    f"{_scrfd_default('edge_share'):g} of what their size needs"
)


def _threshold(text: str) -> float:
    """``--threshold``: a number from 0 to 1, else a usage error."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a score from 0 to 1, not {text!r}") from None
    if math.isnan(value) or not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a score from 0 to 1, not {text}")
    return value


def _face_numbers(text: str) -> frozenset[int]:
    """``--keep``: face numbers from 1, separated by commas, else a usage error."""
    malformed = argparse.ArgumentTypeError(f"face numbers from 1 separated by commas, such as 2,5, not {text!r}")
    try:
        numbers = frozenset(int(part) for part in text.split(","))
    except ValueError:
        raise malformed from None
    if min(numbers) < 1:
        raise malformed
    return numbers


def _region(text: str) -> filters.Region:
    """``--add``: X,Y,W,H in whole pixels, the region's left and top edges and a size of at least 1 x 1."""
    malformed = argparse.ArgumentTypeError(
        f"a region as X,Y,W,H in pixels (left, top, width, height), such as 40,60,120,150, not {text!r}"
    )
    try:
        x, y, w, h = (int(part) for part in text.split(","))
    except ValueError:
        raise malformed from None
    if min(x, y) < 0 or min(w, h) < 1:
        raise malformed
    return filters.Region(x, y, w, h)


def _version() -> str:
    """The installed distribution's version (setup.py is its one source)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def _options(args: argparse.Namespace) -> Options:
    """The pipeline options for these arguments, loaded once now so a bad name fails before any file."""
    options = Options(
        detector=args.detector,
        threshold=args.threshold,
        filter=getattr(args, "filter", defaults.DEFAULT_FILTER),
        mask=getattr(args, "mask", defaults.DEFAULT_MASK),
        margin=getattr(args, "margin", defaults.DEFAULT_MARGIN),
        min_margin=getattr(args, "min_margin", defaults.DEFAULT_MIN_MARGIN),
        detect_every=getattr(args, "detect_every", defaults.DETECT_EVERY),
        detect_side=getattr(args, "detect_side", defaults.DETECT_SIDE),
        keep=frozenset().union(*getattr(args, "keep", None) or ()),
        add=getattr(args, "add", None) or (),
    )
    if options.detect_every < 1 or options.detect_side < 0:
        raise UsageError("--detect-every must be at least 1 and --detect-side at least 0")
    try:
        warm_up(options)
    except (ValueError, KeyError, TypeError) as error:
        # str() of a KeyError quotes its message: its first argument is the message itself.
        raise UsageError(str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)) from None
    return options


# --- inputs and outputs ----------------------------------------------------------------------------------------


def _is_output(path: Path) -> bool:
    return path.stem.endswith(OUTPUT_SUFFIX)


def _collect(
    inputs: Sequence[Path], skip_under: Path | None, extensions: frozenset[str]
) -> Iterator[tuple[Path, Path]]:
    """Each file with the directory argument it was found under (its own parent for a file argument).

    Directories are walked recursively for ``extensions``, leaving out earlier outputs and the -o folder.
    """
    for item in inputs:
        if not item.is_dir():
            yield item, item.parent
            continue
        for path in sorted(p for p in item.rglob("*") if p.is_file()):
            inside_output = skip_under is not None and path.resolve().is_relative_to(skip_under)
            if path.suffix.lower() in extensions and not _is_output(path) and not inside_output:
                yield path, item


def _output_path(path: Path, root: Path, output: Path | None, single_file: bool) -> Path:
    """Beside the input with the suffix; or under -o; or -o itself for one file when -o names a file."""
    if output is None:
        return path.with_name(f"{path.stem}{OUTPUT_SUFFIX}{path.suffix}")
    if single_file and output.suffix and not output.is_dir():
        return output
    return output / path.relative_to(root)


def _names_a_file(output: Path) -> bool:
    """Whether ``-o`` is meant as one output file rather than a folder."""
    return output.is_file() or (not output.is_dir() and output.suffix.lower() in IMAGE_SUFFIXES | MEDIA_SUFFIXES)


def _check_outputs(
    args: argparse.Namespace, files: list[tuple[Path, Path]], single_file: bool, inputs: set[Path]
) -> None:
    """The usage errors about outputs, found before any photo is read: ``-o FILE`` for several inputs, an output
    that would replace an input, and a folder that cannot be written (each with its path)."""
    output = args.output
    if output is not None and not single_file and _names_a_file(output):
        raise UsageError(f"-o {output} is a file, but there are several inputs: give a folder")
    targets = [_output_path(path, root, output, single_file) for path, root in files if not _is_output(path)]
    if not args.overwrite:
        for target in targets:
            if target.resolve() in inputs:
                raise UsageError(f"the output {target} would replace an input; --overwrite lets it")
    if output is None:
        folders = {target.parent for target in targets}
    else:
        folders = {output.parent if targets and targets[0] == output else output}
    for folder in sorted(folders):
        _check_writable(folder)


def _check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and write a throwaway file there, or a UsageError naming it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UsageError(f"cannot write into {folder}: {error.strerror or error}") from None


def _renamed_for(target: Path, info: MediaInfo, named_by_user: bool) -> Path:
    """The output path with the extension of what will be written, when that is not the input's format."""
    written = output_format_of(info)
    if named_by_user or written == info.format:
        return target
    return target.with_suffix(suffix_of(written))


def _write_output(target: Path, data: bytes, mode: int, overwrite: bool) -> None:
    """``data`` as the file ``target``, all at once: written to a temporary file beside it and renamed over it.

    A new file is created for the bytes (so a symbolic link at ``target`` is replaced, never followed), with
    ``mode``; an existing ``target`` (a link too) is only replaced with ``overwrite``. A failure leaves nothing.
    """
    if not overwrite and os.path.lexists(target):
        raise AnonymizerError(f"skipped: {target} exists; --overwrite replaces it")
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as output:
            os.fchmod(output.fileno(), mode)
            output.write(data)
            output.flush()
            os.fsync(output.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _output_mode(source: os.stat_result) -> int:
    """Permission bits no wider than the input's, nor than the user's umask allows a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return stat.S_IMODE(source.st_mode) & 0o666 & ~umask


def _faces_json(faces: Sequence[Detection], kept: frozenset[int] | None = None) -> list[dict[str, object]]:
    """Each face with its number, as ``--keep`` takes it, and after ``anonymize`` whether it was left uncovered."""
    records: list[dict[str, object]] = []
    for number, face in enumerate(faces, 1):
        record: dict[str, object] = {"number": number, **asdict(face), "score": round(face.score, 4)}
        if kept is not None:
            record["kept"] = number in kept
        records.append(record)
    return records


Done = TypeVar("Done")


class _Reporter:
    """Per-file lines and the progress bar, kept from tangling with each other."""

    def __init__(self, total: int, as_json: bool) -> None:
        self.interactive = not as_json and sys.stderr.isatty()
        self.bar = tqdm(total=total, unit="file", disable=not (total > 1 and self.interactive), file=sys.stderr)
        self.failed = 0
        self.frames: tqdm | None = None

    def frame_progress(self, path: Path) -> Callable[[int, int], None]:
        """A callback for ``anonymize_media`` that shows a bar over one GIF's or video's frames."""

        def update(done: int, total: int) -> None:
            if self.frames is None:
                if total <= 1:
                    return
                self.frames = tqdm(
                    total=total,
                    unit="frame",
                    desc=path.name,
                    leave=False,
                    disable=not self.interactive,
                    file=sys.stderr,
                )
            self.frames.total = max(self.frames.total, total)
            self.frames.update(done - self.frames.n)

        return update

    def end_file(self) -> None:
        if self.frames is not None:
            self.frames.close()
            self.frames = None

    def line(self, text: str) -> None:
        tqdm.write(text, file=sys.stdout)

    def notice(self, path: Path, message: str) -> None:
        tqdm.write(f"{PROGRAM}: {path}: {message}", file=sys.stderr)

    def error(self, path: Path, message: str) -> None:
        self.failed += 1
        tqdm.write(f"{PROGRAM}: {path}: {message}", file=sys.stderr)

    def attempt(self, path: Path, work: Callable[[], Done]) -> Done | None:
        """What ``work`` returns for one file, or None after one error line: one file never stops the batch."""
        try:
            return work()
        except ChoiceError as error:  # --keep or --add does not fit this picture, which only its decoding could tell
            raise UsageError(f"{path}: {error}") from None
        except AnonymizerError as error:
            self.error(path, str(error))
        except OSError as error:  # reading is an AnonymizerError (see _read): this is the output
            self.error(path, f"cannot write output: {error.strerror or error}")
        except Exception as error:  # a bug met on one file must not stop the batch
            self.error(path, f"failed unexpectedly ({type(error).__name__}: {error})")
        return None

    def step(self) -> None:
        self.bar.update(1)

    def exit_code(self) -> int:
        self.bar.close()
        return EXIT_FAILED if self.failed else EXIT_OK


def _read(path: Path, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """The file's bytes and its status, after checking it is a regular file of at most ``max_bytes``: a file is
    measured before it is read, and read no further than the limit even if it grows meanwhile. (Opened without
    waiting, so a named pipe given as an input is refused instead of blocking the run.)"""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(descriptor, "rb") as file:
            status = os.fstat(descriptor)
            if not stat.S_ISREG(status.st_mode):
                raise AnonymizerError("not a regular file")
            if status.st_size > max_bytes:
                raise too_large("file", status.st_size, max_bytes)
            data = file.read(max_bytes + 1)
    except FileNotFoundError:
        raise AnonymizerError("no such file or directory") from None
    except OSError as error:
        raise AnonymizerError(f"cannot read: {error.strerror or error}") from None
    if len(data) > max_bytes:
        raise too_large("file", len(data), max_bytes)
    return data, status


def _byte_limit(path: Path, options: Options) -> int:
    """What the pipeline accepts for the kind of file this name says: videos have their own, larger limit."""
    return options.max_video_bytes if path.suffix.lower() in VIDEO_SUFFIXES else options.max_bytes


def _each_input(
    args: argparse.Namespace, skip_under: Path | None, extensions: frozenset[str]
) -> tuple[list[tuple[Path, Path]], _Reporter]:
    files = list(_collect(args.inputs, skip_under, extensions))
    return files, _Reporter(len(files), args.json)


# --- commands ------------------------------------------------------------------------------------------------


def _run_anonymize(args: argparse.Namespace) -> int:
    if args.keep and (len(args.inputs) > 1 or args.inputs[0].is_dir()):
        raise UsageError("--keep takes one photo, not several or a folder: face numbers belong to one picture")
    options = _options(args)
    explicit_files = [item for item in args.inputs if not item.is_dir()]
    single_file = len(args.inputs) == 1 and len(explicit_files) == 1
    skip_under = args.output.resolve() if args.output is not None else None
    files, report = _each_input(args, skip_under, IMAGE_SUFFIXES | MEDIA_SUFFIXES)
    if not files:
        raise UsageError("no image or video files found in the given inputs")
    inputs = {path.resolve() for path, _ in files}
    _check_outputs(args, files, single_file, inputs)
    written: set[Path] = set()
    for path, root in files:
        if _is_output(path):
            report.notice(path, f"skipped: already an output of {PROGRAM} ({OUTPUT_SUFFIX} in its name)")
            report.step()
            continue

        def write(path: Path = path, root: Path = root) -> tuple[Path, Result]:
            data, source = _read(path, _byte_limit(path, options))
            target = _output_path(path, root, args.output, single_file)
            target = _renamed_for(target, probe(data, options), named_by_user=target == args.output)
            if target.resolve() in written:
                raise AnonymizerError(f"skipped: {target} was already written from another input")
            if target.resolve() in inputs and not args.overwrite:
                raise AnonymizerError(f"skipped: {target} is an input; --overwrite lets the output replace it")
            if os.path.lexists(target) and not args.overwrite:
                raise AnonymizerError(f"skipped: {target} exists; --overwrite replaces it")
            result = anonymize_media(data, options, report.frame_progress(path))
            _write_output(target, result.data, _output_mode(source), args.overwrite)
            written.add(target.resolve())
            return target, result

        done = report.attempt(path, write)
        if done is not None:
            target, result = done
            if args.json:
                record = {
                    "input": str(path),
                    "output": str(target),
                    "kind": result.kind,
                    "format": result.format,
                    "input_format": result.input_format,
                    "width": result.width,
                    "height": result.height,
                    "faces": _faces_json(result.detections, result.kept),
                    "timings": {stage: round(seconds, 4) for stage, seconds in result.timings.items()},
                }
                if result.kind != MediaKind.IMAGE:
                    record.update(frames=result.frames, tracks=result.tracks, duration=round(result.duration, 3))
                report.line(json.dumps(record))
            else:
                report.line(f"{path}: {_summary(result, options)} -> {target}")
        report.end_file()
        report.step()
    return report.exit_code()


def _summary(result: Result, options: Options) -> str:
    if result.kind == MediaKind.IMAGE:
        faces = len(result.detections)
        converted = f" (written as {result.format})" if result.format != result.input_format else ""
        covered = f"{faces} face{'s' * (faces != 1)} covered"
        if result.kept:
            kept = ", ".join(map(str, sorted(result.kept)))
            covered = f"{faces - len(result.kept)} of {covered} (left uncovered: {kept})"
        added = len(options.add)
        return covered + (f", and {added} added region{'s' * (added != 1)}" if added else "") + converted
    tracks = result.tracks
    return f"{tracks} face{'s' * (tracks != 1)} followed and covered over {result.frames} frames"


def _detect_file(path: Path, options: Options) -> tuple[list[Detection], int, int]:
    data, _ = _read(path, options.max_bytes)
    return detect(data, options)


def _run_detect(args: argparse.Namespace) -> int:
    options = _options(args)
    files, report = _each_input(args, None, IMAGE_SUFFIXES)
    if not files:
        raise UsageError("no image files found in the given inputs")
    for path, _root in files:
        found = report.attempt(path, functools.partial(_detect_file, path, options))
        if found is not None:
            faces, width, height = found
            if args.json:
                record = {
                    "input": str(path),
                    "width": width,
                    "height": height,
                    "faces": _faces_json(faces),
                }
                report.line(json.dumps(record))
            else:
                boxes = "; ".join(
                    f"#{number} {f.x},{f.y} {f.w}x{f.h} {f.score:.2f} {f.detector}" for number, f in enumerate(faces, 1)
                )
                report.line(f"{path}: {len(faces)} face{'s' * (len(faces) != 1)}" + (f": {boxes}" if faces else ""))
        report.step()
    return report.exit_code()


def _model_files(names: Sequence[str] | None) -> list[str] | None:
    """File names for ``--only``: each NAME is a known file name or a detector whose files it stands for."""
    if not names:
        return None
    known = detectors.models.KNOWN_FILES
    chosen: list[str] = []
    for name in names:
        matches = [name] if name in known else [f.filename for f in known.values() if f.detector == name]
        if not matches:
            detector_names = sorted({f.detector for f in known.values()})
            raise UsageError(f"unknown model {name!r}; use a detector ({', '.join(detector_names)}) or a file name")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def _run_models_download(args: argparse.Namespace) -> int:
    outcomes = download(_model_files(args.only), source=args.source, progress=True, or_official=args.or_official)
    for outcome in outcomes:
        if outcome.state == DOWNLOADED:
            print(f"downloaded and verified {outcome.path} (from {outcome.origin})")
        elif outcome.state == FAILED:
            print(
                f"{PROGRAM}: could not fetch {outcome.filename} ({outcome.detector}): {outcome.error}", file=sys.stderr
            )
        else:
            print(f"verified {outcome.path} (already there)")
    if args.only:
        return EXIT_FAILED if any(not outcome.ok for outcome in outcomes) else EXIT_OK
    return _report_default_chain()


def _report_default_chain() -> int:
    """Say which detector the default chain will run with the files now in the store; fail when none can run."""
    chain_log = logging.getLogger(Chain.__module__)
    level = chain_log.level
    chain_log.setLevel(logging.ERROR)  # its "skipped, run models download" warnings are what was just reported
    try:
        detector = detectors.create(defaults.DEFAULT_DETECTOR)
    except ModelMissingError as error:
        print(
            f"{PROGRAM}: no detector of the default chain {defaults.DEFAULT_DETECTOR} can run: {error}", file=sys.stderr
        )
        return EXIT_FAILED
    finally:
        chain_log.setLevel(level)
    running = detector.members[0].name if isinstance(detector, Chain) else detector.name
    print(f"the default chain {defaults.DEFAULT_DETECTOR} runs {running}")
    return EXIT_OK


def _run_models_list(args: argparse.Namespace) -> int:
    print(f"model directory: {detectors.models.models_dir()}")
    for row in detectors.models.status():
        state = "verified" if row.verified else ("CORRUPT" if row.present else "missing")
        size = f"{row.size / 1e6:6.1f} MB" if row.present else " " * 9
        print(f"  {state:8}  {size}  {row.detector:10}  {row.filename}")
    return EXIT_OK
