"""scripts/level_map.py: the level pieced together from a real movie, and its bad input as one paragraph."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_script, smb_spec


def _level_map():
    return load_script("scripts/level_map.py")


def test_piece_grows_the_level_and_overwrites_where_screens_overlap():
    lm = _level_map()
    a = np.full((4, 3, 3), 1, np.uint8)
    b = np.full((4, 3, 3), 2, np.uint8)
    level = lm.piece(lm.piece(None, a, 0), b, 2)
    assert level.shape == (4, 5, 3)
    assert level[0, :, 0].tolist() == [1, 1, 2, 2, 2]


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    from experiments.play import play_random

    out = tmp_path_factory.mktemp("movie")
    play_random(smb_spec(actions="right_only", stuck_frames=None, record_dir=str(out)), 600, seed=1)
    (bk2,) = out.glob("*.bk2")
    return bk2


def test_a_real_movie_gives_the_level_it_scrolled_through_with_the_marks(movie, tmp_path):
    import cv2

    from wrappers.profile import load_profile

    lm = _level_map()
    level = lm.movie_level(movie, load_profile("smb"), "x")
    assert level.shape[0] == 224 and level.shape[1] > 256  # Mario ran right: more than one screen
    out = tmp_path / "map.png"
    assert lm.main([str(movie), "--mark", "a=10", "--mark", "b=100", "--out", str(out)]) == 0
    picture = cv2.imread(str(out))
    assert picture.shape[1] == level.shape[1] and picture.shape[0] == level.shape[0] + 22 * 2 + 6


@pytest.mark.parametrize("argv, says", [
    (["--x-var", "nonsense"], "not a variable of the smb profile"),
    (["--mark", "no number"], "LABEL=X"),
])
def test_bad_arguments_exit_2_with_how_to_fix(movie, tmp_path, capsys, argv, says):
    lm = _level_map()
    with pytest.raises(SystemExit) as e:
        lm.main([str(movie), *argv, "--out", str(tmp_path / "m.png")])
    assert e.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "m.png").exists()


def test_a_file_that_is_not_a_movie_is_one_paragraph(tmp_path, capsys):
    bad = tmp_path / "x.bk2"
    bad.write_bytes(np.random.default_rng(0).bytes(500))
    assert _level_map().main([str(bad), "--out", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "x.bk2" in err and "Traceback" not in err
