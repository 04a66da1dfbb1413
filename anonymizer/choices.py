"""The user's last word on a photo: which of the faces found stay uncovered, and what is covered besides them.

Faces are numbered from 1 in reading order, so that a number means the same face in ``photo-anon detect``, in
``Result.detections``, in the bot's chooser and in ``Options.keep``. What is painted is computed here once, for
a first run and for a re-render of remembered faces alike (``pipeline.anonymize``).
"""

from __future__ import annotations

from collections.abc import Sequence

from anonymizer.errors import ChoiceError
from anonymizer.options import Options
from detectors import Detection
from filters import Box


def reading_order(faces: Sequence[Detection]) -> list[Detection]:
    """The faces top to bottom, and left to right within a row, whatever order they were found in.

    Two faces share a row when the vertical centre of one lies within the other's height. Rows are taken from the
    top: the face whose centre is highest starts a row, and every face that shares a row with it joins, so a face
    a little higher than its left-hand neighbour does not jump ahead of it. Faces are compared with the row's first
    face only, never chained, so a staircase of faces (each overlapping the next) still reads as several rows.
    """
    rows: list[list[Detection]] = []
    for face in sorted(faces, key=lambda f: (_centre_y(f), f.x)):
        if rows and _same_row(rows[-1][0], face):
            rows[-1].append(face)
        else:
            rows.append([face])
    return [face for row in rows for face in sorted(row, key=lambda f: (f.x, _centre_y(f)))]


def _centre_y(box: Box) -> float:
    return box.y + box.h / 2


def _same_row(first: Box, other: Box) -> bool:
    def within(centre: float, box: Box) -> bool:
        return box.y <= centre <= box.y + box.h

    return within(_centre_y(other), first) or within(_centre_y(first), other)


def painted(faces: Sequence[Detection], options: Options, width: int, height: int) -> list[Box]:
    """What a ``width`` x ``height`` photo is painted over: its faces but those ``options.keep`` numbers, then the
    regions of ``options.add``.

    Raises ``ChoiceError`` for a number that is not one of the faces' and for a region that does not lie wholly
    inside the picture or has no area: what the user chose must be what is painted, or nothing is.
    """
    missing = sorted(number for number in options.keep if not 1 <= number <= len(faces))
    if missing:
        raise ChoiceError(f"There is no face {', '.join(map(str, missing))}: {_numbering(len(faces))}")
    for region in options.add:
        _check_inside(region, width, height)
    return [face for number, face in enumerate(faces, 1) if number not in options.keep] + list(options.add)


def _numbering(count: int) -> str:
    if count == 0:
        return "no face was found in this picture."
    if count == 1:
        return "this picture has one face, number 1."
    return f"this picture has {count} faces, numbered 1 to {count}."


def _check_inside(region: Box, width: int, height: int) -> None:
    where = f"The region at {region.x},{region.y} of {region.w} x {region.h} px"
    if region.w < 1 or region.h < 1:
        raise ChoiceError(f"{where} has no area: its width and height must be at least 1 px.")
    if region.x < 0 or region.y < 0 or region.x + region.w > width or region.y + region.h > height:
        raise ChoiceError(f"{where} does not lie inside the {width} x {height} px picture.")
