"""`nst-jax weights fetch|convert` as a real subprocess."""




from .helpers import assert_clean_error, run


def test_weights_commands(tmp_path):
    r = run("weights", "fetch")
    assert r.returncode == 0 and r.stdout.strip().endswith(".npz"), r.stderr
    assert_clean_error(run("weights", "convert", tmp_path / "missing.h5", tmp_path / "x.npz"),
                       "does not exist")
