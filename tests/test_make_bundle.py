"""python -m scripts.make_bundle: a training checkpoint becomes a bundle (the float16 generator and the
run's records), never over files it was not told to replace."""
import h5py
import numpy as np
import pytest

from data.constants import BUNDLE_RECORDS


@pytest.fixture
def run_folder(tmp_path):
    """A run: a train.py-style checkpoint of a random generator, and its records."""
    import tensorflow as tf

    from models import build_generator

    generator = build_generator()
    run = tmp_path / "run"
    prefix = tf.train.Checkpoint(generator=generator).save(str(run / "ckpt" / "ckpt"))
    for name in BUNDLE_RECORDS:
        (run / name).write_text(f"record {name}")
    return run, prefix, generator


def test_bundle_holds_the_checkpoints_generator_as_float16_and_the_records(run_folder, tmp_path, capsys):
    from models import load_generator
    from scripts.make_bundle import main

    run, prefix, generator = run_folder
    out = tmp_path / "bundle"
    main([prefix, str(out), "--records", str(run)])
    with h5py.File(out / "generator.weights.h5", "r") as f:
        dtypes = set()
        f.visititems(lambda _, obj: dtypes.add(obj.dtype) if isinstance(obj, h5py.Dataset) else None)
    assert dtypes == {np.dtype("float16")}
    for ours, theirs in zip(load_generator(str(out)).weights, generator.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy().astype(np.float16).astype(np.float32))
    assert all((out / name).read_text() == f"record {name}" for name in BUNDLE_RECORDS)

    # a second run over it is refused, naming what is there; --overwrite replaces and leaves the README
    (out / "README.md").write_text("ours")
    (run / "opt.txt").write_text("newer")
    with pytest.raises(SystemExit):
        main([prefix, str(out), "--records", str(run)])
    assert "already holds generator.weights.h5, opt.txt" in capsys.readouterr().err
    assert (out / "opt.txt").read_text() == "record opt.txt"
    main([prefix, str(out), "--records", str(run), "--overwrite"])
    assert (out / "opt.txt").read_text() == "newer" and (out / "README.md").read_text() == "ours"


def test_records_must_all_be_there(tmp_path, capsys):
    from scripts.make_bundle import main

    run = tmp_path / "run"
    run.mkdir()
    for name in BUNDLE_RECORDS:
        (run / name).write_text(name)
    (run / "validation.png").unlink()
    with pytest.raises(SystemExit):
        main([str(run / "ckpt"), str(tmp_path / "bundle"), "--records", str(run)])
    assert f"--records {run} lacks validation.png" in capsys.readouterr().err
    assert not (tmp_path / "bundle").exists()
