"""The chooser's keyboard for a crowd: a page of faces at a time, every face reachable, the state on each button."""

from __future__ import annotations

from bot.handlers.buttons import FACES_PER_PAGE, FaceChoice, Pick, chooser_keyboard
from bot.originals import Original
from bot.texts import ENGLISH
from detectors import Detection

CROWD = Original(1, "file", False, faces=tuple(Detection(10 * n, 0, 8, 8, 0.9, "scrfd") for n in range(45)))


def labels(page: int, original: Original = CROWD) -> list[list[str]]:
    rows = chooser_keyboard(ENGLISH, 0, original, page).inline_keyboard
    return [[button.text for button in row] for row in rows]


def test_a_crowd_is_chosen_a_page_at_a_time_and_every_face_is_reachable() -> None:
    seen: list[str] = []
    for page in range(3):
        rows = labels(page)
        seen += [label for row in rows for label in row if label.endswith(("✓", "○"))]
        assert max(len(row) for row in rows) <= 5, "a row too wide for a phone"
        assert rows[-1] == [ENGLISH.choose_done] and rows[-2] == [ENGLISH.cover_all, ENGLISH.show_all]
    assert seen == [f"{number} ✓" for number in range(1, 46)]
    assert ["›"] in labels(0) and ["‹", "›"] in labels(1) and ["‹"] in labels(2)


def test_each_button_says_whether_its_face_is_shown_and_toggles_that_face() -> None:
    shown = Original(1, "file", False, faces=CROWD.faces[:3], shown=frozenset({2}))
    rows = chooser_keyboard(ENGLISH, 0, shown, 0).inline_keyboard
    assert [button.text for button in rows[0]] == ["1 ✓", "2 ○", "3 ✓"]
    assert FaceChoice.unpack(rows[0][1].callback_data or "") == FaceChoice(result=0, pick=Pick.TOGGLE, number=2)
    assert FACES_PER_PAGE == 20
    page_button = chooser_keyboard(ENGLISH, 77, CROWD, 0).inline_keyboard[4][0]
    assert FaceChoice.unpack(page_button.callback_data or "") == FaceChoice(result=77, pick=Pick.PAGE, page=1)
