"""explorer.export: PNG, numbered sequences, GIF/WebP/APNG, and clear write errors."""
from __future__ import annotations

import errno

import numpy as np
import pytest
from PIL import Image, ImageSequence

import nvp_core as nc
from explorer import export


def _frames(n: int = 5, h: int = 12, w: int = 20) -> list[np.ndarray]:
    """Distinct frames (encoders merge identical consecutive frames)."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_png_round_trip_is_exact(tmp_path):
    frame = _frames(1)[0]
    path = export.save_png(frame, tmp_path / "sub" / "view.png")
    assert path.exists()
    back = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(back, frame)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_sequence_is_numbered_and_sorted(tmp_path):
    frames = _frames(12)
    paths = export.save_sequence(frames, tmp_path / "seq", prefix="phi", start=3)
    assert [p.name for p in paths][:2] == ["phi_0003.png", "phi_0004.png"]
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == [p.name for p in paths]
    for frame, path in zip(frames, paths):
        np.testing.assert_array_equal(np.asarray(Image.open(path)), frame)


@pytest.mark.parametrize("ext", [".gif", ".webp", ".apng", ".png"])
def test_animation_has_every_frame(tmp_path, ext):
    frames = _frames(6)
    path = export.save_animation(frames, tmp_path / f"sweep{ext}", fps=10)
    with Image.open(path) as im:
        assert im.size == (20, 12)
        assert getattr(im, "n_frames", 1) == 6
        got = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
        assert im.info.get("duration") == 100
    if ext != ".gif":  # WebP is lossless here and APNG always is
        for a, b in zip(got, frames):
            np.testing.assert_array_equal(a, b)
    else:  # GIF quantises to 256 colours: close, not exact
        assert np.abs(got[3].astype(int) - frames[3]).mean() < 40


def test_bad_frames_are_refused(tmp_path):
    with pytest.raises(nc.ShapeError, match="uint8"):
        export.save_png(np.zeros((4, 4, 3), np.float32), tmp_path / "x.png")
    with pytest.raises(nc.ShapeError, match="must match"):
        export.save_animation([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 6, 3), np.uint8)],
                              tmp_path / "x.gif")
    with pytest.raises(nc.ShapeError, match="no frames"):
        export.save_sequence([], tmp_path / "seq")
    with pytest.raises(export.ExportError, match="unknown animation format"):
        export.save_animation(_frames(2), tmp_path / "x.tiff")
    assert not list(tmp_path.iterdir())


def test_unwritable_path_gives_clear_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    with pytest.raises(export.ExportError, match="not a folder") as info:
        export.save_png(_frames(1)[0], blocker / "view.png")
    assert isinstance(info.value, OSError) and isinstance(info.value, nc.NVPError)
    with pytest.raises(OSError, match="cannot write"):
        export.save_sequence(_frames(2), blocker / "seq")


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "disk is full"), (errno.EACCES, "permission denied")])
def test_disk_full_and_permission_messages(tmp_path, monkeypatch, code, words):
    old = export.save_png(_frames(1)[0], tmp_path / "keep.png").read_bytes()

    def refuse(path, data):
        raise OSError(code, "raw os text")

    monkeypatch.setattr(export, "atomic_write_bytes", refuse)
    with pytest.raises(export.ExportError, match=words) as info:
        export.save_animation(_frames(3), tmp_path / "keep.png")
    assert info.value.errno == code and "keep.png" in str(info.value)
    assert (tmp_path / "keep.png").read_bytes() == old  # the previous file is intact


def test_mp4_without_ffmpeg_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "mp4_available", lambda: False)
    with pytest.raises(export.ExportError, match="imageio-ffmpeg"):
        export.save_animation(_frames(2), tmp_path / "a.mp4")
    assert ".mp4" not in export.animation_formats()


def test_resize_and_grid():
    f = _frames(1, 4, 6)[0]
    big = export.resize(f, 18, 12)
    assert big.shape == (12, 18, 3)
    np.testing.assert_array_equal(big[::3, ::3], f)  # integer scale: nearest, crisp pixels
    sheet = export.grid(_frames(5, 4, 6), gap=1)
    assert sheet.shape == (2 * 4 + 1, 3 * 6 + 2, 3)  # 5 tiles: 3 columns, 2 rows


def test_export_frames_scales_and_writes_both(tmp_path):
    opts = export.ExportOptions(frames=4, width=40, height=24, sequence=True, animation=".webp", fps=5,
                                folder=tmp_path / "out", name="sweep")
    written = export.export_frames(_frames(4), opts)
    assert written == opts.targets() and len(written) == 5
    with Image.open(opts.animation_path) as im:
        assert im.size == (40, 24) and im.n_frames == 4
    assert Image.open(written[0]).size == (40, 24)


def test_export_dialog_links_size_and_validates(qtbot, tmp_path):
    from explorer.dialogs import ExportDialog

    dialog = ExportDialog(None, default_frames=24, default_size=(32, 16), default_folder=tmp_path / "x")
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    assert dialog.scale.value() == 8.0 and (dialog.out_w.value(), dialog.out_h.value()) == (256, 128)
    dialog.out_w.setValue(64)  # a pixel width keeps the aspect ratio
    assert dialog.out_h.value() == 32 and dialog.scale.value() == 2.0
    assert ok.isEnabled() and "frame_0000.png … frame_0023.png" in dialog.summary.text()
    dialog.sequence.setChecked(False)
    dialog.animation.setCurrentIndex(0)  # None
    assert not ok.isEnabled() and "Choose" in dialog.summary.text()
    dialog.animation.setCurrentIndex(dialog.animation.findData(".apng"))
    dialog.name.setText("a/b")
    assert not ok.isEnabled()
    dialog.name.setText("sweep")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    dialog.folder.setText(str(blocker / "inside"))
    assert not ok.isEnabled() and "is a file" in dialog.problem()
    dialog.folder.setText(str(tmp_path / "out"))
    opts = dialog.options()
    assert (opts.frames, opts.width, opts.height, opts.sequence, opts.animation, opts.fps) == (
        24, 64, 32, False, ".apng", 20.0)
    assert opts.animation_path == tmp_path / "out" / "sweep.apng"
