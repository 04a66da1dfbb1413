"""GIF files through the library: every frame covered, the same frame durations and loop, nothing else kept."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import GifImagePlugin, Image

from anonymizer import Options, anonymize_media, probe
from anonymizer.errors import CorruptMediaError, MediaTooLongError, TooManyPixelsError
from testing.hostile import gif_frame_bomb
from testing.media import Scene, changed, gif_frames, make_gif

PAINTED = 25


@pytest.fixture(scope="module")
def animated() -> bytes:
    return make_gif(durations=(40, 90, 130), loop=0, comment=b"secret comment")


def test_every_frame_is_covered_with_its_own_duration(animated: bytes) -> None:
    result = anonymize_media(animated)
    assert (result.kind, result.format, result.frames) == ("animation", "GIF", 16)
    frames = gif_frames(result.data)
    truth = Scene().frames()
    assert [duration for _, duration in frames] == [(40, 90, 130)[i % 3] for i in range(16)]
    for index, ((painted, _), (original, boxes)) in enumerate(zip(frames, truth, strict=True)):
        assert changed(original, painted, boxes[0]) > PAINTED, f"the face is bare in frame {index}"
    # Away from the face each frame is the input's, give or take the palette.
    for (painted, _), (original, _) in zip(frames, truth, strict=True):
        assert np.abs(painted[-20:].astype(int) - original[-20:].astype(int)).mean() < 6


def test_the_loop_count_is_kept_and_the_comment_dropped(animated: bytes) -> None:
    data = anonymize_media(animated).data
    output = Image.open(io.BytesIO(data))
    assert output.info.get("loop") == 0 and "comment" not in output.info
    assert b"secret" not in data
    once = Image.open(io.BytesIO(anonymize_media(make_gif(loop=None)).data))
    assert "loop" not in once.info, "a GIF that plays once must not start looping"
    three = Image.open(io.BytesIO(anonymize_media(make_gif(loop=3)).data))
    assert three.info.get("loop") == 3


def test_a_still_gif_comes_back_as_a_gif_with_the_face_covered() -> None:
    scene = Scene(size=(192, 144), faces=[[(40, 12, 70)]])
    result = anonymize_media(make_gif(scene, loop=None))
    ((painted, _),) = gif_frames(result.data)
    original, boxes = scene.frames()[0]
    assert result.format == "GIF" and result.frames == 1
    assert changed(original, painted, boxes[0]) > PAINTED


def test_transparency_is_kept() -> None:
    rgba = np.zeros((60, 80, 4), np.uint8)
    rgba[10:50, 10:70] = (200, 30, 30, 255)
    frames = [Image.fromarray(rgba), Image.fromarray(np.roll(rgba, 5, axis=1))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0, disposal=2)
    output = Image.open(io.BytesIO(anonymize_media(buffer.getvalue()).data))
    for index in range(2):
        output.seek(index)
        alpha = np.asarray(output.convert("RGBA"))[:, :, 3]
        assert alpha[0, 0] == 0 and alpha[30, 40] == 255


def test_probe_reads_frames_and_duration(animated: bytes) -> None:
    info = probe(animated)
    assert (info.kind, info.frames, info.width, info.height) == ("animation", 16, 192, 144)
    assert info.duration == pytest.approx(sum((40, 90, 130)[i % 3] for i in range(16)) / 1000)


def test_limits_and_damage_are_one_clear_error(animated: bytes) -> None:
    with pytest.raises(MediaTooLongError, match="more than 10 frames"):
        anonymize_media(animated, Options(max_frames=10))
    with pytest.raises(MediaTooLongError):
        anonymize_media(animated, Options(max_animation_pixels=192 * 144 * 10))
    with pytest.raises(TooManyPixelsError):
        anonymize_media(animated, Options(max_frame_pixels=100 * 100))
    with pytest.raises(CorruptMediaError, match="damaged"):
        anonymize_media(animated[: len(animated) // 2])
    with pytest.raises(CorruptMediaError, match="damaged"):
        anonymize_media(b"GIF89a" + bytes(20))


@pytest.mark.parametrize(
    ("bomb", "extent"),
    [
        (lambda: gif_frame_bomb(frames=4, side=6000), "6000 x 6000"),
        (lambda: gif_frame_bomb(frames=1, side=8, offset=5000), "5008 x 5008"),
    ],
    ids=["frames-larger-than-the-screen", "small-frame-far-off-the-screen"],
)
def test_a_frame_reaching_past_the_screen_counts_at_its_extent_before_anything_is_decoded(
    bomb, extent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The header says 1 x 1 pixel, a later frame reaches thousands of pixels out: Pillow would grow its picture to
    fit (four 6000 x 6000 frames took 1.5 GB). Refused from the frames' own extents, without decoding a frame."""
    data = bomb()
    assert len(data) < 200_000 and Image.open(io.BytesIO(data)).size == (1, 1)
    monkeypatch.setattr(GifImagePlugin.GifImageFile, "load", lambda *_: pytest.fail("a frame was decoded"))
    with pytest.raises(TooManyPixelsError, match=extent):
        anonymize_media(data)
    with pytest.raises(TooManyPixelsError, match=extent):
        probe(data)


def test_pillow_reads_a_gif_under_the_options_pixel_limit(animated: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow's own bomb check (its default: 89 MP, an error only past twice that) is set to the GIF's size."""
    limits = []
    opened = GifImagePlugin.GifImageFile._open

    def recording(image: GifImagePlugin.GifImageFile) -> None:
        limits.append(Image.MAX_IMAGE_PIXELS)
        opened(image)

    monkeypatch.setattr(GifImagePlugin.GifImageFile, "_open", recording)
    anonymize_media(animated)
    assert limits == [192 * 144]
